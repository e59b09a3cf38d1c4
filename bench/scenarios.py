"""
One run of each scenario against one freshly started server; each returns a flat dict of figures.

- L{run_fanout}: C clients in one room, S senders with at most W lines in flight each; delivered
  lines/s in the measured window, latency p50/p99/p999/max, lost, reordered, CPU of server and
  loadgen, and the server's CPU seconds per million deliveries. With C{rooms}: the clients
  spread over that many rooms (the "many rooms" scenario: everyone talking, each in their own
  room). With C{rate}: open loop, each sender sending that many lines a second on a schedule
  (the "open loop" scenario), latency counted from the scheduled send time. A server with
  several processes (L{bench.cluster.ClusterServer}) has its clients spread over their ports,
  and the run also splits the latency between deliveries to a receiver on the sender's process
  and on another one (over the bus), and reports the CPU of the services it relies on (Redis,
  PostgreSQL) per million deliveries.
- L{run_storm}: the login storm: N connections, K at a time, each registering a nickname and
  entering the lobby, all staying; connections/s and the server's CPU per login.
- L{run_idle}: N registered idle clients; the server's RSS per connection.
- L{run_connect}: registered connections per second (connect, register, close; K at a time).
- L{run_history}: ``/history 500`` round trips with many messages stored (our server only).

Every server and load generator is started on 127.0.0.1 and stopped in a ``finally``; every wait
has a deadline. The load generator runs on C{Settings.loadgen_cpus} (``taskset -c``) when set.
What the server logged and how it exited is read by the caller, after the stop.
"""

from __future__ import annotations

import shlex
import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import LoadgenGroup, merge_histograms, percentile_ns
from bench.servers import OurServer, Server

SETTLE_LIMIT = 60.0  # longest wait for an idle server to go quiet before its RSS is read


@dataclass
class Settings:
    """How long and how hard each run goes; the CLI fills it in (``--quick`` makes it small)."""

    duration: float = 5.0  # measured seconds per fanout run
    warmup: float = 1.0  # unmeasured seconds of sending before the window
    window: int = 8  # lines in flight per sender
    drain: float = 15.0  # longest wait for the last lines after sending stops
    quiet: float = 2.0  # the drain also ends after this many seconds without a line
    login_parallel: int = 500  # connections logging in at once (fanout, idle)
    login_timeout: float = 600.0  # longest wait for all clients to log in
    loadgen_procs: int = 1  # load generator processes per run
    connect_parallel: int = 50
    history_requests: int = 200
    history_seconds: float = 60.0
    storm_parallel: int = 50  # connections being set up at once in the login storm
    loadgen_cpus: str | None = None  # taskset -c list for the load generator, None: unpinned


def _ms(ns: float | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def _at_most(value: float | None, limit: float) -> float | None:
    """A percentile read off a histogram bucket's middle, never above the exact maximum."""
    return None if value is None else min(value, limit)


def _system_cpu() -> dict[str, float]:
    """The whole machine's CPU seconds so far (/proc/stat): busy (user, system, irq, softirq), steal."""
    import os

    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    fields += [0] * (8 - len(fields))
    ticks = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return {"busy": (user + nice + system + irq + softirq) / ticks, "steal": steal / ticks}


def _sleep_until(monotonic_ns: int) -> None:
    delay = (monotonic_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


def _cpus(reports: list[dict[str, Any]]) -> list[str]:
    """The CPU lists the load generator processes said they were allowed on."""
    return sorted({str(r.get("cpus", "")) for r in reports})


def run_fanout(server: Server, executable: Path, workdir: Path, clients: int, senders: int,
               settings: Settings, rooms: int = 0, rate: float = 0.0) -> dict[str, Any]:
    """
    One fanout run: start C{server}, log C{clients} in (into C{rooms} rooms when given), send for
    warmup + duration (closed loop, or C{rate} lines/s per sender when given), drain, stop.
    """
    server.start(workdir, clients)
    group: LoadgenGroup | None = None
    try:
        common = [
            "--port", ",".join(map(str, server.ports)), "--proto", server.protocol, "--mode", "fanout",
            "--senders", str(senders), "--window", str(settings.window),
            "--parallel", str(settings.login_parallel), "--warmup", str(settings.warmup),
            "--duration", str(settings.duration), "--drain", str(settings.drain),
            "--quiet", f"{settings.quiet:g}", "--login-timeout", str(settings.login_timeout),
            "--deadline", str(settings.login_timeout + settings.warmup + settings.duration + settings.drain + 60),
        ]
        if rooms:
            common += ["--rooms", str(rooms)]
        if rate:
            common += ["--rate", f"{rate:.3f}"]
        group = LoadgenGroup(executable, common, clients, settings.loadgen_procs, workdir, settings.loadgen_cpus)
        login_s = group.wait_ready(settings.login_timeout + 10)
        rss_logged_in = server.rss_kib()
        t0 = time.monotonic_ns() + 200_000_000
        window_start = t0 + int(settings.warmup * 1e9)
        window_end = window_start + int(settings.duration * 1e9)
        group.send(f"go {t0}")
        _sleep_until(window_start)
        cpu0, sys0, each0, side0 = server.cpu_seconds(), _system_cpu(), server.cpu_seconds_each(), \
            server.side_cpu_seconds()
        _sleep_until(window_end)
        cpu1, sys1, each1, side1 = server.cpu_seconds(), _system_cpu(), server.cpu_seconds_each(), \
            server.side_cpu_seconds()
        reports = group.results(settings.drain + 30)
    finally:
        if group is not None:
            group.stop()
        exit_status = server.stop()

    sent = sum(r["sent"] for r in reports)
    received = sum(r["received"] for r in reports)
    expected = sum(r.get("expected", r["sent"] * clients) for r in reports)
    delivered = sum(r["window_delivered"] for r in reports)
    histogram = merge_histograms(reports, "latency_hist")
    sub_bits = reports[0]["hist_sub_bits"]
    duration = settings.duration
    server_cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    loadgen_cpu = sum(r["cpu_window_s"] for r in reports)
    machine = {kind: sys1[kind] - sys0[kind] for kind in sys0}
    latency_max = max(r["latency_max_ns"] for r in reports)

    def pct(p: float, hist: dict[int, int] = histogram, limit: float = latency_max) -> float | None:
        return _ms(_at_most(percentile_ns(hist, p, sub_bits), limit))

    same, cross = merge_histograms(reports, "latency_hist_same"), merge_histograms(reports, "latency_hist_cross")
    same_max = max(r["latency_max_same_ns"] for r in reports)
    cross_max = max(r["latency_max_cross_ns"] for r in reports)
    delivered_cross = sum(r["window_delivered_cross"] for r in reports)
    each = [None if a is None or b is None else b - a for a, b in zip(each0, each1)]
    side: dict[str, float | None] = {}
    for name, before in side0.items():
        after = side1.get(name)
        side[name] = after - before if before is not None and after is not None else None

    def per_m(seconds: float | None) -> float | None:
        return round(seconds / delivered * 1e6, 3) if seconds is not None and delivered else None

    def pct_of(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds / duration * 100, 1)

    clients_per_port = [sum(column) for column in zip(*(r["clients_per_port"] for r in reports))]
    split = {
        "ports": len(server.ports),
        "clients_per_port": clients_per_port,
        # Deliveries to a receiver on the sender's process, and on another one (the line crossed the bus).
        "same_p50_ms": pct(50, same, same_max), "same_p99_ms": pct(99, same, same_max),
        "cross_p50_ms": pct(50, cross, cross_max), "cross_p99_ms": pct(99, cross, cross_max),
        "same_max_ms": _ms(same_max) if same else None, "cross_max_ms": _ms(cross_max) if cross else None,
        "cross_share": round(delivered_cross / delivered, 3) if delivered else None,
        "server_cpu_pct_each": [pct_of(value) for value in each],
        "server_cpu_pct_least": min((v for v in (pct_of(x) for x in each) if v is not None), default=None),
    }
    if side:
        extra = sum(v for v in side.values() if v is not None)
        split.update({
            "redis_cpu_pct": pct_of(side.get("redis")), "postgres_cpu_pct": pct_of(side.get("postgres")),
            "redis_cpu_s_per_m": per_m(side.get("redis")), "postgres_cpu_s_per_m": per_m(side.get("postgres")),
            # Servers, Redis and PostgreSQL's backends together, per million deliveries.
            "total_cpu_s_per_m": per_m((server_cpu or 0) + extra) if server_cpu is not None else None,
        })

    return {
        "delivered_per_s": round(delivered / duration),
        "messages_per_s": round(sum(r["window_sent"] for r in reports) / duration),
        "offered_per_s": round(rate * senders) if rate else None,
        "rooms": rooms or 1,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "p999_ms": pct(99.9),
        "max_ms": _ms(latency_max),
        "lost": expected - received,
        "reordered": sum(r["reordered"] + r["duplicates"] for r in reports),
        "gaps": sum(r["gaps"] for r in reports),
        "misrouted": sum(r.get("misrouted", 0) for r in reports),
        "malformed": sum(r["malformed"] for r in reports),
        "sent": sent,
        "expected": expected,
        "received": received,
        "disconnected": sum(r["disconnected"] for r in reports),
        "error_lines": sum(r["error_lines"] for r in reports),
        "first_error": next((r["first_error"] for r in reports if r["first_error"]), None),
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
        "server_cpu_pct": None if server_cpu is None else round(server_cpu / duration * 100, 1),
        # The figure that holds on any machine size: the server's CPU time per million deliveries.
        "cpu_s_per_m": round(server_cpu / delivered * 1e6, 3) if server_cpu is not None and delivered else None,
        "loadgen_cpu_pct": round(loadgen_cpu / duration * 100, 1),
        # The machine's busy time (all cores: 200 % = both busy) and what is left of it once the
        # server and the loadgen (and, for a cluster, Redis and its database's PostgreSQL backends)
        # are taken out: loopback TCP work the kernel did in softirq (charged to no process) and
        # every other program on the machine.
        "machine_busy_pct": round(machine["busy"] / duration * 100, 1),
        "rest_cpu_pct": round(max(0.0, machine["busy"] - (server_cpu or 0) - loadgen_cpu
                                  - sum(v for v in side.values() if v is not None)) / duration * 100, 1),
        "steal_pct": round(machine["steal"] / duration * 100, 1),
        "login_s": round(login_s, 3),
        "server_rss_kib": rss_logged_in,
        "drain_s": round(max(r["drain_s"] for r in reports), 3),
        # The longest time without a line reaching any client (of one load generator process), from
        # the first line received to the end of the drain: a stall of the server shows here.
        "longest_silence_ms": _ms(max(r["longest_silence_ns"] for r in reports)),
        # How the drain ended: "complete" (every line arrived), "quiet" (--drain-quiet seconds, 2 by
        # default, without a line) or "limit" (the drain's longest wait); lines still missing then
        # count as lost.
        "drain_end": sorted({r.get("drain_end", "") for r in reports}),
        "server_exit": exit_status,
        "loadgen_cpus": _cpus(reports),
        "loadgen_command": shlex.join(group.command) if group else None,
        **split,
    }


def run_storm(server: Server, executable: Path, workdir: Path, connections: int,
              settings: Settings) -> dict[str, Any]:
    """
    The login storm: open C{connections} connections, C{storm_parallel} being set up at a time,
    each registering a nickname and entering the lobby, and all staying connected; connections/s
    from the first connect to the last arrival, the connect-to-in-the-lobby time, and the server's
    CPU per login (each arrival is announced to everyone already there).
    """
    server.start(workdir, connections)
    group: LoadgenGroup | None = None
    try:
        rss_before = server.rss_kib()
        cpu0 = server.cpu_seconds()
        common = [
            "--port", str(server.port), "--proto", server.protocol, "--mode", "storm",
            "--parallel", str(settings.storm_parallel), "--prefix", "s",
            "--login-timeout", str(settings.login_timeout), "--deadline", str(settings.login_timeout + 30),
        ]
        if server.protocol in ("irc", "ws"):  # the line door puts everyone in the lobby; threaded has one room
            common += ["--room", "lobby"]
        group = LoadgenGroup(executable, common, connections, 1, workdir, settings.loadgen_cpus)
        report = group.results(settings.login_timeout + 40)[0]
        cpu1 = server.cpu_seconds()
        rss_after = server.rss_kib()
    finally:
        if group is not None:
            group.stop()
        exit_status = server.stop()
    elapsed = (report["last_ready_ns"] - report["first_connect_ns"]) / 1e9
    histogram = merge_histograms([report], "connect_hist")
    server_cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    return {
        "conn_per_s": round(report["ready"] / elapsed) if elapsed > 0 else None,
        "registered": report["ready"],
        "failed": report["failed"],
        "disconnected": report["disconnected"],
        "seconds": round(elapsed, 3),
        "p50_ms": _ms(_at_most(percentile_ns(histogram, 50, report["hist_sub_bits"]), report["connect_max_ns"])),
        "p99_ms": _ms(_at_most(percentile_ns(histogram, 99, report["hist_sub_bits"]), report["connect_max_ns"])),
        "max_ms": _ms(report["connect_max_ns"]),
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 3),
        "server_cpu_ms_per_login": (round(server_cpu / report["ready"] * 1000, 3)
                                    if server_cpu is not None and report["ready"] else None),
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "loadgen_cpu_s": round(report["cpu_total_s"], 3),
        "error_lines": report["error_lines"],
        "first_error": report["first_error"] or None,
        "server_exit": exit_status,
        "loadgen_cpus": _cpus([report]),
        "loadgen_command": shlex.join(group.command) if group else None,
    }


def _settle(server: Server) -> float:
    """Wait (bounded) until the server uses less than 2 % of a core; return the seconds waited."""
    start = time.monotonic()
    previous = server.cpu_seconds() or 0.0
    while time.monotonic() - start < SETTLE_LIMIT:
        time.sleep(0.5)
        now = server.cpu_seconds() or 0.0
        if now - previous < 0.01:
            break
        previous = now
    return time.monotonic() - start


def run_idle(server: Server, executable: Path, workdir: Path, clients: int, settings: Settings) -> dict[str, Any]:
    """Log C{clients} in, let the server go quiet, and read its RSS: (after - before) / clients."""
    server.start(workdir, clients)
    group: LoadgenGroup | None = None
    try:
        time.sleep(0.5)
        rss_before = server.rss_kib()
        common = [
            "--port", str(server.port), "--proto", server.protocol, "--mode", "idle",
            "--parallel", str(settings.login_parallel), "--login-timeout", str(settings.login_timeout),
            "--deadline", str(settings.login_timeout + SETTLE_LIMIT + 120),
        ]
        group = LoadgenGroup(executable, common, clients, settings.loadgen_procs, workdir, settings.loadgen_cpus)
        login_s = group.wait_ready(settings.login_timeout + 10)
        settle_s = _settle(server)
        rss_after = server.rss_kib()
        peak = server.status_kib("VmHWM")
        group.send("quit")
        reports = group.results(30)
    finally:
        if group is not None:
            group.stop()
        exit_status = server.stop()
    per_conn = None
    if rss_before is not None and rss_after is not None:
        per_conn = round((rss_after - rss_before) / clients, 2)
    return {
        "rss_per_conn_kib": per_conn,
        "rss_before_kib": rss_before,
        "rss_after_kib": rss_after,
        "rss_peak_kib": peak,
        "login_s": round(login_s, 3),
        "settle_s": round(settle_s, 2),
        "still_connected": clients - sum(r["disconnected"] for r in reports),
        "disconnected": sum(r["disconnected"] for r in reports),
        "error_lines": sum(r["error_lines"] for r in reports),
        "first_error": next((r["first_error"] for r in reports if r["first_error"]), None),
        "server_exit": exit_status,
        "loadgen_cpus": _cpus(reports),
        "loadgen_command": shlex.join(group.command) if group else None,
    }


def run_connect(server: Server, executable: Path, workdir: Path, connections: int,
                settings: Settings) -> dict[str, Any]:
    """Open C{connections} connections, C{connect_parallel} at a time, each closed once registered."""
    server.start(workdir, settings.connect_parallel)
    group: LoadgenGroup | None = None
    try:
        common = [
            "--port", str(server.port), "--proto", server.protocol, "--mode", "connect",
            "--parallel", str(settings.connect_parallel), "--prefix", "k",
            "--login-timeout", str(settings.login_timeout), "--deadline", str(settings.login_timeout + 30),
        ]
        group = LoadgenGroup(executable, common, connections, 1, workdir, settings.loadgen_cpus)
        report = group.results(settings.login_timeout + 40)[0]
    finally:
        if group is not None:
            group.stop()
        exit_status = server.stop()
    elapsed = (report["last_ready_ns"] - report["first_connect_ns"]) / 1e9
    histogram = merge_histograms([report], "connect_hist")
    return {
        "conn_per_s": round(report["ready"] / elapsed) if elapsed > 0 else None,
        "registered": report["ready"],
        "failed": report["failed"],
        "seconds": round(elapsed, 3),
        "p50_ms": _ms(_at_most(percentile_ns(histogram, 50, report["hist_sub_bits"]), report["connect_max_ns"])),
        "p99_ms": _ms(_at_most(percentile_ns(histogram, 99, report["hist_sub_bits"]), report["connect_max_ns"])),
        "max_ms": _ms(report["connect_max_ns"]),
        "loadgen_cpu_s": round(report["cpu_total_s"], 3),
        "first_error": report["first_error"] or None,
        "server_exit": exit_status,
        "loadgen_cpus": _cpus([report]),
        "loadgen_command": shlex.join(group.command) if group else None,
    }


# --- history (our server only) ----------------------------------------------------------------


def fill_history(db: Path, messages: int) -> float:
    """Insert C{messages} rows into the C{messages} table of a database our server created; seconds."""
    start = time.monotonic()
    base = time.time() - messages / 100  # 100 messages a second, ending now
    rows = (
        ("lobby", "lobby", "say", f"h{i % 97}", f"history filler {i:09d} " + "x" * 32, base + i / 100)
        for i in range(messages)
    )
    with sqlite3.connect(db) as connection:
        connection.executemany(
            "INSERT INTO messages (room_key, room, kind, sender, body, sent_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
    return time.monotonic() - start


class _LineClient:
    """A blocking socket client with a deadline on every read (history scenario)."""

    def __init__(self, port: int, timeout: float) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.received = 0

    def read_line(self, deadline: float) -> bytes:
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no complete line before the deadline")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.received += len(chunk)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r")

    def wait_for(self, wanted: bytes, deadline: float) -> None:
        while self.read_line(deadline) != wanted:
            pass

    def close(self) -> None:
        self.sock.close()


def run_history(workdir: Path, messages: int, settings: Settings, cpus: str | None = None) -> dict[str, Any]:
    """
    Create the schema by starting our server once on an empty database, stop it, insert
    C{messages} rows with sqlite3, start it again on that database (on C{cpus} when given) and
    time ``/history 500`` round trips (until all 500 history lines of the answer have arrived).
    The client is the bench's own process. Both servers' logs and exits are reported.
    """
    db = workdir / "history.sqlite3"
    (workdir / "create").mkdir()
    first = OurServer(cpus, db_path=db)
    try:
        first.start(workdir / "create", 1)
    finally:
        first.stop()
    if first.exit_problem() or first.log_problems():
        raise RuntimeError(f"the server that created the schema: {first.exit_problem() or first.log_problems()[0]}")
    fill_s = fill_history(db, messages)
    server = OurServer(cpus, db_path=db)
    (workdir / "serve").mkdir()
    started = time.monotonic()
    server.start(workdir / "serve", 1)
    start_s = time.monotonic() - started
    latencies: list[float] = []
    bytes_per_answer = 0
    try:
        client = _LineClient(server.port, 30)
        try:
            deadline = time.monotonic() + 30
            client.sock.sendall(b"historian\r\n")
            client.wait_for(b"* historian joined lobby", deadline)
            header = f"* last {min(500, messages)} messages in lobby:".encode()
            want = min(500, messages)
            stop_at = time.monotonic() + settings.history_seconds
            for _ in range(settings.history_requests + 1):
                if time.monotonic() > stop_at:
                    break
                before = client.received
                t = time.perf_counter()
                client.sock.sendall(b"/history 500\r\n")
                deadline = time.monotonic() + 30
                client.wait_for(header, deadline)
                got = 0
                while got < want:
                    if client.read_line(deadline).startswith(b"[history "):
                        got += 1
                latencies.append(time.perf_counter() - t)
                bytes_per_answer = client.received - before
        finally:
            client.close()
    finally:
        exit_status = server.stop()
    cold, warm = latencies[0], sorted(latencies[1:]) or latencies[:1]

    def pick(p: float) -> float:
        return round(warm[min(len(warm) - 1, max(0, int(p / 100 * len(warm) + 0.999999) - 1))] * 1000, 3)

    return {
        "messages": messages,
        "db_mib": round(db.stat().st_size / 2**20, 1),
        "fill_s": round(fill_s, 2),
        "server_start_s": round(start_s, 2),
        "requests": len(warm),
        "first_ms": round(cold * 1000, 3),
        "p50_ms": pick(50),
        "p99_ms": pick(99),
        "max_ms": round(warm[-1] * 1000, 3),
        "mean_ms": round(sum(warm) / len(warm) * 1000, 3),
        "answer_bytes": bytes_per_answer,
        "server_log_errors": server.log_errors(),
        "server_log_first": next(iter(server.log_problems()), None),
        "server_exit": exit_status,
        "server_exit_problem": server.exit_problem(),
        "server_threads_cpus": server.threads_cpus,
        "server_command": server.shown_command(),
    }
