"""
End to end, a cluster: two real ``twistd -n chat`` processes, A and B, sharing one PostgreSQL
database (a new one per test, from conftest.py's C{postgres_url}) and one Redis (the machine's,
under a key prefix of the test's own; or a redis-server of the test's own, which it may kill and
start again), with line-protocol users on each. What users on either see is one chat; and each
fault of issue 11 (a process killed, a process stopped, Redis restarted, PostgreSQL unreachable)
is survived as it says. Where an order of events must be made certain, a L{TcpProxy} stands
between a process and Redis or PostgreSQL and holds its traffic back or cuts it.

Every wait is bounded: L{WAIT}, or L{FAULT_WAIT} where a fault is given longer (a dead
process's users must be gone within 15 seconds; the bound checked is 20). Nothing is timed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from chat_twisted.bus.redis import parse_redis_url
from tests.e2e import (
    WAIT,
    PrivateRedis,
    ServerProcess,
    SocketClient,
    TcpProxy,
    cluster_server,
    delete_redis_keys,
    redis_command,
    tracebacks_in_log,
    wait_until,
)

#: The longest a fault may take to show (issue 11: a killed process's users leave within 15 s).
FAULT_WAIT = 20.0

#: The Redis the tests share (these machines run one; .ci/run starts it); each test has its own prefix.
REDIS_URL = os.environ.get("CHAT_TEST_REDIS", "redis://127.0.0.1:6379/0")

#: A room message as the line protocol shows it live: sender and text.
SAID = re.compile(r"^\[\d\d:\d\d:\d\d\] ([^ :]+): (.*)$")
HISTORY_HEADER = re.compile(r"^\* last (\d+) messages? in lobby:$")
HISTORY_LINE = re.compile(r"^\[history \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] ([^ :]+): (.*)$")
STORED_PRIVATE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \(private, while you were away\) alice: (.*)$")
CUT_OFF = "* lobby was cut off from the other servers for a while;"
NOT_SAVED = "error: your message could not be saved, so it was not sent"
HISTORY_UNAVAILABLE = "error: history unavailable: lobby's history could not be read; try again later"


# --- fixtures ---------------------------------------------------------------------------------


def _listening(url: str) -> bool:
    address = parse_redis_url(url)
    try:
        socket.create_connection((address.host, address.port), timeout=5).close()
        return True
    except OSError:
        return False


def _redis_server() -> str:
    """The redis-server program; the test is skipped, saying why, where it is not installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server); .ci/run installs it")
    return executable


@pytest.fixture
def bus(tmp_path: Path) -> Iterator[str]:
    """
    A Redis URL for the cluster: the machine's (its keys under the test's prefix deleted after
    the test) or, where none listens there, a redis-server of the test's own; skipped, saying
    why, only where neither can be had.
    """
    if _listening(REDIS_URL):
        yield REDIS_URL
        return
    private = PrivateRedis(_redis_server(), str(tmp_path))
    private.start_blocking()
    try:
        yield private.url
    finally:
        private.kill()


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A redis-server of the test's own, started, that it may kill and start again; killed after the test."""
    private = PrivateRedis(_redis_server(), str(tmp_path))
    private.start_blocking()
    try:
        yield private
    finally:
        private.kill()


class Cluster:
    """
    The servers and users of one test: processes on one database and one bus (under one prefix),
    each logging to C{<name>.log} in the work directory.
    """

    def __init__(self, workdir: Path, db: str, bus: str) -> None:
        self.workdir = workdir
        self.db = db
        self.bus = bus
        self.prefix = f"chat-test-{secrets.token_hex(6)}:"
        self.servers: list[ServerProcess] = []
        self.clients: list[SocketClient] = []

    def server(self, name: str, db: str | None = None, bus: str | None = None) -> ServerProcess:
        """Start server process C{name} (on another address of the same database or bus, if given)."""
        server = cluster_server(self.workdir, name, db or self.db, bus or self.bus, self.prefix, ["--rate", "0"])
        self.servers.append(server)
        return server

    def user(self, server: ServerProcess, nick: str) -> SocketClient:
        """A line user logged in to C{server} as guest C{nick}."""
        client = self.connect(server)
        client.login(nick)
        return client

    def connect(self, server: ServerProcess) -> SocketClient:
        """A line connection to C{server}, not logged in."""
        client = SocketClient(server.port)
        self.clients.append(client)
        return client

    def close(self) -> None:
        """Close every connection and kill every server still running."""
        for client in self.clients:
            client.close()
        for server in self.servers:
            server.kill()


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, bus: str) -> Iterator[Cluster]:
    """A cluster on a new PostgreSQL database and the test Redis; its servers killed, its Redis keys deleted, after."""
    made = Cluster(tmp_path, postgres_url, bus)
    try:
        yield made
    finally:
        made.close()
        delete_redis_keys(bus, made.prefix)


# --- reading what users are shown -----------------------------------------------------------------


def said(lines: list[str]) -> list[tuple[str, str]]:
    """The room messages among C{lines}, as (sender, text), in the order shown."""
    return [(match.group(1), match.group(2)) for line in lines if (match := SAID.match(line))]


def read_history(client: SocketClient, header: str | None = None) -> list[tuple[str, str]]:
    """
    Read one history block of the lobby (its header, unless given, and lines); return its
    messages as (sender, text).
    """
    if header is None:
        header = client.expect(lambda line: HISTORY_HEADER.match(line) is not None)[-1]
    count = int(HISTORY_HEADER.match(header).group(1))  # type: ignore[union-attr]
    deadline = time.monotonic() + WAIT
    messages = []
    for _ in range(count):
        line = client.read_line(deadline)
        assert line is not None, client.seen
        match = HISTORY_LINE.match(line)
        assert match, line
        messages.append((match.group(1), match.group(2)))
    return messages


def until_accepted(client: SocketClient, request: Callable[[int], str], accepted: Callable[[str, str], bool],
                   timeout: float) -> tuple[str, list[str]]:
    """
    Send C{request(n)} for n = 1, 2, ... until the answer (the first line that C{accepted(it,
    the request)} or that is an error) is not an error, for at most C{timeout} seconds; return
    the request answered and the errors met before.
    """
    errors: list[str] = []

    def answered() -> bool:
        line = request(len(errors) + 1)
        client.send(line + "\n")
        answer = client.expect(lambda seen: accepted(seen, line) or seen.startswith("error:"))[-1]
        if answer.startswith("error:"):
            errors.append(answer)
            return False
        return True

    wait_until(answered, "a request to be accepted", seen=lambda: errors, timeout=timeout)
    return request(len(errors) + 1), errors


def who(client: SocketClient) -> list[str]:
    """Ask /who of the lobby; return the nicknames listed."""
    client.send("/who\n")
    line = client.expect(lambda line: " in lobby: " in line and line.startswith("* "))[-1]
    return line.split(": ", 1)[1].split(", ")


def who_until(client: SocketClient, wanted: list[str], timeout: float = WAIT) -> None:
    """Ask /who again and again (bounded) until it lists exactly C{wanted}; fail showing the last answer."""
    answers: list[list[str]] = []

    def listed() -> bool:
        answers.append(who(client))
        return answers[-1] == wanted

    wait_until(listed, f"/who to list {wanted}", seen=lambda: answers[-1], timeout=timeout)


def chat_before_the_outage(sender: SocketClient, nick: str, others: list[SocketClient], lines: int = 6) -> None:
    """
    C{sender} says C{lines} lines that every one of C{others} is shown. After Redis loses its
    data, its sequence of the room channel starts again from nothing; a process tells its users
    they were cut off when that sequence, once it is linked again, does not stand where it
    left it. These lines put it well past where the new sequence will be, so that this holds
    (where the two happen to meet, see L{test_redis_restarted_cut_off_told_even_where_the_new_count_meets_the_old}).
    """
    for number in range(1, lines + 1):
        sender.send(f"before the outage {number}\n")
    for client in [sender, *others]:
        client.expect(f"{nick}: before the outage {lines}")


def channel_count(redis_url: str, prefix: str) -> int:
    """How many messages the cluster's one bus channel has carried, as Redis counts them (RedisBus's C{seq:chat} key)."""
    value = redis_command(redis_url, "GET", f"{prefix}seq:chat")
    return 0 if value is None else int(value)  # type: ignore[call-overload]


def log_in_when_free(client: SocketClient, nick: str, deadline: float) -> list[str]:
    """
    Answer the nickname prompt with C{nick} until it is accepted (it may still be held by a
    process that is gone), by C{deadline}; return the refusals met on the way.
    """
    refusals: list[str] = []
    client.expect("nickname")
    while True:
        client.send(nick + "\n")
        answer = client.expect(lambda line: line.startswith("* Welcome,") or line.startswith("error:"),
                               max(deadline - time.monotonic(), 0.1))[-1]
        if answer.startswith("* Welcome,"):
            return refusals
        refusals.append(answer)
        assert "already in use" in answer, answer
        assert time.monotonic() < deadline, f"{nick} was still refused at the deadline: {refusals[-1]}"
        time.sleep(0.25)  # not a timing check: a pause between attempts


# --- the tests --------------------------------------------------------------------------------


def test_users_on_two_processes_share_one_chat(cluster: Cluster) -> None:
    """
    Users on A and on B see one chat: every member, one order of messages (each once) on both
    processes, one history, private and offline messages, nickname uniqueness, room counts and
    topics across processes.
    """
    a, b = cluster.server("a"), cluster.server("b")
    alice = cluster.user(a, "alice")
    bob = cluster.user(b, "bob")
    carol = cluster.user(b, "carol")
    alice.expect("carol joined lobby")
    bob.expect("carol joined lobby")
    everyone = [alice, bob, carol]
    for client in everyone:
        assert who(client) == ["alice", "bob", "carol"]

    # Interleaved: each sends its lines without waiting for anything, all three at once.
    count = 20
    for number in range(count):
        for client, nick in zip(everyone, ["alice", "bob", "carol"]):
            client.send(f"{nick} {number:02d}\n")
    sent = {(nick, f"{nick} {number:02d}") for nick in ("alice", "bob", "carol") for number in range(count)}

    def all_shown(client: SocketClient) -> Callable[[str], bool]:
        return lambda line: len(said(client.seen)) >= 3 * count

    for client in everyone:
        client.expect(all_shown(client), FAULT_WAIT)
    alice.send("the end\n")  # whatever came twice would have come before this
    for client in everyone:
        client.expect("alice: the end")
    shown = [said(client.seen) for client in everyone]
    assert shown[0][-1] == ("alice", "the end")
    live = shown[0][:-1]
    assert Counter(live) == Counter(sent), "a message was lost or shown twice"
    for nick in ("alice", "bob", "carol"):
        assert [text for sender, text in live if sender == nick] == [f"{nick} {n:02d}" for n in range(count)]
    assert shown[1] == shown[0], "bob (on B) saw another order than alice (on A)"
    assert shown[2] == shown[0], "carol (on B) saw another order than alice (on A)"

    # The history, read on either process, has every message, once.
    alice.send("/history 100\n")
    history_a = read_history(alice)
    bob.send("/history 100\n")
    history_b = read_history(bob)
    assert history_a == history_b
    assert Counter(history_a) == Counter(shown[0])

    # Private messages both ways across processes.
    alice.send("/msg bob over to B\n")
    assert bob.expect("over to B")[-1].endswith("(private) alice: over to B")
    assert alice.expect("over to B")[-1].endswith("(private to bob) alice: over to B")
    carol.send("/msg alice over to A\n")
    assert alice.expect("over to A")[-1].endswith("(private) carol: over to A")

    # A nickname taken on A is refused on B, whatever its case.
    newcomer = cluster.connect(b)
    newcomer.expect("nickname")
    for taken in ("alice", "ALICE"):
        newcomer.send(taken + "\n")
        assert newcomer.expect("error:")[-1] == f"error: nickname {taken!r} is already in use; choose another"
    newcomer.send("erin\n")
    newcomer.expect("Welcome, erin!")
    alice.expect("erin joined lobby")

    # /rooms counts the members on both processes; a topic set on B is shown on A.
    for client in (alice, bob):
        client.send("/rooms\n")
        assert client.expect("*   lobby (")[-1] == "*   lobby (4 users)"
    carol.send("/topic shared by A and B\n")
    alice.expect("* carol set the topic of lobby to: shared by A and B")
    alice.send("/topic\n")
    assert alice.expect("topic of lobby")[-1] == "* topic of lobby: shared by A and B"
    alice.send("/rooms\n")
    assert alice.expect("*   lobby (")[-1] == "*   lobby (4 users): shared by A and B"

    # An account made on B; a message kept for it, sent from A; delivered at login on B.
    dave = cluster.user(b, "dave")
    dave.send("/register hunter22\n")
    dave.expect("dave is now registered")
    dave.send("/quit\n")
    dave.expect_closed()
    alice.expect("dave left lobby")
    alice.send("/msg dave kept for you\n")
    assert alice.expect("offline")[-1] == "* dave is offline; your message will be delivered when they log in"
    dave = cluster.connect(b)
    dave.expect("nickname")
    dave.send("/login dave hunter22\n")
    dave.expect("Welcome, dave!")
    match = STORED_PRIVATE.match(dave.expect("while you were away")[-1])
    assert match and match.group(1) == "kept for you"

    for server in (a, b):
        assert server.stop() == 0, server.log_text()


@pytest.mark.xfail(strict=True, reason=(
    "known limit (docs/scaling.md): /history lists a room's messages in the order they were stored (ids given by"
    " PostgreSQL as each process commits), but users are shown them live in the order the bus"
    " carried them (each process publishes after its commit), so where two processes' commits and"
    " publishes cross, /history shows another order than every member saw"))
def test_history_has_the_order_the_members_saw(cluster: Cluster) -> None:
    """
    /history lists messages in the one order every member was shown them live, also where B
    stored its message before A did but A's reached the bus first: made certain by holding
    back what B sends to Redis (a proxy) until A's message has been shown.
    """
    proxy = TcpProxy(*_redis_host_and_port(cluster.bus))
    try:
        a = cluster.server("a")
        b = cluster.server("b", bus=f"redis://127.0.0.1:{proxy.port}/{parse_redis_url(cluster.bus).db}")
        alice = cluster.user(a, "alice")
        bob = cluster.user(b, "bob")
        alice.expect("bob joined lobby")

        proxy.pause()
        bob.send("stored first\n")

        def stored() -> bool:
            alice.send("/history\n")
            header = alice.expect(lambda line: bool(HISTORY_HEADER.match(line)) or line.startswith("* no messages"))[-1]
            return ("bob", "stored first") in (read_history(alice, header) if HISTORY_HEADER.match(header) else [])

        wait_until(stored, "bob's message to be stored")
        alice.send("stored second\n")
        alice.expect("alice: stored second")
        bob.expect("alice: stored second")
        proxy.resume()
        for client in (alice, bob):
            client.expect("bob: stored first")
        live = said(alice.seen)
        assert live == said(bob.seen) == [("alice", "stored second"), ("bob", "stored first")]

        for client in (alice, bob):
            client.send("/history\n")
            assert read_history(client) == live
    finally:
        proxy.close()


def _redis_host_and_port(url: str) -> tuple[str, int]:
    address = parse_redis_url(url)
    return address.host, address.port


def test_a_killed_process_users_leave_and_free_their_nicknames(cluster: Cluster) -> None:
    """
    B killed with SIGKILL: alice on A sees bob and carol leave with "connection lost" within
    the bound (the target is 15 s), and "bob" can then log in on A.
    """
    a, b = cluster.server("a"), cluster.server("b")
    alice = cluster.user(a, "alice")
    cluster.user(b, "bob")
    cluster.user(b, "carol")
    alice.expect("carol joined lobby")

    deadline = time.monotonic() + FAULT_WAIT
    b.kill()
    left = {"* bob left lobby (connection lost)", "* carol left lobby (connection lost)"}
    alice.expect(lambda line: left <= set(alice.seen), deadline - time.monotonic())

    bob = cluster.connect(a)
    log_in_when_free(bob, "bob", deadline)
    alice.expect("bob joined lobby")
    assert who(alice) == ["alice", "bob"]
    assert a.process.poll() is None
    assert a.stop() == 0, a.log_text()


def test_a_stopped_process_tells_its_users_and_disturbs_no_one_else(cluster: Cluster) -> None:
    """
    B stopped with SIGTERM: bob is told the server is shutting down, alice on A sees him leave,
    and alice and dora on A go on chatting as before.
    """
    a, b = cluster.server("a"), cluster.server("b")
    alice = cluster.user(a, "alice")
    dora = cluster.user(a, "dora")
    bob = cluster.user(b, "bob")
    alice.expect("bob joined lobby")
    dora.expect("bob joined lobby")

    assert b.stop() == 0, b.log_text()
    assert "* server shutting down" in bob.expect_closed()
    for client in (alice, dora):
        assert client.expect("bob left lobby")[-1] == "* bob left lobby (server shutting down)"

    alice.send("still here?\n")
    dora.expect("alice: still here?")
    dora.send("yes, nothing happened here\n")
    alice.expect("dora: yes, nothing happened here")
    assert who(alice) == ["alice", "dora"]
    for client in (alice, dora):
        after_leave = client.seen[client.seen.index("* bob left lobby (server shutting down)") + 1:]
        assert not [line for line in after_leave if line.startswith("error:") or "cut off" in line], after_leave
    assert "lost the link" not in a.log_text()
    assert a.stop() == 0, a.log_text()


@pytest.fixture
def redis_cluster(tmp_path: Path, postgres_url: str, restartable_redis: PrivateRedis) -> Iterator[Cluster]:
    """A cluster on a new PostgreSQL database and a redis-server of the test's own; its servers killed after."""
    made = Cluster(tmp_path, postgres_url, restartable_redis.url)
    try:
        yield made
    finally:
        made.close()


def test_redis_restarted(redis_cluster: Cluster, restartable_redis: PrivateRedis) -> None:
    """
    Redis killed and started again (its data gone): the processes log the loss and keep
    running, users on one process chat on, and afterwards delivery across processes resumes
    and users are told the lobby was cut off for a while.
    """
    cluster = redis_cluster
    a, b = cluster.server("a"), cluster.server("b")
    alice = cluster.user(a, "alice")
    dora = cluster.user(a, "dora")
    bob = cluster.user(b, "bob")
    alice.expect("bob joined lobby")
    dora.expect("bob joined lobby")
    chat_before_the_outage(alice, "alice", [dora, bob])

    restartable_redis.kill()
    for server in (a, b):
        server.wait_for_log(re.compile(r"\[chat_twisted\.bus\.redis#warn\] Bus lost its \w+ connection to Redis at "
                                       + re.escape(restartable_redis.url) + r" \(.*\); reconnecting with back-off"))
        server.wait_for_log(re.compile(r"\[chat_twisted\.peers#warn\] lost the link to the other processes;"
                                       r" serving this process's users alone"))
    alice.send("alone on A\n")
    alice.expect("alice: alone on A")
    dora.expect("alice: alone on A")
    dora.send("still with you\n")
    alice.expect("dora: still with you")
    bob.send("alone on B\n")
    bob.expect("bob: alone on B")
    assert a.process.poll() is None and b.process.poll() is None

    restartable_redis.start_blocking()
    for client in (alice, dora, bob):
        client.expect(lambda line: line.startswith(CUT_OFF), FAULT_WAIT)
    for server in (a, b):
        assert "the link to the other processes is back" in server.log_text()
    alice.send("A to B again\n")
    bob.expect("alice: A to B again")
    bob.send("B to A again\n")
    alice.expect("bob: B to A again")
    dora.expect("bob: B to A again")
    assert not [line for line in alice.seen + dora.seen + bob.seen if line.startswith("error:")]
    for server in (a, b):
        assert server.stop() == 0, server.log_text()


def test_redis_restarted_both_processes_list_everyone_again(
    redis_cluster: Cluster, restartable_redis: PrivateRedis
) -> None:
    """
    After a Redis restart, /who on each process lists the users of both again, even on the
    process whose link came back first, before the other had put its users back on the bus:
    that order is made certain by holding B's link back (a proxy between B and Redis) until A's is back.
    """
    cluster = redis_cluster
    proxy = TcpProxy("127.0.0.1", restartable_redis.port)
    try:
        a = cluster.server("a")
        b = cluster.server("b", bus=f"redis://127.0.0.1:{proxy.port}/0")
        alice = cluster.user(a, "alice")
        bob = cluster.user(b, "bob")
        alice.expect("bob joined lobby")
        chat_before_the_outage(alice, "alice", [bob])

        proxy.cut()
        restartable_redis.kill()
        restartable_redis.start_blocking()
        alice.expect(lambda line: line.startswith(CUT_OFF), FAULT_WAIT)  # A is linked again
        proxy.restore()
        bob.expect(lambda line: line.startswith(CUT_OFF), FAULT_WAIT)  # B is linked again
        bob.send("B is back\n")
        alice.expect("bob: B is back")

        who_until(bob, ["alice", "bob"])
        who_until(alice, ["alice", "bob"])
    finally:
        proxy.close()


def test_redis_restarted_cut_off_told_even_where_the_new_count_meets_the_old(
    redis_cluster: Cluster, restartable_redis: PrivateRedis
) -> None:
    """
    A process whose link to a restarted Redis comes back after the others' tells its users they
    were cut off even where the channel's new count has by then come to the number it last
    saw: made certain by holding B's link back (a proxy) while alice says just enough.
    """
    cluster = redis_cluster
    proxy = TcpProxy("127.0.0.1", restartable_redis.port)
    try:
        a = cluster.server("a")
        b = cluster.server("b", bus=f"redis://127.0.0.1:{proxy.port}/0")
        alice = cluster.user(a, "alice")
        bob = cluster.user(b, "bob")
        alice.expect("bob joined lobby")
        chat_before_the_outage(alice, "alice", [bob])
        last_seen_by_b = channel_count(restartable_redis.url, cluster.prefix)

        proxy.cut()
        restartable_redis.kill()
        restartable_redis.start_blocking()
        alice.expect(lambda line: line.startswith(CUT_OFF), FAULT_WAIT)  # A is linked again
        said_meanwhile: list[str] = []
        while (count := channel_count(restartable_redis.url, cluster.prefix)) < last_seen_by_b:
            said_meanwhile.append(f"while B is away {len(said_meanwhile) + 1}")
            alice.send(said_meanwhile[-1] + "\n")
            alice.expect(f"alice: {said_meanwhile[-1]}")  # it went round the bus: counted
        assert count == last_seen_by_b, "setting up: the new count went past the old one"
        assert said_meanwhile, "setting up: alice said nothing while B was away"

        proxy.restore()
        restored = b.wait_for_log(re.compile(r"Bus link to Redis at \S+ restored; (\d+) channels? missed messages"))
        assert restored.group(1) == "1", f"B missed {said_meanwhile} but found no gap: {restored.group(0)!r}"
        bob.expect(lambda line: line.startswith(CUT_OFF), FAULT_WAIT)
    finally:
        proxy.close()


#: The log entries with a traceback that an unreachable PostgreSQL may cause: each failed request, logged.
LOGGED_STORE_FAILURES = re.compile(
    r"^(Rollback failed"
    r"|writing \d+ messages failed"
    r"|storing a message from \w+ failed"
    r"|reading the history of lobby failed)$"
)


@pytest.fixture
def database_proxy(postgres_url: str) -> Iterator[TcpProxy]:
    """A proxy in front of the test's PostgreSQL server, closed after the test."""
    parts = urlsplit(postgres_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        yield proxy
    finally:
        proxy.close()


def through(url: str, proxy: TcpProxy) -> str:
    """The PostgreSQL URL C{url} with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    user, at, _ = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user}{at}127.0.0.1:{proxy.port}"))


def test_postgres_unreachable(cluster: Cluster, database_proxy: TcpProxy) -> None:
    """
    PostgreSQL cut off (a proxy between it and both processes): a room message gets a clear
    error and is not sent, /history says it is unavailable, private messages between online
    users still go, nothing crashes; once it is back, messages are stored and shown again.
    """
    proxied = through(cluster.db, database_proxy)
    a, b = cluster.server("a", db=proxied), cluster.server("b", db=proxied)
    alice = cluster.user(a, "alice")
    dora = cluster.user(a, "dora")
    bob = cluster.user(b, "bob")
    alice.expect("bob joined lobby")
    alice.send("before the cut\n")
    bob.expect("alice: before the cut")
    dora.expect("alice: before the cut")

    database_proxy.cut()
    alice.send("lost on A\n")
    assert alice.expect("error:")[-1] == NOT_SAVED
    bob.send("lost on B\n")
    assert bob.expect("error:")[-1] == NOT_SAVED
    alice.send("/history\n")
    assert alice.expect("error:")[-1] == HISTORY_UNAVAILABLE
    alice.send("/msg dora on the same process\n")
    assert dora.expect("on the same process")[-1].endswith("(private) alice: on the same process")
    alice.send("/msg bob across processes\n")
    assert bob.expect("across processes")[-1].endswith("(private) alice: across processes")
    bob.send("/msg alice and back\n")
    assert alice.expect("and back")[-1].endswith("(private) bob: and back")
    assert a.process.poll() is None and b.process.poll() is None

    # Each pooled connection that sat idle through the cut fails the first request made on it
    # afterwards (PostgresStore's docstring says so): so ask again until answered, bounded.
    database_proxy.restore()
    last, refused = until_accepted(alice, lambda n: f"back {n}", lambda seen, sent: seen.endswith(f"alice: {sent}"),
                                   FAULT_WAIT)
    assert set(refused) <= {NOT_SAVED}, refused
    bob.expect(f"alice: {last}")
    dora.expect(f"alice: {last}")
    _, refused = until_accepted(bob, lambda n: "/history", lambda seen, sent: bool(HISTORY_HEADER.match(seen)),
                                FAULT_WAIT)
    assert set(refused) <= {HISTORY_UNAVAILABLE}, refused
    history = read_history(bob, bob.seen[-1])
    assert ("alice", "before the cut") in history and ("alice", last) in history
    for client in (alice, bob, dora):
        assert not {"lost on A", "lost on B"} & {text for _, text in said(client.seen)}, client.seen
    assert not {"lost on A", "lost on B"} & {text for _, text in history}

    for server in (a, b):
        log = server.log_text()
        assert "Unhandled" not in log, log
        unexpected = [entry for entry in tracebacks_in_log(log) if not LOGGED_STORE_FAILURES.match(entry[1])]
        assert not unexpected, log
        assert server.stop() == 0, log
