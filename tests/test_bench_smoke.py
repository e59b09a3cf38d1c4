"""
A seconds-long smoke of the benchmark (``python -m bench run --quick``) against our server only
(and one fanout through its IRC door, ``ours-irc``, and one fanout and idle run through its
WebSocket door, ``ours-ws``): each scenario runs at tiny sizes and reports
sane JSON with nothing lost or reordered. It checks that the benchmark keeps working; it never
asserts on a speed.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from bench import cli, loadgen
from bench.baselines.threaded import ThreadedChatServer

pytestmark = pytest.mark.skipif(loadgen.compiler() is None, reason="no C compiler: the load generator is C")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """One quick run of every scenario against our server (about 6 s)."""
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(["run", "--quick", "--servers", "ours", "--rounds", "1"])
    assert status == 0
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


def test_fanout_delivers_everything_in_order(report: dict[str, Any]) -> None:
    """The fanout run delivers every line to every client, none lost or reordered, with latencies."""
    (point,) = report["fanout"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert (point["clients"], point["senders"]) == (10, 2)
    assert run["sent"] > 0 and run["received"] == run["sent"] * 10
    assert run["lost"] == 0 and run["reordered"] == 0 and run["gaps"] == 0
    assert run["delivered_per_s"] > 0 and 0 < run["p50_ms"] <= run["p99_ms"] <= run["max_ms"] * 1.02
    assert run["server_log_errors"] == 0 and run["error_lines"] == 0
    assert "--rate 0" in run["server_command"] and "--join-history" not in run["server_command"]
    assert point["summary"]["median"]["ours"]["runs_ok"] == 1


def test_idle_reports_rss_per_connection(report: dict[str, Any]) -> None:
    """The idle run keeps all 20 clients connected and reports the server's RSS per connection."""
    (point,) = report["idle"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert run["still_connected"] == 20
    assert run["rss_before_kib"] > 0 and run["rss_after_kib"] > 0 and run["rss_per_conn_kib"] is not None


def test_connect_registers_every_connection(report: dict[str, Any]) -> None:
    """The connect run registers all 50 connections and reports a rate."""
    (point,) = report["connect"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert run["registered"] == 50 and run["failed"] == 0 and run["conn_per_s"] > 0


def test_history_answers_from_a_filled_database(report: dict[str, Any]) -> None:
    """The history run fills 1000 messages and times complete /history 500 answers."""
    history = report["history"]
    assert history["ok"], history
    assert history["messages"] == 1000 and history["requests"] >= 1
    assert history["answer_bytes"] > 500 * 40 and history["p50_ms"] > 0


def test_report_says_what_was_run(report: dict[str, Any]) -> None:
    """The report names the command, the machine and the servers it ran."""
    assert report["command"].startswith("python -m bench run --quick")
    assert report["servers_run"] == ["ours"] and report["machine"]["nproc"] >= 1


def test_plot_draws_a_png(report: dict[str, Any], tmp_path: Path) -> None:
    """The plot command draws a PNG from a report (when matplotlib, the bench extra, is installed)."""
    pytest.importorskip("matplotlib")
    from bench.plot import plot

    output = plot(report, tmp_path / "fanout.png")
    assert output.read_bytes().startswith(b"\x89PNG")


def test_irc_door_fanout_delivers_everything_in_order() -> None:
    """The same quick fanout through our IRC door (ours-irc): every line to every client, in order."""
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(["run", "--quick", "--scenario", "fanout", "--servers", "ours-irc"])
    assert status == 0
    (point,) = json.loads(out.getvalue())["fanout"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert run["sent"] > 0 and run["received"] == run["sent"] * 10
    assert run["lost"] == 0 and run["reordered"] == 0 and run["gaps"] == 0
    assert run["server_log_errors"] == 0 and run["error_lines"] == 0
    assert "--irc tcp:0:interface=127.0.0.1" in run["server_command"] and "--rate 0" in run["server_command"]


def test_websocket_door_fanout_and_idle() -> None:
    """
    The quick fanout through our WebSocket door (ours-ws: HTTP upgrade, masked frames, JSON):
    every line to every client, in order; and the idle run keeps its WebSockets open.
    """
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(["run", "--quick", "--scenario", "fanout,idle", "--servers", "ours-ws"])
    assert status == 0
    report = json.loads(out.getvalue())
    (point,) = report["fanout"]
    (run,) = point["runs"]
    assert run["ok"], run
    assert run["sent"] > 0 and run["received"] == run["sent"] * 10
    assert run["lost"] == 0 and run["reordered"] == 0 and run["gaps"] == 0
    assert run["server_log_errors"] == 0 and run["error_lines"] == 0 and run["disconnected"] == 0
    assert "--web tcp:0:interface=127.0.0.1" in run["server_command"] and "--no-web" not in run["server_command"]
    (idle,) = report["idle"]
    (run,) = idle["runs"]
    assert run["ok"], run
    assert run["still_connected"] == 20 and run["error_lines"] == 0 and run["rss_per_conn_kib"] is not None


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
