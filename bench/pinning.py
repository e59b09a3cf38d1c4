"""
Where the benchmark's processes run: the server on its CPUs, the load generator on others.

Each server is started as ``taskset -c SERVER_CPUS COMMAND`` and each load generator as
``taskset -c LOADGEN_CPUS loadgen ...``; a thread inherits its process's CPUs, so the server's
helper threads (SQLite's, Twisted's thread pool) stay on the server's CPUs. The bench's own
process, which mostly sleeps, moves to the load generator's CPUs for the run. When ``taskset``
is missing, only one CPU is available, or ``--no-pin`` asks for it, everything runs unpinned and
the report says so and why (L{Pinning.reason}). L{pinning_problem} checks, after each run, that
every server thread and every load generator process was where it was put.

The cluster comparison (L{ClusterPinning}, L{cluster_plan}) places its processes differently:
two server processes cannot each have a core and leave one to the load generator on a machine
of two, so each server process gets its own CPUs (``--cluster-cpus 0/1``: process A on CPU 0,
B on CPU 1; a one-process setup uses A's) and the load generator runs unpinned by default,
sharing the cores with them, with Redis and PostgreSQL (which the bench never pins: they are
the machine's services) and with the kernel; L{cluster_pinning_problem} checks that too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
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


@dataclass(frozen=True)
class ClusterPinning:
    """
    Where the cluster comparison's processes run: server process i on C{servers[i]} (a
    ``taskset -c`` list; a one-process setup uses C{servers[0]}), the load generator on
    C{loadgen}, or, when C{loadgen} is None, unpinned: anywhere in C{usable}, sharing the cores
    with the servers. C{servers} is None when nothing is pinned, and C{reason} says why.
    """

    servers: tuple[str, ...] | None
    loadgen: str | None
    usable: tuple[int, ...]  # the CPUs the bench may use: an unpinned process may run on all of them
    reason: str | None = None

    @property
    def pinned(self) -> bool:
        """Whether the server processes are pinned."""
        return self.servers is not None

    def server_cpus(self, index: int) -> str | None:
        """The CPUs of server process C{index} (from 0), or None when unpinned."""
        return None if self.servers is None else self.servers[index]

    def as_dict(self) -> dict[str, Any]:
        """What the report records."""
        return {"pinned": self.pinned, "server_cpus": list(self.servers) if self.servers else None,
                "loadgen_cpus": self.loadgen, "loadgen_unpinned": self.loadgen is None,
                "usable_cpus": list(self.usable), "unpinned_because": self.reason,
                "shared_cores": ("the load generator, Redis and PostgreSQL run unpinned, on the same cores as "
                                 "the server processes" if self.loadgen is None else
                                 "Redis and PostgreSQL run unpinned, on the same cores as the others")}


def cluster_plan(servers: str, loadgen: str | None, processes: int, wanted: bool = True,
                 taskset: str | None = None, allowed: Iterable[int] | None = None) -> ClusterPinning:
    """
    The cluster comparison's placement: C{servers} is one ``taskset -c`` list per server process,
    separated by ``/`` (``0/1``), C{loadgen} the load generator's list or None (unpinned). Unpinned
    altogether, with the reason, when not C{wanted}, without C{taskset} (default: looked up on
    PATH) or with fewer CPUs C{allowed} (default: this process's affinity) than C{processes}.
    Raises ValueError when a list is malformed, there are fewer lists than C{processes}, two
    lists overlap, or a CPU is not available.
    """
    usable = frozenset(allowed if allowed is not None else os.sched_getaffinity(0))
    everywhere = tuple(sorted(usable))
    if not wanted:
        return ClusterPinning(None, None, everywhere, "--no-pin was given")
    taskset = taskset if taskset is not None else shutil.which("taskset")
    if not taskset:
        return ClusterPinning(None, None, everywhere, "taskset is not installed (util-linux)")
    if len(usable) < processes:
        return ClusterPinning(None, None, everywhere,
                              f"{processes} server processes and only {len(usable)} CPU(s) available")
    lists = [part.strip() for part in servers.split("/") if part.strip()]
    if len(lists) < processes:
        raise ValueError(f"{processes} server processes need {processes} CPU lists separated by '/', got {servers!r}")
    sets = [parse_cpus(text) for text in lists[:processes]]
    named = [*sets, parse_cpus(loadgen)] if loadgen else sets
    for index, one in enumerate(named):
        for other in named[index + 1:]:
            if one & other:
                raise ValueError(f"CPU lists {servers!r}{f' and {loadgen!r}' if loadgen else ''} overlap")
    missing = frozenset().union(*named) - usable
    if missing:
        raise ValueError(f"CPU {', '.join(map(str, sorted(missing)))} is not available "
                         f"(this process may use {', '.join(map(str, everywhere))})")
    return ClusterPinning(tuple(lists[:processes]), loadgen, everywhere)


def cluster_pinning_problem(pinning: ClusterPinning, threads_each: Sequence[Mapping[str, int]],
                            loadgen_cpus: Iterable[str]) -> str | None:
    """
    None if every thread of server process i (C{threads_each[i]}: {allowed CPUs: thread count})
    ran on C{pinning.server_cpus(i)} and every load generator on C{pinning.loadgen}, or, when the
    plan leaves it unpinned, on every usable CPU; else what was out of place.
    """
    if not pinning.pinned:
        return None
    for index, threads in enumerate(threads_each):
        want = pinning.server_cpus(index)
        assert want is not None
        for cpus, count in sorted(threads.items()):
            if parse_cpus(cpus) != parse_cpus(want):
                return f"{count} thread(s) of server process {index + 1} allowed on CPUs {cpus}, not {want}"
    want_loadgen = parse_cpus(pinning.loadgen) if pinning.loadgen else frozenset(pinning.usable)
    for cpus in loadgen_cpus:
        if not cpus or parse_cpus(cpus) != want_loadgen:
            where = pinning.loadgen or f"all of {','.join(map(str, pinning.usable))} (unpinned)"
            return f"a load generator allowed on CPUs {cpus or '?'}, not {where}"
    return None
