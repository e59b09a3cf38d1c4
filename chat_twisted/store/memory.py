"""
An L{IChatStore} in memory: nothing survives the process. Used by unit tests and as the
reference the store contract tests hold every other store to. Every Deferred it returns has
already fired.
"""

from __future__ import annotations

from collections import defaultdict, deque

from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from chat_twisted.interfaces import IChatStore
from chat_twisted.model import Account, OfflineMessage, StoredMessage

#: How many messages per room the memory store keeps.
MEMORY_HISTORY = 10_000


@implementer(IChatStore)
class MemoryStore:
    """Keeps history (the newest L{MEMORY_HISTORY} per room), accounts and offline messages in dicts."""

    def __init__(self) -> None:
        self._history: defaultdict[str, deque[StoredMessage]] = defaultdict(
            lambda: deque(maxlen=MEMORY_HISTORY)
        )
        self._topics: dict[str, str] = {}
        self._accounts: dict[str, Account] = {}
        self._offline: defaultdict[str, list[OfflineMessage]] = defaultdict(list)
        self.batch_runner = None  # appends fire at once, never in batches

    def start(self) -> Deferred[None]:
        """Nothing to open."""
        return succeed(None)

    def stop(self) -> Deferred[None]:
        """Nothing to close."""
        return succeed(None)

    def append_message(self, room_key: str, message: StoredMessage) -> Deferred[None]:
        """Append C{message} to the room's history; a topic message also sets the room's topic."""
        self._history[room_key].append(message)
        if message.kind == "topic":
            self._topics[room_key] = message.text
        return succeed(None)

    def recent_messages(self, room_key: str, limit: int) -> Deferred[list[StoredMessage]]:
        """Return the newest C{limit} messages of the room, oldest first."""
        history = self._history.get(room_key, ())
        return succeed(list(history)[-limit:] if limit > 0 else [])

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
