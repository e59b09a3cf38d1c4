"""
The origin's design, written by us as a baseline for the benchmark: a threaded TCP chat server.

One thread per client, one global lock, and a broadcast loop that calls ``sendall`` on every
client's socket in turn while holding the lock. The first line a client sends is its nickname;
everyone (the newcomer included) then gets ``* NICK joined``; every later line goes to everyone,
the sender included, as ``NICK: TEXT``; a client that leaves is announced as ``* NICK left``.
No history, no flood control, no limits: the simplest server that does the job.

Usage: ``python -m bench.baselines.threaded [--host 127.0.0.1] [--port 0]``. It prints
``listening on HOST:PORT`` on standard output once it accepts connections and runs until it gets
SIGTERM or SIGINT. The benchmark runs it on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import threading
from types import FrameType


class ThreadedChatServer:
    """Owns the listening socket, the connected clients (socket -> nickname) and the global lock."""

    def __init__(self, host: str, port: int) -> None:
        self.listener = socket.create_server((host, port), backlog=1024)
        self.lock = threading.Lock()
        self.clients: dict[socket.socket, str] = {}

    @property
    def address(self) -> tuple[str, int]:
        """The address actually listened on (the port is chosen by the system when 0 was asked)."""
        host, port = self.listener.getsockname()[:2]
        return host, port

    def broadcast(self, data: bytes) -> None:
        """Send C{data} to every client, one after the other, holding the global lock."""
        with self.lock:
            for client in list(self.clients):
                try:
                    client.sendall(data)
                except OSError:
                    self.clients.pop(client, None)

    def handle(self, conn: socket.socket) -> None:
        """Serve one client in its own thread: read its nickname, then its lines, until it leaves."""
        nick = ""
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = conn.makefile("rb")
            conn.sendall(b"* Welcome! Please choose a nickname:\r\n")
            first = reader.readline()
            if not first:
                return
            nick = first.decode("utf-8", "replace").strip() or "anonymous"
            with self.lock:
                self.clients[conn] = nick
            self.broadcast(f"* {nick} joined\r\n".encode())
            for raw in reader:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.broadcast(f"{nick}: {text}\r\n".encode())
        except OSError:
            pass
        finally:
            with self.lock:
                known = self.clients.pop(conn, None) is not None
            conn.close()
            if known:
                self.broadcast(f"* {nick} left\r\n".encode())

    def close(self) -> None:
        """Stop listening; a thread blocked in L{serve_forever} wakes up and returns."""
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()

    def serve_forever(self) -> None:
        """Accept clients and start a thread for each; returns when the listening socket is closed."""
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, listen, announce the address on stdout and serve until a signal."""
    parser = argparse.ArgumentParser(description="Threaded chat server (the benchmark's baseline).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = ThreadedChatServer(args.host, args.port)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = server.address
    print(f"listening on {host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
