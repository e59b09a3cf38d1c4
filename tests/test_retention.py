"""
Tests for the retention service (chat_twisted.retention): when it runs, how it prunes in batches,
offline expiry, logging, failures and stopping. A fake clock and the in-memory store throughout,
plus one run on a real SQLite store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest_twisted
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import formatEvent

from chat_twisted.model import OfflineMessage, StoredMessage
from chat_twisted.retention import DAY, PassResult, RetentionService, RetentionSettings
from chat_twisted.store.memory import MemoryStore
from chat_twisted.store.sqlite import SqliteStore
from tests.helpers import START, success_result_of

INTERVAL = 60.0


def said(text: str, days_ago: float, room: str = "lobby") -> StoredMessage:
    """A room message sent C{days_ago} days before L{START}."""
    return StoredMessage(room=room, kind="say", sender="alice", text=text, when=START - days_ago * DAY)


def private(text: str, days_ago: float) -> OfflineMessage:
    """A private message to bob sent C{days_ago} days before L{START}."""
    return OfflineMessage(sender="alice", recipient="bob", text=text, when=START - days_ago * DAY)


def texts(store: MemoryStore, room_key: str = "lobby") -> list[str]:
    """The texts of a room's history in the memory store, oldest first."""
    found: list[str] = []
    store.recent_messages(room_key, 10_000).addCallback(lambda messages: found.extend(m.text for m in messages))
    return found


def service(store: Any, **settings: Any) -> tuple[RetentionService, Clock]:
    """A started RetentionService on C{store} with a fake clock at L{START}."""
    clock = Clock()
    clock.advance(START)
    settings.setdefault("interval", INTERVAL)
    retention = RetentionService(store, clock, RetentionSettings(**settings))
    retention.startService()
    return retention, clock


def test_nothing_to_delete_starts_no_timer() -> None:
    """With no history rule and offline messages kept forever, the service schedules nothing."""
    retention, clock = service(MemoryStore(), offline_days=None)

    assert not RetentionSettings(offline_days=None).enabled
    assert clock.getDelayedCalls() == []
    assert retention.stopService() is None


def test_defaults_keep_history_and_expire_offline_messages_after_30_days() -> None:
    """The default settings prune no history and expire offline messages older than 30 days."""
    defaults = RetentionSettings()

    assert (defaults.history_days, defaults.history_max, defaults.offline_days) == (None, None, 30.0)
    assert not defaults.prunes_history and defaults.enabled


def test_first_pass_runs_one_interval_after_start_then_every_interval() -> None:
    """No pass at start; the first an interval later, when the store is open; then one per interval."""
    store = MemoryStore()
    store.append_message("lobby", said("old", days_ago=3))
    retention, clock = service(store, history_days=1)

    clock.advance(INTERVAL - 1)
    assert texts(store) == ["old"]

    clock.advance(1)
    assert texts(store) == []

    store.append_message("lobby", said("also old", days_ago=2))
    clock.advance(INTERVAL)
    assert texts(store) == []


def test_a_pass_prunes_in_batches_with_a_reactor_turn_between_them() -> None:
    """Each batch is one store call; the next waits for a reactor turn; the pass ends on a short batch."""
    store = MemoryStore()
    for n in range(12):
        store.append_message("lobby", said(f"old {n}", days_ago=10 - n / 100))
    store.append_message("lobby", said("new", days_ago=0))
    retention, clock = service(store, history_days=1, batch=5)
    result = retention.run_once()

    assert len(texts(store)) == 8  # the first batch, at once (the memory store answers at once)
    assert [call.getTime() for call in clock.getDelayedCalls()] == [START, START + INTERVAL]  # the turn, the timer
    assert not result.called
    clock.advance(0)  # runs every turn due now: the second batch, then the third
    assert texts(store) == ["new"]
    assert success_result_of(result) == PassResult(pruned=12, expired=0)
    assert clock.getDelayedCalls()[0].getTime() == START + INTERVAL  # only the timer is left


def test_history_max_keeps_the_newest_messages_of_each_room() -> None:
    """With history_max, each room keeps its newest messages and loses the rest, whatever their age."""
    store = MemoryStore()
    for n in range(5):
        store.append_message("lobby", said(f"lobby {n}", days_ago=0))
        store.append_message("dev", said(f"dev {n}", days_ago=0, room="dev"))
    store.append_message("quiet", said("alone", days_ago=400, room="quiet"))
    retention, clock = service(store, history_max=2, batch=3)

    clock.advance(INTERVAL)
    clock.advance(0)
    clock.advance(0)

    assert texts(store) == ["lobby 3", "lobby 4"]
    assert texts(store, "dev") == ["dev 3", "dev 4"]
    assert texts(store, "quiet") == ["alone"]


def test_offline_messages_expire_after_offline_days() -> None:
    """Offline messages older than offline_days are deleted at the next pass; newer ones still reach bob."""
    store = MemoryStore()
    for n, days_ago in enumerate([45, 31, 29, 1]):
        store.queue_offline("bob", private(f"pm {n}", days_ago), 10)
    retention, clock = service(store)

    clock.advance(INTERVAL)

    left: list[OfflineMessage] = []
    store.take_offline("bob").addCallback(left.extend)
    assert [m.text for m in left] == ["pm 2", "pm 3"]


def test_offline_days_none_keeps_offline_messages_forever() -> None:
    """With offline_days None, history is pruned but offline messages are never expired."""
    store = MemoryStore()
    store.queue_offline("bob", private("ancient", 1000), 10)
    store.append_message("lobby", said("old", days_ago=3))
    retention, clock = service(store, history_days=1, offline_days=None)

    clock.advance(INTERVAL)

    left: list[OfflineMessage] = []
    store.take_offline("bob").addCallback(left.extend)
    assert [m.text for m in left] == ["ancient"] and texts(store) == []


def test_counts_are_logged_at_info_without_text(logged: EventLoggingObserver) -> None:
    """The settings at start and each pass's counts are logged at info; no message text ever is."""
    store = MemoryStore()
    store.append_message("lobby", said("secret words", days_ago=3))
    store.queue_offline("bob", private("secret pm", 40), 10)
    retention, clock = service(store, history_days=1.5)

    clock.advance(INTERVAL)
    clock.advance(INTERVAL)  # a pass that deletes nothing logs nothing

    lines = [formatEvent(event) for event in logged]
    assert lines == [
        "retention: deleting room messages older than 1.5 days; offline messages older than 30 days",
        "retention: pruned 1 room messages",
        "retention: expired 1 offline messages",
    ]
    assert {event["log_level"].name for event in logged} == {"info"}


class FailingStore(MemoryStore):
    """A memory store whose prune_messages fails the first C{failures} times."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def prune_messages(self, older_than: float | None, keep_per_room: int | None, batch: int) -> Deferred[int]:
        if self.failures:
            self.failures -= 1
            return fail(RuntimeError("disk on fire"))
        return super().prune_messages(older_than, keep_per_room, batch)


def test_a_failed_pass_is_logged_and_the_next_one_runs(logged: EventLoggingObserver) -> None:
    """A store failure is logged with its traceback; offline expiry still runs, and the next pass prunes."""
    store = FailingStore(failures=1)
    store.append_message("lobby", said("old", days_ago=3))
    store.queue_offline("bob", private("old pm", 40), 10)
    retention, clock = service(store, history_days=1)

    clock.advance(INTERVAL)
    assert texts(store) == ["old"]
    failures = [event for event in logged if "log_failure" in event]
    assert [formatEvent(event) for event in failures] == ["retention: pruning room messages failed after 0"]
    assert failures[0]["log_failure"].check(RuntimeError)
    assert "retention: expired 1 offline messages" in [formatEvent(event) for event in logged]

    clock.advance(INTERVAL)
    assert texts(store) == []


class HangingStore(MemoryStore):
    """A memory store whose prune_messages calls wait until the test fires them."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Deferred[int]] = []

    def prune_messages(self, older_than: float | None, keep_per_room: int | None, batch: int) -> Deferred[int]:
        self.calls.append(Deferred())
        return self.calls[-1]


def test_passes_never_overlap() -> None:
    """While a pass waits on the store, the timer starts no second one; it resumes once the pass ends."""
    store = HangingStore()
    retention, clock = service(store, history_days=1, offline_days=None)

    clock.advance(INTERVAL)
    clock.advance(INTERVAL * 3)
    assert len(store.calls) == 1

    store.calls[0].callback(0)
    clock.advance(INTERVAL)
    assert len(store.calls) == 2


def test_stopping_mid_pass_ends_it_after_the_current_batch() -> None:
    """stopService cancels the timer, lets the batch under way finish, starts no other, and fires then."""
    store = HangingStore()
    retention, clock = service(store, history_days=1, batch=10)
    clock.advance(INTERVAL)

    stopped = retention.stopService()
    assert stopped is not None
    fired: list[object] = []
    stopped.addCallback(fired.append)
    assert fired == []

    store.calls[0].callback(10)  # a full batch: another would follow, were the service running
    clock.advance(0)

    assert fired == [None]
    assert len(store.calls) == 1
    assert clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_a_pass_prunes_a_sqlite_store_in_batches(tmp_path: Path) -> None:
    """On a real SQLite store and reactor, one pass deletes every due message over several batches and keeps the rest."""
    from twisted.internet import reactor

    store = SqliteStore(str(tmp_path / "chat.sqlite3"))
    await store.start()
    try:
        now = reactor.seconds()  # type: ignore[attr-defined]
        for n in range(7):
            await store.append_message("lobby", StoredMessage("lobby", "say", "alice", f"old {n}", now - 5 * DAY + n))
        await store.append_message("lobby", StoredMessage("lobby", "say", "alice", "today", now))
        retention = RetentionService(store, reactor, RetentionSettings(history_days=1, batch=3))  # type: ignore[arg-type]
        retention.running = True  # as if started, without its timer

        result = await retention.run_once().addTimeout(10, reactor)  # type: ignore[arg-type]

        assert result.pruned == 7
        assert [m.text for m in await store.recent_messages("lobby", 10)] == ["today"]
    finally:
        await store.stop()
