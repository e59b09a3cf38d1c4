"""
The line door: a plain-text protocol over TCP (or TLS, or a UNIX socket) that works from ``nc``.

L{LineChatProtocol} owns one connection's framing, decoding, flood control and output bound,
and writes only to its own transport. It turns each complete line into a call on its core
L{Session} and each core event into CRLF-terminated UTF-8 lines. L{LineChatFactory} holds the
core and per-listener settings and builds the protocols; no chat state lives in either.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any

from twisted.internet.interfaces import IAddress, IPushProducer, ITCPTransport
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chat_twisted.commands import line_cost
from chat_twisted.core import CONNECTION_LOST, ChatService, Session
from chat_twisted.interfaces import IChatClient
from chat_twisted.limits import TokenBucket
from chat_twisted.model import ErrorReply, Event
from chat_twisted.wire.text import render

log = Logger()

#: The longest line a client may send, in bytes, without its line ending.
DEFAULT_MAX_LINE = 4096
#: Flood control: lines per second once the burst is spent (0: off), and the burst.
DEFAULT_RATE = 5.0
DEFAULT_BURST = 10
#: Unprocessed input a flooding connection may pile up before it is disconnected, in bytes.
DEFAULT_MAX_INPUT = 32 * 1024
#: Unsent output a connection that stopped reading may pile up before it is dropped, in bytes.
DEFAULT_MAX_OUTPUT = 1024 * 1024

#: TCP keepalive: first probe after this many idle seconds, then every interval, this many times,
#: so that a vanished peer is noticed in about two minutes.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 60, 10, 6

# The first line of an HTTP request, sent to the line port by a browser or a stray tool.
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


class LineChatFactory(Factory):
    """
    Builds a L{LineChatProtocol} per connection, all sharing one L{ChatService}.

    Holds only per-listener settings (line length, flood rate and burst, input and output
    bounds) and a one-entry cache of the last event's bytes, so that an event fanned out to a
    whole room is encoded once.
    """

    def __init__(
        self,
        service: ChatService,
        max_line: int = DEFAULT_MAX_LINE,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_input: int = DEFAULT_MAX_INPUT,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        self.service = service
        self.max_line = max_line
        self.rate = rate
        self.burst = burst
        self.max_input = max(max_input, max_line + 2)
        self.max_output = max_output
        self._last_event: Event | None = None
        self._last_bytes = b""

    def buildProtocol(self, addr: IAddress | None) -> LineChatProtocol:
        """Return a protocol for a new connection from C{addr}."""
        protocol = LineChatProtocol(self)
        protocol.factory = self
        return protocol

    def encode(self, event: Event) -> bytes:
        """Return C{event} as CRLF-terminated UTF-8 lines, reusing the bytes of a repeated event."""
        if event is not self._last_event:
            text = "".join(line + "\r\n" for line in render(event, self.service.timezone))
            self._last_event, self._last_bytes = event, text.encode("utf-8")
        return self._last_bytes


@implementer(IPushProducer)
class _OutputGuard:
    """
    The producer a L{LineChatProtocol} registers on its transport to learn when the peer stops
    reading: the transport pauses it when its buffer is full. Counts what is written while
    paused; past the bound, the connection is dropped as too slow.
    """

    __slots__ = ("_protocol", "paused", "unsent")

    def __init__(self, protocol: LineChatProtocol) -> None:
        self._protocol = protocol
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


@implementer(IChatClient)
class LineChatProtocol(LineReceiver):
    """
    One line-protocol connection: frames and decodes its input, writes events to its transport.

    Lines end with LF or CRLF; a line longer than the factory's limit is answered with one error
    and skipped up to its LF, and what follows it is read as usual. Invalid UTF-8 is answered
    with an error and the line dropped. The connection stays open through all of these.

    Flood control: each line spends tokens from a bucket (commands more than messages); a line
    that finds too few waits, and the lines after it wait behind it, in order. Waiting input is
    bounded: past the bound the connection gets C{error: excess flood} and is closed. A peer that
    stops reading while output piles up past its bound is dropped as too slow.
    """

    delimiter = b"\n"
    transport: Any  # a TCP, TLS or UNIX transport, or a test's StringTransport

    def __init__(self, factory: LineChatFactory) -> None:
        self.factory = factory
        # LineReceiver frames up to MAX_LENGTH bytes before the LF; one more allows a CR.
        self.MAX_LENGTH = factory.max_line + 1
        self.peer = "unknown"
        self._session: Session | None = None
        self._bucket = TokenBucket(factory.service.clock, factory.rate, factory.burst)
        self._output = _OutputGuard(self)
        self._unsent: list[bytes] = []
        self._discarding = False
        self._after_long_line = b""
        self._first_data = True
        self._close_reason = CONNECTION_LOST
        self._closing = False  # we asked the transport to close; ignore what still arrives
        self._refused = False  # the core has been asked to end this connection
        self._gone = False

    # --- connection life ---------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Set up the socket, log the connection and start its core session, which greets the user."""
        self.peer = describe_peer(self.transport.getPeer())
        log.info("connection from {peer}", peer=self.peer)
        if ITCPTransport.providedBy(self.transport):
            _tune_tcp(self.transport)
        self.transport.registerProducer(self._output, True)
        self._session = self.factory.service.connect(self, self.peer)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Tell the core this user is gone (a no-op after C{/quit})."""
        log.info("{peer} disconnected ({reason})", peer=self.peer, reason=self._close_reason)
        self._gone = True
        if self._session is not None:
            self._session.disconnected(self._close_reason)

    # --- input -------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Frame C{data} into lines, skipping the rest of any over-long line."""
        if self._closing or self._refused:
            return
        if self._first_data and data:
            self._first_data = False
            if tuple(data[:2]) == _TLS_HANDSHAKE:
                self._refuse("TLS handshake", "")
                return
        while True:
            if self._discarding:
                _, newline, data = data.partition(b"\n")
                if not newline:
                    return
                self._discarding = False
            super().dataReceived(data)
            data, self._after_long_line = self._after_long_line, b""
            if not data:
                break
        if len(self._buffer) > self.factory.max_input and not self._gone:
            self._refuse("excess flood", "excess flood")

    def lineLengthExceeded(self, line: bytes) -> None:
        """Answer an over-long line with one error, drop it up to its LF, keep what follows."""
        self._send_error(self._too_long)
        _, newline, rest = line.partition(b"\n")
        if newline:
            self._after_long_line = rest
        else:
            self._discarding = True

    def lineReceived(self, line: bytes) -> None:
        """Decode one complete line; hand it to the core now, or once flood control allows."""
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.factory.max_line:
            self._send_error(self._too_long)
            return
        if self._session is not None and self._session.nick is None and _HTTP_REQUEST.match(line):
            self._refuse("HTTP request", "this is a chat server, not a web server")
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._send_error("line is not valid UTF-8; it was dropped")
            return
        wait = self._bucket.take(line_cost(text)) if self.factory.rate > 0 else 0.0
        if wait > 0:
            self._hold()
            self.factory.service.clock.callLater(wait, self._handle, text)
        else:
            self._handle(text)

    def _handle(self, text: str) -> None:
        """Hand one line to the core; hold this connection's next lines until it has taken effect."""
        if self._session is None or self._gone:
            return
        handled = self._session.handle_line(text)
        if handled.called:
            self._release()
        else:  # a login checking a password, say: each user's lines act in the order sent
            self._hold()
            handled.addBoth(lambda _: self._release())

    def _hold(self) -> None:
        """Stop taking lines from the buffer (reading goes on, up to the input bound)."""
        self.paused = True

    def _release(self) -> None:
        """Take lines from the buffer again."""
        if self.paused and not self._gone:
            self.paused = False
            self.dataReceived(b"")

    def _refuse(self, what: str, error: str) -> None:
        """
        Close a connection that broke the protocol, after one error line if C{error} (and after
        anything the core still has on its way to it); the room sees it leave because of C{what}.
        """
        if self._closing or self._refused:
            return
        self._refused = True
        log.info("closing {peer}: {what}", peer=self.peer, what=what)
        self._close_reason = what
        self._buffer = b""
        self.paused = True
        if self._session is None:
            self._lose_connection()
        else:
            self._session.end(what, error or None)

    # --- output: IChatClient -----------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Queue C{event} for this connection (and no other); L{flush} writes what is queued."""
        self._unsent.append(self.factory.encode(event))

    def flush(self) -> None:
        """Write what is queued in one go; drop the connection if its peer reads too slowly."""
        unsent = self._unsent
        if not unsent:
            return
        data = unsent.pop() if len(unsent) == 1 else b"".join(unsent)
        unsent.clear()
        if self._gone:
            return
        self.transport.write(data)
        output = self._output
        if output.paused:
            output.unsent += len(data)
            if output.unsent > self.factory.max_output:
                self._drop_slow_reader()

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
        self._close_reason = "too slow"
        self._gone = self._closing = True
        abort = getattr(self.transport, "abortConnection", self.transport.loseConnection)
        abort()

    @property
    def _too_long(self) -> str:
        return f"line longer than {self.factory.max_line} bytes; it was dropped"

    def _send_error(self, text: str) -> None:
        """Send an error the door itself found (framing, encoding), in turn with the core's replies."""
        if self._session is None:
            self.deliver(ErrorReply(text))
            self.flush()
        else:
            self._session.tell_error(text)


def _tune_tcp(transport: ITCPTransport) -> None:
    """Send small writes at once (no Nagle delay) and find half-open peers with TCP keepalive."""
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
    ):
        if hasattr(socket, option):
            try:
                handle.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
            except OSError:  # pragma: no cover - platform without the option
                pass
