"""
Per-connection protections every door reuses: one order for a connection's requests, flood
control by fake lag, a bound on waiting input, and a bound on output a peer does not read.

L{InputQueue} runs a connection's inputs one after another, each once it has paid its flood cost
and the one before it has taken effect. L{Output} gathers a connection's outgoing bytes and writes
them in one go, dropping a peer that stops reading. L{GuardedLineReceiver} puts both on a
line-framed connection (the line door, the IRC door): framing, UTF-8, over-long lines, protocol
sniffing. Only a connection's own pieces write to its own transport.
"""

from __future__ import annotations

import os
import re
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet import tcp, unix
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IPushProducer, IReactorTime, ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chat_twisted.errors import ChatError, ExcessFlood, InputTooLong, NotUtf8, WrongProtocol
from chat_twisted.interfaces import IChatClient
from chat_twisted.limits import TokenBucket
from chat_twisted.model import ErrorReply, Event
from chat_twisted.sessions import CONNECTION_LOST, Session

log = Logger()

#: TCP keepalive: first probe after this many idle seconds, then every interval, this many times,
#: so that a vanished peer is noticed in about two minutes.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 10, 6
#: TCP_USER_TIMEOUT, in milliseconds: a peer that leaves sent data unacknowledged this long is
#: dropped (about two minutes, like keepalive, instead of the kernel's fifteen of retransmissions).
USER_TIMEOUT_MS = 120_000

#: Flood control, unless configured otherwise: requests per second once the burst is spent (0:
#: off), and the burst; the same for every door.
DEFAULT_RATE = 5.0
DEFAULT_BURST = 10
#: Unprocessed input a flooding connection may pile up before it is disconnected, in bytes.
DEFAULT_MAX_INPUT = 32 * 1024
#: Unsent output a connection that stopped reading may pile up before it is dropped, in bytes.
DEFAULT_MAX_OUTPUT = 1024 * 1024

# The first line of an HTTP request, sent to a chat port by a browser or a stray tool.
_HTTP_REQUEST = re.compile(rb"[A-Z]{3,7} \S+ HTTP/\d")
# The first bytes of a TLS handshake record (ClientHello), sent by a client that expects TLS.
_TLS_HANDSHAKE = (0x16, 0x03)


def describe_peer(address: IAddress) -> str:
    """Return C{address} as C{host:port} for logs, or the address's own text for other kinds."""
    host = getattr(address, "host", None)
    if host is None:
        name = getattr(address, "name", None)
        return os.fsdecode(name) if name else str(address)
    return f"{host}:{address.port}"  # type: ignore[attr-defined]


def show_in_turn(client: IChatClient, session: Session | None, event: Event) -> None:
    """
    Show C{client}'s user an event its door made: in turn with the core's through C{session},
    or at once if the connection has no open session (refused, or not yet started).
    """
    if session is None or session.closed:
        client.deliver(event)
        client.flush()
    else:
        session.show(event)


class InputQueue:
    """
    One connection's inputs, run in the order they arrived.

    Each input costs flood-control tokens from the connection's L{TokenBucket}: one that finds
    too few waits (fake lag), and those after it wait behind it. An input whose action returns
    an unfired Deferred holds the rest until it fires. Waiting input is bounded in bytes: past
    C{max_waiting}, C{overflow} is called once; C{waited} is called each time an input has to
    wait for tokens (the door passes its session's L{Session.flood_waited}, so the core counts
    it). Owns only the waiting inputs and its bucket.
    """

    def __init__(
        self,
        clock: IReactorTime,
        bucket: TokenBucket,
        max_waiting: int,
        overflow: Callable[[], None],
        waited: Callable[[], object] = lambda: None,
    ) -> None:
        self._clock = clock
        self._waited = waited
        self._bucket = bucket
        self._max_waiting = max_waiting
        self._overflow = overflow
        # Made only when an input must wait behind another (most never do: a deque is 600 bytes).
        self._waiting: deque[tuple[int, float, Callable[[], Deferred[Any] | None]]] | None = None
        self.waiting_bytes = 0
        self._busy = False
        self._stopped = False

    def push(self, size: int, cost: float, action: Callable[[], Deferred[Any] | None]) -> None:
        """Queue C{action} (for C{size} bytes of input costing C{cost} tokens); run what may run."""
        if self._stopped:
            return
        if not self._waiting and not self._busy:  # nothing ahead of it
            self._take_turn(cost, action)
            return
        if self._waiting is None:
            self._waiting = deque()
        self._waiting.append((size, cost, action))
        self.waiting_bytes += size
        self._run()
        if self.waiting_bytes > self._max_waiting:
            self._overflow()

    def over(self, extra: int) -> bool:
        """Whether C{extra} more bytes (a line not yet complete) would take the input past its bound."""
        return self.waiting_bytes + extra > self._max_waiting

    def stop(self) -> None:
        """Forget what waits and take nothing more."""
        self._stopped = True
        self._waiting = None
        self.waiting_bytes = 0

    def _run(self) -> None:
        while self._waiting and not self._busy and not self._stopped:
            size, cost, action = self._waiting.popleft()
            self.waiting_bytes -= size
            self._take_turn(cost, action)

    def _take_turn(self, cost: float, action: Callable[[], Deferred[Any] | None]) -> None:
        """Run C{action} now, or, if flood control has too few tokens for C{cost}, once it has."""
        wait = self._bucket.take(cost)
        if wait > 0:
            self._waited()
            self._busy = True
            self._clock.callLater(wait, self._lagged, action)
            return
        self._start(action)

    def _lagged(self, action: Callable[[], Deferred[Any] | None]) -> None:
        self._busy = False
        if not self._stopped:
            self._start(action)
        self._run()

    def _start(self, action: Callable[[], Deferred[Any] | None]) -> None:
        result = action()
        if result is not None and not result.called:
            self._busy = True
            result.addBoth(self._done)

    def _done(self, result: object) -> None:
        self._busy = False
        self._run()


class Pinger:
    """
    Keeps watch on a silent connection: after C{interval} seconds without L{alive}, C{ping}s it;
    if nothing comes within C{timeout} more, C{expire}s it. Owns only its timer.
    """

    __slots__ = ("_clock", "_interval", "_timeout", "_ping", "_expire", "_timer", "_pinged")

    def __init__(self, clock: IReactorTime, interval: float, timeout: float,
                 ping: Callable[[], None], expire: Callable[[], None]) -> None:
        self._clock = clock
        self._interval = interval
        self._timeout = timeout
        self._ping = ping
        self._expire = expire
        self._timer: IDelayedCall | None = None
        self._pinged = False

    def start(self) -> None:
        """Start watching."""
        self._timer = self._clock.callLater(self._interval, self._check)

    def alive(self) -> None:
        """The peer sent something: wait a whole interval again."""
        self._pinged = False
        if self._timer is not None and self._timer.active():
            self._timer.reset(self._interval)

    def stop(self) -> None:
        """Stop watching (the connection is gone)."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _check(self) -> None:
        self._timer = None
        if self._pinged:
            self._expire()
            return
        self._pinged = True
        self._ping()
        self._timer = self._clock.callLater(self._timeout, self._check)


@implementer(IPushProducer)
class _OutputGuard:
    """
    The producer an L{Output} registers on its transport to learn when the peer stops reading:
    the transport pauses it when its buffer is full.
    """

    __slots__ = ("paused", "unsent")

    def __init__(self) -> None:
        self.paused = False
        self.unsent = 0

    def pauseProducing(self) -> None:
        """The transport's buffer is full: start counting (it says so again on each later write)."""
        if not self.paused:
            self.paused = True
            self.unsent = 0

    def resumeProducing(self) -> None:
        """The peer caught up."""
        self.paused = False
        self.unsent = 0

    def stopProducing(self) -> None:
        """The connection is going away; nothing to stop."""


class Output:
    """
    One connection's outgoing data: gathered by L{queue}, written together by L{flush}. While
    the transport says its peer is not reading, what is written is counted; past C{max_unsent}
    bytes, C{too_slow} is called. Writes only to its own connection's transport.

    This one writes a byte stream; a door whose transport takes whole messages (a WebSocket)
    subclasses it and overrides L{attach} and L{_send}.
    """

    __slots__ = ("transport", "_max_unsent", "_too_slow", "pending", "guard", "gone")

    def __init__(self, max_unsent: int, too_slow: Callable[[], None]) -> None:
        self.transport: Any = None
        self._max_unsent = max_unsent
        self._too_slow = too_slow
        #: What waits for the next flush. The list stays the same object, so that a door's
        #: fan-out path may keep its C{append} (one call per delivery, the server's hottest).
        self.pending: list[Any] = []
        self.guard = _OutputGuard()
        self.gone = False

    def attach(self, transport: Any) -> None:
        """Start writing to C{transport}, and learn from it when its peer stops reading."""
        self.transport = transport
        transport.registerProducer(self.guard, True)

    def queue(self, data: Any) -> None:
        """Keep C{data} (bytes here) for the next L{flush}."""
        self.pending.append(data)

    def flush(self) -> None:
        """Write what is kept in one go; call C{too_slow} if the peer reads too slowly."""
        pending = self.pending
        if not pending:
            return
        written = 0 if self.gone else self._write(pending)
        pending.clear()
        guard = self.guard
        if guard.paused and written:
            guard.unsent += written
            if guard.unsent > self._max_unsent:
                self._too_slow()

    def _write(self, chunks: list[Any]) -> int:
        """Write C{chunks} to the transport in one write; return how many bytes that was."""
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self._send(data)
        return len(data)

    def _send(self, data: bytes) -> None:
        """
        Hand C{data} to the transport. On a plain TCP or UNIX connection with nothing waiting to
        go out, send it to the socket at once and leave the transport only what the kernel did
        not take: this saves the reactor a wake-up, and two epoll changes, per connection and
        turn (the server's commonest write). Anything unusual (a full socket buffer, an error)
        goes the transport's own way, which deals with it as it always does.
        """
        transport = self.transport
        if type(transport) in _DIRECT_TRANSPORTS and transport.connected and not transport.disconnecting \
                and not transport._writeDisconnected and not transport._tempDataBuffer \
                and len(transport.dataBuffer) == transport.offset:
            try:
                sent = transport.socket.send(data)
            except OSError:  # would block, or broken: the transport will find out and act
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
        transport.write(data)


#: The transports whose sockets L{Output} may send to directly: Twisted's plain stream
#: connections (not TLS, which wraps the protocol in its own transport; not a test's fake).
_DIRECT_TRANSPORTS = frozenset({tcp.Server, unix.Server})


@implementer(IChatClient)
class GuardedLineReceiver(LineReceiver):
    """
    A line-framed chat connection with every protection, for a door to build on.

    Lines end with LF or CRLF; a line longer than C{max_line} bytes is answered with
    L{InputTooLong} and skipped up to its LF, and what follows it is read as usual; invalid UTF-8
    is answered with L{NotUtf8}. Each line, refused ones too, costs flood-control tokens and
    takes its turn in the L{InputQueue}; waiting input past C{max_input} bytes closes the
    connection with L{ExcessFlood}. A TLS handshake or (before login) an HTTP request closes it
    too. The connection stays open through everything else.

    A door subclass provides L{encode} (an event as bytes), L{handle_text} (one decoded line)
    and L{line_cost}, and may override L{greet} and L{show_refusal}.
    """

    delimiter = b"\n"
    transport: Any  # a TCP, TLS or UNIX transport, or a test's StringTransport

    def __init__(
        self,
        clock: IReactorTime,
        max_line: int,
        rate: float,
        burst: float,
        max_input: int,
        max_output: int,
    ) -> None:
        # LineReceiver frames up to MAX_LENGTH bytes before the LF; one more allows a CR.
        self.MAX_LENGTH = max_line + 1
        self.max_line = max_line
        self.peer = "unknown"
        self.session: Session | None = None
        self._input = InputQueue(clock, TokenBucket(clock, rate, burst), max(max_input, max_line + 2),
                                 self._flooded, self._flood_waited)
        self.output = Output(max_output, self._drop_slow_reader)
        self._discarding = False
        self._after_long_line = b""
        self._first_data = True
        self.close_reason = CONNECTION_LOST
        self._closing = False  # we asked the transport to close; ignore what still arrives
        self._refused = False  # the core has been asked to end this connection

    # --- what a door provides ----------------------------------------------------------------

    def _flooded(self) -> None:
        self.refuse("excess flood", ExcessFlood())

    def _flood_waited(self) -> None:
        if self.session is not None:
            self.session.flood_waited()

    def in_turn(self, action: Callable[[], Deferred[Any] | None]) -> None:
        """Run C{action}, a request the door makes itself, after the inputs already waiting, at no flood cost."""
        self._input.push(0, 0.0, action)

    def start_session(self) -> Session:
        """Start this connection's core session (called once connected)."""
        raise NotImplementedError

    def encode(self, event: Event) -> bytes:
        """Return C{event} as this door's bytes."""
        raise NotImplementedError

    def handle_text(self, text: str) -> Deferred[Any] | None:
        """Act on one decoded line; return a Deferred if the next line must wait for it."""
        raise NotImplementedError

    def line_cost(self, text: str) -> float:
        """How many flood-control tokens C{text} costs."""
        return 1.0

    def greet(self) -> None:
        """Say hello once the session is started (nothing by default)."""

    @property
    def logged_in(self) -> bool:
        """Whether the session has a nickname."""
        return self.session is not None and self.session.nick is not None

    # --- connection life ---------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Set up the socket, log the connection and start its core session."""
        self.peer = describe_peer(self.transport.getPeer())
        log.info("connection from {peer}", peer=self.peer)
        tune_if_tcp(self.transport)
        self.output.attach(self.transport)
        self.session = self.start_session()
        if not self.session.closed:
            self.greet()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Tell the core this user is gone (a no-op after a quit)."""
        log.info("{peer} disconnected ({reason})", peer=self.peer, reason=self.close_reason)
        self.output.gone = True
        self._input.stop()
        if self.session is not None:
            self.session.disconnected(self.close_reason)

    # --- input -------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Frame C{data} into lines, skipping the rest of any over-long line."""
        if self._closing or self._refused:
            return
        if self._first_data and data:
            self._first_data = False
            if tuple(data[:2]) == _TLS_HANDSHAKE:
                self.refuse("TLS handshake", None)
                return
        while True:
            if self._discarding:
                _, newline, data = data.partition(b"\n")
                if not newline:
                    return
                self._discarding = False
            super().dataReceived(data)
            data, self._after_long_line = self._after_long_line, b""
            if not data or self._refused or self._closing:
                break
        if self._input.over(len(self._buffer)) and not self.output.gone:
            self.refuse("excess flood", ExcessFlood())

    def lineLengthExceeded(self, line: bytes) -> None:
        """Answer an over-long line with one error, drop it up to its LF, keep what follows."""
        self._refuse_line(len(line), InputTooLong(self.max_line))
        _, newline, rest = line.partition(b"\n")
        if newline:
            self._after_long_line = rest
        else:
            self._discarding = True

    def lineReceived(self, line: bytes) -> None:
        """Decode one complete line and queue it for its turn."""
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line:
            self._refuse_line(len(line), InputTooLong(self.max_line))
            return
        if not self.logged_in and _HTTP_REQUEST.match(line):
            self.refuse("HTTP request", WrongProtocol("http"))
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._refuse_line(len(line), NotUtf8())
            return
        self._input.push(len(line) + 1, self.line_cost(text), lambda: self._handle(text))

    def _handle(self, text: str) -> Deferred[Any] | None:
        if self.session is None or self.output.gone:
            return None
        return self.handle_text(text)

    def _refuse_line(self, size: int, error: ChatError) -> None:
        """A line that cannot be taken costs its turn and tokens like any other, then gets its error."""
        self._input.push(size + 1, 1.0, lambda: self.show_refusal(error))

    def show_refusal(self, error: ChatError) -> None:
        """Show the error for a line that was refused (by default as an L{ErrorReply})."""
        self.show(ErrorReply(error))

    def show(self, event: Event) -> None:
        """Show this user an event the door made, in turn with the core's."""
        show_in_turn(self, self.session, event)

    def refuse(self, what: str, error: ChatError | None) -> None:
        """
        Close a connection that broke the protocol, after C{error} if given (and after anything
        the core still has on its way to it); its rooms see it leave because of C{what}.
        """
        if self._closing or self._refused:
            return
        self._refused = True
        log.info("closing {peer}: {what}", peer=self.peer, what=what)
        self.close_reason = what
        self._buffer = b""
        self._input.stop()
        if self.session is None:
            self._lose_connection()
        else:
            self.session.end(what, error)

    # --- output: IChatClient -----------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Queue C{event} for this connection (and no other); L{flush} writes what is queued."""
        data = self.encode(event)
        if data:
            self.output.queue(data)

    def flush(self) -> None:
        """Write what is queued in one go; drop the connection if its peer reads too slowly."""
        self.output.flush()

    def close(self) -> None:
        """Close this connection after what was delivered so far."""
        self.flush()
        self._lose_connection()

    def _lose_connection(self) -> None:
        if self._closing:
            return
        self._closing = True
        # A transport (TLS's, for one) does not close while a producer is registered on it.
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def _drop_slow_reader(self) -> None:
        log.info("dropping {peer}: not reading its output", peer=self.peer)
        self.close_reason = "too slow"
        self.output.gone = self._closing = True
        self._input.stop()
        abort = getattr(self.transport, "abortConnection", self.transport.loseConnection)
        abort()


def tune_if_tcp(transport: Any) -> None:
    """L{tune_tcp} C{transport} if it is a TCP (or TLS-over-TCP) connection; leave others alone."""
    if ITCPTransport.providedBy(transport):
        tune_tcp(transport)


def tune_tcp(transport: ITCPTransport) -> None:
    """
    Send small writes at once (no Nagle delay) and find half-open peers within about two
    minutes: with TCP keepalive when the connection is idle, with TCP_USER_TIMEOUT when output
    to it goes unacknowledged (each socket option only where the platform has it).
    """
    transport.setTcpNoDelay(True)
    transport.setTcpKeepAlive(True)
    handle = transport.getHandle()  # type: ignore[attr-defined]
    while not hasattr(handle, "setsockopt"):  # TLS: the socket is the wrapped transport's
        transport = getattr(transport, "transport", None)  # type: ignore[assignment]
        if transport is None:
            return
        handle = transport.getHandle()  # type: ignore[attr-defined]
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL), ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
    ):
        if hasattr(socket, option):
            try:
                handle.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
            except OSError:  # pragma: no cover - platform without the option
                pass
