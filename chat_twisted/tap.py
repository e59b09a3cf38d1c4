"""
The ``twistd chat`` command line: L{Options} and L{makeService}.

Nothing happens at import time; L{makeService} builds the core and one listening service per
C{--port} and returns them in one L{MultiService} for twistd to start and stop.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.threads import deferToThreadPool
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from chat_twisted.core import (
    DEFAULT_CONNECTION_WINDOW,
    DEFAULT_CONNECTIONS_PER_WINDOW,
    DEFAULT_JOIN_HISTORY,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_MAX_PER_ADDRESS,
    DEFAULT_NICK_TIMEOUT,
    ChatService,
)
from chat_twisted.bus.redis import RedisBus, is_redis_url, parse_redis_url
from chat_twisted.errors import InvalidName
from chat_twisted.limits import ConnectionLimits
from chat_twisted.metrics import ChatMetrics, metrics_site
from chat_twisted.model import check_name
from chat_twisted.passwords import PasswordHasher
from chat_twisted.process import ProcessService
from chat_twisted.rooms import QUIET_JOINS_ABOVE
from chat_twisted.retention import DEFAULT_OFFLINE_DAYS, RetentionService, RetentionSettings
from chat_twisted.store.postgres import PostgresStore, connection_parameters, is_postgres_url, redacted
from chat_twisted.store.sqlite import SqliteStore
from chat_twisted.wire.line import (
    DEFAULT_BURST,
    DEFAULT_MAX_INPUT,
    DEFAULT_MAX_LINE,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_RATE,
    LineChatFactory,
    describe_peer,
)
from chat_twisted.wire.irc import IrcFactory
from chat_twisted.wire.web import WebChatFactory, make_site

log = Logger()

DEFAULT_PORT = "tcp:5000"
DEFAULT_WEB = "tcp:8080"
DEFAULT_DB = "chat.sqlite3"
#: Listen backlog for TCP and TLS ports: room for a burst of connections while the server is busy.
BACKLOG = 1024


def endpoint_description(value: str) -> str:
    """
    Return C{value} as a server endpoint description: a bare port number becomes C{tcp:N}, and
    TCP and TLS listeners get a listen backlog of L{BACKLOG} unless one is given.
    """
    value = value.strip()
    if value.isdigit():
        value = f"tcp:{value}"
    if value.split(":", 1)[0] in ("tcp", "tcp6", "ssl") and "backlog=" not in value:
        value += f":backlog={BACKLOG}"
    return value


def _number(option: str, minimum: float, kind: type[int] | type[float] = int) -> Callable[[str], float]:
    """Return a coercer for C{--option}: a number of C{kind}, at least C{minimum}."""

    def coerce(value: str) -> float:
        try:
            number = kind(value)
        except ValueError:
            raise ValueError(f"--{option} takes a {'whole ' if kind is int else ''}number, not {value!r}") from None
        if not number >= minimum:  # also refuses nan
            raise ValueError(f"--{option} must be at least {minimum:g}")
        return number

    coerce.coerceDoc = ""  # type: ignore[attr-defined]  # usage.Options appends this to --help
    return coerce


def _parameter(name: str, default: float, minimum: float, doc: str, kind: type = int) -> list[object]:
    return [name, None, default, doc, _number(name, minimum, kind)]


class Options(usage.Options):
    """Command-line options of C{twistd chat}; each value is checked as it is parsed."""

    synopsis = "[options]"
    longdesc = (
        "Runs the chat_twisted server. Connect with `nc HOST PORT` or "
        "`python -m chat_twisted.client --host HOST --port PORT`. "
        "Every limit is per server process; docs/operations.md explains each."
    )
    optParameters = [
        ["bus", None, None,
         "Share the chat with other server processes through Redis, given as a URL:"
         " redis://[:PASSWORD@]HOST[:PORT][/DB]. Use it with a PostgreSQL --db that they share."
         " [default: none: this process alone]"],
        ["bus-prefix", None, "chat:",
         "What every Redis key and channel of this cluster starts with: processes of one cluster share it;"
         " another prefix makes another cluster on the same Redis."],
        ["db", "d", DEFAULT_DB,
         "Where history and accounts are kept: a SQLite file (created if missing), or a PostgreSQL"
         " database (which must exist; its tables are created) given as a URL:"
         " postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME"],
        _parameter("join-history", DEFAULT_JOIN_HISTORY, 0,
                   "Messages a user is shown on entering a room; 0 turns it off."),
        _parameter("max-line", DEFAULT_MAX_LINE, 64,
                   "Longest line a client may send, in bytes; longer lines get an error and are dropped."),
        _parameter("rate", DEFAULT_RATE, 0,
                   "Flood control: lines per second per connection once the burst is spent; 0 turns it off.", float),
        _parameter("burst", DEFAULT_BURST, 1, "Flood control: lines a connection may send at once."),
        _parameter("max-input", DEFAULT_MAX_INPUT, 1024,
                   "Bytes of waiting input a flooding connection may pile up before it is closed"
                   " (at least --max-line + 2)."),
        _parameter("max-output", DEFAULT_MAX_OUTPUT, 4096,
                   "Bytes of unsent output a connection that stopped reading may pile up before it is dropped."),
        _parameter("max-clients", DEFAULT_MAX_CLIENTS, 1, "Connections the server accepts in all."),
        _parameter("max-per-ip", DEFAULT_MAX_PER_ADDRESS, 1,
                   "Connections accepted from one IP address (one /64 for IPv6)."),
        _parameter("connections-per-window", DEFAULT_CONNECTIONS_PER_WINDOW, 0,
                   "New connections accepted from one IP address (one /64 for IPv6) in each"
                   " --connection-window; 0 turns it off."),
        _parameter("connection-window", DEFAULT_CONNECTION_WINDOW, 1,
                   "Seconds of the window --connections-per-window counts in.", float),
        _parameter("nick-timeout", DEFAULT_NICK_TIMEOUT, 0,
                   "Seconds a connection has to choose a nickname; 0 turns it off.", float),
        _parameter("quiet-joins-above", QUIET_JOINS_ABOVE, 0,
                   "In a room with more members than this, others are shown a newcomer joining only once"
                   " the newcomer speaks (so a storm of logins costs O(N), not O(N^2)); 0: always shown."),
        _parameter("history-days", 0, 0,
                   "Delete room messages older than this many days, in small batches in the background;"
                   " 0 keeps them forever.", float),
        _parameter("history-max", 0, 0,
                   "Keep at most this many messages per room, deleting the oldest beyond it in the"
                   " background; 0 sets no limit."),
        _parameter("offline-days", DEFAULT_OFFLINE_DAYS, 0,
                   "Delete private messages kept for an offline user after this many days; 0 keeps them"
                   " until they are read.", float),
    ]
    optFlags = [
        ["limit-loopback", None,
         "Apply --max-per-ip and --connections-per-window to loopback addresses too (exempt by default)."],
        ["no-web", None, "Serve no web page or WebSocket."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["port"] = []
        self["irc"] = []
        self["web"] = []
        self["web-origin"] = []
        self["metrics"] = []
        self["oper"] = []
        self["timezone"] = None

    def _endpoint(self, option: str, value: str) -> None:
        description = endpoint_description(value)
        try:
            endpoint = serverFromString(None, description)
        except Exception as error:  # each endpoint parser raises its own kinds
            raise usage.UsageError(f"--{option} {value!r} is not a usable endpoint: {error}") from None
        port = getattr(endpoint, "_port", 0)
        if not 0 <= port <= 65535:
            raise usage.UsageError(f"--{option} {value!r}: port numbers go from 0 to 65535")
        self[option].append(description)

    def opt_port(self, value: str) -> None:
        """Where to listen: a port number or a Twisted endpoint description (tcp:5000:interface=127.0.0.1, ssl:5001:privateKey=key.pem:certKey=cert.pem, unix:/run/chat.sock). Repeat to listen on several. [default: tcp:5000]"""  # noqa: E501
        self._endpoint("port", value)

    opt_p = opt_port

    def opt_irc(self, value: str) -> None:
        """Where IRC clients connect: a port number or an endpoint description, like --port (6667, ssl:6697:privateKey=key.pem:certKey=cert.pem). Repeat to listen on several. [default: off]"""  # noqa: E501
        self._endpoint("irc", value)

    def opt_web(self, value: str) -> None:
        """Where the web page and its WebSocket are served: a port number or an endpoint description, like --port (ssl:8443:privateKey=key.pem:certKey=cert.pem gives https and wss). Repeat to listen on several. [default: tcp:8080]"""  # noqa: E501
        self._endpoint("web", value)

    def opt_web_origin(self, value: str) -> None:
        """Another origin whose pages may open the chat's WebSocket, as the browser sends it (https://chat.example.org), or * for any. Repeatable. [default: the server's own origin only]"""  # noqa: E501
        value = value.strip().rstrip("/")
        if value != "*" and not re.fullmatch(r"https?://[^/\s]+", value):
            raise usage.UsageError(f"--web-origin {value!r} is not an origin like https://chat.example.org")
        self["web-origin"].append(value)

    def opt_metrics(self, value: str) -> None:
        """Where Prometheus scrapes the server's metrics, at /metrics: a port number or an endpoint description, like --port (tcp:9100:interface=127.0.0.1). Repeatable. [default: off]"""  # noqa: E501
        self._endpoint("metrics", value)

    def opt_oper(self, value: str) -> None:
        """A registered account whose user is a server operator when logged in to it: an operator of every room, with /kill, /gban and /wall. Repeatable. [default: none]"""  # noqa: E501
        try:
            check_name(value, "nickname")
        except InvalidName:
            raise usage.UsageError(f"--oper {value!r} is not a nickname an account could have") from None
        self["oper"].append(value)

    def opt_timezone(self, value: str) -> None:
        """IANA time zone for message times and /time, e.g. UTC or Europe/Paris. [default: the server's local zone]"""  # noqa: E501
        try:
            self["timezone"] = ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory such as "Europe"
            raise usage.UsageError(f"--timezone {value!r} is not a known time zone") from None

    def postOptions(self) -> None:
        """Fill in the default listening port; check a PostgreSQL URL given to --db."""
        if self["bus"] is not None:
            if not is_redis_url(self["bus"]):
                raise usage.UsageError(f"--bus {self['bus']!r} is not a redis:// URL")
            if not is_postgres_url(self["db"]):
                raise usage.UsageError("--bus needs a --db postgresql://... URL that every process of the cluster shares")
            try:
                parse_redis_url(self["bus"])
            except ValueError as error:
                raise usage.UsageError(f"--bus: {error}") from None
        if is_postgres_url(self["db"]):
            try:
                connection_parameters(self["db"])
            except ValueError as error:
                raise usage.UsageError(f"--db: {error}") from None
        if not self["port"]:
            self["port"] = [endpoint_description(DEFAULT_PORT)]
        if self["no-web"]:
            if self["web"]:
                raise usage.UsageError("--no-web and --web contradict each other")
        elif not self["web"]:
            self["web"] = [endpoint_description(DEFAULT_WEB)]


class ListeningService(StreamServerEndpointService):
    """
    Listens on one endpoint for one door; fails twistd's start-up if it can't, and logs the
    address it got (C{chat server listening on ...} for the line door, C{chat IRC listening on
    ...} for IRC).
    """

    _raiseSynchronously = True

    def __init__(self, endpoint: Any, factory: Any, door: str = "server") -> None:
        super().__init__(endpoint, factory)
        self.door = door

    def privilegedStartService(self) -> None:
        """Start listening and log the address (useful with port 0)."""
        super().privilegedStartService()
        self._waitingForPort.addCallback(self._log_address)

    def _log_address(self, port: IListeningPort | None) -> IListeningPort | None:
        if port is not None:
            log.info("chat {door} listening on {address}", door=self.door, address=describe_peer(port.getHost()))
        return port


def stop_on_store_failure(reactor: Any, database: str) -> Callable[[Failure], None]:
    """
    Return what the core calls if its store cannot be opened: log a clear message and stop the
    process with exit status 1, since the server cannot keep history or accounts without it.
    """

    def fail(failure: Failure) -> None:
        log.critical("cannot open the database {database!r} ({error}); stopping",
                     database=database, error=failure.getErrorMessage())
        reactor.addSystemEventTrigger("after", "shutdown", os._exit, 1)
        reactor.stop()

    return fail


def makeService(options: Options, reactor: Any = None) -> MultiService:
    """Build the chat core and a listener per C{--port}, ready for twistd to start."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor  # type: ignore[assignment]
    timezone: tzinfo | None = options["timezone"]
    top = MultiService()
    ProcessService(reactor).setServiceParent(top)
    hasher = PasswordHasher(lambda f, *args: deferToThreadPool(reactor, reactor.getThreadPool(), f, *args))
    database: str = options["db"]
    metrics = ChatMetrics() if options["metrics"] else None
    postgres = is_postgres_url(database)
    store = PostgresStore(database, reactor=reactor) if postgres else SqliteStore(database, reactor=reactor)
    core = ChatService(
        clock=reactor,  # type: ignore[arg-type]
        store=store,
        hasher=hasher,
        timezone=timezone,
        join_history=options["join-history"],
        limits=ConnectionLimits(options["max-clients"], options["max-per-ip"], bool(options["limit-loopback"]),
                                clock=reactor, per_window=options["connections-per-window"],
                                window=options["connection-window"]),
        nick_timeout=options["nick-timeout"],
        on_store_failure=stop_on_store_failure(reactor, redacted(database) if postgres else database),
        metrics=metrics,
        operators=options["oper"],
        quiet_joins_above=options["quiet-joins-above"],
        bus=RedisBus(options["bus"], prefix=options["bus-prefix"], reactor=reactor) if options["bus"] else None,
    )
    core.setServiceParent(top)
    retention = RetentionSettings.configured(options["history-days"], options["history-max"], options["offline-days"])
    RetentionService(store, reactor, retention).setServiceParent(top)
    factory = LineChatFactory(
        core,
        max_line=options["max-line"],
        rate=options["rate"],
        burst=options["burst"],
        max_input=options["max-input"],
        max_output=options["max-output"],
    )
    for description in options["port"]:
        ListeningService(serverFromString(reactor, description), factory).setServiceParent(top)
    if options["irc"]:
        irc = IrcFactory(core, rate=options["rate"], burst=options["burst"], max_input=options["max-input"],
                         max_output=options["max-output"])
        for description in options["irc"]:
            ListeningService(serverFromString(reactor, description), irc, door="IRC").setServiceParent(top)
    if options["web"]:
        web = make_site(WebChatFactory(core, rate=options["rate"], burst=options["burst"],
                                       max_input=options["max-input"], max_output=options["max-output"]),
                        options["web-origin"])
        for description in options["web"]:
            ListeningService(serverFromString(reactor, description), web, door="web").setServiceParent(top)
    if metrics is not None:
        site = metrics_site(metrics)
        for description in options["metrics"]:
            ListeningService(serverFromString(reactor, description), site, door="metrics").setServiceParent(top)
    return top
