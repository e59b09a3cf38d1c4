"""
Markdown tables of a results file, as pasted into docs/performance.md: ``python -m bench tables
RESULTS.json``. Figures are the medians over the rounds; ratios are ours/peer, the median of the
per-round ratios (and, when our IRC or WebSocket door ran, ours-irc/peer or ours-ws/peer in more
columns).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}".replace(",", " ")
    return f"{round(value):,}".replace(",", " ")


def _ratio(summary: dict[str, Any], peer: str, metric: str, reference: str = "ours") -> str:
    ratio = summary["ratios"].get(f"{reference}/{peer}", {}).get(metric, {})
    if ratio.get("median") is None:
        return "–"
    pairs = ", ".join(f"{p:.2f}" for p in ratio["pairs"])
    return f"**{ratio['median']:.2f}** ({pairs})"


#: Our other doors: when one ran, the tables add its ratios to every other server.
DOORS = ("ours-irc", "ours-ws")


def fanout_table(points: list[dict[str, Any]], servers: list[str]) -> str:
    """One row per point and server: lines/s, latency, lost/reordered, CPU, and the ratios."""
    doors = [door for door in DOORS if door in servers]
    rows = [("| C / S | server | delivered lines/s | p50 ms | p99 ms | max ms | lost | reordered "
             "| server CPU | loadgen CPU | ours/peer lines/s | ours/peer p99 |"
             + "".join(f" {door}/peer lines/s | {door}/peer p99 |" for door in doors)),
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|" + "---|---|" * len(doors)]
    for point in points:
        summary = point["summary"]
        for server in servers:
            m = summary["median"].get(server, {})
            lost = sum(r.get("lost", 0) for r in point["runs"] if r["server"] == server and r.get("ok"))
            reordered = sum(r.get("reordered", 0) for r in point["runs"] if r["server"] == server and r.get("ok"))
            failed = f" ({m.get('runs_failed')} failed)" if m.get("runs_failed") else ""
            rows.append(
                f"| {point['clients']} / {point['senders']} | {server}{failed} | {_num(m.get('delivered_per_s'))} "
                f"| {_num(m.get('p50_ms'), 1)} | {_num(m.get('p99_ms'), 1)} | {_num(m.get('max_ms'), 1)} "
                f"| {lost} | {reordered} | {_num(m.get('server_cpu_pct'))} % | {_num(m.get('loadgen_cpu_pct'))} % "
                f"| {'' if server == 'ours' else _ratio(summary, server, 'delivered_per_s')} "
                f"| {'' if server == 'ours' else _ratio(summary, server, 'p99_ms')} |"
                + "".join(f" {'' if server == door else _ratio(summary, server, 'delivered_per_s', door)} "
                          f"| {'' if server == door else _ratio(summary, server, 'p99_ms', door)} |"
                          for door in doors))
    return "\n".join(rows)


def idle_table(points: list[dict[str, Any]], servers: list[str]) -> str:
    """RSS per idle connection."""
    doors = [door for door in DOORS if door in servers]
    rows = ["| N | server | RSS per connection | RSS before | RSS after | login of all N | ours/peer |"
            + "".join(f" {door}/peer |" for door in doors),
            "|---:|---|---:|---:|---:|---:|---|" + "---|" * len(doors)]
    for point in points:
        summary = point["summary"]
        for server in servers:
            m = summary["median"].get(server, {})
            rows.append(
                f"| {point['clients']} | {server} | {_num(m.get('rss_per_conn_kib'), 2)} KiB "
                f"| {_num(m.get('rss_before_kib'))} KiB | {_num(m.get('rss_after_kib'))} KiB "
                f"| {_num(m.get('login_s'), 1)} s "
                f"| {'' if server == 'ours' else _ratio(summary, server, 'rss_per_conn_kib')} |"
                + "".join(f" {'' if server == door else _ratio(summary, server, 'rss_per_conn_kib', door)} |"
                          for door in doors))
    return "\n".join(rows)


def connect_table(points: list[dict[str, Any]], servers: list[str]) -> str:
    """Registered connections per second."""
    rows = ["| server | connections/s | p50 ms | p99 ms | max ms | ours/peer |", "|---|---:|---:|---:|---:|---|"]
    for point in points:
        summary = point["summary"]
        for server in servers:
            m = summary["median"].get(server, {})
            rows.append(f"| {server} | {_num(m.get('conn_per_s'))} | {_num(m.get('p50_ms'), 1)} "
                        f"| {_num(m.get('p99_ms'), 1)} | {_num(m.get('max_ms'), 1)} "
                        f"| {'' if server == 'ours' else _ratio(summary, server, 'conn_per_s')} |")
    return "\n".join(rows)


def history_table(history: dict[str, Any]) -> str:
    """/history 500 round trips."""
    if not history.get("ok"):
        return f"history failed: {history.get('error')}"
    return "\n".join([
        "| stored messages | database | server start | requests | first (cold) | p50 | p99 | max | answer |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        (f"| {_num(history['messages'])} | {history['db_mib']} MiB | {history['server_start_s']} s "
         f"| {history['requests']} | {history['first_ms']:.1f} ms | {history['p50_ms']:.1f} ms "
         f"| {history['p99_ms']:.1f} ms | {history['max_ms']:.1f} ms | {_num(history['answer_bytes'])} bytes |"),
    ])


def tables(results: dict[str, Any]) -> str:
    """Every table the results allow, with headings."""
    servers = results["servers_run"]
    parts = []
    if results.get("fanout"):
        parts += ["### Fan-out, standard points", fanout_table(results["fanout"], servers)]
    if results.get("sweep"):
        parts += ["### Fan-out sweep", fanout_table(results["sweep"], servers)]
    if results.get("idle"):
        parts += ["### Idle clients", idle_table(results["idle"], servers)]
    if results.get("connect"):
        parts += ["### Connections", connect_table(results["connect"], servers)]
    if results.get("history"):
        parts += ["### History", history_table(results["history"])]
    return "\n\n".join(parts) + "\n"


def tables_file(path: Path) -> str:
    """Tables of a results JSON file."""
    return tables(json.loads(path.read_text()))
