"""
The terminal client: ``python -m chat_twisted.client [--host H] [--port P] [--nick N]
[--tls | --ca FILE | --insecure]``.

Three parts: L{ServerSide} speaks the line protocol to the server, L{TerminalSide} reads what
the user types on Twisted's stdio transport and shows server lines, and L{ChatClient} joins the
two and decides when the program ends and with which exit status. Each side writes only to its
own transport. Works the same when stdin is a pipe: lines are sent, C{/quit} follows at the end
of input, and the program exits 0 once the server has answered and closed.

With C{--tls} the connection is TLS and the server's certificate must match C{--host} and be
trusted by the system; C{--ca FILE} trusts the certificates in FILE instead, and C{--insecure}
checks nothing. A failed handshake or check ends the program like a refused connection does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn, cast

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import defer, stdio
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IHandshakeListener,
    IOpenSSLClientConnectionCreator,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, connectionDone
from twisted.internet.ssl import (
    Certificate,
    CertificateOptions,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)
from twisted.internet.task import react
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from chat_twisted.model import sanitise

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000

#: How long to wait for the server to accept the connection, and then for the TLS handshake.
CONNECT_TIMEOUT_SECONDS = 10.0

#: How long to wait for the server to close after our C{/quit} before closing ourselves.
QUIT_GRACE_SECONDS = 5.0

#: Printed to standard error when C{--insecure} turns certificate checks off.
INSECURE_WARNING = "chat: warning: --insecure: the server's certificate is not checked"


class ChatClient:
    """
    Joins one terminal and one server connection.

    Owns the exit status: C{done} fires with 0 when the server closes after our C{/quit}, and
    with 1 (after C{error} names the reason) when the server goes away on its own.
    """

    def __init__(self, clock: IReactorTime, nick: str | None = None) -> None:
        self.clock = clock
        self.nick = nick
        self.done: Deferred[int] = Deferred()
        self.error: str | None = None
        self.server: ServerSide | None = None
        self.terminal: TerminalSide | None = None
        self._unshown: list[str] = []
        self._quit_sent = False
        self._quit_timer: IDelayedCall | None = None

    # --- the server side ---------------------------------------------------------------------

    def server_connected(self, server: ServerSide) -> None:
        """The connection is up: send the nickname if one was given."""
        self.server = server
        if self.nick:
            server.send_line(self.nick.encode("utf-8"))

    def server_line(self, text: str) -> None:
        """Show one line from the server (held back until the terminal is attached)."""
        if self.terminal is None:
            self._unshown.append(text)
        else:
            self.terminal.show(text)

    def server_gone(self) -> None:
        """The server closed the connection: finish, successfully only if we had said /quit."""
        if self._quit_timer is not None and self._quit_timer.active():
            self._quit_timer.cancel()
        if self._quit_sent:
            self._finish(0)
        else:
            self._finish(1, "the server closed the connection")

    # --- the terminal side -------------------------------------------------------------------

    def terminal_attached(self, terminal: TerminalSide) -> None:
        """Start showing server lines on C{terminal}, those that arrived before it first."""
        self.terminal = terminal
        for text in self._unshown:
            terminal.show(text)
        self._unshown = []

    def typed(self, line: bytes) -> None:
        """Send one line the user typed; note a C{/quit} so the server's close counts as success."""
        if self.server is None or self._quit_sent:
            return
        if line.strip().lower().split(b" ", 1)[0] == b"/quit":
            self._quit_sent = True
        self.server.send_line(line)

    def input_ended(self) -> None:
        """End of input: say C{/quit} (once) and wait, for a bounded time, for the server to close."""
        if self.server is None or self.done.called:
            return
        if not self._quit_sent:
            self._quit_sent = True
            self.server.send_line(b"/quit")
        self._quit_timer = self.clock.callLater(QUIT_GRACE_SECONDS, self.server.close)

    # --- the end -----------------------------------------------------------------------------

    def _finish(self, status: int, error: str | None = None) -> None:
        if self.done.called:
            return
        self.error = error
        if self.terminal is None:
            self.done.callback(status)
        else:
            self.terminal.close().addCallback(lambda _: self.done.callback(status))


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
        self.client.server_connected(self)

    def lineReceived(self, line: bytes) -> None:
        """Pass one server line on, decoded and stripped of anything that could drive the terminal."""
        text = line.rstrip(b"\r").decode("utf-8", errors="replace")
        self.client.server_line(sanitise(text))

    def send_line(self, line: bytes) -> None:
        """Write one line to the server."""
        self.transport.write(line.rstrip(b"\r") + b"\r\n")

    def close(self) -> None:
        """Close the connection to the server."""
        self.transport.loseConnection()

    def handshakeCompleted(self) -> None:
        """The TLS handshake is done and the server's certificate passed the checks asked for."""
        if not self.ready.called:
            self.ready.callback(None)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Report that the server is gone (or, before C{ready}, why the connection failed)."""
        if not self.ready.called:
            self.ready.errback(reason)
        self.client.server_gone()


@implementer(IHalfCloseableProtocol)
class TerminalSide(LineReceiver):
    """
    The user's side on stdin/stdout: typed lines go to L{ChatClient}; server lines are printed.

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
        self.transport.write(text.encode("utf-8") + b"\n")

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
        self.transport.loseConnection()
        return self._closed

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Standard input and output are both closed."""
        if not self._closed.called:
            self._closed.callback(None)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the client's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m chat_twisted.client",
        description="Chat on a chat_twisted server from this terminal (or a pipe).",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"server host name or address [{DEFAULT_HOST}]")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"server port [{DEFAULT_PORT}]")
    parser.add_argument("--nick", help="nickname to send on connecting (else the first line typed)")
    parser.add_argument("--tls", action="store_true",
                        help="connect with TLS; the server's certificate must match --host and be "
                             "trusted by the system")
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument("--ca", metavar="FILE", type=load_trust_root,
                       help="with TLS, trust only the PEM certificates in FILE (a CA or the "
                            "server's self-signed certificate); implies --tls")
    trust.add_argument("--insecure", action="store_true",
                       help="connect with TLS but do not check the server's certificate at all "
                            "(for testing only); implies --tls")
    options = parser.parse_args(argv)
    options.tls = options.tls or options.ca is not None or options.insecure
    return options


def load_trust_root(path: str) -> IOpenSSLTrustRoot:
    """Read the PEM certificates in C{path} as the only ones to trust (an C{argparse} type)."""
    try:
        with open(path, "rb") as file:
            found = x509.load_pem_x509_certificates(file.read())
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {path!r}: {error.strerror}") from None
    except ValueError:
        raise argparse.ArgumentTypeError(f"{path!r} holds no valid PEM certificate") from None
    return trustRootFromCertificates([Certificate.loadPEM(cert.public_bytes(Encoding.PEM)) for cert in found])


def tls_settings(options: argparse.Namespace) -> IOpenSSLClientConnectionCreator:
    """Return the TLS client settings that C{--tls}, C{--ca} and C{--insecure} ask for."""
    if options.insecure:
        return CertificateOptions()  # type: ignore[return-value]  # verifies nothing
    trust = platformTrust() if options.ca is None else options.ca
    return optionsForClientTLS(options.host, trustRoot=trust)


def tls_failure(error: BaseException) -> str:
    """Say in a few words why the TLS handshake failed (OpenSSL's error list reduced to its texts)."""
    if isinstance(error, SSL.Error) and error.args and isinstance(error.args[0], list):
        reason = "; ".join(str(entry[-1]) for entry in error.args[0])
    elif isinstance(error, VerificationError):
        reason = "the server's certificate is for another host name"
    elif isinstance(error, defer.TimeoutError):
        reason = f"no answer in {CONNECT_TIMEOUT_SECONDS:g} seconds"
    else:
        reason = str(error)
    return f"TLS handshake failed: {reason}"


def cannot_connect(options: argparse.Namespace, reason: str) -> NoReturn:
    """Say on standard error, in one line, that connecting failed and why; exit with status 1."""
    one_line = " ".join(reason.split())
    print(f"chat: cannot connect to {options.host}:{options.port}: {one_line}", file=sys.stderr)
    raise SystemExit(1)


async def run(reactor: object, argv: Sequence[str]) -> None:
    """Connect, chat until the end, and raise C{SystemExit} with the exit status."""
    options = parse_args(argv)
    client = ChatClient(clock=reactor, nick=options.nick)  # type: ignore[arg-type]
    endpoint: IStreamClientEndpoint = HostnameEndpoint(
        reactor, options.host, options.port, timeout=CONNECT_TIMEOUT_SECONDS
    )
    if options.insecure:
        print(INSECURE_WARNING, file=sys.stderr)
    if options.tls:
        endpoint = wrapClientTLS(tls_settings(options), endpoint, clock=reactor)  # type: ignore[arg-type]
    factory = Factory.forProtocol(lambda: ServerSide(client, tls=options.tls))
    try:
        server = cast(ServerSide, await endpoint.connect(factory))
    except Exception as error:
        cannot_connect(options, str(error))
    try:
        await server.ready.addTimeout(CONNECT_TIMEOUT_SECONDS, reactor)  # type: ignore[arg-type]
    except Exception as error:
        cannot_connect(options, tls_failure(error))
    stdio.StandardIO(TerminalSide(client), reactor=reactor)  # type: ignore[arg-type]
    status = await client.done
    if client.error:
        print(f"chat: {client.error}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of C{python -m chat_twisted.client}."""
    react(run, [sys.argv[1:] if argv is None else list(argv)])


if __name__ == "__main__":
    main()
