"""
Helpers for end-to-end tests: the real ``twistd -n chat`` in a subprocess on 127.0.0.1 port 0,
and blocking socket clients whose every wait is bounded.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: The longest any single wait in an end-to-end test may take, in seconds.
WAIT = 10.0

_LISTENING = re.compile(r"chat server listening on 127\.0\.0\.1:(\d+)")


def twistd_command() -> list[str]:
    """Return the command that runs the installed twistd with this interpreter."""
    script = Path(sys.executable).parent / "twistd"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


#: The listening port L{ServerProcess} asks for unless told otherwise.
PLAIN_PORT = "tcp:0:interface=127.0.0.1"


class ServerProcess:
    """
    A running ``twistd -n chat`` listening on 127.0.0.1 at an ephemeral port: by default plain
    TCP; C{port} may give another endpoint description (say C{ssl:0:interface=127.0.0.1:...}),
    as long as it listens on 127.0.0.1.
    """

    def __init__(
        self,
        workdir: Path,
        extra_args: Sequence[str] = (),
        log_name: str = "server.log",
        port: str = PLAIN_PORT,
    ) -> None:
        self.workdir = workdir
        self.port_description = port
        self.log_path = workdir / log_name
        self.db_path = workdir / "chat.sqlite3"
        command = twistd_command() + [
            "-n", "--pidfile=", "--logfile", str(self.log_path), "chat",
            "--port", port, "--db", str(self.db_path),
            *extra_args,
        ]
        self.process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL)
        self.port = int(self.wait_for_log(_LISTENING).group(1))

    def log_text(self) -> str:
        """Return what the server has logged so far."""
        return self.log_path.read_text("utf-8") if self.log_path.exists() else ""

    def wait_for_log(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """Wait (bounded) until the server's log matches C{pattern}; return the match."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            match = pattern.search(self.log_text())
            if match:
                return match
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_text()}")
            time.sleep(0.05)
        raise AssertionError(f"server log never matched {pattern.pattern!r}:\n{self.log_text()}")

    def stop(self) -> int:
        """Stop the server with SIGTERM (bounded wait, then SIGKILL) and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(WAIT)
        return self.process.returncode

    def kill(self) -> int:
        """Kill the server with SIGKILL, as a crash would, and return its exit status (bounded wait)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(WAIT)
        return self.process.returncode

    def restart(self, extra_args: Sequence[str] = ()) -> ServerProcess:
        """
        Start another server on the same work directory and database (stop or kill this one
        first); it logs to a file of its own, so its listening line is not confused with ours.
        """
        number = 2
        while (self.workdir / f"server-{number}.log").exists():
            number += 1
        log_name = f"server-{number}.log"
        return ServerProcess(self.workdir, extra_args, log_name=log_name, port=self.port_description)


class SocketClient:
    """
    A raw TCP client, as ``nc`` would be: send lines, read CRLF-ended lines with a deadline.
    With C{tls} (an C{ssl.SSLContext}) it speaks TLS to 127.0.0.1 instead, as ``openssl s_client``.
    """

    def __init__(self, port: int, tls: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self._buffer = b""
        self.seen: list[str] = []

    def send(self, data: str | bytes) -> None:
        """Send C{data} as it is (a str is UTF-8 encoded)."""
        self.sock.sendall(data.encode("utf-8") if isinstance(data, str) else data)

    def read_line(self, deadline: float) -> str | None:
        """Return the next line (CRLF checked and removed), or None when the server closed."""
        while b"\r\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; lines so far: {self.seen}")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\r\n", 1)
        line = raw.decode("utf-8")
        self.seen.append(line)
        return line

    def expect(self, wanted: str | Callable[[str], bool]) -> list[str]:
        """Read lines until one contains C{wanted} (or satisfies it); return the lines read."""
        matches = wanted if callable(wanted) else (lambda line: wanted in line)
        deadline = time.monotonic() + WAIT
        lines = []
        while True:
            line = self.read_line(deadline)
            if line is None:
                raise AssertionError(f"server closed before {wanted!r}; lines: {self.seen}")
            lines.append(line)
            if matches(line):
                return lines

    def expect_closed(self) -> list[str]:
        """Read until the server closes the connection; return the lines read before that."""
        deadline = time.monotonic() + WAIT
        lines = []
        while (line := self.read_line(deadline)) is not None:
            lines.append(line)
        return lines

    def login(self, nick: str) -> None:
        """Answer the greeting with C{nick} and wait for the welcome."""
        self.expect("nickname")
        self.send(nick + "\n")
        self.expect(f"{nick} joined lobby")

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


def run_client(port: int, stdin: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    """Run C{python -m chat_twisted.client} against C{port} with C{stdin} piped in (bounded)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "chat_twisted.client", "--port", str(port), *args],
        input=stdin, capture_output=True, timeout=WAIT * 2, env=env,
    )


def rss_kib(pid: int) -> int:
    """Return the resident set size (VmRSS) of process C{pid} in KiB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text("ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user plus system) process C{pid} has used so far, from /proc (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text("ascii")
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ", field 3 (state) is fields[0]
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(
    check: Callable[[], object], what: str, seen: Callable[[], object] | None = None, timeout: float = WAIT
) -> object:
    """Poll C{check} (bounded) until it returns something true; return that. C{seen} says what there was instead."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f"; found {seen()!r}" if seen else ""))
        time.sleep(0.05)


class VirtualDisplay:
    """An Xvfb server on a free display number with an authority file of its own (so Tk's send works)."""

    def __init__(self, workdir: Path) -> None:
        # One per test session: a Tk interpreter keeps its X connection until it is garbage
        # collected, and Xlib ends the whole process if that X server goes away first.
        self.authority = workdir / "Xauthority"
        self.authority.touch()
        number = next(n for n in range(90, 190) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                      and not Path(f"/tmp/.X{n}-lock").exists())
        self.name = f":{number}"
        subprocess.run([shutil.which("xauth") or "xauth", "-f", str(self.authority), "add", self.name, ".", secrets.token_hex(16)],
                       check=True, capture_output=True, timeout=WAIT)
        self.process = subprocess.Popen(
            [shutil.which("Xvfb") or "Xvfb", self.name, "-screen", "0", "1024x700x24", "-auth", str(self.authority), "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: Path(f"/tmp/.X11-unix/X{number}").exists() or self.process.poll() is not None, "Xvfb")
        if self.process.poll() is not None:
            raise AssertionError(f"Xvfb {self.name} exited with {self.process.returncode}")
        self.environ = {"DISPLAY": self.name, "XAUTHORITY": str(self.authority)}

    def stop(self) -> None:
        """Stop the X server (bounded wait)."""
        self.process.terminate()
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(WAIT)
