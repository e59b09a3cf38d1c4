"""
The event bus: what several server processes share while they run, behind one interface.

L{IChatBus} carries the live traffic between processes: room messages in one order per room
(a sequence number per channel), private messages to a user on another process, cluster-wide
nickname claims with leases, and presence (which processes are alive and what each one has).
What must outlast a restart (history, accounts) is the store's, not the bus's.

Two implementations pass the same contract suite (tests/test_bus_contract.py):
L{chat_twisted.bus.local.LocalBus}, in the process, on which the core's tests run several
"processes" at once (a server without C{--bus} needs no bus at all: it is the whole cluster); and L{chat_twisted.bus.redis.RedisBus}, over Redis, for several processes.
Nothing here writes to a transport of a chat connection.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from zope.interface import Attribute, Interface

#: What a subscriber is called with: the channel, the message's sequence number on it, its payload.
Receiver = Callable[[str, int, bytes], object]


class BusUnavailable(Exception):
    """
    The bus cannot do this now: it is not started, stopped, or has lost its connection (to
    Redis). A publish that fails with it may or may not have reached the others.
    """


@dataclass(frozen=True, slots=True)
class BusStatus:
    """
    A change in a bus's link to the others, given to the L{IChatBus.on_state} callbacks.

    C{connected} False: the link is lost. Until a report with C{connected} True, nothing
    published elsewhere reaches this process and what it publishes may fail with
    L{BusUnavailable}; it should go on serving its own users.
    C{connected} True: the link is (again) whole. C{gaps} names the subscribed channels whose
    sequence did not go on by one: messages published on them were missed (while the link was
    lost, or the sequence restarted because Redis lost its data). A report with
    C{connected} True may also come while connected, when a gap is found later.
    """

    connected: bool
    gaps: frozenset[str] = field(default=frozenset())


@dataclass(frozen=True, slots=True)
class ProcessPresence:
    """
    What the bus knows of one process: whether its heartbeat lease is running (C{alive}) and
    the presence C{entries} it announced (its users, their rooms: keys and bytes the core
    chooses), kept until L{IChatBus.forget_process} takes them.
    """

    alive: bool
    entries: Mapping[str, bytes] = field(default_factory=dict)


class IChatBus(Interface):
    """
    The live link between server processes. Every method that talks to the others returns a
    Deferred; while the link is lost these fail with L{BusUnavailable}. Names, owners, process
    ids and channels are the core's strings (case-folded where the core folds them).

    Channels: a publish gets the next sequence number of its channel, assigned atomically
    across all processes, and reaches every subscriber of the channel on every bus (the
    publisher's own included) once, in sequence order. The core delivers its own users'
    messages from its subscription too, so that every process shows one order per room.
    """

    batch_runner = Attribute(
        "A function the bus calls with a function that delivers what arrived together (the messages"
        " of one read from Redis); the core sets it (to flush their deliveries together). Default:"
        " call it."
    )

    def start():  # type: ignore[no-untyped-def]
        """Connect. Fires with None once the bus works, or fails with L{BusUnavailable}."""

    def stop():  # type: ignore[no-untyped-def]
        """
        Disconnect and stop reconnecting. Fires with None once closed; later calls fail with
        L{BusUnavailable} and subscribers get nothing more.
        """

    def publish(channel, payload):  # type: ignore[no-untyped-def]
        """
        Send the bytes C{payload} to every subscriber of C{channel}. Fires with the sequence
        number it got on that channel: one more than the previous publish there, from any
        process (a sequence starts at 1).
        """

    def subscribe(channel, receiver):  # type: ignore[no-untyped-def]
        """
        Call C{receiver(channel, seq, payload)} for every message published on C{channel} after
        this subscription became active, once each and in sequence order; an exception from a
        receiver is logged and does not stop delivery to the others. Fires with the sequence
        number of the last message published before that point (0 for a new channel): the
        receiver gets exactly the messages after it. While the link is lost the subscription
        becomes active only when it is restored, so do not hold a user's request on it.
        """

    def unsubscribe(channel, receiver):  # type: ignore[no-untyped-def]
        """
        Stop calling C{receiver} for C{channel}, at once (if it subscribed twice, once). If its
        subscription was not active yet, that Deferred fails with CancelledError. Returns None.
        """

    def claim(name, owner, lease_seconds):  # type: ignore[no-untyped-def]
        """
        Atomically take C{name} for C{owner} for C{lease_seconds}. Fires with True if it was
        free (never claimed, released, or its lease ended) or already C{owner}'s (the lease
        starts again), else False.
        """

    def renew(names, owner, lease_seconds):  # type: ignore[no-untyped-def]
        """
        Start the lease of each of C{names} that C{owner} still holds again, for
        C{lease_seconds}. Fires with the frozenset of those names; a name missing from it was
        lost (its lease had ended: it may belong to someone else now; claim it to try again).
        """

    def release(name, owner):  # type: ignore[no-untyped-def]
        """Free C{name} if C{owner} holds it. Fires with True if it did, else False."""

    def owner_of(name):  # type: ignore[no-untyped-def]
        """Fire with the owner holding C{name}, or None if it is free."""

    def heartbeat(process_id, lease_seconds):  # type: ignore[no-untyped-def]
        """
        Say that process C{process_id} is alive for the next C{lease_seconds}. Fires with True,
        or False when this bus had sent a heartbeat for it before and that lease had already
        ended: others may have declared the process gone (L{forget_process}) meanwhile.
        """

    def update_presence(process_id, changes):  # type: ignore[no-untyped-def]
        """
        Change the presence entries of process C{process_id}: each key of the mapping
        C{changes} is set to its bytes, or removed where its value is None. Fires with None.
        """

    def presence():  # type: ignore[no-untyped-def]
        """
        Fire with a dict from process id to L{ProcessPresence}, for every process that sent a
        heartbeat or presence entries and has not been forgotten (L{forget_process}) since:
        the live ones, and the dead ones nobody has cleaned up after yet.
        """

    def forget_process(process_id):  # type: ignore[no-untyped-def]
        """
        If the heartbeat lease of C{process_id} has ended, atomically forget the process and
        take away its presence entries, so that exactly one caller gets them, and fire with
        them (a dict, maybe empty): that caller tells the process's users' rooms they left.
        Fires with None if the process is alive, unknown, or already forgotten.
        """

    def on_state(callback):  # type: ignore[no-untyped-def]
        """
        Call C{callback(status)} with a L{BusStatus} whenever the link is lost, when it is
        restored (with the channels that missed messages), and when a gap is found later.
        Returns None.
        """


__all__ = ["BusStatus", "BusUnavailable", "IChatBus", "ProcessPresence", "Receiver"]
