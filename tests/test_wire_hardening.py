"""
Tests for the line door's defences (chat_twisted.wire.line): flood control, the input and output
bounds, wrong-protocol detection, TCP tuning, and connections that vanish in the middle of a fan-out.

Every connection is a StringTransport on one shared core with a fake clock (tests.helpers.START);
no sockets, no reactor, no sleeps. Times are checked half a step away from when a held line is due,
so that float rounding of the clock never decides a test.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import IPushProducer, ITCPTransport
from twisted.internet.ssl import CertificateOptions
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport, StringTransportWithDisconnection
from twisted.protocols.tls import TLSMemoryBIOFactory
from wsproto import ConnectionType, WSConnection
from wsproto.events import Request
from zope.interface import implementer

from chat_twisted.core import ChatService, Session
from chat_twisted import requests as rq
from chat_twisted.model import LOBBY, Event, Left, Said, UserQuit
from chat_twisted.wire.slash import SlashSession
from chat_twisted import guard as guard_module
from chat_twisted.wire.line import LineChatFactory
from chat_twisted.wire.web import WebChatFactory, make_site
from tests.fakes import RecordingClient
from tests.helpers import LineConnection, ManualStore, line_user, make_core

RATE, BURST = 5.0, 10
#: Seconds between two held lines at RATE, and half of that.
STEP, HALF = 1 / RATE, 0.5 / RATE
MAX_LINE, MAX_INPUT = 512, 2048
MAX_OUTPUT = 4096

WEB_SERVER = "error: this is a chat server, not a web server"
NOT_UTF8 = "error: line is not valid UTF-8; it was dropped"
#: The start of a TLS ClientHello record, as a client expecting TLS sends it first.
CLIENT_HELLO = bytes.fromhex("16030102000100 01fc0303") + bytes(range(0x80, 0xA0))


# --- helpers -----------------------------------------------------------------------------------


def door(**settings: float) -> tuple[LineChatFactory, Clock]:
    """Return a line factory with C{settings} (flood control at RATE and BURST unless given) on a fresh core."""
    core, clock = make_core()
    settings.setdefault("rate", RATE)
    settings.setdefault("burst", BURST)
    return LineChatFactory(core, **settings), clock  # type: ignore[arg-type]


def room(factory: LineChatFactory, *nicks: str) -> list[LineConnection]:
    """Return connections logged in as C{nicks}, in order, their lines read and their buckets full again."""
    users = [line_user(factory, nick, port=40001 + index) for index, nick in enumerate(nicks)]
    clock = factory.service.clock
    assert isinstance(clock, Clock)
    clock.advance(BURST / RATE)  # the nickname line cost a token
    for user in users:
        user.lines()
    return users


def heard(connection: LineConnection) -> list[str]:
    """Return the lines written to C{connection} since the last read, without their [HH:MM:SS] stamps."""
    return [re.sub(r"^\[\d\d:\d\d:\d\d\] ", "", line) for line in connection.lines()]


def numbered(first: int, last: int, prefix: str = "m") -> bytes:
    """Return the lines C{prefix}C{first} to C{prefix}C{last}, LF-terminated, as one read."""
    return b"".join(f"{prefix}{number}\n".encode() for number in range(first, last + 1))


def said(nick: str, first: int, last: int, prefix: str = "m") -> list[str]:
    """Return how the room shows C{nick} saying the lines of L{numbered}."""
    return [f"{nick}: {prefix}{number}" for number in range(first, last + 1)]


class _Connection(LineConnection):
    """A LineConnection on a transport of the test's choosing."""

    def __init__(self, factory: LineChatFactory, transport: StringTransportWithDisconnection) -> None:
        self.transport = transport
        self.protocol = factory.buildProtocol(transport.getPeer())
        transport.protocol = self.protocol
        self.protocol.makeConnection(transport)


def guard(connection: LineConnection) -> IPushProducer:
    """Return the producer C{connection}'s protocol registered on its transport."""
    producer = connection.transport.producer
    assert producer is not None
    return producer


def send_bytewise(connection: LineConnection, data: bytes) -> None:
    """Feed C{data} to C{connection} one byte per read."""
    for index in range(len(data)):
        connection.send(data[index : index + 1])


# --- flood control -----------------------------------------------------------------------------


def _all_at_once(bob: LineConnection) -> None:
    bob.send(numbered(1, 15))


def _the_rest_while_held(bob: LineConnection) -> None:
    bob.send(numbered(1, 11))
    send_bytewise(bob, numbered(12, 13))
    bob.send(b"m14\r\nm1")
    bob.send(b"5\n")


@pytest.mark.parametrize("flood", [_all_at_once, _the_rest_while_held])
def test_burst_goes_through_at_once_and_the_rest_follows_at_the_rate_in_order(
    flood: Callable[[LineConnection], None],
) -> None:
    """BURST lines are handled at once, then (even if read while held) one per 1/RATE s, in order, none lost."""
    factory, clock = door()
    alice, bob = room(factory, "alice", "bob")
    flood(bob)
    assert heard(alice) == said("bob", 1, 10)
    clock.advance(HALF)
    assert heard(alice) == []
    for number in range(11, 16):
        clock.advance(STEP)
        assert heard(alice) == said("bob", number, number)
    clock.advance(10)
    assert heard(alice) == []


def test_other_clients_never_wait_for_a_held_one() -> None:
    """While bob's lines are held, alice's whole burst is handled at once and reaches the room."""
    factory, _ = door()
    alice, bob, carol = room(factory, "alice", "bob", "carol")
    bob.send(numbered(1, 30))
    carol.lines()
    alice.send(numbered(1, BURST, prefix="a"))
    assert heard(carol) == said("alice", 1, BURST, prefix="a")


@pytest.mark.parametrize(
    ("commands", "free_messages"),
    [
        (["/history", "/history"], 0),
        (["/history"], BURST - 5),
        (["/who"], BURST - 2),
        (["/rooms"], BURST - 2),
        (["/time"], BURST - 1),
        (["/nosuch"], BURST - 1),
        (["//slash"], BURST - 1),
    ],
)
def test_commands_cost_more_than_messages(commands: list[str], free_messages: int) -> None:
    """After C{commands}, exactly as many messages as tokens remain go through at once; the next one waits."""
    factory, clock = door()
    alice, bob = room(factory, "alice", "bob")
    bob.send("".join(command + "\n" for command in commands))
    bob.send(numbered(1, free_messages + 1))
    shown = [f"bob: {command[1:]}" for command in commands if command.startswith("//")]
    assert heard(alice) == shown + said("bob", 1, free_messages)
    clock.advance(HALF)
    assert heard(alice) == []
    clock.advance(STEP)
    assert heard(alice) == said("bob", free_messages + 1, free_messages + 1)


def test_rate_zero_turns_flood_control_off() -> None:
    """With rate 0, a hundred lines in one read are all handled at once."""
    factory, _ = door(rate=0)
    alice, bob = room(factory, "alice", "bob")
    bob.send(numbered(1, 100))
    assert heard(alice) == said("bob", 1, 100)
    assert bob.transport.connected


def test_held_lines_of_a_lost_connection_are_dropped_quietly() -> None:
    """Lines still held when the connection is lost are never handled, and the room sees one departure."""
    factory, clock = door()
    alice, bob = room(factory, "alice", "bob")
    bob.send(numbered(1, 15))
    alice.lines()
    bob.transport.loseConnection()
    clock.advance(10)
    assert heard(alice) == ["* bob left lobby (connection lost)"]


# --- excess flood ------------------------------------------------------------------------------


def _held_bob() -> tuple[Clock, LineConnection, LineConnection]:
    """Return the clock, alice and bob, bob having spent his burst so that his next line is held."""
    factory, clock = door(max_line=MAX_LINE, max_input=MAX_INPUT)
    alice, bob = room(factory, "alice", "bob")
    bob.send(numbered(1, BURST + 1))
    alice.lines()
    bob.lines()
    return clock, alice, bob


#: Exactly MAX_INPUT bytes of 64-byte lines.
AT_THE_BOUND = b"".join(f"p{number:02d}".encode().ljust(63, b".") + b"\n" for number in range(MAX_INPUT // 64))


@pytest.mark.parametrize(
    "reads",
    [
        pytest.param([AT_THE_BOUND + b"x"], id="one-read"),
        pytest.param(
            [AT_THE_BOUND[i : i + 100] for i in range(0, MAX_INPUT, 100)] + [b"x", b"more\n" * 500, b"y"],
            id="many-reads",
        ),
    ],
)
def test_excess_flood_closes_with_one_error(reads: list[bytes]) -> None:
    """Past MAX_INPUT bytes behind a held line: one 'error: excess flood', the connection closed, the room told once."""
    clock, alice, bob = _held_bob()
    for data in reads:
        bob.send(data)
    assert bob.lines() == ["error: excess flood"]
    assert not bob.transport.connected
    assert not bob.transport.disconnected  # closed, not aborted: the error line is flushed first
    assert heard(alice) == ["* bob left lobby (excess flood)"]
    clock.advance(60)
    assert bob.lines() == []
    assert heard(alice) == []


def test_excess_flood_is_refused_once_when_the_transport_closes_later() -> None:
    """On a transport that closes later, as TCP and TLS do, more flooding after the refusal adds no second error."""
    factory, clock = door(max_line=MAX_LINE, max_input=MAX_INPUT)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40002))
    protocol = factory.buildProtocol(transport.getPeer())
    protocol.makeConnection(transport)
    protocol.dataReceived(b"bob\n")
    clock.advance(BURST / RATE)
    transport.clear()
    protocol.dataReceived(numbered(1, BURST + 1) + AT_THE_BOUND + b"x")
    assert transport.disconnecting
    protocol.dataReceived(b"y\n" + AT_THE_BOUND + b"z")
    assert transport.value().decode().count("error:") == 1


def test_input_up_to_the_bound_is_kept_and_handled() -> None:
    """Exactly MAX_INPUT bytes waiting behind a held line are kept, and every line is later handled in order."""
    clock, alice, bob = _held_bob()
    bob.send(AT_THE_BOUND)
    assert bob.lines() == []
    assert bob.transport.connected
    clock.pump([HALF] + [STEP] * (MAX_INPUT // 64 + 1))
    waiting = [line.decode() for line in AT_THE_BOUND.splitlines()]
    assert heard(alice) == said("bob", BURST + 1, BURST + 1) + [f"bob: {text}" for text in waiting]


@pytest.mark.parametrize("chunk", [1, 700, 100_000])
def test_big_legitimate_lines_are_not_a_flood(chunk: int) -> None:
    """Full-length lines within the burst, in reads of any size (beyond MAX_INPUT too), are all handled."""
    factory, _ = door(max_line=MAX_LINE, max_input=MAX_INPUT)
    alice, bob = room(factory, "alice", "bob")
    texts = [f"{number}".ljust(MAX_LINE, "x") for number in range(BURST)]
    data = "".join(text + "\r\n" for text in texts).encode()
    for index in range(0, len(data), chunk):
        bob.send(data[index : index + chunk])
    assert len(data) > MAX_INPUT
    assert heard(alice) == [f"bob: {text}" for text in texts]
    assert bob.transport.connected
    assert not [line for line in bob.lines() if line.startswith("error:")]


# --- slow readers ------------------------------------------------------------------------------


#: One line alice says in the slow-reader tests, and its size as written to the others.
CHATTER = "c" * 100
CHATTER_BYTES = len(f"[03:04:05] alice: {CHATTER}\r\n")
#: How many such lines fit within MAX_OUTPUT.
FITS = MAX_OUTPUT // CHATTER_BYTES


def _slow_room() -> list[LineConnection]:
    """Return alice, bob and carol on a door with MAX_OUTPUT and no flood control."""
    factory, _ = door(rate=0, max_output=MAX_OUTPUT)
    return room(factory, "alice", "bob", "carol")


def _chatter(alice: LineConnection, count: int) -> None:
    alice.send(f"{CHATTER}\n".encode() * count)


def test_output_guard_is_a_streaming_producer_apart_from_reading() -> None:
    """The registered producer is a streaming push producer apart from the protocol: pausing it leaves input flowing."""
    alice, bob, _ = _slow_room()
    producer = guard(bob)
    assert IPushProducer.providedBy(producer)
    assert bob.transport.streaming
    assert producer is not bob.protocol
    producer.pauseProducing()
    bob.send("still talking\n")
    assert heard(alice) == ["bob: still talking"]


def test_slow_reader_is_aborted_past_the_output_bound_and_others_get_everything() -> None:
    """The write taking a paused reader past MAX_OUTPUT aborts it; the others get that message, then one 'too slow'."""
    alice, bob, carol = _slow_room()
    guard(bob).pauseProducing()
    bob.transport.clear()
    for _ in range(FITS):
        _chatter(alice, 1)
        assert bob.transport.connected
    assert len(bob.transport.value()) <= MAX_OUTPUT
    _chatter(alice, 1)
    assert len(bob.transport.value()) > MAX_OUTPUT
    assert not bob.transport.connected
    assert bob.transport.disconnected  # aborted: its unread output is thrown away
    for other in (alice, carol):
        assert heard(other)[-2:] == [f"alice: {CHATTER}", "* bob left lobby (too slow)"]
    _chatter(alice, 5)
    assert heard(carol) == [f"alice: {CHATTER}"] * 5


def test_slow_reader_within_the_bound_stays_and_resuming_resets_the_count() -> None:
    """Up to MAX_OUTPUT bytes while paused keeps the connection; resumeProducing starts the count again from zero."""
    alice, bob, _ = _slow_room()
    producer = guard(bob)
    producer.pauseProducing()
    _chatter(alice, FITS)
    assert bob.transport.connected
    producer.resumeProducing()
    _chatter(alice, 3 * FITS)  # not paused: no bound
    producer.pauseProducing()
    _chatter(alice, FITS)
    assert bob.transport.connected
    producer.resumeProducing()
    assert bob.transport.connected


class _FullBufferTransport(StringTransportWithDisconnection):
    """
    A transport whose peer stopped reading, pausing its producer the way Twisted's own
    L{twisted.internet.abstract.FileDescriptor.write} does: on every write that leaves more
    than C{bufferSize} bytes unsent, again and again.
    """

    bufferSize = 1024

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.producer is not None and self.streaming and len(self.value()) > self.bufferSize:
            self.producer.pauseProducing()


def test_slow_reader_is_dropped_when_the_transport_pauses_on_every_write() -> None:
    """A peer that never reads is dropped as too slow even though the transport calls pauseProducing on each write."""
    factory, _ = door(rate=0, max_output=MAX_OUTPUT)
    alice = line_user(factory, "alice", port=40001)
    bob = _Connection(factory, _FullBufferTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40002)))
    bob.send("bob\n")
    alice.lines()
    _chatter(alice, 10 * FITS)
    assert not bob.transport.connected
    assert heard(alice).count("* bob left lobby (too slow)") == 1


# --- wrong protocols ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"GET /favicon.ico HTTP/1.1\r\nHost: chat.example\r\nUser-Agent: test\r\nAccept: */*\r\n\r\n",
        b"POST /chat HTTP/1.0\n",
        b"CONNECT chat.example:443 HTTP/1.1\r\n\r\n",
    ],
)
def test_http_request_before_login_gets_one_error_and_is_closed(data: bytes) -> None:
    """An HTTP request line as the first line is answered with one error line, and the connection is closed."""
    factory, _ = door()
    (alice,) = room(factory, "alice")
    browser = LineConnection(factory, port=40009)
    browser.lines()
    browser.send(data)
    assert browser.lines() == [WEB_SERVER]
    assert not browser.transport.connected
    assert heard(alice) == []


@pytest.mark.parametrize(
    ("first", "then", "expected"),
    [
        ("GET", "hello", ["GET: hello"]),
        ("alice", "GET / HTTP/1.1", ["alice: GET / HTTP/1.1"]),
    ],
)
def test_http_look_alikes_are_ordinary_chat(first: str, then: str, expected: list[str]) -> None:
    """The nickname 'GET', and a request line sent after login, are ordinary chat."""
    factory, _ = door()
    (carol,) = room(factory, "carol")
    user = LineConnection(factory, port=40009)
    user.send(first + "\r\n")
    user.send(then + "\r\n")
    assert user.transport.connected
    assert not [line for line in user.lines() if line.startswith("error:")]
    assert heard(carol)[1:] == expected


@pytest.mark.parametrize("data", [CLIENT_HELLO, CLIENT_HELLO + b"\nalice\n"])
def test_tls_handshake_as_first_data_is_closed_silently(data: bytes) -> None:
    """A TLS ClientHello as the first bytes closes the connection with nothing written after the greeting."""
    factory, _ = door()
    (alice,) = room(factory, "alice")
    client = LineConnection(factory, port=40009)
    client.lines()
    client.send(data)
    assert client.transport.value() == b""
    assert not client.transport.connected
    assert heard(alice) == []


def test_tls_bytes_later_in_a_session_are_just_an_invalid_line() -> None:
    """The same bytes after login are one invalid line: an error, and the connection carries on."""
    factory, _ = door()
    alice, bob = room(factory, "alice", "bob")
    bob.send(CLIENT_HELLO + b"\n")
    assert bob.lines() == [NOT_UTF8]
    assert bob.transport.connected
    bob.send("still here\n")
    assert heard(alice) == ["bob: still here"]


# --- TCP tuning --------------------------------------------------------------------------------


class _Handle:
    """A socket stand-in that records setsockopt calls, optionally refusing one option."""

    def __init__(self, refuse: int | None = None) -> None:
        self.options: list[tuple[int, int, int]] = []
        self._refuse = refuse

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.options.append((level, option, value))
        if option == self._refuse:
            raise OSError("not supported here")


class _TuningRecorder(StringTransportWithDisconnection):
    """A StringTransport with the tuning calls of a TCP transport, recording them (it does not claim ITCPTransport)."""

    def __init__(self, handle: _Handle) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", 40009))
        self.handle = handle
        self.no_delay: list[bool] = []
        self.keep_alive: list[bool] = []

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.no_delay.append(enabled)

    def setTcpKeepAlive(self, enabled: bool) -> None:
        self.keep_alive.append(enabled)

    def getHandle(self) -> _Handle:
        return self.handle


@implementer(ITCPTransport)
class _TCPTransport(_TuningRecorder):
    """The same recorder, declaring ITCPTransport as a real TCP connection does."""

    def getTcpNoDelay(self) -> bool:
        return self.no_delay[-1:] == [True]

    def getTcpKeepAlive(self) -> bool:
        return self.keep_alive[-1:] == [True]

    def loseWriteConnection(self) -> None:
        self.loseConnection()


#: The keepalive and user-timeout options the door sets on this platform.
KEEPALIVE_OPTIONS = [
    (socket.IPPROTO_TCP, getattr(socket, name), value)
    for name, value in (
        ("TCP_KEEPIDLE", guard_module.KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", guard_module.KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", guard_module.KEEPALIVE_COUNT),
        ("TCP_USER_TIMEOUT", guard_module.USER_TIMEOUT_MS),
    )
    if hasattr(socket, name)
]


@pytest.mark.parametrize(
    ("transport_class", "tuned"),
    [(_TCPTransport, True), (_TuningRecorder, False)],
    ids=["tcp", "not-tcp"],
)
def test_tcp_connections_get_nodelay_and_keepalive(transport_class: type[_TuningRecorder], tuned: bool) -> None:
    """An ITCPTransport gets NODELAY, keepalive and the keepalive socket options; other transports none, no error."""
    transport = transport_class(_Handle())
    _Connection(door()[0], transport)
    assert transport.no_delay == ([True] if tuned else [])
    assert transport.keep_alive == ([True] if tuned else [])
    assert transport.handle.options == (KEEPALIVE_OPTIONS if tuned else [])
    assert transport.value().startswith(b"* Welcome")
    assert transport.connected


@pytest.mark.skipif(not KEEPALIVE_OPTIONS, reason="no TCP keepalive options on this platform")
def test_unsupported_socket_option_is_skipped() -> None:
    """A socket option the platform refuses is skipped: the other options are still set and the user is greeted."""
    refused = KEEPALIVE_OPTIONS[0][1]
    transport = _TCPTransport(_Handle(refuse=refused))
    _Connection(door()[0], transport)
    assert transport.handle.options == KEEPALIVE_OPTIONS
    assert transport.value().startswith(b"* Welcome")
    assert transport.connected


def test_tls_connection_is_tuned_on_the_tcp_socket_beneath() -> None:
    """Over TLS (an ITCPTransport whose handle is no socket) the user is admitted and the TCP socket is tuned."""
    factory, clock = door()
    tcp = _TCPTransport(_Handle())
    tls = TLSMemoryBIOFactory(CertificateOptions(), False, factory, clock=clock).buildProtocol(tcp.getPeer())
    tcp.protocol = tls
    tls.makeConnection(tcp)
    assert factory.service.limits.total == 1
    assert tcp.no_delay == [True]
    assert tcp.keep_alive == [True]
    assert tcp.handle.options == KEEPALIVE_OPTIONS


@pytest.mark.skipif(not hasattr(socket, "TCP_USER_TIMEOUT"), reason="no TCP_USER_TIMEOUT on this platform")
def test_tcp_user_timeout_drops_a_vanished_peer_within_two_minutes() -> None:
    """A TCP connection gets TCP_USER_TIMEOUT of 120000 ms, so unacknowledged output gives up after two minutes, not fifteen."""
    transport = _TCPTransport(_Handle())
    _Connection(door()[0], transport)
    assert (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 120_000) in transport.handle.options
    assert guard_module.USER_TIMEOUT_MS == 1000 * (
        guard_module.KEEPALIVE_IDLE + guard_module.KEEPALIVE_INTERVAL * guard_module.KEEPALIVE_COUNT)


def test_websocket_connection_is_tuned_on_its_tcp_socket() -> None:
    """A WebSocket's TCP connection gets NODELAY, keepalive and the socket options once the handshake is done."""
    core, _ = make_core()
    tcp = _TCPTransport(_Handle())
    http = make_site(WebChatFactory(core, rate=0.0), ()).buildProtocol(tcp.getPeer())
    tcp.protocol = http
    http.makeConnection(tcp)
    assert (tcp.keep_alive, tcp.handle.options) == ([], [])
    http.dataReceived(WSConnection(ConnectionType.CLIENT).send(Request(host="127.0.0.1:8080", target="/ws")))
    assert b"101 Switching Protocols" in tcp.value()
    assert (tcp.no_delay[-1:], tcp.keep_alive) == ([True], [True])
    assert tcp.handle.options == KEEPALIVE_OPTIONS
    assert core.limits.total == 1


# --- disconnects in the middle of a fan-out ----------------------------------------------------


class _Tripwire(RecordingClient):
    """A RecordingClient that runs C{action} (say, disconnecting a session) when the first Said event reaches it."""

    def __init__(self, peer: str, action: Callable[[], None] | None = None) -> None:
        super().__init__(peer)
        self.action = action

    def deliver(self, event: Event) -> None:
        super().deliver(event)
        if isinstance(event, Said) and self.action is not None:
            action, self.action = self.action, None
            action()


def _story(client: RecordingClient) -> list[str]:
    """Return the Said, Left and UserQuit events C{client} received, as short text."""
    return [
        f"{event.nick}: {event.text}" if isinstance(event, Said) else f"{event.nick} left ({event.reason})"
        for event in client.events
        if isinstance(event, (Said, Left, UserQuit))
    ]


def _log_in(core: ChatService, client: RecordingClient, nick: str) -> Session:
    session = core.connect(client, client.peer)
    SlashSession(session).handle_line(nick)
    return session


def _disconnect_now(clock: Clock, session: Session) -> Callable[[], None]:
    return session.disconnected


def _disconnect_then_fail(clock: Clock, session: Session) -> Callable[[], None]:
    def action() -> None:
        session.disconnected()
        raise RuntimeError("the transport blew up while writing")

    return action


def _disconnect_after_the_fan_out(clock: Clock, session: Session) -> Callable[[], None]:
    def action() -> None:
        clock.callLater(0, session.disconnected)

    return action


@pytest.mark.parametrize("how", [_disconnect_now, _disconnect_then_fail, _disconnect_after_the_fan_out])
@pytest.mark.parametrize(
    ("order", "victim"),
    [
        (["alice", "vic", "trip", "dave"], "vic"),
        (["alice", "trip", "vic", "dave"], "vic"),
        (["alice", "trip", "dave"], "trip"),
    ],
    ids=["victim-already-served", "victim-next", "trip-itself"],
)
def test_disconnect_during_a_fan_out_never_stops_delivery(
    how: Callable[[Clock, Session], Callable[[], None]], order: list[str], victim: str,
) -> None:
    """A session gone in mid fan-out leaves once, after everyone else got the message, and delivery goes on."""
    core, clock = make_core()
    clients = {nick: _Tripwire(f"127.0.0.1:{40001 + index}") for index, nick in enumerate(order)}
    sessions = {nick: _log_in(core, client, nick) for nick, client in clients.items()}
    for client in clients.values():
        client.take()
    clients["trip"].action = how(clock, sessions[victim])
    sessions["alice"].submit(rq.Say(LOBBY, "hello"))
    clock.advance(0)
    sessions["alice"].submit(rq.Say(LOBBY, "again"))
    left = f"{victim} left (connection lost)"
    for nick, client in clients.items():
        if nick != victim:
            assert _story(client) == ["alice: hello", left, "alice: again"], nick
    assert "alice: again" not in _story(clients[victim])


def test_nothing_is_read_after_a_refusal_while_the_close_waits() -> None:
    """Once refused for flooding, a connection's later lines are ignored, even while its close waits behind a commit."""
    store = ManualStore()
    core, clock = make_core(store=store, join_history=0)
    factory = LineChatFactory(core, rate=1, burst=1)
    alice, bob = LineConnection(factory, 40001), LineConnection(factory, 40002)
    alice.send("alice\n")
    bob.send("bob\n")
    clock.advance(10)
    alice.send("pending\n")  # waits for its commit, so everything after it waits too
    bob.send("held\n" + ("x" * 100 + "\n") * (factory.max_input // 100 + 1))
    bob.send("/nick mallory\nsneaky\n")
    while store.pending:
        store.commit()
    clock.advance(1000)
    while store.pending:
        store.commit()
    seen = alice.lines()
    assert "* bob left lobby (excess flood)" in seen
    assert [line for line in seen if "mallory" in line or "sneaky" in line] == []
