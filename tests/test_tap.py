"""
Tests for the ``twistd chat`` command line (chat_twisted.tap) and its plugin registration.

Listening goes through MemoryReactor, so no socket is ever opened.
"""

from __future__ import annotations

import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from twisted.application.service import IServiceMaker, MultiService
from twisted.internet.error import CannotListenError
from twisted.internet.testing import EventLoggingObserver, MemoryReactor, MemoryReactorClock
from twisted.logger import formatEvent
from twisted.plugin import getPlugins
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.web.server import Site

from chat_twisted import process, tap
from chat_twisted.core import ChatService
from chat_twisted.metrics import ChatMetrics
from chat_twisted.retention import DEFAULT_INTERVAL as INTERVAL, RetentionService, RetentionSettings
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.irc import IrcFactory
from chat_twisted.wire.line import DEFAULT_MAX_LINE, LineChatFactory


def parse(*args: str) -> tap.Options:
    """Return tap.Options parsed from C{args}."""
    options = tap.Options()
    options.parseOptions(list(args))
    return options


def started(*args: str) -> tuple[MultiService, MemoryReactorClock]:
    """
    Parse C{args}, build the service on a MemoryReactorClock and start it (without the web
    door's default listener, unless C{args} mention the web door: the tests of the others
    count their listeners).
    """
    if not any(arg.startswith("--web") or arg == "--no-web" for arg in args):
        args = (*args, "--no-web")
    reactor = MemoryReactorClock()
    service = tap.makeService(parse(*args), reactor=reactor)
    service.startService()
    return service, reactor


@pytest.fixture(autouse=True)
def open_file_limit_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep ProcessService from changing this test process's open-file limit."""
    monkeypatch.setattr(process, "raise_open_file_limit", lambda: 1024)


@pytest.fixture(autouse=True)
def opened_stores(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the SQLite store with the in-memory one and record the database paths asked for."""
    paths: list[str] = []

    def memory_store(path: str, reactor: object = None) -> MemoryStore:
        paths.append(path)
        return MemoryStore()

    monkeypatch.setattr(tap, "SqliteStore", memory_store)
    return paths


def test_make_service_opens_the_database_named_by_db(opened_stores: list[str]) -> None:
    """--db names the file the core's store opens."""
    tap.makeService(parse("--db", "/var/lib/chat/chat.sqlite3"), reactor=MemoryReactor())
    assert opened_stores == ["/var/lib/chat/chat.sqlite3"]


def test_make_service_passes_join_history_to_the_core() -> None:
    """--join-history reaches the core; 0 is allowed and turns the replay off."""
    for given, expected in (("0", 0), ("25", 25)):
        service = tap.makeService(parse("--join-history", given), reactor=MemoryReactor())
        core = next(child for child in service if isinstance(child, ChatService))
        assert core.join_history == expected


def test_join_history_must_be_a_whole_number() -> None:
    """--join-history refuses negative numbers and words."""
    for given in ("-1", "ten"):
        with pytest.raises(usage.UsageError, match="--join-history"):
            parse("--join-history", given)


def messages(observer: EventLoggingObserver) -> list[str]:
    """Return the formatted text of every event C{observer} saw."""
    return [formatEvent(event) for event in observer]


# --- Options ---------------------------------------------------------------------------------


def test_defaults() -> None:
    """With no arguments the server listens on tcp:5000 with the default line limit, local zone and database."""
    options = parse()
    assert options["port"] == ["tcp:5000:backlog=1024"]
    assert options["max-line"] == DEFAULT_MAX_LINE
    assert options["timezone"] is None
    assert options["db"] == "chat.sqlite3"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("6000", "tcp:6000:backlog=1024"),
        (" 6001 ", "tcp:6001:backlog=1024"),
        ("tcp:5000:interface=127.0.0.1", "tcp:5000:interface=127.0.0.1:backlog=1024"),
        ("tcp:5000:backlog=50", "tcp:5000:backlog=50"),
        ("unix:/tmp/x.sock", "unix:/tmp/x.sock"),
    ],
)
def test_port_accepts_numbers_and_endpoints(given: str, expected: str) -> None:
    """--port turns a bare number into tcp:N, and gives TCP ports a backlog of 1024 unless one is set."""
    assert parse("--port", given)["port"] == [expected]


def test_port_can_be_repeated() -> None:
    """Repeating --port (or -p) listens on each endpoint, in order, without the default."""
    options = parse("--port", "5001", "-p", "unix:/tmp/x.sock", "--port=tcp:5002:interface=127.0.0.1")
    assert options["port"] == [
        "tcp:5001:backlog=1024", "unix:/tmp/x.sock", "tcp:5002:interface=127.0.0.1:backlog=1024",
    ]


def test_ports_are_not_shared_between_options() -> None:
    """Each Options instance starts with its own empty port list."""
    parse("--port", "5001")
    assert parse()["port"] == ["tcp:5000:backlog=1024"]


@pytest.mark.parametrize("given", ["bogus:1", "tcp:abc", "tcp:", "tcp:5000:colour=blue", ""])
def test_invalid_port_is_a_usage_error(given: str) -> None:
    """An endpoint description that cannot be parsed is reported as a usage error."""
    with pytest.raises(usage.UsageError, match="--port"):
        parse("--port", given)


def test_ssl_port_with_missing_key_files_is_a_usage_error(tmp_path: Path) -> None:
    """An ssl: endpoint whose key and certificate files don't exist is a usage error, not a traceback."""
    missing = tmp_path / "missing.pem"
    with pytest.raises(usage.UsageError, match="--port"):
        parse("--port", f"ssl:5001:privateKey={missing}:certKey={missing}")


@pytest.mark.parametrize("given", ["tcp:99999", "70000"])
def test_port_numbers_out_of_range_are_usage_errors(given: str) -> None:
    """A port number above 65535 is refused when the options are parsed, not when listening."""
    with pytest.raises(usage.UsageError, match="65535"):
        parse("--port", given)


@pytest.mark.parametrize(("given", "expected"), [("64", 64), ("100", 100), ("1048576", 1048576)])
def test_max_line_accepts_whole_numbers_from_64(given: str, expected: int) -> None:
    """--max-line takes a whole number of at least 64."""
    assert parse("--max-line", given)["max-line"] == expected


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ("lots", "whole number"),
        ("4.5", "whole number"),
        ("", "whole number"),
        ("63", "at least 64"),
        ("-1", "at least 64"),
    ],
)
def test_max_line_rejects_non_numbers_and_small_values(given: str, complaint: str) -> None:
    """--max-line refuses anything that is not a whole number, or is below 64, with a usage error."""
    with pytest.raises(usage.UsageError, match=complaint):
        parse(f"--max-line={given}")


@pytest.mark.parametrize("given", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_timezone_accepts_iana_names(given: str) -> None:
    """--timezone takes an IANA zone name."""
    assert parse("--timezone", given)["timezone"] == ZoneInfo(given)


@pytest.mark.parametrize("given", ["Mars/Olympus_Mons", "Europe", "", "../etc/passwd", "/etc/localtime"])
def test_timezone_rejects_unknown_zones(given: str) -> None:
    """--timezone refuses an unknown, empty, relative or absolute-path zone name with a usage error."""
    with pytest.raises(usage.UsageError, match="time zone"):
        parse("--timezone", given)


@pytest.mark.parametrize("args", [["--db", "here.sqlite3"], ["--db=here.sqlite3"], ["-d", "here.sqlite3"]])
def test_db_can_be_given(args: list[str]) -> None:
    """--db (or -d) names the database file."""
    assert parse(*args)["db"] == "here.sqlite3"


def test_help_mentions_every_option() -> None:
    """The --help text documents --port, --db, --max-line and --timezone."""
    text = tap.Options().getUsage()
    for option in ["--port", "--db", "--max-line", "--timezone"]:
        assert option in text


# --- makeService -----------------------------------------------------------------------------


def test_make_service_listens_on_each_tcp_port() -> None:
    """Starting the service listens on every TCP --port, on its interface, with one LineChatFactory."""
    _, reactor = started("--port", "5001", "--port", "tcp:5002:interface=127.0.0.1")
    assert [(port, interface) for port, _, _, interface in reactor.tcpServers] == [(5001, ""), (5002, "127.0.0.1")]
    assert [backlog for _, _, backlog, _ in reactor.tcpServers] == [1024, 1024]
    factories = {id(factory): factory for _, factory, _, _ in reactor.tcpServers}
    [factory] = factories.values()
    assert isinstance(factory, LineChatFactory)


def test_make_service_listens_on_the_default_port() -> None:
    """With no --port the service listens on TCP port 5000 on every interface."""
    _, reactor = started()
    [(port, _, _, interface)] = reactor.tcpServers
    assert (port, interface) == (5000, "")


def test_make_service_passes_settings_to_factory_and_core() -> None:
    """--max-line reaches the factory and --timezone the core, which is a child of the returned service."""
    service, reactor = started("--max-line", "100", "--timezone", "Europe/Paris")
    [(_, factory, _, _)] = reactor.tcpServers
    assert factory.max_line == 100
    assert factory.service.timezone == ZoneInfo("Europe/Paris")
    assert factory.service in list(service)
    assert isinstance(factory.service, ChatService) and factory.service.running


def test_make_service_listens_on_unix_socket() -> None:
    """A unix: --port shows up as a UNIX listener and opens no TCP port."""
    _, reactor = started("--port", "unix:/tmp/x.sock")
    [(address, factory, *_)] = reactor.unixServers
    assert address == "/tmp/x.sock"
    assert isinstance(factory, LineChatFactory)
    assert reactor.tcpServers == []


def test_make_service_does_not_listen_before_start() -> None:
    """Building the service opens nothing; listening waits for startService."""
    reactor = MemoryReactor()
    tap.makeService(parse("--port", "5001"), reactor=reactor)
    assert reactor.tcpServers == []


def test_stop_service_stops_everything() -> None:
    """stopService fires its Deferred at once and leaves the listener and the core stopped."""
    service, _ = started("--port", "5001", "--port", "unix:/tmp/x.sock")
    children = list(service)
    assert len(children) >= 3 and all(child.running for child in children)  # two listeners and the core, at least
    results: list[object] = []
    service.stopService().addBoth(results.append)
    assert len(results) == 1 and not isinstance(results[0], BaseException)
    assert not any(child.running for child in children)
    assert not service.running


def test_listening_is_logged(logged: EventLoggingObserver) -> None:
    """Each listener logs the address it got (MemoryReactor reports IPv4 ports on 0.0.0.0)."""
    started("--port", "5001", "--port", "tcp:5002:interface=127.0.0.1")
    listening = [text for text in messages(logged) if "listening on" in text]
    assert listening == ["chat server listening on 0.0.0.0:5001", "chat server listening on 0.0.0.0:5002"]


def test_listening_on_unix_socket_is_logged_as_its_path(logged: EventLoggingObserver) -> None:
    """A UNIX listener logs its plain socket path."""
    started("--port", "unix:/tmp/x.sock")
    assert "chat server listening on /tmp/x.sock" in messages(logged)


class RefusingReactor(MemoryReactorClock):
    """A MemoryReactorClock (the retention service's timer needs a clock) on which every TCP port is already taken."""

    def listenTCP(self, port, factory, backlog=50, interface=""):  # type: ignore[no-untyped-def]
        raise CannotListenError(interface, port, OSError("address already in use"))


def test_failure_to_listen_fails_start_up(logged: EventLoggingObserver) -> None:
    """If a port cannot be opened, startService raises (so twistd stops) and nothing claims to be listening."""
    service = tap.makeService(parse("--port", "5001"), reactor=RefusingReactor())
    with pytest.raises(CannotListenError):
        service.startService()
    assert not [text for text in messages(logged) if "listening on" in text]


# --- the IRC door and a store that cannot open ---------------------------------------------------


def test_irc_is_off_by_default() -> None:
    """Without --irc no IRC listener is opened."""
    _, reactor = started()
    assert reactor.tcpServers and all(isinstance(factory, LineChatFactory) for _, factory, _, _ in reactor.tcpServers)


def test_irc_listens_on_each_endpoint_with_one_irc_factory(logged: EventLoggingObserver) -> None:
    """Each --irc opens a listener sharing one IrcFactory on the same core, logged as the IRC door."""
    _, reactor = started("--port", "5000", "--irc", "6667", "--irc", "tcp:6668:interface=127.0.0.1",
                         "--rate", "2", "--burst", "4")
    irc = [(port, factory) for port, factory, _, _ in reactor.tcpServers if isinstance(factory, IrcFactory)]
    assert [port for port, _ in irc] == [6667, 6668]
    assert irc[0][1] is irc[1][1]
    [line_factory] = [factory for _, factory, _, _ in reactor.tcpServers if isinstance(factory, LineChatFactory)]
    assert irc[0][1].service is line_factory.service
    assert (irc[0][1].rate, irc[0][1].burst) == (2.0, 4)
    assert "chat IRC listening on 0.0.0.0:6667" in messages(logged)


@pytest.mark.parametrize("given", ["bogus:1", "tcp:70000"])
def test_invalid_irc_endpoint_is_a_usage_error(given: str) -> None:
    """--irc is checked like --port, naming the option in the error."""
    with pytest.raises(usage.UsageError, match="--irc"):
        parse("--irc", given)


def test_a_store_that_cannot_open_stops_the_process_with_status_1(logged: EventLoggingObserver) -> None:
    """The failure handler tap gives the core logs which database failed, then stops the reactor and exits 1."""
    reactor = MemoryReactor()
    triggers: list[tuple[object, ...]] = []
    reactor.addSystemEventTrigger = lambda *args: triggers.append(args)  # type: ignore[method-assign]
    stopped: list[bool] = []
    reactor.stop = lambda: stopped.append(True)  # type: ignore[method-assign]
    fail = tap.stop_on_store_failure(reactor, "/nowhere/chat.sqlite3")
    fail(Failure(OSError("unable to open database file")))
    assert "cannot open the database '/nowhere/chat.sqlite3' (unable to open database file); stopping" in messages(logged)
    assert stopped == [True]
    assert triggers == [("after", "shutdown", os._exit, 1)]


def test_web_is_served_on_8080_by_default() -> None:
    """Without --web or --no-web the page and its WebSocket are served on TCP 8080, from the same core."""
    assert parse()["web"] == ["tcp:8080:backlog=1024"]
    _, reactor = started("--web", "8080")
    sites = [(port, factory) for port, factory, _, _ in reactor.tcpServers if isinstance(factory, Site)]
    assert [port for port, _ in sites] == [8080]
    [line_factory] = [factory for _, factory, _, _ in reactor.tcpServers if isinstance(factory, LineChatFactory)]
    websocket = sites[0][1].resource.children[b"ws"]
    assert websocket.factory.service is line_factory.service


def test_no_web_serves_no_page() -> None:
    """--no-web opens no web listener; with --web too it is a usage error."""
    _, reactor = started("--no-web")
    assert not [factory for _, factory, _, _ in reactor.tcpServers if isinstance(factory, Site)]
    with pytest.raises(usage.UsageError, match="--no-web"):
        parse("--no-web", "--web", "8081")


def test_web_origin_is_checked_and_reaches_the_websocket() -> None:
    """--web-origin takes origins (or *) and hands them to the WebSocket resource; anything else is refused."""
    _, reactor = started("--web", "8081", "--web-origin", "https://chat.example.org/", "--web-origin", "*")
    [site] = [factory for _, factory, _, _ in reactor.tcpServers if isinstance(factory, Site)]
    assert site.resource.children[b"ws"].allowed == {"https://chat.example.org", "*"}
    for bad in ("chat.example.org", "ftp://x", "https://a/b"):
        with pytest.raises(usage.UsageError, match="--web-origin"):
            parse("--web-origin", bad)


# --- retention -------------------------------------------------------------------------------


def retention_of(service: MultiService) -> RetentionService:
    """The retention service among C{service}'s children."""
    [retention] = [child for child in service if isinstance(child, RetentionService)]
    return retention


def test_retention_defaults_keep_history_and_expire_offline_messages_after_30_days() -> None:
    """Without options, history is never pruned and offline messages expire after 30 days."""
    service, reactor = started()
    assert retention_of(service).settings == RetentionSettings(None, None, 30.0)
    assert retention_of(service).running


def test_retention_options_reach_the_service_and_0_turns_a_rule_off() -> None:
    """--history-days, --history-max and --offline-days reach the retention service; 0 turns each off."""
    service, _ = started("--history-days", "90", "--history-max", "5000", "--offline-days", "7.5")
    assert retention_of(service).settings == RetentionSettings(90.0, 5000, 7.5)
    service, reactor = started("--history-days", "0", "--offline-days", "0")
    assert not retention_of(service).settings.enabled
    assert not [call for call in reactor.getDelayedCalls() if call.getTime() == reactor.seconds() + INTERVAL]


def test_retention_runs_its_first_pass_an_interval_after_start() -> None:
    """With a history rule, the first pass is scheduled one interval after start-up on the server's clock."""
    service, reactor = started("--history-days", "30")
    assert reactor.seconds() + INTERVAL in [call.getTime() for call in reactor.getDelayedCalls()]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--history-days", "-1"], "--history-days must be at least 0"),
        (["--history-days", "soon"], "--history-days takes a number"),
        (["--history-max", "1.5"], "--history-max takes a whole number"),
        (["--history-max", "-3"], "--history-max must be at least 0"),
        (["--offline-days", "nan"], "--offline-days must be at least 0"),
    ],
)
def test_retention_options_are_checked(args: list[str], complaint: str) -> None:
    """A negative or non-numeric retention option is refused when parsed, naming the option."""
    with pytest.raises(usage.UsageError, match=complaint):
        parse(*args)


# --- --metrics ----------------------------------------------------------------------------------


def test_metrics_listens_on_its_own_endpoint_and_feeds_from_the_core(logged: EventLoggingObserver) -> None:
    """--metrics adds a listener serving the core's registry (a Site, not the chat door), and logs its address."""
    _, reactor = started("--metrics", "tcp:9100:interface=127.0.0.1")
    [(_, chat, _, _), (port, site, _, interface)] = reactor.tcpServers
    assert (port, interface) == (9100, "127.0.0.1")
    assert isinstance(site, Site) and isinstance(chat, LineChatFactory)
    assert isinstance(chat.service.metrics, ChatMetrics)
    assert "chat metrics listening on 0.0.0.0:9100" in messages(logged)  # MemoryReactor reports 0.0.0.0


def test_no_metrics_listener_unless_asked() -> None:
    """Without --metrics the server opens no metrics port and its core counts nothing."""
    _, reactor = started()
    [(_, chat, _, _)] = reactor.tcpServers
    assert isinstance(chat, LineChatFactory) and not isinstance(chat.service.metrics, ChatMetrics)


def test_metrics_endpoint_is_checked_like_the_others() -> None:
    """A --metrics value that is no endpoint is refused when parsed; a bare number is a TCP port."""
    with pytest.raises(usage.UsageError, match="--metrics"):
        parse("--metrics", "nonsense:1")
    assert parse("--metrics", "9100")["metrics"] == ["tcp:9100:backlog=1024"]


# --- the twistd plugin -----------------------------------------------------------------------


def test_plugin_is_found_as_chat() -> None:
    """twistd finds exactly one service maker called "chat", built from tap.Options and tap.makeService."""
    [maker] = [plugin for plugin in getPlugins(IServiceMaker) if plugin.tapname == "chat"]
    assert maker.options is tap.Options
    assert maker.makeService is tap.makeService
    assert maker.description
