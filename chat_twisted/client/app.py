"""
The client program: L{run} connects, picks the plain line mode or the interactive mode, chats
until the end and exits with the status L{ChatClient} decided; L{main} runs it under C{react}
and puts the terminal back however the program ends.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn, cast

from twisted.conch.insults.insults import ServerProtocol
from twisted.internet import stdio
from twisted.internet.task import react

from chat_twisted.client.console import Console, colour_wanted
from chat_twisted.client.dial import Dialler
from chat_twisted.client.interactive import InteractiveTerminal
from chat_twisted.client.options import parse_args
from chat_twisted.client.plain import TerminalSide
from chat_twisted.client.server import ServerSide
from chat_twisted.client.session import ChatClient
from chat_twisted.client.tls import CONNECT_TIMEOUT_SECONDS, INSECURE_WARNING, tls_failure


def cannot_connect(options: argparse.Namespace, reason: str) -> NoReturn:
    """Say on standard error, in one line, that connecting failed and why; exit with status 1."""
    one_line = " ".join(reason.split())
    print(f"chat: cannot connect to {options.host}:{options.port}: {one_line}", file=sys.stderr)
    raise SystemExit(1)


def start_interactive(reactor: object, client: ChatClient, console: Console, colour: bool) -> InteractiveTerminal:
    """
    Switch the terminal to raw mode (restored when the reactor shuts down, and by L{run}) and
    attach an L{InteractiveTerminal} under insults' ServerProtocol to standard input and output.
    """
    terminal = InteractiveTerminal(client, colour=colour, size=console.size())
    console.enter_raw()
    reactor.addSystemEventTrigger("before", "shutdown", console.restore)  # type: ignore[attr-defined]
    console.watch_size(lambda: terminal.terminalSize(*console.size()), reactor)  # type: ignore[arg-type]
    stdio.StandardIO(ServerProtocol(lambda: terminal), reactor=reactor)  # type: ignore[arg-type]
    return terminal


async def run(reactor: object, argv: Sequence[str], console: Console | None = None) -> None:
    """
    Connect, chat until the end, and raise C{SystemExit} with the exit status.

    With standard input and output on a terminal (see L{Console.is_interactive}) the chat is
    interactive and survives the server going away; otherwise it is plain lines, as in a pipe.
    Failing to connect at first ends the program in both modes.
    """
    options = parse_args(argv)
    console = Console() if console is None else console
    client = ChatClient(clock=reactor, nick=options.nick)  # type: ignore[arg-type]
    if options.insecure:
        print(INSECURE_WARNING, file=sys.stderr)
    dial = Dialler(reactor, client, options)
    try:
        server = cast(ServerSide, await dial())
    except Exception as error:
        cannot_connect(options, str(error))
    try:
        await server.ready.addTimeout(CONNECT_TIMEOUT_SECONDS, reactor)  # type: ignore[arg-type]
    except Exception as error:
        cannot_connect(options, tls_failure(error))
    try:
        if console.is_interactive():
            client.enable_reconnect(dial, dial.where)
            start_interactive(reactor, client, console, colour_wanted(options.no_color, console.environ))
        else:
            stdio.StandardIO(TerminalSide(client), reactor=reactor)  # type: ignore[arg-type]
        status = await client.done
    finally:
        console.restore()
    if client.error:
        print(f"chat: {client.error}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of C{python -m chat_twisted.client}."""
    console = Console()
    try:
        react(run, [sys.argv[1:] if argv is None else list(argv), console])
    finally:
        console.restore()
