"""
Retention: pruning old room history and expiring old offline messages, in the background.

L{RetentionService} owns only its timer and the pass under way. Every L{RetentionSettings.interval}
seconds it asks the store to prune room messages in small batches, one short transaction each
(L{IChatStore.prune_messages}), until a batch comes back smaller than the batch size, giving the
reactor a turn between batches; then it expires old offline messages. The store's calls run off
the reactor thread, and chat's own requests to the store queue between the batches, so a large
first prune never stalls chat: it only takes a while. Nothing here touches a connection; counts
are logged at info, never message text.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall, deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted.interfaces import IChatStore

log = Logger()

#: Seconds in a day.
DAY = 86400.0
#: Seconds between passes.
DEFAULT_INTERVAL = 60.0
#: Messages deleted per transaction.
DEFAULT_BATCH = 500
#: Days an offline message waits for its recipient before it expires, unless configured otherwise.
DEFAULT_OFFLINE_DAYS = 30.0


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """
    What to delete: room messages older than C{history_days} days, each room's messages beyond its
    newest C{history_max}, offline messages older than C{offline_days} days (None: never, for
    each); how often to look (C{interval}, seconds) and how many messages one transaction deletes.
    """

    history_days: float | None = None
    history_max: int | None = None
    offline_days: float | None = DEFAULT_OFFLINE_DAYS
    interval: float = DEFAULT_INTERVAL
    batch: int = DEFAULT_BATCH

    @classmethod
    def configured(cls, history_days: float, history_max: int, offline_days: float) -> RetentionSettings:
        """The settings the server's options ask for, where 0 turns a rule off."""
        return cls(history_days or None, history_max or None, offline_days or None)

    def history_cutoff(self, now: float) -> float | None:
        """The time before which room messages are due at C{now} (None: no age rule)."""
        return now - self.history_days * DAY if self.history_days is not None else None

    def offline_cutoff(self, now: float) -> float | None:
        """The time before which offline messages expire at C{now} (None: never)."""
        return now - self.offline_days * DAY if self.offline_days is not None else None

    @property
    def prunes_history(self) -> bool:
        """Whether room history is pruned at all."""
        return self.history_days is not None or self.history_max is not None

    @property
    def enabled(self) -> bool:
        """Whether anything is ever deleted."""
        return self.prunes_history or self.offline_days is not None

    def describe(self) -> str:
        """One line saying what is deleted, for the log."""
        rules = []
        if self.history_days is not None:
            rules.append(f"room messages older than {self.history_days:g} days")
        if self.history_max is not None:
            rules.append(f"room messages beyond the newest {self.history_max} of each room")
        if self.offline_days is not None:
            rules.append(f"offline messages older than {self.offline_days:g} days")
        return "; ".join(rules) if rules else "nothing"


@dataclass(frozen=True, slots=True)
class PassResult:
    """What one pass deleted: room messages and offline messages."""

    pruned: int
    expired: int


class RetentionService(Service):
    """
    Runs a retention pass over C{store} every C{settings.interval} seconds of C{clock}, the first
    one an interval after start (the store is open by then), and never two at once. Off (it
    starts no timer) unless C{settings} delete something. A pass that fails is logged and the
    next one runs as planned.
    """

    def __init__(self, store: IChatStore, clock: IReactorTime, settings: RetentionSettings) -> None:
        self._store = store
        self._clock = clock
        self.settings = settings
        self._loop: LoopingCall | None = None
        self._pass: Deferred[PassResult] | None = None  # the pass under way
        self._waiting: list[Deferred[PassResult]] = []  # who waits for its result

    def startService(self) -> None:
        """Start the timer, if anything is to be deleted."""
        super().startService()
        if not self.settings.enabled:
            return
        log.info("retention: deleting {rules}", rules=self.settings.describe())
        self._loop = LoopingCall(self._scheduled)
        self._loop.clock = self._clock
        self._loop.start(self.settings.interval, now=False)

    def stopService(self) -> Deferred[None] | None:
        """Stop the timer; a pass under way stops after its current batch, and the Deferred fires then."""
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        if self._pass is None:
            return None
        return self.run_once().addBoth(lambda _: None)

    def _scheduled(self) -> Deferred[PassResult]:
        return self.run_once()

    def run_once(self) -> Deferred[PassResult]:
        """
        Run one pass now (or, if one is under way, wait for that one); fire with what it deleted.
        Only a running service goes on past the first batch: a stopped one does one at most.
        """
        waiting: Deferred[PassResult] = Deferred()
        self._waiting.append(waiting)
        if self._pass is None:
            self._pass = ensureDeferred(self._run())
            self._pass.addBoth(self._finished)  # after the assignment: a pass may end at once
        return waiting

    def _finished(self, result: PassResult | Failure) -> None:
        self._pass = None
        waiting, self._waiting = self._waiting, []
        for each in waiting:
            each.callback(result)  # a Failure errbacks each

    async def _run(self) -> PassResult:
        pruned = expired = 0
        now = self._clock.seconds()
        settings = self.settings
        if settings.prunes_history:
            older_than = settings.history_cutoff(now)
            try:
                while True:
                    deleted = await self._store.prune_messages(older_than, settings.history_max, settings.batch)
                    pruned += deleted
                    if deleted < settings.batch or not self.running:
                        break
                    await deferLater(self._clock, 0)  # let the reactor, and chat's requests, have a turn
            except Exception:
                log.failure("retention: pruning room messages failed after {count}", count=pruned)
        offline_before = settings.offline_cutoff(now)
        if offline_before is not None and self.running:
            try:
                expired = await self._store.expire_offline(offline_before)
            except Exception:
                log.failure("retention: expiring offline messages failed")
        if pruned:
            log.info("retention: pruned {count} room messages", count=pruned)
        if expired:
            log.info("retention: expired {count} offline messages", count=expired)
        return PassResult(pruned, expired)
