"""
L{TerminalSide}: the client's plain line mode on standard input and output, used when either is
not a terminal (a pipe, a file, C{TERM=dumb}). Lines in, lines out, no colour, no editing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

if TYPE_CHECKING:
    from chat_twisted.client.session import ChatClient


@implementer(IHalfCloseableProtocol)
class TerminalSide(LineReceiver):
    """
    The user's side on stdin/stdout: typed lines go to L{ChatClient}; server lines are printed.
    Writes only to its own transport (standard output).

    Half-closeable, so the end of input (Ctrl-D or the end of a pipe) still lets the server's
    last replies be printed.
    """

    delimiter = b"\n"
    MAX_LENGTH = 1 << 20

    def __init__(self, client: ChatClient) -> None:
        self.client = client
        self._closed: Deferred[None] = Deferred()
        self._output_gone = False

    def connectionMade(self) -> None:
        """Attach to the client."""
        self.client.terminal_attached(self)

    def lineReceived(self, line: bytes) -> None:
        """Hand one typed line to the client."""
        self.client.typed(line)

    def show(self, text: str) -> None:
        """Print one line from the server."""
        assert self.transport is not None
        self.transport.write(text.encode("utf-8") + b"\n")

    def notice(self, text: str) -> None:
        """Print one line from the client itself (marked C{***} as in interactive mode)."""
        self.show(f"*** {text}")

    def readConnectionLost(self) -> None:
        """End of input."""
        self.client.input_ended()

    def writeConnectionLost(self) -> None:
        """Standard output was closed (say, piped into C{head}): nothing more can be shown."""
        self._output_gone = True

    def close(self) -> Deferred[None]:
        """Flush standard output and close; the Deferred fires once that is done."""
        if self._output_gone and not self._closed.called:
            self._closed.callback(None)
        assert self.transport is not None
        self.transport.loseConnection()
        return self._closed

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Standard input and output are both closed."""
        if not self._closed.called:
            self._closed.callback(None)
