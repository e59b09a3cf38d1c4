"""
Unit tests for the terminal client: L{ChatClient} joining a L{ServerSide} and a L{TerminalSide},
each on its own StringTransport, plus C{parse_args}, C{run} and C{main}.

No sockets, no sleeps and no real stdio: time is a L{Clock}, C{run} connects through a
L{MemoryReactorClock}, and the terminal is attached to a StringTransport in its place. One
bug-demonstrating test drives Twisted's real StandardIO over OS pipes on a memory reactor.
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet import stdio
from twisted.internet.defer import ensureDeferred
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock
from twisted.internet.testing import (
    MemoryReactorClock,
    StringTransport,
    SynchronousResolver,
)
from twisted.python.failure import Failure

import chat_twisted.client.app as client_module
from chat_twisted.client import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    QUIT_GRACE_SECONDS,
    ChatClient,
    Console,
    TerminalSide,
    main,
    parse_args,
    run,
)
from tests.helpers import (
    FakeStdio,
    ServerConnection,
    TerminalConnection,
    accept,
    attach_terminal,
    exit_code,
    result_of,
)

#: No CHAT_* variables or user config file of whoever runs the tests reach the client here.
pytestmark = pytest.mark.usefixtures("no_user_settings")


# --- helpers ---------------------------------------------------------------------------------


def make_session() -> tuple[ChatClient, Clock, ServerConnection, TerminalConnection]:
    """Return a client (no nickname) on a fake clock with its server connected and its terminal attached."""
    clock = Clock()
    client = ChatClient(clock)
    server = ServerConnection(client)
    terminal = attach_terminal(client)
    return client, clock, server, terminal


# --- connecting and the nickname ---------------------------------------------------------------


def test_nick_sent_on_connect() -> None:
    """With a nickname the client sends it, CRLF-ended, as soon as the server connection is up."""
    client = ChatClient(Clock(), nick="alice")
    server = ServerConnection(client)
    assert server.sent() == [b"alice"]
    assert client.server is server.protocol


@pytest.mark.parametrize("nick", [None, ""])
def test_no_nick_sends_nothing_on_connect(nick: str | None) -> None:
    """Without a nickname nothing is sent on connect (the first typed line becomes the nickname)."""
    server = ServerConnection(ChatClient(Clock(), nick=nick))
    assert server.sent() == []


def test_non_ascii_nick_sent_as_utf8() -> None:
    """A non-ASCII nickname goes out UTF-8 encoded."""
    server = ServerConnection(ChatClient(Clock(), nick="zoë"))
    assert server.sent() == ["zoë".encode("utf-8")]


# --- server lines on the terminal --------------------------------------------------------------


def test_server_lines_shown_without_line_endings() -> None:
    """Server lines ending in CRLF or LF, whole, split or several to a read, are shown one per line."""
    _, _, server, terminal = make_session()
    server.receive(b"one\r\ntwo\n")
    server.receive(b"thr")
    server.receive(b"ee\r")
    server.receive(b"\n")
    assert terminal.shown() == ["one", "two", "three"]


def test_incomplete_server_line_not_shown() -> None:
    """A server line is shown only once its newline has arrived."""
    _, _, server, terminal = make_session()
    server.receive(b"partial")
    assert terminal.shown() == []


def test_server_line_escape_and_control_characters_removed() -> None:
    """Terminal escape sequences, control characters and bidi overrides never reach the terminal."""
    _, _, server, terminal = make_session()
    server.receive(b"\x1b[31mred\x1b[0m \x07bell\x00 \xe2\x80\xaeflip\x08\r\n")
    assert terminal.shown() == ["red bell flip"]


def test_server_line_invalid_utf8_replaced() -> None:
    """Invalid UTF-8 from the server is shown as U+FFFD and valid UTF-8 around it is kept."""
    _, _, server, terminal = make_session()
    server.receive(b"caf\xc3\xa9 \xff\xfe ok\r\n")
    assert terminal.shown() == ["café \ufffd\ufffd ok"]


def test_lines_before_terminal_attached_shown_once_it_is() -> None:
    """Server lines that arrive before the terminal is attached are shown, in order and once, when it is."""
    client = ChatClient(Clock())
    server = ServerConnection(client)
    server.receive(b"welcome\r\nnick?\r\n")
    terminal = attach_terminal(client)
    assert terminal.shown() == ["welcome", "nick?"]
    server.receive(b"later\r\n")
    assert terminal.shown() == ["later"]


# --- typed lines -------------------------------------------------------------------------------


def test_typed_lines_sent_with_crlf() -> None:
    """Each typed line, LF- or CRLF-ended, is sent to the server ending in exactly one CRLF."""
    _, _, server, terminal = make_session()
    terminal.type(b"hello\n")
    terminal.type(b"there\r\nsplit ")
    terminal.type(b"line\n")
    assert server.transport.value() == b"hello\r\nthere\r\nsplit line\r\n"


def test_typed_line_before_server_connected_dropped() -> None:
    """A line typed while there is no server connection is dropped without error."""
    client = ChatClient(Clock())
    terminal = attach_terminal(client)
    terminal.type(b"hello\n")
    assert client.server is None
    assert not client.done.called


@pytest.mark.parametrize("line", [b"/quit", b"/QUIT", b"/Quit going home", b"  /quit  ", b"/quit\r"])
def test_typed_quit_then_server_close_exits_0(line: bytes) -> None:
    """A typed /quit (any case, with or without a reason) is sent, and the server's close then means status 0."""
    client, _, server, terminal = make_session()
    terminal.type(line + b"\n")
    assert server.sent() == [line.rstrip(b"\r")]
    server.close()
    assert result_of(client.done) == 0
    assert client.error is None


@pytest.mark.parametrize("line", [b"/quitter", b"//quit", b"quit", b"/ quit", b"say /quit"])
def test_quit_lookalikes_do_not_count_as_quit(line: bytes) -> None:
    """Lines that only look like /quit are sent as typed and a later server close still means status 1."""
    client, _, server, terminal = make_session()
    terminal.type(line + b"\n")
    assert server.sent() == [line]
    server.close()
    assert result_of(client.done) == 1


def test_lines_typed_after_quit_not_sent() -> None:
    """Once /quit has been typed, further typed lines are not sent."""
    _, _, server, terminal = make_session()
    terminal.type(b"/quit bye\nstill here?\n")
    terminal.type(b"/quit\n")
    assert server.sent() == [b"/quit bye"]


# --- end of input --------------------------------------------------------------------------------


def test_end_of_input_sends_quit() -> None:
    """End of input sends /quit, and the server's close then means status 0."""
    client, _, server, terminal = make_session()
    terminal.end_input()
    assert server.sent() == [b"/quit"]
    server.close()
    assert result_of(client.done) == 0


def test_end_of_input_after_typed_quit_sends_nothing_more() -> None:
    """End of input after a typed /quit does not send a second /quit."""
    _, _, server, terminal = make_session()
    terminal.type(b"/quit bye\n")
    terminal.end_input()
    assert server.sent() == [b"/quit bye"]


def test_end_of_input_client_closes_after_grace_period() -> None:
    """If the server stays open after our /quit, the client closes it itself after QUIT_GRACE_SECONDS."""
    client, clock, server, terminal = make_session()
    terminal.end_input()
    clock.advance(QUIT_GRACE_SECONDS - 0.1)
    assert server.transport.connected
    assert not client.done.called
    clock.advance(0.1)
    assert not server.transport.connected
    assert server.sent() == [b"/quit"]
    assert result_of(client.done) == 0
    assert client.error is None


def test_server_close_within_grace_period_cancels_timer() -> None:
    """When the server closes before the grace period is over, the pending close is cancelled."""
    client, clock, server, terminal = make_session()
    terminal.end_input()
    clock.advance(1)
    server.close()
    assert clock.getDelayedCalls() == []
    assert result_of(client.done) == 0


def test_end_of_input_after_server_gone_does_nothing() -> None:
    """End of input after the client has finished sends nothing and starts no timer."""
    client, clock, server, terminal = make_session()
    server.close()
    terminal.end_input()
    assert server.sent() == []
    assert clock.getDelayedCalls() == []
    assert result_of(client.done) == 1


def test_end_of_input_without_server_does_nothing() -> None:
    """End of input while there is no server connection sends nothing and starts no timer."""
    clock = Clock()
    client = ChatClient(clock)
    attach_terminal(client).end_input()
    assert clock.getDelayedCalls() == []
    assert not client.done.called


# --- the server going away, and the end ----------------------------------------------------------


def test_server_close_without_quit_exits_1() -> None:
    """The server closing without our /quit means status 1 and names the reason."""
    client, _, server, _ = make_session()
    server.close()
    assert result_of(client.done) == 1
    assert client.error == "the server closed the connection"


def test_server_lines_before_close_are_shown() -> None:
    """The server's last lines before it closes are shown on the terminal."""
    _, _, server, terminal = make_session()
    terminal.type(b"/quit\n")
    server.receive(b"goodbye\r\n")
    server.close()
    assert terminal.shown() == ["goodbye"]


def test_done_fires_only_after_terminal_closed() -> None:
    """C{done} waits for the terminal's connectionLost after the client asked it to close."""
    clock = Clock()
    client = ChatClient(clock)
    server = ServerConnection(client)
    terminal = attach_terminal(client, StringTransport())  # loseConnection does not report back
    terminal.type(b"/quit\n")
    server.close()
    assert terminal.transport.disconnecting
    assert not client.done.called
    terminal.protocol.connectionLost(Failure(ConnectionDone()))
    assert result_of(client.done) == 0


def test_done_fires_at_once_without_terminal() -> None:
    """With no terminal attached, C{done} fires as soon as the server is gone."""
    client = ChatClient(Clock())
    ServerConnection(client).close()
    assert result_of(client.done) == 1


def test_done_fires_once() -> None:
    """A second report that the server is gone, after the client has finished, is ignored (no AlreadyCalledError)."""
    client, _, server, _ = make_session()
    server.close()
    client.server_gone()
    assert result_of(client.done) == 1


def test_terminal_close_deferred_fires_on_connection_lost() -> None:
    """C{TerminalSide.close()} asks the transport to close and fires once connectionLost arrives, only once."""
    terminal = attach_terminal(ChatClient(Clock()), StringTransport())
    closed = terminal.protocol.close()
    assert terminal.transport.disconnecting
    assert not closed.called
    terminal.protocol.connectionLost(Failure(ConnectionDone()))
    terminal.protocol.connectionLost(Failure(ConnectionDone()))
    assert result_of(closed) is None


def test_terminal_is_half_closeable() -> None:
    """The terminal side provides IHalfCloseableProtocol, so end of input does not close standard output."""
    assert IHalfCloseableProtocol.providedBy(TerminalSide(ChatClient(Clock())))


def test_write_connection_lost_is_harmless() -> None:
    """Standard output closing raises nothing, and typed lines still reach the server."""
    client, _, server, terminal = make_session()
    terminal.protocol.writeConnectionLost()
    terminal.type(b"hello\n")
    assert server.sent() == [b"hello"]
    assert not client.done.called


@pytest.fixture
def pipe_fds() -> Iterator[list[int]]:
    """Two OS pipes, as [stdin read, stdin write, stdout read, stdout write]; any still open are closed after."""
    fds = [*os.pipe(), *os.pipe()]
    yield fds
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def test_done_fires_when_stdout_was_closed_first(pipe_fds: list[int]) -> None:
    """Real StandardIO on pipes: once standard output has gone, the end of the chat still fires C{done}."""
    stdin_read, _, stdout_read, stdout_write = pipe_fds
    reactor = MemoryReactorClock()
    client = ChatClient(reactor)
    server = ServerConnection(client)
    transport = stdio.StandardIO(TerminalSide(client), stdin=stdin_read, stdout=stdout_write, reactor=reactor)
    os.close(stdout_read)
    pipe_fds.remove(stdout_read)
    # What a real reactor does when the stdout writer's "read hack" reports the pipe's reader is gone:
    writer = transport._writer
    reactor.removeReader(writer)
    writer.connectionLost(Failure(writer.doRead()))
    transport.protocol.dataReceived(b"/quit\n")
    server.close()
    assert client.done.called


# --- parse_args ----------------------------------------------------------------------------------


def test_parse_args_defaults() -> None:
    """Without arguments the client connects to 127.0.0.1:5000 and sends no nickname."""
    options = parse_args([])
    assert (options.host, options.port, options.nick) == ("127.0.0.1", 5000, None)
    assert (DEFAULT_HOST, DEFAULT_PORT) == ("127.0.0.1", 5000)


def test_parse_args_given_values() -> None:
    """--host, --port (as an int) and --nick are taken as given."""
    options = parse_args(["--host", "chat.example", "--port", "6667", "--nick", "alice"])
    assert (options.host, options.port, options.nick) == ("chat.example", 6667, "alice")


def test_parse_args_rejects_non_numeric_port(capsys: pytest.CaptureFixture[str]) -> None:
    """A non-numeric --port is a usage error (exit status 2)."""
    with pytest.raises(SystemExit) as raised:
        parse_args(["--port", "http"])
    assert raised.value.code == 2
    assert "--port" in capsys.readouterr().err


# --- run and main --------------------------------------------------------------------------------


class RecordingResolver(SynchronousResolver):
    """The memory reactor's resolver (every name is 127.0.0.1), noting each name and port asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []

    def resolveHostName(self, receiver: Any, hostName: str, portNumber: int = 0, *args: Any, **kwargs: Any) -> Any:
        self.asked.append((hostName, portNumber))
        return super().resolveHostName(receiver, hostName, portNumber, *args, **kwargs)


def test_run_connects_to_given_host_and_port(fake_stdio: FakeStdio) -> None:
    """C{run} looks up --host and connects to the address found at --port, through the reactor it is given."""
    reactor = MemoryReactorClock()
    resolver = RecordingResolver()
    reactor.installNameResolver(resolver)
    ensureDeferred(run(reactor, ["--host", "chat.example", "--port", "6000"]))
    assert resolver.asked == [("chat.example", 6000)]
    assert [(host, port) for host, port, *_ in reactor.tcpClients] == [("127.0.0.1", 6000)]


def test_run_connection_refused_exits_1(capsys: pytest.CaptureFixture[str], fake_stdio: FakeStdio) -> None:
    """A refused connection prints one 'cannot connect' line to stderr and exits 1 without touching stdio."""
    reactor = MemoryReactorClock()
    d = ensureDeferred(run(reactor, ["--host", "chat.example", "--port", "6000"]))
    _, _, factory, _, _ = reactor.tcpClients[0]
    factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionRefusedError()))
    reactor.advance(1)  # HostnameEndpoint notices it has no other address to try
    assert exit_code(d) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("chat: cannot connect to chat.example:6000: ")
    assert captured.err.count("\n") == 1 and captured.err.endswith("\n")
    assert "refused" in captured.err
    assert fake_stdio.terminals == []


def test_run_quit_then_server_close_exits_0(capsys: pytest.CaptureFixture[str], fake_stdio: FakeStdio) -> None:
    """C{run} sends the nickname, shows server lines, sends typed lines, and exits 0 when the server closes after /quit."""
    reactor = MemoryReactorClock()
    d = ensureDeferred(run(reactor, ["--nick", "alice"]))
    server = accept(reactor)
    [terminal] = fake_stdio.terminals
    server.protocol.dataReceived(b"welcome, alice\r\n")
    terminal.type(b"hi all\n/quit\n")
    assert server.value() == b"alice\r\nhi all\r\n/quit\r\n"
    assert not d.called
    server.loseConnection()
    assert terminal.shown() == ["welcome, alice"]
    assert not terminal.transport.connected
    assert exit_code(d) == 0
    assert capsys.readouterr().err == ""


def test_run_server_closes_on_its_own_exits_1(capsys: pytest.CaptureFixture[str], fake_stdio: FakeStdio) -> None:
    """When the server closes without our /quit, C{run} prints the reason to stderr and exits 1."""
    reactor = MemoryReactorClock()
    d = ensureDeferred(run(reactor, []))
    server = accept(reactor)
    server.loseConnection()
    assert exit_code(d) == 1
    assert capsys.readouterr().err == "chat: the server closed the connection\n"


def test_run_end_of_input_exits_0_after_grace_period(fake_stdio: FakeStdio) -> None:
    """With piped input, C{run} sends /quit at its end and exits 0 once its own grace-period close lands."""
    reactor = MemoryReactorClock()
    d = ensureDeferred(run(reactor, []))
    server = accept(reactor)
    [terminal] = fake_stdio.terminals
    terminal.type(b"alice\n")
    terminal.end_input()
    reactor.advance(QUIT_GRACE_SECONDS)
    assert server.value() == b"alice\r\n/quit\r\n"
    assert exit_code(d) == 0


def test_main_passes_given_argv_to_react(monkeypatch: pytest.MonkeyPatch) -> None:
    """C{main(argv)} hands C{run}, a copy of argv as a list and the process's console to C{react}."""
    calls: list[tuple[object, list[object]]] = []
    monkeypatch.setattr(client_module, "react", lambda f, args: calls.append((f, args)))
    main(("--nick", "alice"))
    [(function, (argv, console))] = calls
    assert (function, argv) == (run, ["--nick", "alice"])
    assert isinstance(console, Console) and (console.stdin_fd, console.stdout_fd) == (0, 1)


def test_main_defaults_to_sys_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """C{main()} without arguments uses the command line after the program name."""
    calls: list[tuple[object, list[object]]] = []
    monkeypatch.setattr(client_module, "react", lambda f, args: calls.append((f, args)))
    monkeypatch.setattr(client_module.sys, "argv", ["chat", "--port", "6000"])
    main()
    assert calls[0][1][0] == ["--port", "6000"]


def test_main_restores_the_console_when_react_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """However C{react} ends (it always raises SystemExit), C{main} restores the console after it."""
    restored: list[bool] = []

    def react(function: object, args: list[object]) -> None:
        raise SystemExit(3)

    monkeypatch.setattr(client_module, "react", react)
    monkeypatch.setattr(Console, "restore", lambda self: restored.append(True))
    with pytest.raises(SystemExit):
        main([])
    assert restored == [True]


def test_module_run_as_script_calls_main(monkeypatch: pytest.MonkeyPatch) -> None:
    """C{python -m chat_twisted.client} runs the package's __main__, which hands its command line to C{react}."""
    calls: list[list[object]] = []
    monkeypatch.setattr(client_module, "react", lambda f, args: calls.append(args))
    monkeypatch.setattr("sys.argv", ["chat", "--nick", "alice"])
    runpy.run_module("chat_twisted.client", run_name="__main__")
    assert calls[0][0] == ["--nick", "alice"]
