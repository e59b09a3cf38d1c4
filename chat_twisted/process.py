"""
What a long-running server asks of its process: enough file descriptors, a clean exit on SIGTERM,
and, on SIGUSR2, every thread's stack written to standard error (for a process that seems stuck).

L{ProcessService} owns no chat state and touches no connection. twistd normally re-raises the
SIGTERM that stopped it, so the process ends "killed by signal"; an operator (or systemd) asking
for a stop should instead see the shutdown finish and the process exit 0.
"""

from __future__ import annotations

import faulthandler
import resource
import signal
import sys
import threading
from types import FrameType

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorCore
from twisted.logger import Logger

log = Logger()


def raise_open_file_limit() -> int:
    """Raise the soft limit on open files to the hard limit; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        return soft
    return hard


class ProcessService(Service):
    """At start-up, raises the open-file limit and, once the reactor runs, handles SIGTERM as a clean stop."""

    def __init__(self, reactor: IReactorCore) -> None:
        self._reactor = reactor
        self._stopping = False

    def startService(self) -> None:
        """Raise the open-file limit now; take over SIGTERM once the reactor has set up its handlers."""
        super().startService()
        log.info("open file limit: {limit}", limit=raise_open_file_limit())
        self._reactor.callWhenRunning(self._handle_sigterm)

    def _handle_sigterm(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._stop)
            self._dump_stacks_on_sigusr2()

    @staticmethod
    def _dump_stacks_on_sigusr2() -> None:
        """SIGUSR2 writes every thread's stack to the process's own standard error (twistd logs its replacement)."""
        stderr = sys.__stderr__
        try:
            if stderr is not None:
                faulthandler.register(signal.SIGUSR2, file=stderr, all_threads=True)
        except (ValueError, OSError):  # no usable file descriptor: no stack dumps
            log.info("SIGUSR2 stack dumps are off: standard error has no file descriptor")

    def _stop(self, number: int, frame: FrameType | None) -> None:
        if self._stopping:
            return  # already on its way; a second SIGTERM must not spoil the clean stop
        self._stopping = True
        log.info("Received SIGTERM, shutting down.")
        self._reactor.callFromThread(self._reactor.stop)  # type: ignore[attr-defined]
