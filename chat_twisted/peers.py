"""
Peers: the other server processes of a cluster, as the core's layers see them.

L{Peers} is one process alone (no C{--bus}): every nickname its directory lets through is free,
nothing is announced, a room message is shown as soon as it is stored. L{BusPeers} links the
process to the others over an L{IChatBus}: it claims nicknames with leases it renews, announces
what happens to this process's users and rooms on one channel (so that every process sees one
order), keeps this process's presence entries (its users and their rooms), sends heartbeats,
notices dead processes, and hands what the others announce to the core's mirror
(L{chat_twisted.mirror}). It decides no chat rule and touches no transport.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted.bus import BusStatus, BusUnavailable, IChatBus

if TYPE_CHECKING:
    from chat_twisted.sessions import Session

log = Logger()

#: The one channel every process announces on: one order for everything.
CHANNEL = "chat"
#: Seconds a process's heartbeat and its nicknames' claims last unless renewed.
LEASE = 9.0
#: Seconds between renewals of the heartbeat and the claims, and between looks for dead processes.
RENEW = 3.0
#: Seconds a room message of this process may take to come back from the bus; after that it is
#: shown here alone (its subscription was lost meanwhile), so that nothing here waits forever.
COMEBACK = 5.0

#: What the mirror is called with for each event another process announced: the process it
#: speaks for, the event's kind and its fields.
Receiver = Callable[[str, str, list[Any]], None]


def new_process_id() -> str:
    """A process id unique to this run: host-independent random hex."""
    return os.urandom(8).hex()


class Peers:
    """
    No other process: the null cluster. Every method succeeds at once and sends nothing;
    L{sequenced} returns None, meaning "show it now".
    """

    process_id = "local"
    #: Whether other processes share the chat (room messages then take their place in the bus's order).
    shared = False

    def start(self) -> Deferred[None]:
        """Nothing to connect to."""
        return succeed(None)

    def stop(self, reason: str) -> Deferred[None]:
        """Nothing to tell."""
        return succeed(None)

    def claim_name(self, key: str) -> Deferred[bool]:
        """Every name the local directory lets through is free."""
        return succeed(True)

    def take_over_name(self, key: str) -> Deferred[bool]:
        """No other process can hold it."""
        return succeed(True)

    def release_name(self, key: str) -> None:
        """Nothing to release."""

    def announce(self, kind: str, *fields: Any) -> None:
        """Nobody to tell."""

    def sequenced(self, kind: str, *fields: Any) -> Deferred[None] | None:
        """A room message needs no place in a shared order: show it now (None)."""
        return None

    def present(self, session: Session) -> None:
        """Nobody to tell."""

    def absent(self, nick: str) -> None:
        """Nobody to tell."""

    @property
    def connected(self) -> bool:
        """Whether the others can be reached now (alone, there is nobody to miss)."""
        return True


class BusPeers(Peers):
    """
    This process among others on C{bus}. The core sets L{on_remote} (each event another
    process announced, in the bus's order), L{on_snapshot} (the users of the live processes,
    read when the link starts or comes back), L{on_gone} (a process found dead: the one
    process that found it announces its users gone) and L{on_cut} (rooms may have missed messages).
    """

    shared = True

    def __init__(self, bus: IChatBus, clock: IReactorTime, process_id: str | None = None) -> None:
        self.bus = bus
        self.clock = clock
        self.process_id = process_id or new_process_id()
        self.on_remote: Receiver = lambda origin, kind, fields: None
        self.on_snapshot: Callable[[list[tuple[str, dict[str, Any]]]], None] = lambda users: None
        self.on_gone: Callable[[str], None] = lambda origin: None
        self.on_cut: Callable[[], None] = lambda: None
        self._names: set[str] = set()
        self._token = 0
        self._waiting: dict[int, Deferred[None]] = {}  # own sequenced events, until they come back
        self._presence: dict[str, bytes | None] = {}  # changes not yet written
        self._presence_call: Any = None
        self._entries: dict[str, bytes] = {}  # what this process announced, to put back after a loss
        self._renewing = LoopingCall(self._renew)
        self._renewing.clock = clock
        self._connected = False
        bus.on_state(self._link_changed)

    # --- life ---------------------------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """Connect, subscribe, say this process is alive, and read who is on the others."""
        starting = self.bus.start()
        starting.addCallback(lambda _: self.bus.subscribe(CHANNEL, self._received))
        starting.addCallback(lambda _: self.bus.heartbeat(self.process_id, LEASE))
        starting.addCallback(lambda _: Deferred.fromCoroutine(self._read_snapshot()))
        starting.addCallback(self._started)
        return starting

    def _started(self, _: object) -> None:
        log.info("linked to the other processes as process {process}", process=self.process_id)
        self._connected = True
        self._renewing.start(RENEW, now=False)

    def stop(self, reason: str) -> Deferred[None]:
        """Tell the others this process's users are leaving for C{reason}, free its names, disconnect."""
        if self._renewing.running:
            self._renewing.stop()
        if self._presence_call is not None and self._presence_call.active():
            self._presence_call.cancel()
        return Deferred.fromCoroutine(self._stop(reason))

    async def _stop(self, reason: str) -> None:
        if self._connected:
            self.announce("down", reason)
            try:
                if self._entries:
                    await self.bus.update_presence(self.process_id, {key: None for key in self._entries})
                for key in list(self._names):
                    await self.bus.release(_name(key), self.process_id)
            except BusUnavailable:
                log.warn("could not tidy up on the bus: the link is down")
        await self.bus.stop()

    # --- names ----------------------------------------------------------------------------------

    def claim_name(self, key: str) -> Deferred[bool]:
        """Claim the nickname C{key} for this process (held while it renews it)."""
        claiming = self.bus.claim(_name(key), self.process_id, LEASE)

        def claimed(free: bool) -> bool:
            if free:
                self._names.add(key)
            return free

        return claiming.addCallback(claimed)

    def take_over_name(self, key: str) -> Deferred[bool]:
        """
        Take C{key} from whichever process holds it (its registered owner has just proven the
        password here): that process is told to close its holder, and the claim is taken.
        """

        async def take() -> bool:
            owner = await self.bus.owner_of(_name(key))
            if owner is not None and owner != self.process_id:
                self.announce("evict", key)
                await self.bus.release(_name(key), owner)
            return await self.claim_name(key)

        return Deferred.fromCoroutine(take())

    def release_name(self, key: str) -> None:
        """Free the nickname C{key} (this process no longer uses it)."""
        if key in self._names:
            self._names.discard(key)
            self.bus.release(_name(key), self.process_id).addErrback(_ignore_unavailable)

    # --- announcing -------------------------------------------------------------------------

    def announce(self, kind: str, *fields: Any) -> None:
        """Tell the other processes of an event of this process's (they apply it in the bus's order)."""
        self._publish(self.process_id, 0, kind, fields).addErrback(_ignore_unavailable)

    def announce_for(self, origin: str, kind: str, *fields: Any) -> None:
        """Announce an event on behalf of process C{origin} (a dead one): every process applies it, this one too."""
        self._publish(origin, 0, kind, fields).addErrback(_ignore_unavailable)

    def sequenced(self, kind: str, *fields: Any) -> Deferred[None] | None:
        """
        Announce a room message; the Deferred fires when it comes back from the bus, in its place
        in the one order (show it to this process's users then), or fails with L{BusUnavailable}
        (show it here only).
        """
        self._token += 1
        token = self._token
        back: Deferred[None] = Deferred()
        self._waiting[token] = back

        def failed(failure: Failure) -> None:
            waiting = self._waiting.pop(token, None)
            if waiting is not None:
                waiting.errback(failure)

        def late() -> None:
            log.warn("a room message did not come back from the bus in time; shown here alone")
            failed(Failure(BusUnavailable("no answer in time")))

        timer = self.clock.callLater(COMEBACK, late)

        def settled(result: object) -> object:
            if timer.active():
                timer.cancel()
            return result

        back.addBoth(settled)
        self._publish(self.process_id, token, kind, fields).addErrback(failed)
        return back

    def _fail_waiting(self) -> None:
        """The link is lost: every own room message still on its way is shown here alone."""
        waiting, self._waiting = self._waiting, {}
        for back in waiting.values():
            back.errback(Failure(BusUnavailable("the link was lost")))

    @property
    def connected(self) -> bool:
        """Whether the link to the other processes is up."""
        return self._connected

    def _publish(self, origin: str, token: int, kind: str, fields: Iterable[Any]) -> Deferred[int]:
        payload = json.dumps([self.process_id, token, origin, kind, *fields], separators=(",", ":"))
        return self.bus.publish(CHANNEL, payload.encode("utf-8"))

    def _received(self, channel: str, seq: int, payload: bytes) -> None:
        try:
            sender, token, origin, kind, *fields = json.loads(payload)
        except (ValueError, TypeError):
            log.warn("dropped a malformed bus message ({size} bytes)", size=len(payload))
            return
        if sender == self.process_id and token:
            waiting = self._waiting.pop(token, None)
            if waiting is not None:
                waiting.callback(None)
            return
        if origin == self.process_id:
            return  # applied here already
        if kind == "back":  # a process that was cut off has put its users back: read them
            Deferred.fromCoroutine(self._read_snapshot()).addErrback(_ignore_unavailable)
            return
        self.on_remote(origin, kind, fields)

    # --- presence ---------------------------------------------------------------------------

    def present(self, session: Session) -> None:
        """Write C{session}'s entry (its nickname, account, away message and rooms) soon."""
        assert session.nick is not None
        entry = {
            "nick": session.nick,
            "account": session.account,
            "away": session.away,
            "since": session.connected_at,
            "rooms": {room.name: flags(room, session) for room in session.rooms.values()},
        }
        self._change(session.nick.lower(), json.dumps(entry, separators=(",", ":")).encode("utf-8"))

    def absent(self, nick: str) -> None:
        """Remove the entry of the user who was C{nick} soon."""
        self._change(nick.lower(), None)

    def _change(self, key: str, value: bytes | None) -> None:
        self._presence[key] = value
        if value is None:
            self._entries.pop(key, None)
        else:
            self._entries[key] = value
        if self._presence_call is None or not self._presence_call.active():
            self._presence_call = self.clock.callLater(0, self._write_presence)

    def _write_presence(self) -> None:
        changes, self._presence = self._presence, {}
        if changes and self._connected:
            self.bus.update_presence(self.process_id, changes).addErrback(_ignore_unavailable)

    async def _read_snapshot(self) -> None:
        everyone = await self.bus.presence()
        users = [
            (origin, json.loads(entry))
            for origin, presence in everyone.items() if origin != self.process_id and presence.alive
            for entry in presence.entries.values()
        ]
        self.on_snapshot(users)

    # --- keeping alive, and noticing the dead -------------------------------------------------------

    def _renew(self) -> Deferred[None] | None:
        if not self._connected:
            return None
        return Deferred.fromCoroutine(self._renew_all()).addErrback(_ignore_unavailable)

    async def _renew_all(self) -> None:
        if not await self.bus.heartbeat(self.process_id, LEASE):
            log.warn("this process's heartbeat lapsed; announcing its users again")
            await self._announce_again()
            self.announce("back")
        if self._names:
            kept = await self.bus.renew(list(self._names), self.process_id, LEASE)
            for key in self._names - kept:
                if not await self.claim_name(key):
                    log.warn("lost the nickname {key} to another process", key=key)
        everyone = await self.bus.presence()
        for origin, presence in everyone.items():
            if origin != self.process_id and not presence.alive:
                if await self.bus.forget_process(origin) is not None:  # this process is the one to tell
                    self.on_gone(origin)

    async def _announce_again(self) -> None:
        """After a loss (the bus may have forgotten this process): names and presence once more."""
        await self.bus.heartbeat(self.process_id, LEASE)
        for key in list(self._names):
            if not await self.bus.claim(_name(key), self.process_id, LEASE):
                log.warn("lost the nickname {key} to another process", key=key)
        if self._entries:
            await self.bus.update_presence(self.process_id, dict(self._entries))

    def _link_changed(self, status: BusStatus) -> None:
        if not status.connected:
            if self._connected:
                log.warn("lost the link to the other processes; serving this process's users alone")
            self._connected = False
            self._fail_waiting()
            return
        was_connected, self._connected = self._connected, True
        if was_connected and CHANNEL not in status.gaps:
            return
        log.info("the link to the other processes is back")
        restored = Deferred.fromCoroutine(self._announce_again())
        restored.addCallback(lambda _: self.announce("back"))
        restored.addCallback(lambda _: Deferred.fromCoroutine(self._read_snapshot()))
        if CHANNEL in status.gaps:
            restored.addCallback(lambda _: self.on_cut())
        restored.addErrback(_ignore_unavailable)


def _name(key: str) -> str:
    return "nick:" + key


def flags(room: Any, session: Session) -> str:
    """C{session}'s standing in C{room}, as announced: C{o} for an operator, C{v} for voiced."""
    return ("o" if session in room.operators else "") + ("v" if session in room.voiced else "")


def _ignore_unavailable(failure: Failure) -> None:
    """The link is down: the others will learn what they need when it is back."""
    if not failure.check(BusUnavailable):
        log.failure("a bus operation failed", failure)
