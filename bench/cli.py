"""
``python -m bench``: the benchmark's one command.

    python -m bench run [--quick] [--scenario fanout,sweep,idle,connect,history]
                        [--servers ours,ours-irc,ours-ws,threaded,inspircd] [--rounds 3] [--output FILE]
                        [--plot PNG]
    python -m bench plot RESULTS.json [--output docs/fanout.png]
    python -m bench tables RESULTS.json       (Markdown tables, as in docs/performance.md)
    python -m bench commit-cost [ARGS...]     (bench/commit_cost.py: what committing costs)

``run`` prints one JSON report on standard output (progress goes to standard error). For every
scenario point it runs each server in turn, round after round (A B C, A B C, ...), each run on
a freshly started server, and reports every run, the medians per server and the ratios
ours/peer taken round by round (and ours-irc/peer or ours-ws/peer when our IRC or WebSocket door
ran). docs/performance.md explains the scenarios and the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import loadgen, scenarios
from bench.scenarios import Settings
from bench.servers import OURS, SERVERS, InspircdServer, OurServer, Server, ThreadedServer, available
from bench.summary import summarise

SCENARIOS = ("fanout", "sweep", "idle", "connect", "history")
FANOUT_METRICS = ("delivered_per_s", "p50_ms", "p99_ms", "max_ms", "lost", "reordered", "server_cpu_pct",
                  "loadgen_cpu_pct", "machine_busy_pct", "rest_cpu_pct", "steal_pct", "login_s")
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
    """``100x10,1000x20`` -> [(100, 10), (1000, 20)] (clients x senders)."""
    points = []
    for part in filter(None, text.split(",")):
        clients, _, senders = part.partition("x")
        points.append((int(clients), int(senders)))
    return points


def parse_ints(text: str) -> list[int]:
    """``10,100`` -> [10, 100]."""
    return [int(part) for part in text.split(",") if part]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    memory = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), "?")
    cc = loadgen.compiler()
    cc_version = subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0] if cc else None
    try:
        import twisted

        twisted_version: str | None = twisted.__version__
    except ImportError:
        twisted_version = None
    return {
        "nproc": os.cpu_count(), "cpu": model, "mem_gib": round(int(memory) / 2**20, 1),
        "kernel": platform.release(), "python": platform.python_version(), "twisted": twisted_version,
        "sqlite": sqlite3.sqlite_version, "cc": cc_version, "loadavg_start": os.getloadavg(),
    }


class Runner:
    """Runs the scenario points, server after server, round after round, in one temp directory."""

    def __init__(self, args: argparse.Namespace, settings: Settings, servers: list[str], tmp: Path) -> None:
        self.args = args
        self.settings = settings
        self.servers = servers
        self.tmp = tmp
        self.executable = loadgen.build()
        self.counter = 0

    def workdir(self, label: str) -> Path:
        """A fresh directory for one run (fresh database, logs, configs)."""
        self.counter += 1
        path = self.tmp / f"{self.counter:03d}-{label}"
        path.mkdir()
        return path

    def compare(self, scenario: str, label: str, metrics: Sequence[str], rounds: int,
                one: Callable[[Server, Path], dict[str, Any]], show: Callable[[dict[str, Any]], str]) -> dict[str, Any]:
        """Run C{one} for every server in every round (A B C, A B C, ...); return runs and summary."""
        runs: list[dict[str, Any]] = []
        for round_number in range(1, rounds + 1):
            for name in self.servers:
                server = SERVERS[name]()
                started = time.monotonic()
                workdir = self.workdir(f"{scenario}-{name}")
                try:
                    result = one(server, workdir)
                    result["ok"] = True
                    text = show(result)
                except Exception as error:  # noqa: BLE001  # a failed run is reported, and the others go on
                    result = {"ok": False, "error": f"{type(error).__name__}: {error}"[:2000]}
                    text = f"FAILED {result['error'][:300]}"
                finally:
                    server.stop()
                result = {"server": name, "round": round_number, **result,
                          "run_s": round(time.monotonic() - started, 1)}
                if name in OURS and server.command:
                    result["server_command"] = server.shown_command()
                runs.append(result)
                log(f"[{scenario} {label}] round {round_number}/{rounds} {name:9} {text} "
                    f"({result['run_s']:.1f} s)")
                if not self.args.keep_tmp:
                    shutil.rmtree(workdir, ignore_errors=True)
        return {"runs": runs, "summary": summarise(runs, self.servers, metrics)}

    def fanout_point(self, scenario: str, clients: int, senders: int) -> dict[str, Any]:
        """One fanout point (C, S) across all servers and rounds."""
        def one(server: Server, workdir: Path) -> dict[str, Any]:
            return scenarios.run_fanout(server, self.executable, workdir, clients, senders, self.settings)

        def show(r: dict[str, Any]) -> str:
            return (f"{r['delivered_per_s'] / 1e6:6.3f} M lines/s  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  "
                    f"lost {r['lost']} reordered {r['reordered']}  cpu server {r['server_cpu_pct']}% "
                    f"loadgen {r['loadgen_cpu_pct']}% machine {r['machine_busy_pct']}% "
                    f"(rest {r['rest_cpu_pct']}%) steal {r['steal_pct']}%")

        result = self.compare(scenario, f"C={clients} S={senders}", FANOUT_METRICS, self.args.rounds, one, show)
        return {"clients": clients, "senders": senders, "window": self.settings.window, **result}

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

    def history(self, messages: int) -> dict[str, Any]:
        """/history 500 latency on our server with C{messages} stored."""
        workdir = self.workdir("history")
        started = time.monotonic()
        try:
            result = scenarios.run_history(workdir, messages, self.settings)
            result["ok"] = True
            log(f"[history {messages} messages] p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
                f"first {result['first_ms']} ms ({time.monotonic() - started:.1f} s)")
        except Exception as error:  # noqa: BLE001  # reported in the JSON
            result = {"ok": False, "error": f"{type(error).__name__}: {error}"[:2000]}
            log(f"[history] FAILED {result['error'][:300]}")
        finally:
            if not self.args.keep_tmp:
                shutil.rmtree(workdir, ignore_errors=True)
        return result


def settings_from(args: argparse.Namespace) -> Settings:
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
    settings.loadgen_procs = args.loadgen_procs
    settings.connect_parallel = args.connect_parallel
    return settings


def run(args: argparse.Namespace, argv: Sequence[str]) -> dict[str, Any]:
    """Run the chosen scenarios and return the report."""
    quick = args.quick
    chosen = [s.strip() for s in args.scenario.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(sorted(unknown))} (known: {', '.join(SCENARIOS)})")
    if args.servers:
        servers = [s.strip() for s in args.servers.split(",") if s.strip()]
        for name in servers:
            reason = available(name)
            if reason:
                raise SystemExit(f"--servers {name}: {reason}")
        skipped: dict[str, str] = {}
    else:
        servers, skipped = [], {}
        for name in SERVERS:
            reason = available(name)
            if reason:
                skipped[name] = reason
            else:
                servers.append(name)
    settings = settings_from(args)
    fanout_points = parse_points(args.fanout if args.fanout is not None else ("10x2" if quick else "100x10,1000x20"))
    sweep = parse_ints(args.sweep if args.sweep is not None else ("" if quick else "10,100,1000,5000"))
    idle = parse_ints(args.idle if args.idle is not None else ("20" if quick else "1000,10000"))
    connections = args.connections if args.connections is not None else (50 if quick else 2000)
    history_messages = args.history_messages if args.history_messages is not None else (1000 if quick else 1_000_000)

    limits = raise_fd_limit()
    started = time.monotonic()
    report: dict[str, Any] = {
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "servers_run": servers,
        "servers_skipped": skipped,
        "server_info": {
            "ours": OurServer.describe(), "threaded": ThreadedServer.describe(),  # ours-irc, ours-ws: the same code
            "inspircd": InspircdServer.describe() if "inspircd" in servers else None,
        },
        "settings": {**vars(settings), "rounds": args.rounds, "idle_rounds": args.idle_rounds,
                     "scenarios": chosen, "fd_limit": limits},
    }
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmpdir:
        runner = Runner(args, settings, servers, Path(tmpdir))
        report["loadgen"] = str(runner.executable)
        if "fanout" in chosen:
            report["fanout"] = [runner.fanout_point("fanout", c, s) for c, s in fanout_points]
        if "sweep" in chosen and sweep:
            report["sweep"] = [runner.fanout_point("sweep", c, min(20, c)) for c in sweep]
        if "idle" in chosen:
            report["idle"] = [runner.idle_point(n) for n in idle]
        if "connect" in chosen:
            report["connect"] = [runner.connect_point(connections)]
        if "history" in chosen:
            report["history"] = runner.history(history_messages)
        if args.keep_tmp:
            kept = Path(tempfile.mkdtemp(prefix="chat-bench-kept-"))
            shutil.copytree(tmpdir, kept, dirs_exist_ok=True)
            report["kept_tmp"] = str(kept)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["machine"]["loadavg_end"] = os.getloadavg()
    return report


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
    r.add_argument("--idle", help="idle client counts (default 1000,10000)")
    r.add_argument("--connections", type=int, help="connections of the connect scenario (default 2000)")
    r.add_argument("--connect-parallel", type=int, default=50, help="connections at once (default 50)")
    r.add_argument("--history-messages", type=int, help="stored messages for the history scenario (default 1e6)")
    r.add_argument("--duration", type=float, help="measured seconds per fanout run (default 5)")
    r.add_argument("--warmup", type=float, help="unmeasured seconds before each window (default 1)")
    r.add_argument("--window", type=int, default=8, help="lines in flight per sender (default 8)")
    r.add_argument("--loadgen-procs", type=int, default=1, help="load generator processes per run (default 1)")
    r.add_argument("--output", type=Path, help="also write the JSON report to this file")
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
    try:
        report = run(args, argv)
    except loadgen.LoadgenError as error:  # e.g. no C compiler
        raise SystemExit(f"bench: {error}") from None
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
        log(f"wrote {args.output}")
    if args.plot:
        from bench.plot import plot

        log(f"wrote {plot(report, args.plot)}")
    return 0
