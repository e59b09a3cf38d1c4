"""
Tests for the Prometheus metrics (chat_twisted.metrics): each counter and gauge, counted by the
core through real doors on StringTransports and read back by parsing what a scrape returns.
"""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from chat_twisted.core import DEFAULT_NICK_TIMEOUT, ChatService
from chat_twisted.errors import NickInUse, TooManyAttempts
from chat_twisted.metrics import ChatMetrics, MetricsHooks, metrics_site
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.irc import IrcFactory
from chat_twisted.wire.line import LineChatFactory
from tests.fakes import RecordingClient
from tests.helpers import (
    HttpConnection,
    IrcConnection,
    LineConnection,
    ManualStore,
    WebSocketUser,
    irc_user,
    line_user,
    make_core,
    site_for,
)

Labels = tuple[tuple[str, str], ...]


def metrics_core(**options: Any) -> tuple[ChatService, Clock, ChatMetrics]:
    """A core on a fake clock that counts into a fresh L{ChatMetrics}."""
    metrics = ChatMetrics()
    core, clock = make_core(metrics=metrics, **options)
    core.startService()
    return core, clock, metrics


def scrape(metrics: ChatMetrics) -> dict[tuple[str, Labels], float]:
    """Every sample a scrape returns, by name and labels, parsed from the exposition text."""
    text = generate_latest(metrics.registry).decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: ChatMetrics, name: str, **labels: str) -> float:
    """The value of one sample of a scrape (KeyError if it is not there)."""
    return scrape(metrics)[(name, tuple(sorted(labels.items())))]


def line_factory(core: ChatService, **options: Any) -> LineChatFactory:
    """A line door over C{core}, with flood control off unless given."""
    options.setdefault("rate", 0.0)
    return LineChatFactory(core, **options)


# --- gauges read from the core -----------------------------------------------------------------


def test_connections_are_counted_by_door_at_scrape_time() -> None:
    """chat_connections counts open connections by the door they came through, logged in or not."""
    core, _, metrics = metrics_core()
    line = line_user(line_factory(core), "alice", port=1)
    LineConnection(line_factory(core), port=2)  # not logged in yet
    irc_user(IrcFactory(core), "bob", port=3)
    web = WebSocketUser(site_for(core), port=4)
    web.login("carol")
    assert [value(metrics, "chat_connections", door=door) for door in ("line", "irc", "web")] == [2, 1, 1]
    assert value(metrics, "chat_users") == 3
    line.transport.loseConnection()
    assert value(metrics, "chat_connections", door="line") == 1
    assert value(metrics, "chat_users") == 2


def test_a_refused_connection_is_not_counted() -> None:
    """A connection refused at the door (here: during shutdown) is no open connection."""
    core, _, metrics = metrics_core()
    core.stopService()
    core.connect(RecordingClient(), "127.0.0.1:1", door="web")
    assert value(metrics, "chat_connections", door="web") == 0


def test_users_and_rooms_mirror_the_core() -> None:
    """chat_users and chat_rooms follow logins, joins and leaving; the lobby always counts."""
    core, _, metrics = metrics_core()
    assert (value(metrics, "chat_users"), value(metrics, "chat_rooms")) == (0, 1)
    factory = line_factory(core)
    alice, bob = line_user(factory, "alice", 1), line_user(factory, "bob", 2)
    alice.send("/join dev\n")
    assert (value(metrics, "chat_users"), value(metrics, "chat_rooms")) == (2, 2)
    alice.send("/quit\n")
    assert (value(metrics, "chat_users"), value(metrics, "chat_rooms")) == (1, 1)
    assert bob.transport.connected


# --- counters --------------------------------------------------------------------------------


def test_messages_are_counted_by_kind_and_deliveries_by_recipient() -> None:
    """Each room message, action, topic and private message counts once; a room message is delivered to each member."""
    core, _, metrics = metrics_core()
    factory = line_factory(core)
    alice, bob = line_user(factory, "alice", 1), line_user(factory, "bob", 2)
    before = value(metrics, "chat_deliveries_total")
    alice.send("hello\n")
    assert value(metrics, "chat_messages_total", kind="say") == 1
    assert value(metrics, "chat_deliveries_total") == before + 2
    alice.send("/me waves\n/topic plans\n/msg bob psst\n")
    kinds = {kind: value(metrics, "chat_messages_total", kind=kind)
             for kind in ("say", "action", "topic", "private", "offline")}
    assert kinds == {"say": 1, "action": 1, "topic": 1, "private": 1, "offline": 0}
    assert bob.lines()[-1].endswith("psst")


def test_a_message_kept_for_an_offline_user_counts_as_offline() -> None:
    """A private message to a registered user who is offline counts as offline, not private."""
    core, _, metrics = metrics_core()
    factory = line_factory(core)
    carol = line_user(factory, "carol", 1)
    carol.send("/register s3cret-pw\n/quit\n")
    alice = line_user(factory, "alice", 2)
    alice.send("/msg carol see you\n")
    assert value(metrics, "chat_messages_total", kind="offline") == 1
    assert value(metrics, "chat_messages_total", kind="private") == 0


def test_a_message_that_could_not_be_stored_counts_as_a_store_error_not_a_message() -> None:
    """A failed append counts in chat_store_errors_total{operation="append_message"} and as no message."""
    store = ManualStore()
    core, _, metrics = metrics_core(store=store)
    alice = line_user(line_factory(core), "alice")
    alice.send("lost words\n")
    store.fail()
    assert value(metrics, "chat_store_errors_total", operation="append_message") == 1
    assert value(metrics, "chat_messages_total", kind="say") == 0
    assert value(metrics, "chat_commit_seconds_count") == 0


def test_commit_latency_is_the_time_from_append_until_stored() -> None:
    """chat_commit_seconds observes, per room message, the time its append took to fire."""
    store = ManualStore()
    core, clock, metrics = metrics_core(store=store)
    alice = line_user(line_factory(core), "alice")
    alice.send("one\n")
    clock.advance(0.3)
    store.commit()
    assert value(metrics, "chat_commit_seconds_count") == 1
    assert value(metrics, "chat_commit_seconds_sum") == pytest.approx(0.3)
    assert value(metrics, "chat_commit_seconds_bucket", le="0.25") == 0
    assert value(metrics, "chat_commit_seconds_bucket", le="0.5") == 1


def test_store_errors_are_counted_by_operation() -> None:
    """Any store operation that fails counts under its name; every operation is listed from 0."""

    class BrokenReads(MemoryStore):
        def find_messages(self, *args: Any, **kwargs: Any) -> Deferred[Any]:
            return fail(OSError("disk gone"))

    core, _, metrics = metrics_core(store=BrokenReads(), join_history=0)
    alice = line_user(line_factory(core), "alice")
    alice.send("/history 5\n")
    assert alice.lines()[-1].startswith("error:")
    assert value(metrics, "chat_store_errors_total", operation="find_messages") == 1
    assert value(metrics, "chat_store_errors_total", operation="get_account") == 0


def test_history_reads_are_counted_by_trigger() -> None:
    """Entering a room reads its history (join); /history does too (request)."""
    core, _, metrics = metrics_core(join_history=10)
    alice = line_user(line_factory(core), "alice")
    assert value(metrics, "chat_history_reads_total", trigger="join") == 1
    alice.send("/history 5\n")
    assert value(metrics, "chat_history_reads_total", trigger="request") == 1
    alice.send("/join dev\n")
    assert value(metrics, "chat_history_reads_total", trigger="join") == 2


def test_flood_waits_count_each_input_made_to_wait() -> None:
    """Past the burst each line that has to wait for tokens counts once, line or web door alike."""
    core, clock, metrics = metrics_core()
    alice = line_user(line_factory(core, rate=1.0, burst=3), "alice")  # the login line took a token
    alice.send("one\ntwo\nthree\nfour\n")
    assert value(metrics, "chat_flood_waits_total") == 1
    clock.advance(1)  # "three" goes, and "four" finds too few tokens in its turn
    assert value(metrics, "chat_flood_waits_total") == 2
    clock.advance(10)
    assert value(metrics, "chat_flood_waits_total") == 2
    web = WebSocketUser(site_for(core, rate=1.0, burst=1), port=2)
    web.login("bob")
    for text in ("a", "b"):
        web.send({"type": "say", "room": "lobby", "text": text})
    assert value(metrics, "chat_flood_waits_total") == 3


def test_drops_are_counted_by_reason() -> None:
    """Excess flood, a slow reader, a login timeout and a ping timeout each count under their reason."""
    core, clock, metrics = metrics_core()
    flooder = line_user(line_factory(core, rate=1.0, burst=1, max_input=1024), "flooder", 1)
    flooder.send(("x" * 99 + "\n") * 100)  # past max(--max-input, --max-line + 2) bytes waiting
    assert not flooder.transport.connected
    slow = line_user(line_factory(core, max_output=4096), "slow", 2)
    slow.protocol.output.guard.pauseProducing()
    talker = line_user(line_factory(core), "talker", 3)
    for _ in range(30):
        talker.send("y" * 200 + "\n")
    assert not slow.transport.connected
    LineConnection(line_factory(core), port=4)
    irc_user(IrcFactory(core, ping_interval=30.0, ping_timeout=30.0), "quiet", 5)
    for _ in range(2):  # a ping, unanswered; the login time runs out too
        clock.advance(DEFAULT_NICK_TIMEOUT / 2)
    drops = {reason: value(metrics, "chat_dropped_total", reason=reason)
             for reason in ("excess_flood", "too_slow", "login_timeout", "ping_timeout", "wrong_protocol")}
    assert drops == {"excess_flood": 1, "too_slow": 1, "login_timeout": 1, "ping_timeout": 1, "wrong_protocol": 0}


def test_quits_and_lost_connections_are_not_drops_whatever_their_words() -> None:
    """A user's /quit (even one saying 'too slow') and a lost connection are no drops."""
    core, _, metrics = metrics_core()
    factory = line_factory(core)
    line_user(factory, "alice", 1).send("/quit too slow\n")
    line_user(factory, "bob", 2).transport.loseConnection()
    assert sum(value for (name, _), value in scrape(metrics).items() if name == "chat_dropped_total") == 0


def test_login_failures_are_counted_by_reason() -> None:
    """A wrong password and a password for an unregistered nickname count as login failures."""
    core, _, metrics = metrics_core()
    factory = line_factory(core)
    line_user(factory, "alice", 1).send("/register s3cret-pw\n")
    bob = line_user(factory, "bob", 2)
    bob.send("/login alice guess\n")
    bob.send("/login nobody guess\n")
    assert value(metrics, "chat_login_failures_total", reason="wrong_password") == 1
    assert value(metrics, "chat_login_failures_total", reason="not_registered") == 1


def test_throttled_logins_count_and_other_errors_do_not() -> None:
    """TooManyAttempts counts as throttled; any other failed request is no login failure."""
    metrics = ChatMetrics()
    metrics.request_failed(TooManyAttempts(3))
    metrics.request_failed(NickInUse("alice"))
    metrics.request_failed(ValueError("unexpected"))
    failures = {labels: count for (name, labels), count in scrape(metrics).items()
                if name == "chat_login_failures_total"}
    assert failures == {(("reason", "not_registered"),): 0, (("reason", "throttled"),): 1,
                        (("reason", "wrong_password"),): 0}


def test_bans_are_zero_until_moderation_exists() -> None:
    """chat_bans_applied_total is exported, and 0: nothing applies bans yet."""
    _, _, metrics = metrics_core()
    assert value(metrics, "chat_bans_applied_total") == 0
    metrics.ban_applied()
    assert value(metrics, "chat_bans_applied_total") == 1


# --- what is never there, and without metrics ------------------------------------------------


def test_no_message_text_nickname_or_password_is_ever_in_a_scrape() -> None:
    """After users chat, register and fail logins, the scrape holds no body, nickname or password."""
    core, _, metrics = metrics_core()
    factory = line_factory(core)
    alice, bob = line_user(factory, "alicesecret", 1), line_user(factory, "bobsecret", 2)
    alice.send("secret body text\n/me secret action\n/topic secret topic\n/msg bobsecret secret private\n")
    alice.send("/register hunter2pw\n")
    bob.send("/login alicesecret wrongpass\n")
    text = generate_latest(metrics.registry).decode("utf-8")
    # It all happened, and was counted:
    kinds = {kind: value(metrics, "chat_messages_total", kind=kind) for kind in ("say", "action", "topic", "private")}
    assert kinds == {"say": 1, "action": 1, "topic": 1, "private": 1}
    assert value(metrics, "chat_login_failures_total", reason="wrong_password") == 1
    for secret in ("secret", "hunter2pw", "wrongpass"):
        assert secret not in text


def test_without_metrics_the_core_counts_nothing_and_keeps_its_store() -> None:
    """A core given no metrics uses the no-op hooks, and its layers get its own store unwrapped."""
    core, _ = make_core()
    assert type(core.metrics) is MetricsHooks
    assert core.publishing._store is core.store
    alice = line_user(line_factory(core), "alice")
    alice.send("hello\n")
    assert alice.lines()[-1].endswith("alice: hello")


def test_with_metrics_the_layers_store_is_the_cores_own_watched() -> None:
    """The watched store answers as the store does: its other attributes are the store's own."""
    core, _, _ = metrics_core()
    watched = core.publishing._store
    assert watched is not core.store
    assert watched.batch_runner == core.store.batch_runner  # type: ignore[attr-defined]


def test_each_core_counts_into_its_own_registry() -> None:
    """Two cores with their own ChatMetrics never see each other's numbers (nor a global registry's)."""
    first, _, first_metrics = metrics_core()
    _, _, second_metrics = metrics_core()
    line_user(line_factory(first), "alice").send("hi\n")
    assert value(first_metrics, "chat_messages_total", kind="say") == 1
    assert value(second_metrics, "chat_messages_total", kind="say") == 0


# --- the /metrics page -----------------------------------------------------------------------


def test_metrics_page_serves_the_registry_in_prometheus_text_format() -> None:
    """GET /metrics answers 200 with the exposition format; OpenMetrics if asked; other paths are 404."""
    core, _, metrics = metrics_core()
    line_user(line_factory(core), "alice")
    http = HttpConnection(metrics_site(metrics))
    status, headers, body = http.get("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=")
    families = {family.name for family in text_string_to_metric_families(body.decode("utf-8"))}
    assert {"chat_connections", "chat_users", "chat_rooms", "chat_messages", "chat_deliveries",
            "chat_commit_seconds", "process_resident_memory_bytes"} <= families
    status, headers, body = http.get("/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert headers["content-type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    assert http.get("/")[0] == 404
    assert http.get("/other")[0] == 404


def test_irc_connection_counts_under_irc() -> None:
    """The IRC door names itself to the core: its connections are irc ones, before registering too."""
    core, _, metrics = metrics_core()
    IrcConnection(IrcFactory(core))
    assert value(metrics, "chat_connections", door="irc") == 1
    assert value(metrics, "chat_connections", door="line") == 0
