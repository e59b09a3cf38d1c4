"""
Building and driving the C load generator (``bench/loadgen.c``).

L{build} compiles it with the system C compiler into a cache directory keyed by the source's
hash, so it is built once per change. L{Loadgen} runs one loadgen process (under ``taskset -c``
when given CPUs) and talks to it over its standard input and output (one JSON object per output
line); L{LoadgenGroup} runs several that share one run and adds up their reports. Every report
says which CPUs its process was allowed on (``cpus``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.pinning import taskset_prefix

SOURCE = Path(__file__).with_name("loadgen.c")
STOP_WAIT = 5.0


class LoadgenError(RuntimeError):
    """The load generator failed, timed out, or could not be built."""


def compiler() -> str | None:
    """Return the system C compiler (``$CC``, ``cc``, ``gcc`` or ``clang``), or None if there is none."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def cache_dir() -> Path:
    """Where the compiled load generator is kept: ``$XDG_CACHE_HOME/chat-bench`` or the temp dir."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "chat-bench"
    try:
        path.mkdir(parents=True, exist_ok=True)
        return path
    except OSError:
        return Path(tempfile.gettempdir())


def build() -> Path:
    """Compile loadgen.c (once per version of the source) and return the executable's path."""
    cc = compiler()
    if cc is None:
        raise LoadgenError("no C compiler found (set CC, or install gcc)")
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + cc.encode()).hexdigest()[:16]
    target = cache_dir() / f"loadgen-{digest}"
    if target.exists():
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    command = [cc, "-O2", "-std=gnu11", "-Wall", "-o", str(partial), str(SOURCE)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise LoadgenError(f"{' '.join(command)} failed:\n{done.stderr}")
    partial.replace(target)
    return target


class Loadgen:
    """One running loadgen process; every read has a deadline, and L{stop} always ends it."""

    def __init__(self, executable: Path, args: Sequence[str], stderr_path: Path, cpus: str | None = None) -> None:
        self.command = [*taskset_prefix(cpus), str(executable), *args]
        self._stderr = stderr_path.open("ab")
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr
        )
        self._buffer = b""

    def send(self, line: str) -> None:
        """Write one control line (``go T0`` or ``quit``)."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass

    def read_event(self, timeout: float) -> dict[str, Any]:
        """Return the next JSON line; raise L{LoadgenError} on an error event, exit or timeout."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LoadgenError(f"no answer from the load generator in {timeout:.0f} s")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self.process.wait(STOP_WAIT)
                    raise LoadgenError(f"load generator exited with {self.process.returncode}")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        event: dict[str, Any] = json.loads(line)
        if event.get("event") == "error":
            raise LoadgenError(f"load generator: {event.get('error')} (ready {event.get('ready')}, "
                               f"first problem: {event.get('first_error') or 'none'})")
        return event

    def stop(self) -> None:
        """Close its input, then end it if it does not exit by itself (bounded waits)."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        try:
            self.process.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_WAIT)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._stderr.close()


class LoadgenGroup:
    """
    C{procs} loadgen processes sharing one set of C{clients} clients (each takes a contiguous
    slice); they are started together, told to go together, and their reports are added up.
    """

    def __init__(self, executable: Path, common: Sequence[str], clients: int, procs: int, workdir: Path,
                 cpus: str | None = None) -> None:
        procs = max(1, min(procs, clients))
        self.members: list[Loadgen] = []
        first = 0
        try:
            for index in range(procs):
                count = clients // procs + (1 if index < clients % procs else 0)
                args = [*common, "--clients", str(clients), "--first", str(first), "--count", str(count)]
                self.members.append(Loadgen(executable, args, workdir / f"loadgen-{index}.err", cpus))
                first += count
        except BaseException:
            self.stop()
            raise

    @property
    def command(self) -> list[str]:
        """The first process's command line (the others differ only in --first/--count)."""
        return self.members[0].command

    def wait_ready(self, timeout: float) -> float:
        """Wait until every process has logged its clients in; return the longest login time (s)."""
        deadline = time.monotonic() + timeout
        login = 0.0
        for member in self.members:
            event = member.read_event(max(0.1, deadline - time.monotonic()))
            if event.get("event") != "ready":
                raise LoadgenError(f"expected a ready event, got {event}")
            login = max(login, float(event["login_s"]))
        return login

    def send(self, line: str) -> None:
        """Send one control line to every process."""
        for member in self.members:
            member.send(line)

    def results(self, timeout: float) -> list[dict[str, Any]]:
        """Wait for every process's final report."""
        deadline = time.monotonic() + timeout
        return [member.read_event(max(0.1, deadline - time.monotonic())) for member in self.members]

    def stop(self) -> None:
        """Stop every process (bounded)."""
        for member in self.members:
            member.stop()


def merge_histograms(reports: Sequence[dict[str, Any]], key: str) -> dict[int, int]:
    """Add up the sparse histograms C{key} (lists of [bucket, count]) of several reports."""
    merged: dict[int, int] = {}
    for report in reports:
        for bucket, count in report.get(key, []):
            merged[bucket] = merged.get(bucket, 0) + count
    return merged


def bucket_bounds(bucket: int, sub_bits: int) -> tuple[int, int]:
    """The [low, high) range in ns of histogram bucket C{bucket} (see bucket_of in loadgen.c)."""
    sub = 1 << sub_bits
    if bucket < sub:
        return bucket, bucket + 1
    shift = bucket // sub - 1
    low = (sub + bucket % sub) << shift
    return low, low + (1 << shift)


def percentile_ns(histogram: dict[int, int], p: float, sub_bits: int) -> float | None:
    """The p-th percentile (0-100) of a histogram, as the middle of the bucket it falls in."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = max(1, math.ceil(p / 100 * total))
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            low, high = bucket_bounds(bucket, sub_bits)
            return (low + high) / 2
    return None
