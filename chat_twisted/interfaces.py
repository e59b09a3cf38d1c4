"""
The boundaries of the chat core: what it calls on a connection.

A door (line protocol, IRC, WebSocket) provides L{IChatClient} for each of its connections and
hands it to L{chat_twisted.core.ChatService.connect}. Storage and the event bus join here later.
"""

from zope.interface import Attribute, Interface


class IChatClient(Interface):
    """
    One connection as the core sees it. Its methods are the only way the core reaches a user:
    the provider alone may write to its own transport.
    """

    peer = Attribute("A short text naming the remote end, for logs and per-address limits.")

    def deliver(event):  # type: ignore[no-untyped-def]
        """
        Show one L{chat_twisted.model.Event} to this user; it may be held until L{flush}. Must
        not raise for a closed or slow connection; the core catches and logs anything it does
        raise and goes on delivering.
        """

    def flush():  # type: ignore[no-untyped-def]
        """
        Send what L{deliver} has held. The core calls it once at the end of each run of
        deliveries, so a client may gather the events of one run into one write.
        """

    def close():  # type: ignore[no-untyped-def]
        """Close the connection once what was delivered before (flushed or not) has been written."""


class IChatStore(Interface):
    """
    Where the core keeps what must outlive a restart: room history, accounts and private
    messages for offline users. Every method returns a Deferred; keys are the core's
    case-folded names (L{chat_twisted.model.name_key}). Implementations: the in-memory store
    (tests, and the fake every contract test also runs against), SQLite and PostgreSQL.
    """

    batch_runner = Attribute(
        "A function that the store calls with a function firing the Deferreds of one batch of"
        " appends; the core sets it (to run their deliveries together). Default: call it."
    )

    def start():  # type: ignore[no-untyped-def]
        """Open the store and bring its schema up to date. Fires with None when ready."""

    def stop():  # type: ignore[no-untyped-def]
        """Finish every pending write, then close. Fires with None when closed."""

    def append_message(room_key, message):  # type: ignore[no-untyped-def]
        """
        Add a L{StoredMessage} to the history of room C{room_key}. Fires with its id once it is
        durably stored; appends fire in the order they were made, and later ones get larger ids.
        """

    def recent_messages(room_key, limit):  # type: ignore[no-untyped-def]
        """
        Fire with a list of at most C{limit} newest messages of C{room_key}, oldest first,
        including every message appended before this call, even one whose append has not fired.
        """

    def find_messages(room_key, limit, after=None, before=None, newest=False):  # type: ignore[no-untyped-def]
        """
        Fire with a list of at most C{limit} messages of C{room_key}, oldest first, from those
        strictly after the L{HistoryPoint} C{after} and strictly before C{before} (either may be
        None: no bound): the newest of them if C{newest}, else the oldest. Like
        L{recent_messages}, it sees every message appended before the call.
        """

    def search_messages(room_keys, text, limit, before=None):  # type: ignore[no-untyped-def]
        """
        Fire with a list of at most C{limit} messages of the rooms C{room_keys} that match the
        search C{text}, newest first, each with its id; with C{before} (a message id), only
        those older than it. A message matches when each word of C{text} begins one of its
        words, in any order, without regard to case or accents (L{chat_twisted.store.search});
        a text with no word in it matches nothing, and no text is ever an error. Like
        L{recent_messages}, it sees every message appended before the call.
        """

    def room_topics():  # type: ignore[no-untyped-def]
        """
        Fire with a dict of every room's current topic by room key: the text of the newest
        C{"topic"} message appended for that room.
        """

    def get_account(nick_key):  # type: ignore[no-untyped-def]
        """Fire with the L{Account} registered under C{nick_key}, or None."""

    def create_account(nick_key, account):  # type: ignore[no-untyped-def]
        """Register C{account}; fire with True, or False if C{nick_key} is already registered."""

    def set_password_hash(nick_key, password_hash):  # type: ignore[no-untyped-def]
        """Replace the password hash of an existing account. Fires with None."""

    def queue_offline(recipient_key, message, limit):  # type: ignore[no-untyped-def]
        """
        Keep an L{OfflineMessage} for C{recipient_key}. Fires with True, or False when that
        recipient already has C{limit} messages waiting (nothing is stored then).
        """

    def take_offline(recipient_key):  # type: ignore[no-untyped-def]
        """Fire with every message waiting for C{recipient_key}, oldest first, and forget them."""

    # --- looking after the data: the retention service and the admin tool --------------------

    def prune_messages(older_than, keep_per_room, batch):  # type: ignore[no-untyped-def]
        """
        Delete at most C{batch} room messages, oldest first, of those that are due: sent before
        the time C{older_than}, or, in each room, older than its newest C{keep_per_room}
        messages (either may be None: no such rule; both None deletes nothing). Fire with how
        many were deleted: fewer than C{batch} means none are due any more. The search index
        follows, and room topics are kept (L{room_topics} does not change). Each call is one
        short transaction, so a caller deleting many calls it again, letting other work run
        between calls. "Oldest first" is by the order the messages were appended (their ids),
        the same as by their times while the clock never went back.
        """

    def expire_offline(older_than):  # type: ignore[no-untyped-def]
        """Delete every offline message sent before the time C{older_than}; fire with how many."""

    def list_accounts():  # type: ignore[no-untyped-def]
        """Fire with a list of every registered L{Account}, in the order of their keys."""

    def delete_account(nick_key):  # type: ignore[no-untyped-def]
        """
        Delete the account registered under C{nick_key} and every offline message waiting for it.
        Fires with True, or False if there was no such account (its offline messages, if any,
        are deleted all the same).
        """

    def room_summaries():  # type: ignore[no-untyped-def]
        """
        Fire with a list of L{StoredRoom}, one per room that has messages, in the order of
        their keys. Like L{recent_messages}, it counts every message appended before the call.
        """

    # --- moderation: claimed rooms and server bans --------------------------------------------

    def save_room(record):  # type: ignore[no-untyped-def]
        """Keep the L{RoomRecord} C{record}, replacing any kept under its key. Fires with None."""

    def delete_room(room_key):  # type: ignore[no-untyped-def]
        """Forget the room record kept under C{room_key}; fire with True, or False if there was none."""

    def claimed_rooms():  # type: ignore[no-untyped-def]
        """Fire with a list of every kept L{RoomRecord}, in the order of their keys."""

    def add_server_ban(ban):  # type: ignore[no-untyped-def]
        """Keep the server-wide L{Ban} C{ban}, replacing any kept with the same mask. Fires with None."""

    def remove_server_ban(mask):  # type: ignore[no-untyped-def]
        """Forget the server ban of C{mask}; fire with True, or False if there was none."""

    def server_bans():  # type: ignore[no-untyped-def]
        """
        Fire with a list of every kept server-wide L{Ban}, expired or not, in the order of their
        masks (the core and the admin tool decide what an expired one means).
        """
