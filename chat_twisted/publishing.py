"""
Publishing, on top of rooms and delivery: room messages, actions and topics, private messages,
history, search and the messages kept for users who are offline.

L{Publishing} stores each room message before anyone is shown it (through L{Delivery}'s outbox,
so that nothing overtakes it), reads history, search results and offline messages back from the
L{IChatStore}, and looks up registered accounts for offline messages. It owns no state of its
own beyond its collaborators and touches no transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted.accounts import Accounts
from chat_twisted.bus import BusUnavailable
from chat_twisted.delivery import Delivery
from chat_twisted.errors import (
    EmptyText,
    HistoryUnavailable,
    InvalidName,
    MailboxFull,
    NoSuchUser,
    NotStored,
    SearchUnavailable,
    Unavailable,
)
from chat_twisted.interfaces import IChatStore
from chat_twisted.metrics import MetricsHooks
from chat_twisted.model import (
    Action,
    ErrorReply,
    Event,
    History,
    HistoryPoint,
    Joined,
    OfflineMessage,
    OfflineQueued,
    PrivateMessage,
    RecipientAway,
    Said,
    SearchResults,
    StoredMessage,
    TopicChanged,
    check_name,
    name_key,
    sanitise,
)
from chat_twisted.requests import ReadHistory, Search
from chat_twisted.rooms import Room, Rooms
from chat_twisted.peers import Peers
from chat_twisted.sessions import Directory, Session

log = Logger()

#: Messages kept at most for one offline user.
OFFLINE_LIMIT = 100
#: Messages one history request returns at most.
MAX_HISTORY = 500
#: Messages one search returns at most.
MAX_SEARCH = 100


def _shown_text(text: str) -> str:
    """Return C{text} sanitised; raise L{EmptyText} if nothing visible is left."""
    text = sanitise(text)
    if not text.strip():
        raise EmptyText()
    return text


class Publishing:
    """
    Stores and shows what users say, in rooms and to each other, and reads it back; counts each
    message and history read in C{metrics} (if given).
    """

    def __init__(
        self,
        clock: IReactorTime,
        store: IChatStore,
        accounts: Accounts,
        delivery: Delivery,
        rooms: Rooms,
        directory: Directory,
        metrics: MetricsHooks | None = None,
        peers: Peers | None = None,
    ) -> None:
        self._peers = peers or Peers()
        self._clock = clock
        self._metrics = metrics or MetricsHooks()
        self._store = store
        self._accounts = accounts
        self._delivery = delivery
        self._rooms = rooms
        self._directory = directory

    # --- rooms -----------------------------------------------------------------------------

    def say(self, session: Session, room: Room, text: str, notice: bool = False) -> None:
        """Say C{text} in C{room}; text with nothing visible in it is dropped without a word."""
        try:
            text = _shown_text(text)
        except EmptyText:
            return
        nick, account, when = session.nick, session.account, self._clock.seconds()
        assert nick is not None
        self._publish(session, room, "say", text, when,
                      lambda id: Said(room.name, nick, text, when, notice, id, account), notice=notice)

    def act(self, session: Session, room: Room, text: str) -> None:
        """Perform the action C{text} in C{room}."""
        text = _shown_text(text)
        nick, account, when = session.nick, session.account, self._clock.seconds()
        assert nick is not None
        self._publish(session, room, "action", text, when, lambda id: Action(room.name, nick, text, when, id, account))

    def set_topic(self, session: Session, room: Room, text: str) -> None:
        """Set the topic of C{room} (kept in its history) and tell the room."""
        topic = _shown_text(text).strip()
        assert session.nick is not None
        nick, when = session.nick, self._clock.seconds()
        self._publish(
            session, room, "topic", topic, when, lambda id: TopicChanged(room.name, nick, topic, when, id),
            stored=lambda: self._rooms.set_topic(room, topic, nick, when),
        )

    def _publish(
        self,
        session: Session,
        room: Room,
        kind: str,
        text: str,
        when: float,
        event: Callable[[int], Event],
        stored: Callable[[], None] | None = None,
        notice: bool = False,
    ) -> None:
        """
        Store a room message, then (after calling C{stored}, if given) show C{event(its id)} to
        those who were in the room when it was made. If it can't be stored, only the sender
        hears of it. In a cluster, once stored it is announced, and shown here when its place
        in the bus's one order comes (here alone if the bus is down).
        """
        assert session.nick is not None
        session.active_at = when
        recipients = tuple(room.members)
        record = StoredMessage(room.name, kind, session.nick, text, when)

        def show(id: int) -> None:
            if stored is not None:
                stored()
            self._metrics.message(kind)
            if room.unseen and self._rooms.speaks(room, record.sender):  # a large room: shown joining only now
                self._delivery.fan_out(tuple(member for member in recipients if member is not session),
                                       Joined(room.name, record.sender))
            self._delivery.fan_out(recipients, event(id))

        def failed(failure: Failure) -> None:
            log.failure("storing a message from {nick} failed", failure, nick=session.nick)
            self._delivery.write(session, ErrorReply(NotStored()))

        waiting = self._store.append_message(room.key, record)
        if self._peers.shared:
            account = session.account
            waiting.addCallback(self._announced, room.name, kind, session.nick, text, when, account, notice)
        self._delivery.after(waiting, show, failed, sequenced=self._peers.shared)

    def _announced(self, id: int, *fields: Any) -> Deferred[int] | int:
        """Announce a stored room message; fire with its id once its turn in the bus's order has come."""
        room, kind, nick, text, when, account, notice = fields
        back = self._peers.sequenced("msg", room, kind, nick, text, when, id, account, notice)
        if back is None:
            return id

        def alone(failure: Failure) -> int:
            failure.trap(BusUnavailable)
            return id  # the others will not see it live; it is in the history

        return back.addCallbacks(lambda _: id, alone)

    # --- history ---------------------------------------------------------------------------

    def show_history(self, session: Session, room: Room, request: ReadHistory, requested: bool = True) -> None:
        """
        Show C{session} the messages of C{room} that C{request} asks for (at most L{MAX_HISTORY}),
        in turn; when there are none, only if C{requested}. A failed read is answered with
        L{HistoryUnavailable}.
        """
        limit = max(1, min(request.limit, MAX_HISTORY))
        self._metrics.history_read(requested)
        find = self._store.find_messages
        if request.around is not None:
            point = request.around
            from_point = HistoryPoint(id=point.id - 1) if point.id is not None else \
                HistoryPoint(when=(point.when or 0.0) - 0.0005)
            reading = gatherResults([find(room.key, limit // 2, before=point, newest=True),
                                     find(room.key, limit - limit // 2, after=from_point)], consumeErrors=True)
            reading.addCallback(lambda halves: halves[0] + halves[1])
        else:
            reading = find(room.key, limit, after=request.after, before=request.before,
                           newest=request.newest or request.after is None)

        def show(messages: list[StoredMessage]) -> None:
            if not requested and self._peers.shared:  # a message shown here is not shown again live
                if session.seen is None:
                    session.seen = {}
                session.seen[room.key] = frozenset(message.id for message in messages)
            if messages or requested:
                self._delivery.write(session, History(room.name, tuple(messages), requested))

        def failed(failure: Failure) -> None:
            log.failure("reading the history of {room} failed", failure, room=room.name)
            self._delivery.write(session, ErrorReply(HistoryUnavailable(room.name)))

        self._delivery.after(reading, show, failed)

    # --- search ----------------------------------------------------------------------------

    def search(self, session: Session, request: Search) -> None:
        """
        Show C{session}, in turn, the messages of the rooms it is in now that match
        C{request.text}, newest first (at most L{MAX_SEARCH}). A text with nothing visible in
        it is refused with L{EmptyText}; a failed read is answered with L{SearchUnavailable}.
        """
        text = _shown_text(request.text).strip()
        limit = max(1, min(request.limit, MAX_SEARCH))
        room_keys = list(session.rooms)
        if room_keys:
            reading = self._store.search_messages(room_keys, text, limit, request.before)
        else:
            reading = succeed([])

        def show(messages: list[StoredMessage]) -> None:
            self._delivery.write(session, SearchResults(text, tuple(messages)))

        def failed(failure: Failure) -> None:
            log.failure("searching the messages of {nick}'s rooms failed", failure, nick=session.nick)
            self._delivery.write(session, ErrorReply(SearchUnavailable()))

        self._delivery.after(reading, show, failed)

    # --- private messages ------------------------------------------------------------------

    async def tell(self, session: Session, target_nick: str, text: str, notice: bool, action: bool) -> None:
        """
        Deliver a private message to C{target_nick} and its echo to the sender. Nobody online
        under that nickname: a user identified to the account of that name gets it under their
        own nickname; else, for a registered user who is offline, keep it until they log in.
        """
        text = _shown_text(text)
        sender = session.nick
        assert sender is not None
        when = session.active_at = self._clock.seconds()
        target = self._directory.find(target_nick) or self._directory.find_account(target_nick)
        if target is not None:
            assert target.nick is not None
            account = session.account
            self._metrics.message("private")
            self._delivery.to(target, PrivateMessage(sender, target.nick, text, when, notice=notice, action=action,
                                                     account=account))
            if target is not session:
                echo = PrivateMessage(sender, target.nick, text, when, echo=True, notice=notice, action=action,
                                      account=account)
                self._delivery.to(session, echo)
                if target.away and not notice:
                    self._delivery.to(session, RecipientAway(target.nick, target.away))
            return
        remote = self._directory.find_remote(target_nick) if self._peers.shared else None
        if remote is not None:
            if not self._peers.connected:
                raise Unavailable("servers")
            account = session.account
            self._metrics.message("private")
            self._peers.announce("pm", target_nick, sender, text, when, notice, action, account)
            self._delivery.to(session, PrivateMessage(sender, remote.nick, text, when, echo=True, notice=notice,
                                                      action=action, account=account))
            if remote.away and not notice:
                self._delivery.to(session, RecipientAway(remote.nick, remote.away))
            return
        await self._keep_for_offline(session, target_nick, text, when)

    async def _keep_for_offline(self, session: Session, target_nick: str, text: str, when: float) -> None:
        """Keep a private message for a registered user who is offline; raise if there is no such user."""
        unknown = NoSuchUser(sanitise(target_nick))
        try:
            key = name_key(check_name(target_nick, "nickname"))
        except InvalidName:
            raise unknown from None
        account = await self._accounts.lookup(key)
        if account is None:
            raise unknown
        assert session.nick is not None
        message = OfflineMessage(session.nick, account.nick, text, when)
        if not await self._store.queue_offline(key, message, OFFLINE_LIMIT):
            raise MailboxFull(account.nick)
        self._metrics.message("offline")
        self._delivery.to(session, OfflineQueued(account.nick))

    def deliver_offline(self, session: Session, account_key: str) -> None:
        """Deliver the private messages kept for C{account_key} while it was offline."""

        def deliver(messages: list[OfflineMessage]) -> None:
            for message in messages:
                event = PrivateMessage(message.sender, message.recipient, message.text, message.when, stored=True)
                self._delivery.write(session, event)

        def failed(failure: Failure) -> None:
            log.failure("reading the offline messages of {nick} failed", failure, nick=session.nick)

        self._delivery.after(self._store.take_offline(account_key), deliver, failed)
