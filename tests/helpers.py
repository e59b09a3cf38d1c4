"""Small helpers shared by the tests: building a core and line connections without sockets."""

from __future__ import annotations

from datetime import timezone

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection

from typing import Any

from argon2 import PasswordHasher as Argon2
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.python.failure import Failure

from chat_twisted import requests as rq
from chat_twisted.core import ChatService
from chat_twisted.errors import ChatError
from chat_twisted.model import ErrorReply
from chat_twisted.passwords import PasswordHasher
from chat_twisted.sessions import Session
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.line import LineChatFactory, LineChatProtocol
from chat_twisted.wire.slash import SlashSession
from chat_twisted.wire.text import render
from tests.fakes import RecordingClient

#: 2026-01-02 03:04:05 UTC, a clock reading every test can reason about.
START = 1767323045.0


def inline_hasher() -> PasswordHasher:
    """A real Argon2id hasher with cheap parameters that hashes on the calling thread (tests only)."""
    return PasswordHasher(maybeDeferred, Argon2(time_cost=1, memory_cost=64, parallelism=1))


def make_core(start: float = START, **options: object) -> tuple[ChatService, Clock]:
    """Return a ChatService in UTC on a fake clock set to C{start}, with an in-memory store."""
    clock = Clock()
    clock.advance(start)
    options.setdefault("store", MemoryStore())
    options.setdefault("hasher", inline_hasher())
    options.setdefault("timezone", timezone.utc)
    return ChatService(clock=clock, **options), clock  # type: ignore[arg-type]


class ErrorText:
    """
    Matches an L{ErrorReply} whose line-protocol form is C{error: <text>}: for tests whose point
    is the words a line user reads, whatever typed error the core gave.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorReply) and render(other, timezone.utc) == [f"error: {self.text}"]

    def __repr__(self) -> str:
        return f"ErrorText({self.text!r})"


def logged_in(core: ChatService, nick: str, peer: str = "127.0.0.1:40000") -> tuple[RecordingClient, SlashSession]:
    """Connect a RecordingClient, log it in as C{nick} through the slash dialect, forget its greeting events."""
    client = RecordingClient(peer)
    dialect = SlashSession(core.connect(client, peer))
    dialect.handle_line(nick)
    client.take()
    return client, dialect


class LineConnection:
    """One line-protocol connection on a StringTransport: feed bytes in, read lines out."""

    def __init__(self, factory: LineChatFactory, port: int = 40000) -> None:
        self.transport = StringTransportWithDisconnection(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        self.protocol: LineChatProtocol = factory.buildProtocol(self.transport.getPeer())
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    def send(self, data: bytes | str) -> None:
        """Feed C{data} to the protocol as one read (a str is UTF-8 encoded)."""
        self.protocol.dataReceived(data.encode("utf-8") if isinstance(data, str) else data)

    def lines(self) -> list[str]:
        """Return the lines written since the last call (CRLF checked and removed) and clear them."""
        raw = self.transport.value()
        self.transport.clear()
        assert raw == b"" or raw.endswith(b"\r\n"), raw
        return [line for line in raw.decode("utf-8").split("\r\n")[:-1]]


def make_line_factory(max_line: int = 4096) -> tuple[LineChatFactory, ChatService, Clock]:
    """Return a line factory over a fresh core on a fake clock."""
    core, clock = make_core()
    return LineChatFactory(core, max_line=max_line), core, clock


def line_user(factory: LineChatFactory, nick: str, port: int = 40000) -> LineConnection:
    """Return a line connection already logged in as C{nick}, its greeting read and cleared."""
    connection = LineConnection(factory, port)
    connection.send(nick + "\n")
    connection.lines()
    return connection


def success_result_of(d: Deferred[Any]) -> Any:
    """Return the result of a Deferred that has already fired successfully."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    assert not isinstance(results[0], Failure), results[0]
    return results[0]


def failure_result_of(d: Deferred[Any]) -> Failure:
    """Return the failure of a Deferred that has already failed (and consume it)."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    assert isinstance(results[0], Failure), results[0]
    return results[0]


# --- typed requests straight to the core -------------------------------------------------------


def error_of(d: Deferred[Any]) -> ChatError:
    """Return the ChatError a request's Deferred failed with."""
    failure = failure_result_of(d)
    assert isinstance(failure.value, ChatError), failure
    return failure.value


def user(core: ChatService, nick: str, *rooms: str, port: int = 40000) -> tuple[RecordingClient, Session]:
    """Connect a RecordingClient and log it in as C{nick} into C{rooms} (in order), forgetting what that showed."""
    client = RecordingClient(f"127.0.0.1:{port}")
    session = core.connect(client, client.peer)
    assert success_result_of(session.submit(rq.Login(nick, None, rooms))) is None
    client.take()
    return client, session


def ok(d: Deferred[Any]) -> None:
    """Assert that a request succeeded."""
    assert success_result_of(d) is None


# --- the IRC door ------------------------------------------------------------------------------

from chat_twisted.wire.irc import IrcFactory, IrcProtocol  # noqa: E402


class IrcConnection(LineConnection):
    """
    One IRC connection on a StringTransport. IRC is line-framed like the line door, so the
    transport plumbing (C{send}, C{lines}) is L{LineConnection}'s; this adds IRC's registration.
    """

    protocol: IrcProtocol  # type: ignore[assignment]

    def __init__(self, factory: IrcFactory, port: int = 40000) -> None:
        super().__init__(factory, port)  # type: ignore[arg-type]

    def send_lines(self, *lines: str) -> None:
        """Feed each of C{lines} with its CRLF, all in one read."""
        self.send("".join(text + "\r\n" for text in lines))

    def register(self, nick: str) -> list[str]:
        """Send NICK and USER; return the registration burst (001 to 422), cleared."""
        self.send_lines(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        return self.lines()


def make_irc_factory(core: ChatService | None = None, **options: Any) -> tuple[IrcFactory, ChatService, Clock]:
    """
    Return an IRC factory (C{options} are its settings) over C{core}, or over a fresh core on a
    fake clock; a line factory over the same core puts line users in the same rooms.
    """
    if core is None:
        core, clock = make_core()
    else:
        clock = core.clock  # type: ignore[assignment]
    return IrcFactory(core, **options), core, clock


def irc_user(factory: IrcFactory, nick: str, port: int = 40000) -> IrcConnection:
    """Return an IRC connection already registered as C{nick}, its burst read and cleared."""
    connection = IrcConnection(factory, port)
    connection.register(nick)
    return connection
