"""
An L{IChatStore} in memory: nothing survives the process. Used by unit tests and as the
reference the store contract tests hold every other store to. Every Deferred it returns has
already fired.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Collection
from dataclasses import replace

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from chat_twisted.interfaces import IChatStore
from chat_twisted.model import Account, Ban, HistoryPoint, OfflineMessage, RoomRecord, StoredMessage, StoredRoom
from chat_twisted.store.search import text_matcher

#: How many messages per room the memory store keeps.
MEMORY_HISTORY = 10_000


def _beyond(message: StoredMessage, point: HistoryPoint | None, side: int) -> bool:
    """Whether C{message} lies strictly after (C{side} 1) or before (-1) C{point}; True without one."""
    if point is None:
        return True
    if point.id is not None:
        return (message.id - point.id) * side > 0
    assert point.when is not None
    return (message.when - point.when) * side > 0


@implementer(IChatStore)
class MemoryStore:
    """
    Keeps history (the newest L{MEMORY_HISTORY} per room), accounts, offline messages, claimed
    rooms and server bans in dicts.
    """

    def __init__(self) -> None:
        self._history: defaultdict[str, deque[StoredMessage]] = defaultdict(
            lambda: deque(maxlen=MEMORY_HISTORY)
        )
        self._topics: dict[str, str] = {}
        self._accounts: dict[str, Account] = {}
        self._offline: defaultdict[str, list[OfflineMessage]] = defaultdict(list)
        self._rooms: dict[str, RoomRecord] = {}
        self._server_bans: dict[str, Ban] = {}
        self._last_id = 0
        self.batch_runner = None  # appends fire at once, never in batches

    def start(self) -> Deferred[None]:
        """Nothing to open."""
        return succeed(None)

    def stop(self) -> Deferred[None]:
        """Nothing to close."""
        return succeed(None)

    def append_message(self, room_key: str, message: StoredMessage) -> Deferred[int]:
        """Append C{message} to the room's history with the next id; a topic also sets the room's topic."""
        self._last_id += 1
        self._history[room_key].append(replace(message, id=self._last_id))
        if message.kind == "topic":
            self._topics[room_key] = message.text
        return succeed(self._last_id)

    def recent_messages(self, room_key: str, limit: int) -> Deferred[list[StoredMessage]]:
        """Return the newest C{limit} messages of the room, oldest first."""
        return self.find_messages(room_key, limit, newest=True)

    def find_messages(
        self,
        room_key: str,
        limit: int,
        after: HistoryPoint | None = None,
        before: HistoryPoint | None = None,
        newest: bool = False,
    ) -> Deferred[list[StoredMessage]]:
        """Return at most C{limit} messages between the bounds, oldest first (see L{IChatStore})."""
        if limit <= 0:
            return succeed([])
        found = [message for message in self._history.get(room_key, ())
                 if _beyond(message, after, 1) and _beyond(message, before, -1)]
        return succeed(found[-limit:] if newest else found[:limit])

    def search_messages(
        self, room_keys: Collection[str], text: str, limit: int, before: int | None = None
    ) -> Deferred[list[StoredMessage]]:
        """Return at most C{limit} messages of those rooms matching C{text}, newest first (see L{IChatStore})."""
        matches = text_matcher(text)
        if matches is None or limit <= 0:
            return succeed([])
        found = [message for key in set(room_keys) for message in self._history.get(key, ())
                 if (before is None or message.id < before) and matches(message.text)]
        found.sort(key=lambda message: message.id, reverse=True)
        return succeed(found[:limit])

    def room_topics(self) -> Deferred[dict[str, str]]:
        """Return every room's current topic by room key."""
        return succeed(dict(self._topics))

    def get_account(self, nick_key: str) -> Deferred[Account | None]:
        """Return the account registered under C{nick_key}, if any."""
        return succeed(self._accounts.get(nick_key))

    def create_account(self, nick_key: str, account: Account) -> Deferred[bool]:
        """Register C{account} unless the key is taken."""
        if nick_key in self._accounts:
            return succeed(False)
        self._accounts[nick_key] = account
        return succeed(True)

    def set_password_hash(self, nick_key: str, password_hash: str) -> Deferred[None]:
        """Replace an account's password hash."""
        account = self._accounts[nick_key]
        self._accounts[nick_key] = Account(account.nick, password_hash, account.created)
        return succeed(None)

    def queue_offline(self, recipient_key: str, message: OfflineMessage, limit: int) -> Deferred[bool]:
        """Keep C{message} unless C{limit} are already waiting."""
        waiting = self._offline[recipient_key]
        if len(waiting) >= limit:
            return succeed(False)
        waiting.append(message)
        return succeed(True)

    def take_offline(self, recipient_key: str) -> Deferred[list[OfflineMessage]]:
        """Return and forget the messages waiting for C{recipient_key}."""
        return succeed(self._offline.pop(recipient_key, []))

    def prune_messages(self, older_than: float | None, keep_per_room: int | None, batch: int) -> Deferred[int]:
        """Delete at most C{batch} of the messages due (see L{IChatStore}), oldest first; return how many."""
        due: list[tuple[int, str]] = []
        for room_key, history in self._history.items():
            excess = len(history) - keep_per_room if keep_per_room is not None else 0
            due.extend((message.id, room_key) for position, message in enumerate(history)
                       if position < excess or (older_than is not None and message.when < older_than))
        doomed = sorted(due)[:max(batch, 0)]
        ids = {message_id for message_id, _ in doomed}
        for room_key in {room_key for _, room_key in doomed}:
            history = self._history[room_key]
            kept = [message for message in history if message.id not in ids]
            history.clear()
            history.extend(kept)
        return succeed(len(doomed))

    def expire_offline(self, older_than: float) -> Deferred[int]:
        """Forget the offline messages sent before C{older_than}; return how many."""
        expired = 0
        for recipient_key, waiting in list(self._offline.items()):
            kept = [message for message in waiting if message.when >= older_than]
            expired += len(waiting) - len(kept)
            if kept:
                self._offline[recipient_key] = kept
            else:
                del self._offline[recipient_key]
        return succeed(expired)

    def list_accounts(self) -> Deferred[list[Account]]:
        """Return every account, in the order of their keys."""
        return succeed([self._accounts[key] for key in sorted(self._accounts)])

    def delete_account(self, nick_key: str) -> Deferred[bool]:
        """Forget the account and its offline messages; return whether there was one."""
        self._offline.pop(nick_key, None)
        return succeed(self._accounts.pop(nick_key, None) is not None)

    def room_summaries(self) -> Deferred[list[StoredRoom]]:
        """Return each room with messages: its latest name, how many it has, when the newest was sent."""
        return succeed([StoredRoom(history[-1].room, len(history), history[-1].when)
                        for key, history in sorted(self._history.items()) if history])

    def save_room(self, record: RoomRecord) -> Deferred[None]:
        """Keep C{record} (frozen: it is kept as it is), replacing any kept under its key."""
        self._rooms[record.key] = record
        return succeed(None)

    def delete_room(self, room_key: str) -> Deferred[bool]:
        """Forget the room record kept under C{room_key}; return whether there was one."""
        return succeed(self._rooms.pop(room_key, None) is not None)

    def claimed_rooms(self) -> Deferred[list[RoomRecord]]:
        """Return every kept room record, in the order of their keys."""
        return succeed([self._rooms[key] for key in sorted(self._rooms)])

    def add_server_ban(self, ban: Ban) -> Deferred[None]:
        """Keep the server ban C{ban}, replacing any with the same mask."""
        self._server_bans[ban.mask] = ban
        return succeed(None)

    def remove_server_ban(self, mask: str) -> Deferred[bool]:
        """Forget the server ban of C{mask}; return whether there was one."""
        return succeed(self._server_bans.pop(mask, None) is not None)

    def server_bans(self) -> Deferred[list[Ban]]:
        """Return every server ban, expired or not, in the order of their masks."""
        return succeed([self._server_bans[mask] for mask in sorted(self._server_bans)])
