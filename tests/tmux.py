"""
A program running in a real terminal: a detached tmux session on a private tmux server, keys sent
by ``tmux send-keys`` and the screen read by ``tmux capture-pane``. Every wait is bounded.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.e2e import WAIT

#: The tmux program, or None where tmux is not installed.
TMUX = shutil.which("tmux")


class TmuxPane:
    """
    One command running in a detached 100x30 tmux session on a tmux server of its own (its socket
    in a short-named temporary directory, removed on L{close}); the command's exit status is
    written to C{status_path}.
    """

    def __init__(self, workdir: Path, command: list[str], width: int = 100, height: int = 30) -> None:
        self._socket_dir = tempfile.mkdtemp(prefix="chat-tmux-")
        self.socket = os.path.join(self._socket_dir, "socket")
        self.status_path = workdir / f"{os.path.basename(self._socket_dir)}.status"
        script = f"{shlex.join(command)}; echo $? > {shlex.quote(str(self.status_path))}; sleep 60"
        self._tmux("new-session", "-d", "-x", str(width), "-y", str(height), "-s", "chat",
                   "-c", os.getcwd(), "sh", "-c", script)

    def _tmux(self, *args: str) -> str:
        result = subprocess.run([TMUX or "tmux", "-S", self.socket, "-f", os.devnull, *args],
                                capture_output=True, timeout=WAIT, check=True)
        return result.stdout.decode("utf-8", errors="replace")

    def type(self, text: str) -> None:
        """Type C{text}, character by character, as it is."""
        self._tmux("send-keys", "-t", "chat", "-l", text)

    def press(self, *keys: str) -> None:
        """Press the named keys (C{Enter}, C{C-c}, C{Up}...)."""
        self._tmux("send-keys", "-t", "chat", *keys)

    def rows(self, colours: bool = False) -> list[str]:
        """Return the screen's rows (with SGR sequences if C{colours}), blank rows at the bottom dropped."""
        rows = self._tmux("capture-pane", "-p", *(["-e"] if colours else []), "-t", "chat").split("\n")
        while rows and not rows[-1].strip():
            rows.pop()
        return rows

    def resize(self, width: int, height: int) -> None:
        """Change the window's size (the client gets SIGWINCH)."""
        self._tmux("resize-window", "-t", "chat", "-x", str(width), "-y", str(height))

    def wait_for(self, check: Callable[[list[str]], bool], what: str, timeout: float = WAIT) -> list[str]:
        """Wait (bounded) until the screen's rows satisfy C{check}; return them."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if check(rows):
                return rows
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {what}:\n" + "\n".join(rows))
            time.sleep(0.05)

    def exit_status(self) -> int:
        """Wait (bounded) for the command to end and return its exit status."""
        deadline = time.monotonic() + WAIT
        while not self.status_path.exists() or not self.status_path.read_text().strip():
            if time.monotonic() > deadline:
                raise AssertionError("the client did not exit:\n" + "\n".join(self.rows()))
            time.sleep(0.05)
        return int(self.status_path.read_text())

    def close(self) -> None:
        """Stop the tmux server and everything in it; remove its socket."""
        subprocess.run([TMUX or "tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=WAIT)
        shutil.rmtree(self._socket_dir, ignore_errors=True)
