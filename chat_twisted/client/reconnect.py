"""
Connecting again after the server went away (interactive mode and the desktop window):
L{Backoff} says how long to wait before each try, L{Reconnector} makes the tries on an injected
clock and, for a status line, reports each change as a L{ConnectionStatus}.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet import defer, error
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted.client.tls import tls_failure

log = Logger()


def describe(reason: Failure) -> str:
    """Say in a few words, on one line, why a connection ended or could not be made."""
    if reason.check(error.ConnectionDone):
        return "the server closed the connection"
    if reason.check(error.ConnectionRefusedError):
        return "connection refused"
    if reason.check(error.TimeoutError, error.TCPTimedOutError, defer.TimeoutError):
        return "no answer"
    if reason.check(error.DNSLookupError):
        return "host name not found"
    if reason.check(error.ConnectionLost):
        return "the connection was lost"
    if reason.check(SSL.Error, VerificationError):
        return tls_failure(reason.value)
    return " ".join(reason.getErrorMessage().split()).rstrip(".")


class Link(enum.Enum):
    """Where the connection to the server stands."""

    CONNECTING = "connecting"  # a try is under way
    CONNECTED = "connected"  # up (and, over TLS, its handshake done)
    WAITING = "waiting"  # lost, or a try failed: the next try is at C{retry_at}


@dataclass(frozen=True)
class ConnectionStatus:
    """
    One change of the connection's state, for a status line: C{where} is C{host:port};
    C{reason} says why it was lost (C{WAITING} only); C{retry_at} is when, on the clock, the next
    try starts (C{WAITING} only).
    """

    link: Link
    where: str
    reason: str | None = None
    retry_at: float | None = None


class Backoff:
    """
    Capped exponential back-off with jitter: the n-th delay (from 0) is drawn from
    C{[(1 - jitter) * d, d]} where C{d = min(maximum, initial * factor ** n)}.

    C{random} returns a float in [0, 1); tests pass a fixed one.
    """

    def __init__(
        self,
        initial: float = 1.0,
        factor: float = 2.0,
        maximum: float = 30.0,
        jitter: float = 0.5,
        random: Callable[[], float] = random.random,
    ) -> None:
        self.initial, self.factor, self.maximum, self.jitter = initial, factor, maximum, jitter
        self._random = random
        self.attempts = 0

    def next_delay(self) -> float:
        """Return the delay before the next try, and count the try."""
        ceiling = min(self.maximum, self.initial * self.factor ** min(self.attempts, 64))
        self.attempts += 1
        return ceiling * (1 - self.jitter * self._random())

    def reset(self) -> None:
        """The connection is working again: start from the initial delay next time."""
        self.attempts = 0


class Reconnector:
    """
    Tries to connect again, each try after the next L{Backoff} delay, until one connects or
    L{stop} is called. Owns the pending timer and the pending connection attempt; says what it
    does through C{notice} (a line for the user) and, if given, C{status} (a L{ConnectionStatus}
    for a status line). A try whose connection is made but then lost (a failed TLS handshake,
    say) is reported with L{lost}, like the first loss. Writes to no transport.
    """

    def __init__(
        self,
        clock: IReactorTime,
        connect: Callable[[], Deferred[Any]],
        notice: Callable[[str], None],
        where: str,
        backoff: Backoff | None = None,
        status: Callable[[ConnectionStatus], None] | None = None,
    ) -> None:
        self.clock = clock
        self.backoff = Backoff() if backoff is None else backoff
        self._connect = connect
        self._notice = notice
        self._status = status
        self.where = where
        self._timer: IDelayedCall | None = None
        self._attempt: Deferred[Any] | None = None
        #: True from a loss (or L{start}) until a new connection is up.
        self.reconnecting = False
        self._first = False

    def start(self) -> None:
        """
        Make the first connection now, with the same tries as after a loss if it fails (for a
        program that stays open without a server, such as the desktop window).
        """
        self.reconnecting = self._first = True
        self._try()

    def lost(self, reason: str) -> None:
        """The connection (or a try) failed for C{reason}: say so and try again after a delay."""
        delay = self.backoff.next_delay()
        if self._first:
            self._notice(f"cannot connect to {self.where}: {reason}; trying again in {delay:.1f} s")
        elif self.reconnecting:
            self._notice(f"cannot reconnect to {self.where}: {reason}; trying again in {delay:.1f} s")
        else:
            self._notice(f"lost the connection to {self.where}: {reason}; reconnecting in {delay:.1f} s")
        log.info("reconnecting to {where} in {delay:.1f} s", where=self.where, delay=delay)
        self.reconnecting = True
        self._timer = self.clock.callLater(delay, self._try)
        self._report(Link.WAITING, reason, self.clock.seconds() + delay)

    def connected(self) -> None:
        """A new connection is up (and, over TLS, its handshake done): tell the user."""
        if self.reconnecting:
            self.reconnecting = False
            self._notice(f"{'connected' if self._first else 'reconnected'} to {self.where}")
            self._first = False
        self._report(Link.CONNECTED)

    def stop(self) -> None:
        """Give up: cancel the pending timer or connection attempt."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        if self._attempt is not None:
            self._attempt.cancel()
        self.reconnecting = False

    def _report(self, link: Link, reason: str | None = None, retry_at: float | None = None) -> None:
        if self._status is not None:
            self._status(ConnectionStatus(link, self.where, reason, retry_at))

    def _try(self) -> None:
        self._timer = None
        self._report(Link.CONNECTING)
        self._attempt = attempt = self._connect()
        attempt.addBoth(self._tried)

    def _tried(self, result: object) -> None:
        self._attempt = None
        if isinstance(result, Failure):
            if not result.check(CancelledError):
                self.lost(describe(result))
