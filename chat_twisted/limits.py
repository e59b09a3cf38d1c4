"""
Limits that keep abuse cheap to survive, each driven by an injected clock (no sleeps).

Owned by the core; nothing here touches a transport.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

#: How many failing keys a FailureBackoff holds before it prunes stale ones.
_PRUNE_AT = 10_000


class FailureBackoff:
    """
    Slows down repeated failures (wrong passwords) per key: an account, an address.

    After the C{free}-th consecutive failure for a key, the next attempt must wait C{base}
    seconds, doubling with each further failure up to C{cap}. A success clears the key, and so
    does a quiet spell of C{cap} seconds after the wait. Owns one small record per key that has
    failed recently; records past their quiet spell are pruned as the table grows.
    """

    def __init__(self, clock: IReactorTime, free: int = 3, base: float = 2.0, cap: float = 300.0) -> None:
        self._clock = clock
        self._free = free
        self._base = base
        self._cap = cap
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, not before)
        self._prune_at = _PRUNE_AT

    def wait_for(self, key: str) -> float:
        """Return how many seconds remain before C{key} may try again (0 if it may now)."""
        record = self._failures.get(key)
        if record is None:
            return 0.0
        return max(0.0, record[1] - self._clock.seconds())

    def failed(self, key: str) -> None:
        """Record a failure for C{key}."""
        now = self._clock.seconds()
        count, not_before = self._failures.get(key, (0, now))
        if now - not_before > self._cap:
            count = 0  # the earlier failures are old news
        count += 1
        delay = 0.0 if count < self._free else min(self._cap, self._base * 2 ** (count - self._free))
        self._failures[key] = (count, now + delay)
        if len(self._failures) > self._prune_at:
            self._forget_stale(now)

    def succeeded(self, key: str) -> None:
        """Forget C{key}'s failures."""
        self._failures.pop(key, None)

    def _forget_stale(self, now: float) -> None:
        horizon = now - self._cap
        self._failures = {key: record for key, record in self._failures.items() if record[1] > horizon}
        # Prune again only once the table has doubled, so that a flood of keys costs O(1) each.
        self._prune_at = max(_PRUNE_AT, 2 * len(self._failures))


class TokenBucket:
    """
    A per-connection rate: up to C{burst} tokens, refilled at C{rate} tokens per second.

    Owns only its token count and when it last refilled. A C{rate} of 0 means unlimited.
    """

    __slots__ = ("_clock", "_rate", "_burst", "_tokens", "_updated")

    def __init__(self, clock: IReactorTime, rate: float, burst: float) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._updated = clock.seconds()

    def take(self, cost: float) -> float:
        """
        Spend C{cost} tokens. Return 0 if they were there, else how many seconds must pass
        before the spending is covered (the tokens are spent anyway, so waits queue up in order).
        """
        if self._rate <= 0:
            return 0.0
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
        self._updated = now
        self._tokens -= cost
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
