"""
Helpers shared by the tests (plain functions and classes; the shared fixtures are in
tests/conftest.py): a core on a fake clock and users of it, line, IRC and web connections on
StringTransports, slow stores and hashers, the terminal client's sides and screens, and a
self-signed certificate. No sockets and no reactor, except where a helper's name says so.
"""

from __future__ import annotations

import base64
import datetime
from datetime import timezone
import ipaddress
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher as Argon2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.conch.insults import helper, insults
from twisted.internet import error
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport, StringTransportWithDisconnection
from twisted.python.failure import Failure
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, RejectData, Request, TextMessage

from chat_twisted import requests as rq
from chat_twisted.client import ChatClient, Console, InteractiveTerminal, ServerSide, TerminalSide
from chat_twisted.core import ChatService
from chat_twisted.errors import Busy, ChatError
from chat_twisted.model import ErrorReply, Event, StoredMessage
from chat_twisted.passwords import PasswordHasher
from chat_twisted.sessions import Session
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.irc import IrcFactory, IrcProtocol
from chat_twisted.wire.line import LineChatFactory, LineChatProtocol
from chat_twisted.wire.slash import SlashSession
from chat_twisted.wire.text import render
from chat_twisted.wire.web import WebChatFactory, make_site
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


# --- the core through the slash dialect --------------------------------------------------------


@dataclass
class User:
    """One test user: the fake client the core delivers to and the slash dialect lines are fed into."""

    client: RecordingClient
    dialect: SlashSession

    @property
    def session(self) -> Session:
        """The core session under the dialect."""
        return self.dialect.session

    def send(self, line: str) -> list[Event]:
        """Feed C{line} to the dialect and return what this user received because of it."""
        self.dialect.handle_line(line)
        return self.client.take()

    def take(self) -> list[Event]:
        """Return the events received since the last look."""
        return self.client.take()


def connect(core: ChatService, peer: str = "127.0.0.1:50000") -> User:
    """Connect a user that has not logged in yet (the line door would greet it; the dialect does not)."""
    client = RecordingClient(peer)
    user = User(client, SlashSession(core.connect(client, peer)))
    assert user.take() == []
    return user


def login(core: ChatService, *nicks: str) -> list[User]:
    """Log in one user per nickname, in order, and forget every event their logins produced."""
    users = [User(*logged_in(core, nick, f"127.0.0.1:{40000 + i}")) for i, nick in enumerate(nicks)]  # type: ignore[arg-type]
    clear(*users)
    return users


def clear(*users: User) -> None:
    """Forget every event the users have received so far."""
    for user in users:
        user.take()


# --- accounts and passwords --------------------------------------------------------------------


#: The password the tests register accounts with.
PASSWORD = "s3cret-pw"


class CountingHasher:
    """The inline Argon2id hasher, counting how many passwords it was asked to check."""

    def __init__(self) -> None:
        self._hasher = inline_hasher()
        self.verified = 0

    def hash(self, password: str) -> Deferred[str]:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> Deferred[bool]:
        self.verified += 1
        return self._hasher.verify(password_hash, password)


class SwitchedHasher(CountingHasher):
    """The counting hasher, refusing every hash and check with Busy while C{busy} is set."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def hash(self, password: str) -> Deferred[str]:
        return fail(Busy()) if self.busy else super().hash(password)

    def verify(self, password_hash: str, password: str) -> Deferred[bool]:
        return fail(Busy()) if self.busy else super().verify(password_hash, password)


# --- a store that commits when the test says ---------------------------------------------------


class ManualStore(MemoryStore):
    """
    A MemoryStore whose appends wait, like a slow database, until the test commits or fails
    them (oldest first). As the store contract requires, reads include appends not yet fired.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[tuple[str, StoredMessage | None, Deferred[None]]] = []

    def append_message(self, room_key: str, message: StoredMessage) -> Deferred[None]:
        waiting: Deferred[None] = Deferred()
        self.pending.append((room_key, message, waiting))
        return waiting

    def _store_waiting(self) -> None:
        """Like SqliteStore, put waiting appends in the history before reading it."""
        for key, message, _ in self.pending:
            if message is not None:
                super().append_message(key, message)
        self.pending = [(key, None, waiting) for key, _, waiting in self.pending]

    def recent_messages(self, room_key: str, limit: int) -> Deferred[list[StoredMessage]]:
        self._store_waiting()
        return super().recent_messages(room_key, limit)

    def find_messages(self, room_key: str, limit: int, *args: Any, **kwargs: Any) -> Deferred[list[StoredMessage]]:
        self._store_waiting()
        return super().find_messages(room_key, limit, *args, **kwargs)

    def commit(self) -> None:
        """Store the oldest waiting message (unless a read already did) and fire its Deferred."""
        room_key, message, waiting = self.pending.pop(0)
        if message is not None:
            super().append_message(room_key, message)
        waiting.callback(None)

    def fail(self) -> None:
        """Fail the oldest waiting append."""
        _, _, waiting = self.pending.pop(0)
        waiting.errback(Failure(OSError("disk full")))


# --- the web door over a StringTransport -------------------------------------------------------


def site_for(core: ChatService, **options: Any) -> Any:
    """The web site over C{core} with flood control off unless given."""
    options.setdefault("rate", 0.0)
    allowed = options.pop("allowed", ())
    return make_site(WebChatFactory(core, **options), allowed)


class HttpConnection:
    """One HTTP connection to the site over a StringTransport."""

    def __init__(self, site: Any, port: int = 50000) -> None:
        self.transport = StringTransportWithDisconnection(peerAddress=IPv4Address("TCP", "127.0.0.1", port),
                                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
        self.protocol = site.buildProtocol(self.transport.getPeer())
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send a GET and return the status, headers (lower-case names) and body."""
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1:8080"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.protocol.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        self.transport.clear()
        status_line, *header_lines = head.decode().split("\r\n")
        parsed = {name.lower(): value for name, _, value in (line.partition(": ") for line in header_lines)}
        return int(status_line.split()[1]), parsed, body


class WebSocketUser:
    """A browser's WebSocket to the site: send JSON requests, read JSON events."""

    def __init__(self, site: Any, port: int = 50000, origin: str | None = "http://127.0.0.1:8080") -> None:
        self.http = HttpConnection(site, port)
        self.client = WSConnection(ConnectionType.CLIENT)
        headers = [("Origin", origin)] if origin is not None else []
        self.http.protocol.dataReceived(self.client.send(Request(host="127.0.0.1:8080", target="/ws",
                                                                 extra_headers=headers)))
        self.closed: CloseConnection | None = None
        self.accepted = False
        self.rejected_status: int | None = None
        self.events: list[dict[str, Any]] = []
        self._read()

    @property
    def transport(self) -> StringTransportWithDisconnection:
        """The TCP side of the connection."""
        return self.http.transport

    def _read(self) -> None:
        data = self.transport.value()
        self.transport.clear()
        self.client.receive_data(data)
        for event in self.client.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, RejectConnection):
                self.rejected_status = event.status_code
            elif isinstance(event, (RejectData, Ping)):
                pass
            elif isinstance(event, TextMessage):
                self.events.append(json.loads(event.data))
            elif isinstance(event, CloseConnection):
                self.closed = event

    def send(self, request: dict[str, Any] | str) -> None:
        """Send one request (a dict as JSON; a str as it is)."""
        text = request if isinstance(request, str) else json.dumps(request)
        self.send_raw(self.client.send(TextMessage(text)))

    def send_raw(self, data: bytes) -> None:
        """Feed bytes as they are."""
        self.http.protocol.dataReceived(data)

    def take(self) -> list[dict[str, Any]]:
        """The events received since the last call."""
        self._read()
        events, self.events = self.events, []
        return events

    def login(self, nick: str, *rooms: str) -> list[dict[str, Any]]:
        """Log in as C{nick} (and join C{rooms}); return what that brought."""
        self.take()
        self.send({"type": "login", "nick": nick})
        for room in rooms:
            self.send({"type": "join", "room": room})
        return self.take()


# --- the IRC door: channels, line users beside them, capabilities ------------------------------


#: The source of every line the IRC server sends.
S = ":chat.twisted"


def mask(nick: str) -> str:
    """The C{nick!user@host} the door shows a user with."""
    return f"{nick}!{nick[:10]}@chat.twisted"


def setup(**options: Any) -> tuple[IrcFactory, ChatService, Clock]:
    """An IRC factory over a fresh core, flood control off unless C{rate} is given."""
    options.setdefault("rate", 0.0)
    return make_irc_factory(**options)


def in_channel(factory: IrcFactory, *nicks: str, channel: str = "#lobby") -> list[IrcConnection]:
    """Register each of C{nicks}, join them to C{channel} in turn, and clear what everyone was shown."""
    users = []
    for port, nick in enumerate(nicks, start=41000):
        user = irc_user(factory, nick, port)
        user.send_lines(f"JOIN {channel}")
        users.append(user)
    for user in users:
        user.lines()
    return users


def with_line_users(factory: IrcFactory) -> LineChatFactory:
    """A line factory over the IRC factory's core: its users start in the lobby, which is #lobby."""
    return LineChatFactory(factory.service)


def isupport_tokens(burst: list[str]) -> dict[str, str]:
    """The RPL_ISUPPORT tokens in C{burst}'s 005 lines, as a dict (value '' for a bare token)."""
    tokens: dict[str, str] = {}
    for text in burst:
        if " 005 " in text:
            words, _, trailing = text.partition(" :")
            assert trailing == "are supported by this server"
            for token in words.split()[3:]:
                key, _, value = token.partition("=")
                tokens[key] = value
    return tokens


def register_account(factory: IrcFactory, nick: str, port: int = 42000, stay: bool = False) -> LineConnection:
    """Register C{nick} with L{PASSWORD} through a line user, who then quits unless C{stay}."""
    user = line_user(with_line_users(factory), nick, port)
    user.send(f"/register {PASSWORD}\n")
    if not stay:
        user.send("/quit\n")
    user.lines()
    return user


def with_caps(factory: IrcFactory, nick: str, caps: str, port: int = 41000, channel: str | None = "#lobby") -> IrcConnection:
    """An IRC user that negotiated C{caps} before registering, joined to C{channel}, everything read."""
    connection = IrcConnection(factory, port)
    connection.send_lines("CAP LS 302", f"CAP REQ :{caps}", f"NICK {nick}", f"USER {nick} 0 * :{nick}", "CAP END")
    if channel is not None:
        connection.send_lines(f"JOIN {channel}")
    connection.lines()
    return connection


def plain(*fields: str) -> str:
    """SASL PLAIN credentials, base64-encoded."""
    return base64.b64encode("\0".join(fields).encode("utf-8")).decode("ascii")


# --- the terminal client -----------------------------------------------------------------------


class ServerConnection:
    """A L{ServerSide} on its own StringTransport: feed it server bytes, read what it sent."""

    def __init__(self, client: ChatClient, tls: bool = False) -> None:
        self.transport = StringTransportWithDisconnection()
        self.protocol = ServerSide(client, tls=tls)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    def receive(self, data: bytes) -> None:
        """Deliver C{data} from the server as one read."""
        self.protocol.dataReceived(data)

    def sent(self) -> list[bytes]:
        """Return the lines sent to the server since the last call (each checked to end in CRLF)."""
        raw = self.transport.value()
        self.transport.clear()
        assert raw == b"" or raw.endswith(b"\r\n"), raw
        return raw.split(b"\r\n")[:-1]

    def close(self) -> None:
        """The server closes the connection."""
        self.transport.loseConnection()


class TerminalConnection:
    """A L{TerminalSide} on its own StringTransport: type bytes in, read the lines shown."""

    def __init__(self, protocol: TerminalSide, transport: StringTransport | None = None) -> None:
        self.transport = StringTransportWithDisconnection() if transport is None else transport
        self.protocol = protocol
        self.transport.protocol = protocol
        self.protocol.makeConnection(self.transport)

    def type(self, data: bytes) -> None:
        """The user types C{data} (one read from standard input)."""
        self.protocol.dataReceived(data)

    def end_input(self) -> None:
        """Standard input reaches its end (Ctrl-D or the end of a pipe)."""
        self.protocol.readConnectionLost()

    def shown(self) -> list[str]:
        """Return the lines shown since the last call (each checked to end in LF) and clear them."""
        raw = self.transport.value()
        self.transport.clear()
        assert raw == b"" or raw.endswith(b"\n"), raw
        return raw.decode("utf-8").split("\n")[:-1]


def attach_terminal(client: ChatClient, transport: StringTransport | None = None) -> TerminalConnection:
    """Attach a new L{TerminalSide} of C{client} to C{transport} (by default one that reports its close)."""
    return TerminalConnection(TerminalSide(client), transport)


def result_of(d: Deferred[Any]) -> Any:
    """Return what the already-fired C{d} fired with (a Failure if it failed), consuming it."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    return results[0]


def exit_code(d: Deferred[Any]) -> object:
    """Return the code of the C{SystemExit} that the already-fired C{d} failed with."""
    failure = result_of(d)
    assert isinstance(failure, Failure), failure
    failure.trap(SystemExit)
    return failure.value.code


class FakeStdio:
    """Stands in for C{twisted.internet.stdio}: StandardIO attaches the protocol to a StringTransport."""

    def __init__(self) -> None:
        self.terminals: list[TerminalConnection] = []

    def StandardIO(self, protocol: TerminalSide, reactor: object = None) -> StringTransportWithDisconnection:
        terminal = TerminalConnection(protocol)
        self.terminals.append(terminal)
        return terminal.transport


class PipedConsole(Console):
    """A console whose standard input and output are not terminals (as under a pipe), whatever pytest's are."""

    def is_interactive(self) -> bool:
        return False


def accept(reactor: MemoryReactorClock) -> StringTransportWithDisconnection:
    """Complete the client's pending TCP connection on C{reactor}; return the server-side transport."""
    host, port, factory, _, _ = reactor.tcpClients[-1]
    protocol = factory.buildProtocol(IPv4Address("TCP", host, port))
    transport = StringTransportWithDisconnection()
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return transport


#: Keys as a terminal in raw mode sends them.
UP, DOWN, RIGHT, LEFT = b"\x1b[A", b"\x1b[B", b"\x1b[C", b"\x1b[D"
HOME, END, DELETE, INSERT = b"\x1b[1~", b"\x1b[4~", b"\x1b[3~", b"\x1b[2~"
BACKSPACE, CTRL_C, CTRL_D, CTRL_L = b"\x7f", b"\x03", b"\x04", b"\x0c"


class Screen:
    """An in-memory terminal of C{width} x C{height} cells, fed the bytes a program writes (ASCII only)."""

    def __init__(self, width: int, height: int) -> None:
        self.buffer = helper.TerminalBuffer()
        self.buffer.width, self.buffer.height = width, height
        self.parser = insults.ClientProtocol(lambda: self.buffer)
        self.parser.makeConnection(StringTransport())

    def feed(self, data: bytes) -> None:
        """Write C{data} to the terminal."""
        self.parser.dataReceived(data)

    def rows(self) -> list[str]:
        """Return every row of the screen, trailing blanks removed."""
        return [row.rstrip() for row in bytes(self.buffer).decode("ascii").split("\n")]

    def text(self) -> list[str]:
        """Return the rows from the first to the last non-empty one."""
        rows = self.rows()
        while rows and not rows[-1]:
            rows.pop()
        return rows

    @property
    def cursor(self) -> tuple[int, int]:
        """The cursor's (column, row)."""
        return (self.buffer.x, self.buffer.y)

    def foreground(self, column: int, row: int) -> int:
        """The colour number (0-7, 7 being the default white) of the character at C{column}, C{row}."""
        return self.buffer.getCharacter(column, row)[1].foreground


class TerminalUnderTest:
    """An InteractiveTerminal of C{client} under ServerProtocol on a StringTransport, shown on a L{Screen}."""

    def __init__(self, client: ChatClient, width: int = 40, height: int = 10, colour: bool = False) -> None:
        self.protocol = InteractiveTerminal(client, colour=colour, size=(width, height))
        self.insults = insults.ServerProtocol(lambda: self.protocol)
        self.transport = StringTransportWithDisconnection()
        self.transport.protocol = self.insults
        self.screen = Screen(width, height)
        self.insults.makeConnection(self.transport)

    def type(self, data: bytes) -> None:
        """The user types C{data} (raw bytes, as a terminal in raw mode sends them)."""
        self.insults.dataReceived(data)

    def written(self) -> bytes:
        """Return what was written to the terminal since the last call (and show it on the screen)."""
        data = self.transport.value()
        self.transport.clear()
        self.screen.feed(data)
        return data

    def text(self) -> list[str]:
        """Return the screen's rows, first to last non-empty, after showing what was written."""
        self.written()
        return self.screen.text()

    @property
    def line(self) -> bytes:
        """The line being typed."""
        return b"".join(self.protocol.lineBuffer)


def make_session(
    width: int = 40, height: int = 10, nick: str | None = "alice", colour: bool = False
) -> tuple[ChatClient, Clock, ServerConnection, TerminalUnderTest]:
    """A client with its server connected (greeting read) and an interactive terminal attached."""
    clock = Clock()
    client = ChatClient(clock, nick=nick)
    server = ServerConnection(client)
    server.sent()
    terminal = TerminalUnderTest(client, width, height, colour)
    return client, clock, server, terminal


class Dialler:
    """Stands in for C{endpoint.connect(factory)}: each call is one attempt, fired by the test."""

    def __init__(self) -> None:
        self.attempts: list[Deferred[Any]] = []

    def __call__(self) -> Deferred[Any]:
        attempt: Deferred[Any] = Deferred()
        self.attempts.append(attempt)
        return attempt

    def refuse(self) -> None:
        """The last attempt is refused."""
        self.attempts[-1].errback(Failure(error.ConnectionRefusedError()))


def client_command(port: int, *args: str) -> list[str]:
    """The client program against 127.0.0.1:C{port} (colour allowed whatever NO_COLOR says here)."""
    return ["env", "-u", "NO_COLOR", sys.executable, "-m", "chat_twisted.client", "--port", str(port), *args]


# --- TLS ---------------------------------------------------------------------------------------


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    """Write key.pem and cert.pem (self-signed, for localhost and 127.0.0.1) into C{directory}."""
    key = ec.generate_private_key(ec.SECP256R1())  # quicker to make than RSA
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path
