"""
Sessions: one connection's standing in the chat, and the directory of who is online.

A L{Session} is what the core hands a door for each connection; the door submits the user's
requests through it and reports the end of the connection. L{Directory} maps nicknames to the
sessions logged in under them. Both are plain state owned by the core; nothing here touches a
transport.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall

from chat_twisted.errors import ChatError
from chat_twisted.interfaces import IChatClient
from chat_twisted.model import Event, name_key
from chat_twisted.requests import Request

if TYPE_CHECKING:
    from chat_twisted.core import ChatService
    from chat_twisted.rooms import Room

#: The reason others are shown when a connection ends without a quit.
CONNECTION_LOST = "connection lost"


class Session:
    """
    One connection's standing in the chat: its client, nickname (None until logged in), the rooms
    it is in (in the order it joined them), the registered account it has proved it owns (None
    for a guest), and its away message.

    Created by L{ChatService.connect} and handed to the door. The core alone changes its fields.
    """

    __slots__ = (
        "client", "peer", "address", "nick", "rooms", "account", "proven", "away", "closed", "login_timer",
        "unflushed", "connected_at", "active_at", "door", "seen", "_service",
    )

    def __init__(self, service: ChatService, client: IChatClient, peer: str, now: float, door: str = "line") -> None:
        self._service = service
        self.client = client
        self.peer = peer
        self.door = door  # the door it came through, by name (line, irc, web)
        self.address = peer.rpartition(":")[0] or peer
        self.nick: str | None = None
        self.rooms: dict[str, Room] = {}  # by room key, in the order joined
        self.account: str | None = None
        self.proven: str | None = None  # an account whose password was proven before login
        self.away = ""
        self.closed = False
        self.login_timer: IDelayedCall | None = None
        self.unflushed = False  # delivered to since the core last flushed it
        self.connected_at = self.active_at = now
        self.seen: dict[str, frozenset[int]] | None = None  # in a cluster: ids its join history showed, by room

    def submit(self, request: Request) -> Deferred[None]:
        """
        Ask the core to do C{request} for this user. What it changes and what it answers arrive
        through the client; the Deferred fires with None once it has taken effect, or fails with
        the L{ChatError} saying why it could not (never with anything else). A door should hold
        this connection's next request until then, so that each user's requests act in order.
        """
        return self._service.submit(self, request)

    def show(self, event: Event) -> None:
        """Deliver an event the door made itself (a prompt, its own error) in turn with the core's."""
        self._service.delivery.to(self, event)

    def end(self, reason: str, error: ChatError | None = None) -> None:
        """
        End this connection for a reason the door found (flooding, a wrong protocol): after
        what is already on its way, an error if C{error}, then the close; the user's rooms see
        them leave with C{reason}.
        """
        self._service.end(self, reason, error)

    def flood_waited(self) -> None:
        """Flood control made this connection's next input wait (the core counts it)."""
        self._service.metrics.flood_wait()

    def disconnected(self, reason: str = CONNECTION_LOST) -> None:
        """Tell the core the connection has ended; safe to call more than once."""
        self._service.disconnect(self, reason)


@dataclass(eq=False)
class RemoteUser:
    """
    A user logged in on another process of the cluster, as this process knows them from the
    bus: nickname, the process they are on, account key, away message, the keys of their rooms,
    and when they connected.
    """

    nick: str
    process: str
    account: str | None = None
    away: str = ""
    rooms: dict[str, None] = field(default_factory=dict)  # an ordered set, in the order joined
    since: float = 0.0


class Directory:
    """
    Who is online: each logged-in session by its nickname's key, and the sessions identified
    to each registered account (under whatever nickname), by the account's key; and, in a
    cluster, the users of the other processes (L{remote}, by nickname key). Owned by the core.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, Session] = {}
        self._by_account: dict[str, list[Session]] = {}  # in the order they were identified
        self.remote: dict[str, RemoteUser] = {}

    @property
    def online(self) -> int:
        """How many users are logged in, on this process and the others."""
        return len(self._by_key) + len(self.remote)

    def find_remote(self, nick: str) -> RemoteUser | None:
        """The user of another process called C{nick}, or identified to the account C{nick}; or None."""
        key = name_key(nick)
        found = self.remote.get(key)
        if found is None:
            found = next((user for user in self.remote.values() if user.account == key), None)
        return found

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Session]:
        """Every logged-in session."""
        return iter(list(self._by_key.values()))

    def find(self, nick: str) -> Session | None:
        """Return the session logged in as C{nick} (compared without regard to case), or None."""
        return self._by_key.get(name_key(nick))

    def find_account(self, account: str) -> Session | None:
        """Return the session most recently identified to the account named C{account}, or None."""
        sessions = self._by_account.get(name_key(account))
        return sessions[-1] if sessions else None

    def add(self, session: Session) -> None:
        """Record C{session} under its nickname (and its account, if it has one)."""
        assert session.nick is not None
        self._by_key[name_key(session.nick)] = session
        if session.account is not None:
            self._by_account.setdefault(session.account, []).append(session)

    def remove(self, nick: str) -> None:
        """Forget whoever is recorded under C{nick}."""
        session = self._by_key.pop(name_key(nick))
        if session.account is not None:
            self._forget_account(session)

    def identify(self, session: Session, account: str) -> None:
        """Make logged-in C{session} identified to C{account} (an account's key)."""
        if session.account is not None:
            self._forget_account(session)
        session.account = account
        self._by_account.setdefault(account, []).append(session)

    def _forget_account(self, session: Session) -> None:
        assert session.account is not None
        sessions = self._by_account[session.account]
        sessions.remove(session)
        if not sessions:
            del self._by_account[session.account]
