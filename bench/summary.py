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
                detail = f" (not delivered when the drain ended: {ended}, after {run.get('drain_s')} s)"
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
