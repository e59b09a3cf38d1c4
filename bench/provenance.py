"""
What a result was measured with, so that a figure can be reproduced: the commit of the working
tree (``-dirty`` when ``git status --porcelain`` lists anything, with the paths it lists), the
exact command line, and the host (CPU count and model, the CPUs this process may use, memory,
kernel, Python, Twisted, SQLite, the C compiler). The configuration of every server is recorded
by the runner (the command line that started it; configuration files it wrote).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import loadgen

REPO = Path(__file__).resolve().parent.parent


def commit_mark(head: str | None, porcelain: str) -> dict[str, Any]:
    """
    The commit record from C{head} (``git rev-parse HEAD``, None outside a repository) and the
    output of ``git status --porcelain``: C{commit} is the hash, with ``-dirty`` when the status
    lists anything (a change, a staged file, an untracked file).
    """
    paths = [line[3:] for line in porcelain.splitlines() if line.strip()]
    dirty = bool(paths)
    name = head or "unknown"
    return {"commit": f"{name}-dirty" if dirty else name, "head": head, "dirty": dirty, "dirty_paths": paths}


def commit(repo: Path = REPO) -> dict[str, Any]:
    """
    The commit record of the working tree at C{repo} (see L{commit_mark}), with a C{fingerprint}
    of the tree's state: a hash of the commit, ``git status --porcelain`` and ``git diff HEAD``,
    so that two records tell whether the tree changed in between (an edit made while the bench
    ran; untracked files count by name only).
    """
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)

    try:
        head = git("rev-parse", "HEAD")
        status = git("status", "--porcelain")
    except OSError:  # no git
        return {**commit_mark(None, ""), "dirty": None, "note": "git is not installed"}
    if head.returncode != 0:
        return {**commit_mark(None, ""), "dirty": None, "note": head.stderr.strip()[:300]}
    diff = subprocess.run(["git", "-C", str(repo), "diff", "HEAD", "--binary"], capture_output=True, check=False)
    digest = hashlib.sha256(head.stdout.encode() + status.stdout.encode() + diff.stdout).hexdigest()[:16]
    return {**commit_mark(head.stdout.strip(), status.stdout), "fingerprint": digest}


def changed(start: dict[str, Any], end: dict[str, Any]) -> bool:
    """Whether the working tree changed between two L{commit} records (a new commit, or an edit)."""
    return start.get("fingerprint") != end.get("fingerprint") or start.get("head") != end.get("head")


def command_line(argv: Sequence[str]) -> dict[str, str]:
    """The bench command (``python -m bench`` + C{argv}) and the process's own command line as run."""
    return {
        "command": shlex.join(["python", "-m", "bench", *argv]),
        "invocation": shlex.join(getattr(sys, "orig_argv", sys.argv)),
        "cwd": os.getcwd(),
    }


def host() -> dict[str, Any]:
    """What the figures were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor())
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    memory = next((line.split()[1] for line in meminfo.splitlines() if line.startswith("MemTotal")), None)
    cc = loadgen.compiler()
    cc_version = (subprocess.run([cc, "--version"], capture_output=True, text=True, check=False).stdout.split("\n")[0]
                  if cc else None)
    try:
        import twisted

        twisted_version: str | None = twisted.__version__
    except ImportError:
        twisted_version = None
    return {
        "nproc": os.cpu_count(), "cpu": model, "usable_cpus": sorted(os.sched_getaffinity(0)),
        "mem_gib": round(int(memory) / 2**20, 1) if memory else None,
        "kernel": platform.release(), "python": platform.python_version(), "twisted": twisted_version,
        "sqlite": sqlite3.sqlite_version, "cc": cc_version, "loadavg_start": os.getloadavg(),
    }
