"""End-to-end: the real ``twistd -n chat`` on 127.0.0.1, real sockets and the real client program."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import ServerProcess, SocketClient, run_client

TIMESTAMPED = re.compile(r"^\[\d\d:\d\d:\d\d\] ")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A running server, stopped (and checked to exit cleanly) after the test."""
    process = ServerProcess(tmp_path)
    try:
        yield process
    finally:
        assert process.stop() == 0, process.log_text()


@pytest.fixture
def clients(server: ServerProcess) -> Iterator[list[SocketClient]]:
    """Three connected socket clients logged in as alice, bob and carol."""
    connected = []
    for nick in ("alice", "bob", "carol"):
        client = SocketClient(server.port)
        client.login(nick)
        connected.append(client)
    yield connected
    for client in connected:
        client.close()


def test_messages_reach_everyone_in_order(clients: list[SocketClient]) -> None:
    """Lines from several senders reach every member, sender too, timestamped and in one order."""
    alice, bob, carol = clients
    alice.send("one\r\n")
    alice.expect("alice: one")
    bob.send("two\n")
    bob.expect("bob: two")
    alice.send("thr")
    alice.send("ee\n")
    for client in clients:
        client.expect("alice: three")
        said = [line[11:] for line in client.seen if TIMESTAMPED.match(line)]
        assert said == ["alice: one", "bob: two", "alice: three"]


def test_commands_over_real_sockets(clients: list[SocketClient]) -> None:
    """/who, /msg, /join, /nick and unknown commands behave over TCP as the protocol says."""
    alice, bob, carol = clients
    alice.send("/who\n")
    assert "3 users in lobby: alice, bob, carol" in alice.expect("users in lobby")[-1]
    alice.send("/msg bob psst\n")
    assert alice.expect("psst")[-1].endswith("(private to bob) alice: psst")
    assert bob.expect("psst")[-1].endswith("(private) alice: psst")
    carol.send("/join dev\n")
    assert "* carol left lobby (moved to dev)" in alice.expect("carol left")
    bob.send("/nick robert\n")
    alice.expect("* bob is now known as robert")
    alice.send("/bogus\n")
    assert alice.expect("error:")[-1] == "error: unknown command /bogus (try /help)"
    carol.send("/who\n")
    assert carol.expect("in dev")[-1] == "* 1 user in dev: carol"


def test_quit_and_dropped_connection_are_announced(clients: list[SocketClient]) -> None:
    """/quit says goodbye and closes; a vanished client is announced as 'connection lost'."""
    alice, bob, carol = clients
    bob.send("/quit see you\n")
    assert any("Goodbye" in line for line in bob.expect_closed())
    alice.expect("* bob left lobby (see you)")
    carol.close()
    alice.expect("* carol left lobby (connection lost)")


def test_bad_input_keeps_the_connection(server: ServerProcess, clients: list[SocketClient]) -> None:
    """Invalid UTF-8 and over-long lines get one error each and the session goes on."""
    alice, bob, _ = clients
    alice.send(b"\xff\xfe\n" + b"x" * 5000 + b"\nstill here\n")
    lines = alice.expect("alice: still here")
    assert [line for line in lines if line.startswith("error:")] == [
        "error: line is not valid UTF-8; it was dropped",
        "error: line longer than 4096 bytes; it was dropped",
    ]
    bob.expect("alice: still here")


def test_server_logs_connects_nick_changes_and_disconnects(server: ServerProcess) -> None:
    """The log has a line per connect, login, nick change and disconnect, and no message bodies."""
    client = SocketClient(server.port)
    client.login("dora")
    client.send("a secret message\n/nick dora2\n/quit\n")
    client.expect_closed()
    server.wait_for_log(re.compile("dora2 left(.|\n)*disconnected"))
    log = server.log_text()
    for expected in ("connection from 127.0.0.1:", "dora logged in from", "dora is now known as dora2", "disconnected"):
        assert expected in log
    assert "a secret message" not in log


def test_piped_client_chats_and_exits_zero(server: ServerProcess) -> None:
    """The documented pipe works: greeting and own message printed, /quit sent, exit status 0."""
    watcher = SocketClient(server.port)
    watcher.login("watcher")
    result = run_client(server.port, b"alice\nhello from a pipe\n")
    output = result.stdout.decode("utf-8")
    assert result.returncode == 0, result.stderr
    assert "nickname" in output
    assert "alice: hello from a pipe" in output
    assert "Goodbye" in output
    watcher.expect("alice: hello from a pipe")
    watcher.expect("* alice left lobby (quit)")


def test_client_with_nick_option_and_explicit_quit(server: ServerProcess) -> None:
    """--nick logs in without typing it; an explicit /quit is not sent twice."""
    result = run_client(server.port, b"hi\n/quit bye now\n", "--nick", "zed")
    output = result.stdout.decode("utf-8")
    assert result.returncode == 0, result.stderr
    assert "Welcome, zed!" in output
    assert "Goodbye! (bye now)" in output


def test_client_reports_unreachable_server(tmp_path: Path) -> None:
    """With nothing listening, the client exits non-zero with a one-line reason."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    result = run_client(free_port, b"")
    assert result.returncode != 0
    assert result.stderr.decode().strip().startswith("chat: cannot connect to 127.0.0.1:")
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_client_reports_server_going_away(server: ServerProcess) -> None:
    """When the server stops under it, the client exits non-zero saying the server closed."""
    client = subprocess.Popen(
        [sys.executable, "-m", "chat_twisted.client", "--port", str(server.port), "--nick", "eve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    server.wait_for_log(re.compile("eve logged in"))
    server.stop()
    _, stderr = client.communicate(timeout=10)
    assert client.returncode == 1
    assert stderr.decode().strip() == "chat: the server closed the connection"
