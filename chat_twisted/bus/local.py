"""
L{LocalBus}: the L{IChatBus} inside one process. The default when no Redis is configured, and
the fake the core's tests use: no sockets, no timers, leases read from an injected clock.

Several LocalBus objects may share one L{LocalHub} (the shared state: sequence counters, name
claims, heartbeats, presence), so that one test can run several "processes" on one clock. A
LocalBus can also be cut off from its hub and restored (L{LocalBus.cut}, L{LocalBus.restore}),
to show the core a lost link the way RedisBus does when Redis goes away.

Delivery is synchronous: L{LocalBus.publish} hands the message to every subscriber, on every
bus of the hub, before it returns. A publish made by a receiver during a delivery is queued and
delivered right after the delivery in progress ends, so that every subscriber sees one order.
Every Deferred it returns has already fired, except a subscribe made while cut off (it fires
on restore).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from chat_twisted.bus import BusStatus, BusUnavailable, IChatBus, ProcessPresence, Receiver
from chat_twisted.bus._subscriptions import Subscriptions, report

log = Logger()


class LocalHub:
    """
    What the buses of one hub share, as the Redis server is for RedisBus: each channel's
    sequence counter, name claims and heartbeats (each with the time its lease ends, read
    from C{clock}), presence entries, and the queue of messages being delivered.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.counters: dict[str, int] = {}
        self.claims: dict[str, tuple[str, float]] = {}
        self.heartbeats: dict[str, float] = {}
        self.presence: dict[str, dict[str, bytes]] = {}
        self.buses: list[LocalBus] = []
        self._queue: deque[tuple[str, int, bytes]] = deque()
        self._delivering = False

    def holder(self, name: str) -> str | None:
        """The owner whose lease on C{name} is running, or None."""
        held = self.claims.get(name)
        if held is None or held[1] <= self.clock.seconds():
            return None
        return held[0]

    def alive(self, process_id: str) -> bool:
        """Whether the heartbeat lease of C{process_id} is running."""
        return self.heartbeats.get(process_id, float("-inf")) > self.clock.seconds()

    def publish(self, channel: str, payload: bytes) -> int:
        """
        Give C{payload} the next sequence number of C{channel}, deliver it (or queue it behind
        the delivery in progress), and return the number.
        """
        seq = self.counters.get(channel, 0) + 1
        self.counters[channel] = seq
        self._queue.append((channel, seq, payload))
        if not self._delivering:
            self._delivering = True
            try:
                while self._queue:
                    message = self._queue.popleft()
                    for bus in list(self.buses):
                        bus._receive(*message)
            finally:
                self._delivering = False
        return seq


@implementer(IChatBus)
class LocalBus:
    """
    One process's view of a L{LocalHub}: its subscriptions and state callbacks. It owns no
    transport. Made with only a clock, it has a hub of its own; L{sibling} makes another bus
    on the same hub.
    """

    def __init__(self, clock: IReactorTime, hub: LocalHub | None = None) -> None:
        if hub is not None and hub.clock is not clock:
            raise ValueError("a LocalBus must use its hub's clock")
        self.hub = hub if hub is not None else LocalHub(clock)
        self._clock = clock
        self._subscriptions = Subscriptions()
        self._callbacks: list[Callable[[BusStatus], object]] = []
        #: See L{IChatBus.batch_runner}; each message is delivered on its own here.
        self.batch_runner: Callable[[Callable[[], None]], None] = lambda handle: handle()
        self._running = False
        self._cut = False
        self._beating: set[str] = set()

    def sibling(self) -> LocalBus:
        """Return a new bus on the same hub: another process of the same cluster."""
        return LocalBus(self._clock, self.hub)

    # --- faults, for tests ------------------------------------------------------------------

    def cut(self) -> None:
        """
        Act as if the link to the others were lost: report it, fail every call with
        L{BusUnavailable} and miss every message until L{restore}.
        """
        if self._cut:
            return
        self._cut = True
        self._report(BusStatus(connected=False))

    def restore(self) -> None:
        """Mend the link cut by L{cut}: subscriptions go on and the report names the channels that missed messages."""
        if not self._cut:
            return
        self._cut = False
        gaps = frozenset(
            channel for channel in self._subscriptions
            if self._subscriptions.synced(channel, self.hub.counters.get(channel, 0))
        )
        self._report(BusStatus(connected=True, gaps=gaps))

    # --- IChatBus ---------------------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Join the hub."""
        if not self._running:
            self._running = True
            self.hub.buses.append(self)
        return succeed(None)

    def stop(self) -> Deferred[None]:
        """Leave the hub; pending subscribes fail with CancelledError."""
        if self._running:
            self._running = False
            self.hub.buses.remove(self)
            self._subscriptions.cancel_all()
        return succeed(None)

    def publish(self, channel: str, payload: bytes) -> Deferred[int]:
        """Deliver C{payload} to every subscriber of C{channel} on the hub; fires with its sequence number."""
        problem = self._unavailable()
        if problem is not None:
            return problem
        return succeed(self.hub.publish(channel, payload))

    def subscribe(self, channel: str, receiver: Receiver) -> Deferred[int]:
        """Add C{receiver}; fires at once with the channel's counter, or on restore while cut off."""
        if not self._running:
            return fail(BusUnavailable("the bus is not running"))
        waiter, new = self._subscriptions.add(channel, receiver)
        if new and not self._cut:
            self._subscriptions.synced(channel, self.hub.counters.get(channel, 0))
        return waiter

    def unsubscribe(self, channel: str, receiver: Receiver) -> None:
        """Remove C{receiver} from C{channel}."""
        self._subscriptions.remove(channel, receiver)

    def claim(self, name: str, owner: str, lease_seconds: float) -> Deferred[bool]:
        """Take C{name} for C{owner} if free or already C{owner}'s."""
        problem = self._unavailable()
        if problem is not None:
            return problem
        if self.hub.holder(name) not in (None, owner):
            return succeed(False)
        self.hub.claims[name] = (owner, self._clock.seconds() + lease_seconds)
        return succeed(True)

    def renew(self, names: Iterable[str], owner: str, lease_seconds: float) -> Deferred[frozenset[str]]:
        """Restart the leases C{owner} still holds among C{names}; fires with those names."""
        problem = self._unavailable()
        if problem is not None:
            return problem
        held = frozenset(name for name in names if self.hub.holder(name) == owner)
        ends = self._clock.seconds() + lease_seconds
        for name in held:
            self.hub.claims[name] = (owner, ends)
        return succeed(held)

    def release(self, name: str, owner: str) -> Deferred[bool]:
        """Free C{name} if C{owner} holds it."""
        problem = self._unavailable()
        if problem is not None:
            return problem
        if self.hub.holder(name) != owner:
            return succeed(False)
        del self.hub.claims[name]
        return succeed(True)

    def owner_of(self, name: str) -> Deferred[str | None]:
        """Fire with the holder of C{name}, or None."""
        problem = self._unavailable()
        if problem is not None:
            return problem
        return succeed(self.hub.holder(name))

    def heartbeat(self, process_id: str, lease_seconds: float) -> Deferred[bool]:
        """Start the lease of C{process_id} again; False if this bus's previous one had ended."""
        problem = self._unavailable()
        if problem is not None:
            return problem
        continuous = self.hub.alive(process_id) or process_id not in self._beating
        self._beating.add(process_id)
        self.hub.heartbeats[process_id] = self._clock.seconds() + lease_seconds
        return succeed(continuous)

    def update_presence(self, process_id: str, changes: Mapping[str, bytes | None]) -> Deferred[None]:
        """Set or remove presence entries of C{process_id}."""
        problem = self._unavailable()
        if problem is not None:
            return problem
        entries = self.hub.presence.setdefault(process_id, {})
        for key, value in changes.items():
            if value is None:
                entries.pop(key, None)
            else:
                entries[key] = bytes(value)
        return succeed(None)

    def presence(self) -> Deferred[dict[str, ProcessPresence]]:
        """Fire with every process that sent a heartbeat or presence entries and was not forgotten since."""
        problem = self._unavailable()
        if problem is not None:
            return problem
        known = set(self.hub.heartbeats) | set(self.hub.presence)
        return succeed({
            process_id: ProcessPresence(self.hub.alive(process_id), dict(self.hub.presence.get(process_id, {})))
            for process_id in sorted(known)
        })

    def forget_process(self, process_id: str) -> Deferred[dict[str, bytes] | None]:
        """Take away the entries of a process whose lease has ended; None if alive, unknown or already forgotten."""
        problem = self._unavailable()
        if problem is not None:
            return problem
        known = process_id in self.hub.heartbeats or process_id in self.hub.presence
        if not known or self.hub.alive(process_id):
            return succeed(None)
        self.hub.heartbeats.pop(process_id, None)
        return succeed(self.hub.presence.pop(process_id, {}))

    def on_state(self, callback: Callable[[BusStatus], object]) -> None:
        """Call C{callback} on every change of the link (L{cut}, L{restore})."""
        self._callbacks.append(callback)

    # --- inside -----------------------------------------------------------------------------

    def _unavailable(self) -> Deferred[Any] | None:
        """A failed Deferred saying why the bus cannot work now, or None if it can."""
        if not self._running:
            return fail(BusUnavailable("the bus is not running"))
        if self._cut:
            return fail(BusUnavailable("the bus is cut off"))
        return None

    def _receive(self, channel: str, seq: int, payload: bytes) -> None:
        """Take one message from the hub: deliver it, unless cut off (then it is missed: a gap on restore)."""
        if self._cut:
            return
        if self._subscriptions.deliver(channel, seq, payload):
            self._report(BusStatus(connected=True, gaps=frozenset([channel])))

    def _report(self, status: BusStatus) -> None:
        report(self._callbacks, status)
