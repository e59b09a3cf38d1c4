"""
End to end through the IRC door: the real ``twistd -n chat --irc ...`` on 127.0.0.1, a real IRC
client (Debian's irssi, driven in tmux by L{tests.irc_tmux.Irssi}), an ``nc``-style socket user
and the terminal client in tmux, all in one room. Also the raw IRC socket client
(L{tests.e2e.IrcClient}) for what irssi does not show plainly (SASL, TLS, a store's history).
Skipped, saying why, where irssi or tmux is missing. Every wait is bounded.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import IrcClient, ServerProcess, SocketClient
from tests.irc_tmux import Irssi, needs_irssi
from tests.helpers import client_command, write_self_signed
from tests.tmux import TmuxPane

#: No CHAT_* variables or user config file of whoever runs the tests reach the client here.
pytestmark = pytest.mark.usefixtures("no_user_settings")

_IRC_LISTENING = re.compile(r"chat IRC listening on 127\.0\.0\.1:(\d+)")


class IrcServer:
    """A ServerProcess with an IRC listener too: C{line} is the line port, C{irc} the IRC port."""

    def __init__(self, workdir: Path, irc_endpoint: str = "tcp:0:interface=127.0.0.1") -> None:
        self.process = ServerProcess(workdir, ["--irc", irc_endpoint])
        self.line = self.process.port
        self.irc = int(self.process.wait_for_log(_IRC_LISTENING).group(1))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[IrcServer]:
    """A fresh server with a line port and an IRC port, stopped after the test."""
    running = IrcServer(tmp_path)
    try:
        yield running
    finally:
        assert running.process.stop() == 0


@needs_irssi
def test_irssi_chats_with_an_nc_user_and_a_terminal_client_user(server: IrcServer, tmp_path: Path) -> None:
    """irssi, a raw line-protocol user and the terminal client share #lobby: history on join, room and private messages both ways."""
    nancy = SocketClient(server.line)
    nancy.login("nancy")
    nancy.send("said before irssi came\n")
    nancy.expect("nancy: said before irssi came")

    terry = TmuxPane(tmp_path, client_command(server.line, "--nick", "terry"))
    try:
        terry.wait_for(lambda rows: any("terry joined lobby" in row for row in rows), "terry's login")
        with Irssi(tmp_path, "ircy") as ircy:
            assert ircy.connect(server.irc) == "ircy"
            ircy.join("#lobby")
            ircy.wait_for(r"<nancy> .*said before irssi came", target="#lobby")  # the history on joining
            nancy.expect("ircy joined lobby")

            ircy.send("hello from irssi")
            nancy.expect("ircy: hello from irssi")
            terry.wait_for(lambda rows: any("ircy: hello from irssi" in row for row in rows), "irssi's message")

            nancy.send("hello back from nc\n")
            ircy.wait_for(r"<nancy> hello back from nc", target="#lobby")
            terry.type("and from the terminal client")
            terry.press("Enter")
            ircy.wait_for(r"<terry> and from the terminal client", target="#lobby")

            ircy.say("nancy", "a private word")
            nancy.expect("(private) ircy: a private word")
            nancy.send("/msg ircy a private answer\n")
            ircy.wait_for(r"<nancy> a private answer", target="nancy")

            nancy.send("/topic irssi was here\n")
            ircy.wait_for(r"nancy changed the topic of #lobby to: irssi was here", target="#lobby")
            assert ircy.quit("see you") == 0
            nancy.expect("ircy left lobby (see you)")
    finally:
        terry.close()
        nancy.close()


@needs_irssi
def test_irssi_logs_in_to_a_registered_nick_with_sasl(server: IrcServer, tmp_path: Path) -> None:
    """A nick registered from the line protocol is taken by irssi with SASL PLAIN, and its offline message arrives."""
    rita = SocketClient(server.line)
    rita.login("rita")
    rita.send("/register letmein42\n")
    rita.expect("rita is now registered")
    rita.send("/quit\n")
    rita.expect_closed()
    nancy = SocketClient(server.line)
    nancy.login("nancy")
    nancy.send("/msg rita while you were away\n")
    nancy.expect("rita is offline")
    with Irssi(tmp_path, "rita") as irssi:
        assert irssi.connect(server.irc, sasl=("rita", "letmein42")) == "rita"
        irssi.wait_for(r"^>> \S* ?:\S+ 903 ", log=irssi.raw_log())
        irssi.wait_for(r"while you were away", target="nancy")
        assert irssi.quit() == 0
    nancy.close()


def test_registered_nick_without_password_is_refused_and_another_nick_works(server: IrcServer) -> None:
    """Over a raw IRC socket: a registered nick without SASL or PASS gets 433; a guest nick then registers."""
    rita = SocketClient(server.line)
    rita.login("rita")
    rita.send("/register letmein42\n/quit\n")
    rita.expect_closed()
    client = IrcClient(server.irc)
    client.send_line("NICK rita")
    client.send_line("USER rita 0 * :Rita")
    client.expect_message(lambda message: message.command == "433")
    client.send_line("NICK rita_")
    client.expect_message(lambda message: message.command == "001")
    client.close()


def test_irc_over_tls(tmp_path: Path) -> None:
    """An --irc ssl: endpoint speaks IRC over TLS with the server's certificate."""
    key, cert = write_self_signed(tmp_path)
    running = IrcServer(tmp_path, f"ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}")
    try:
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        client = IrcClient(running.irc, tls=context)
        client.register("tlsy")
        client.send_line("JOIN #lobby")
        client.expect_message(lambda message: message.command == "366")
        client.close()
    finally:
        assert running.process.stop() == 0


def test_history_and_messages_reach_an_irc_client_with_server_time(server: IrcServer) -> None:
    """A raw IRC client with server-time and batch gets the room's history in a batch, then live messages from the line door."""
    nancy = SocketClient(server.line)
    nancy.login("nancy")
    nancy.send("first\nsecond\n")
    nancy.expect("nancy: second")
    client = IrcClient(server.irc)
    client.register("raw", caps=["server-time", "batch", "draft/chathistory", "message-tags"])
    client.send_line("JOIN #lobby")
    lines = client.expect_message(lambda message: message.command == "BATCH" and message.params[0].startswith("-"))
    said = [message.params[-1] for message in lines if message.command == "PRIVMSG"]
    assert said == ["first", "second"]
    assert all("time" in message.tags for message in lines if message.command == "PRIVMSG")
    nancy.send("live\n")
    client.expect_message(lambda message: message.command == "PRIVMSG" and message.params[-1] == "live")
    client.send_line("CHATHISTORY LATEST #lobby * 1")
    lines = client.expect_message(lambda message: message.command == "BATCH" and message.params[0].startswith("-"))
    assert [message.params[-1] for message in lines if message.command == "PRIVMSG"] == ["live"]
    client.close()
    nancy.close()


