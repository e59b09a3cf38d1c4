"""
What committing room messages before fan-out costs: a benchmark that prints figures, never asserts.

Level 1, the store alone (in this process, on the real reactor): appends per second for N
messages with W appends in flight, for
  - memory        MemoryStore (nothing to commit: the ceiling),
  - sqlite-group  SqliteStore, the real class (group commit), on a file,
  - sqlite-group-mem  the same on SQLite ":memory:" (the thread hop and SQL, no file),
  - sqlite-per-msg    SqliteStore changed here (not in the library) to run one transaction per
                      message: _pool.runInteraction(insert_messages_txn, [(key, msg)]).

Level 2, end to end: the real ``twistd -n chat`` as a subprocess on 127.0.0.1 port 0, R receivers
and S senders on raw TCP connections (a Twisted client in this process), every sender keeping up
to 8 lines in flight and waiting for its own echo; delivered lines per second (every recipient
counted, senders included) and p50/p99 latency from the send time carried in the payload.
Run once with ``--db FILE`` (the default setup) and once with ``--db :memory:``. Diagnostics,
off by default: --instrument runs twistd with SqliteStore patched to count each committed
group's size (behaviour unchanged); --also-nodelay adds runs with TCP_NODELAY on the server's
connections (behaviour changed: shows what Nagle's algorithm costs).

Usage:  python bench/commit_cost.py [--quick] [--seconds S] [--messages N] [--in-flight 1,40]
                                    [--repeat K] [--instrument] [--also-nodelay]
Bounded in time, 127.0.0.1 only; it stops its servers itself (SIGTERM, then SIGKILL).
Install the current code first (``pip install .``): level 2 runs the installed twistd plugin.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from twisted.internet import defer, task
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.protocol import ClientFactory, Protocol

if __package__ in (None, ""):  # run as a script: make the repository's bench package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.servers import cpu_seconds, twistd_command  # noqa: E402
from chat_twisted.model import StoredMessage  # noqa: E402
from chat_twisted.store.memory import MemoryStore
from chat_twisted.store.sqlite import SqliteStore, insert_messages_txn

LISTENING = re.compile(r"chat server listening on 127\.0\.0\.1:(\d+)")
MARK = b"BENCH "
SENDER_WINDOW = 8  # lines each sender keeps in flight
START_WAIT = 15.0  # longest wait for the server to listen / clients to log in
STOP_WAIT = 10.0  # SIGTERM, then SIGKILL after this many seconds


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


# --- Level 1: the store alone ------------------------------------------------------------------


class PerMessageCommitStore(SqliteStore):
    """SqliteStore with one transaction per message: no grouping (for comparison only)."""

    def append_message(self, room_key: str, message: StoredMessage) -> Deferred[int]:
        """Insert and commit C{message} in a transaction of its own; fire with its id."""
        inserted: Deferred[list[int]] = self._pool.runInteraction(insert_messages_txn, [(room_key, message)])
        return inserted.addCallback(lambda ids: ids[0])


def count_rows(cursor: Any) -> int:
    cursor.execute("SELECT COUNT(*) FROM messages")
    return int(cursor.fetchone()[0])


async def run_store(reactor: Any, name: str, make_store: Any, n: int, window: int) -> dict[str, Any]:
    store = make_store()
    batches: list[int] = []
    if isinstance(store, SqliteStore) and not isinstance(store, PerMessageCommitStore):
        real_write = store._write_queued  # record each group's size; the write itself is unchanged

        def write_queued() -> None:
            batches.append(len(store._queued))
            real_write()

        store._write_queued = write_queued  # type: ignore[method-assign]
    await store.start()

    started = [0.0] * n
    latencies: list[float] = []
    failures: list[Any] = []
    issued = done = refills = 0
    pumping = False
    finished: Deferred[None] = Deferred()

    def committed(result: Any, i: int) -> None:
        nonlocal done, refills
        latencies.append(time.perf_counter() - started[i])
        done += 1
        refills += 1
        pump()

    def failed(failure: Any, i: int) -> None:
        failures.append(failure)
        committed(None, i)

    def pump() -> None:
        # A loop, not recursion: MemoryStore's Deferreds have fired before append_message returns.
        nonlocal issued, refills, pumping
        if pumping:
            return
        pumping = True
        while refills and issued < n:
            refills -= 1
            i = issued
            issued += 1
            started[i] = time.perf_counter()
            d = store.append_message("lobby", StoredMessage("lobby", "say", "bench", f"message {i}", time.time()))
            d.addCallbacks(committed, failed, callbackArgs=(i,), errbackArgs=(i,))
        pumping = False
        if done == n and not finished.called:
            finished.callback(None)

    t0 = time.perf_counter()
    cpu0 = time.process_time()
    refills = min(window, n)
    pump()
    await finished
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0

    rows = await store._pool.runInteraction(count_rows) if isinstance(store, SqliteStore) else None
    await store.stop()
    result: dict[str, Any] = {
        "store": name, "messages": n, "in_flight": window,
        "seconds": round(elapsed, 4), "appends_per_s": round(n / elapsed),
        "us_per_append": round(elapsed / n * 1e6, 2), "process_cpu_s": round(cpu, 3),
        "commit_latency_p50_ms": ms(percentile(latencies, 50)),
        "commit_latency_p99_ms": ms(percentile(latencies, 99)),
        "rows_in_db": rows, "failures": len(failures),
    }
    if name == "sqlite-per-msg":
        result["transactions"] = n
    if batches:
        result["transactions"] = len(batches)
        result["mean_batch"] = round(sum(batches) / len(batches), 2)
        result["max_batch"] = max(batches)
        result["batches_of_1"] = sum(1 for b in batches if b == 1)
    return result


async def level1(reactor: Any, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    results = []
    for window in args.in_flight:
        variants = [
            ("memory", MemoryStore),
            ("sqlite-group", lambda w=window: SqliteStore(str(tmp / f"l1-group-{w}.sqlite3"), reactor=reactor)),
            ("sqlite-group-mem", lambda: SqliteStore(":memory:", reactor=reactor)),
            ("sqlite-per-msg", lambda w=window: PerMessageCommitStore(str(tmp / f"l1-permsg-{w}.sqlite3"),
                                                                      reactor=reactor)),
        ]
        for name, make in variants:
            result = await run_store(reactor, name, make, args.messages, window)
            print(f"  level 1 {name:17} W={window:<4} {result['appends_per_s']:>9} appends/s", flush=True)
            results.append(result)
    return results


# --- Level 2: end to end -----------------------------------------------------------------------


#: Run twistd with the chat server patched for measurement (never part of the shipped server):
#: BENCH_BATCHES=PATH records the size of every group SqliteStore commits and writes them to PATH
#: at shutdown (no change in behaviour); BENCH_NODELAY=1 sets TCP_NODELAY on every accepted
#: connection (a change in behaviour, to see what Nagle's algorithm costs).
PATCHED_TWISTD = """
import collections, json, os
from twisted.internet import reactor
from chat_twisted.store.sqlite import SqliteStore
from chat_twisted.wire.line import LineChatProtocol
if os.environ.get("BENCH_BATCHES"):
    sizes = collections.Counter()
    write_queued = SqliteStore._write_queued
    def counting_write_queued(self):
        sizes[len(self._queued)] += 1
        write_queued(self)
    SqliteStore._write_queued = counting_write_queued
    def dump():
        with open(os.environ["BENCH_BATCHES"], "w") as f:
            json.dump(sorted(sizes.items()), f)
    reactor.addSystemEventTrigger("after", "shutdown", dump)
if os.environ.get("BENCH_NODELAY"):
    connection_made = LineChatProtocol.connectionMade
    def nodelay_connection_made(self):
        self.transport.setTcpNoDelay(True)
        connection_made(self)
    LineChatProtocol.connectionMade = nodelay_connection_made
from twisted.scripts.twistd import run
run()
"""

RUNNING: list[subprocess.Popen[bytes]] = []


@atexit.register
def kill_leftovers() -> None:
    """Last resort (e.g. the bench was interrupted): no server outlives the bench."""
    for process in RUNNING:
        if process.poll() is None:
            process.kill()
            process.wait(STOP_WAIT)


def batch_stats(sizes: list[list[int]]) -> dict[str, Any]:
    transactions = sum(count for _, count in sizes)
    messages = sum(size * count for size, count in sizes)
    return {
        "transactions": transactions,
        "mean_batch": round(messages / transactions, 2) if transactions else None,
        "max_batch": max((size for size, _ in sizes), default=None),
        "batches_of_1": {size: count for size, count in sizes}.get(1, 0),
    }


class Server:
    def __init__(self, workdir: Path, db: str, label: str, instrument: bool, nodelay: bool) -> None:
        self.log_path = workdir / f"server-{label}.log"
        self.batches_path = workdir / f"batches-{label}.json"
        env = dict(os.environ)
        if instrument or nodelay:
            twistd = [sys.executable, "-c", PATCHED_TWISTD]
            if instrument:
                env["BENCH_BATCHES"] = str(self.batches_path)
            if nodelay:
                env["BENCH_NODELAY"] = "1"
        else:
            twistd = twistd_command()
        self.command = twistd + [
            "-n", "--pidfile=", "--logfile", str(self.log_path), "chat",
            "--port", "tcp:0:interface=127.0.0.1", "--no-web", "--db", db, "--rate", "0",
        ]
        if twistd == twistd_command():
            self.shown_command = shlex.join(self.command)
        else:  # the patch is long: show where it is instead
            shown_env = [f"{k}={env[k]}" for k in ("BENCH_BATCHES", "BENCH_NODELAY") if k in env]
            self.shown_command = shlex.join([*shown_env, sys.executable, "-c", "$PATCHED_TWISTD", *self.command[3:]])
        self.process = subprocess.Popen(self.command, cwd=workdir, stdin=subprocess.DEVNULL, env=env)
        RUNNING.append(self.process)
        self.port = 0

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    async def wait_listening(self, reactor: Any) -> int:
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            match = LISTENING.search(self.log_text())
            if match:
                self.port = int(match.group(1))
                return self.port
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_text()}")
            await task.deferLater(reactor, 0.05, lambda: None)
        raise RuntimeError(f"server never logged that it listens:\n{self.log_text()}")

    def stop(self) -> int | None:
        """SIGTERM, bounded wait, then SIGKILL."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_WAIT)
        return self.process.returncode


class Run:
    """Shared state of one end-to-end run."""

    def __init__(self) -> None:
        self.sending = False
        self.window_start = self.window_end = 0.0
        self.delivered_in_window = 0
        self.latencies: list[float] = []  # for lines sent inside the window, at every recipient
        self.sent = 0
        self.echoed = 0
        self.in_flight = 0
        self.drained: Deferred[None] | None = None


class BenchClient(Protocol):
    transport: Any

    def __init__(self, run: Run, nick: str, sender_id: int | None) -> None:
        self.run = run
        self.nick = nick
        self.sender_id = sender_id
        self.own = f"{sender_id} ".encode() if sender_id is not None else None
        self.buffer = b""
        self.logged_in: Deferred[None] = Deferred()
        self.joined = f"{nick} joined lobby".encode()
        self.in_flight = 0

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)

    def dataReceived(self, data: bytes) -> None:
        now = time.perf_counter()
        lines = (self.buffer + data).split(b"\r\n")
        self.buffer = lines.pop()
        run = self.run
        for line in lines:
            at = line.find(MARK)
            if at < 0:
                self._control(line)
                continue
            sender, sent_at = line[at + len(MARK):].split(b" ", 1)
            sent = float(sent_at)
            if run.window_start <= now <= run.window_end:
                run.delivered_in_window += 1
            if run.window_start <= sent <= run.window_end:
                run.latencies.append(now - sent)
            if self.own is not None and sender + b" " == self.own:
                self.in_flight -= 1
                run.in_flight -= 1
                run.echoed += 1
                if run.sending:
                    self.send_one()
                elif run.in_flight == 0 and run.drained is not None and not run.drained.called:
                    run.drained.callback(None)

    def _control(self, line: bytes) -> None:
        if self.logged_in.called:
            return
        if b"nickname" in line:
            self.transport.write(self.nick.encode() + b"\n")
        elif self.joined in line:
            self.logged_in.callback(None)

    def send_one(self) -> None:
        self.in_flight += 1
        self.run.in_flight += 1
        self.run.sent += 1
        self.transport.write(b"BENCH %s %.6f\n" % (self.own.strip(), time.perf_counter()))  # type: ignore[union-attr]

    def start_sending(self) -> None:
        while self.in_flight < SENDER_WINDOW:
            self.send_one()


async def connect(reactor: Any, port: int, run: Run, nick: str, sender_id: int | None) -> BenchClient:
    protocol = BenchClient(run, nick, sender_id)
    connected: Deferred[None] = Deferred()

    class Factory(ClientFactory):
        def buildProtocol(self, addr: Any) -> BenchClient:
            reactor.callLater(0, lambda: None if connected.called else connected.callback(None))
            return protocol

        def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
            connected.errback(reason)

    reactor.connectTCP("127.0.0.1", port, Factory(), timeout=START_WAIT)
    await connected
    await protocol.logged_in.addTimeout(START_WAIT, reactor)
    return protocol


async def run_server(reactor: Any, args: argparse.Namespace, workdir: Path, label: str, db: str,
                     nodelay: bool) -> dict[str, Any]:
    server = Server(workdir, db, label, args.instrument, nodelay)
    clients: list[BenchClient] = []
    result: dict[str, Any] = {"server": label, "db": db, "tcp_nodelay": nodelay, "command": server.shown_command}
    try:
        port = await server.wait_listening(reactor)
        run = Run()
        for i in range(args.receivers):
            clients.append(await connect(reactor, port, run, f"r{i}", None))
        senders = [await connect(reactor, port, run, f"s{i}", i) for i in range(args.senders)]
        clients += senders
        await task.deferLater(reactor, 0.2, lambda: None)  # let the join notices settle

        run.sending = True
        start = time.perf_counter()
        run.window_start = start + args.warmup
        run.window_end = run.window_start + args.seconds
        for sender in senders:
            sender.start_sending()
        await task.deferLater(reactor, args.warmup, lambda: None)
        cpu_server0, cpu_client0 = cpu_seconds(server.process.pid), time.process_time()
        await task.deferLater(reactor, args.seconds, lambda: None)
        cpu_server1, cpu_client1 = cpu_seconds(server.process.pid), time.process_time()
        run.sending = False
        if run.in_flight:
            run.drained = Deferred()
            try:
                await run.drained.addTimeout(STOP_WAIT, reactor)
            except defer.TimeoutError:
                result["undrained"] = run.in_flight
        for client in clients:
            client.transport.loseConnection()
        result.update({
            "receivers": args.receivers, "senders": args.senders, "sender_window": SENDER_WINDOW,
            "seconds": args.seconds, "warmup_s": args.warmup,
            "lines_sent": run.sent, "lines_echoed": run.echoed,
            "delivered_lines_per_s": round(run.delivered_in_window / args.seconds),
            "messages_per_s": round(run.delivered_in_window / args.seconds / (args.receivers + args.senders)),
            "latency_p50_ms": ms(percentile(run.latencies, 50)),
            "latency_p99_ms": ms(percentile(run.latencies, 99)),
            "server_cpu_pct": (round((cpu_server1 - cpu_server0) / args.seconds * 100)
                               if cpu_server0 is not None and cpu_server1 is not None else None),
            "bench_cpu_pct": round((cpu_client1 - cpu_client0) / args.seconds * 100),
        })
    finally:
        result["exit_status"] = server.stop()
    if db != ":memory:":
        with sqlite3.connect(db) as connection:  # after the server stopped: were the echoed lines kept?
            result["rows_in_db"] = connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    if server.batches_path.exists():
        result.update(batch_stats(json.loads(server.batches_path.read_text())))
    if "Traceback" in server.log_text():
        result["server_log_has_traceback"] = True
    return result


async def level2(reactor: Any, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    results = []
    for nodelay in (False, True) if args.also_nodelay else (False,):
        for run in range(1, args.repeat + 1):
            for name in ("sqlite-file", "sqlite-memory"):  # alternated, so drift hits both alike
                label = name + ("+nodelay" if nodelay else "") + (f"#{run}" if args.repeat > 1 else "")
                db = str(tmp / f"{label}.sqlite3") if name == "sqlite-file" else ":memory:"
                result = await run_server(reactor, args, tmp, label, db, nodelay)
                print(f"  level 2 {label:24} {result.get('delivered_lines_per_s')} delivered lines/s", flush=True)
                results.append(result)
    return results


# --- Output ------------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[str(row.get(c, "")) if row.get(c) is not None else "-" for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds in all (CI smoke run)")
    parser.add_argument("--messages", type=int, help="level 1: messages per store (default 20000)")
    parser.add_argument("--in-flight", default=None,
                        help="level 1: appends in flight, comma-separated (default 1,40)")
    parser.add_argument("--seconds", type=float, help="level 2: measured seconds per server (default 5)")
    parser.add_argument("--warmup", type=float, help="level 2: unmeasured seconds first (default 0.5)")
    parser.add_argument("--receivers", type=int, default=10, help="level 2: receiving clients (default 10)")
    parser.add_argument("--senders", type=int, default=5, help="level 2: sending clients (default 5)")
    parser.add_argument("--repeat", type=int, default=1, help="level 2: runs of each server (default 1)")
    parser.add_argument("--instrument", action="store_true",
                        help="level 2: run twistd patched to count the messages in each committed group")
    parser.add_argument("--also-nodelay", action="store_true",
                        help="level 2: also run each server with TCP_NODELAY patched onto its connections")
    parser.add_argument("--level", choices=("1", "2", "both"), default="both")
    parser.add_argument("--tmpdir", help="where the databases go (default: the system temp directory)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.messages = args.messages or (2000 if quick else 20000)
    args.in_flight = [int(w) for w in (args.in_flight or ("40" if quick else "1,40")).split(",")]
    args.seconds = args.seconds if args.seconds is not None else (1.0 if quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if quick else 0.5)
    if args.messages < 1 or min(args.in_flight) < 1 or args.seconds <= 0 or args.senders < 1 or args.repeat < 1:
        parser.error("--messages, --in-flight, --seconds and --senders must be positive")
    return args


async def main(reactor: Any, argv: list[str]) -> None:
    args = parse_args(argv)
    command = shlex.join([sys.executable, *sys.argv])
    print(f"command: {command}", flush=True)
    report: dict[str, Any] = {
        "command": command,
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "sqlite": sqlite3.sqlite_version},
    }
    with tempfile.TemporaryDirectory(prefix="chat-bench-", dir=args.tmpdir) as tmpdir:
        tmp = Path(tmpdir)
        if args.level in ("1", "both"):
            report["level1"] = await level1(reactor, args, tmp)
        if args.level in ("2", "both"):
            report["level2"] = await level2(reactor, args, tmp)

    print()
    print(json.dumps(report, indent=2))
    print()
    if "level1" in report:
        print("Level 1: store alone, appends/s")
        print(table(report["level1"], ["store", "in_flight", "appends_per_s", "us_per_append",
                                       "commit_latency_p50_ms", "commit_latency_p99_ms",
                                       "transactions", "mean_batch", "batches_of_1"]))
        print()
    if "level2" in report:
        print(f"Level 2: end to end, {args.receivers} receivers + {args.senders} senders "
              f"x {SENDER_WINDOW} in flight, {args.seconds:g} s")
        print(table(report["level2"], ["server", "delivered_lines_per_s", "messages_per_s",
                                       "latency_p50_ms", "latency_p99_ms", "server_cpu_pct",
                                       "bench_cpu_pct", "transactions", "mean_batch", "batches_of_1"]))


if __name__ == "__main__":
    task.react(lambda reactor: ensureDeferred(main(reactor, sys.argv[1:])))
