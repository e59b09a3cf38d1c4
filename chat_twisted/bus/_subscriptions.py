"""
The receiving side every bus shares: which receivers listen on which channel, the last
sequence number each channel delivered, and how a gap is seen. It delivers in the order it is
given messages and never reorders; a bus gives it messages in the order its link carries them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.logger import Logger

from chat_twisted.bus import BusStatus, Receiver

log = Logger()


class _Channel:
    """
    One subscribed channel: its receivers, its last delivered sequence number (None: not yet
    active), and who waits for it to become active.
    """

    __slots__ = ("receivers", "last", "waiting")

    def __init__(self) -> None:
        self.receivers: list[Receiver] = []
        self.last: int | None = None
        self.waiting: list[tuple[Receiver, Deferred[int]]] = []


class Subscriptions:
    """
    Receivers by channel. A channel becomes active when the bus learns where its sequence
    stands (L{synced}); from then on L{deliver} hands receivers every message, noting a gap
    whenever a sequence number is not the last one plus one.
    """

    def __init__(self) -> None:
        self._channels: dict[str, _Channel] = {}

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._channels))

    def __contains__(self, channel: object) -> bool:
        return channel in self._channels

    def add(self, channel: str, receiver: Receiver) -> tuple[Deferred[int], bool]:
        """
        Add C{receiver} to C{channel}. Return a Deferred firing with the sequence number the
        receiver starts after (already fired if the channel is active), and whether the
        channel is new (the bus must then subscribe to it and sync it).
        """
        state = self._channels.get(channel)
        new = state is None
        if state is None:
            state = self._channels[channel] = _Channel()
        state.receivers.append(receiver)
        if state.last is not None:
            return succeed(state.last), new
        waiter: Deferred[int] = Deferred()
        state.waiting.append((receiver, waiter))
        return waiter, new

    def remove(self, channel: str, receiver: Receiver) -> bool:
        """
        Remove one registration of C{receiver} from C{channel} (if it was not active yet, its
        Deferred fails with CancelledError). Return True if the channel has no receiver left
        and was dropped (the bus then unsubscribes from it).
        """
        state = self._channels.get(channel)
        if state is None or receiver not in state.receivers:
            return False
        state.receivers.remove(receiver)
        for position, (waiting, waiter) in enumerate(state.waiting):
            if waiting == receiver:
                del state.waiting[position]
                waiter.errback(CancelledError())
                break
        if state.receivers:
            return False
        del self._channels[channel]
        return True

    def last(self, channel: str) -> int | None:
        """The last sequence number C{channel} delivered or synced to, None if not active or not subscribed."""
        state = self._channels.get(channel)
        return None if state is None else state.last

    def synced(self, channel: str, counter: int) -> bool:
        """
        Learn that C{channel}'s sequence stands at C{counter} and that every message up to it
        that this link will ever carry has been given to L{deliver}. The first time, this makes
        the channel active (its waiters fire with C{counter}). Return True if it shows a gap:
        the channel was active and C{counter} is not its last delivered number.
        """
        state = self._channels.get(channel)
        if state is None:
            return False
        if state.last is None:
            state.last = counter
            waiting, state.waiting = state.waiting, []
            for _, waiter in waiting:
                waiter.callback(counter)
            return False
        gap = counter != state.last
        state.last = counter
        return gap

    def deliver(self, channel: str, seq: int, payload: bytes) -> bool:
        """
        Hand message C{seq} of C{channel} to its receivers (dropped if the channel is not
        active). Return True if it shows a gap: C{seq} is not the last delivered number plus
        one (messages were missed, or the sequence restarted).
        """
        state = self._channels.get(channel)
        if state is None or state.last is None:
            return False
        gap = seq != state.last + 1
        state.last = seq
        for receiver in list(state.receivers):
            if receiver not in state.receivers:
                continue  # unsubscribed by an earlier receiver of this very message
            try:
                receiver(channel, seq, payload)
            except Exception:
                log.failure("A receiver of bus channel {channel} failed on message {seq}", channel=channel, seq=seq)
        return gap

    def cancel_all(self) -> None:
        """Fail every waiter with CancelledError and forget every channel (the bus stopped)."""
        channels, self._channels = self._channels, {}
        for state in channels.values():
            for _, waiter in state.waiting:
                waiter.errback(CancelledError())


def report(callbacks: Iterable[Callable[[BusStatus], object]], status: BusStatus) -> None:
    """Give C{status} to each of a bus's state C{callbacks}; one that fails is logged, the others still get it."""
    for callback in list(callbacks):
        try:
            callback(status)
        except Exception:
            log.failure("A bus state callback failed")
