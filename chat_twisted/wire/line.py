"""
The line door: a plain-text protocol over TCP (or TLS, or a UNIX socket) that works from ``nc``.

L{LineChatProtocol} owns one connection's framing and decoding and writes only to its own
transport. It turns each complete line into a call on its core L{Session} and each core event into
CRLF-terminated UTF-8 lines. L{LineChatFactory} holds the core and per-listener settings and
builds the protocols; no chat state lives in either.
"""

from __future__ import annotations

import os
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory, connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chat_twisted.core import CONNECTION_LOST, ChatService, Session
from chat_twisted.interfaces import IChatClient
from chat_twisted.model import ErrorReply, Event
from chat_twisted.wire.text import render

log = Logger()

#: The longest line a client may send, in bytes, without its line ending.
DEFAULT_MAX_LINE = 4096


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

    Holds only per-listener settings and a one-entry cache of the last event's bytes, so that
    an event fanned out to a whole room is encoded once.
    """

    def __init__(self, service: ChatService, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.service = service
        self.max_line = max_line
        self._last_event: Event | None = None
        self._last_bytes = b""

    def buildProtocol(self, addr: IAddress) -> LineChatProtocol:
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


@implementer(IChatClient)
class LineChatProtocol(LineReceiver):
    """
    One line-protocol connection: frames and decodes its input, writes events to its transport.

    Lines end with LF or CRLF; a line longer than the factory's limit is answered with one error
    and skipped up to its LF, and what follows it is read as usual. Invalid UTF-8 is answered
    with an error and the line dropped. The connection stays open through all of these.
    """

    delimiter = b"\n"

    def __init__(self, factory: LineChatFactory) -> None:
        self.factory = factory
        # LineReceiver frames up to MAX_LENGTH bytes before the LF; one more allows a CR.
        self.MAX_LENGTH = factory.max_line + 1
        self.peer = "unknown"
        self._session: Session | None = None
        self._discarding = False
        self._after_long_line = b""
        self._gone = False

    # --- connection life ---------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Log the connection and start its core session, which greets the user."""
        self.peer = describe_peer(self.transport.getPeer())
        log.info("connection from {peer}", peer=self.peer)
        self._session = self.factory.service.connect(self, self.peer)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Tell the core this user is gone (a no-op after C{/quit})."""
        log.info("{peer} disconnected", peer=self.peer)
        self._gone = True
        if self._session is not None:
            self._session.disconnected(CONNECTION_LOST)

    # --- input -------------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        """Frame C{data} into lines, skipping the rest of any over-long line."""
        while True:
            if self._discarding:
                _, newline, data = data.partition(b"\n")
                if not newline:
                    return
                self._discarding = False
            super().dataReceived(data)
            data, self._after_long_line = self._after_long_line, b""
            if not data:
                return

    def lineLengthExceeded(self, line: bytes) -> None:
        """Answer an over-long line with one error, drop it up to its LF, keep what follows."""
        self._send_error(self._too_long)
        _, newline, rest = line.partition(b"\n")
        if newline:
            self._after_long_line = rest
        else:
            self._discarding = True

    def lineReceived(self, line: bytes) -> None:
        """Decode one complete line and hand it to the core."""
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.factory.max_line:
            self._send_error(self._too_long)
            return
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            self._send_error("line is not valid UTF-8; it was dropped")
            return
        if self._session is None:
            return
        handled = self._session.handle_line(text)
        if not handled.called:
            # Hold this connection's next lines until this one has taken effect (a login
            # checking a password, say), so that each user's lines act in the order sent.
            self.pauseProducing()
            handled.addBoth(self._line_handled)

    def _line_handled(self, result: object) -> None:
        if not self._gone:
            self.resumeProducing()

    # --- output: IChatClient -----------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """Write C{event} to this connection (and to no other)."""
        self.transport.write(self.factory.encode(event))

    def close(self) -> None:
        """Close this connection after what was written so far."""
        self.transport.loseConnection()

    @property
    def _too_long(self) -> str:
        return f"line longer than {self.factory.max_line} bytes; it was dropped"

    def _send_error(self, text: str) -> None:
        self.deliver(ErrorReply(text))
