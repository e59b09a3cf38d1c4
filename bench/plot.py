"""
The fan-out plot: delivered lines/s and p99 latency against room size, one line per server, from
the sweep of a results file (or its standard fanout points when it has no sweep). Needs matplotlib
(``pip install '.[bench]'``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

COLOURS = {"ours": "tab:blue", "ours-irc": "tab:purple", "ours-ws": "tab:cyan", "threaded": "tab:orange",
           "inspircd": "tab:green"}


def _series(points: list[dict[str, Any]], server: str, metric: str) -> tuple[list[int], list[float], list[float],
                                                                                list[float]]:
    """x, median, min, max of C{metric} for C{server} over the points (successful runs only)."""
    xs, mids, lows, highs = [], [], [], []
    for point in points:
        values = [run[metric] for run in point["runs"]
                  if run["server"] == server and run.get("ok") and run.get(metric) is not None]
        middle = point["summary"]["median"].get(server, {}).get(metric)
        if not values or middle is None:
            continue
        xs.append(point["clients"])
        mids.append(middle)
        lows.append(middle - min(values))
        highs.append(max(values) - middle)
    return xs, mids, lows, highs


def plot(results: dict[str, Any], output: Path) -> Path:
    """Draw the plot for C{results} (a ``python -m bench run`` report) into C{output} (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    points = results.get("sweep") or results.get("fanout") or []
    if not points:
        raise ValueError("the results have no fanout or sweep points to plot")
    servers = results["servers_run"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    for server in servers:
        colour = COLOURS.get(server)
        xs, mids, lows, highs = _series(points, server, "delivered_per_s")
        if xs:
            left.errorbar(xs, [m / 1e6 for m in mids], yerr=[[v / 1e6 for v in lows], [v / 1e6 for v in highs]],
                          marker="o", capsize=3, label=server, color=colour)
        xs, mids, lows, highs = _series(points, server, "p99_ms")
        if xs:
            right.errorbar(xs, mids, yerr=[lows, highs], marker="o", capsize=3, label=server, color=colour)
    senders = ", ".join(f"C={p['clients']}: S={p['senders']}" for p in points)
    left.set_title("delivered lines/s (all recipients counted)")
    left.set_ylabel("million lines/s")
    right.set_title("latency p99, send to receipt")
    right.set_ylabel("ms")
    right.set_yscale("log")
    right.yaxis.set_major_formatter(ScalarFormatter())
    for axis in (left, right):
        axis.set_xscale("log")
        axis.set_xlabel("clients in the room (C)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend()
    left.set_ylim(bottom=0)
    fig.suptitle(f"Fan-out, W={points[0]['window']} lines in flight per sender ({senders}); "
                 f"medians of {results['settings']['rounds']} rounds, bars min-max", fontsize=9)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output


def plot_file(results_path: Path, output: Path) -> Path:
    """Read a results JSON file and plot it."""
    return plot(json.loads(results_path.read_text()), output)
