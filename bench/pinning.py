"""
Where the benchmark's processes run: the server on its CPUs, the load generator on others.

Each server is started as ``taskset -c SERVER_CPUS COMMAND`` and each load generator as
``taskset -c LOADGEN_CPUS loadgen ...``; a thread inherits its process's CPUs, so the server's
helper threads (SQLite's, Twisted's thread pool) stay on the server's CPUs. The bench's own
process, which mostly sleeps, moves to the load generator's CPUs for the run. When ``taskset``
is missing, only one CPU is available, or ``--no-pin`` asks for it, everything runs unpinned and
the report says so and why (L{Pinning.reason}). L{pinning_problem} checks, after each run, that
every server thread and every load generator process was where it was put.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Pinning:
    """The ``taskset -c`` lists of the server and the load generator, or None and why not pinned."""

    server: str | None
    loadgen: str | None
    reason: str | None = None  # why unpinned (None when pinned)

    @property
    def pinned(self) -> bool:
        """Whether the runs are pinned."""
        return self.server is not None and self.loadgen is not None

    def as_dict(self) -> dict[str, Any]:
        """What the report records."""
        return {"pinned": self.pinned, "server_cpus": self.server, "loadgen_cpus": self.loadgen,
                "unpinned_because": self.reason}


def parse_cpus(text: str) -> frozenset[int]:
    """A ``taskset -c`` / Cpus_allowed_list list (``0``, ``0-2,5``) as a set; ValueError if malformed."""
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        low, dash, high = part.partition("-")
        first, last = int(low), int(high) if dash else int(low)
        if first < 0 or last < first:
            raise ValueError(f"bad CPU range {part!r}")
        cpus.update(range(first, last + 1))
    if not cpus:
        raise ValueError(f"no CPU in {text!r}")
    return frozenset(cpus)


def plan(server: str, loadgen: str, wanted: bool = True, taskset: str | None = None,
         allowed: Iterable[int] | None = None) -> Pinning:
    """
    The pinning for a run: C{server} and C{loadgen} CPU lists when C{wanted}, C{taskset} is
    found (default: looked up on PATH) and at least two CPUs are C{allowed} (default: this
    process's affinity); otherwise unpinned, with the reason. Raises ValueError when the lists
    are malformed, overlap, or name a CPU that is not available.
    """
    if not wanted:
        return Pinning(None, None, "--no-pin was given")
    taskset = taskset if taskset is not None else shutil.which("taskset")
    if not taskset:
        return Pinning(None, None, "taskset is not installed (util-linux)")
    usable = frozenset(allowed if allowed is not None else os.sched_getaffinity(0))
    if len(usable) < 2:
        return Pinning(None, None, f"only one CPU is available ({', '.join(map(str, sorted(usable)))})")
    server_set, loadgen_set = parse_cpus(server), parse_cpus(loadgen)
    if server_set & loadgen_set:
        raise ValueError(f"the server's CPUs ({server}) and the load generator's ({loadgen}) overlap")
    missing = (server_set | loadgen_set) - usable
    if missing:
        raise ValueError(f"CPU {', '.join(map(str, sorted(missing)))} is not available "
                         f"(this process may use {', '.join(map(str, sorted(usable)))})")
    return Pinning(server, loadgen)


def pinning_problem(pinning: Pinning, server_threads: Mapping[str, int], loadgen_cpus: Iterable[str]) -> str | None:
    """
    None if every server thread (C{server_threads}: {allowed CPUs: thread count}, read just
    before the stop) and every load generator process (C{loadgen_cpus}: their allowed CPUs, as
    they reported them) ran where C{pinning} put them; else what was out of place. Unpinned runs
    have no problem here: the report marks them unpinned.
    """
    if not pinning.pinned:
        return None
    assert pinning.server is not None and pinning.loadgen is not None
    want_server, want_loadgen = parse_cpus(pinning.server), parse_cpus(pinning.loadgen)
    for cpus, threads in sorted(server_threads.items()):
        if parse_cpus(cpus) != want_server:
            return f"{threads} server thread(s) allowed on CPUs {cpus}, not {pinning.server}"
    for cpus in loadgen_cpus:
        if not cpus or parse_cpus(cpus) != want_loadgen:
            return f"a load generator allowed on CPUs {cpus or '?'}, not {pinning.loadgen}"
    return None


def taskset_prefix(cpus: str | None) -> list[str]:
    """``taskset -c CPUS`` as the start of a command line, or nothing when unpinned."""
    return ["taskset", "-c", cpus] if cpus is not None else []
