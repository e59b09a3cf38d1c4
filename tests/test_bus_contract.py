"""
The L{IChatBus} contract, run against every bus: L{LocalBus} (several buses on one L{LocalHub}
and a fake clock: no sockets, no sleeps, every check made once, at once) and L{RedisBus} (the
Redis server at CHAT_TEST_REDIS, default redis://127.0.0.1:6379/0, with a random key prefix per
test, cleaned up after it; skipped, saying why, only where nothing listens there at all).

Each "process" of a cluster is one bus. On Redis, time passes for real: leases are short, and
every wait is bounded (L{within}, and L{RedisCluster.until}'s bounded polling), never a check
of how long something took. A lost link is made by killing the bus's connections from another
client (CLIENT KILL ID), as a Redis restart would; LocalBus is cut off from its hub instead.
"""

from __future__ import annotations

import inspect
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
import pytest_twisted
import txredisapi
from twisted.internet.defer import CancelledError, Deferred, gatherResults
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import LogLevel, formatEvent
from zope.interface.verify import verifyObject

from chat_twisted.bus import BusStatus, BusUnavailable, IChatBus, ProcessPresence
from chat_twisted.bus.local import LocalBus, LocalHub
from chat_twisted.bus.redis import RedisAddress, RedisBus, ReplyReader, encode_command, parse_redis_url, redacted
from tests.e2e import PrivateRedis

T = TypeVar("T")

#: Longest any single wait may take, in seconds.
TIMEOUT = 10.0

#: How often L{RedisCluster.until} looks again, in seconds.
POLL = 0.02

#: 2026-01-02 03:04:05 UTC.
START = 1767323045.0

#: The Redis server the Redis tests use (these machines run one; .ci/run starts it).
REDIS_URL = os.environ.get("CHAT_TEST_REDIS", "redis://127.0.0.1:6379/0")

#: Payloads that must come back byte for byte.
PAYLOADS = [b"", b"plain", b"with spaces and 12 34", b"\x00\xff\r\n\x01 binary", "héllo 👩‍👩‍👧".encode(), b"x" * 100_000]


async def within(d: Deferred[T]) -> T:
    """Wait for C{d}, failing with a timeout instead of hanging if it has not fired in L{TIMEOUT}."""
    from twisted.internet import reactor

    if d.called:
        return await d
    return await d.addTimeout(TIMEOUT, reactor)  # type: ignore[arg-type]


Check = Callable[[], "bool | Awaitable[bool]"]


class Recorder:
    """A receiver that keeps what it is given, as (channel, seq, payload)."""

    def __init__(self) -> None:
        self.got: list[tuple[str, int, bytes]] = []

    def __call__(self, channel: str, seq: int, payload: bytes) -> None:
        self.got.append((channel, seq, payload))

    def seqs(self) -> list[int]:
        return [seq for _, seq, _ in self.got]

    def payloads(self) -> list[bytes]:
        return [payload for _, _, payload in self.got]


class Cluster:
    """Several buses ("processes") of one kind, the passing of time, and faults."""

    kind: str
    #: A lease a test lets end.
    short_lease: float
    #: A lease that does not end during a test.
    long_lease: float

    def __init__(self) -> None:
        self.buses: list[IChatBus] = []
        self.statuses: dict[int, list[BusStatus]] = {}
        self._next_status: dict[int, list[Deferred[BusStatus]]] = {}

    def _watch(self, bus: IChatBus) -> None:
        self.buses.append(bus)
        self.statuses[id(bus)] = []
        self._next_status[id(bus)] = []

        def record(status: BusStatus) -> None:
            self.statuses[id(bus)].append(status)
            waiting, self._next_status[id(bus)] = self._next_status[id(bus)], []
            for d in waiting:
                d.callback(status)

        bus.on_state(record)

    def next_status(self, bus: IChatBus) -> Deferred[BusStatus]:
        """A Deferred firing with the next status C{bus} reports."""
        d: Deferred[BusStatus] = Deferred()
        self._next_status[id(bus)].append(d)
        return d

    async def bus(self) -> Any:
        """A new, started bus of the cluster."""
        raise NotImplementedError

    async def wait(self, seconds: float) -> None:
        """Let C{seconds} pass."""
        raise NotImplementedError

    async def until(self, check: Check, what: str) -> None:
        """Wait, bounded, until C{check} holds."""
        raise NotImplementedError

    async def cut(self, bus: Any) -> None:
        """Break C{bus}'s link to the others; return once it has reported the loss."""
        raise NotImplementedError

    async def restore(self, bus: Any) -> BusStatus:
        """Let C{bus}'s link come back; return the status it reported."""
        raise NotImplementedError

    async def close(self) -> None:
        for bus in self.buses:
            await within(bus.stop())


async def _holds(check: Check) -> bool:
    result = check()
    if inspect.isawaitable(result):
        result = await result
    return bool(result)


class LocalCluster(Cluster):
    """LocalBuses on one hub and a fake clock: everything happens at once, so a check is made once."""

    kind = "local"
    short_lease = 10.0
    long_lease = 1000.0

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.clock.advance(START)
        self.hub = LocalHub(self.clock)

    async def bus(self) -> LocalBus:
        bus = LocalBus(self.clock, self.hub)
        self._watch(bus)
        await within(bus.start())
        return bus

    async def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    async def until(self, check: Check, what: str) -> None:
        assert await _holds(check), f"not so (LocalBus does everything at once): {what}"

    async def cut(self, bus: LocalBus) -> None:
        lost = self.next_status(bus)
        bus.cut()
        assert (await within(lost)).connected is False

    async def restore(self, bus: LocalBus) -> BusStatus:
        restored = self.next_status(bus)
        bus.restore()
        return await within(restored)


class RedisCluster(Cluster):
    """RedisBuses on the test Redis under a random prefix, and an admin connection for faults and cleanup."""

    kind = "redis"
    short_lease = 0.3
    long_lease = 60.0

    def __init__(self, url: str, admin: Any) -> None:
        super().__init__()
        self.url = url
        self.admin = admin
        self.prefix = f"chat_test_{secrets.token_hex(6)}:"

    async def bus(self, **options: Any) -> RedisBus:
        options = {"retry_initial": 0.1, "retry_max": 1.0, "connect_timeout": 5.0, **options}
        bus = RedisBus(self.url, prefix=self.prefix, **options)
        self._watch(bus)
        await within(bus.start())
        return bus

    async def wait(self, seconds: float) -> None:
        from twisted.internet import reactor

        await deferLater(reactor, seconds)  # type: ignore[arg-type]

    async def until(self, check: Check, what: str) -> None:
        for _ in range(int(TIMEOUT / POLL)):
            if await _holds(check):
                return
            await self.wait(POLL)
        raise AssertionError(f"not so within {TIMEOUT} s: {what}")

    async def client_ids(self, *names: str) -> list[bytes]:
        """The CLIENT LIST ids of the connections named C{names}."""
        listing = await within(self.admin.execute_command("CLIENT", "LIST"))
        ids = []
        for line in listing.decode().splitlines():
            fields = dict(field.split("=", 1) for field in line.split(" ") if "=" in field)
            if fields.get("name") in names:
                ids.append(fields["id"].encode())
        return ids

    async def kill(self, *names: str) -> None:
        """CLIENT KILL the connections named C{names}, from the admin connection."""
        ids = await self.client_ids(*names)
        assert len(ids) == len(names), (names, ids)
        for client_id in ids:
            await within(self.admin.execute_command("CLIENT", "KILL", "ID", client_id))

    async def cut(self, bus: RedisBus) -> None:
        """Kill both of the bus's connections at once, as a Redis restart does."""
        lost = self.next_status(bus)
        await self.kill(bus.command_name, bus.subscriber_name)
        assert (await within(lost)).connected is False

    async def restore(self, bus: RedisBus) -> BusStatus:
        statuses = self.statuses[id(bus)]
        if statuses and statuses[-1].connected:
            return statuses[-1]
        return await within(self.next_status(bus))

    async def close(self) -> None:
        await super().close()
        cursor = b"0"
        for _ in range(10_000):
            cursor, keys = await within(
                self.admin.execute_command("SCAN", cursor, "MATCH", self.prefix + "*", "COUNT", 1000)
            )
            if keys:
                await within(self.admin.execute_command("DEL", *keys))
            if cursor in (b"0", 0, "0"):
                break


@pytest.fixture(scope="session")
def redis_url() -> str:
    """
    The URL of the test Redis server, checked once per session. Tests are skipped, saying why,
    only where nothing listens at that address at all.
    """
    address = parse_redis_url(REDIS_URL)
    try:
        socket.create_connection((address.host, address.port), timeout=5).close()
    except OSError as error:
        pytest.skip(f"no Redis server at {address.host}:{address.port} ({error}); .ci/run starts one")
    return REDIS_URL


@pytest.fixture(params=["local", "redis"])
def bus_kind(request: pytest.FixtureRequest) -> str:
    """Each kind of bus in turn."""
    return str(request.param)


async def _admin(url: str) -> Any:
    address = parse_redis_url(url)
    return await within(txredisapi.Connection(
        address.host, address.port, dbid=address.db or None, reconnect=False, charset=None,
        convertNumbers=False, password=address.password, username=address.username,
    ))


@pytest.fixture
def cluster_url(bus_kind: str, request: pytest.FixtureRequest) -> str | None:
    """The test Redis for the redis kind (the test is skipped if none can be had); else None."""
    return str(request.getfixturevalue("redis_url")) if bus_kind == "redis" else None


@pytest_twisted.async_yield_fixture
async def cluster(cluster_url: str | None) -> AsyncIterator[Cluster]:
    """A cluster of each kind, its buses stopped (and its Redis keys deleted) after the test."""
    made: Cluster
    admin = None
    if cluster_url is not None:
        admin = await _admin(cluster_url)
        made = RedisCluster(cluster_url, admin)
    else:
        made = LocalCluster()
    try:
        yield made
    finally:
        await made.close()
        if admin is not None:
            await within(admin.disconnect())


@pytest_twisted.async_yield_fixture
async def redis_cluster(redis_url: str) -> AsyncIterator[RedisCluster]:
    """A Redis cluster alone, for what only RedisBus does."""
    admin = await _admin(redis_url)
    made = RedisCluster(redis_url, admin)
    try:
        yield made
    finally:
        await made.close()
        await within(admin.disconnect())


class TestBusContract:
    """What every IChatBus does, whatever carries it."""

    # --- channels ---------------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_buses_provide_the_interface(self, cluster: Cluster) -> None:
        """Every bus provides IChatBus, with every method it names."""
        assert verifyObject(IChatBus, await cluster.bus())

    @pytest_twisted.ensureDeferred
    async def test_sequence_numbers_grow_by_one_per_channel(self, cluster: Cluster) -> None:
        """Each channel has its own sequence, starting at 1 and growing by one per publish."""
        bus = await cluster.bus()

        lobby = [await within(bus.publish("lobby", b"m")) for _ in range(3)]
        dev = [await within(bus.publish("dev", b"m")) for _ in range(2)]
        lobby.append(await within(bus.publish("lobby", b"m")))

        assert lobby == [1, 2, 3, 4]
        assert dev == [1, 2]

    @pytest_twisted.ensureDeferred
    async def test_publisher_and_other_buses_receive_in_sequence_order(self, cluster: Cluster) -> None:
        """A message reaches the subscribers of every bus, the publisher's own included, with the number publish fired with."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        on_alpha, on_beta = Recorder(), Recorder()
        await within(alpha.subscribe("lobby", on_alpha))
        await within(beta.subscribe("lobby", on_beta))

        seq = await within(alpha.publish("lobby", b"hello"))

        await cluster.until(lambda: len(on_alpha.got) == 1 and len(on_beta.got) == 1, "both got it")
        assert on_alpha.got == on_beta.got == [("lobby", seq, b"hello")]

    @pytest_twisted.ensureDeferred
    async def test_two_publishers_interleave_into_one_order_seen_by_all(self, cluster: Cluster) -> None:
        """Publishes from two buses, made without waiting, get the numbers 1..N, and two subscribers see the same order, each message once."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        watchers = [await cluster.bus(), await cluster.bus()]
        recorders = [Recorder(), Recorder()]
        for watcher, recorder in zip(watchers, recorders):
            await within(watcher.subscribe("lobby", recorder))
        count = 50

        publishes = []
        for n in range(count):
            publishes.append(alpha.publish("lobby", b"alpha %d" % n))
            publishes.append(beta.publish("lobby", b"beta %d" % n))
        seqs = await within(gatherResults(publishes))
        marker = await within(alpha.publish("lobby", b"marker"))

        await cluster.until(lambda: all(r.got and r.got[-1][1] == marker for r in recorders), "the marker arrived")
        first, second = recorders
        assert sorted(seqs) == list(range(1, 2 * count + 1))
        assert first.got == second.got
        assert first.seqs() == list(range(1, 2 * count + 2))
        by_seq = dict(zip(seqs, [p for n in range(count) for p in (b"alpha %d" % n, b"beta %d" % n)]))
        assert first.payloads()[:-1] == [by_seq[seq] for seq in range(1, 2 * count + 1)]
        for sender in (b"alpha", b"beta"):
            own = [payload for payload in first.payloads() if payload.startswith(sender)]
            assert own == [b"%s %d" % (sender, n) for n in range(count)]

    @pytest_twisted.ensureDeferred
    async def test_payloads_arrive_byte_for_byte(self, cluster: Cluster) -> None:
        """Empty, binary, non-ASCII and large payloads arrive exactly as published."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        recorder = Recorder()
        await within(beta.subscribe("binary", recorder))

        for payload in PAYLOADS:
            await within(alpha.publish("binary", payload))

        await cluster.until(lambda: len(recorder.got) == len(PAYLOADS), "every payload arrived")
        assert recorder.payloads() == PAYLOADS

    @pytest_twisted.ensureDeferred
    async def test_subscribe_fires_with_where_the_subscription_starts(self, cluster: Cluster) -> None:
        """subscribe fires with the last number published before it (0 for a new channel); the receiver gets exactly what follows."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        assert await within(beta.subscribe("fresh", Recorder())) == 0
        for _ in range(3):
            await within(alpha.publish("lobby", b"before"))

        late = Recorder()
        assert await within(beta.subscribe("lobby", late)) == 3
        seq = await within(alpha.publish("lobby", b"after"))

        await cluster.until(lambda: late.got != [], "the next message arrived")
        assert late.got == [("lobby", seq, b"after")]
        assert seq == 4

    @pytest_twisted.ensureDeferred
    async def test_receivers_of_a_channel_each_get_each_message_once(self, cluster: Cluster) -> None:
        """Two receivers on one bus, and one on another, each get every message once."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        first, second, other = Recorder(), Recorder(), Recorder()
        await within(alpha.subscribe("lobby", first))
        await within(alpha.subscribe("lobby", second))
        await within(beta.subscribe("lobby", other))

        for n in range(5):
            await within(beta.publish("lobby", b"%d" % n))

        await cluster.until(lambda: all(len(r.got) == 5 for r in (first, second, other)), "all got five")
        assert first.got == second.got == other.got
        assert first.seqs() == [1, 2, 3, 4, 5]

    @pytest_twisted.ensureDeferred
    async def test_unsubscribe_stops_delivery_at_once(self, cluster: Cluster) -> None:
        """After unsubscribe a receiver gets nothing more, while others on the channel go on, and a channel without receivers gets nothing."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        leaving, staying, elsewhere = Recorder(), Recorder(), Recorder()
        await within(alpha.subscribe("lobby", leaving))
        await within(alpha.subscribe("lobby", staying))
        await within(beta.subscribe("lobby", elsewhere))
        await within(beta.publish("lobby", b"one"))
        await cluster.until(lambda: len(staying.got) == 1 and len(leaving.got) == 1, "both got one")

        alpha.unsubscribe("lobby", leaving)
        await within(beta.publish("lobby", b"two"))
        await cluster.until(lambda: len(staying.got) == 2, "staying got two")
        alpha.unsubscribe("lobby", staying)
        await within(beta.publish("lobby", b"three"))
        await cluster.until(lambda: len(elsewhere.got) == 3, "the other bus got three")

        assert leaving.payloads() == [b"one"]
        assert staying.payloads() == [b"one", b"two"]

    @pytest_twisted.ensureDeferred
    async def test_failing_receiver_does_not_stop_the_others(self, cluster: Cluster, logged: EventLoggingObserver) -> None:
        """A receiver that raises is logged and skipped; the next receiver and the next message are delivered."""
        bus = await cluster.bus()
        recorder = Recorder()

        def broken(channel: str, seq: int, payload: bytes) -> None:
            raise RuntimeError("receiver bug")

        await within(bus.subscribe("lobby", broken))
        await within(bus.subscribe("lobby", recorder))
        await within(bus.publish("lobby", b"one"))
        await within(bus.publish("lobby", b"two"))

        await cluster.until(lambda: len(recorder.got) == 2, "both arrived")
        assert recorder.payloads() == [b"one", b"two"]
        failures = [event for event in logged if "log_failure" in event and event.get("channel") == "lobby"]
        assert [event["log_failure"].type for event in failures] == [RuntimeError, RuntimeError], failures
        assert all(formatEvent(event).startswith("A receiver of bus channel lobby failed") for event in failures)

    @pytest_twisted.ensureDeferred
    async def test_stopped_bus_refuses_calls(self, cluster: Cluster) -> None:
        """After stop, publish, claim and subscribe fail with BusUnavailable."""
        bus = await cluster.bus()
        await within(bus.stop())

        for call in (lambda: bus.publish("lobby", b"x"), lambda: bus.claim("alice", "p1", 5.0),
                     lambda: bus.subscribe("lobby", Recorder())):
            with pytest.raises(BusUnavailable):
                await within(call())

    # --- names ------------------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_claim_is_exclusive_across_buses(self, cluster: Cluster) -> None:
        """A name one bus claimed cannot be claimed from another; its owner may claim it again."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        lease = cluster.long_lease

        assert await within(alpha.claim("alice", "process-a", lease)) is True
        assert await within(beta.claim("alice", "process-b", lease)) is False
        assert await within(alpha.claim("alice", "process-a", lease)) is True
        assert await within(beta.owner_of("alice")) == "process-a"
        assert await within(beta.owner_of("nobody")) is None

    @pytest_twisted.ensureDeferred
    async def test_claims_made_at_once_have_one_winner(self, cluster: Cluster) -> None:
        """Many claims of one name from two buses, made without waiting, give exactly one True."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        claims = []
        for n in range(10):
            claims.append(alpha.claim("bob", f"a{n}", cluster.long_lease))
            claims.append(beta.claim("bob", f"b{n}", cluster.long_lease))

        results = await within(gatherResults(claims))

        assert results.count(True) == 1
        winner = ["a", "b"][results.index(True) % 2] + str(results.index(True) // 2)
        assert await within(alpha.owner_of("bob")) == winner

    @pytest_twisted.ensureDeferred
    async def test_release_only_by_the_owner(self, cluster: Cluster) -> None:
        """release by another owner changes nothing; by the owner it frees the name for others."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        await within(alpha.claim("alice", "process-a", cluster.long_lease))

        assert await within(beta.release("alice", "process-b")) is False
        assert await within(beta.owner_of("alice")) == "process-a"
        assert await within(alpha.release("alice", "process-a")) is True
        assert await within(alpha.release("alice", "process-a")) is False
        assert await within(beta.owner_of("alice")) is None
        assert await within(beta.claim("alice", "process-b", cluster.long_lease)) is True

    @pytest_twisted.ensureDeferred
    async def test_renew_keeps_only_names_still_held(self, cluster: Cluster) -> None:
        """renew fires with the names the owner still holds, and not with names others hold or nobody does."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        await within(alpha.claim("alice", "process-a", cluster.long_lease))
        await within(alpha.claim("bob", "process-a", cluster.long_lease))
        await within(beta.claim("carol", "process-b", cluster.long_lease))

        held = await within(alpha.renew(["alice", "bob", "carol", "dave"], "process-a", cluster.long_lease))

        assert held == frozenset({"alice", "bob"})
        assert await within(alpha.renew([], "process-a", cluster.long_lease)) == frozenset()

    @pytest_twisted.ensureDeferred
    async def test_renew_keeps_a_name_past_its_first_lease(self, cluster: Cluster) -> None:
        """A name renewed with a longer lease is still held after its first lease would have ended."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        await within(alpha.claim("alice", "process-a", cluster.short_lease))

        assert await within(alpha.renew(["alice"], "process-a", cluster.long_lease)) == frozenset({"alice"})
        await cluster.wait(cluster.short_lease * 2)

        assert await within(beta.owner_of("alice")) == "process-a"
        assert await within(beta.claim("alice", "process-b", cluster.long_lease)) is False

    @pytest_twisted.ensureDeferred
    async def test_name_not_renewed_frees_itself(self, cluster: Cluster) -> None:
        """When a lease ends without renewal the name is free for another owner, and the old owner's renew no longer holds it."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        await within(alpha.claim("alice", "process-a", cluster.short_lease))

        await cluster.wait(cluster.short_lease)
        await cluster.until(lambda: beta.owner_of("alice").addCallback(lambda owner: owner is None), "the lease ended")

        assert await within(beta.claim("alice", "process-b", cluster.long_lease)) is True
        assert await within(alpha.renew(["alice"], "process-a", cluster.long_lease)) == frozenset()
        assert await within(alpha.owner_of("alice")) == "process-b"

    # --- processes --------------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_presence_lists_every_process_with_its_entries(self, cluster: Cluster) -> None:
        """Entries a process sets (and removes) are what every bus lists for it, with its heartbeat alive."""
        alpha, beta = await cluster.bus(), await cluster.bus()
        assert await within(alpha.heartbeat("p-alpha", cluster.long_lease)) is True
        assert await within(beta.heartbeat("p-beta", cluster.long_lease)) is True

        await within(alpha.update_presence("p-alpha", {"alice": b"lobby dev", "bob": b"lobby", "old": b"x"}))
        await within(alpha.update_presence("p-alpha", {"old": None, "missing": None, "bob": b"dev"}))

        seen = await within(beta.presence())
        assert seen == {
            "p-alpha": ProcessPresence(alive=True, entries={"alice": b"lobby dev", "bob": b"dev"}),
            "p-beta": ProcessPresence(alive=True, entries={}),
        }
        assert await within(alpha.presence()) == seen

    @pytest_twisted.ensureDeferred
    async def test_heartbeat_renewed_in_time_stays_alive(self, cluster: Cluster) -> None:
        """Heartbeats within the lease keep the process alive and each fires with True."""
        bus = await cluster.bus()
        assert await within(bus.heartbeat("p1", cluster.long_lease)) is True
        assert await within(bus.heartbeat("p1", cluster.long_lease)) is True

        assert (await within(bus.presence()))["p1"].alive is True
        assert await within(bus.forget_process("p1")) is None

    @pytest_twisted.ensureDeferred
    async def test_dead_process_is_seen_and_forgotten_by_exactly_one(self, cluster: Cluster) -> None:
        """
        When a process's heartbeat lease ends it is listed dead with its entries; of two buses
        forgetting it at once exactly one gets the entries, and it is no longer listed.
        """
        dying, alpha, beta = await cluster.bus(), await cluster.bus(), await cluster.bus()
        await within(dying.heartbeat("p-dying", cluster.short_lease))
        await within(dying.update_presence("p-dying", {"alice": b"lobby", "bob": b"dev"}))
        await within(alpha.heartbeat("p-alpha", cluster.long_lease))
        assert await within(alpha.forget_process("p-dying")) is None  # still alive

        async def dead() -> bool:
            return not (await within(beta.presence()))["p-dying"].alive

        await cluster.wait(cluster.short_lease)
        await cluster.until(dead, "the dying process is listed dead")
        assert (await within(beta.presence()))["p-dying"].entries == {"alice": b"lobby", "bob": b"dev"}

        results = await within(gatherResults([alpha.forget_process("p-dying"), beta.forget_process("p-dying")]))

        assert sorted(results, key=lambda r: r is None) == [{"alice": b"lobby", "bob": b"dev"}, None]
        assert set(await within(beta.presence())) == {"p-alpha"}
        assert await within(alpha.forget_process("p-dying")) is None
        assert await within(alpha.forget_process("p-never-seen")) is None
        assert await within(alpha.forget_process("p-alpha")) is None

    @pytest_twisted.ensureDeferred
    async def test_heartbeat_after_its_lease_ended_fires_false(self, cluster: Cluster) -> None:
        """A process whose lease ended learns it from its next heartbeat (False), which makes it alive again."""
        bus, other = await cluster.bus(), await cluster.bus()
        assert await within(bus.heartbeat("p1", cluster.short_lease)) is True

        await cluster.wait(cluster.short_lease)
        await cluster.until(lambda: other.presence().addCallback(lambda seen: not seen["p1"].alive), "p1 died")

        assert await within(bus.heartbeat("p1", cluster.long_lease)) is False
        assert (await within(other.presence()))["p1"].alive is True
        assert await within(other.heartbeat("p1", cluster.long_lease)) is True  # news to that bus

    # --- a lost link --------------------------------------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_lost_link_is_reported_and_restored_with_the_gap(self, cluster: Cluster) -> None:
        """
        A bus whose link is lost reports it; messages published meanwhile are missed, the
        restored report names exactly the channels that missed some, and delivery goes on.
        """
        alpha, beta = await cluster.bus(), await cluster.bus()
        lobby, quiet = Recorder(), Recorder()
        await within(alpha.subscribe("lobby", lobby))
        await within(alpha.subscribe("quiet", quiet))
        await within(beta.publish("lobby", b"one"))
        await within(beta.publish("quiet", b"one"))
        await cluster.until(lambda: len(lobby.got) == 1 and len(quiet.got) == 1, "the first messages arrived")

        await cluster.cut(alpha)
        await within(gatherResults([beta.publish("lobby", b"two"), beta.publish("lobby", b"three")]))
        restored = await cluster.restore(alpha)
        await within(beta.publish("lobby", b"four"))
        await within(beta.publish("quiet", b"two"))

        assert restored == BusStatus(connected=True, gaps=frozenset({"lobby"}))
        await cluster.until(lambda: len(lobby.got) == 2 and len(quiet.got) == 2, "delivery went on")
        assert lobby.got == [("lobby", 1, b"one"), ("lobby", 4, b"four")]
        assert quiet.seqs() == [1, 2]
        assert [status.connected for status in cluster.statuses[id(alpha)]] == [False, True]
        assert cluster.statuses[id(beta)] == []

    @pytest_twisted.ensureDeferred
    async def test_calls_fail_while_the_link_is_lost_and_subscribe_waits_for_it(self, cluster: Cluster) -> None:
        """
        While the link is lost, publish and claim fail with BusUnavailable at once, and a new
        subscription becomes active when the link is restored, starting where the channel stood.
        """
        alpha, beta = await cluster.bus(), await cluster.bus()
        await within(beta.publish("lobby", b"before"))

        await cluster.cut(alpha)
        with pytest.raises(BusUnavailable):
            await within(alpha.publish("lobby", b"lost"))
        with pytest.raises(BusUnavailable):
            await within(alpha.claim("alice", "p1", cluster.long_lease))
        recorder = Recorder()
        subscribed = alpha.subscribe("lobby", recorder)
        assert not subscribed.called
        await within(beta.publish("lobby", b"meanwhile"))
        await cluster.restore(alpha)

        assert await within(subscribed) == 2
        await within(beta.publish("lobby", b"after"))
        await cluster.until(lambda: recorder.got != [], "the next message arrived")
        assert recorder.got == [("lobby", 3, b"after")]

    @pytest_twisted.ensureDeferred
    async def test_link_lost_without_traffic_restores_without_gaps(self, cluster: Cluster) -> None:
        """A lost link during which nothing was published is restored with no gaps, and claims work again."""
        bus = await cluster.bus()
        await within(bus.subscribe("lobby", Recorder()))

        await cluster.cut(bus)
        restored = await cluster.restore(bus)

        assert restored == BusStatus(connected=True, gaps=frozenset())
        assert await within(bus.claim("alice", "p1", cluster.long_lease)) is True


class TestLocalBus:
    """What only LocalBus does: its hub, its faults, its synchronous delivery."""

    def test_delivery_is_synchronous(self) -> None:
        """publish delivers before it returns, and its Deferred has already fired."""
        bus = LocalBus(Clock())
        bus.start()
        recorder = Recorder()
        bus.subscribe("lobby", recorder)

        d = bus.publish("lobby", b"hi")

        assert recorder.got == [("lobby", 1, b"hi")]
        assert d.called and d.result == 1

    def test_publish_from_a_receiver_is_delivered_after_the_current_message(self) -> None:
        """A receiver that publishes does not make others see its message before the one being delivered."""
        clock = Clock()
        first = LocalBus(clock)
        second = first.sibling()
        first.start()
        second.start()
        seen_first, seen_second = Recorder(), Recorder()

        def echo(channel: str, seq: int, payload: bytes) -> None:
            seen_first(channel, seq, payload)
            if payload == b"question":
                first.publish("lobby", b"answer")

        first.subscribe("lobby", echo)
        second.subscribe("lobby", seen_second)
        second.publish("lobby", b"question")

        assert seen_first.got == seen_second.got == [("lobby", 1, b"question"), ("lobby", 2, b"answer")]

    def test_cut_bus_fails_calls_and_subscribes_on_restore(self) -> None:
        """While cut off, calls fail with BusUnavailable and a subscribe fires only on restore; the others go on."""
        clock = Clock()
        bus = LocalBus(clock)
        other = bus.sibling()
        bus.start()
        other.start()
        bus.cut()

        assert isinstance(self._failure(bus.publish("lobby", b"x")), BusUnavailable)
        assert isinstance(self._failure(bus.claim("alice", "p1", 5.0)), BusUnavailable)
        assert isinstance(self._failure(bus.presence()), BusUnavailable)
        subscribed = bus.subscribe("lobby", Recorder())
        other.publish("lobby", b"meanwhile")
        assert not subscribed.called

        bus.restore()

        assert subscribed.called and subscribed.result == 1

    def test_unsubscribe_before_active_cancels_the_subscribe(self) -> None:
        """A subscribe not yet active fails with CancelledError when its receiver unsubscribes."""
        bus = LocalBus(Clock())
        bus.start()
        bus.cut()
        recorder = Recorder()
        subscribed = bus.subscribe("lobby", recorder)

        bus.unsubscribe("lobby", recorder)

        assert isinstance(self._failure(subscribed), CancelledError)

    def test_hub_must_share_the_clock(self) -> None:
        """A LocalBus on a hub with another clock is refused."""
        with pytest.raises(ValueError):
            LocalBus(Clock(), LocalHub(Clock()))

    @staticmethod
    def _failure(d: Deferred[Any]) -> BaseException:
        failures: list[Any] = []
        d.addErrback(failures.append)
        assert failures, "the Deferred did not fail"
        return failures[0].value


@pytest.fixture
def private_redis(tmp_path: Any) -> Iterator[PrivateRedis]:
    """A redis-server of this test's own (skipped, saying why, where none is installed), killed after the test."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); .ci/run installs it")
    server = PrivateRedis(executable, str(tmp_path))
    try:
        yield server
    finally:
        server.kill()


class TestRedisBus:
    """What only RedisBus does: URLs, connections and what happens when they go."""

    @pytest.mark.parametrize(
        "url, address",
        [
            ("redis://127.0.0.1:6379/0", RedisAddress("127.0.0.1", 6379, 0)),
            ("redis://cache.example.org", RedisAddress("cache.example.org", 6379, 0)),
            ("redis://:s3cret@db:6380/2", RedisAddress("db", 6380, 2, None, "s3cret")),
            ("redis://chat:p%40ss@[::1]:6379/1", RedisAddress("::1", 6379, 1, "chat", "p@ss")),
        ],
    )
    def test_parse_redis_url(self, url: str, address: RedisAddress) -> None:
        """redis:// URLs give host, port, database and credentials, with defaults."""
        assert parse_redis_url(url) == address

    @pytest.mark.parametrize("url", ["http://127.0.0.1", "redis://host:port/0", "redis://host/db", "rediss://host"])
    def test_parse_redis_url_refuses_others(self, url: str) -> None:
        """Other schemes, bad ports and non-numeric databases are refused."""
        with pytest.raises(ValueError):
            parse_redis_url(url)

    def test_redacted_hides_the_password(self) -> None:
        """A password in the URL never reaches a log line."""
        assert redacted("redis://chat:s3cret@db:6379/0") == "redis://chat:***@db:6379/0"
        assert redacted("redis://db:6379/0") == "redis://db:6379/0"

    def test_encode_command(self) -> None:
        """Commands written by hand are RESP arrays of bulk strings."""
        assert encode_command("SUBSCRIBE", b"a b", 7) == b"*3\r\n$9\r\nSUBSCRIBE\r\n$3\r\na b\r\n$1\r\n7\r\n"

    def test_reply_reader_reads_replies_fed_a_byte_at_a_time(self) -> None:
        """Every RESP2 reply type, nested and nil ones too, comes out whole and in order however the bytes are split."""
        stream = (
            b"+OK\r\n-ERR wrong\r\n-NOSCRIPT No matching script\r\n:42\r\n$-1\r\n*-1\r\n$0\r\n\r\n"
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$6\r\n1 a\r\nb\r\n*2\r\n*0\r\n*2\r\n:1\r\n$-1\r\n"
        )
        reader = ReplyReader()
        replies = [reply for byte in range(len(stream)) for reply in reader.feed(stream[byte:byte + 1])]

        assert [repr(reply) if isinstance(reply, Exception) else reply for reply in replies] == [
            "OK", repr(txredisapi.ResponseError("wrong")), repr(txredisapi.ResponseError("NOSCRIPT No matching script")),
            42, None, None, b"", [b"message", b"ch", b"1 a\r\nb"], [[], [1, None]],
        ]
        assert reader.feed(b"") == []

    def test_reply_reader_refuses_what_is_not_resp(self) -> None:
        """Bytes that are not a RESP reply raise ValueError (the connection is then dropped)."""
        with pytest.raises(ValueError):
            ReplyReader().feed(b"HTTP/1.1 400 Bad Request\r\n")

    @pytest_twisted.ensureDeferred
    async def test_start_fails_when_nothing_listens(self) -> None:
        """start fails with BusUnavailable, saying where, when the first connection attempt is refused."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        bus = RedisBus(f"redis://127.0.0.1:{port}/0", prefix="unused:", connect_timeout=5.0)

        with pytest.raises(BusUnavailable, match=f"127.0.0.1:{port}"):
            await within(bus.start())
        with pytest.raises(BusUnavailable):
            await within(bus.publish("lobby", b"x"))

    @pytest_twisted.ensureDeferred
    async def test_start_fails_when_redis_refuses_the_login(self, redis_url: str, logged: EventLoggingObserver) -> None:
        """A password Redis refuses makes start fail with BusUnavailable at once, and the password is in no log line."""
        address = parse_redis_url(redis_url)
        bus = RedisBus(f"redis://:not-the-password@{address.host}:{address.port}/0", prefix="unused:")

        with pytest.raises(BusUnavailable, match=r"redis://:\*\*\*@"):
            await within(bus.start())

        texts = [formatEvent(event) for event in logged]
        assert any("refused the bus" in text for text in texts)
        assert not [text for text in texts if "not-the-password" in text]

    @pytest_twisted.ensureDeferred
    async def test_dropped_subscriber_connection_resubscribes_and_reports_the_gap(self, redis_cluster: RedisCluster) -> None:
        """
        When only the subscriber connection is killed, the bus reports the loss, connects and
        subscribes again with back-off, reports the channel that missed messages, and delivers
        what follows; its command connection kept working all along.
        """
        alpha, beta = await redis_cluster.bus(), await redis_cluster.bus()
        recorder = Recorder()
        await within(alpha.subscribe("lobby", recorder))
        await within(beta.publish("lobby", b"one"))
        await redis_cluster.until(lambda: len(recorder.got) == 1, "the first message arrived")

        lost = redis_cluster.next_status(alpha)
        await redis_cluster.kill(alpha.subscriber_name)
        assert (await within(lost)).connected is False
        restored = redis_cluster.next_status(alpha)
        assert await within(alpha.publish("lobby", b"two, while alpha is deaf")) == 2
        assert await within(alpha.claim("alice", "p1", 10.0)) is True

        assert await within(restored) == BusStatus(connected=True, gaps=frozenset({"lobby"}))
        await within(beta.publish("lobby", b"three"))
        await redis_cluster.until(lambda: len(recorder.got) == 2, "delivery resumed")
        assert recorder.got == [("lobby", 1, b"one"), ("lobby", 3, b"three")]
        assert len(await redis_cluster.client_ids(alpha.subscriber_name)) == 1

    @pytest_twisted.ensureDeferred
    async def test_channels_live_under_the_prefix(self, redis_cluster: RedisCluster) -> None:
        """Every key a bus makes begins with its prefix, so clusters (and tests) sharing a Redis do not meet."""
        bus = await redis_cluster.bus()
        await within(bus.publish("lobby", b"x"))
        await within(bus.claim("alice", "p1", 10.0))
        await within(bus.heartbeat("p1", 10.0))
        await within(bus.update_presence("p1", {"alice": b"lobby"}))

        keys = await within(redis_cluster.admin.execute_command("KEYS", redis_cluster.prefix + "*"))

        assert sorted(key.decode()[len(redis_cluster.prefix):] for key in keys) == [
            "alive:p1", "name:alice", "presence:p1", "processes", "seq:lobby",
        ]

    @pytest_twisted.ensureDeferred
    async def test_silent_subscriber_connection_is_made_again(self, redis_cluster: RedisCluster) -> None:
        """
        A subscriber connection that stops carrying anything (here: the bus stops reading it)
        is found by the periodic sync ping, dropped and made again, and the gap is reported.
        """
        alpha, beta = await redis_cluster.bus(ping_interval=0.1), await redis_cluster.bus()
        recorder = Recorder()
        await within(alpha.subscribe("lobby", recorder))
        lost = redis_cluster.next_status(alpha)

        alpha._subscriber.transport.pauseProducing()
        await within(beta.publish("lobby", b"unread"))

        assert (await within(lost)).connected is False
        assert await redis_cluster.restore(alpha) == BusStatus(connected=True, gaps=frozenset({"lobby"}))
        await within(beta.publish("lobby", b"read"))
        await redis_cluster.until(lambda: recorder.got != [], "delivery resumed")
        assert recorder.got == [("lobby", 2, b"read")]

    @pytest_twisted.ensureDeferred
    async def test_logs_say_what_happened_and_never_a_payload(
        self, redis_cluster: RedisCluster, logged: EventLoggingObserver
    ) -> None:
        """A lost and restored link is logged (a warning, then info), a failing receiver too, and no log text holds a payload."""
        alpha, beta = await redis_cluster.bus(), await redis_cluster.bus()
        secret = b"payload-" + secrets.token_hex(8).encode()

        def broken(channel: str, seq: int, payload: bytes) -> None:
            raise RuntimeError("receiver bug")

        recorder = Recorder()
        await within(alpha.subscribe("lobby", broken))
        await within(alpha.subscribe("lobby", recorder))
        await within(beta.publish("lobby", secret))
        await redis_cluster.until(lambda: recorder.got != [], "the message arrived")
        await redis_cluster.cut(alpha)
        await within(beta.publish("lobby", secret))
        await redis_cluster.restore(alpha)

        texts = [formatEvent(event) for event in logged]
        assert not [text for text in texts if secret.decode() in text]
        assert not [event for event in logged if secret in repr(event).encode()]
        assert any(
            formatEvent(event).startswith("Bus lost its") and event["log_level"] == LogLevel.warn for event in logged
        )
        assert any("restored; 1 channels missed messages" in text for text in texts)
        assert any("A receiver of bus channel lobby failed on message 1" in text for text in texts)

    @pytest_twisted.ensureDeferred
    async def test_redis_restart_without_its_data(self, private_redis: PrivateRedis) -> None:
        """
        When Redis is killed, every bus reports the loss and refuses calls; when it is back
        (empty: the sequence starts again at 1), they reconnect with back-off, subscribe again,
        report the gap, and the new sequence is delivered.
        """
        await private_redis.start()
        cluster = RedisCluster(private_redis.url, admin=None)
        alpha, beta = await cluster.bus(), await cluster.bus()
        recorder = Recorder()
        await within(alpha.subscribe("lobby", recorder))
        for n in range(3):
            await within(beta.publish("lobby", b"%d" % n))
        await cluster.until(lambda: len(recorder.got) == 3, "three arrived")
        lost = [cluster.next_status(alpha), cluster.next_status(beta)]

        private_redis.kill()
        assert [status.connected for status in await within(gatherResults(lost))] == [False, False]
        with pytest.raises(BusUnavailable):
            await within(beta.publish("lobby", b"while down"))
        restored = [cluster.next_status(alpha), cluster.next_status(beta)]
        await private_redis.start()

        assert await within(gatherResults(restored)) == [
            BusStatus(connected=True, gaps=frozenset({"lobby"})),
            BusStatus(connected=True, gaps=frozenset()),
        ]
        assert await within(beta.publish("lobby", b"after")) == 1
        await cluster.until(lambda: len(recorder.got) == 4, "delivery resumed")
        assert recorder.got[-1] == ("lobby", 1, b"after")
        for bus in cluster.buses:
            await within(bus.stop())
