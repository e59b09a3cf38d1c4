"""
Unit tests for how the client starts: options from the command line, C{CHAT_*} variables and the
config file; L{Console} on a pseudo-terminal (raw mode and back, window size, SIGWINCH); and
C{run} choosing interactive mode, on a memory reactor with a fake console and fake stdio.
"""

from __future__ import annotations

import fcntl
import os
import signal
import struct
import termios
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from twisted.conch.insults.insults import ServerProtocol
from twisted.internet.defer import ensureDeferred
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransportWithDisconnection
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

import chat_twisted.client.app as app
from chat_twisted.client import Console, InteractiveTerminal, parse_args, run
from chat_twisted.client.console import DEFAULT_SIZE, colour_wanted
from chat_twisted.client.options import default_config_path
from tests.helpers import CTRL_C, Screen, accept, exit_code, result_of, write_self_signed

#: No CHAT_* variables or user config file of whoever runs the tests reach the client here.
pytestmark = pytest.mark.usefixtures("no_user_settings")


# --- options: environment and config file -------------------------------------------------------------


def write_config(directory: Path, text: str) -> Path:
    """Write C{text} as the client's config file under XDG config home C{directory}; return its path."""
    path = directory / "chat_twisted" / "client.ini"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, "utf-8")
    return path


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty XDG config home for this test."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config"


def test_environment_gives_defaults() -> None:
    """CHAT_HOST, CHAT_PORT, CHAT_NICK and CHAT_TLS give the defaults."""
    environ = {"CHAT_HOST": "chat.example", "CHAT_PORT": "6000", "CHAT_NICK": "alice", "CHAT_TLS": "yes"}
    options = parse_args([], environ)
    assert (options.host, options.port, options.nick, options.tls) == ("chat.example", 6000, "alice", True)


def test_command_line_wins_over_environment() -> None:
    """A command-line option beats the variable; --no-tls turns off TLS that CHAT_TLS turned on."""
    environ = {"CHAT_HOST": "chat.example", "CHAT_PORT": "6000", "CHAT_TLS": "1"}
    options = parse_args(["--host", "other", "--port", "7000", "--no-tls"], environ)
    assert (options.host, options.port, options.tls) == ("other", 7000, False)


def test_config_file_gives_defaults(config_home: Path, tmp_path: Path) -> None:
    """The [client] section of ~/.config/chat_twisted/client.ini gives defaults, ~ expanded in ca."""
    _, cert = write_self_signed(tmp_path)
    write_config(config_home, f"[client]\nhost = chat.example\nport = 6001\nnick = bob\nca = {cert}\ncolor = no\n")
    options = parse_args([], {"XDG_CONFIG_HOME": str(config_home)})
    assert (options.host, options.port, options.nick, options.no_color) == ("chat.example", 6001, "bob", True)
    assert options.ca is not None and options.tls


def test_environment_wins_over_config_file(config_home: Path) -> None:
    """A variable beats the file, and the command line beats both."""
    write_config(config_home, "[client]\nhost = from-file\nport = 6001\nnick = bob\n")
    environ = {"XDG_CONFIG_HOME": str(config_home), "CHAT_HOST": "from-env"}
    options = parse_args(["--nick", "carol"], environ)
    assert (options.host, options.port, options.nick) == ("from-env", 6001, "carol")


def test_config_option_names_another_file(tmp_path: Path) -> None:
    """--config FILE reads that file instead; a file without a [client] section changes nothing."""
    path = tmp_path / "other.ini"
    path.write_text("[client]\nport = 6002\n", "utf-8")
    assert parse_args(["--config", str(path)], {}).port == 6002
    path.write_text("[server]\nport = 1\n", "utf-8")
    assert parse_args(["--config", str(path)], {}).port == 5000


def test_default_config_path_follows_xdg(tmp_path: Path) -> None:
    """The file is under $XDG_CONFIG_HOME, else under ~/.config."""
    assert default_config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/chat_twisted/client.ini")
    assert default_config_path({"HOME": "/home/u"}) == Path("/home/u/.config/chat_twisted/client.ini")


@pytest.mark.parametrize(
    ("argv", "environ", "config", "message"),
    [
        ([], {"CHAT_PORT": "http"}, None, "CHAT_PORT: invalid value 'http'"),
        ([], {"CHAT_TLS": "maybe"}, None, "CHAT_TLS: invalid value 'maybe'"),
        ([], {"CHAT_CA": "/no/such.pem"}, None, "CHAT_CA: cannot read '/no/such.pem'"),
        ([], {}, "[client]\nhots = x\n", "unknown setting 'hots'"),
        ([], {}, "[client]\nport = 50x\n", "client.ini: port: invalid value '50x'"),
        ([], {}, "not an ini file", "cannot read config file"),
        (["--config", "/no/such.ini"], {}, None, "config file '/no/such.ini' not found"),
    ],
)
def test_bad_settings_are_usage_errors(
    argv: list[str],
    environ: dict[str, str],
    config: str | None,
    message: str,
    config_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad value from a variable or the file, or a missing --config file, is a usage error naming where it came from."""
    if config is not None:
        write_config(config_home, config)
    with pytest.raises(SystemExit) as raised:
        parse_args(argv, {"XDG_CONFIG_HOME": str(config_home), **environ})
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_empty_values_are_ignored(config_home: Path) -> None:
    """An empty setting (nick =) leaves the built-in default."""
    write_config(config_home, "[client]\nnick =\n")
    assert parse_args([], {"XDG_CONFIG_HOME": str(config_home)}).nick is None


@pytest.mark.parametrize(
    ("option", "environ", "wanted"),
    [
        (False, {"TERM": "xterm"}, True),
        (True, {"TERM": "xterm"}, False),
        (False, {"TERM": "xterm", "NO_COLOR": "1"}, False),
        (False, {"TERM": "xterm", "NO_COLOR": ""}, True),
        (False, {"TERM": "dumb"}, False),
    ],
)
def test_colour_wanted(option: bool, environ: dict[str, str], wanted: bool) -> None:
    """Colour is on unless --no-color, a non-empty NO_COLOR or TERM=dumb turns it off."""
    assert colour_wanted(option, environ) is wanted


def test_no_color_option() -> None:
    """--no-color (or --no-colour) is parsed."""
    assert parse_args(["--no-color"], {}).no_color
    assert parse_args(["--no-colour"], {}).no_color
    assert not parse_args([], {}).no_color


# --- Console on a pseudo-terminal ----------------------------------------------------------------------


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal: (controller fd, terminal fd), both closed after the test."""
    controller, terminal = os.openpty()
    yield controller, terminal
    os.close(controller)
    os.close(terminal)


def set_window(fd: int, columns: int, rows: int) -> None:
    """Set the window size of the terminal on C{fd}."""
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def test_console_interactive_only_on_a_capable_terminal(pty: tuple[int, int], tmp_path: Path) -> None:
    """Interactive needs a terminal on both standard input and output, and a TERM other than dumb."""
    _, tty = pty
    assert Console(tty, tty, {"TERM": "xterm"}).is_interactive()
    assert not Console(tty, tty, {"TERM": "dumb"}).is_interactive()
    assert not Console(tty, tty, {}).is_interactive()
    read_end, write_end = os.pipe()
    try:
        assert not Console(read_end, tty, {"TERM": "xterm"}).is_interactive()
        assert not Console(tty, write_end, {"TERM": "xterm"}).is_interactive()
    finally:
        os.close(read_end)
        os.close(write_end)


def test_console_size(pty: tuple[int, int]) -> None:
    """The window size is read from the terminal; a terminal reporting 0x0, or no terminal, gives 80x24."""
    _, tty = pty
    set_window(tty, 100, 30)
    assert Console(tty, tty).size() == (100, 30)
    set_window(tty, 0, 0)
    assert Console(tty, tty).size() == DEFAULT_SIZE
    read_end, write_end = os.pipe()
    try:
        assert Console(read_end, write_end).size() == DEFAULT_SIZE
    finally:
        os.close(read_end)
        os.close(write_end)


def test_console_raw_mode_and_restore(pty: tuple[int, int]) -> None:
    """Raw mode turns off echo and line editing; restore puts back exactly the saved settings, once."""
    _, tty = pty
    before = termios.tcgetattr(tty)
    console = Console(tty, tty)
    console.enter_raw()
    raw = termios.tcgetattr(tty)
    assert not raw[3] & (termios.ECHO | termios.ICANON | termios.ISIG)
    console.enter_raw()  # a second call keeps the first saved settings
    console.restore()
    assert termios.tcgetattr(tty) == before
    console.enter_raw()
    console.restore()
    console.restore()
    assert termios.tcgetattr(tty) == before


def test_console_restore_failure_is_logged_not_raised(pty: tuple[int, int]) -> None:
    """If the terminal is gone by the time settings are restored, that is logged, not raised."""
    controller, tty = pty
    spare = os.dup(tty)
    console = Console(spare, spare)
    console.enter_raw()
    os.close(spare)
    with capturedLogs() as events:
        console.restore()
    (failure,) = [event for event in events if "log_failure" in event]
    assert failure["log_failure"].check(termios.error)
    assert failure["log_format"] == "could not restore the terminal's settings"


def test_console_restore_without_raw_does_nothing() -> None:
    """Restoring a console never switched to raw mode touches nothing (it may not even be a terminal)."""
    Console(-1, -1).restore()


def test_console_watch_size_on_sigwinch() -> None:
    """SIGWINCH makes the callback run on the reactor thread; restore puts the old handler back."""
    calls: list[Callable[[], None]] = []
    reactor = SimpleNamespace(callFromThread=calls.append)
    resized: list[bool] = []
    old = signal.getsignal(signal.SIGWINCH)
    console = Console()
    console.watch_size(lambda: resized.append(True), reactor)  # type: ignore[arg-type]
    try:
        os.kill(os.getpid(), signal.SIGWINCH)
        assert len(calls) == 1
        calls[0]()
        assert resized == [True]
    finally:
        console.restore()
    assert signal.getsignal(signal.SIGWINCH) == old


# --- run in interactive mode ---------------------------------------------------------------------------


class FakeConsole(Console):
    """A console that says it is an interactive 60x8 terminal and records what is done to it."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        super().__init__(environ={"TERM": "xterm"} if environ is None else environ)
        self.events: list[str] = []
        self.resized: Callable[[], None] | None = None
        self.window = (60, 8)

    def is_interactive(self) -> bool:
        return True

    def size(self) -> tuple[int, int]:
        return self.window

    def enter_raw(self) -> None:
        self.events.append("raw")

    def watch_size(self, callback: Callable[[], None], reactor: Any) -> None:
        self.events.append("watch")
        self.resized = callback

    def restore(self) -> None:
        self.events.append("restore")


class FakeTerminalStdio:
    """Stands in for C{twisted.internet.stdio}: attaches the protocol to a StringTransport and a L{Screen}."""

    def __init__(self) -> None:
        self.protocol: Any = None
        self.transport = StringTransportWithDisconnection()
        self.screen = Screen(60, 8)

    def StandardIO(self, protocol: Any, reactor: object = None) -> StringTransportWithDisconnection:
        self.protocol = protocol
        self.transport.protocol = protocol
        protocol.makeConnection(self.transport)
        return self.transport

    def text(self) -> list[str]:
        """What the screen shows now."""
        self.screen.feed(self.transport.value())
        self.transport.clear()
        return self.screen.text()


@pytest.fixture
def fake_terminal(monkeypatch: pytest.MonkeyPatch) -> FakeTerminalStdio:
    """Make C{run} attach its terminal side to a StringTransport instead of the real stdio."""
    fake = FakeTerminalStdio()
    monkeypatch.setattr(app, "stdio", SimpleNamespace(StandardIO=fake.StandardIO))
    return fake


def test_run_interactive_chats_and_quits(fake_terminal: FakeTerminalStdio, capsys: pytest.CaptureFixture[str]) -> None:
    """On a terminal, C{run} enters raw mode, draws under insults, sends typed lines, and exits 0 after /quit, restored."""
    reactor = MemoryReactorClock()
    console = FakeConsole()
    d = ensureDeferred(run(reactor, ["--nick", "alice"], console))
    server = accept(reactor)
    assert isinstance(fake_terminal.protocol, ServerProtocol)
    assert isinstance(fake_terminal.protocol.terminalProtocol, InteractiveTerminal)
    assert console.events == ["raw", "watch"]
    assert reactor.triggers["before"]["shutdown"][0][0] == console.restore
    server.protocol.dataReceived(b"* Welcome, alice! 1 user online. You are in lobby; type /help for commands.\r\n")
    fake_terminal.protocol.dataReceived(b"hi\r/quit\r")
    assert server.value() == b"alice\r\nhi\r\n/quit\r\n"
    assert fake_terminal.text() == [
        "* Welcome, alice! 1 user online. You are in lobby; type",
        "  /help for commands.",
        "alice>",
    ]
    server.loseConnection()
    assert exit_code(d) == 0
    assert console.events[-1] == "restore"
    assert capsys.readouterr().err == ""


def test_run_interactive_uses_colour_unless_told_not_to(fake_terminal: FakeTerminalStdio) -> None:
    """Colour is on by default on a terminal, and off with NO_COLOR."""
    reactor = MemoryReactorClock()
    ensureDeferred(run(reactor, [], FakeConsole()))
    accept(reactor)
    assert fake_terminal.protocol.terminalProtocol.colour
    reactor = MemoryReactorClock()
    ensureDeferred(run(reactor, [], FakeConsole({"TERM": "xterm", "NO_COLOR": "1"})))
    accept(reactor)
    assert not fake_terminal.protocol.terminalProtocol.colour


def test_run_interactive_reconnects_through_the_endpoint(fake_terminal: FakeTerminalStdio) -> None:
    """When the server goes away, C{run}'s client connects again to the same address after the back-off."""
    reactor = MemoryReactorClock()
    d = ensureDeferred(run(reactor, ["--nick", "alice", "--port", "6000"], FakeConsole()))
    accept(reactor).loseConnection()
    assert not d.called
    assert "lost the connection to 127.0.0.1:6000" in fake_terminal.text()[0]
    reactor.advance(30)
    assert len(reactor.tcpClients) == 2
    new_server = accept(reactor)
    assert new_server.value() == b"alice\r\n"
    assert fake_terminal.text()[-2] == "*** reconnected to 127.0.0.1:6000"
    fake_terminal.protocol.dataReceived(CTRL_C)
    assert new_server.value() == b"alice\r\n/quit\r\n"
    new_server.loseConnection()
    assert exit_code(d) == 0


def test_run_interactive_resize_repaints(fake_terminal: FakeTerminalStdio) -> None:
    """A SIGWINCH (through the console) gives the terminal side the new size."""
    reactor = MemoryReactorClock()
    console = FakeConsole()
    ensureDeferred(run(reactor, [], console))
    accept(reactor)
    console.window = (30, 5)
    assert console.resized is not None
    console.resized()
    terminal = fake_terminal.protocol.terminalProtocol
    assert (terminal.width, terminal.height) == (30, 5)


def test_run_interactive_connect_failure_exits_before_raw_mode(capsys: pytest.CaptureFixture[str]) -> None:
    """Failing to connect at first ends with status 1 without ever touching the terminal's mode."""
    reactor = MemoryReactorClock()
    console = FakeConsole()
    d = ensureDeferred(run(reactor, [], console))
    _, _, factory, _, _ = reactor.tcpClients[0]
    factory.clientConnectionFailed(reactor.connectors[0], Failure(ConnectionRefusedError()))
    reactor.advance(1)  # HostnameEndpoint notices it has no other address to try
    assert exit_code(d) == 1
    assert "raw" not in console.events
    assert capsys.readouterr().err.startswith("chat: cannot connect to 127.0.0.1:5000: ")


def test_run_restores_console_if_attaching_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """If setting up the interactive terminal raises, the console is still restored."""
    reactor = MemoryReactorClock()
    console = FakeConsole()

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no stdio")

    monkeypatch.setattr(app, "stdio", SimpleNamespace(StandardIO=broken))
    d = ensureDeferred(run(reactor, [], console))
    accept(reactor)
    failure = result_of(d)
    assert failure.check(RuntimeError)
    assert console.events[-1] == "restore"
