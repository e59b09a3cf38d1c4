"""
The terminal client: ``python -m chat_twisted.client [--host H] [--port P] [--nick N]
[--tls | --ca FILE | --insecure] [--no-color] [--config FILE]``.

L{ServerSide} (C{server}) speaks the line protocol to the server. On a terminal,
L{InteractiveTerminal} (C{interactive}) edits the line being typed and shows coloured lines
above it; in a pipe, L{TerminalSide} (C{plain}) reads and prints plain lines. L{ChatClient}
(C{session}) joins the two, reconnects in interactive mode, and decides when the program ends and
with which exit status; C{app} has L{run} and L{main}. Each side writes only to its own transport.

In a pipe, lines are sent, C{/quit} follows at the end of input, and the program exits 0 once
the server has answered and closed (1 if the server goes away first). With C{--tls} the
connection is TLS and the server's certificate must match C{--host} and be trusted by the
system; C{--ca FILE} trusts the certificates in FILE instead, and C{--insecure} checks nothing.
"""

from chat_twisted.client.app import cannot_connect, main, run
from chat_twisted.client.console import Console
from chat_twisted.client.interactive import InteractiveTerminal
from chat_twisted.client.options import DEFAULT_HOST, DEFAULT_PORT, parse_args
from chat_twisted.client.plain import TerminalSide
from chat_twisted.client.server import ServerSide
from chat_twisted.client.session import QUIT_GRACE_SECONDS, ChatClient
from chat_twisted.client.tls import (
    CONNECT_TIMEOUT_SECONDS,
    INSECURE_WARNING,
    load_trust_root,
    tls_failure,
    tls_settings,
)

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "INSECURE_WARNING",
    "QUIT_GRACE_SECONDS",
    "ChatClient",
    "Console",
    "InteractiveTerminal",
    "ServerSide",
    "TerminalSide",
    "cannot_connect",
    "load_trust_root",
    "main",
    "parse_args",
    "run",
    "tls_failure",
    "tls_settings",
]
