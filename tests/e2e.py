"""
Helpers for end-to-end tests: the real ``twistd -n chat`` in a subprocess on 127.0.0.1 port 0,
and blocking socket clients (the line protocol's, and IRC's) whose every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, Request, TextMessage

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
    as long as it listens on 127.0.0.1. C{twistd_args} go to twistd itself, before C{chat}.
    C{db} is what C{--db} is given: by default the SQLite file C{chat.sqlite3} in C{workdir};
    a C{postgresql://} URL for a server of a cluster (whose processes then need log names of their own).
    """

    def __init__(
        self,
        workdir: Path,
        extra_args: Sequence[str] = (),
        log_name: str = "server.log",
        port: str = PLAIN_PORT,
        twistd_args: Sequence[str] = (),
        db: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.port_description = port
        self.log_path = workdir / log_name
        self.db_path = workdir / "chat.sqlite3"
        self.db = str(self.db_path) if db is None else db
        # The web door listens on 8080 by default: tests ask for it explicitly (--web tcp:0:...).
        web = [] if "--web" in extra_args else ["--no-web"]
        command = twistd_command() + [
            "-n", "--pidfile=", "--logfile", str(self.log_path), *twistd_args, "chat",
            "--port", port, "--db", self.db,
            *web, *extra_args,
        ]
        self.process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL)
        self.port = int(self.wait_for_log(_LISTENING).group(1))

    def log_text(self) -> str:
        """Return what the server has logged so far."""
        return self.log_path.read_text("utf-8") if self.log_path.exists() else ""

    def wait_for_log(self, pattern: re.Pattern[str]) -> re.Match[str]:
        """Wait (bounded) until the server's log matches C{pattern}; return the match."""

        def matched() -> re.Match[str] | None:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log_text()}")
            return pattern.search(self.log_text())

        return wait_until(matched, f"the server log to match {pattern.pattern!r}", seen=self.log_text)  # type: ignore[return-value]

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
        return ServerProcess(self.workdir, extra_args, log_name=log_name, port=self.port_description, db=self.db)


class SocketClient:
    """
    A raw TCP client, as ``nc`` would be: send lines, read CRLF-ended lines with a deadline.
    With C{tls} (an C{ssl.SSLContext}) it speaks TLS instead, as ``openssl s_client``. It
    connects to C{host}, which is 127.0.0.1 unless told otherwise (and only ever on this machine).
    """

    def __init__(self, port: int, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname=host)
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

    def expect(self, wanted: str | Callable[[str], bool], timeout: float = WAIT) -> list[str]:
        """
        Read lines until one contains C{wanted} (or satisfies it), for at most C{timeout} seconds
        (longer than L{WAIT} where a fault is allowed longer); return the lines read.
        """
        matches = wanted if callable(wanted) else (lambda line: wanted in line)
        deadline = time.monotonic() + timeout
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


_TAG_VALUE_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


def _unescape_tag_value(value: str) -> str:
    """A message tag's value with the IRCv3 escapes undone (an unknown escape is the character itself)."""
    out = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            out.append(_TAG_VALUE_ESCAPES.get(escaped, escaped))
        else:
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class IrcMessage:
    """One IRC line, parsed: its IRCv3 tags, source (prefix), command (upper case) and parameters."""

    line: str
    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def nick(self) -> str | None:
        """The nick of the source (C{nick!user@host}), or the server's name, or None without a source."""
        return None if self.source is None else self.source.split("!", 1)[0]

    @property
    def last(self) -> str:
        """The last parameter (usually the text), or an empty string without parameters."""
        return self.params[-1] if self.params else ""


def parse_irc(line: str) -> IrcMessage:
    """Parse one IRC line (without its CRLF): C{[@tags] [:source] COMMAND [params] [:trailing]}."""
    rest = line
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw_tags, _, rest = rest[1:].partition(" ")
        for item in filter(None, raw_tags.split(";")):
            key, _, value = item.partition("=")
            tags[key] = _unescape_tag_value(value)
        rest = rest.lstrip(" ")
    source = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    head, separator, trailing = rest.partition(" :")
    words = head.split()
    if not words:
        raise ValueError(f"no command in IRC line {line!r}")
    params = words[1:] + ([trailing] if separator else [])
    return IrcMessage(line=line, command=words[0].upper(), params=tuple(params), source=source, tags=tags)


class IrcClient(SocketClient):
    """
    A raw IRC client on L{SocketClient}: send IRC lines, read them parsed, register (with
    capabilities, a server password, SASL PLAIN), join, talk. With C{answer_pings} it answers
    the server's PINGs as it reads (they stay in C{seen}). Every wait is bounded by L{WAIT}.
    """

    def __init__(
        self, port: int, tls: ssl.SSLContext | None = None, host: str = "127.0.0.1", answer_pings: bool = True
    ) -> None:
        super().__init__(port, tls, host)
        self.answer_pings = answer_pings
        self.nick: str | None = None
        #: The capabilities the server offered (CAP LS), each with its value ("" if none).
        self.caps_offered: dict[str, str] = {}
        #: The capabilities the server acknowledged (CAP ACK).
        self.caps_enabled: set[str] = set()

    def read_line(self, deadline: float) -> str | None:
        """Return the next line, as L{SocketClient.read_line}, after answering any PING before it."""
        while True:
            line = super().read_line(deadline)
            if line is None or not self.answer_pings or "PING" not in line:
                return line
            message = parse_irc(line)
            if message.command != "PING":
                return line
            self.send_line("PONG" + (f" :{message.last}" if message.params else ""))

    def send_line(self, line: str) -> None:
        """Send one IRC line, adding its CRLF."""
        self.send(line + "\r\n")

    def read_message(self, deadline: float) -> IrcMessage | None:
        """Return the next message, parsed, or None when the server closed."""
        line = self.read_line(deadline)
        return None if line is None else parse_irc(line)

    def expect_message(self, wanted: str | Callable[[IrcMessage], bool]) -> list[IrcMessage]:
        """
        Read messages until one has the command (or numeric) C{wanted}, or satisfies it; return
        the messages read, the match last.
        """
        matches = wanted if callable(wanted) else (lambda message: message.command == wanted.upper())
        deadline = time.monotonic() + WAIT
        messages = []
        while True:
            message = self.read_message(deadline)
            if message is None:
                raise AssertionError(f"server closed before {wanted!r}; lines: {self.seen}")
            messages.append(message)
            if matches(message):
                return messages

    def register(
        self,
        nick: str,
        user: str | None = None,
        password: str | None = None,
        caps: Iterable[str] = (),
        sasl: tuple[str, str] | None = None,
    ) -> list[IrcMessage]:
        """
        Register as C{nick} (PASS C{password} first if given): with C{caps} or C{sasl}, negotiate
        (CAP LS 302, CAP REQ of C{caps} and, with C{sasl}, C{sasl}; then SASL PLAIN as C{sasl}'s
        account and password, which must succeed; CAP END). Wait for the welcome (001); return
        the messages read up to it.
        """
        wanted = list(caps) + (["sasl"] if sasl is not None and "sasl" not in caps else [])
        if wanted:
            self.send_line("CAP LS 302")
        if password is not None:
            self.send_line(f"PASS {password}")
        self.send_line(f"NICK {nick}")
        self.send_line(f"USER {user or nick} 0 * :{nick}")
        messages: list[IrcMessage] = []
        if wanted:
            messages += self.list_caps()
            messages += self.request_caps(wanted)
            if sasl is not None:
                account, secret = sasl
                messages += self.authenticate(account, secret)
                if messages[-1].command != "903":
                    raise AssertionError(f"SASL PLAIN as {account} failed: {messages[-1].line}")
            self.send_line("CAP END")
        messages += self.expect_message("001")
        self.nick = messages[-1].params[0]
        return messages

    def list_caps(self) -> list[IrcMessage]:
        """Read the server's (possibly multiline) CAP LS answer into L{caps_offered}; return the messages."""
        messages = []
        while True:
            messages += self.expect_message(lambda m: m.command == "CAP" and len(m.params) >= 3 and m.params[1] == "LS")
            for item in messages[-1].last.split():
                name, _, value = item.partition("=")
                self.caps_offered[name] = value
            if messages[-1].params[2] != "*":
                return messages

    def request_caps(self, caps: Iterable[str]) -> list[IrcMessage]:
        """CAP REQ C{caps} at once; wait for the ACK (added to L{caps_enabled}) or NAK; return the messages."""
        self.send_line("CAP REQ :" + " ".join(caps))
        messages = self.expect_message(lambda m: m.command == "CAP" and len(m.params) >= 3 and m.params[1] in ("ACK", "NAK"))
        if messages[-1].params[1] == "ACK":
            self.caps_enabled.update(cap.lstrip("-") for cap in messages[-1].last.split() if not cap.startswith("-"))
        return messages

    def authenticate(self, account: str, password: str) -> list[IrcMessage]:
        """
        SASL PLAIN as C{account} with C{password} (the sasl capability enabled first); return the
        messages read up to the outcome, last: 903 on success, else 902, 904, 905, 906 or 907.
        """
        self.send_line("AUTHENTICATE PLAIN")
        messages = self.expect_message(lambda m: m.command == "AUTHENTICATE" or m.command in _SASL_OUTCOMES)
        if messages[-1].command != "AUTHENTICATE":
            return messages
        payload = base64.b64encode(f"\0{account}\0{password}".encode("utf-8")).decode("ascii")
        for start in range(0, len(payload), 400):
            self.send_line(f"AUTHENTICATE {payload[start:start + 400]}")
        if len(payload) % 400 == 0:
            self.send_line("AUTHENTICATE +")
        messages += self.expect_message(lambda m: m.command in _SASL_OUTCOMES)
        return messages

    def join(self, channel: str) -> list[IrcMessage]:
        """JOIN C{channel}; wait for the end of its names (366); return the messages read."""
        self.send_line(f"JOIN {channel}")
        return self.expect_message(lambda m: m.command == "366" and len(m.params) >= 2 and m.params[1] == channel)

    def privmsg(self, target: str, text: str) -> None:
        """Send C{text} to C{target} (a channel or a nick)."""
        self.send_line(f"PRIVMSG {target} :{text}")

    def expect_privmsg(self, sender: str, target: str, text: str) -> list[IrcMessage]:
        """Read until a PRIVMSG from C{sender} to C{target} of C{text} arrives; return the messages read."""
        return self.expect_message(
            lambda m: m.command == "PRIVMSG" and m.nick == sender and m.params == (target, text)
        )

    def quit(self, message: str = "bye") -> list[str]:
        """QUIT with C{message}; read until the server closes; return the lines read."""
        self.send_line(f"QUIT :{message}")
        return self.expect_closed()


#: The numerics that end a SASL exchange: 903 success; 902, 904-907 failures.
_SASL_OUTCOMES = frozenset({"902", "903", "904", "905", "906", "907"})


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


#: What the server logs when its web door (the page and its WebSocket) listens.
WEB_LISTENING = re.compile(r"chat web listening on 127\.0\.0\.1:(\d+)")

#: The web listener an end-to-end test asks for (ServerProcess passes --no-web unless given --web).
WEB_PORT = "tcp:0:interface=127.0.0.1"


def web_port(server: ServerProcess) -> int:
    """The port of C{server}'s web door (started with C{--web ...}), read from its log (bounded wait)."""
    return int(server.wait_for_log(WEB_LISTENING).group(1))


class WebSocketClient:
    """
    A blocking client of the web door's WebSocket (wsproto over a socket), as a page of the
    server's own origin: JSON messages out and in, every wait bounded.
    """

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self._ws = WSConnection(ConnectionType.CLIENT)
        host = f"127.0.0.1:{port}"
        self._received: list[dict[str, object]] = []
        self._text: list[str] = []
        self.closed = False
        self.seen: list[dict[str, object]] = []
        self.sock.sendall(self._ws.send(Request(host=host, target="/ws", extra_headers=[(b"Origin", f"http://{host}".encode())])))
        self.accepted = False
        deadline = time.monotonic() + WAIT
        while not self.accepted and not self.closed:
            self._read(deadline)

    def send_json(self, message: dict[str, object]) -> None:
        """Send C{message} as one text message."""
        self.sock.sendall(self._ws.send(TextMessage(json.dumps(message))))

    def _read(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out; messages so far: {self.seen}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        self._ws.receive_data(data or None)
        for event in self._ws.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    message = json.loads("".join(self._text))
                    self._text.clear()
                    self._received.append(message)
                    self.seen.append(message)
            elif isinstance(event, Ping):
                self.sock.sendall(self._ws.send(event.response()))
            elif isinstance(event, (CloseConnection, RejectConnection)):
                self.closed = True
        if not data:
            self.closed = True

    def receive(self, deadline: float) -> dict[str, object] | None:
        """The next message, or None once the server has closed the connection."""
        while not self._received:
            if self.closed:
                return None
            self._read(deadline)
        return self._received.pop(0)

    def expect(self, wanted: Callable[[dict[str, object]], bool]) -> list[dict[str, object]]:
        """Read messages until one is C{wanted} (bounded); return them all, that one last."""
        deadline = time.monotonic() + WAIT
        messages = []
        while True:
            message = self.receive(deadline)
            if message is None:
                raise AssertionError(f"closed while waiting; messages so far: {self.seen}")
            messages.append(message)
            if wanted(message):
                return messages

    def expect_closed(self) -> list[dict[str, object]]:
        """Read until the server closes the connection (bounded); return the messages read before that."""
        deadline = time.monotonic() + WAIT
        messages = []
        while (message := self.receive(deadline)) is not None:
            messages.append(message)
        return messages

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()


# --- clusters: processes sharing PostgreSQL and Redis, and the faults between them ----------------


class PrivateRedis:
    """
    A redis-server of the test's own, without persistence, on a free port: killed and started
    again (on the same port) at will. L{start} waits on the reactor, for tests that run on it;
    L{start_blocking} polls, for end-to-end tests that block.
    """

    def __init__(self, executable: str, directory: str) -> None:
        self.executable = executable
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    async def start(self) -> None:
        """Start the server and wait (bounded, on the reactor) until it accepts connections."""
        from twisted.internet import reactor
        from twisted.internet.task import deferLater

        poll = 0.02
        self._spawn()
        for _ in range(int(WAIT / poll)):
            if self._listening():
                return
            await deferLater(reactor, poll)  # type: ignore[arg-type]
        raise AssertionError(f"redis-server did not listen on {self.port} within {WAIT} s")

    def start_blocking(self) -> None:
        """Start the server and wait (bounded, polling) until it accepts connections."""
        self._spawn()
        assert self.process is not None
        process = self.process
        wait_until(lambda: self._listening() or process.poll() is not None, f"redis-server to listen on {self.port}")
        if process.poll() is not None:
            raise AssertionError(f"redis-server on {self.port} exited with {process.returncode}")

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would; its data is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=WAIT)
            self.process = None


def redis_command(url: str, *words: str | bytes | int) -> object:
    """
    Send one command to the Redis at C{url} on a connection of its own and return the reply
    (decoded as L{chat_twisted.bus.redis.ReplyReader} does; an error reply is raised). Bounded.
    """
    from chat_twisted.bus.redis import ReplyReader, encode_command, parse_redis_url

    address = parse_redis_url(url)
    reader = ReplyReader()
    with socket.create_connection((address.host, address.port), timeout=WAIT) as connection:
        commands = []
        if address.password is not None:
            commands.append(encode_command("AUTH", *([address.username] if address.username else []), address.password))
        if address.db:
            commands.append(encode_command("SELECT", address.db))
        commands.append(encode_command(*words))
        connection.sendall(b"".join(commands))
        replies: list[object] = []
        while len(replies) < len(commands):
            data = connection.recv(65536)
            if not data:
                raise AssertionError(f"Redis at {address.host}:{address.port} closed the connection")
            replies += reader.feed(data)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies[-1]


def delete_redis_keys(url: str, prefix: str) -> int:
    """Delete every key under C{prefix} in the Redis at C{url}; return how many there were."""
    cursor: bytes = b"0"
    deleted = 0
    while True:
        reply = redis_command(url, "SCAN", cursor, "MATCH", prefix + "*", "COUNT", 1000)
        assert isinstance(reply, list) and len(reply) == 2, reply
        cursor, keys = bytes(reply[0]), list(reply[1])
        if keys:
            count = redis_command(url, "DEL", *keys)
            assert isinstance(count, int), count
            deleted += count
        if cursor == b"0":
            return deleted


class TcpProxy:
    """
    A TCP forwarder from 127.0.0.1:L{port} (a free port) to C{host}:C{target_port}, run on
    threads of its own, to put between servers and what they connect to. L{cut} ends every
    connection through it and, until L{restore}, closes each new one at once (with a reset), as
    an unreachable server would look; L{close} ends it all. L{pause} holds back what clients
    send (the bytes wait, in order, until L{resume}) while what the target sends still flows, as
    a stalled link would. It counts the connections it forwarded (L{forwarded}) and those it
    turned away (L{refused}).
    """

    def __init__(self, host: str, target_port: int) -> None:
        self.target = (host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._cut = False
        self._closed = False
        # Each pair (client side, server side) and how many of its two pumps still run; a
        # socket is closed only by the last pump of its pair, never under a thread using it.
        self._pairs: dict[tuple[socket.socket, socket.socket], int] = {}
        self._flowing = threading.Event()  # clear while paused
        self._flowing.set()
        self.forwarded = 0
        self.refused = 0
        self._acceptor = threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True)
        self._acceptor.start()

    @property
    def is_cut(self) -> bool:
        """Whether connections are being turned away."""
        return self._cut

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut or self._closed:
                self._turn_away(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=WAIT)
            except OSError:
                self._turn_away(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if self._cut or self._closed:
                    self._turn_away(client)
                    upstream.close()
                    continue
                pair = (client, upstream)
                self._pairs[pair] = 2
                self.forwarded += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, source, sink), daemon=True).start()

    def _turn_away(self, connection: socket.socket) -> None:
        """Close C{connection} with a reset (SO_LINGER 0), as a refused or dropped connection."""
        self.refused += 1
        try:
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        connection.close()

    def _pump(self, pair: tuple[socket.socket, socket.socket], source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                if source is pair[0]:  # from the client: held while paused
                    self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _shut(source)
            _shut(sink)
            with self._lock:
                self._pairs[pair] -= 1
                last = self._pairs[pair] == 0
                if last:
                    del self._pairs[pair]
            if last:
                source.close()
                sink.close()

    def pause(self) -> None:
        """Hold back what clients send, in order, until L{resume}; what the target sends still flows."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward what clients sent while paused, and what they send from now on."""
        self._flowing.set()

    def cut(self) -> None:
        """End every connection through the proxy (and any pause) and turn new ones away until L{restore}."""
        self._flowing.set()
        with self._lock:
            self._cut = True
            pairs = list(self._pairs)
        for client, upstream in pairs:
            _shut(client)
            _shut(upstream)

    def restore(self) -> None:
        """Forward new connections again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        """Stop listening and end every connection (bounded wait for the listening thread)."""
        self._closed = True
        self.cut()
        self._acceptor.join(WAIT)
        self._listener.close()


def _shut(connection: socket.socket) -> None:
    """Shut both directions of C{connection} (waking a thread blocked on it); it stays open."""
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


#: What a server of a cluster logs once its link to the other processes (over Redis) is up.
LINKED = re.compile(r"linked to the other processes as process ([0-9a-f]+)")


def cluster_server(
    workdir: Path, name: str, db: str, bus: str, prefix: str, extra_args: Sequence[str] = ()
) -> ServerProcess:
    """
    Start one server process of a cluster in C{workdir}, logging to C{<name>.log}: on the
    (PostgreSQL) database C{db} and the Redis bus C{bus}, its keys under C{prefix}. Return once
    it listens and its link to the other processes is up (bounded waits).
    """
    server = ServerProcess(workdir, ["--bus", bus, "--bus-prefix", prefix, *extra_args], log_name=f"{name}.log", db=db)
    try:
        server.wait_for_log(LINKED)
    except BaseException:
        server.kill()
        raise
    return server


_LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \[([^\]]*)\] (.*)$")


def tracebacks_in_log(text: str) -> list[tuple[str, str]]:
    """
    The entries of a twistd log C{text} that carry a traceback (a logged failure, or an
    unhandled error), each as (the logging system, the entry's first line).
    """
    found: list[tuple[str, str]] = []
    header: tuple[str, str] | None = None
    reported = False
    for line in text.splitlines():
        entry = _LOG_ENTRY.match(line)
        if entry is not None:
            header, reported = (entry.group(1), entry.group(2)), False
        elif "Traceback (most recent call last)" in line and header is not None and not reported:
            found.append(header)
            reported = True
    return found
