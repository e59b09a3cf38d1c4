"""
The servers the benchmark measures, each started fresh for every run on 127.0.0.1 and stopped
by the caller in a ``finally``:

- L{OurServer}: ``twistd -n chat`` from this working tree, as users run it (defaults on, history
  kept, a fresh database per run), with flood control off (``--rate 0``) and, only when the run
  needs more than the default allows, a larger ``--max-clients``.
- L{OurIrcServer}: the same ``twistd -n chat`` with its IRC door open (``--irc``); the load
  generator speaks IRC to that door.
- L{OurWebServer}: the same ``twistd -n chat`` with its web site open (``--web``, instead of
  ``--no-web``); the load generator speaks the JSON protocol over a WebSocket to its ``/ws``.
- L{ThreadedServer}: ``bench/baselines/threaded.py``, the origin's design.
- L{InspircdServer}: InspIRCd (when installed), with a configuration written by the bench that
  lifts its flood limits, listens on 127.0.0.1 only and does no DNS or ident lookups.

Each knows the protocol the load generator must speak to it, which scenarios it can take part in
(L{Server.cannot}), and can report its process's CPU time and resident memory from /proc. Given
C{cpus} (a ``taskset -c`` list), it starts under ``taskset -c CPUS``, so that the process and
every thread it ever starts (SQLite's, Twisted's thread pool) stay on those CPUs; L{Server.stop}
reads every thread's allowed CPUs just before it stops the process, to prove it. L{Server.stop}
also remembers how the process ended, L{Server.exit_problem} says whether that was badly, and
L{Server.log_problems} finds the error lines in everything the server logged.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from bench.pinning import Pinning, pinning_problem, taskset_prefix

REPO = Path(__file__).resolve().parent.parent
START_WAIT = 30.0  # longest wait for a server to listen
STOP_WAIT = 20.0  # SIGTERM, then SIGKILL after this many seconds
#: ``twistd chat``'s default --max-clients; the bench raises it only for runs that need more.
OUR_DEFAULT_MAX_CLIENTS = 10_000
#: Lines of a Twisted log (ours, the threaded baseline's output) that mean something went wrong: a
#: traceback, an unhandled error (in a Deferred or a callback), or an event logged at error or
#: critical level (``[namespace#error]``, ``[namespace#critical]``).
ERROR_PATTERN = re.compile(r"Traceback|Unhandled|#error\]|#critical\]|CRITICAL|Fatal Python error")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all its threads (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def status_kib(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/PID/status (VmRSS, VmHWM, Threads...), or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def thread_cpus(pid: int) -> dict[str, int]:
    """The CPUs every thread of process C{pid} may run on: {Cpus_allowed_list: threads}, or {}."""
    seen: dict[str, int] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return seen
    for task in tasks:
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith("Cpus_allowed_list:"):
                    cpus = line.split(":", 1)[1].strip()
                    seen[cpus] = seen.get(cpus, 0) + 1
        except OSError:
            continue  # the thread ended meanwhile
    return seen


def exit_problem(ending: str | None, status: int | None, clean: frozenset[int]) -> str | None:
    """
    None if a server that L{Server.stop} ended with C{ending} and exit C{status} stopped cleanly
    (our SIGTERM, then an exit status in C{clean}); else what went wrong, in words.
    """
    if ending is None:
        return None  # never stopped (never started)
    if ending == "exited by itself":
        return f"exited by itself during the run (status {status})"
    if ending == "sigkill":
        return f"did not exit within {STOP_WAIT:.0f} s of SIGTERM; killed"
    if status in clean:
        return None
    if status is not None and status < 0:
        return f"died of signal {signal.Signals(-status).name} after our SIGTERM"
    return f"exit status {status} after our SIGTERM"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for servers that cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def python_env() -> dict[str, str]:
    """The environment for Python servers: this working tree first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def twistd_command() -> list[str]:
    """Return the command that runs twistd with this interpreter."""
    script = Path(sys.executable).parent / "twistd"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


class Server:
    """
    A server process under test: started by L{start}, always stopped with L{stop}. Owns its
    process, the logs it writes (every one of them is scanned for errors), and what L{stop} saw.
    """

    name = ""
    protocol = ""  # what the load generator speaks to it: line, threaded, irc or ws
    #: Scenarios this server cannot take part in, and why (the report says so instead of a figure).
    cannot_do: ClassVar[dict[str, str]] = {}
    #: Exit statuses that mean "stopped cleanly by our SIGTERM" (a negative status: killed by that signal).
    clean_exits: ClassVar[frozenset[int]] = frozenset({0, -signal.SIGTERM})
    error_pattern: ClassVar[re.Pattern[str]] = ERROR_PATTERN

    def __init__(self, cpus: str | None = None) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.cpus = cpus  # a taskset -c list, or None: unpinned
        self.port = 0
        self.command: list[str] = []
        self.log_path: Path | None = None  # where its standard output and error go
        self.log_paths: list[Path] = []  # every log it writes, that one included
        self.config_text: str | None = None  # a configuration file the bench wrote for it, if any
        self.ending: str | None = None  # how it ended: "sigterm", "sigkill" (after STOP_WAIT) or "exited by itself"
        self.threads_cpus: dict[str, int] = {}  # at the stop: {allowed CPUs: threads}
        self.stop_s: float | None = None  # seconds from our SIGTERM to its exit
        self._log_file: Any = None

    @classmethod
    def cannot(cls, scenario: str) -> str | None:
        """None if this server can take part in C{scenario}, else why not."""
        return cls.cannot_do.get(scenario)

    @property
    def pid(self) -> int:
        """The server's process id."""
        assert self.process is not None
        return self.process.pid

    def start(self, workdir: Path, clients: int) -> None:
        """Start the server in C{workdir}, ready for C{clients} clients, and wait until it listens."""
        raise NotImplementedError

    def _spawn(self, command: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        """Start C{command} (under ``taskset -c`` when pinned), its output to NAME.log in C{workdir}."""
        self.command = taskset_prefix(self.cpus) + command
        self.log_path = workdir / f"{self.name}.log"
        if self.log_path not in self.log_paths:
            self.log_paths.append(self.log_path)
        self.ending = None
        self._log_file = self.log_path.open("ab")
        self.process = subprocess.Popen(self.command, cwd=workdir, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, env=env)

    def log_text(self) -> str:
        """What the server has written to its logs so far (all of them, one after the other)."""
        return "".join(path.read_text("utf-8", "replace") for path in self.log_paths if path.exists())

    def _wait_for(self, ready: Callable[[], int | None]) -> int:
        """Poll C{ready} (bounded) until it returns the port; fail early if the process died."""
        assert self.process is not None
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            port = ready()
            if port:
                return port
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen within {START_WAIT:.0f} s:\n{self.log_text()[-3000:]}")

    def stop(self) -> int | None:
        """
        Read every thread's allowed CPUs, then SIGTERM, a bounded wait, then SIGKILL; remember how
        it ended (L{ending}); return the exit status (None if never started). Calling it again
        changes nothing.
        """
        if self.process is None:
            return None
        if self.ending is None:
            if self.process.poll() is None:
                self.threads_cpus = thread_cpus(self.process.pid)
                self.process.send_signal(signal.SIGTERM)
                self.ending = "sigterm"
                signalled = time.monotonic()
                try:
                    self.process.wait(STOP_WAIT)
                except subprocess.TimeoutExpired:
                    self._dump_stacks()
                    self.process.kill()
                    self.ending = "sigkill"
                    self.process.wait(STOP_WAIT)
                self.stop_s = round(time.monotonic() - signalled, 2)
            else:
                self.ending = "exited by itself"
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.process.returncode

    def _dump_stacks(self) -> None:
        """Ask a server that will not stop for its threads' stacks (ours writes them to stderr on SIGUSR2)."""
        if self.process is None or not self.name.startswith("ours"):
            return
        self.process.send_signal(signal.SIGUSR2)
        try:
            self.process.wait(1.0)
        except subprocess.TimeoutExpired:
            pass

    @property
    def ports(self) -> list[int]:
        """Every port the load generator spreads its clients over (one server: its port)."""
        return [self.port]

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far."""
        return cpu_seconds(self.pid)

    def cpu_seconds_each(self) -> list[float | None]:
        """CPU time so far of each of the server's processes (one here)."""
        return [self.cpu_seconds()]

    def side_cpu_seconds(self) -> dict[str, float | None]:
        """CPU time so far of the services the server relies on (none here; see bench.cluster)."""
        return {}

    def exit_status(self) -> int | None:
        """The exit status of the stopped process (None if never started)."""
        return self.process.returncode if self.process else None

    def pinned(self, pinning: Pinning) -> bool:
        """Whether this server's runs were pinned (by the runner's C{pinning} here)."""
        return pinning.pinned

    def pinning_problem(self, pinning: Pinning, loadgen_cpus: Iterable[str]) -> str | None:
        """None if every thread of the server and every load generator ran where C{pinning} put them."""
        return pinning_problem(pinning, self.threads_cpus, loadgen_cpus)

    def facts(self) -> dict[str, Any]:
        """More that a run of this server records, after the stop (nothing here)."""
        return {}

    def rss_kib(self) -> int | None:
        """The server's resident memory now (VmRSS)."""
        return status_kib(self.pid, "VmRSS")

    def status_kib(self, field: str) -> int | None:
        """Another kB field of the server's /proc status (VmHWM: its peak RSS)."""
        return status_kib(self.pid, field)

    def log_problems(self) -> list[str]:
        """The lines of its logs that show an error (a traceback, an unhandled error, error level)."""
        return [line for line in self.log_text().splitlines() if self.error_pattern.search(line)]

    def log_errors(self) -> int:
        """How many error lines the server logged."""
        return len(self.log_problems())

    def exit_problem(self) -> str | None:
        """None if the server was stopped by our SIGTERM and exited cleanly, else what went wrong."""
        if self.process is None:
            return None
        return exit_problem(self.ending, self.process.returncode, self.clean_exits)

    def shown_command(self) -> str:
        """The command line, as a shell would take it."""
        return shlex.join(self.command)


class OurServer(Server):
    """
    ``twistd -n chat`` from this working tree (PYTHONPATH), as users run it, with --rate 0. The
    load generator connects to the door whose C{listening} line the log shows (the line door here).
    """

    name = "ours"
    protocol = "line"
    listening = re.compile(r"chat server listening on 127\.0\.0\.1:(\d+)")
    doors: tuple[str, ...] = ("--no-web",)  # options that open further doors (the line door is always open)

    def __init__(self, cpus: str | None = None, db_path: Path | str | None = None, extra: Sequence[str] = ()) -> None:
        super().__init__(cpus)
        self.db_path = db_path  # a SQLite file or a postgresql:// URL; None: a fresh file in the workdir
        self.extra = tuple(extra)  # more options for ``chat`` (the cluster's --bus, --bus-prefix)

    def start(self, workdir: Path, clients: int) -> None:
        """Start twistd on 127.0.0.1 port 0 with a fresh database in C{workdir} (or C{db_path})."""
        db = self.db_path or workdir / "chat.sqlite3"
        command = twistd_command() + [
            "-n", "--pidfile=", "--logfile", str(workdir / "twistd.log"), "chat",
            "--port", "tcp:0:interface=127.0.0.1", *self.doors, "--db", str(db), "--rate", "0", *self.extra,
        ]
        if clients + 100 > OUR_DEFAULT_MAX_CLIENTS:
            command += ["--max-clients", str(clients + 100)]
        self._spawn(command, workdir, env=python_env())
        self.log_paths.append(workdir / "twistd.log")

        def port() -> int | None:
            match = self.listening.search(self.log_text())
            return int(match.group(1)) if match else None

        self.port = self._wait_for(port)

    @staticmethod
    def describe() -> dict[str, Any]:
        """Which code and interpreter run as "ours" (the commit is the report's provenance)."""
        return {"code": str(REPO / "chat_twisted"), "python": sys.version.split()[0]}


class OurIrcServer(OurServer):
    """
    L{OurServer} with its IRC door open on 127.0.0.1 port 0 as well (``--irc``, flood control off
    there too by the same ``--rate 0``); the load generator speaks IRC to that door, as to InspIRCd.
    """

    name = "ours-irc"
    protocol = "irc"
    listening = re.compile(r"chat IRC listening on 127\.0\.0\.1:(\d+)")
    doors = ("--no-web", "--irc", "tcp:0:interface=127.0.0.1")


class OurWebServer(OurServer):
    """
    L{OurServer} with its web site on 127.0.0.1 port 0 instead of ``--no-web`` (``--web``, flood
    control off there too by the same ``--rate 0``); the load generator opens WebSockets to its
    ``/ws`` and speaks the JSON protocol (docs/websocket.md).
    """

    name = "ours-ws"
    protocol = "ws"
    listening = re.compile(r"chat web listening on 127\.0\.0\.1:(\d+)")
    doors = ("--web", "tcp:0:interface=127.0.0.1")


class ThreadedServer(Server):
    """``python -m bench.baselines.threaded`` on 127.0.0.1 port 0."""

    name = "threaded"
    protocol = "threaded"
    cannot_do = {"rooms": "it has one room and no /join (everyone hears everyone)"}
    listening = re.compile(r"listening on 127\.0\.0\.1:(\d+)")

    def start(self, workdir: Path, clients: int) -> None:
        """Start the threaded baseline and wait until it prints its port."""
        self._spawn([sys.executable, "-m", "bench.baselines.threaded", "--host", "127.0.0.1", "--port", "0"],
                    workdir, env=python_env())

        def port() -> int | None:
            match = self.listening.search(self.log_text())
            return int(match.group(1)) if match else None

        self.port = self._wait_for(port)

    @staticmethod
    def describe() -> dict[str, Any]:
        """What the threaded baseline is."""
        return {"code": "bench/baselines/threaded.py", "python": sys.version.split()[0]}


INSPIRCD_CONFIG = """\
<config format="xml">
<server name="bench.local" description="chat_twisted benchmark peer" network="BenchNet">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="{port}" type="clients">
<connect name="bench" allow="127.0.0.1" maxchans="20" timeout="120" pingfreq="3600"
         hardsendq="67108864" softsendq="67108864" recvq="67108864"
         threshold="1000000000" commandrate="1000000000" fakelag="no"
         localmax="1000000" globalmax="1000000" limit="1000000" maxconnwarn="no"
         resolvehostnames="no" useident="no" usednsbl="no">
<performance softlimit="{sockets}" somaxconn="1024" netbuffersize="65536" clonesonconnect="no" quietbursts="yes">
<path configdir="{dir}" datadir="{dir}" logdir="{dir}">
<pid file="{dir}/inspircd.pid">
<files motd="{dir}/motd.txt">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/inspircd-events.log">
<dns server="127.0.0.1" timeout="1">
<options prefixquit="Quit: " syntaxhints="no" announcets="yes" hostintopic="yes" defaultmodes="nt">
<security hideserver="" userstats="Pu" customversion="" maxtargets="20">
<channels users="20" opers="60">
<whowas groupsize="10" maxgroups="100000" maxkeep="3d">
<module name="cap">
<module name="ircv3_echomessage">
"""


class InspircdServer(Server):
    """
    InspIRCd in the foreground (``--nofork``) with a configuration the bench writes: one connect
    class for 127.0.0.1 with flood limits lifted (huge recvq/sendq, threshold and commandrate, no
    fakelag, no clone limits), no DNS or ident lookups, and IRCv3 echo-message, so that senders
    get their own lines back as on the other servers.
    """

    name = "inspircd"
    protocol = "irc"
    #: InspIRCd 3 (the Debian package) ends on SIGTERM through its own handler with
    #: EXIT_STATUS_SIGTERM, which is 10 in its include/exitcodes.h ("Received SIGTERM").
    clean_exits = frozenset({0, 10, -signal.SIGTERM})
    #: Its standard output: start-up notes, and on trouble "ERROR", "[*] Error..." or a crash.
    error_pattern = re.compile(r"(?i)\berror\b|segmentation fault|core dumped|terminate called|Traceback")

    @staticmethod
    def executable() -> str | None:
        """The installed inspircd binary, or None."""
        return shutil.which("inspircd") or next(
            (path for path in ("/usr/sbin/inspircd", "/usr/bin/inspircd") if os.path.exists(path)), None)

    def start(self, workdir: Path, clients: int) -> None:
        """Write the config, start InspIRCd on a free port and wait until it accepts connections."""
        binary = self.executable()
        if binary is None:
            raise RuntimeError("inspircd is not installed")
        import resource

        sockets = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        for attempt in range(3):  # the free port may be taken by someone else before InspIRCd binds it
            self.port = free_port()
            config = workdir / "inspircd.conf"
            self.config_text = INSPIRCD_CONFIG.format(port=self.port, dir=workdir, sockets=sockets)
            config.write_text(self.config_text)
            (workdir / "motd.txt").write_text("chat_twisted benchmark\n")
            command = [binary, "--nofork", f"--config={config}"]
            if os.geteuid() == 0:
                command.append("--runasroot")  # it refuses root otherwise; only ever on 127.0.0.1 here
            self._spawn(command, workdir)
            try:
                self._wait_for(self._accepts)
                return
            except RuntimeError:
                self.stop()
                if attempt == 2:
                    raise
                # Keep the failed attempt's output apart: only the attempt that serves is judged.
                assert self.log_path is not None
                self.log_paths.remove(self.log_path)
                self.log_path.rename(workdir / f"{self.name}-attempt-{attempt + 1}.log")

    def _accepts(self) -> int | None:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return self.port
        except OSError:
            return None

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """The installed version."""
        binary = cls.executable()
        version = (subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout.strip()
                   if binary else None)
        return {"binary": binary, "version": version}


SERVERS: dict[str, type[Server]] = {
    "ours": OurServer, "ours-irc": OurIrcServer, "ours-ws": OurWebServer, "threaded": ThreadedServer,
    "inspircd": InspircdServer,
}
#: Our own servers (the same twistd, reached through different doors): their runs record the command.
OURS = ("ours", "ours-irc", "ours-ws")


def available(name: str) -> str | None:
    """None if server C{name} can run here, else why not."""
    if name not in SERVERS:
        return f"unknown server {name!r} (known: {', '.join(SERVERS)})"
    if name == "inspircd" and InspircdServer.executable() is None:
        return "inspircd is not installed (apt-get install inspircd)"
    return None
