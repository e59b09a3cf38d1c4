"""
Tests for chat_twisted.process (open-file limit, SIGTERM as a clean stop) and the hardening options
of ``twistd chat`` (flood control, input/output bounds, connection limits, login timeout).

No real signal handler is installed and no rlimit is changed: resource and signal are monkeypatched,
and services are built on a MemoryReactor with the SQLite store replaced by the in-memory one.
"""

from __future__ import annotations

import faulthandler
import resource
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from twisted.application.service import MultiService
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.python import usage

from chat_twisted import process, tap
from chat_twisted.core import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_CONNECTIONS_PER_WINDOW,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_PER_ADDRESS,
    DEFAULT_NICK_TIMEOUT,
    ChatService,
)
from chat_twisted.process import ProcessService, raise_open_file_limit
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.line import (
    DEFAULT_BURST,
    DEFAULT_MAX_INPUT,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_RATE,
    LineChatFactory,
)


class RecordingReactor(MemoryReactor):
    """A MemoryReactor that records callFromThread calls instead of running them."""

    def __init__(self) -> None:
        super().__init__()
        self.from_thread: list[tuple[Callable[..., object], tuple[object, ...]]] = []

    def callFromThread(self, f: Callable[..., object], *args: object) -> None:
        self.from_thread.append((f, args))


class FakeRlimits:
    """Stands in for resource.getrlimit/setrlimit: reports C{soft}, C{hard}; records or fails setrlimit."""

    def __init__(self, soft: int, hard: int, error: Exception | None = None) -> None:
        self.soft, self.hard = soft, hard
        self.error = error
        self.asked: list[int] = []
        self.set: list[tuple[int, tuple[int, int]]] = []

    def getrlimit(self, which: int) -> tuple[int, int]:
        self.asked.append(which)
        return self.soft, self.hard

    def setrlimit(self, which: int, limits: tuple[int, int]) -> None:
        if self.error is not None:
            raise self.error
        self.set.append((which, limits))
        self.soft, self.hard = limits


@pytest.fixture
def rlimits(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeRlimits]:
    """Return a function that installs a FakeRlimits in place of the resource module's functions."""

    def install(soft: int, hard: int, error: Exception | None = None) -> FakeRlimits:
        fake = FakeRlimits(soft, hard, error)
        monkeypatch.setattr(resource, "getrlimit", fake.getrlimit)
        monkeypatch.setattr(resource, "setrlimit", fake.setrlimit)
        return fake

    return install


@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, Any]]:
    """Record signal.signal calls instead of installing handlers, and keep the open-file limit as is."""
    installed: list[tuple[int, Any]] = []
    monkeypatch.setattr(signal, "signal", lambda number, handler: installed.append((number, handler)))
    monkeypatch.setattr(process, "raise_open_file_limit", lambda: 4096)
    return installed


@pytest.fixture(autouse=True)
def memory_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build services with the in-memory store, so that no database file is created."""
    monkeypatch.setattr(tap, "SqliteStore", lambda path, reactor=None: MemoryStore())


def run_hooks(reactor: MemoryReactor) -> None:
    """Run what was registered with callWhenRunning, as the reactor would once it runs."""
    for f, args, kwargs in reactor.whenRunningHooks:
        f(*args, **kwargs)


# --- raise_open_file_limit -----------------------------------------------------------------------


def test_open_file_limit_raised_to_hard(rlimits: Callable[..., FakeRlimits]) -> None:
    """A soft limit below the hard one is raised to it, and the new limit is returned."""
    fake = rlimits(1024, 524288)
    assert raise_open_file_limit() == 524288
    assert fake.asked == [resource.RLIMIT_NOFILE]
    assert fake.set == [(resource.RLIMIT_NOFILE, (524288, 524288))]


def test_open_file_limit_left_when_already_at_hard(rlimits: Callable[..., FakeRlimits]) -> None:
    """A soft limit already equal to the hard one is left alone."""
    fake = rlimits(4096, 4096)
    assert raise_open_file_limit() == 4096
    assert fake.set == []


def test_open_file_limit_left_when_hard_is_infinite(rlimits: Callable[..., FakeRlimits]) -> None:
    """With no hard limit (RLIM_INFINITY), the soft limit is left alone and returned."""
    fake = rlimits(1024, resource.RLIM_INFINITY)
    assert raise_open_file_limit() == 1024
    assert fake.set == []


@pytest.mark.parametrize("error", [ValueError("not allowed"), OSError(1, "Operation not permitted")])
def test_open_file_limit_survives_setrlimit_errors(rlimits: Callable[..., FakeRlimits], error: Exception) -> None:
    """If setrlimit fails, the soft limit stays and is returned; nothing is raised."""
    fake = rlimits(1024, 4096, error)
    assert raise_open_file_limit() == 1024
    assert fake.soft == 1024


# --- ProcessService ------------------------------------------------------------------------------


def test_process_service_raises_limit_and_waits_for_reactor(
    handlers: list[tuple[int, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """startService raises the open-file limit (and logs it) at once, but takes over SIGTERM only once the reactor runs."""
    calls: list[None] = []

    def raise_limit() -> int:
        calls.append(None)
        return 8192

    monkeypatch.setattr(process, "raise_open_file_limit", raise_limit)
    reactor = RecordingReactor()
    service = ProcessService(reactor)
    with capturedLogs() as events:
        service.startService()
    assert service.running
    assert calls == [None]
    assert [formatEvent(event) for event in events] == ["open file limit: 8192"]
    assert len(reactor.whenRunningHooks) == 1
    assert handlers == []


def test_process_service_installs_sigterm_handler(handlers: list[tuple[int, Any]]) -> None:
    """Once the reactor runs, a SIGTERM handler is installed (and no other)."""
    reactor = RecordingReactor()
    ProcessService(reactor).startService()
    run_hooks(reactor)
    assert [number for number, _ in handlers] == [signal.SIGTERM]
    assert callable(handlers[0][1])


def test_sigusr2_dumps_every_threads_stack(handlers: list[tuple[int, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the reactor runs, SIGUSR2 is registered with faulthandler, to the process's own standard error."""
    registered: list[tuple[int, Any, bool]] = []
    monkeypatch.setattr(faulthandler, "register",
                        lambda number, file, all_threads: registered.append((number, file, all_threads)))
    reactor = RecordingReactor()
    ProcessService(reactor).startService()
    run_hooks(reactor)
    assert registered == [(signal.SIGUSR2, sys.__stderr__, True)]


def test_sigterm_stops_the_reactor_from_thread(handlers: list[tuple[int, Any]]) -> None:
    """The SIGTERM handler logs and asks the reactor, through callFromThread, to stop."""
    reactor = RecordingReactor()
    ProcessService(reactor).startService()
    run_hooks(reactor)
    ((_, handler),) = handlers
    with capturedLogs() as events:
        handler(signal.SIGTERM, None)
    assert reactor.from_thread == [(reactor.stop, ())]
    assert "Received SIGTERM, shutting down." in [formatEvent(event) for event in events]
    assert not reactor.hasStopped
    f, args = reactor.from_thread[0]
    f(*args)
    assert reactor.hasStopped


def test_process_service_started_on_running_reactor(handlers: list[tuple[int, Any]]) -> None:
    """Started after the reactor has run, the service installs its SIGTERM handler at once."""
    reactor = RecordingReactor()
    reactor.run()
    ProcessService(reactor).startService()
    assert [number for number, _ in handlers] == [signal.SIGTERM]


def test_no_handler_installed_off_the_main_thread(handlers: list[tuple[int, Any]]) -> None:
    """If the reactor runs outside the main thread, no signal handler is installed (signal.signal would fail)."""
    reactor = RecordingReactor()
    ProcessService(reactor).startService()
    worker = threading.Thread(target=run_hooks, args=(reactor,))
    worker.start()
    worker.join()
    assert handlers == []


# --- tap.Options: the hardening options -----------------------------------------------------------


def parse(*args: str) -> tap.Options:
    """Return tap.Options parsed from C{args}."""
    options = tap.Options()
    options.parseOptions(list(args))
    return options


def test_option_defaults() -> None:
    """Without arguments each hardening option has its documented default."""
    options = parse()
    assert options["rate"] == DEFAULT_RATE
    assert options["burst"] == DEFAULT_BURST
    assert options["max-input"] == DEFAULT_MAX_INPUT
    assert options["max-output"] == DEFAULT_MAX_OUTPUT
    assert options["max-clients"] == DEFAULT_MAX_CLIENTS
    assert options["max-per-ip"] == DEFAULT_MAX_PER_ADDRESS
    assert options["nick-timeout"] == DEFAULT_NICK_TIMEOUT
    assert (options["connections-per-window"], options["connection-window"]) == (32, 600.0)
    assert not options["limit-loopback"]


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("rate", "2.5", 2.5),
        ("rate", "0", 0.0),
        ("rate", "100", 100.0),
        ("burst", "1", 1),
        ("burst", "50", 50),
        ("max-input", "1024", 1024),
        ("max-input", "65536", 65536),
        ("max-output", "4096", 4096),
        ("max-output", "10485760", 10485760),
        ("max-clients", "1", 1),
        ("max-clients", "50000", 50000),
        ("max-per-ip", "1", 1),
        ("max-per-ip", "64", 64),
        ("connections-per-window", "0", 0),
        ("connections-per-window", "100", 100),
        ("connection-window", "1", 1.0),
        ("connection-window", "3600", 3600.0),
        ("nick-timeout", "0", 0.0),
        ("nick-timeout", "30.5", 30.5),
    ],
)
def test_option_valid_values(option: str, value: str, expected: float) -> None:
    """Each hardening option accepts values at and above its minimum, as an int or a float as documented."""
    parsed = parse(f"--{option}", value)[option]
    assert parsed == expected
    assert type(parsed) is type(expected)
    assert parse(f"--{option}={value}")[option] == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "-1"], "--rate must be at least 0"),
        (["--rate", "x"], "--rate takes a number, not 'x'"),
        (["--burst", "0"], "--burst must be at least 1"),
        (["--burst", "2.5"], "--burst takes a whole number, not '2.5'"),
        (["--max-input", "10"], "--max-input must be at least 1024"),
        (["--max-output", "10"], "--max-output must be at least 4096"),
        (["--max-clients", "0"], "--max-clients must be at least 1"),
        (["--max-clients", "many"], "--max-clients takes a whole number, not 'many'"),
        (["--max-per-ip", "0"], "--max-per-ip must be at least 1"),
        (["--connections-per-window", "-1"], "--connections-per-window must be at least 0"),
        (["--connections-per-window", "2.5"], "--connections-per-window takes a whole number, not '2.5'"),
        (["--connection-window", "0"], "--connection-window must be at least 1"),
        (["--nick-timeout", "-1"], "--nick-timeout must be at least 0"),
        (["--nick-timeout", "soon"], "--nick-timeout takes a number, not 'soon'"),
    ],
)
def test_option_invalid_values(args: list[str], message: str) -> None:
    """An out-of-range or non-numeric value is a UsageError that names the option."""
    with pytest.raises(usage.UsageError) as error:
        parse(*args)
    assert message in str(error.value)


@pytest.mark.parametrize("option", ["rate", "nick-timeout"])
def test_option_rejects_nan(option: str) -> None:
    """'nan' is not accepted as a rate or timeout (it would silently turn flood control or the timer off)."""
    with pytest.raises(usage.UsageError) as error:
        parse(f"--{option}", "nan")
    assert f"--{option}" in str(error.value)


def test_limit_loopback_flag() -> None:
    """--limit-loopback is a flag that is off unless given."""
    assert parse("--limit-loopback")["limit-loopback"]
    with pytest.raises(usage.UsageError):
        parse("--limit-loopback=yes")


# --- makeService ---------------------------------------------------------------------------------


def built(*args: str) -> tuple[MultiService, LineChatFactory, ChatService]:
    """Parse C{args}, build the service on a MemoryReactor; return it, its line factory and its core."""
    top = tap.makeService(parse(*args), reactor=MemoryReactor())
    (factory,) = {service.factory for service in top
                  if isinstance(service, tap.ListeningService) and isinstance(service.factory, LineChatFactory)}
    (core,) = [service for service in top if isinstance(service, ChatService)]
    assert factory.service is core
    return top, factory, core


def test_make_service_passes_hardening_options() -> None:
    """makeService hands the flood, input and output options to the factory and the limits to the core."""
    _, factory, core = built(
        "--rate", "2.5", "--burst", "7", "--max-input", "65536", "--max-output", "8192",
        "--max-clients", "300", "--max-per-ip", "4", "--limit-loopback", "--nick-timeout", "15",
    )
    assert (factory.rate, factory.burst, factory.max_input, factory.max_output) == (2.5, 7, 65536, 8192)
    assert (core.limits.max_total, core.limits.max_per_address, core.limits.limit_loopback) == (300, 4, True)
    assert core.logins.nick_timeout == 15.0


def test_make_service_passes_the_connection_rate_on_the_reactor_clock() -> None:
    """--connections-per-window and --connection-window reach the core's limits, which count on the reactor's clock."""
    reactor = MemoryReactorClock()
    top = tap.makeService(parse("--connections-per-window", "2", "--connection-window", "60"), reactor=reactor)
    (core,) = [service for service in top if isinstance(service, ChatService)]
    assert (core.limits.per_window, core.limits.window) == (2, 60.0)
    for _ in range(2):
        assert core.limits.admit("192.0.2.1") is None
    assert core.limits.admit("192.0.2.1") is not None
    reactor.advance(60)
    assert core.limits.admit("192.0.2.1") is None


def test_make_service_defaults() -> None:
    """Without options the factory and core get the default flood, bound and connection limits."""
    _, factory, core = built()
    assert (factory.rate, factory.burst, factory.max_output) == (DEFAULT_RATE, DEFAULT_BURST, DEFAULT_MAX_OUTPUT)
    assert factory.max_input == DEFAULT_MAX_INPUT
    assert (core.limits.max_total, core.limits.max_per_address) == (DEFAULT_MAX_CLIENTS, DEFAULT_MAX_PER_ADDRESS)
    assert core.limits.limit_loopback is False
    assert (core.limits.per_window, core.limits.window) == (DEFAULT_CONNECTIONS_PER_WINDOW, DEFAULT_CONNECTION_WINDOW)
    assert core.logins.nick_timeout == DEFAULT_NICK_TIMEOUT


def test_make_service_max_input_at_least_a_line() -> None:
    """A --max-input smaller than one longest line is raised to --max-line plus CRLF in the factory."""
    _, factory, _ = built("--max-input", "1024", "--max-line", "4096")
    assert factory.max_input == 4098


def test_make_service_includes_a_process_service() -> None:
    """makeService adds one ProcessService, ahead of the core and the listeners."""
    top, _, _ = built("--port", "tcp:5000", "--port", "tcp:5001")
    services = list(top)
    assert [type(service) for service in services].count(ProcessService) == 1
    assert isinstance(services[0], ProcessService)


def test_started_service_registers_sigterm_hook(handlers: list[tuple[int, Any]]) -> None:
    """Starting the built service registers the ProcessService's hook on the reactor it was given."""
    reactor = MemoryReactorClock()  # with a clock, for the retention service's timer
    top = tap.makeService(parse(), reactor=reactor)
    top.startService()
    try:
        run_hooks(reactor)
        assert [number for number, _ in handlers] == [signal.SIGTERM]
    finally:
        top.stopService()
