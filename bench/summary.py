"""
Summaries of repeated runs: medians per server, and ratios ours/peer taken pair by pair (the
runs of one round were made back to back, so each ratio compares runs under the same conditions);
when our IRC or WebSocket door ran too, ratios ours-irc/peer or ours-ws/peer as well (ours-irc/ours:
IRC door / line door; ours-ws/ours: WebSocket door / line door).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from bench.servers import OURS


def median(values: Sequence[float | None]) -> float | None:
    """The median of the values that are not None, or None."""
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def summarise(runs: Sequence[dict[str, Any]], servers: Sequence[str], metrics: Sequence[str],
              references: Sequence[str] = OURS) -> dict[str, Any]:
    """
    Medians of C{metrics} per server over the successful runs, and for each of C{references} that
    ran and every other server the ratio reference/peer per round (both runs of that round must
    have succeeded) with its median.
    """
    medians: dict[str, dict[str, float | None]] = {}
    for server in servers:
        ok = [run for run in runs if run["server"] == server and run.get("ok")]
        medians[server] = {metric: median([run.get(metric) for run in ok]) for metric in metrics}
        medians[server]["runs_ok"] = len(ok)
        medians[server]["runs_failed"] = sum(1 for run in runs if run["server"] == server and not run.get("ok"))
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
    return {"median": medians, "ratios": ratios}
