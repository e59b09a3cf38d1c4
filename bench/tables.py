"""
Markdown tables of a results file, as pasted into docs/performance.md: ``python -m bench tables
RESULTS.json``. First what the figures were measured with (commit, command, host, pinning), then
one table per scenario. Figures are the medians over the successful rounds, with their spread
(min–max) in brackets when there was more than one; ratios are ours/peer, the median of the
per-round ratios (and, when our IRC or WebSocket door ran, ours-irc/peer or ours-ws/peer in more
columns); "CPU s/M" is the server's CPU seconds per million deliveries. A server with failed runs
says how many, and the failed runs are listed at the end with their reasons. The cluster
comparison has a table of its own (L{cluster_table}): its setups' figures, the Redis hop
(same-process and cross-process latency) and the CPU of Redis and PostgreSQL, then its targets
round by round.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.summary import one_line


def _num(value: Any, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}".replace(",", " ")
    return f"{round(value):,}".replace(",", " ")


def _fig(summary: dict[str, Any], server: str, metric: str, digits: int = 0, scale: float = 1.0) -> str:
    """The median of C{metric} for C{server}, with its spread when the runs differ."""
    middle = summary["median"].get(server, {}).get(metric)
    if middle is None:
        return "–"
    text = _num(middle / scale if scale != 1 else middle, digits)
    spread = summary.get("spread", {}).get(server, {}).get(metric)
    if spread:
        low, high = (_num(v / scale if scale != 1 else v, digits) for v in spread)
        if low != high:
            text += f" ({low}–{high})"
    return text


def _ratio(summary: dict[str, Any], peer: str, metric: str, reference: str = "ours") -> str:
    ratio = summary["ratios"].get(f"{reference}/{peer}", {}).get(metric, {})
    if ratio.get("median") is None:
        return "–"
    pairs = ", ".join(f"{p:.2f}" for p in ratio["pairs"])
    return f"**{ratio['median']:.2f}** ({pairs})"


#: Our other doors: when one ran, the tables add its ratios to every other server.
DOORS = ("ours-irc", "ours-ws")


def _servers(point: dict[str, Any], servers: list[str]) -> list[str]:
    """The servers of C{servers} that took part in the point (those that could)."""
    return [s for s in servers if s in point["summary"]["median"]]


def _name(point: dict[str, Any], server: str) -> str:
    failed = point["summary"]["median"].get(server, {}).get("runs_failed")
    return f"{server} ({failed} failed)" if failed else server


def _cannot(point: dict[str, Any]) -> list[str]:
    return [f"| | {server}: cannot ({why}) |" for server, why in point.get("not_run", {}).items()]


def fanout_table(points: list[dict[str, Any]], servers: list[str], key: str = "senders") -> str:
    """One row per point and server: lines/s, latency, CPU per million deliveries, and the ratios."""
    doors = [door for door in DOORS if door in servers]
    label = "C / S" if key == "senders" else "C / rooms"
    rows = [(f"| {label} | server | delivered M lines/s | p50 ms | p99 ms | p999 ms | max ms "
             "| server CPU | CPU s/M | loadgen CPU | ours/peer lines/s | ours/peer p99 |"
             + "".join(f" {door}/peer lines/s | {door}/peer p99 |" for door in doors)),
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|" + "---|---|" * len(doors)]
    for point in points:
        summary = point["summary"]
        for server in _servers(point, servers):
            offered = point.get("offered_messages_per_s", {}).get(server)
            where = f"{point['clients']} / {point[key]}" + (f" at {_num(offered)}/s" if offered else "")
            rows.append(
                f"| {where} | {_name(point, server)} | {_fig(summary, server, 'delivered_per_s', 3, 1e6)} "
                f"| {_fig(summary, server, 'p50_ms', 1)} | {_fig(summary, server, 'p99_ms', 1)} "
                f"| {_fig(summary, server, 'p999_ms', 1)} | {_fig(summary, server, 'max_ms', 1)} "
                f"| {_fig(summary, server, 'server_cpu_pct')} % | {_fig(summary, server, 'cpu_s_per_m', 2)} "
                f"| {_fig(summary, server, 'loadgen_cpu_pct')} % "
                f"| {'' if server == 'ours' else _ratio(summary, server, 'delivered_per_s')} "
                f"| {'' if server == 'ours' else _ratio(summary, server, 'p99_ms')} |"
                + "".join(f" {'' if server == door else _ratio(summary, server, 'delivered_per_s', door)} "
                          f"| {'' if server == door else _ratio(summary, server, 'p99_ms', door)} |"
                          for door in doors))
        rows += _cannot(point)
    return "\n".join(rows)


def storm_table(points: list[dict[str, Any]], servers: list[str]) -> str:
    """Logins per second in the storm, and the server's CPU per login."""
    rows = ["| N by K | server | logins/s | p50 ms | p99 ms | max ms | server CPU per login | RSS after | ours/peer |",
            "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for point in points:
        summary = point["summary"]
        for server in _servers(point, servers):
            rows.append(f"| {point['connections']} by {point['parallel']} | {_name(point, server)} "
                        f"| {_fig(summary, server, 'conn_per_s')} | {_fig(summary, server, 'p50_ms', 1)} "
                        f"| {_fig(summary, server, 'p99_ms', 1)} | {_fig(summary, server, 'max_ms', 1)} "
                        f"| {_fig(summary, server, 'server_cpu_ms_per_login', 2)} ms "
                        f"| {_fig(summary, server, 'rss_after_kib')} KiB "
                        f"| {'' if server == 'ours' else _ratio(summary, server, 'conn_per_s')} |")
        rows += _cannot(point)
    return "\n".join(rows)


def idle_table(points: list[dict[str, Any]], servers: list[str]) -> str:
    """RSS per idle connection."""
    doors = [door for door in DOORS if door in servers]
    rows = ["| N | server | RSS per connection | RSS before | RSS after | login of all N | ours/peer |"
            + "".join(f" {door}/peer |" for door in doors),
            "|---:|---|---:|---:|---:|---:|---|" + "---|" * len(doors)]
    for point in points:
        summary = point["summary"]
        for server in _servers(point, servers):
            rows.append(
                f"| {point['clients']} | {_name(point, server)} | {_fig(summary, server, 'rss_per_conn_kib', 2)} KiB "
                f"| {_fig(summary, server, 'rss_before_kib')} KiB | {_fig(summary, server, 'rss_after_kib')} KiB "
                f"| {_fig(summary, server, 'login_s', 1)} s "
                f"| {'' if server == 'ours' else _ratio(summary, server, 'rss_per_conn_kib')} |"
                + "".join(f" {'' if server == door else _ratio(summary, server, 'rss_per_conn_kib', door)} |"
                          for door in doors))
        rows += _cannot(point)
    return "\n".join(rows)


def connect_table(points: list[dict[str, Any]], servers: list[str]) -> str:
    """Registered connections per second."""
    rows = ["| server | connections/s | p50 ms | p99 ms | max ms | ours/peer |", "|---|---:|---:|---:|---:|---|"]
    for point in points:
        summary = point["summary"]
        for server in _servers(point, servers):
            rows.append(f"| {_name(point, server)} | {_fig(summary, server, 'conn_per_s')} "
                        f"| {_fig(summary, server, 'p50_ms', 1)} | {_fig(summary, server, 'p99_ms', 1)} "
                        f"| {_fig(summary, server, 'max_ms', 1)} "
                        f"| {'' if server == 'ours' else _ratio(summary, server, 'conn_per_s')} |")
        rows += _cannot(point)
    return "\n".join(rows)


def history_table(history: dict[str, Any]) -> str:
    """/history 500 round trips."""
    if not history.get("ok"):
        return f"history failed: {'; '.join(history.get('why_failed') or [str(history.get('error'))])}"
    return "\n".join([
        "| stored messages | database | server start | requests | first (cold) | p50 | p99 | max | answer |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        (f"| {_num(history['messages'])} | {history['db_mib']} MiB | {history['server_start_s']} s "
         f"| {history['requests']} | {history['first_ms']:.1f} ms | {history['p50_ms']:.1f} ms "
         f"| {history['p99_ms']:.1f} ms | {history['max_ms']:.1f} ms | {_num(history['answer_bytes'])} bytes |"),
    ])


def _pct_list(values: list[float | None] | None) -> str:
    return " + ".join("–" if v is None else f"{v:.0f} %" for v in values or []) or "–"


def cluster_table(point: dict[str, Any]) -> str:
    """
    One row per setup of a cluster point (medians, spreads in brackets), every run's CPU split
    and limit, and the targets round by round.
    """
    summary = point["summary"]
    pinning = point.get("pinning") or {}
    if pinning.get("pinned"):
        cpus = pinning["server_cpus"]
        placed = (f"server process A on CPU {cpus[0]}, B on CPU {cpus[1]} (a one-process setup on A's); "
                  + (f"load generator on CPU {pinning['loadgen_cpus']}" if pinning.get("loadgen_cpus") else
                     "load generator unpinned") + "; Redis and PostgreSQL unpinned (the machine's services)")
    else:
        placed = f"**UNPINNED** ({pinning.get('unpinned_because', 'pinning not recorded')})"
    loop = (f"open loop at {_num(point['offered_per_s'])} lines/s sent in all" if point.get("offered_per_s")
            else f"closed loop, W = {point['window']}")
    lines = [f"C = {point['clients']}, S = {point['senders']}, {loop}; {placed}.", ""]
    lines += [f"- `{name}`: {what}" for name, what in (point.get("setups") or {}).items()]
    lines += ["", "| setup | delivered M lines/s | p50 ms | p99 ms | same-process p50 / p99 ms "
              "| cross-process p50 / p99 ms | cross share | server CPU (least-busy process) | Redis CPU "
              "| PostgreSQL CPU | CPU s/M servers | CPU s/M all | loadgen CPU | machine busy |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for server in _servers(point, list(summary["median"])):
        def fig(metric: str, digits: int = 1, scale: float = 1.0) -> str:
            return _fig(summary, server, metric, digits, scale)

        def pct(metric: str, digits: int = 0) -> str:
            text = fig(metric, digits)
            return text if text == "–" else f"{text} %"

        cross = (f"{fig('cross_p50_ms')} / {fig('cross_p99_ms')}"
                 if summary["median"][server].get("cross_p99_ms") is not None else "–")
        lines.append(
            f"| {_name(point, server)} | {fig('delivered_per_s', 3, 1e6)} | {fig('p50_ms')} | {fig('p99_ms')} "
            f"| {fig('same_p50_ms')} / {fig('same_p99_ms')} | {cross} | {fig('cross_share', 2)} "
            f"| {pct('server_cpu_pct')} ({pct('server_cpu_pct_least')}) "
            f"| {pct('redis_cpu_pct', 1)} | {pct('postgres_cpu_pct', 1)} | {fig('cpu_s_per_m', 2)} "
            f"| {fig('total_cpu_s_per_m', 2)} | {pct('loadgen_cpu_pct')} | {pct('machine_busy_pct')} |")
    lines += ["", "Every run (server CPU per process, and what held it back):", ""]
    for run in point["runs"]:
        state = "ok" if run.get("ok") else f"FAILED ({'; '.join(map(one_line, run.get('why_failed') or []))})"
        if "error" in run:
            lines.append(f"- round {run['round']}, {run['server']}: {state}")
            continue
        lines.append(f"- round {run['round']}, {run['server']}: {_num(run.get('delivered_per_s'))} lines/s, "
                     f"servers {_pct_list(run.get('server_cpu_pct_each'))}, loadgen "
                     f"{_num(run.get('loadgen_cpu_pct'))} %, machine {_num(run.get('machine_busy_pct'))} % "
                     f"(rest {_num(run.get('rest_cpu_pct'))} %), clients per process "
                     f"{run.get('clients_per_port')}, limit: {run.get('limit')}; {state}")
    targets = point.get("targets") or {}
    if targets:
        def ratio(key: str) -> str:
            value = targets.get(key) or {}
            if value.get("median") is None:
                return "–"
            return f"**{value['median']:.2f}** ({', '.join(f'{p:.2f}' for p in value['pairs'])})"

        lines += ["", "| target | per round (median in bold) | verdict |", "|---|---|---|",
                  f"| two processes / one, delivered lines/s (≥ 1.3 where the load generator is not the limit) "
                  f"| {ratio('two_over_one_delivered')}; where both had the servers as the limit: "
                  f"{ratio('two_over_one_delivered_servers_limit')} | {targets.get('throughput_target_1_3x')} |",
                  f"| two processes' cross-process p99 / one process's p99 (≤ 2) "
                  f"| {ratio('cross_p99_over_one_p99')} | {targets.get('latency_target_2x')} |",
                  f"| nothing lost or reordered | lost {targets.get('lost')}, reordered or missing "
                  f"{targets.get('reordered_or_gaps')} | "
                  f"{'met' if targets.get('nothing_lost_or_reordered') else '**not met**'} |",
                  f"| (two processes / one plain process, delivered lines/s) | {ratio('two_over_plain_delivered')} | |"]
    return "\n".join(lines)


def provenance(results: dict[str, Any]) -> str:
    """What the figures were measured with, as a short list."""
    machine = results.get("machine", {})
    pinning = results.get("pinning") or {}
    if pinning.get("pinned"):
        where = f"server on CPU {pinning['server_cpus']}, load generator on CPU {pinning['loadgen_cpus']} (taskset)"
    else:
        where = f"**UNPINNED** ({pinning.get('unpinned_because', 'pinning not recorded')})"
    source = results.get("source") or {}
    settings = results.get("settings", {})
    changed = " (**the tree changed during the run**: the figures may mix versions)" \
        if source.get("changed_during_run") else ""
    lines = [
        f"- commit `{source.get('commit', '?')}`{changed}",
        f"- command `{results.get('command', '?')}`",
        f"- host: {machine.get('nproc')} × {machine.get('cpu')}, {machine.get('mem_gib')} GiB, "
        f"Linux {machine.get('kernel')}, Python {machine.get('python')}",
        f"- {where}; medians of {settings.get('rounds')} round(s), server order rotated each round"
        + ("; the cluster comparison places its processes itself (see its section)" if results.get("cluster") else ""),
    ]
    for name, config in (results.get("server_config") or {}).items():
        extra = f" (configuration: `{config['config_file']}`)" if config.get("config_file") else ""
        lines.append(f"- {name}: `{config['command']}`{extra}")
    return "\n".join(lines)


def failed_list(results: dict[str, Any]) -> str:
    """The failed runs and why, one per line."""
    return "\n".join(f"- {f['scenario']} {f['point']}, {f['server']}, round {f['round']}: "
                     f"{'; '.join(map(one_line, f['why']))}" for f in results.get("failed_runs") or [])


def tables(results: dict[str, Any]) -> str:
    """Every table the results allow, with headings."""
    servers = results["servers_run"]
    parts = ["### What was measured", provenance(results)]
    if results.get("fanout"):
        parts += ["### Fan-out, standard points", fanout_table(results["fanout"], servers)]
    if results.get("sweep"):
        parts += ["### Fan-out sweep", fanout_table(results["sweep"], servers)]
    if results.get("rooms"):
        parts += ["### Many rooms (everyone talking in their own room)",
                  fanout_table(results["rooms"], servers, "rooms")]
    if results.get("openloop"):
        parts += ["### Open loop (a fixed send rate below saturation)", fanout_table(results["openloop"], servers)]
    if results.get("storm"):
        parts += ["### Login storm", storm_table(results["storm"], servers)]
    if results.get("idle"):
        parts += ["### Idle clients", idle_table(results["idle"], servers)]
    if results.get("connect"):
        parts += ["### Connections", connect_table(results["connect"], servers)]
    if results.get("history"):
        parts += ["### History", history_table(results["history"])]
    for point in results.get("cluster") or []:
        parts += ["### Two processes over Redis", cluster_table(point)]
    if results.get("cluster_skipped"):
        parts += ["### Two processes over Redis", f"skipped: {results['cluster_skipped']}"]
    if results.get("failed_runs"):
        parts += ["### Failed runs (left out of every figure above)", failed_list(results)]
    return "\n\n".join(parts) + "\n"


def tables_file(path: Path) -> str:
    """Tables of a results JSON file."""
    return tables(json.loads(path.read_text()))
