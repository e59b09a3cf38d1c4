"""
Limits that keep abuse cheap to survive, each driven by an injected clock (no sleeps).

Owned by the core; nothing here touches a transport.
"""

from __future__ import annotations

import ipaddress

from twisted.internet.interfaces import IReactorTime

from chat_twisted.errors import ChatError, ServerFull, TooManyConnectionsRecently, TooManyFromAddress

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

    def failures(self, key: str) -> int:
        """Return how many recent failures count for C{key} (0 once its quiet spell has passed)."""
        record = self._failures.get(key)
        if record is None or self._clock.seconds() - record[1] > self._cap:
            return 0
        return record[0]

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


def address_group(address: str, loopback: bool = True) -> str | None:
    """
    Return the group C{address} is counted in for per-address limits: the IPv4 address itself,
    or the /64 network of an IPv6 address (one subscriber's usual share). None for what is not
    an IP address (a UNIX socket path), and for loopback addresses unless C{loopback}.
    """
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback and not loopback:
        return None
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class ConnectionLimits:
    """
    Admits connections up to C{max_total} in all and C{max_per_address} at once per address
    group (see L{address_group}), and, given a C{clock}, at most C{per_window} new ones per
    group in each C{window} of seconds (a fixed window that starts with the group's first
    connection after the last one ended; 0 turns it off). Loopback addresses are exempt from
    the per-address limits unless C{limit_loopback}. Owns the count of admitted connections per
    group, and of each group's connections in its current window.
    """

    def __init__(
        self,
        max_total: int,
        max_per_address: int,
        limit_loopback: bool = False,
        clock: IReactorTime | None = None,
        per_window: int = 0,
        window: float = 600.0,
    ) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self.limit_loopback = limit_loopback
        self.total = 0
        self._per_group: dict[str, int] = {}
        self._clock = clock
        self.per_window = per_window if clock is not None else 0
        self.window = window
        self._windows: dict[str, tuple[float, int]] = {}  # group -> (window start, connections in it)
        self._prune_at = _PRUNE_AT

    def admit(self, address: str) -> ChatError | None:
        """Count a new connection from C{address}; return None, or why it is refused (uncounted)."""
        if self.total >= self.max_total:
            return ServerFull(self.max_total)
        group = self._group(address)
        if group is not None:
            count = self._per_group.get(group, 0)
            if count >= self.max_per_address:
                return TooManyFromAddress(self.max_per_address)
            if self.per_window > 0 and not self._within_rate(group):
                return TooManyConnectionsRecently(self.per_window, self.window)
            self._per_group[group] = count + 1
        self.total += 1
        return None

    def _within_rate(self, group: str) -> bool:
        """Count a connection in C{group}'s window; return False (uncounted) if the window is full."""
        assert self._clock is not None
        now = self._clock.seconds()
        start, count = self._windows.get(group, (now, 0))
        if now - start >= self.window:
            start, count = now, 0
        if count >= self.per_window:
            return False
        self._windows[group] = (start, count + 1)
        if len(self._windows) > self._prune_at:
            horizon = now - self.window
            self._windows = {key: record for key, record in self._windows.items() if record[0] > horizon}
            self._prune_at = max(_PRUNE_AT, 2 * len(self._windows))
        return True

    def release(self, address: str) -> None:
        """Forget one admitted connection from C{address}."""
        self.total -= 1
        group = self._group(address)
        if group is not None:
            remaining = self._per_group.pop(group) - 1
            if remaining:
                self._per_group[group] = remaining

    def _group(self, address: str) -> str | None:
        return address_group(address, loopback=self.limit_loopback)
