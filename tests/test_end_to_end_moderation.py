"""
End to end, moderation in the real ``twistd -n chat``: a server ban refuses a user on every door
(line, IRC, WebSocket), and a claimed room keeps its owner, modes, bans and topic across a restart.
Every wait is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import WEB_PORT, IrcClient, ServerProcess, SocketClient, WebSocketClient, web_port

_IRC_LISTENING = re.compile(r"chat IRC listening on 127\.0\.0\.1:(\d+)")
BANNED_LINE = "error: you are banned from this server: spam bot"


class AllDoors:
    """A server with every door open and C{boss} as its server operator."""

    def __init__(self, workdir: Path) -> None:
        self.process = ServerProcess(workdir, ["--irc", "tcp:0:interface=127.0.0.1", "--web", WEB_PORT,
                                               "--oper", "boss"])
        self.line = self.process.port
        self.irc = int(self.process.wait_for_log(_IRC_LISTENING).group(1))
        self.web = web_port(self.process)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AllDoors]:
    """A fresh server with every door, stopped after the test."""
    running = AllDoors(tmp_path)
    try:
        yield running
    finally:
        assert running.process.stop() == 0


def registered(port: int, nick: str, password: str) -> SocketClient:
    """A line user who has logged in as C{nick} and registered it."""
    user = SocketClient(port)
    user.login(nick)
    user.send(f"/register {password}\n")
    user.expect(f"{nick} is now registered")
    return user


def test_a_server_ban_refuses_the_user_on_every_door(server: AllDoors) -> None:
    """/gban account:zed closes zed's connection and refuses zed's login by line, IRC and WebSocket."""
    boss = registered(server.line, "boss", "bosspassword1")
    zed = registered(server.line, "zed", "zedpassword1")
    boss.send("/gban account:zed spam bot\n")
    boss.expect("banned from the server:")
    assert BANNED_LINE in zed.expect_closed()
    boss.expect("zed left lobby (banned)")

    by_line = SocketClient(server.line)
    by_line.expect("nickname")
    by_line.send("/login zed zedpassword1\n")
    assert BANNED_LINE in by_line.expect_closed()

    by_irc = IrcClient(server.irc)
    by_irc.send_line("CAP LS 302")
    by_irc.send_line("NICK zed")
    by_irc.send_line("USER zed 0 * :zed")
    by_irc.list_caps()
    by_irc.request_caps(["sasl"])
    outcome = by_irc.authenticate("zed", "zedpassword1")
    lines = [message.line for message in outcome] + by_irc.expect_closed()
    assert any(line.startswith("ERROR ") and "banned" in line for line in lines), lines

    by_web = WebSocketClient(server.web)
    by_web.send_json({"type": "login", "nick": "zed", "password": "zedpassword1", "rooms": ["lobby"]})
    messages = by_web.expect_closed()
    assert {"type": "error", "code": "server_banned"}.items() <= messages[-1].items(), messages

    boss.send("/who\n")
    boss.expect("1 user in lobby: boss")


def test_an_address_ban_refuses_new_connections_on_every_door(server: AllDoors) -> None:
    """/gban of the address refuses the next connection at once, whatever the door; /ungban lifts it."""
    boss = registered(server.line, "boss", "bosspassword1")
    boss.send("/gban 127.0.0.0/8 1h\n")
    boss.expect("127.0.0.0/8 (by boss")

    refused_line = SocketClient(server.line)
    assert refused_line.expect_closed()[-1].startswith("error: you are banned from this server until ")

    refused_irc = IrcClient(server.irc)
    lines = refused_irc.expect_closed()
    assert any(line.startswith("ERROR ") and "banned" in line for line in lines), lines

    refused_web = WebSocketClient(server.web)
    messages = refused_web.expect_closed()
    assert any(message.get("code") == "server_banned" for message in messages), messages

    boss.send("/ungban 127.0.0.0/8\n")
    boss.expect("lifted the server ban on 127.0.0.0/8")
    SocketClient(server.line).login("welcome")


def test_a_claimed_room_keeps_its_settings_across_a_restart(tmp_path: Path) -> None:
    """The owner's claim, modes, bans and topic outlive a restart; the owner is its operator again on entering."""
    process = ServerProcess(tmp_path)
    try:
        alice = registered(process.port, "alice", "alicepassword1")
        alice.send("/join tea\n")
        alice.expect("alice joined tea")
        alice.send("/claim\n")
        alice.expect("alice claimed tea for the account alice")
        alice.send("/mode +mt\n/ban spam*\n/topic earl grey only\n")
        alice.expect("alice set the topic of tea to: earl grey only")
    finally:
        assert process.stop() == 0

    process = process.restart()
    try:
        bob = SocketClient(process.port)
        bob.login("bob")
        bob.send("/rooms\n")
        bob.expect(lambda line: line.startswith("*   tea (0 users): earl grey only"))
        spammer = SocketClient(process.port)
        spammer.login("spammer1")
        spammer.send("/join tea\n")
        spammer.expect("error: you are banned from tea")

        alice = SocketClient(process.port)
        alice.expect("nickname")
        alice.send("/login alice alicepassword1\n")
        alice.expect("Welcome, alice!")
        alice.send("/join tea\n")
        alice.expect("the server made alice an operator of tea")
        alice.send("/mode\n/bans\n")
        alice.expect("modes of tea: +mt (moderated, topic-locked); claimed by alice")
        alice.expect(lambda line: line.startswith("*   spam* (by alice, "))
        bob.send("/join tea\nhello?\n")
        bob.expect("error: tea is moderated: only operators and voiced users may speak there")
    finally:
        assert process.stop() == 0
