"""
Password hashing with Argon2id, off the reactor thread.

L{PasswordHasher} owns only its Argon2 parameters and the function that runs work in a thread;
hashing and checking take tens of milliseconds and must never run on the reactor thread.
Passwords are never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from argon2 import PasswordHasher as Argon2
from argon2.exceptions import InvalidHashError, VerificationError
from twisted.internet.defer import Deferred


#: Runs C{f(*args)} somewhere else and fires with its result (deferToThreadPool, in production).
InThread = Callable[..., Deferred[Any]]


class PasswordHasher:
    """
    Hashes and checks passwords with Argon2id, each call run through C{in_thread}.

    The default cost is argon2-cffi's (RFC 9106 low-memory profile); tests pass cheaper
    parameters through C{argon2}.
    """

    def __init__(self, in_thread: InThread, argon2: Argon2 | None = None) -> None:
        self._in_thread = in_thread
        self._argon2 = argon2 or Argon2()

    def hash(self, password: str) -> Deferred[str]:
        """Fire with the encoded Argon2id hash of C{password}."""
        return self._in_thread(self._argon2.hash, password)

    def verify(self, password_hash: str, password: str) -> Deferred[bool]:
        """Fire with whether C{password} matches C{password_hash} (False for a corrupt hash)."""
        return self._in_thread(self._check, password_hash, password)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._argon2.verify(password_hash, password))
        except (VerificationError, InvalidHashError, ValueError):  # ValueError: a hash that isn't ASCII
            return False
