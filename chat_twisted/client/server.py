"""
L{ServerSide}: the client's connection to the chat server. It writes only to its own transport
(the TCP or TLS connection) and hands every line it reads to the L{ChatClient}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chat_twisted.model import sanitise

if TYPE_CHECKING:
    from chat_twisted.client.session import ChatClient

log = Logger()


@implementer(IHandshakeListener)
class ServerSide(LineReceiver):
    """
    The connection to the chat server: lines in, to L{ChatClient}; typed lines out, CRLF-ended.

    C{ready} fires once the connection can be trusted with the chat: at once over plain TCP,
    after the handshake over TLS. It fails with the reason if the connection is lost first.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, client: ChatClient, tls: bool = False) -> None:
        self.client = client
        self.ready: Deferred[None] = Deferred()
        if not tls:
            self.ready.callback(None)

    def connectionMade(self) -> None:
        """Report the connection to the client."""
        log.info("connected to the server")
        self.client.server_connected(self)

    def lineReceived(self, line: bytes) -> None:
        """Pass one server line on, decoded and stripped of anything that could drive the terminal."""
        text = line.rstrip(b"\r").decode("utf-8", errors="replace")
        self.client.server_line(sanitise(text))

    def send_line(self, line: bytes) -> None:
        """Write one line to the server."""
        assert self.transport is not None
        self.transport.write(line.rstrip(b"\r") + b"\r\n")

    def close(self) -> None:
        """Close the connection to the server."""
        assert self.transport is not None
        self.transport.loseConnection()

    def abort(self) -> None:
        """Drop the connection at once, without waiting to send what is buffered (or a TLS goodbye)."""
        assert self.transport is not None
        getattr(self.transport, "abortConnection", self.transport.loseConnection)()

    def handshakeCompleted(self) -> None:
        """The TLS handshake is done and the server's certificate passed the checks asked for."""
        if not self.ready.called:
            self.ready.callback(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Report that the server is gone (or, before C{ready}, why the connection failed)."""
        log.info("disconnected from the server: {reason}", reason=reason.getErrorMessage())
        if not self.ready.called:
            self.ready.errback(reason)
        self.client.server_gone(reason)
