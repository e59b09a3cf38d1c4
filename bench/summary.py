"""
Summaries of repeated runs, and the rules that decide which runs count.

- L{rotation}: the order of the servers in each round, rotated by one from round to round, so
  that no server always runs first (on a cold machine) or right after the same neighbour.
- L{failures}: why a run failed (anything lost, reordered, misrouted or disconnected, an error
  line to a client or in the server's log, a server that exited badly, a process off its CPUs,
  an exception); a failed run is reported with its reasons and left out of every figure.
- L{summarise}: per server, the median of each figure over its successful runs with its spread
  (min–max), and ratios ours/peer taken round by round (the runs of one round were made back to
  back, so each ratio compares runs under the same conditions); when our IRC or WebSocket door
  ran too, ratios ours-irc/peer or ours-ws/peer as well (ours-irc/ours: IRC door / line door;
  ours-ws/ours: WebSocket door / line door).
- L{limit} and L{cluster_targets}: for the cluster comparison, what held a run back (the servers,
  the load generator, or cores shared by everyone), and the issue's targets taken round by round:
  two processes' deliveries over one's, two processes' cross-process p99 over one's p99.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from bench.servers import OURS

#: Counts in a run that must be zero, and what a non-zero one means.
MUST_BE_ZERO = (
    ("lost", "lines lost"),
    ("reordered", "lines reordered or repeated"),
    ("gaps", "lines missing from a sender's sequence"),
    ("misrouted", "lines delivered to another room"),
    ("malformed", "malformed payloads received"),
    ("disconnected", "clients disconnected"),
    ("failed", "connections that never registered"),
    ("error_lines", "error lines sent to clients"),
    ("server_log_errors", "error lines in the server's log"),
)


def rotation(servers: Sequence[str], round_index: int) -> list[str]:
    """The order of C{servers} in round C{round_index} (from 0): the list rotated left by that much."""
    if not servers:
        return []
    shift = round_index % len(servers)
    return [*servers[shift:], *servers[:shift]]


def failures(run: Mapping[str, Any]) -> list[str]:
    """Why C{run} failed, in words (empty: it succeeded)."""
    why = []
    if run.get("error"):
        why.append(str(run["error"]))
    for key, meaning in MUST_BE_ZERO:
        value = run.get(key)
        if isinstance(value, (int, float)) and value != 0:
            detail = ""
            if key == "server_log_errors" and run.get("server_log_first"):
                detail = f" (first: {run['server_log_first']})"
            elif key == "lost" and run.get("drain_end") and run["drain_end"] != ["complete"]:
                ended = ", ".join(run["drain_end"])
                silence = (f"; the longest silence, from the first line on, was {run['longest_silence_ms'] / 1000:.1f} s"
                           if run.get("longest_silence_ms") else "")
                detail = f" (not delivered when the drain ended: {ended}, after {run.get('drain_s')} s{silence})"
            elif key in ("error_lines", "disconnected", "failed") and run.get("first_error"):
                detail = f" (first: {run['first_error']})"
            why.append(f"{value} {meaning}{detail}")
    for key in ("server_exit_problem", "pinning_problem"):
        if run.get(key):
            why.append(f"server {run[key]}" if key == "server_exit_problem" else str(run[key]))
    return why


def one_line(reason: str, limit: int = 300) -> str:
    """A reason on one line for people: a multi-line one (a log tail) as its first and last lines."""
    lines = [line.strip() for line in reason.splitlines() if line.strip()]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} … {lines[-1]}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values that are not None, or None."""
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def spread(values: Sequence[float | None]) -> list[float] | None:
    """[min, max] of the values that are not None, or None."""
    present = [v for v in values if v is not None]
    return [min(present), max(present)] if present else None


def summarise(runs: Sequence[dict[str, Any]], servers: Sequence[str], metrics: Sequence[str],
              references: Sequence[str] = OURS) -> dict[str, Any]:
    """
    Per server, the median and the spread [min, max] of C{metrics} over its successful runs (a
    failed run counts in C{runs_failed} only); and for each of C{references} that ran and every
    other server the ratio reference/peer per round (both runs of that round must have
    succeeded) with its median.
    """
    medians: dict[str, dict[str, float | None]] = {}
    spreads: dict[str, dict[str, list[float] | None]] = {}
    for server in servers:
        ok = [run for run in runs if run["server"] == server and run.get("ok")]
        medians[server] = {metric: median([run.get(metric) for run in ok]) for metric in metrics}
        medians[server]["runs_ok"] = len(ok)
        medians[server]["runs_failed"] = sum(1 for run in runs if run["server"] == server and not run.get("ok"))
        spreads[server] = {metric: spread([run.get(metric) for run in ok]) for metric in metrics}
    ratios: dict[str, dict[str, Any]] = {}
    by_round: dict[tuple[str, int], dict[str, Any]] = {
        (run["server"], run["round"]): run for run in runs if run.get("ok")
    }
    rounds = sorted({run["round"] for run in runs})
    for reference in (r for r in references if r in servers):
        for peer in servers:
            if peer == reference:
                continue
            per_metric: dict[str, Any] = {}
            for metric in metrics:
                pairs = []
                for r in rounds:
                    ours, theirs = by_round.get((reference, r)), by_round.get((peer, r))
                    if ours is None or theirs is None:
                        continue
                    a, b = ours.get(metric), theirs.get(metric)
                    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b:
                        pairs.append(round(a / b, 3))
                per_metric[metric] = {"pairs": pairs, "median": median(pairs)}
            ratios[f"{reference}/{peer}"] = per_metric
    return {"median": medians, "spread": spreads, "ratios": ratios}


#: A process at this share of a core or more had its core (CPU %, 100 = one core).
FULL_CORE_PCT = 90.0


def limit(run: Mapping[str, Any], cpus: int) -> str:
    """
    What held C{run} back, from its CPU figures (C{cpus}: the CPUs the machine gave the bench):
    "load generator" when it used a full core (it has one thread); "servers" when every server
    process had a full core; "shared cores" when the machine was full (at least 90 % of every CPU
    busy) without that, so the servers shared their cores with the load generator, Redis,
    PostgreSQL and the kernel; else "unclear" (idle time left and no process at a full core).
    """
    if (run.get("loadgen_cpu_pct") or 0) >= FULL_CORE_PCT:
        return "load generator"
    each = run.get("server_cpu_pct_each") or []
    if each and all(value is not None and value >= FULL_CORE_PCT for value in each):
        return "servers"
    busy = run.get("machine_busy_pct")
    if busy is not None and busy >= FULL_CORE_PCT * cpus:
        return "shared cores"
    return "unclear"


def _ratios(pairs: list[float]) -> dict[str, Any]:
    return {"pairs": pairs, "median": median(pairs)}


def cluster_targets(runs: Sequence[dict[str, Any]], cpus: int, one: str = "cluster-1", two: str = "cluster-2",
                    plain: str = "plain", open_loop: bool = False) -> dict[str, Any]:
    """
    The targets of the cluster comparison, round by round (the setups of a round ran back to
    back): C{two}'s delivered lines/s over C{one}'s (target: at least 1.3 where the load
    generator is not the limit, that is where L{limit} of both runs is "servers"), C{two}'s
    cross-process p99 over C{one}'s p99 (target: at most 2), and nothing lost or reordered in
    any run (failed runs included). Reported, never asserted. In an C{open_loop} every setup was
    sent the same rate, so there is no throughput verdict.
    """
    ok = {(run["server"], run["round"]): run for run in runs if run.get("ok")}
    rounds = sorted({run["round"] for run in runs})
    per_round, throughput, free, latency, over_plain = [], [], [], [], []
    for number in rounds:
        a, b, c = ok.get((one, number)), ok.get((two, number)), ok.get((plain, number))
        entry: dict[str, Any] = {"round": number, "limit_one": limit(a, cpus) if a else None,
                                 "limit_two": limit(b, cpus) if b else None}
        if a and b and a.get("delivered_per_s") and b.get("delivered_per_s") is not None:
            entry["two_over_one_delivered"] = round(b["delivered_per_s"] / a["delivered_per_s"], 3)
            throughput.append(entry["two_over_one_delivered"])
            if entry["limit_one"] == entry["limit_two"] == "servers":
                free.append(entry["two_over_one_delivered"])
        if a and b and a.get("p99_ms") and b.get("cross_p99_ms") is not None:
            entry["cross_p99_over_one_p99"] = round(b["cross_p99_ms"] / a["p99_ms"], 3)
            latency.append(entry["cross_p99_over_one_p99"])
        if b and c and c.get("delivered_per_s") and b.get("delivered_per_s") is not None:
            entry["two_over_plain_delivered"] = round(b["delivered_per_s"] / c["delivered_per_s"], 3)
            over_plain.append(entry["two_over_plain_delivered"])
        per_round.append(entry)
    counted = [run for run in runs if run["server"] in (one, two, plain)]
    lost = sum(run.get("lost") or 0 for run in counted)
    reordered = sum((run.get("reordered") or 0) + (run.get("gaps") or 0) for run in counted)
    if open_loop:
        throughput_verdict = "not measured: an open loop, every setup sent the same rate"
    elif free:
        throughput_verdict = "met" if (median(free) or 0) >= 1.3 else "not met"
    elif throughput:
        throughput_verdict = ("not measurable here: in no round did both setups run with the servers as the limit "
                              "(see limit_one, limit_two)")
    else:
        throughput_verdict = "no pair of successful runs"
    return {
        "rounds": per_round,
        "two_over_one_delivered": _ratios(throughput),
        "two_over_one_delivered_servers_limit": _ratios(free),
        "two_over_plain_delivered": _ratios(over_plain),
        "cross_p99_over_one_p99": _ratios(latency),
        "lost": lost,
        "reordered_or_gaps": reordered,
        "runs_failed": sum(1 for run in counted if not run.get("ok")),
        "nothing_lost_or_reordered": lost == 0 and reordered == 0,
        "throughput_target_1_3x": throughput_verdict,
        "latency_target_2x": ("met" if (median(latency) or 0) <= 2 else "not met") if latency else "no pair",
    }
