"""
The benchmark's smoke and its rules.

A seconds-long smoke of ``python -m bench run --quick`` against our server only (and a few
runs through its IRC door, ``ours-irc``, and its WebSocket door, ``ours-ws``): each scenario runs
at tiny sizes, pinned where the machine allows, and reports sane JSON with nothing lost or
reordered. It checks that the benchmark keeps working; it never asserts on a speed. The cluster
comparison has a smoke of its own (one plain process, one and two processes on PostgreSQL and
Redis, 20 clients), skipped, saying why, only where PostgreSQL or Redis cannot be reached.

Then unit tests, without servers, of what makes the benchmark a witness: the order of servers
rotates from round to round, each figure is a median with its spread, a failed run is left out
of the figures and makes the exit status non-zero, a server that exits badly or logs an error
fails its run, pinning is checked, and the report records the commit with its dirty mark.
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from bench import cli, cluster, loadgen
from bench.baselines.threaded import ThreadedChatServer
from bench.pinning import (
    ClusterPinning,
    Pinning,
    cluster_pinning_problem,
    cluster_plan,
    parse_cpus,
    pinning_problem,
    plan,
)
from bench.provenance import changed, commit, commit_mark
from bench.scenarios import Settings
from bench.servers import InspircdServer, Server, ThreadedServer, exit_problem
from bench.summary import cluster_targets, failures, limit, one_line, rotation, summarise

needs_cc = pytest.mark.skipif(loadgen.compiler() is None, reason="no C compiler: the load generator is C")


def run_bench(*argv: str) -> tuple[int, dict[str, Any]]:
    """Run ``python -m bench`` in this process; return its exit status and its JSON report."""
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(list(argv))
    return status, json.loads(out.getvalue())


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """One quick run of every scenario but the cluster comparison against our server (about 15 s)."""
    status, result = run_bench("run", "--quick", "--servers", "ours", "--rounds", "1", "--scenario",
                               ",".join(s for s in cli.SCENARIOS if s != "cluster"))
    assert status == 0, result.get("failed_runs")
    return result


@needs_cc
def test_fanout_delivers_everything_in_order(report: dict[str, Any]) -> None:
    """The fanout run delivers every line to every client, none lost or reordered, with latencies."""
    (point,) = report["fanout"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert (point["clients"], point["senders"]) == (10, 2)
    assert run["sent"] > 0 and run["received"] == run["sent"] * 10 == run["expected"]
    assert run["lost"] == 0 and run["reordered"] == 0 and run["gaps"] == 0 and run["misrouted"] == 0
    assert run["delivered_per_s"] > 0 and 0 < run["p50_ms"] <= run["p99_ms"] <= run["p999_ms"] <= run["max_ms"] * 1.02
    assert run["server_log_errors"] == 0 and run["error_lines"] == 0 and run["why_failed"] == []
    assert run["server_exit_problem"] is None and run["server_exit"] == 0
    assert run["cpu_s_per_m"] > 0
    assert "--rate 0" in run["server_command"] and "--join-history" not in run["server_command"]
    assert point["summary"]["median"]["ours"]["runs_ok"] == 1


@needs_cc
def test_runs_are_pinned_when_the_machine_allows(report: dict[str, Any]) -> None:
    """With two CPUs and taskset, the server and every thread of it ran on CPU 0, the load generator on CPU 1."""
    pinning = report["pinning"]
    (run,) = report["fanout"][0]["runs"]
    if not pinning["pinned"]:
        assert pinning["unpinned_because"] and run["pinned"] is False
        return
    assert (pinning["server_cpus"], pinning["loadgen_cpus"]) == ("0", "1")
    assert run["server_command"].startswith("taskset -c 0 ") and run["loadgen_command"].startswith("taskset -c 1 ")
    assert set(run["server_threads_cpus"]) == {"0"} and run["loadgen_cpus"] == ["1"]
    assert run["pinning_problem"] is None


@needs_cc
def test_many_rooms_keep_every_line_in_its_room(report: dict[str, Any]) -> None:
    """The quick many-rooms run (40 clients in 4 rooms, all talking) delivers each line to its room only."""
    (point,) = report["rooms"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert (point["clients"], point["rooms"], point["senders"]) == (40, 4, 40)
    assert run["sent"] > 0 and run["expected"] == run["sent"] * 10 == run["received"]
    assert run["misrouted"] == 0 and run["lost"] == 0 and run["reordered"] == 0


@needs_cc
def test_login_storm_logs_everyone_in(report: dict[str, Any]) -> None:
    """The quick login storm gets all 50 connections into the lobby, 10 at a time, and reports a rate."""
    (point,) = report["storm"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert (point["connections"], point["parallel"]) == (50, 10)
    assert run["registered"] == 50 and run["failed"] == 0 and run["disconnected"] == 0
    assert run["conn_per_s"] > 0 and run["server_cpu_ms_per_login"] is not None


@needs_cc
def test_open_loop_sends_half_the_closed_loop_rate(report: dict[str, Any]) -> None:
    """The open loop offers half the fanout point's measured saturation and reports p50/p99/p999."""
    (point,) = report["openloop"]
    (run,) = point["runs"]
    assert run["ok"], run
    saturation = point["saturation_messages_per_s"]["ours"]
    assert point["saturation_from"] == "the fanout scenario"
    assert point["offered_messages_per_s"]["ours"] == pytest.approx(saturation / 2, abs=1)
    assert run["offered_per_s"] == pytest.approx(saturation / 2, abs=2)
    assert 0 < run["p50_ms"] <= run["p99_ms"] <= run["p999_ms"] and run["lost"] == 0


@needs_cc
def test_idle_reports_rss_per_connection(report: dict[str, Any]) -> None:
    """The idle run keeps all 20 clients connected and reports the server's RSS per connection."""
    (point,) = report["idle"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert run["still_connected"] == 20 and run["disconnected"] == 0
    assert run["rss_before_kib"] > 0 and run["rss_after_kib"] > 0 and run["rss_per_conn_kib"] is not None


@needs_cc
def test_connect_registers_every_connection(report: dict[str, Any]) -> None:
    """The connect run registers all 50 connections and reports a rate."""
    (point,) = report["connect"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert run["registered"] == 50 and run["failed"] == 0 and run["conn_per_s"] > 0


@needs_cc
def test_history_answers_from_a_filled_database(report: dict[str, Any]) -> None:
    """The history run fills 1000 messages and times complete /history 500 answers."""
    history = report["history"]
    assert history["ok"], history
    assert history["messages"] == 1000 and history["requests"] >= 1
    assert history["answer_bytes"] > 500 * 40 and history["p50_ms"] > 0


@needs_cc
def test_report_says_what_was_run(report: dict[str, Any]) -> None:
    """The report names the command, the commit with its dirty mark, the host and every server's command line."""
    assert report["command"].startswith("python -m bench run --quick") and report["invocation"]
    source = report["source"]
    assert source["head"] and len(source["head"]) == 40
    assert source["commit"] == (f"{source['head']}-dirty" if source["dirty"] else source["head"])
    assert source["fingerprint"] and isinstance(source["changed_during_run"], bool)
    assert report["machine"]["nproc"] >= 1 and report["machine"]["cpu"]
    assert "chat --port" in report["server_config"]["ours"]["command"]
    assert report["servers_run"] == ["ours"] and report["ok"] is True and report["failed_runs"] == []


@needs_cc
def test_tables_show_provenance_and_cpu_per_million(report: dict[str, Any]) -> None:
    """The Markdown tables start with the commit and the pinning and show CPU seconds per million deliveries."""
    from bench.tables import tables

    text = tables(report)
    assert f"commit `{report['source']['commit']}`" in text and "CPU s/M" in text
    assert "### Many rooms" in text and "### Login storm" in text and "### Open loop" in text


@needs_cc
def test_plot_draws_a_png(report: dict[str, Any], tmp_path: Path) -> None:
    """The plot command draws a PNG from a report (when matplotlib, the bench extra, is installed)."""
    pytest.importorskip("matplotlib")
    from bench.plot import plot

    output = plot(report, tmp_path / "fanout.png")
    assert output.read_bytes().startswith(b"\x89PNG")


@needs_cc
def test_irc_door_fanout_rooms_and_storm() -> None:
    """The quick fanout, many rooms and login storm through our IRC door (ours-irc): everything, in order."""
    status, result = run_bench("run", "--quick", "--scenario", "fanout,rooms,storm", "--servers", "ours-irc")
    assert status == 0, result["failed_runs"]
    (point,) = result["fanout"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert run["sent"] > 0 and run["received"] == run["sent"] * 10
    assert run["lost"] == 0 and run["reordered"] == 0 and run["gaps"] == 0
    assert run["server_log_errors"] == 0 and run["error_lines"] == 0
    assert "--irc tcp:0:interface=127.0.0.1" in run["server_command"] and "--rate 0" in run["server_command"]
    (rooms,) = result["rooms"][0]["runs"]
    assert rooms["ok"] and rooms["misrouted"] == 0 and rooms["received"] == rooms["expected"] > 0
    (storm,) = result["storm"][0]["runs"]
    assert storm["ok"] and storm["registered"] == 50


@needs_cc
def test_websocket_door_fanout_idle_rooms_and_storm() -> None:
    """
    The quick fanout through our WebSocket door (ours-ws: HTTP upgrade, masked frames, JSON):
    every line to every client, in order; the idle run keeps its WebSockets open; many rooms and
    the login storm work through it too.
    """
    status, result = run_bench("run", "--quick", "--scenario", "fanout,idle,rooms,storm", "--servers", "ours-ws")
    assert status == 0, result["failed_runs"]
    (point,) = result["fanout"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert run["sent"] > 0 and run["received"] == run["sent"] * 10
    assert run["lost"] == 0 and run["reordered"] == 0 and run["gaps"] == 0
    assert run["server_log_errors"] == 0 and run["error_lines"] == 0 and run["disconnected"] == 0
    assert "--web tcp:0:interface=127.0.0.1" in run["server_command"] and "--no-web" not in run["server_command"]
    (idle,) = result["idle"]
    (run,) = idle["runs"]
    assert run["ok"], run
    assert run["still_connected"] == 20 and run["error_lines"] == 0 and run["rss_per_conn_kib"] is not None
    (rooms,) = result["rooms"][0]["runs"]
    assert rooms["ok"] and rooms["misrouted"] == 0 and rooms["received"] == rooms["expected"] > 0
    (storm,) = result["storm"][0]["runs"]
    assert storm["ok"] and storm["registered"] == 50


def _reachable(url: str, default_port: int) -> str | None:
    """None if something listens at C{url}'s host and port, else why not."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or default_port)
    try:
        socket.create_connection(address, timeout=5).close()
    except OSError as error:
        return f"{address[0]}:{address[1]} ({error})"
    return None


@needs_cc
def test_cluster_spreads_clients_over_two_processes_and_loses_nothing() -> None:
    """
    The quick cluster comparison (20 clients, 4 senders): one plain process, one process and two
    processes on PostgreSQL + Redis each deliver every line to every client in order; the two
    processes each get half the clients and half the senders, so half of each line's
    deliveries cross the bus; the report has the same- and cross-process latency, each
    process's CPU, Redis's and PostgreSQL's CPU and the targets; the scratch database and the
    bus keys are gone afterwards.
    """
    for url, port, what in ((cluster.DEFAULT_POSTGRES, 5432, "PostgreSQL"), (cluster.DEFAULT_REDIS, 6379, "Redis")):
        missing = _reachable(url, port)
        if missing:
            pytest.skip(f"no {what} at {missing}: the cluster comparison needs PostgreSQL and Redis")
    status, result = run_bench("run", "--quick", "--scenario", "cluster", "--rounds", "1")
    assert status == 0, result["failed_runs"]
    (point,) = result["cluster"]
    assert (point["clients"], point["senders"]) == (20, 4)
    runs = {run["server"]: run for run in point["runs"]}
    assert set(runs) == {"plain", "cluster-1", "cluster-2"}
    for run in runs.values():
        assert run["ok"], run
        assert run["sent"] > 0 and run["received"] == run["expected"] == run["sent"] * 20
        assert run["lost"] == 0 and run["reordered"] == 0 and run["gaps"] == 0 and run["server_log_errors"] == 0
        assert run["cpu_s_per_m"] > 0 and run["limit"] in ("servers", "load generator", "shared cores", "unclear")
        assert run["longest_silence_ms"] is not None and run["server_log_warnings"] >= 0
    two = runs["cluster-2"]
    assert two["processes"] == 2 and two["server_exits"] == [0, 0] and two["ports"] == 2
    assert two["clients_per_port"] == [10, 10] and two["cross_share"] == pytest.approx(0.5, abs=0.05)
    assert all(f"--bus-prefix {two['bus_prefix']}" in command and f"/{two['database']} " in command
               for command in two["server_commands"])
    assert 0 < two["same_p50_ms"] <= two["same_p99_ms"] and 0 < two["cross_p50_ms"] <= two["cross_p99_ms"]
    assert len(two["server_cpu_pct_each"]) == 2 and two["server_cpu_pct_least"] is not None
    assert two["redis_cpu_pct"] is not None and two["total_cpu_s_per_m"] >= two["cpu_s_per_m"]
    assert "postgres_cpu_pct" in two and two["postgres_backends"]
    assert two["cleanup_problems"] == [] and two["redis_keys_deleted"] > 0
    one, plain = runs["cluster-1"], runs["plain"]
    assert one["processes"] == 1 and one["ports"] == 1 and one["cross_p99_ms"] is None
    assert "--bus" in one["server_command"]
    assert plain["processes"] == 1 and "--bus" not in plain["server_command"] and "redis_cpu_pct" not in plain
    import psycopg

    with psycopg.connect(cluster.DEFAULT_POSTGRES, autocommit=True) as admin:
        names = {row[0] for row in admin.execute("SELECT datname FROM pg_database").fetchall()}
    assert two["database"] not in names and one["database"] not in names
    targets = point["targets"]
    assert targets["nothing_lost_or_reordered"] and targets["runs_failed"] == 0
    assert targets["two_over_one_delivered"]["pairs"] and targets["cross_p99_over_one_p99"]["pairs"]
    pinning = point["pinning"]
    if pinning["pinned"]:
        assert pinning["server_cpus"] == ["0", "1"] and pinning["loadgen_unpinned"]
        assert [set(cpus) for cpus in two["server_threads_cpus_each"]] == [{"0"}, {"1"}]
        assert [parse_cpus(cpus) for cpus in two["loadgen_cpus"]] == [set(pinning["usable_cpus"])]
    from bench.tables import tables

    assert "### Two processes over Redis" in tables(result) and "cross-process p50 / p99" in tables(result)


def test_threaded_baseline_broadcasts_to_everyone() -> None:
    """The threaded baseline announces a join and echoes a line to every client, the sender included."""
    import socket
    import threading

    server = ThreadedChatServer("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        clients = [socket.create_connection(server.address, timeout=5) for _ in range(2)]
        files = [c.makefile("rb") for c in clients]
        for number, (client, reader) in enumerate(zip(clients, files)):
            reader.readline()  # the greeting
            client.sendall(f"n{number}\r\n".encode())
            assert reader.readline() == f"* n{number} joined\r\n".encode()
        assert files[0].readline() == b"* n1 joined\r\n"
        clients[1].sendall(b"hello\r\n")
        assert [f.readline() for f in files] == [b"n1: hello\r\n"] * 2
        for c in clients:
            c.close()
    finally:
        server.close()


# --- the rules, without servers ------------------------------------------------------------


def test_rotation_moves_every_server_through_every_position() -> None:
    """Round by round the order rotates by one, so each server runs first once in every N rounds."""
    servers = ["ours", "threaded", "inspircd"]
    assert [rotation(servers, r) for r in range(4)] == [
        ["ours", "threaded", "inspircd"], ["threaded", "inspircd", "ours"],
        ["inspircd", "ours", "threaded"], ["ours", "threaded", "inspircd"]]
    assert rotation([], 2) == [] and rotation(["ours"], 5) == ["ours"]


def test_summary_gives_median_and_spread_of_successful_runs() -> None:
    """Each figure is the median of the successful runs with [min, max]; a failed run counts only as failed."""
    runs = [
        {"server": "ours", "round": 1, "ok": True, "delivered_per_s": 100},
        {"server": "ours", "round": 2, "ok": True, "delivered_per_s": 130},
        {"server": "ours", "round": 3, "ok": True, "delivered_per_s": 110},
        {"server": "ours", "round": 4, "ok": False, "delivered_per_s": 9999},
        {"server": "peer", "round": 1, "ok": True, "delivered_per_s": 50},
        {"server": "peer", "round": 2, "ok": True, "delivered_per_s": 65},
        {"server": "peer", "round": 3, "ok": False, "delivered_per_s": 1},
    ]
    summary = summarise(runs, ["ours", "peer"], ["delivered_per_s"])
    assert summary["median"]["ours"] == {"delivered_per_s": 110, "runs_ok": 3, "runs_failed": 1}
    assert summary["spread"]["ours"]["delivered_per_s"] == [100, 130]
    assert summary["median"]["peer"]["delivered_per_s"] == 57.5
    assert summary["spread"]["peer"]["delivered_per_s"] == [50, 65]
    assert summary["ratios"]["ours/peer"]["delivered_per_s"]["pairs"] == [2.0, 2.0]  # round 3: peer failed


def test_failures_name_every_broken_promise() -> None:
    """A run with a lost line, a repeated line, a disconnect, a log error or a bad exit has a reason for each."""
    assert failures({"lost": 0, "reordered": 0, "disconnected": 0, "server_log_errors": 0}) == []
    why = failures({"lost": 1, "reordered": 2, "disconnected": 1, "first_error": "server closed client 3",
                    "server_log_errors": 1, "server_log_first": "[chat#error] boom",
                    "server_exit_problem": "exit status 1 after our SIGTERM", "pinning_problem": "a thread on 0-1"})
    assert why == ["1 lines lost", "2 lines reordered or repeated",
                   "1 clients disconnected (first: server closed client 3)",
                   "1 error lines in the server's log (first: [chat#error] boom)",
                   "server exit status 1 after our SIGTERM", "a thread on 0-1"]
    assert failures({"lost": -3}) == ["-3 lines lost"]  # more received than sent is wrong too
    assert failures({"lost": 5, "drain_end": ["quiet"], "drain_s": 2.1}) == [
        "5 lines lost (not delivered when the drain ended: quiet, after 2.1 s)"]
    assert failures({"error": "LoadgenError: no answer"}) == ["LoadgenError: no answer"]
    tail = "ours exited with 1:\nTraceback ...\n  \nImportError: x\n"
    assert one_line(tail) == "ours exited with 1: … ImportError: x"


class _Quiet(Server):
    """A server that never starts a process: the runner's bookkeeping, without sockets."""

    name = "quiet"
    protocol = "line"


class _Other(_Quiet):
    name = "other"


@pytest.fixture
def fake_runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[cli.Runner]:
    """A Runner over two fake servers, unpinned, that builds nothing."""
    monkeypatch.setattr(cli, "SERVERS", {"quiet": _Quiet, "other": _Other})
    args = argparse.Namespace(keep_tmp=False, rounds=3)
    yield cli.Runner(args, Settings(), ["quiet", "other"], tmp_path, Pinning(None, None, "test"),
                     executable=Path("/nonexistent/loadgen"))


def test_a_run_that_lost_a_line_fails_and_stays_out_of_the_medians(fake_runner: cli.Runner) -> None:
    """
    Three rounds in rotating order; one run of "quiet" loses a line: it is marked failed with the
    reason, left out of the median, listed in the failed runs, and makes the exit status 1.
    """
    seen: list[tuple[str, str]] = []
    figures = iter([100, 200, 300, 400, 500, 600])

    def one(server: Server, workdir: Path) -> dict[str, Any]:
        seen.append((server.name, workdir.name))
        value = next(figures)
        return {"delivered_per_s": value, "lost": 1 if value == 400 else 0, "reordered": 0}

    result = fake_runner.compare("fanout", "C=1 S=1", ["delivered_per_s"], 3, one, lambda r: "")
    assert result["orders"] == [["quiet", "other"], ["other", "quiet"], ["quiet", "other"]]
    assert [name for name, _ in seen] == ["quiet", "other", "other", "quiet", "quiet", "other"]
    failed = [run for run in result["runs"] if not run["ok"]]
    assert [(run["server"], run["round"], run["position"], run["why_failed"]) for run in failed] == [
        ("quiet", 2, 2, ["1 lines lost"])]
    assert result["summary"]["median"]["quiet"]["delivered_per_s"] == 300  # 100 and 500; 400 left out
    assert result["summary"]["median"]["quiet"]["runs_failed"] == 1
    assert fake_runner.failed == [{"scenario": "fanout", "point": "C=1 S=1", "server": "quiet", "round": 2,
                                   "why": ["1 lines lost"]}]
    assert cli.exit_status({"failed_runs": fake_runner.failed}) == 1
    assert cli.exit_status({"failed_runs": []}) == 0


def test_a_server_that_cannot_do_a_scenario_is_said_so(fake_runner: cli.Runner,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server without rooms is left out of the many-rooms comparison, with its reason in the point."""
    monkeypatch.setattr(_Other, "cannot_do", {"rooms": "one room only"})
    result = fake_runner.compare("rooms", "C=1", ["x"], 2, lambda server, workdir: {"x": 1}, lambda r: "")
    assert result["not_run"] == {"other": "one room only"} and result["orders"] == [["quiet"], ["quiet"]]
    assert ThreadedServer.cannot("rooms") and InspircdServer.cannot("rooms") is None


def test_python_m_bench_run_exits_nonzero_when_a_run_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -m bench run`` prints its report and then exits with 1 when the report lists a failed run."""
    failed = [{"scenario": "fanout", "point": "C=10 S=2", "server": "ours", "round": 1, "why": ["1 lines lost"]}]
    monkeypatch.setattr(cli, "run", lambda args, argv: {"failed_runs": failed, "ok": False})
    status, result = run_bench("run", "--quick")
    assert status == 1 and result["failed_runs"] == failed


def test_a_crashing_or_error_logging_server_fails_its_run(fake_runner: cli.Runner, tmp_path: Path) -> None:
    """An error line in any of a server's logs, or an exit that was not our clean SIGTERM, fails the run."""
    logged = tmp_path / "server.log"
    logged.write_text("2026 [chat_twisted.guard#info] connection from 127.0.0.1:1\n"
                      "2026 [chat_twisted.core#error] delivery failed\n")
    server = _Quiet()
    server.log_paths.append(logged)
    verdict = fake_runner.judge(server, {"lost": 0})
    assert not verdict["ok"] and verdict["server_log_errors"] == 1
    assert verdict["why_failed"] == ["1 error lines in the server's log (first: 2026 [chat_twisted.core#error] "
                                     "delivery failed)"]
    logged.write_text("Unhandled error in Deferred:\nTraceback (most recent call last):\n")
    assert len(server.log_problems()) == 2


def test_exit_problem_accepts_only_our_sigterm() -> None:
    """Exiting 0 or dying of our SIGTERM is clean; exiting early, being killed, another status or signal is not."""
    clean = frozenset({0, -signal.SIGTERM})
    assert exit_problem("sigterm", 0, clean) is None and exit_problem("sigterm", -15, clean) is None
    assert exit_problem("sigterm", 1, clean) == "exit status 1 after our SIGTERM"
    assert exit_problem("sigterm", -11, clean) == "died of signal SIGSEGV after our SIGTERM"
    assert exit_problem("sigkill", -9, clean).startswith("did not exit within")  # type: ignore[union-attr]
    assert exit_problem("exited by itself", 0, clean) == "exited by itself during the run (status 0)"
    assert exit_problem("sigterm", 10, InspircdServer.clean_exits) is None  # InspIRCd 3's EXIT_STATUS_SIGTERM


def test_stop_tells_a_server_that_died_from_one_we_stopped(tmp_path: Path) -> None:
    """L{Server.stop} on a process that already exited says so; on a running one, our SIGTERM ends it cleanly."""
    died, running = _Quiet(), _Quiet()
    died._spawn([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path)
    assert died.process is not None
    died.process.wait(30)
    died.stop()
    assert died.exit_problem() == "exited by itself during the run (status 3)"
    running._spawn([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
    running.stop()
    assert running.exit_problem() is None and running.ending == "sigterm"


def test_pinning_plan_falls_back_and_says_why() -> None:
    """Without taskset or a second CPU the runs are unpinned with the reason; impossible CPU lists are refused."""
    assert plan("0", "1", taskset="/usr/bin/taskset", allowed={0, 1}) == Pinning("0", "1")
    assert plan("0", "1", taskset="", allowed={0, 1}).reason == "taskset is not installed (util-linux)"
    assert plan("0", "1", taskset="/usr/bin/taskset", allowed={0}).reason == "only one CPU is available (0)"
    assert plan("0", "1", wanted=False).pinned is False
    with pytest.raises(ValueError, match="overlap"):
        plan("0-1", "1", taskset="/usr/bin/taskset", allowed={0, 1})
    with pytest.raises(ValueError, match="not available"):
        plan("0", "3", taskset="/usr/bin/taskset", allowed={0, 1})
    assert parse_cpus("0-2,5") == {0, 1, 2, 5}


def test_pinning_problem_finds_a_thread_off_its_core() -> None:
    """A server thread or a load generator allowed elsewhere than planned is a pinning problem."""
    pinned = Pinning("0", "1")
    assert pinning_problem(pinned, {"0": 2}, ["1"]) is None
    assert pinning_problem(pinned, {"0": 1, "0-1": 1}, ["1"]) == "1 server thread(s) allowed on CPUs 0-1, not 0"
    assert pinning_problem(pinned, {"0": 2}, ["0,1"]) == "a load generator allowed on CPUs 0,1, not 1"
    assert pinning_problem(Pinning(None, None, "one CPU"), {"0-1": 3}, ["0-1"]) is None


def test_commit_mark_flags_a_dirty_tree() -> None:
    """The commit is the hash, with -dirty and the listed paths when git status --porcelain lists anything."""
    assert commit_mark("abc123", "") == {"commit": "abc123", "head": "abc123", "dirty": False, "dirty_paths": []}
    dirty = commit_mark("abc123", " M bench/cli.py\n?? notes.txt\n")
    assert dirty["commit"] == "abc123-dirty" and dirty["dirty_paths"] == ["bench/cli.py", "notes.txt"]
    assert commit_mark(None, "")["commit"] == "unknown"


def test_commit_reads_a_real_repository(tmp_path: Path) -> None:
    """In a real git repository the record is clean after a commit, dirty after an edit, and each edit changes it."""
    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("-c", "user.name=bench", "-c", "user.email=bench@localhost", "commit", "-q", "-m", "one")
    clean = commit(tmp_path)
    assert clean["dirty"] is False and clean["commit"] == clean["head"] and len(clean["head"]) == 40
    (tmp_path / "a.txt").write_text("two\n")
    edited = commit(tmp_path)
    assert edited["commit"] == f"{clean['head']}-dirty" and changed(clean, edited)
    (tmp_path / "a.txt").write_text("three\n")
    assert changed(edited, commit(tmp_path)) and not changed(edited, edited)


def test_inspircd_configuration_is_written_next_to_the_results(tmp_path: Path) -> None:
    """A server's configuration file goes next to the results file, named after it, and the report points to it."""
    report: dict[str, Any] = {"command": "python -m bench run", "source": {"commit": "abc-dirty"},
                              "server_config": {"ours": {"command": "twistd ...", "config": None},
                                                "inspircd": {"command": "inspircd --nofork",
                                                             "config": "<config format=\"xml\">\n"}}}
    (path,) = cli.write_configs(report, tmp_path / "results.json")
    assert path == tmp_path / "results.inspircd.conf"
    assert path.read_text().endswith("<config format=\"xml\">\n") and "abc-dirty" in path.read_text()
    assert report["server_config"]["inspircd"]["config_file"] == str(path)


def test_cluster_plan_gives_each_process_its_cpus() -> None:
    """Process A and B get a CPU list each, the load generator its own or none; bad lists are refused."""
    taskset = "/usr/bin/taskset"
    assert cluster_plan("0/1", None, 2, taskset=taskset, allowed={0, 1}) == ClusterPinning(("0", "1"), None, (0, 1))
    assert cluster_plan("0/1", None, 2, taskset=taskset, allowed={0, 1}).server_cpus(1) == "1"
    assert cluster_plan("0/1", None, 2, taskset=taskset, allowed={0}).reason == (
        "2 server processes and only 1 CPU(s) available")
    assert cluster_plan("0/1", None, 2, wanted=False).pinned is False
    with pytest.raises(ValueError, match="overlap"):
        cluster_plan("0/0-1", None, 2, taskset=taskset, allowed={0, 1})
    with pytest.raises(ValueError, match="overlap"):
        cluster_plan("0/1", "1", 2, taskset=taskset, allowed={0, 1})
    with pytest.raises(ValueError, match="2 CPU lists"):
        cluster_plan("0", None, 2, taskset=taskset, allowed={0, 1})


def test_cluster_pinning_problem_checks_every_process_and_the_unpinned_loadgen() -> None:
    """A thread of either process off its CPU, or a load generator meant to be unpinned but restricted, is a problem."""
    placed = ClusterPinning(("0", "1"), None, (0, 1))
    assert cluster_pinning_problem(placed, [{"0": 7}, {"1": 7}], ["0,1"]) is None
    assert cluster_pinning_problem(placed, [{"0": 7}, {"0-1": 1}], ["0,1"]) == (
        "1 thread(s) of server process 2 allowed on CPUs 0-1, not 1")
    assert cluster_pinning_problem(placed, [{"0": 7}], ["1"]) == (
        "a load generator allowed on CPUs 1, not all of 0,1 (unpinned)")
    assert cluster_pinning_problem(ClusterPinning(("0", "1"), "1", (0, 1, 2)), [{"0": 1}], ["1"]) is None
    assert cluster_pinning_problem(ClusterPinning(None, None, (0, 1), "one CPU"), [{"0-1": 3}], ["0"]) is None


def test_limit_names_what_held_a_run_back() -> None:
    """A full-core load generator, servers each at a full core, a full machine, or none of these."""
    assert limit({"loadgen_cpu_pct": 99, "server_cpu_pct_each": [100, 100]}, 2) == "load generator"
    assert limit({"loadgen_cpu_pct": 30, "server_cpu_pct_each": [95, 91]}, 2) == "servers"
    assert limit({"loadgen_cpu_pct": 30, "server_cpu_pct_each": [70, 80], "machine_busy_pct": 195}, 2) == "shared cores"
    assert limit({"loadgen_cpu_pct": 30, "server_cpu_pct_each": [70], "machine_busy_pct": 120}, 2) == "unclear"


def test_cluster_targets_pair_the_runs_of_each_round() -> None:
    """
    Two processes over one, and two's cross-process p99 over one's p99, are taken round by
    round; the 1.3x verdict counts only rounds where both setups had the servers as the limit;
    a lost line anywhere (a failed run too) spoils "nothing lost".
    """
    def run(server: str, number: int, delivered: int, p99: float, cross: float | None, full: bool,
            ok: bool = True, lost: int = 0) -> dict[str, Any]:
        return {"server": server, "round": number, "ok": ok, "delivered_per_s": delivered, "p99_ms": p99,
                "cross_p99_ms": cross, "lost": lost, "reordered": 0, "gaps": 0, "loadgen_cpu_pct": 20,
                "server_cpu_pct_each": [100, 100] if full else [60, 60], "machine_busy_pct": 199}

    runs = [run("plain", 1, 300, 10, None, True), run("cluster-1", 1, 100, 10, None, True),
            run("cluster-2", 1, 150, 12, 15, True),
            run("plain", 2, 300, 10, None, True), run("cluster-1", 2, 100, 10, None, True),
            run("cluster-2", 2, 120, 30, 25, False),
            run("cluster-2", 3, 1, 1, 1, True, ok=False, lost=5), run("cluster-1", 3, 100, 10, None, True)]
    targets = cluster_targets(runs, 2)
    assert targets["two_over_one_delivered"]["pairs"] == [1.5, 1.2]
    assert targets["two_over_one_delivered_servers_limit"]["pairs"] == [1.5]
    assert targets["throughput_target_1_3x"] == "met"
    assert targets["cross_p99_over_one_p99"]["pairs"] == [1.5, 2.5] and targets["latency_target_2x"] == "met"
    assert targets["two_over_plain_delivered"]["pairs"] == [0.5, 0.4]
    assert [r["limit_two"] for r in targets["rounds"]] == ["servers", "shared cores", None]
    assert targets["lost"] == 5 and not targets["nothing_lost_or_reordered"] and targets["runs_failed"] == 1
