"""
Password hashing with Argon2id, off the reactor thread, a few at a time.

L{PasswordHasher} owns its Argon2 parameters, the function that runs work in a thread, and the
queue of hashes waiting for a turn: hashing and checking take tens of milliseconds and tens of
MiB each, must never run on the reactor thread, and must not pile up without bound. Passwords
are never logged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import Deferred, fail, maybeDeferred

from chat_twisted.errors import Busy

#: Hashes (or checks) that may run at once, and how many more may wait for a turn.
MAX_RUNNING, MAX_WAITING = 2, 16

#: Runs C{f(*args)} somewhere else and fires with its result (deferToThreadPool, in production).
InThread = Callable[..., Deferred[Any]]


class PasswordHasher:
    """
    Hashes and checks passwords with Argon2id, each call run through C{in_thread}: at most
    C{max_running} at once, up to C{max_waiting} more in a queue (first come, first served);
    past that a call fails at once with L{Busy}.

    The default cost is argon2-cffi's (RFC 9106 low-memory profile: 64 MiB each); tests pass
    cheaper parameters through C{argon2}.
    """

    def __init__(
        self,
        in_thread: InThread,
        argon2: Argon2 | None = None,
        max_running: int = MAX_RUNNING,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        self._in_thread = in_thread
        self._argon2 = argon2 or Argon2()
        self._max_running = max_running
        self._max_waiting = max_waiting
        self.running = 0
        self._waiting: deque[tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]] = deque()

    @property
    def waiting(self) -> int:
        """How many calls wait for a turn."""
        return len(self._waiting)

    def hash(self, password: str) -> Deferred[str]:
        """Fire with the encoded Argon2id hash of C{password}, or fail with L{Busy}."""
        return self._run(self._argon2.hash, password)

    def verify(self, password_hash: str, password: str) -> Deferred[bool]:
        """Fire with whether C{password} matches C{password_hash} (False for a corrupt hash), or fail with L{Busy}."""
        return self._run(self._check, password_hash, password)

    def _run(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Run C{function(*args)} in a thread now, or queue it for a turn, or refuse it."""
        if self.running < self._max_running:
            return self._start(function, args)
        if len(self._waiting) >= self._max_waiting:
            return fail(Busy())
        turn: Deferred[Any] = Deferred()
        self._waiting.append((function, args, turn))
        return turn

    def _start(self, function: Callable[..., Any], args: tuple[Any, ...]) -> Deferred[Any]:
        self.running += 1
        return maybeDeferred(self._in_thread, function, *args).addBoth(self._finished)

    def _finished(self, result: Any) -> Any:
        self.running -= 1
        if self._waiting:
            function, args, turn = self._waiting.popleft()
            self._start(function, args).chainDeferred(turn)
        return result

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._argon2.verify(password_hash, password))
        except (VerificationError, InvalidHashError, ValueError):  # ValueError: a hash that isn't ASCII
            return False
