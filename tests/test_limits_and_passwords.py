"""Unit tests for FailureBackoff, PasswordHasher and Outbox, each on fakes: task.Clock, inline hashing, hand-fired Deferreds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher as Argon2
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from chat_twisted.errors import Busy
from chat_twisted.limits import FailureBackoff
from chat_twisted.outbox import Outbox
from chat_twisted.passwords import MAX_RUNNING, MAX_WAITING, PasswordHasher
from tests.helpers import failure_result_of, inline_hasher, success_result_of




# --- FailureBackoff ----------------------------------------------------------------------------


def fail_times(backoff: FailureBackoff, key: str, count: int) -> None:
    """Record C{count} failures for C{key}."""
    for _ in range(count):
        backoff.failed(key)


def test_backoff_free_attempts() -> None:
    """The first two failures cost nothing; the third makes the key wait the base delay."""
    backoff = FailureBackoff(Clock())
    assert backoff.wait_for("alice") == 0
    fail_times(backoff, "alice", 2)
    assert backoff.wait_for("alice") == 0
    backoff.failed("alice")
    assert backoff.wait_for("alice") == 2.0


def test_backoff_doubles_and_counts_down() -> None:
    """Each further failure doubles the delay, and the wait shrinks as the clock moves."""
    clock = Clock()
    backoff = FailureBackoff(clock)
    waits = []
    for _ in range(5):
        backoff.failed("alice")
        waits.append(backoff.wait_for("alice"))
    assert waits == [0, 0, 2, 4, 8]
    clock.advance(3)
    assert backoff.wait_for("alice") == 5
    clock.advance(5)
    assert backoff.wait_for("alice") == 0
    clock.advance(1000)
    assert backoff.wait_for("alice") == 0


def test_backoff_cap() -> None:
    """The delay never exceeds the cap, however many failures there are."""
    backoff = FailureBackoff(Clock())
    fail_times(backoff, "alice", 50)
    assert backoff.wait_for("alice") == 300
    custom = FailureBackoff(Clock(), free=1, base=1, cap=5)
    waits = []
    for _ in range(5):
        custom.failed("k")
        waits.append(custom.wait_for("k"))
    assert waits == [1, 2, 4, 5, 5]


def test_backoff_success_clears() -> None:
    """A success forgets the key's failures, so it gets its free attempts again."""
    backoff = FailureBackoff(Clock())
    fail_times(backoff, "alice", 4)
    backoff.succeeded("alice")
    assert backoff.wait_for("alice") == 0
    fail_times(backoff, "alice", 2)
    assert backoff.wait_for("alice") == 0
    backoff.succeeded("never-failed")


def test_backoff_keys_independent() -> None:
    """Failures of one key do not hold back another."""
    backoff = FailureBackoff(Clock())
    fail_times(backoff, "account:alice", 5)
    assert backoff.wait_for("account:bob") == 0
    assert backoff.wait_for("address:10.0.0.1") == 0


def test_backoff_forgets_stale_records_past_10000_keys() -> None:
    """Beyond 10000 keys, records whose delay ended more than the cap ago are forgotten; current ones stay."""
    clock = Clock()
    backoff = FailureBackoff(clock)
    fail_times(backoff, "stale", 2)
    fail_times(backoff, "locked", 10)  # waits 256 seconds
    for number in range(9_998):
        backoff.failed(f"filler-{number}")
    clock.advance(301)
    backoff.failed("one-more")  # the 10001st key
    backoff.failed("stale")
    assert backoff.wait_for("stale") == 0  # a first failure again
    backoff.failed("locked")
    assert backoff.wait_for("locked") == 300  # the 11th failure


def test_backoff_counts_recent_failures() -> None:
    """failures() says how many failures count for a key, and 0 once its quiet spell has passed."""
    clock = Clock()
    backoff = FailureBackoff(clock)
    assert backoff.failures("key") == 0
    fail_times(backoff, "key", 4)
    assert backoff.failures("key") == 4
    clock.advance(4 + 300)
    assert backoff.failures("key") == 4
    clock.advance(1)
    assert backoff.failures("key") == 0


def test_backoff_failures_expire_after_a_quiet_spell() -> None:
    """Failures followed by a quiet spell longer than the cap no longer count towards the next wait."""
    clock = Clock()
    backoff = FailureBackoff(clock)
    fail_times(backoff, "key", 4)
    clock.advance(4 + 301)
    backoff.failed("key")
    assert backoff.wait_for("key") == 0


# --- PasswordHasher ----------------------------------------------------------------------------




def test_hash_is_argon2id_and_verifies() -> None:
    """A hash is an encoded Argon2id hash with the given parameters, and its password verifies."""
    hasher = inline_hasher()
    encoded = success_result_of(hasher.hash("correct horse"))
    assert encoded.startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert success_result_of(hasher.verify(encoded, "correct horse")) is True


def test_hash_is_salted() -> None:
    """Hashing the same password twice gives different hashes that both verify."""
    hasher = inline_hasher()
    first, second = success_result_of(hasher.hash("same")), success_result_of(hasher.hash("same"))
    assert first != second
    assert success_result_of(hasher.verify(first, "same")) and success_result_of(hasher.verify(second, "same"))


@pytest.mark.parametrize("password", ["correct horsE", "", "correct horse ", "ünïcode"])
def test_wrong_password(password: str) -> None:
    """Any other password fires False rather than failing."""
    hasher = inline_hasher()
    encoded = success_result_of(hasher.hash("correct horse"))
    assert success_result_of(hasher.verify(encoded, password)) is False


def test_non_ascii_password() -> None:
    """A password outside ASCII hashes and verifies."""
    hasher = inline_hasher()
    encoded = success_result_of(hasher.hash("pässwörd-🔑"))
    assert success_result_of(hasher.verify(encoded, "pässwörd-🔑")) is True


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda good: "", id="empty"),
        pytest.param(lambda good: "garbage", id="garbage"),
        pytest.param(lambda good: good[:-5], id="truncated"),
        pytest.param(lambda good: good.replace("$argon2id$", "$argon2i$"), id="wrong-variant"),
        pytest.param(lambda good: "$2b$12$" + "a" * 53, id="bcrypt"),
    ],
)
def test_corrupt_hash_is_false(corrupt: Callable[[str], str]) -> None:
    """A stored hash that is damaged or not Argon2 fires False rather than failing."""
    hasher = inline_hasher()
    good = success_result_of(hasher.hash("pw12"))
    assert success_result_of(hasher.verify(corrupt(good), "pw12")) is False


def test_corrupt_non_ascii_hash_is_false() -> None:
    """A stored hash damaged with a non-ASCII character fires False, as the docstring promises for corrupt hashes."""
    hasher = inline_hasher()
    good = success_result_of(hasher.hash("pw12"))
    assert success_result_of(hasher.verify(good + "é", "pw12")) is False


def test_hashing_runs_through_in_thread() -> None:
    """Hashing and checking go through the given in_thread function, whose Deferred the caller gets."""
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    waiting: Deferred[Any] = Deferred()

    def in_thread(function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        calls.append((function, args))
        return waiting

    hasher = PasswordHasher(in_thread, Argon2(time_cost=1, memory_cost=64, parallelism=1))
    assert hasher.hash("pw12") is waiting
    assert hasher.verify("$argon2id$x", "pw12") is waiting
    assert [args for _, args in calls] == [("pw12",), ("$argon2id$x", "pw12")]
    function, args = calls[0]
    assert function(*args).startswith("$argon2id$")


class HeldThreads:
    """An in_thread stand-in that runs nothing: it records each call and hands back a Deferred the test fires."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], Deferred[Any]]] = []

    def __call__(self, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        done: Deferred[Any] = Deferred()
        self.calls.append((args, done))
        return done


def test_hash_cap_defaults() -> None:
    """By default 2 hashes run at once and 16 more may wait."""
    assert (MAX_RUNNING, MAX_WAITING) == (2, 16)


def test_hash_cap_third_waits_and_starts_when_one_ends() -> None:
    """With 2 hashes running a 3rd waits; when one ends (even failing) the oldest waiting one starts and fires in turn."""
    threads = HeldThreads()
    hasher = PasswordHasher(threads, Argon2(time_cost=1, memory_cost=64, parallelism=1))
    first, second, third = hasher.hash("pw-1"), hasher.verify("$argon2id$x", "pw-2"), hasher.hash("pw-3")
    fourth = hasher.hash("pw-4")
    assert [args for args, _ in threads.calls] == [("pw-1",), ("$argon2id$x", "pw-2")]
    assert (hasher.running, hasher.waiting) == (2, 2)
    threads.calls[0][1].callback("hash-1")
    assert success_result_of(first) == "hash-1"
    assert [args for args, _ in threads.calls][2:] == [("pw-3",)]
    threads.calls[1][1].errback(Failure(RuntimeError("thread died")))
    assert failure_result_of(second).check(RuntimeError)
    assert [args for args, _ in threads.calls][3:] == [("pw-4",)]
    assert not third.called and not fourth.called
    threads.calls[3][1].callback("hash-4")
    threads.calls[2][1].callback("hash-3")
    assert (success_result_of(third), success_result_of(fourth)) == ("hash-3", "hash-4")
    assert (hasher.running, hasher.waiting) == (0, 0)


def test_hash_cap_refuses_past_the_queue_with_busy() -> None:
    """With 2 running and 16 waiting, further hashes and checks fail at once with Busy, and are taken again once there is room."""
    threads = HeldThreads()
    hasher = PasswordHasher(threads, Argon2(time_cost=1, memory_cost=64, parallelism=1))
    accepted = [hasher.hash(f"pw-{number}") for number in range(MAX_RUNNING + MAX_WAITING)]
    assert len(threads.calls) == 2 and hasher.waiting == 16
    assert failure_result_of(hasher.hash("pw-17th-waiting")).value == Busy()
    assert failure_result_of(hasher.verify("$argon2id$x", "pw")).value == Busy()
    assert not any(done.called for done in accepted)
    threads.calls[0][1].callback("hash-0")
    later = hasher.hash("pw-later")
    assert not later.called and hasher.waiting == 16
    assert failure_result_of(hasher.hash("pw-again")).value == Busy()


def test_hash_cap_with_inline_hashing() -> None:
    """Hashing that finishes at once never fills the cap: many hashes in a row all succeed."""
    hasher = PasswordHasher(lambda function, *args: succeed(function(*args)),
                            Argon2(time_cost=1, memory_cost=64, parallelism=1), max_running=1, max_waiting=0)
    hashes = [success_result_of(hasher.hash(f"pw-{number}")) for number in range(5)]
    assert all(encoded.startswith("$argon2id$") for encoded in hashes)
    assert hasher.running == 0


# --- Outbox ------------------------------------------------------------------------------------


def test_outbox_now_runs_at_once_when_idle() -> None:
    """With nothing waiting, now() runs the action immediately with its arguments."""
    outbox, seen = Outbox(), []
    outbox.now(seen.append, "a")
    assert seen == ["a"]
    assert outbox.waiting == 0


def test_outbox_after_fired_runs_at_once() -> None:
    """after() on a Deferred that has already fired runs the action with its result immediately."""
    outbox, seen = Outbox(), []
    outbox.after(succeed("stored"), seen.append, seen.append)
    assert seen == ["stored"]
    assert outbox.waiting == 0


def test_outbox_holds_behind_unfired_after() -> None:
    """Actions asked for after an unfired after() wait for it, then run in the order they were asked for."""
    outbox, seen = Outbox(), []
    waiting: Deferred[str] = Deferred()
    outbox.now(seen.append, "before")
    outbox.after(waiting, seen.append, seen.append)
    outbox.now(seen.append, "later")
    outbox.now(seen.append, "last")
    assert seen == ["before"]
    assert outbox.waiting == 3
    waiting.callback("stored")
    assert seen == ["before", "stored", "later", "last"]
    assert outbox.waiting == 0


def test_outbox_afters_fired_out_of_order() -> None:
    """A later after() that fires first still waits for the earlier one."""
    outbox, seen = Outbox(), []
    first: Deferred[str] = Deferred()
    second: Deferred[str] = Deferred()
    outbox.after(first, seen.append, seen.append)
    outbox.after(second, seen.append, seen.append)
    second.callback("two")
    assert seen == []
    first.callback("one")
    assert seen == ["one", "two"]


def test_outbox_failure_path() -> None:
    """A failed Deferred runs the failure action in its turn, is consumed, and later actions still run."""
    outbox, seen, failures = Outbox(), [], []
    waiting: Deferred[str] = Deferred()
    outbox.after(waiting, seen.append, failures.append)
    outbox.now(seen.append, "later")
    waiting.errback(Failure(OSError("disk full")))
    assert len(failures) == 1 and failures[0].check(OSError)
    assert seen == ["later"]
    assert success_result_of(waiting) is None


def test_outbox_already_failed() -> None:
    """after() on an already failed Deferred calls the failure action at once."""
    outbox, failures = Outbox(), []
    outbox.after(fail(OSError("gone")), lambda result: None, failures.append)
    assert [failure.type for failure in failures] == [OSError]


def test_outbox_raising_action_is_logged_and_queue_goes_on() -> None:
    """An action that raises is logged, and the actions behind it still run."""
    outbox, seen = Outbox(), []
    waiting: Deferred[str] = Deferred()

    def explode(result: object) -> None:
        raise RuntimeError("boom")

    outbox.after(waiting, explode, seen.append)
    outbox.now(seen.append, "later")
    with capturedLogs() as events:
        waiting.callback("stored")
        outbox.now(explode, "idle")
        outbox.now(seen.append, "after idle")
    assert seen == ["later", "after idle"]
    assert [event["log_failure"].type for event in events if "log_failure" in event] == [RuntimeError, RuntimeError]
    assert outbox.waiting == 0


def test_outbox_failure_action_that_raises_is_logged() -> None:
    """A failure action that itself raises is logged and does not wedge the queue."""
    outbox, seen = Outbox(), []
    waiting: Deferred[str] = Deferred()

    def explode(failure: Failure) -> None:
        raise RuntimeError("boom")

    outbox.after(waiting, seen.append, explode)
    outbox.now(seen.append, "later")
    with capturedLogs() as events:
        waiting.errback(Failure(OSError("disk full")))
    assert seen == ["later"]
    assert [event["log_failure"].type for event in events if "log_failure" in event] == [RuntimeError]


def test_outbox_action_may_add_more() -> None:
    """An action that asks for another delivery gets it run after everything already queued."""
    outbox, seen = Outbox(), []
    waiting: Deferred[str] = Deferred()

    def first(result: str) -> None:
        seen.append(result)
        outbox.now(seen.append, "added by first")

    outbox.after(waiting, first, seen.append)
    outbox.now(seen.append, "queued")
    waiting.callback("first")
    assert seen == ["first", "queued", "added by first"]
