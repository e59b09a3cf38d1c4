"""
Tests of the desktop window's thin Tk side in this process, on a virtual X display of our own:
L{ChatWindow} showing what L{WindowPresenter} tells it and handing keys back, L{LoginDialog},
and C{run} from the dialog to the end, its server on a StringTransport through a
L{MemoryReactorClock}. Skipped, saying why, where Xvfb, xauth or tkinter is missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twisted.internet.defer import ensureDeferred
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock

from chat_twisted.client import ChatClient
from chat_twisted.client.reconnect import ConnectionStatus, Link
from tests.e2e import VirtualDisplay
from tests.helpers import ServerConnection, accept, exit_code

tkinter = pytest.importorskip("tkinter", reason="this Python has no tkinter (Debian: apt-get install python3-tk)")

from chat_twisted.gui import app  # noqa: E402  (needs tkinter)
from chat_twisted.gui.dialog import LoginDialog  # noqa: E402
from chat_twisted.gui.login import Login, last_login_path, load_last  # noqa: E402
from chat_twisted.gui.model import WindowPresenter  # noqa: E402
from chat_twisted.gui.view import ChatWindow  # noqa: E402

#: No CHAT_* variables or user config file of whoever runs the tests reach the client here.
pytestmark = pytest.mark.usefixtures("no_user_settings")


@pytest.fixture
def root(x_display: VirtualDisplay, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A Tk root window on the session's virtual display, destroyed after the test."""
    for name, value in x_display.environ.items():
        monkeypatch.setenv(name, value)
    tk = tkinter.Tk()
    try:
        yield tk
    finally:
        try:
            tk.destroy()
        except tkinter.TclError:  # run() destroyed it already
            pass


class Shown:
    """A L{ChatWindow} driven by a real presenter and client, its server on a StringTransport."""

    def __init__(self, root: Any) -> None:
        self.root = root
        self.clock = Clock()
        self.client = ChatClient(self.clock, nick="alice")
        self.window = ChatWindow(root)
        self.presenter = WindowPresenter(self.client, self.window, self.clock)
        self.window.attach(self.presenter)
        self.client.terminal_attached(self.presenter)
        self.server = ServerConnection(self.client)
        self.server.sent()
        root.geometry("600x300")
        root.update()
        self.window.input.focus_force()
        root.update()

    def receive(self, *lines: str) -> None:
        self.server.receive("".join(line + "\r\n" for line in lines).encode("utf-8"))
        self.root.update()

    def text(self, tab: int = 0) -> str:
        return str(self.root.nametowidget(f".body.tabs.tab{tab}.text").get("1.0", "end-1c"))


def test_window_shows_room_members_lines_and_private_tabs(root: Any) -> None:
    """Server lines land in the room's text or a private tab, with the room, topic, members and status shown."""
    shown = Shown(root)
    shown.presenter.status(ConnectionStatus(Link.CONNECTED, "127.0.0.1:5000"))
    shown.receive("* Welcome, alice! 2 users online. You are in lobby; type /help for commands.",
                  "* alice joined lobby", "* 2 users in lobby: alice, bob", "* topic of lobby: plans",
                  "[12:00:00] bob: hello", "[12:00:01] (private) bob: psst")
    assert shown.text() == ("* Welcome, alice! 2 users online. You are in lobby; type /help for commands.\n"
                            "* alice joined lobby\n* topic of lobby: plans\n[12:00:00] bob: hello")
    assert shown.text(1) == "[12:00:01] (private) bob: psst"
    assert shown.window.members.get(0, "end") == ("alice", "bob")
    assert (shown.window.room.cget("text"), shown.window.topic.cget("text")) == ("lobby", "plans")
    assert shown.window.notebook.tab(".body.tabs.tab1", "text") == "bob"
    assert shown.window.status.cget("text") == "connected to 127.0.0.1:5000"
    assert shown.text().count("\n") == 3


def test_keys_reach_the_presenter(root: Any) -> None:
    """Enter sends the input line, Up recalls it, the join field joins, the password prompt masks the input."""
    shown = Shown(root)
    shown.window.input.insert(0, "hi there")
    shown.window.input.event_generate("<Return>")
    assert shown.server.sent() == [b"hi there"]
    assert shown.window.input.get() == ""
    shown.window.input.event_generate("<Up>")
    assert shown.window.input.get() == "hi there"
    shown.window.input.event_generate("<Down>")
    assert shown.window.input.get() == ""
    shown.window.join_entry.insert(0, "dev")
    shown.window.join_button.invoke()
    assert shown.server.sent() == [b"/join dev"]
    shown.receive("* alice is registered. Password (or /nick NAME for another nickname):")
    assert shown.window.input.cget("show") == "*"


def test_tab_selection_and_clear(root: Any) -> None:
    """Selecting a private tab makes typing go there; /clear empties that tab only."""
    shown = Shown(root)
    shown.receive("[12:00:00] bob: in the room", "[12:00:01] (private) bob: psst")
    shown.window.notebook.select(".body.tabs.tab1")
    root.update()
    assert shown.presenter.current_tab == "bob"
    shown.presenter.entered("/clear")
    assert shown.text(1) == ""
    assert shown.text() == "[12:00:00] bob: in the room"


def test_view_follows_newest_unless_scrolled_up(root: Any) -> None:
    """New lines scroll the view to the end, except while the user has scrolled up to read."""
    shown = Shown(root)
    shown.receive(*[f"[12:00:00] bob: line {number}" for number in range(100)])
    text = root.nametowidget(".body.tabs.tab0.text")
    assert text.yview()[1] == 1.0
    text.yview_moveto(0)
    root.update()
    shown.receive("[12:00:00] bob: one more")
    assert text.yview()[0] == 0.0


def test_login_dialog_answers_checked_fields(root: Any) -> None:
    """The dialog starts from its defaults, refuses a bad port with a line saying why, and answers the Login."""
    dialog = LoginDialog(root, Login("chat.example", 5001, "alice"))
    dialog.fields["port"].delete(0, "end")
    dialog.fields["port"].insert(0, "x")
    root.nametowidget(".login.buttons.connect").invoke()
    assert not dialog.answer.called
    assert dialog.error.cget("text") == "the port must be a number, not 'x'"
    dialog.fields["port"].delete(0, "end")
    dialog.fields["port"].insert(0, "5002")
    dialog.fields["password"].insert(0, "s3cret")
    root.nametowidget(".login.buttons.connect").invoke()
    assert dialog.answer.result == Login("chat.example", 5002, "alice", "s3cret")


def test_login_dialog_cancel(root: Any) -> None:
    """Cancelling the dialog answers None."""
    dialog = LoginDialog(root, Login("h", 5000, ""))
    root.nametowidget(".login.buttons.cancel").invoke()
    assert dialog.answer.result is None


def test_run_from_dialog_to_quit(root: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """C{run} asks for a login, remembers it, connects and logs in, and exits 0 once closing the window has quit."""
    monkeypatch.setattr(app, "open_root", lambda: root)
    reactor = MemoryReactorClock()
    done = ensureDeferred(app.run(reactor, ["--port", "6000"], environ=dict(os.environ)))
    root.nametowidget(".login.nick").insert(0, "alice")
    root.nametowidget(".login.buttons.connect").invoke()
    assert load_last(last_login_path(os.environ)) == Login("127.0.0.1", 6000, "alice")
    server = accept(reactor)
    assert server.value() == b"alice\r\n"
    assert root.nametowidget(".status").cget("text") == "connected to 127.0.0.1:6000"
    server.clear()
    root.tk.call(root.protocol("WM_DELETE_WINDOW"))
    assert server.value() == b"/quit\r\n"
    server.loseConnection()
    assert exit_code(done) == 0


def test_run_dialog_cancelled_exits_0(root: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelling the login dialog ends the program with status 0 without connecting."""
    monkeypatch.setattr(app, "open_root", lambda: root)
    reactor = MemoryReactorClock()
    done = ensureDeferred(app.run(reactor, [], environ=dict(os.environ)))
    root.nametowidget(".login.buttons.cancel").invoke()
    assert exit_code(done) == 0
    assert reactor.tcpClients == []


def test_no_display_exits_1(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Without a display the program says so in one line and exits 1."""
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(SystemExit) as exited:
        app.open_root()
    assert exited.value.code == 1
    assert capsys.readouterr().err.startswith("chat: cannot open a window: ")
