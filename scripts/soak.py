"""
Soak test: well-behaved clients and adversaries against a live chat server, all at once.

    python scripts/soak.py --seconds 20 --seed 1        # starts its own twistd -n chat, stops it after
    python scripts/soak.py --port 5000 --pid 1234       # a server already running on 127.0.0.1

For --seconds, W well-behaved clients (all in lobby from start to end) send numbered messages at
a polite rate and read everything, while a flooder, a slow reader, junk-byte senders, HTTP and
TLS probes, connect/disconnect churn and clients that vanish mid-line run beside them. Then it
checks that every well-behaved client got every other one's messages exactly once and in order,
that every server line ended CRLF and held no control character, and that the server still
answers. Prints a JSON summary; exits 0 if every check holds, 1 otherwise. Every random choice
comes from --seed (one generator per actor, so the choices do not depend on timing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

HOST = "127.0.0.1"
WAIT = 10.0  # the longest any single expected answer may take
GREETING = "* Welcome to chat_twisted! Please choose a nickname:"
SERVER_DEFAULTS = {"max_line": 4096, "max_input": 32 * 1024}
LISTENING = re.compile(r"chat server listening on 127\.0\.0\.1:(\d+)")
LOG_EVENTS = {  # what the server logged, counted when this script started it
    "connections": r"connection from ", "excess_flood": r"closing \S+: excess flood",
    "too_slow": r"dropping \S+: not reading its output", "http_refused": r"closing \S+: HTTP request",
    "tls_refused": r"closing \S+: TLS handshake", "errors": r"Traceback|Unhandled [Ee]rror|unexpected error",
}
# Pieces of junk: invalid UTF-8, NUL, ESC sequences, C1 controls, bidi override, separators, CR, DEL.
JUNK = [b"\x00", b"\xff\xfe", b"\xc3(", b"\x80", b"\xed\xa0\x80", b"\x1b[2J", b"\x1b]0;pwned\x07",
        b"\x1b[31mred", b"\x1bc", b"\x1bP1$r\x1b\\", "\u009b2J".encode(), "\u202egnp.exe".encode(),
        "\u2028".encode(), "\ufeff".encode(), b"a\rb", b"\x7f", b"\x08\x08", b"\t", "\u00e9\U0001f642".encode()]
TEXT = "abcdefghijklmnopqrstuvwxyz     \u00e9\u00fc\u4e2d\U0001f642"


def unsafe(char: str) -> bool:
    """A character no server line may hold: a control other than TAB, a format or separator character."""
    return char != "\t" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs")


def rss_kib(pid: int | None) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)


class Conn:
    """One reading client: checks each server line as it arrives, keeps it and hands it to on_line."""

    def __init__(self, soak: Soak, kind: str, on_line=None) -> None:
        self.soak, self.kind, self.on_line, self.changed = soak, kind, on_line, asyncio.Event()
        self.lines: list[str] = []
        self.closed = self.ours = False  # closed: the connection has ended; ours: we ended it

    async def open(self) -> Conn:
        self.soak.connections[self.kind] += 1
        self.reader, self.writer = await asyncio.open_connection(HOST, self.soak.port, limit=1 << 20)
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            while True:
                self.lines.append(self.soak.check_line(await self.reader.readuntil(b"\n"), self.kind))
                if self.on_line:
                    self.on_line(self.lines[-1])
                self.changed.set()
        except asyncio.IncompleteReadError as eof:
            if eof.partial and not self.ours:
                self.soak.fail("crlf", f"{self.kind}: unterminated at close: {eof.partial[:60]!r}")
        except OSError:  # reset: a line cut off by it is not the server's fault
            pass
        finally:
            self.closed = True
            self.changed.set()

    async def send(self, data: str | bytes) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def expect(self, want: str, timeout: float = WAIT) -> str:
        """Wait for a line containing C{want}; raise if the connection ends or time runs out first."""
        async def scan() -> str:
            while not (found := [line for line in self.lines if want in line]):
                if self.closed:
                    raise ConnectionError(f"{self.kind}: closed before {want!r}")
                self.changed.clear()
                await self.changed.wait()
            return found[0]
        return await asyncio.wait_for(scan(), timeout)

    async def wait_closed(self, timeout: float = WAIT) -> bool:
        return bool((await asyncio.wait([self.task], timeout=timeout))[0])

    async def login(self, nick: str) -> Conn:
        await self.expect("choose a nickname")
        await self.send(nick + "\n")
        await self.expect(f"* {nick} joined lobby")
        return self

    def close(self, rst: bool = False) -> None:
        self.ours = True
        if rst:  # linger 0: the kernel sends RST, as a crashed peer would
            self.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.writer.transport.abort()
        else:
            self.writer.close()


class Soak:
    def __init__(self, args: argparse.Namespace, port: int, pid: int | None) -> None:
        self.args, self.port, self.pid = args, port, pid
        self.tag = f"s{os.getpid() % 100000}"  # nick prefix, unique per run (not a random choice)
        self.goods = [f"{self.tag}g{i}" for i in range(args.clients)]
        self.sent: dict[str, int] = {}
        self.received: dict[str, defaultdict[str, list[int]]] = {nick: defaultdict(list) for nick in self.goods}
        self.flood_seen: dict[str, list[int]] = defaultdict(list)  # as the first well-behaved client saw it
        self.left_reasons: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.problems: dict[str, list[str]] = defaultdict(list)
        self.lines_read = 0
        self.message = re.compile(rf"^\[\d\d:\d\d:\d\d\] ({self.tag}[gf]\d+): (?:m|fl)(\d+)\b")
        self.left = re.compile(r"^\* \S+ left lobby \((.*)\)$")

    def rng(self, name: str) -> random.Random:
        return random.Random(f"{self.args.seed}:{name}")

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def fail(self, check: str, example: str) -> None:
        self.problems[check].append(example)

    def check_line(self, raw: bytes, kind: str) -> str:
        self.lines_read += 1
        if not raw.endswith(b"\r\n"):
            self.fail("crlf", f"{kind}: {raw[:60]!r}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail("utf8", f"{kind}: {raw[:60]!r}")
            text = raw.decode("utf-8", "replace")
        text = text.removesuffix("\n").removesuffix("\r")
        if any(unsafe(char) for char in text):
            self.fail("control", f"{kind}: {text[:80]!r}")
        if "PARTIAL-" in text:
            self.fail("partial", f"{kind}: {text[:80]!r}")
        return text

    # --- the well-behaved --------------------------------------------------------------------------

    def observer(self, nick: str):
        def on_line(text: str) -> None:
            if match := self.message.match(text):
                sender, seq = match.group(1), int(match.group(2))
                if sender in self.received:
                    self.received[nick][sender].append(seq)
                elif nick == self.goods[0]:
                    self.flood_seen[sender].append(seq)
            elif nick == self.goods[0] and (match := self.left.match(text)):
                self.left_reasons[match.group(1)] += 1
        return on_line

    async def good(self, conn: Conn, nick: str) -> None:
        rng = self.rng(nick)
        for seq in itertools.count():
            if not self.running():
                return
            pad = "".join(rng.choice(TEXT) for _ in range(rng.randint(0, 120)))
            await conn.send(f"m{seq} {pad}\n")
            self.sent[nick] = seq + 1
            await asyncio.sleep(rng.uniform(0.5, 1.5) / self.args.rate)

    # --- the adversaries (each loops until the deadline) ---------------------------------------------

    async def flooder(self) -> None:
        rng, a = self.rng("flooder"), self.args
        for round_ in itertools.count():
            if not self.running():
                return
            conn = await (await Conn(self, "flooder").open()).login(nick := f"{self.tag}f{round_}")
            past = rng.random() < 0.4  # past --max-input: short lines, so that little is taken at once
            target = a.max_input * (rng.uniform(1.5, 3) if past else rng.uniform(0.1, 0.6))
            longest = 100 if past else a.max_line - 20
            lines: list[bytes] = []
            while sum(map(len, lines)) < target:
                lines.append(f"fl{len(lines)} {'x' * rng.randint(1, longest)}\n".encode())
            with contextlib.suppress(OSError):
                await conn.send(b"".join(lines))
            self.counts["flood_lines_sent"] += len(lines)
            self.counts[f"flood_rounds_{'past' if past else 'under'}_max_input"] += 1
            if past:
                try:
                    await conn.expect("error: excess flood")
                    self.counts["flood_closed_excess_flood"] += await conn.wait_closed()
                except (OSError, TimeoutError) as error:
                    self.fail("adversaries", f"{nick}: no 'excess flood' close ({error!r})")
            else:
                await asyncio.sleep(rng.uniform(1, 4))  # its held lines go out at --rate meanwhile
            conn.close(rst=rng.random() < 0.5)

    async def slow_reader(self) -> None:
        """Logs in, never reads a byte, and asks for /history 500 every second."""
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        self.connections["slow_reader"] += 1
        self.counts["slow_reader_dropped"] = 0  # only once kernel buffers and --max-output are full
        await loop.sock_connect(sock, (HOST, self.port))
        try:
            await loop.sock_sendall(sock, f"{self.tag}slow\n".encode())
            while self.running():
                await asyncio.sleep(1.0)
                await loop.sock_sendall(sock, b"/history 500\n")
                self.counts["slow_reader_history_requests"] += 1
        except OSError:
            self.counts["slow_reader_dropped"] = 1
        finally:
            sock.close()

    async def junk_sender(self, index: int) -> None:
        rng = self.rng(f"junk{index}")
        for round_ in itertools.count():
            if not self.running():
                return
            conn = await Conn(self, "junk").open()
            if rng.random() < 0.7:  # logged in, its junk goes to the whole room (sanitised)
                await conn.login(f"{self.tag}j{index}x{round_}")
            try:
                for _ in range(rng.randint(3, 20)):
                    if rng.random() < 0.1:  # an over-long line
                        line = rng.randbytes(self.args.max_line + rng.randint(1, 3000)).replace(b"\n", b"")
                    else:
                        line = b"".join(rng.choice(JUNK) if rng.random() < 0.5 else rng.randbytes(rng.randint(1, 12))
                                        for _ in range(rng.randint(1, 12)))
                    self.counts["junk_lines"] += 1
                    await conn.send(line + b"\n")
                    await asyncio.sleep(rng.uniform(0, 0.2))
                await asyncio.sleep(rng.uniform(0.2, 1))
            except OSError:  # closed for a TLS-looking start or an excess flood: fine
                pass
            conn.close(rst=rng.random() < 0.3)

    async def probes(self) -> None:
        """HTTP requests and TLS ClientHellos: each gets its answer (none for TLS) and is closed."""
        rng = self.rng("probes")
        while self.running():
            conn = await Conn(self, "probe").open()
            if rng.random() < 0.5:
                method = rng.choice(["GET / HTTP/1.1", "POST /login HTTP/1.0", "HEAD /x HTTP/1.1", "OPTIONS * HTTP/1.1"])
                await conn.send(f"{method}\r\nHost: {HOST}\r\nUser-Agent: soak\r\n\r\n")
                kind, answer = "http", ["error: this is a chat server, not a web server"]
            else:
                tls = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO())
                with contextlib.suppress(ssl.SSLWantReadError):
                    tls.do_handshake()
                await conn.send(outgoing.read())  # a real ClientHello
                kind, answer = "tls", []
            self.counts[f"{kind}_probes"] += 1
            closed = await conn.wait_closed()  # the greeting (at most once), the answer, the close
            if not closed or [line for line in conn.lines if line != GREETING] != answer or conn.lines.count(GREETING) > 1:
                self.fail("adversaries", f"{kind} probe: closed={conn.closed} lines={conn.lines!r}")
            self.counts[f"{kind}_probes_without_greeting"] += GREETING not in conn.lines
            conn.close()
            await asyncio.sleep(rng.uniform(0.05, 0.5))

    async def churn(self, index: int) -> None:
        rng = self.rng(f"churn{index}")
        for round_ in itertools.count():
            if not self.running():
                return
            conn, mode = await Conn(self, "churn").open(), rng.randrange(4)
            if mode >= 1:  # 0: gone at once; 1: after the greeting; 2, 3: after logging in
                await conn.expect("choose a nickname")
            if mode >= 2:
                await conn.login(f"{self.tag}c{index}x{round_}")
            conn.close(rst=mode == 3 or rng.random() < 0.2)
            await asyncio.sleep(rng.uniform(0.01, 0.1))

    async def vanisher(self) -> None:
        """Logs in, sends a line or two, then part of one (never to be delivered) and disappears."""
        rng = self.rng("vanisher")
        for round_ in itertools.count():
            if not self.running():
                return
            conn = await (await Conn(self, "vanisher").open()).login(f"{self.tag}v{round_}")
            for number in range(rng.randrange(3)):
                await conn.send(f"whole line {number}\n")
            partial = f"PARTIAL-{round_} never delivered \u00e9\U0001f642".encode()
            await conn.send(partial[: rng.randint(8, len(partial) - 1)])  # may cut a character in two
            await asyncio.sleep(rng.uniform(0, 0.3))
            conn.close(rst=rng.random() < 0.5)
            self.counts["vanished_mid_line"] += 1
            await asyncio.sleep(rng.uniform(0.05, 0.3))

    # --- the run ---------------------------------------------------------------------------------

    async def sample_rss(self) -> None:
        while True:
            self.rss["peak"] = max(self.rss["peak"] or 0, rss_kib(self.pid) or 0) or None
            await asyncio.sleep(0.5)

    async def run(self) -> dict:
        a = self.args
        self.rss = {"start": rss_kib(self.pid), "peak": None, "end": None}
        sampler = asyncio.create_task(self.sample_rss())
        goods = {}
        for nick in self.goods:  # everyone is in the room before the first message
            goods[nick] = await (await Conn(self, "well_behaved", self.observer(nick)).open()).login(nick)
        self.deadline = time.monotonic() + a.seconds
        actors = [self.good(conn, nick) for nick, conn in goods.items()]
        if not a.no_adversaries:
            actors += [self.flooder(), self.slow_reader(), self.probes(), self.vanisher()]
            actors += [self.junk_sender(i) for i in range(a.junk)] + [self.churn(i) for i in range(a.churn)]
        for result in await asyncio.gather(*actors, return_exceptions=True):
            if isinstance(result, BaseException):
                self.fail("adversaries", f"an actor failed: {result!r}")

        drain = time.monotonic()  # until each has the last message of every other, or 2 * WAIT
        while time.monotonic() - drain < 2 * WAIT and not all(
                self.received[r][s][-1:] == [self.sent[s] - 1] for r in goods for s in self.sent if s != r):
            await asyncio.sleep(0.1)
        drain = time.monotonic() - drain
        connected = sum(not conn.closed for conn in goods.values())

        asked = time.monotonic()  # a fresh client logs in and gets /time
        try:
            fresh = await (await Conn(self, "fresh").open()).login(f"{self.tag}fresh")
            await fresh.send("/time\n")
            answer = await fresh.expect("* server time: ")
            fresh.close()
        except (OSError, TimeoutError) as error:
            answer = f"no answer: {error!r}"
        responsive = {"ok": answer.startswith("* server time: "), "answer": answer,
                      "seconds": round(time.monotonic() - asked, 3)}
        self.rss["end"] = rss_kib(self.pid)
        sampler.cancel()
        for conn in goods.values():
            conn.close()

        missing = duplicates = out_of_order = 0
        for r, s in itertools.permutations(goods, 2):
            got = self.received[r][s]
            missing += len(set(range(self.sent.get(s, 0))) - set(got))
            duplicates += len(got) - len(set(got))
            out_of_order += sum(1 for x, y in itertools.pairwise(got) if y <= x)
        return {
            "well_behaved": {"clients": len(goods), "messages_sent": sum(self.sent.values()),
                             "deliveries_checked": sum(self.sent.values()) * (len(goods) - 1),
                             "drain_seconds": round(drain, 2)},
            "connections": dict(self.connections), "server_lines_read": self.lines_read,
            "adversaries": dict(self.counts), "leave_reasons_seen_in_lobby": dict(self.left_reasons),
            "rss_kib": self.rss,
            "checks": {
                "delivery": {"ok": missing == duplicates == out_of_order == 0 and connected == len(goods),
                             "missing": missing, "duplicates": duplicates, "out_of_order": out_of_order,
                             "well_behaved_still_connected": f"{connected}/{len(goods)}"},
                "flooder_lines_in_order": {
                    "ok": all(seen == list(range(len(seen))) for seen in self.flood_seen.values()),
                    "connections": len(self.flood_seen), "lines_seen": sum(map(len, self.flood_seen.values()))},
                "crlf_and_utf8": {"ok": not self.problems["crlf"] and not self.problems["utf8"]},
                "no_control_chars": {"ok": not self.problems["control"]},
                "partial_lines_never_delivered": {"ok": not self.problems["partial"]},
                "adversaries_answered_as_expected": {"ok": not self.problems["adversaries"]},
                "responsive": responsive,
            },
            "problems": {name: {"count": len(found), "examples": found[:5]} for name, found in self.problems.items() if found},
        }


def start_server(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen, int, list[str]]:
    twistd = Path(args.twistd or Path(sys.executable).parent / "twistd")
    if not twistd.exists():
        twistd = Path(shutil.which("twistd") or sys.exit("soak: no twistd found; give --twistd PATH"))
    log = workdir / "server.log"
    command = [str(twistd), "-n", "--pidfile=", "--logfile", str(log), "chat",
               "--port", f"tcp:0:interface={HOST}", "--no-web", "--db", str(workdir / "chat.sqlite3")]
    command += [f"--{k.replace('_', '-')}={getattr(args, k)}" for k, v in SERVER_DEFAULTS.items() if getattr(args, k) != v]
    process = subprocess.Popen(command, cwd=workdir, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and process.poll() is None:
        if log.exists() and (match := LISTENING.search(log.read_text("utf-8"))):
            return process, int(match.group(1)), command
        time.sleep(0.05)
    process.kill()
    sys.exit(f"soak: the server did not start:\n{log.read_text('utf-8') if log.exists() else ''}")


def stop_server(process: subprocess.Popen, log: Path, summary: dict) -> None:
    """SIGTERM (SIGKILL after WAIT seconds); record the exit status and what the log shows."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(WAIT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    text = log.read_text("utf-8", "replace")
    server = summary["server"]
    server["exit_status"] = process.returncode
    server["log"] = {name: len(re.findall(pattern, text)) for name, pattern in LOG_EVENTS.items()}
    if "checks" in summary:
        summary["checks"]["server_exit_0_and_log_clean"] = {
            "ok": process.returncode == 0 and not server["log"]["errors"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the load runs")
    parser.add_argument("--seed", type=int, default=1, help="seed for every random choice")
    parser.add_argument("--port", type=int, help="use a server already listening on 127.0.0.1:PORT")
    parser.add_argument("--pid", type=int, help="with --port: the server's process id, for its RSS")
    parser.add_argument("--twistd", help="the twistd to start (default: next to this Python, else on PATH)")
    parser.add_argument("--clients", type=int, default=8, help="well-behaved clients (W)")
    parser.add_argument("--rate", type=float, default=2.0, help="messages per second per well-behaved client")
    parser.add_argument("--junk", type=int, default=2, help="junk-byte senders")
    parser.add_argument("--churn", type=int, default=2, help="connect/disconnect churners")
    parser.add_argument("--max-line", type=int, default=4096, help="the server's --max-line")
    parser.add_argument("--max-input", type=int, default=32768, help="the server's --max-input")
    parser.add_argument("--no-adversaries", action="store_true", help="well-behaved clients only")
    args = parser.parse_args()
    if args.clients < 2 or args.rate <= 0:
        parser.error("--clients must be at least 2 and --rate above 0")

    summary: dict = {"seed": args.seed, "seconds": args.seconds}
    process = tmp = None
    try:
        if args.port:
            port, pid = args.port, args.pid
            summary["server"] = {"started": False, "port": port, "pid": pid}
        else:
            tmp = tempfile.TemporaryDirectory(prefix="chat-soak-")
            process, port, command = start_server(args, Path(tmp.name))
            pid = process.pid
            summary["server"] = {"started": True, "command": " ".join(command), "port": port, "pid": pid}
        summary.update(asyncio.run(Soak(args, port, pid).run()))
    finally:
        if process is not None and tmp is not None:
            stop_server(process, Path(tmp.name) / "server.log", summary)
        if tmp is not None:
            tmp.cleanup()
    summary["ok"] = all(check["ok"] for check in summary["checks"].values())
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
