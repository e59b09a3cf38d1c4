"""
``python -m bench``: the benchmark's one command.

    python -m bench run [--quick] [--scenario fanout,sweep,rooms,storm,openloop,idle,connect,history,cluster]
                        [--servers ours,ours-irc,ours-ws,threaded,inspircd] [--rounds 3] [--output FILE]
                        [--server-cpus 0] [--loadgen-cpus 1] [--no-pin] [--plot PNG]
                        [--cluster 1000x20] [--cluster-cpus 0/1] [--cluster-loadgen-cpus LIST]
    python -m bench plot RESULTS.json [--output docs/fanout.png]
    python -m bench tables RESULTS.json       (Markdown tables, as in docs/performance.md)
    python -m bench commit-cost [ARGS...]     (bench/commit_cost.py: what committing costs)

``run`` prints one JSON report on standard output (progress goes to standard error). The server
runs pinned to its CPUs and the load generator to others (``taskset -c``; unpinned, and marked
so, when that is impossible). For every scenario point it runs each server in turn, round after
round, the order rotated by one each round (A B C, B C A, C A B, ...), each run on a freshly
started server; a run with anything lost, reordered or disconnected, an error line to a client or
in the server's log, or a server that exited badly is marked failed with its reasons and left
out of the figures. The report gives every run, per server the median of each figure with its
spread (min–max), the ratios ours/peer taken round by round (and ours-irc/peer or ours-ws/peer
when our IRC or WebSocket door ran), the commit (``-dirty`` when the tree was), the exact command,
the host and every server's command line and configuration. It exits with status 1 when any run
failed. docs/performance.md explains the scenarios and the figures.

The ``cluster`` scenario compares setups of our server instead of servers (``--servers`` does
not apply): one plain process (SQLite, in-process bus), one process on PostgreSQL + Redis, and
two processes on one PostgreSQL database and one Redis, the clients spread over both (see
bench/cluster.py); each process on its own CPUs and the load generator unpinned
(``--cluster-cpus``, ``--cluster-loadgen-cpus``). It is skipped, and the report says why, when
PostgreSQL or Redis cannot be reached (an error when ``--scenario`` names it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cluster, loadgen, scenarios
from bench.pinning import ClusterPinning, Pinning, cluster_plan, parse_cpus, pinning_problem, plan
from bench.provenance import changed, command_line, commit, host
from bench.scenarios import Settings
from bench.servers import OURS, SERVERS, InspircdServer, OurServer, Server, ThreadedServer, available
from bench.summary import cluster_targets, failures, limit, one_line, rotation, summarise

SCENARIOS = ("fanout", "sweep", "rooms", "storm", "openloop", "idle", "connect", "history", "cluster")
FANOUT_METRICS = ("delivered_per_s", "messages_per_s", "p50_ms", "p99_ms", "p999_ms", "max_ms", "lost", "reordered",
                  "server_cpu_pct", "cpu_s_per_m", "loadgen_cpu_pct", "machine_busy_pct", "rest_cpu_pct",
                  "steal_pct", "login_s")
OPENLOOP_METRICS = ("offered_per_s", *FANOUT_METRICS)
CLUSTER_METRICS = (*FANOUT_METRICS, "same_p50_ms", "same_p99_ms", "cross_p50_ms", "cross_p99_ms", "cross_share",
                   "server_cpu_pct_least", "redis_cpu_pct", "postgres_cpu_pct", "redis_cpu_s_per_m",
                   "postgres_cpu_s_per_m", "total_cpu_s_per_m")
STORM_METRICS = ("conn_per_s", "p50_ms", "p99_ms", "max_ms", "server_cpu_ms_per_login", "rss_after_kib")
IDLE_METRICS = ("rss_per_conn_kib", "rss_before_kib", "rss_after_kib", "login_s")
CONNECT_METRICS = ("conn_per_s", "p50_ms", "p99_ms", "max_ms")


def log(text: str) -> None:
    """Progress, on standard error."""
    print(text, file=sys.stderr, flush=True)


def raise_fd_limit() -> tuple[int, int]:
    """Raise our RLIMIT_NOFILE soft limit to the hard limit (servers and loadgen inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def parse_points(text: str) -> list[tuple[int, int]]:
    """``100x10,1000x20`` -> [(100, 10), (1000, 20)] (clients x senders, or clients x rooms)."""
    points = []
    for part in filter(None, text.split(",")):
        clients, _, senders = part.partition("x")
        points.append((int(clients), int(senders)))
    return points


def parse_ints(text: str) -> list[int]:
    """``10,100`` -> [10, 100]."""
    return [int(part) for part in text.split(",") if part]


def fanout_text(r: dict[str, Any]) -> str:
    """One fanout, many-rooms or open-loop run on one line of progress."""
    offered = f"offered {r['offered_per_s']}/s  " if r.get("offered_per_s") else ""
    return (f"{offered}{r['delivered_per_s'] / 1e6:6.3f} M lines/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
            f"p999 {r['p999_ms']} ms  lost {r['lost']} reordered {r['reordered']}  cpu server {r['server_cpu_pct']}% "
            f"({r['cpu_s_per_m']} s/M deliveries) loadgen {r['loadgen_cpu_pct']}% machine {r['machine_busy_pct']}% "
            f"(rest {r['rest_cpu_pct']}%) steal {r['steal_pct']}%")


class Runner:
    """
    Runs the scenario points, server after server, round after round (the order rotated each
    round), in one temp directory; owns the pinning, the list of failed runs, the first command
    line and configuration seen of every server, and the closed-loop saturation of each fanout
    point (for the open loop).
    """

    def __init__(self, args: argparse.Namespace, settings: Settings, servers: list[str], tmp: Path,
                 pinning: Pinning, executable: Path | None = None, cluster_pinning: ClusterPinning | None = None,
                 own_cpus: frozenset[int] | None = None) -> None:
        self.args = args
        self.settings = settings
        self.servers = servers
        self.tmp = tmp
        self.pinning = pinning
        self.executable = executable or loadgen.build()
        self.counter = 0
        self.failed: list[dict[str, Any]] = []
        self.server_config: dict[str, dict[str, Any]] = {}
        self.closed_loop: dict[tuple[int, int], dict[str, float | None]] = {}
        self.cluster_pinning = cluster_pinning
        self.own_cpus = own_cpus  # the CPUs the bench was given (an unpinned load generator may use them all)

    def workdir(self, label: str) -> Path:
        """A fresh directory for one run (fresh database, logs, configs)."""
        self.counter += 1
        path = self.tmp / f"{self.counter:03d}-{label}"
        path.mkdir()
        return path

    def judge(self, server: Server, result: dict[str, Any]) -> dict[str, Any]:
        """What the stopped C{server} left behind (command, exit, log errors, threads' CPUs), and the verdict."""
        problems = server.log_problems()
        facts: dict[str, Any] = {
            "server_command": server.shown_command() if server.command else None,
            "server_exit": server.exit_status(),
            "server_exit_problem": server.exit_problem(),
            "server_stop_s": server.stop_s,
            "server_log_errors": len(problems),
            "server_log_first": problems[0][:300] if problems else None,
            "server_threads_cpus": server.threads_cpus,
            "pinned": server.pinned(self.pinning),
            "pinning_problem": server.pinning_problem(self.pinning, result.get("loadgen_cpus", [])),
            **server.facts(),
        }
        why = failures({**result, **facts})
        return {**facts, "ok": not why, "why_failed": why}

    def compare(self, scenario: str, label: str, metrics: Sequence[str], rounds: int,
                one: Callable[[Server, Path], dict[str, Any]], show: Callable[[dict[str, Any]], str],
                make: Callable[[str], Server] | None = None, names: Sequence[str] | None = None,
                references: Sequence[str] = OURS) -> dict[str, Any]:
        """
        Run C{one} for every server that can take part, in every round, the order rotated each
        round; return the runs, the orders, the servers that cannot take part (and why), the summary
        (its ratios C{reference}/peer for each of C{references} that ran). By default the servers
        are the runner's, each made by its class in L{SERVERS} on the server CPUs; C{names} and
        C{make} give other ones (the cluster comparison's setups).
        """
        if make is None:
            candidates = list(self.servers)
            not_run = {name: SERVERS[name].cannot(scenario) for name in candidates if SERVERS[name].cannot(scenario)}
            servers = [name for name in candidates if name not in not_run]

            def make(name: str) -> Server:
                return SERVERS[name](self.pinning.server)
        else:
            servers, not_run = list(names or []), {}
        for name, why in not_run.items():
            log(f"[{scenario} {label}] {name} cannot take part: {why}")
        runs: list[dict[str, Any]] = []
        orders: list[list[str]] = []
        for round_index in range(rounds):
            order = rotation(servers, round_index)
            orders.append(order)
            for position, name in enumerate(order, start=1):
                server = make(name)
                started = time.monotonic()
                workdir = self.workdir(f"{scenario}-{name}")
                try:
                    result = one(server, workdir)
                except Exception as error:  # noqa: BLE001  # a failed run is reported, and the others go on
                    result = {"error": f"{type(error).__name__}: {error}"[:2000]}
                finally:
                    server.stop()
                run = {"server": name, "round": round_index + 1, "position": position, **result,
                       **self.judge(server, result), "run_s": round(time.monotonic() - started, 1)}
                runs.append(run)
                if name not in self.server_config and server.command:
                    self.server_config[name] = {"command": server.shown_command(), "config": server.config_text}
                text = "" if "error" in result else show(result)
                if not run["ok"]:
                    self.failed.append({"scenario": scenario, "point": label, "server": name,
                                        "round": round_index + 1, "why": run["why_failed"]})
                    text = f"FAILED: {'; '.join(map(one_line, run['why_failed']))}  {text}"
                unpinned = "" if server.pinned(self.pinning) else " UNPINNED"
                log(f"[{scenario} {label}{unpinned}] round {round_index + 1}/{rounds} {name:9} {text} "
                    f"({run['run_s']:.1f} s)")
                if not self.args.keep_tmp:
                    shutil.rmtree(workdir, ignore_errors=True)
        return {"orders": orders, "not_run": not_run, "runs": runs,
                "summary": summarise(runs, servers, metrics, references)}

    def fanout_point(self, scenario: str, clients: int, senders: int) -> dict[str, Any]:
        """One fanout point (C, S) across all servers and rounds; remembers each server's saturation."""
        def one(server: Server, workdir: Path) -> dict[str, Any]:
            return scenarios.run_fanout(server, self.executable, workdir, clients, senders, self.settings)

        result = self.compare(scenario, f"C={clients} S={senders}", FANOUT_METRICS, self.args.rounds, one, fanout_text)
        medians = result["summary"]["median"]
        self.closed_loop[(clients, senders)] = {name: medians[name]["messages_per_s"] for name in medians}
        return {"clients": clients, "senders": senders, "window": self.settings.window, **result}

    def rooms_point(self, clients: int, rooms: int) -> dict[str, Any]:
        """Many rooms: C clients in R rooms, every client a sender in its own room."""
        def one(server: Server, workdir: Path) -> dict[str, Any]:
            return scenarios.run_fanout(server, self.executable, workdir, clients, clients, self.settings, rooms=rooms)

        result = self.compare("rooms", f"C={clients} in {rooms} rooms", FANOUT_METRICS, self.args.rounds, one,
                              fanout_text)
        return {"clients": clients, "rooms": rooms, "senders": clients, "window": self.settings.window, **result}

    def openloop_point(self, clients: int, senders: int) -> dict[str, Any]:
        """
        Open loop at (C, S): each server is sent a fixed rate, C{--open-loop-fraction} of its own
        closed-loop saturation at that point (the median of the fanout runs there, measured first
        if the fanout scenario did not run that point), or C{--open-loop-rate} for every server.
        """
        calibration = None
        if (clients, senders) not in self.closed_loop and self.args.open_loop_rate is None:
            calibration = self.fanout_point("openloop-saturation", clients, senders)
        saturation = self.closed_loop.get((clients, senders), {})
        fraction = self.args.open_loop_fraction
        offered: dict[str, float | None] = {}
        for name in self.servers:
            if self.args.open_loop_rate is not None:
                offered[name] = float(self.args.open_loop_rate)
            else:
                measured = saturation.get(name)
                offered[name] = round(fraction * measured, 1) if measured else None

        def one(server: Server, workdir: Path) -> dict[str, Any]:
            total = offered.get(server.name)
            if not total:
                raise RuntimeError("no closed-loop saturation to take a fraction of (its closed-loop runs failed)")
            return scenarios.run_fanout(server, self.executable, workdir, clients, senders, self.settings,
                                        rate=total / senders)

        result = self.compare("openloop", f"C={clients} S={senders}", OPENLOOP_METRICS, self.args.rounds, one,
                              fanout_text)
        if self.args.open_loop_rate is not None:
            source = "--open-loop-rate"
        else:
            source = "its own runs (openloop-saturation)" if calibration else "the fanout scenario"
        return {"clients": clients, "senders": senders,
                "fraction": None if self.args.open_loop_rate is not None else fraction,
                "saturation_messages_per_s": saturation, "offered_messages_per_s": offered,
                "saturation_from": source, "saturation_runs": calibration, **result}

    def storm_point(self, connections: int) -> dict[str, Any]:
        """The login storm across all servers and rounds."""
        def one(server: Server, workdir: Path) -> dict[str, Any]:
            return scenarios.run_storm(server, self.executable, workdir, connections, self.settings)

        def show(r: dict[str, Any]) -> str:
            return (f"{r['conn_per_s']} logins/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
                    f"server {r['server_cpu_ms_per_login']} ms CPU per login  failed {r['failed']}")

        result = self.compare("storm", f"{connections} by {self.settings.storm_parallel}", STORM_METRICS,
                              self.args.rounds, one, show)
        return {"connections": connections, "parallel": self.settings.storm_parallel, **result}

    def idle_point(self, clients: int) -> dict[str, Any]:
        """Idle RSS at N clients across all servers and rounds."""
        def one(server: Server, workdir: Path) -> dict[str, Any]:
            return scenarios.run_idle(server, self.executable, workdir, clients, self.settings)

        def show(r: dict[str, Any]) -> str:
            return (f"{r['rss_per_conn_kib']} KiB/conn (RSS {r['rss_before_kib']} -> {r['rss_after_kib']} KiB, "
                    f"login {r['login_s']} s, still connected {r['still_connected']})")

        result = self.compare("idle", f"N={clients}", IDLE_METRICS, self.args.idle_rounds, one, show)
        return {"clients": clients, **result}

    def connect_point(self, connections: int) -> dict[str, Any]:
        """Connection rate across all servers and rounds."""
        def one(server: Server, workdir: Path) -> dict[str, Any]:
            return scenarios.run_connect(server, self.executable, workdir, connections, self.settings)

        def show(r: dict[str, Any]) -> str:
            return f"{r['conn_per_s']} conn/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  failed {r['failed']}"

        result = self.compare("connect", f"{connections} by {self.settings.connect_parallel}", CONNECT_METRICS,
                              self.args.rounds, one, show)
        return {"connections": connections, "parallel": self.settings.connect_parallel, **result}

    def cluster_point(self, clients: int, senders: int) -> dict[str, Any]:
        """
        The cluster comparison at (C, S): one plain process, one process on PostgreSQL + Redis,
        and two processes on one database and one Redis with the clients alternating between
        them, round after round in rotating order; each process on its own CPUs, the load
        generator (and the bench's own process) where the cluster placement says, by default
        unpinned, on every CPU the bench was given. Closed loop, or with C{--cluster-rate} an
        open loop at that many lines/s in all (every setup the same rate: latency without the
        queueing of a saturated server, so that what the bus hop adds shows). Adds the targets
        (L{cluster_targets}) and, per run, what held it back (L{limit}).
        """
        placement = self.cluster_pinning
        assert placement is not None
        names = [name for name, _, _ in cluster.setups()]
        shapes = {name: (processes, shared) for name, processes, shared in cluster.setups()}
        settings = replace(self.settings, loadgen_cpus=placement.loadgen)

        def make(name: str) -> cluster.ClusterServer:
            processes, shared = shapes[name]
            return cluster.ClusterServer(name, processes, shared, placement, self.args.cluster_postgres,
                                         self.args.cluster_redis)

        rate = self.args.cluster_rate

        def one(server: Server, workdir: Path) -> dict[str, Any]:
            result = scenarios.run_fanout(server, self.executable, workdir, clients, senders, settings,
                                          rate=rate / senders if rate else 0.0)
            result["limit"] = limit(result, len(placement.usable))
            return result

        def show(r: dict[str, Any]) -> str:
            each = "+".join(f"{v}%" for v in r.get("server_cpu_pct_each") or [])
            cross = (f"  cross-process p50 {r['cross_p50_ms']} p99 {r['cross_p99_ms']} ms, same-process p99 "
                     f"{r['same_p99_ms']} ms" if r.get("cross_p99_ms") is not None else "")
            side = (f"  redis {r['redis_cpu_pct']}% postgres {r['postgres_cpu_pct']}% (all: {r['total_cpu_s_per_m']} "
                    f"s/M)" if "redis_cpu_pct" in r else "")
            return f"{fanout_text(r)}  servers {each}{cross}{side}  limit: {r['limit']}"

        # The bench's own process (it mostly sleeps) goes where the load generator may run: with
        # an unpinned load generator, everywhere (which it inherits from us).
        previous = os.sched_getaffinity(0)
        where = parse_cpus(placement.loadgen) if placement.loadgen else (self.own_cpus or previous)
        os.sched_setaffinity(0, where)
        try:
            label = f"C={clients} S={senders}" + (f" at {rate:g}/s" if rate else "")
            result = self.compare("cluster", label, CLUSTER_METRICS, self.args.rounds, one,
                                  show, make=make, names=names, references=("cluster-2", "cluster-1"))
        finally:
            os.sched_setaffinity(0, previous)
        targets = cluster_targets(result["runs"], len(placement.usable), open_loop=bool(rate))
        log(f"[cluster {label}] two/one processes {targets['two_over_one_delivered']['median']} "
            f"(where the servers were the limit: {targets['two_over_one_delivered_servers_limit']['median']}); "
            f"cross-process p99 / one process's p99 {targets['cross_p99_over_one_p99']['median']}; "
            f"lost {targets['lost']} reordered {targets['reordered_or_gaps']}")
        return {"clients": clients, "senders": senders, "window": self.settings.window, "offered_per_s": rate,
                "setups": {name: make(name).describe_setup() for name in names},
                "pinning": placement.as_dict(), "targets": targets, **result}

    def history(self, messages: int) -> dict[str, Any]:
        """/history 500 latency on our server with C{messages} stored (one run, judged like the others)."""
        workdir = self.workdir("history")
        started = time.monotonic()
        try:
            result = scenarios.run_history(workdir, messages, self.settings, self.pinning.server)
            result["pinning_problem"] = pinning_problem(self.pinning, result["server_threads_cpus"], [])
            result["pinned"] = self.pinning.pinned
        except Exception as error:  # noqa: BLE001  # reported in the JSON
            result = {"error": f"{type(error).__name__}: {error}"[:2000]}
        finally:
            if not self.args.keep_tmp:
                shutil.rmtree(workdir, ignore_errors=True)
        why = failures(result)
        result["ok"], result["why_failed"] = not why, why
        if why:
            self.failed.append({"scenario": "history", "point": f"{messages} messages", "server": "ours",
                                "round": 1, "why": why})
            log(f"[history] FAILED: {'; '.join(map(one_line, why))}")
        else:
            log(f"[history {messages} messages] p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
                f"first {result['first_ms']} ms ({time.monotonic() - started:.1f} s)")
        return result


def settings_from(args: argparse.Namespace, pinning: Pinning | None = None) -> Settings:
    """The per-run settings from the command line."""
    settings = Settings()
    if args.quick:
        settings.duration, settings.warmup, settings.drain = 1.0, 0.2, 5.0
        settings.login_timeout, settings.history_requests = 30.0, 20
    if args.duration is not None:
        settings.duration = args.duration
    if args.warmup is not None:
        settings.warmup = args.warmup
    settings.window = args.window
    settings.quiet = args.drain_quiet
    settings.loadgen_procs = args.loadgen_procs
    settings.connect_parallel = args.connect_parallel
    settings.storm_parallel = args.storm_parallel if args.storm_parallel is not None else (10 if args.quick else 50)
    settings.loadgen_cpus = pinning.loadgen if pinning is not None else None
    return settings


def choose_servers(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The servers to run (--servers, or every installed one) and those skipped, with why."""
    if args.servers:
        servers = [s.strip() for s in args.servers.split(",") if s.strip()]
        for name in servers:
            reason = available(name)
            if reason:
                raise SystemExit(f"--servers {name}: {reason}")
        return servers, {}
    servers, skipped = [], {}
    for name in SERVERS:
        reason = available(name)
        if reason:
            skipped[name] = reason
        else:
            servers.append(name)
    return servers, skipped


def choose_pinning(args: argparse.Namespace) -> Pinning:
    """The pinning the options ask for, or unpinned with the reason; exits on impossible CPU lists."""
    try:
        return plan(args.server_cpus, args.loadgen_cpus, wanted=not args.no_pin)
    except ValueError as error:
        raise SystemExit(f"--server-cpus/--loadgen-cpus: {error}") from None


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    """Run the chosen scenarios and return the report (its C{failed_runs} lists every failed run)."""
    quick = args.quick
    chosen = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))} (known: {', '.join(SCENARIOS)})")
    servers, skipped = choose_servers(args)
    pinning = choose_pinning(args)
    settings = settings_from(args, pinning)
    fanout_points = parse_points(args.fanout if args.fanout is not None else ("10x2" if quick else "100x10,1000x20"))
    sweep = parse_ints(args.sweep if args.sweep is not None else ("" if quick else "10,100,1000,5000"))
    rooms_points = parse_points(args.rooms if args.rooms is not None else ("40x4" if quick else "2000x200"))
    open_points = parse_points(args.open_loop if args.open_loop is not None else ("10x2" if quick else "100x10"))
    storm = args.storm if args.storm is not None else (50 if quick else 2000)
    idle = parse_ints(args.idle if args.idle is not None else ("20" if quick else "1000,10000"))
    connections = args.connections if args.connections is not None else (50 if quick else 2000)
    history_messages = args.history_messages if args.history_messages is not None else (1000 if quick else 1_000_000)
    cluster_points = parse_points(args.cluster if args.cluster is not None else ("20x4" if quick else "1000x20"))
    cluster_pinning, cluster_skipped = None, None
    if "cluster" in chosen:
        cluster_skipped = cluster.unavailable(args.cluster_postgres, args.cluster_redis)
        if cluster_skipped and args.scenario != ",".join(SCENARIOS):
            raise SystemExit(f"--scenario cluster: {cluster_skipped}")
        try:
            cluster_pinning = cluster_plan(args.cluster_cpus, args.cluster_loadgen_cpus, 2, wanted=not args.no_pin)
        except ValueError as error:
            raise SystemExit(f"--cluster-cpus/--cluster-loadgen-cpus: {error}") from None

    limits = raise_fd_limit()
    started = time.monotonic()
    report: dict[str, Any] = {
        **command_line(argv),
        "source": commit(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": host(),
        "pinning": pinning.as_dict(),
        "servers_run": servers,
        "servers_skipped": skipped,
        "server_info": {
            "ours": OurServer.describe(), "threaded": ThreadedServer.describe(),  # ours-irc, ours-ws: the same code
            "inspircd": InspircdServer.describe() if "inspircd" in servers else None,
        },
        "settings": {**vars(settings), "rounds": args.rounds, "idle_rounds": args.idle_rounds,
                     "scenarios": chosen, "fd_limit": limits,
                     "open_loop_fraction": args.open_loop_fraction, "open_loop_rate": args.open_loop_rate,
                     "cluster_rate": args.cluster_rate, "cluster_cpus": args.cluster_cpus,
                     "cluster_loadgen_cpus": args.cluster_loadgen_cpus,
                     "cluster_postgres": args.cluster_postgres, "cluster_redis": args.cluster_redis},
    }
    if cluster_skipped:
        report["cluster_skipped"] = cluster_skipped
        log(f"bench: the cluster scenario is SKIPPED: {cluster_skipped}")
    if not pinning.pinned:
        log(f"bench: running UNPINNED: {pinning.reason}")
    # The bench's own process (it mostly sleeps) keeps off the server's CPUs while it runs.
    own_cpus = os.sched_getaffinity(0)
    try:
        if pinning.pinned:
            assert pinning.loadgen is not None
            os.sched_setaffinity(0, parse_cpus(pinning.loadgen))
        with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmpdir:
            runner = Runner(args, settings, servers, Path(tmpdir), pinning, cluster_pinning=cluster_pinning,
                            own_cpus=frozenset(own_cpus))
            report["loadgen"] = str(runner.executable)
            try:
                if "fanout" in chosen:
                    report["fanout"] = [runner.fanout_point("fanout", c, s) for c, s in fanout_points]
                if "sweep" in chosen and sweep:
                    report["sweep"] = [runner.fanout_point("sweep", c, min(20, c)) for c in sweep]
                if "rooms" in chosen:
                    report["rooms"] = [runner.rooms_point(c, r) for c, r in rooms_points]
                if "storm" in chosen:
                    report["storm"] = [runner.storm_point(storm)]
                if "openloop" in chosen:
                    report["openloop"] = [runner.openloop_point(c, s) for c, s in open_points]
                if "idle" in chosen:
                    report["idle"] = [runner.idle_point(n) for n in idle]
                if "connect" in chosen:
                    report["connect"] = [runner.connect_point(connections)]
                if "history" in chosen:
                    report["history"] = runner.history(history_messages)
                if "cluster" in chosen and not cluster_skipped:
                    report["cluster"] = [runner.cluster_point(c, s) for c, s in cluster_points]
            finally:
                report["server_config"] = runner.server_config
                report["failed_runs"] = runner.failed
            if args.keep_tmp:
                kept = Path(tempfile.mkdtemp(prefix="chat-bench-kept-"))
                shutil.copytree(tmpdir, kept, dirs_exist_ok=True)
                report["kept_tmp"] = str(kept)
    finally:
        os.sched_setaffinity(0, own_cpus)
    # Others may edit the tree while the bench runs: say so, the figures may then mix versions.
    end = commit()
    report["source"]["changed_during_run"] = changed(report["source"], end)
    if report["source"]["changed_during_run"]:
        report["source_end"] = end
        log(f"bench: the working tree CHANGED during the run ({report['source']['commit']} at the start, "
            f"{end['commit']} at the end, fingerprint {report['source'].get('fingerprint')} -> "
            f"{end.get('fingerprint')}): the figures may mix versions of the code")
    report["ok"] = not report["failed_runs"]
    report["seconds"] = round(time.monotonic() - started, 1)
    report["machine"]["loadavg_end"] = os.getloadavg()
    return report


def write_configs(report: dict[str, Any], output: Path) -> list[Path]:
    """
    Write every configuration file a server was given (InspIRCd's) next to the results file, as
    ``RESULTS.SERVER.conf``, and record its path in the report; return the paths written.
    """
    written = []
    for name, config in report.get("server_config", {}).items():
        if not config.get("config"):
            continue
        path = output.with_name(f"{output.stem}.{name}.conf")
        path.write_text(f"# {name}'s configuration as written by {report['command']}\n"
                        f"# at {report['source']['commit']} (port and directories change from run to run)\n"
                        + config["config"])
        config["config_file"] = str(path)
        written.append(path)
    return written


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench``."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run the benchmark and print a JSON report")
    r.add_argument("--quick", action="store_true", help="tiny sizes, about 1 s per run (the CI smoke)")
    r.add_argument("--scenario", default=",".join(SCENARIOS), help=f"comma-separated, of {', '.join(SCENARIOS)}")
    r.add_argument("--servers", help=f"comma-separated, of {', '.join(SERVERS)} (default: all installed; "
                   "ours-irc and ours-ws are ours through its IRC and WebSocket doors)")
    r.add_argument("--rounds", type=int, default=None, help="rounds of every comparison (default 3; --quick 1)")
    r.add_argument("--idle-rounds", type=int, default=None, help="rounds of the idle scenario (default: --rounds)")
    r.add_argument("--fanout", help="standard fanout points, CxS comma-separated (default 100x10,1000x20)")
    r.add_argument("--sweep", help="room sizes of the sweep, S = min(20, C) (default 10,100,1000,5000)")
    r.add_argument("--rooms", help="many rooms: CxR comma-separated, C clients in R rooms, everyone talking "
                   "(default 2000x200)")
    r.add_argument("--storm", type=int, help="login storm: connections, each registering and joining the lobby "
                   "(default 2000)")
    r.add_argument("--storm-parallel", type=int, help="login storm: connections being set up at once (default 50)")
    r.add_argument("--open-loop", help="open loop points, CxS comma-separated (default 100x10)")
    r.add_argument("--open-loop-fraction", type=float, default=0.5,
                   help="open loop: the fixed send rate as a fraction of each server's closed-loop saturation "
                   "at that point (default 0.5)")
    r.add_argument("--open-loop-rate", type=float,
                   help="open loop: a fixed send rate in lines/s for every server instead (overrides the fraction)")
    r.add_argument("--idle", help="idle client counts (default 1000,10000)")
    r.add_argument("--connections", type=int, help="connections of the connect scenario (default 2000)")
    r.add_argument("--connect-parallel", type=int, default=50, help="connections at once (default 50)")
    r.add_argument("--history-messages", type=int, help="stored messages for the history scenario (default 1e6)")
    r.add_argument("--duration", type=float, help="measured seconds per fanout run (default 5)")
    r.add_argument("--warmup", type=float, help="unmeasured seconds before each window (default 1)")
    r.add_argument("--window", type=int, default=8, help="lines in flight per sender (default 8)")
    r.add_argument("--drain-quiet", type=float, default=2.0,
                   help="after sending stops, seconds without a line that end the drain (default 2; the drain "
                   "ends anyway after 15 s); lines still missing then count as lost")
    r.add_argument("--loadgen-procs", type=int, default=1, help="load generator processes per run (default 1)")
    r.add_argument("--cluster", help="cluster comparison points, CxS comma-separated (default 1000x20; --quick 20x4)")
    r.add_argument("--cluster-rate", type=float, default=None,
                   help="cluster comparison: an open loop at this many lines/s in all, the same for every setup "
                   "(default: closed loop, --window lines in flight per sender)")
    r.add_argument("--cluster-cpus", default="0/1",
                   help="cluster comparison: the CPUs of each server process, taskset -c lists separated by '/' "
                   "(default 0/1: process A on CPU 0, B on CPU 1; one process uses A's)")
    r.add_argument("--cluster-loadgen-cpus", default=None,
                   help="cluster comparison: the load generator's CPUs (default: unpinned, sharing the cores)")
    r.add_argument("--cluster-postgres", default=cluster.DEFAULT_POSTGRES,
                   help=f"cluster comparison: the PostgreSQL maintenance database where a scratch database is made "
                   f"and dropped for each run (default {cluster.DEFAULT_POSTGRES})")
    r.add_argument("--cluster-redis", default=cluster.DEFAULT_REDIS,
                   help=f"cluster comparison: the Redis the processes share, each run under its own --bus-prefix "
                   f"(default {cluster.DEFAULT_REDIS})")
    r.add_argument("--server-cpus", default="0", help="CPUs of every server (taskset -c list; default 0)")
    r.add_argument("--loadgen-cpus", default="1", help="CPUs of the load generator (taskset -c list; default 1)")
    r.add_argument("--no-pin", action="store_true", help="run unpinned (the report says so)")
    r.add_argument("--output", type=Path, help="also write the JSON report to this file (and InspIRCd's "
                   "configuration next to it, as FILE-STEM.inspircd.conf)")
    r.add_argument("--plot", type=Path, help="also draw the fan-out plot (PNG; needs matplotlib)")
    r.add_argument("--keep-tmp", action="store_true", help="keep every run's directory (logs, configs)")

    t = sub.add_parser("tables", help="print Markdown tables of a results file (as in docs/performance.md)")
    t.add_argument("results", type=Path)

    p = sub.add_parser("plot", help="draw the fan-out plot from a results file")
    p.add_argument("results", type=Path)
    p.add_argument("--output", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "fanout.png")

    sub.add_parser("commit-cost", help="bench/commit_cost.py: what committing before fan-out costs "
                   "(its options follow; see its --help)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["commit-cost"]:  # its own options, parsed by commit_cost.py
        from twisted.internet import task
        from twisted.internet.defer import ensureDeferred

        from bench import commit_cost

        task.react(lambda reactor: ensureDeferred(commit_cost.main(reactor, argv[1:])))
        return 0
    args = build_parser().parse_args(argv)
    if args.command == "tables":
        from bench.tables import tables_file

        print(tables_file(args.results), end="")
        return 0
    if args.command == "plot":
        from bench.plot import plot_file

        log(f"wrote {plot_file(args.results, args.output)}")
        return 0
    # SIGTERM ends the run through the same finally blocks as Ctrl-C: no server outlives the bench.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.idle_rounds is None:
        args.idle_rounds = args.rounds
    if args.rounds < 1 or args.idle_rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    if not 0 < args.open_loop_fraction <= 1 or (args.open_loop_rate is not None and args.open_loop_rate <= 0):
        raise SystemExit("--open-loop-fraction must be in (0, 1], --open-loop-rate above 0")
    if args.cluster_rate is not None and args.cluster_rate <= 0:
        raise SystemExit("--cluster-rate must be above 0")
    try:
        report = run(args, argv)
    except loadgen.LoadgenError as error:  # e.g. no C compiler
        raise SystemExit(f"bench: {error}") from None
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        for path in write_configs(report, args.output):
            log(f"wrote {path}")
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
        log(f"wrote {args.output}")
    if args.plot:
        from bench.plot import plot

        try:
            log(f"wrote {plot(report, args.plot)}")
        except ValueError as error:  # nothing to plot
            log(f"no plot: {error}")
    return exit_status(report)


def exit_status(report: dict[str, Any]) -> int:
    """0 when every run succeeded; 1 (after saying which failed and why) when any failed."""
    failed = report.get("failed_runs") or []
    if not failed:
        return 0
    log(f"bench: {len(failed)} run(s) FAILED (left out of the figures):")
    for run in failed:
        log(f"  {run['scenario']} {run['point']} {run['server']} round {run['round']}: "
            f"{'; '.join(map(one_line, run['why']))}")
    return 1
