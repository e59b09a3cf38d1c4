"""
L{Console}: the process's own terminal, if it has one. Says whether to run interactively and in
colour, reads the window size, switches the terminal to raw mode and back (the saved settings
are restored however the program ends), and reports window size changes (SIGWINCH).
"""

from __future__ import annotations

import os
import signal
import termios
import tty
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger

log = Logger()

#: The window size assumed when the terminal does not say.
DEFAULT_SIZE = (80, 24)


def colour_wanted(no_color_option: bool, environ: Mapping[str, str]) -> bool:
    """
    Return True unless colour is turned off: by C{--no-color} (or C{color = no} in the config),
    by a non-empty C{NO_COLOR} (U{https://no-color.org}), or by C{TERM=dumb}.
    """
    return not (no_color_option or environ.get("NO_COLOR") or environ.get("TERM") == "dumb")


class Console:
    """
    The terminal on C{stdin_fd} and C{stdout_fd}. Owns the terminal settings saved by
    L{enter_raw} and the SIGWINCH handler installed by L{watch_size}; L{restore} puts both back
    and may be called any number of times.
    """

    def __init__(self, stdin_fd: int = 0, stdout_fd: int = 1, environ: Mapping[str, str] | None = None) -> None:
        self.stdin_fd = stdin_fd
        self.stdout_fd = stdout_fd
        self.environ = os.environ if environ is None else environ
        self._saved: list[Any] | None = None
        self._old_handler: Any = None
        self._watching = False

    def is_interactive(self) -> bool:
        """True if both standard input and output are terminals that can move the cursor."""
        return (
            os.isatty(self.stdin_fd)
            and os.isatty(self.stdout_fd)
            and self.environ.get("TERM", "") not in ("", "dumb")
        )

    def size(self) -> tuple[int, int]:
        """Return the window's (columns, rows), or L{DEFAULT_SIZE} if it cannot be read."""
        try:
            columns, rows = os.get_terminal_size(self.stdout_fd)
        except OSError:
            return DEFAULT_SIZE
        return (columns or DEFAULT_SIZE[0], rows or DEFAULT_SIZE[1])

    def enter_raw(self) -> None:
        """Save the terminal's settings and switch it to raw mode (keys arrive one by one, unechoed)."""
        if self._saved is None:
            self._saved = termios.tcgetattr(self.stdin_fd)
        tty.setraw(self.stdin_fd, termios.TCSADRAIN)

    def watch_size(self, callback: Callable[[], None], reactor: IReactorThreads) -> None:
        """Call C{callback} on the reactor thread each time the window changes size."""

        def resized(signum: int, frame: FrameType | None) -> None:
            reactor.callFromThread(callback)

        self._old_handler = signal.signal(signal.SIGWINCH, resized)
        self._watching = True

    def restore(self) -> None:
        """Put back the saved terminal settings and the old SIGWINCH handler (if changed)."""
        if self._watching:
            self._watching = False
            signal.signal(signal.SIGWINCH, self._old_handler)
        if self._saved is not None:
            saved, self._saved = self._saved, None
            try:
                termios.tcsetattr(self.stdin_fd, termios.TCSADRAIN, saved)
            except termios.error:
                log.failure("could not restore the terminal's settings")
