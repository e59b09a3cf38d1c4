"""
The cluster comparison's server: our ``twistd chat`` as one or more processes sharing one chat
through PostgreSQL (``--db postgresql://...``) and Redis (``--bus redis://... --bus-prefix``), or
as one plain process (SQLite and the in-process bus, the default) for reference.

L{ClusterServer} is a L{Server} to the runner and to L{bench.scenarios.run_fanout}: for each run
it makes a fresh PostgreSQL database (``chat_bench_<random>``) and a fresh bus prefix
(``chat-bench-<random>:``), starts its processes one after the other (each pinned to its own
CPUs by a L{ClusterPinning}) and waits until each listens and, on the bus, has linked to the
others; the load generator spreads its clients over their ports (L{ClusterServer.ports}). It
adds up its processes' CPU time and memory, reads Redis's CPU time (``INFO cpu``) and that of
the PostgreSQL backends serving its database (/proc) for the report, and after the stop drops
the database and deletes the prefix's keys from Redis (its counters and the processes' leases).

L{RedisProbe} is the few Redis commands this needs, over a plain socket; L{unavailable} says why
PostgreSQL or Redis cannot be had (None when both answer).
"""

from __future__ import annotations

import secrets
import socket
import string
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.pinning import ClusterPinning, Pinning, cluster_pinning_problem
from bench.servers import OurServer, Server, cpu_seconds

#: Where the scratch databases are made (a maintenance database on the PostgreSQL server).
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
#: The Redis the processes share.
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
#: What a process logs once its bus is linked to the other processes (chat_twisted/peers.py).
LINKED = "linked to the other processes as process"
TIMEOUT = 10.0  # seconds for any one PostgreSQL or Redis call of the bench


class RedisProbe:
    """
    One connection to Redis for the bench's own few commands (INFO, SCAN, UNLINK, PING), in
    RESP over a blocking socket with a timeout; owns that socket until L{close}.
    """

    def __init__(self, url: str = DEFAULT_REDIS, timeout: float = TIMEOUT) -> None:
        parts = urlsplit(url)
        self.url = url
        self.sock = socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), timeout=timeout)
        self._buffer = b""
        if parts.password:
            self.call("AUTH", parts.password)
        database = (parts.path or "/0").strip("/") or "0"
        if database != "0":
            self.call("SELECT", database)

    def call(self, *words: str) -> Any:
        """Send one command; return its reply (str, int, list or None); raise RuntimeError on an error reply."""
        encoded = [word.encode() for word in words]
        self.sock.sendall(b"".join([f"*{len(encoded)}\r\n".encode()]
                                   + [b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded]))
        return self._reply()

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size + 2:]
        return data

    def _reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"Redis: {rest.decode(errors='replace')}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exactly(size).decode(errors="replace")
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._reply() for _ in range(size)]
        raise RuntimeError(f"Redis sent something that is not RESP: {line[:80]!r}")

    def info(self, section: str) -> dict[str, str]:
        """``INFO section`` as a dict."""
        text = self.call("INFO", section) or ""
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))

    def cpu_seconds(self) -> float:
        """Redis's CPU time so far, every thread (``used_cpu_sys`` + ``used_cpu_user``)."""
        cpu = self.info("cpu")
        return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])

    def delete_prefix(self, prefix: str) -> int:
        """Delete every key that starts with C{prefix} (SCAN, then UNLINK); return how many."""
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix) + "*"
        cursor, deleted = "0", 0
        while True:
            cursor, keys = self.call("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            if keys:
                deleted += int(self.call("UNLINK", *keys))
            if cursor == "0":
                return deleted

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()


def database_url(admin: str, name: str) -> str:
    """The URL of database C{name} on the server of the maintenance URL C{admin}."""
    return urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


def create_database(admin: str) -> str:
    """Create a fresh database (``chat_bench_<random>``) on C{admin}'s server; return its name."""
    import psycopg

    name = f"chat_bench_{secrets.token_hex(6)}"
    with psycopg.connect(admin, autocommit=True, connect_timeout=int(TIMEOUT)) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return name


def drop_database(admin: str, name: str) -> None:
    """Drop database C{name}, with any connection still open to it."""
    import psycopg

    with psycopg.connect(admin, autocommit=True, connect_timeout=int(TIMEOUT)) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def backend_pids(admin: str, name: str) -> list[int]:
    """The process ids of the PostgreSQL backends connected to database C{name}."""
    import psycopg

    with psycopg.connect(admin, autocommit=True, connect_timeout=int(TIMEOUT)) as connection:
        rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return sorted(int(row[0]) for row in rows)


def unavailable(postgres: str = DEFAULT_POSTGRES, redis: str = DEFAULT_REDIS) -> str | None:
    """None if PostgreSQL (C{postgres}, a maintenance database) and Redis (C{redis}) both answer, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    parts = urlsplit(postgres)
    try:
        with psycopg.connect(postgres, connect_timeout=5):
            pass
    except Exception as error:  # noqa: BLE001  # any failure means: no PostgreSQL to use
        return f"no PostgreSQL at {parts.hostname}:{parts.port or 5432} ({one_line_error(error)})"
    try:
        probe = RedisProbe(redis, timeout=5)
        try:
            if probe.call("PING") != "PONG":
                return f"Redis at {redis} does not answer PING"
        finally:
            probe.close()
    except (OSError, RuntimeError) as error:
        return f"no Redis at {redis} ({one_line_error(error)})"
    return None


def one_line_error(error: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:200]


class ClusterServer(Server):
    """
    Our server as C{processes} processes on one PostgreSQL database and one Redis bus prefix
    (C{shared}), or as one plain process (not C{shared}: SQLite in the workdir, no bus). Owns its
    processes (L{OurServer} members, each with its own directory, log and CPUs), the scratch
    database and the bus prefix, all made by L{start} and removed by L{stop}. Its figures are
    its processes' together: CPU time and memory add up, any process's error line or bad exit
    fails the run, and L{facts} records each process's command, exit and threads' CPUs.
    """

    protocol = "line"

    def __init__(self, name: str, processes: int, shared: bool, pinning: ClusterPinning,
                 postgres: str = DEFAULT_POSTGRES, redis: str = DEFAULT_REDIS) -> None:
        super().__init__(None)
        self.name = name
        self.processes = processes
        self.shared = shared
        self.placement = pinning
        self.postgres = postgres
        self.redis = redis
        self.members: list[OurServer] = []
        self.database: str | None = None
        self.prefix: str | None = None
        self.redis_pid: int | None = None
        self.cleanup_problems: list[str] = []
        self.keys_deleted: int | None = None
        self._backends: list[int] | None = None
        self._redis_probe: RedisProbe | None = None
        self._stopped = False

    def describe_setup(self) -> str:
        """What this setup is, in words."""
        if not self.shared:
            return "one process, SQLite, in-process bus (the default)"
        return f"{self.processes} process{'es' if self.processes > 1 else ''}, PostgreSQL + Redis"

    @property
    def ports(self) -> list[int]:
        """Each process's port, in order (the load generator alternates between them)."""
        return [member.port for member in self.members]

    @property
    def pid(self) -> int:
        """The first process's id."""
        return self.members[0].pid

    def start(self, workdir: Path, clients: int) -> None:
        """Make the database and prefix (when shared), start every process and wait until each is linked."""
        db: str | None = None
        extra: tuple[str, ...] = ()
        if self.shared:
            self.database = create_database(self.postgres)
            db = database_url(self.postgres, self.database)
            self.prefix = f"chat-bench-{secrets.token_hex(6)}:"
            extra = ("--bus", self.redis, "--bus-prefix", self.prefix)
        for index in range(self.processes):
            member = OurServer(self.placement.server_cpus(index), db_path=db, extra=extra)
            member.name = f"{self.name}-{string.ascii_lowercase[index]}"
            self.members.append(member)
            where = workdir / string.ascii_lowercase[index]
            where.mkdir(exist_ok=True)
            member.start(where, clients)
            if self.shared:
                member._wait_for(lambda m=member: m.port if LINKED in m.log_text() else None)  # type: ignore[misc]
        self.command = self.members[0].command
        self.port = self.members[0].port

    def stop(self) -> int | None:
        """
        Stop every process (see L{Server.stop}), then drop the database and delete the prefix's
        keys (a failure there is recorded in C{cleanup_problems} and fails the run); return the
        first bad exit status, else the first process's. Calling it again changes nothing.
        """
        statuses = [member.stop() for member in self.members]
        if not self._stopped:
            self._stopped = True
            self.threads_cpus = {}
            for member in self.members:
                for cpus, count in member.threads_cpus.items():
                    self.threads_cpus[cpus] = self.threads_cpus.get(cpus, 0) + count
            stops = [member.stop_s for member in self.members if member.stop_s is not None]
            self.stop_s = max(stops) if stops else None
            self._cleanup()
        bad = [status for member, status in zip(self.members, statuses) if member.exit_problem()]
        return bad[0] if bad else (statuses[0] if statuses else None)

    def _cleanup(self) -> None:
        if self._redis_probe is not None:
            self._redis_probe.close()
            self._redis_probe = None
        if self.database:
            try:
                drop_database(self.postgres, self.database)
            except Exception as error:  # noqa: BLE001  # reported with the run
                self.cleanup_problems.append(f"could not drop database {self.database}: {one_line_error(error)}")
        if self.prefix:
            try:
                probe = RedisProbe(self.redis)
                try:
                    self.keys_deleted = probe.delete_prefix(self.prefix)
                finally:
                    probe.close()
            except (OSError, RuntimeError) as error:
                self.cleanup_problems.append(f"could not delete Redis keys {self.prefix}*: {one_line_error(error)}")

    def exit_status(self) -> int | None:
        """The first bad exit status of a process, else the first process's (None if none started)."""
        bad = [member.exit_status() for member in self.members if member.exit_problem()]
        return bad[0] if bad else (self.members[0].exit_status() if self.members else None)

    def exit_problem(self) -> str | None:
        """What went wrong with any process's exit, or with the cleanup; None if nothing did."""
        problems = [f"{member.name}: {member.exit_problem()}" for member in self.members if member.exit_problem()]
        problems += self.cleanup_problems
        return "; ".join(problems) or None

    def log_text(self) -> str:
        """Every process's logs, one after the other."""
        return "".join(member.log_text() for member in self.members)

    def log_problems(self) -> list[str]:
        """Every process's error lines, each marked with the process's name."""
        return [f"[{member.name}] {line}" for member in self.members for line in member.log_problems()]

    def log_warnings(self) -> list[str]:
        """Every process's warning lines (``#warn]``: not a failure, but worth reading), marked."""
        return [f"[{member.name}] {line}" for member in self.members
                for line in member.log_text().splitlines() if "#warn]" in line]

    def shown_command(self) -> str:
        """Every process's command line, joined by `` & ``."""
        return " & ".join(member.shown_command() for member in self.members)

    def cpu_seconds_each(self) -> list[float | None]:
        """Each process's CPU time so far."""
        return [member.cpu_seconds() for member in self.members]

    def cpu_seconds(self) -> float | None:
        """All processes' CPU time so far, added up (None if one cannot be read)."""
        each = self.cpu_seconds_each()
        return None if any(value is None for value in each) else sum(v for v in each if v is not None)

    def rss_kib(self) -> int | None:
        """All processes' resident memory, added up."""
        return _total(member.rss_kib() for member in self.members)

    def status_kib(self, field: str) -> int | None:
        """A kB field of every process's /proc status, added up."""
        return _total(member.status_kib(field) for member in self.members)

    def side_cpu_seconds(self) -> dict[str, float | None]:
        """
        Redis's CPU time so far (``INFO cpu``: the whole Redis server, whoever else uses it) and that of
        the PostgreSQL backends serving this database (the ones connected at the first call; /proc);
        nothing for a plain process.
        """
        if not self.shared or self.database is None:
            return {}
        redis: float | None = None
        try:
            if self._redis_probe is None:
                self._redis_probe = RedisProbe(self.redis)
                self.redis_pid = int(self._redis_probe.info("server").get("process_id", 0)) or None
            redis = self._redis_probe.cpu_seconds()
        except (OSError, RuntimeError, ValueError, KeyError):
            redis = None
        if self._backends is None:
            try:
                self._backends = backend_pids(self.postgres, self.database)
            except Exception:  # noqa: BLE001  # the figure is then missing, not the run
                self._backends = []
        postgres = _total_float(cpu_seconds(pid) for pid in self._backends) if self._backends else None
        return {"redis": redis, "postgres": postgres}

    def pinned(self, pinning: Pinning) -> bool:
        """Whether the server processes were pinned (by this setup's own placement)."""
        return self.placement.pinned

    def pinning_problem(self, pinning: Pinning, loadgen_cpus: Iterable[str]) -> str | None:
        """None if every process's threads and the load generator ran where this setup's placement put them."""
        return cluster_pinning_problem(self.placement, [member.threads_cpus for member in self.members],
                                       loadgen_cpus)

    def facts(self) -> dict[str, Any]:
        """Each process's command, exit, stop time and threads' CPUs; the database, prefix and cleanup."""
        warnings = self.log_warnings()
        return {
            "setup": self.describe_setup(),
            "processes": len(self.members),
            "server_commands": [member.shown_command() for member in self.members],
            "server_exits": [member.exit_status() for member in self.members],
            "server_stop_s_each": [member.stop_s for member in self.members],
            "server_threads_cpus_each": [member.threads_cpus for member in self.members],
            "database": self.database,
            "bus_prefix": self.prefix,
            "redis_pid": self.redis_pid,
            "postgres_backends": self._backends,
            "redis_keys_deleted": self.keys_deleted,
            "cleanup_problems": self.cleanup_problems,
            "server_log_warnings": len(warnings),
            "server_log_warning_first": warnings[0][:300] if warnings else None,
        }


def _total(values: Iterable[int | None]) -> int | None:
    listed = list(values)
    return None if not listed or any(v is None for v in listed) else sum(v for v in listed if v is not None)


def _total_float(values: Iterable[float | None]) -> float | None:
    listed = [v for v in values if v is not None]
    return sum(listed) if listed else None


def setups(processes: int = 2) -> Sequence[tuple[str, int, bool]]:
    """The cluster comparison's setups: (name, processes, shared over PostgreSQL + Redis)."""
    return [("plain", 1, False), ("cluster-1", 1, True), (f"cluster-{processes}", processes, True)]
