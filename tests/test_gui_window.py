"""
End to end, as a person would use it: the desktop window (``python -m chat_twisted.gui``) on a
virtual X display (an Xvfb of our own, with an X authority file) against the real
``twistd -n chat``, with a user on a raw socket at the other end. Skipped, saying why, where
Xvfb (or xauth) is not installed. Every wait is bounded.

The test reaches into the window with Tk's own ``send``: it types into the very entry widget
the keyboard types into and fires the same ``<Return>`` binding, and reads back the text the
window shows. That needs nothing beyond Xvfb (no xdotool) and no test hook in the program.
With ImageMagick's ``import`` installed it also takes a screenshot of the window; set
C{CHAT_GUI_SCREENSHOT=docs/gui.png} to keep it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import WAIT, ServerProcess, SocketClient, VirtualDisplay, wait_until

tkinter = pytest.importorskip("tkinter", reason="this Python has no tkinter (Debian: apt-get install python3-tk)")

#: No CHAT_* variables or user config file of whoever runs the tests reach the client here.
pytestmark = pytest.mark.usefixtures("no_user_settings")

#: The window's Tk application name (see chat_twisted.gui.view.APP_NAME).
APP = "chat_twisted"


class Window:
    """The window program, run as a user would, and a Tk interpreter of ours on the same display to reach it."""

    def __init__(self, display: VirtualDisplay, workdir: Path, *args: str) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CHAT_")}
        env.update(display.environ, PYTHONUNBUFFERED="1", XDG_CONFIG_HOME=str(workdir / "config"))
        # Ours first: two Tk interpreters registering on one display at once can lose one's name.
        os.environ["XAUTHORITY"] = display.environ["XAUTHORITY"]  # read by Xlib when our Tk connects
        self.tk = tkinter.Tk(screenName=display.name)
        self.tk.withdraw()
        self.log = open(workdir / "gui.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "chat_twisted.gui", *args],
                                        env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)

    def wait_open(self) -> None:
        """
        Wait (bounded) until the window answers Tk's send. Call it once the program has shown a
        sign of life (its login on the server): Tk may drop an application that registers its
        name on the display while another interpreter is reading the list of names.
        """

        def answers() -> bool:
            try:
                return self.tcl("winfo exists .input") == "1"
            except tkinter.TclError:  # no application named chat_twisted, yet
                return self.process.poll() is not None

        wait_until(answers, "the window to answer", self.interps)
        assert self.process.poll() is None, self.log_text()

    def log_text(self) -> str:
        """What the program wrote to its standard output and error."""
        self.log.flush()
        return Path(self.log.name).read_text("utf-8", errors="replace")

    def interps(self) -> tuple[str, ...]:
        """The names of the Tk applications on the display."""
        return tuple(self.tk.tk.splitlist(self.tk.tk.call("winfo", "interps")))

    def _exited(self) -> bool:
        return self.process.poll() is not None

    def tcl(self, script: str) -> str:
        """Run Tcl C{script} in the window's process (on its reactor's thread, between events); return the result."""
        return str(self.tk.tk.call("send", APP, script))

    def text(self, tab: int = 0) -> str:
        """The lines shown in the window's tab number C{tab} (0: the room; empty while the tab does not exist)."""
        widget = f".body.tabs.tab{tab}.text"
        return self.tcl(f"if {{[winfo exists {widget}]}} {{{widget} get 1.0 end}}")

    def wait_text(self, wanted: str, tab: int = 0) -> str:
        """Wait (bounded) until tab C{tab} shows C{wanted}; return all it shows."""
        return str(wait_until(lambda: wanted in (shown := self.text(tab)) and shown, f"{wanted!r} in tab {tab}",
                              lambda: self.text(tab)))

    def type(self, line: str) -> None:
        """Type C{line} into the input line and press Enter."""
        self.tcl(f".input insert end {{{line}}}; event generate .input <Return>")

    def exit_status(self) -> int:
        """Wait (bounded) for the program to end; return its exit status."""
        return self.process.wait(WAIT)

    def close(self) -> None:
        """Kill the program if it is still running; close our Tk interpreter."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT)
        self.log.close()
        self.tk.destroy()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running server on an ephemeral port of 127.0.0.1, stopped after the test."""
    process = ServerProcess(tmp_path)
    try:
        yield process
    finally:
        process.stop()


def screenshot(display: VirtualDisplay, window: Window, path: Path) -> None:
    """Save a PNG of the window with ImageMagick's import (if installed; else nothing is saved)."""
    import_command = shutil.which("import")
    if import_command is None:
        return
    window_id = window.tcl("winfo id .")
    subprocess.run([import_command, "-window", window_id, str(path)], env=dict(os.environ, **display.environ),
                   check=True, capture_output=True, timeout=WAIT)
    kept = os.environ.get("CHAT_GUI_SCREENSHOT")
    if kept:
        shutil.copyfile(path, kept)


def test_window_chats_with_a_socket_user(x_display: VirtualDisplay, server: ServerProcess, tmp_path: Path) -> None:
    """
    The window, started with --nick, logs in, shows a raw-socket user's lines (a long one wrapped)
    and the room's topic and members, sends what is typed in its input to that user, puts a
    private message in its own tab, and leaves with /quit (exit 0) when closed.
    """
    bob = SocketClient(server.port)
    window = None
    try:
        bob.login("bob")
        bob.send("/topic Weekly planning\n")
        bob.expect("set the topic of lobby")
        window = Window(x_display, tmp_path, "--port", str(server.port), "--nick", "alice")
        bob.expect("* alice joined lobby")
        window.wait_open()
        window.wait_text("* alice joined lobby")
        assert window.tcl("focus") == ".input"
        wait_until(lambda: window.tcl(".body.side.members get 0 end") == "alice bob", "the members")
        assert window.tcl(".top.room cget -text") == "lobby"
        assert window.tcl(".top.topic cget -text") == "Weekly planning"
        assert window.tcl(".status cget -text") == f"connected to 127.0.0.1:{server.port}"

        bob.send("hello alice, " + "this line is long enough to be wrapped in the window " * 3 + "(end)\n")
        shown = window.wait_text("(end)")
        assert "] bob: hello alice, this line" in shown
        assert "users in lobby" not in shown  # the window's own /who is not shown

        window.type("hi bob, from the window")
        assert bob.expect("alice: hi bob, from the window")[-1].endswith("] alice: hi bob, from the window")
        window.wait_text("alice: hi bob, from the window")
        assert window.tcl(".input get") == ""

        bob.send("/msg alice a word in private\n")
        assert "(private) bob: a word in private" in window.wait_text("a word in private", tab=1)
        assert window.tcl(".body.tabs tab .body.tabs.tab1 -text") == "bob"
        screenshot(x_display, window, tmp_path / "gui.png")

        window.tcl("eval [wm protocol . WM_DELETE_WINDOW]")  # what the window manager does on closing
        bob.expect("* alice left lobby (quit)")
        assert window.exit_status() == 0
    finally:
        if window is not None:
            window.close()
        bob.close()
