"""
The desktop window program: L{run} opens the window (after the login dialog if no nickname was
given), connects and reconnects as the terminal client does, and exits with the status
L{ChatClient} decided; L{main} runs it under C{react}.

Tk and the reactor share the reactor's thread: C{twisted.internet.tksupport} has the reactor
call Tk's C{update} every 10 ms, so every Tk callback (a key, a click) runs on the reactor's
thread, between network events, and no other thread ever touches Tk.
"""

from __future__ import annotations

import os
import sys
import tkinter
from collections.abc import Mapping, Sequence

from twisted.internet import tksupport
from twisted.internet.task import react
from twisted.logger import Logger

from chat_twisted.client.dial import Dialler
from chat_twisted.client.options import parse_args
from chat_twisted.client.session import ChatClient
from chat_twisted.client.tls import INSECURE_WARNING
from chat_twisted.gui.dialog import LoginDialog
from chat_twisted.gui.login import last_login_path, load_last, login_defaults, save_last
from chat_twisted.gui.model import WindowPresenter
from chat_twisted.gui.view import APP_NAME, ChatWindow

log = Logger()


def open_root() -> tkinter.Tk:
    """Create the Tk root window (named L{APP_NAME} for Tk's C{send}); exit 1 if there is no display."""
    try:
        root = tkinter.Tk(className="ChatTwisted")
    except tkinter.TclError as error:
        print(f"chat: cannot open a window: {error}", file=sys.stderr)
        raise SystemExit(1)
    root.tk.call("tk", "appname", APP_NAME)
    return root


async def run(reactor: object, argv: Sequence[str], environ: Mapping[str, str] | None = None) -> None:
    """Open the window, chat until the user leaves, and raise C{SystemExit} with the exit status."""
    environ = os.environ if environ is None else environ
    options = parse_args(argv, environ, prog="python -m chat_twisted.gui",
                         description="Chat on a chat_twisted server in a desktop window.")
    root = open_root()
    tksupport.install(root)
    try:
        password = None
        if not options.nick:
            path = last_login_path(environ)
            login = await LoginDialog(root, login_defaults(options.host, options.port, load_last(path))).answer
            if login is None:
                raise SystemExit(0)
            save_last(path, login)
            options.host, options.port, options.nick, password = login.host, login.port, login.nick, login.password
        client = ChatClient(reactor, options.nick, password)  # type: ignore[arg-type]
        window = ChatWindow(root)
        presenter = WindowPresenter(client, window, reactor)  # type: ignore[arg-type]
        window.attach(presenter)
        client.terminal_attached(presenter)
        if options.insecure:
            client.notice(INSECURE_WARNING.removeprefix("chat: "))
        dial = Dialler(reactor, client, options)
        client.enable_reconnect(dial, dial.where, status=presenter.status).start()
        status = await client.done
    finally:
        tksupport.uninstall()
        root.destroy()
    raise SystemExit(status)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of C{python -m chat_twisted.gui}."""
    react(run, [sys.argv[1:] if argv is None else list(argv)])
