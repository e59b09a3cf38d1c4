"""
The ``twistd chat`` command line: L{Options} and L{makeService}.

Nothing happens at import time; L{makeService} builds the core and one listening service per
C{--port} and returns them in one L{MultiService} for twistd to start and stop.
"""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.threads import deferToThreadPool
from twisted.internet.interfaces import IListeningPort, IReactorCore
from twisted.logger import Logger
from twisted.python import usage

from chat_twisted.core import DEFAULT_JOIN_HISTORY, ChatService
from chat_twisted.passwords import PasswordHasher
from chat_twisted.store.sqlite import SqliteStore
from chat_twisted.wire.line import DEFAULT_MAX_LINE, LineChatFactory, describe_peer

log = Logger()

DEFAULT_PORT = "tcp:5000"
DEFAULT_DB = "chat.sqlite3"


def endpoint_description(value: str) -> str:
    """Return C{value} as a server endpoint description: a bare port number becomes C{tcp:N}."""
    value = value.strip()
    if value.isdigit():
        return f"tcp:{value}"
    return value


class Options(usage.Options):
    """Command-line options of C{twistd chat}; each C{opt_} method validates its value."""

    synopsis = "[options]"
    longdesc = (
        "Runs the chat_twisted server. Connect with `nc HOST PORT` or "
        "`python -m chat_twisted.client --host HOST --port PORT`."
    )
    optParameters = [
        ["db", "d", DEFAULT_DB,
         "SQLite file that keeps history and accounts (created if missing)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["port"] = []
        self["max-line"] = DEFAULT_MAX_LINE
        self["timezone"] = None
        self["join-history"] = DEFAULT_JOIN_HISTORY

    def opt_port(self, value: str) -> None:
        """Where to listen: a port number or a Twisted endpoint description (tcp:5000:interface=127.0.0.1, ssl:5001:privateKey=key.pem:certKey=cert.pem, unix:/run/chat.sock). Repeat to listen on several. [default: tcp:5000]"""  # noqa: E501
        description = endpoint_description(value)
        try:
            endpoint = serverFromString(None, description)
        except Exception as error:  # each endpoint parser raises its own kinds
            raise usage.UsageError(f"--port {value!r} is not a usable endpoint: {error}") from None
        port = getattr(endpoint, "_port", 0)
        if not 0 <= port <= 65535:
            raise usage.UsageError(f"--port {value!r}: port numbers go from 0 to 65535")
        self["port"].append(description)

    opt_p = opt_port

    def opt_max_line(self, value: str) -> None:
        """Longest line a client may send, in bytes; longer lines get an error and are dropped. [default: 4096]"""  # noqa: E501
        self["max-line"] = _positive_int("--max-line", value, minimum=64)

    def opt_join_history(self, value: str) -> None:
        """How many earlier messages a user is shown on entering a room; 0 turns it off. [default: 10]"""
        self["join-history"] = _positive_int("--join-history", value, minimum=0)

    def opt_timezone(self, value: str) -> None:
        """IANA time zone for message times and /time, e.g. UTC or Europe/Paris. [default: the server's local zone]"""  # noqa: E501
        try:
            self["timezone"] = ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise usage.UsageError(f"--timezone {value!r} is not a known time zone") from None

    def postOptions(self) -> None:
        """Fill in the default listening port."""
        if not self["port"]:
            self["port"] = [DEFAULT_PORT]


def _positive_int(option: str, value: str, minimum: int = 1) -> int:
    try:
        number = int(value)
    except ValueError:
        raise usage.UsageError(f"{option} takes a whole number, not {value!r}") from None
    if number < minimum:
        raise usage.UsageError(f"{option} must be at least {minimum}")
    return number


class ListeningService(StreamServerEndpointService):
    """Listens on one endpoint; fails twistd's start-up if it can't, and logs the address it got."""

    _raiseSynchronously = True

    def privilegedStartService(self) -> None:
        """Start listening and log the address (useful with port 0)."""
        super().privilegedStartService()
        self._waitingForPort.addCallback(self._log_address)

    @staticmethod
    def _log_address(port: IListeningPort | None) -> IListeningPort | None:
        if port is not None:
            log.info("chat server listening on {address}", address=describe_peer(port.getHost()))
        return port


def makeService(options: Options, reactor: IReactorCore | None = None) -> MultiService:
    """Build the chat core and a listener per C{--port}, ready for twistd to start."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor  # type: ignore[assignment]
    timezone: tzinfo | None = options["timezone"]
    top = MultiService()
    hasher = PasswordHasher(lambda f, *args: deferToThreadPool(reactor, reactor.getThreadPool(), f, *args))
    core = ChatService(
        clock=reactor,  # type: ignore[arg-type]
        store=SqliteStore(options["db"], reactor=reactor),
        hasher=hasher,
        timezone=timezone,
        join_history=options["join-history"],
    )
    core.setServiceParent(top)
    factory = LineChatFactory(core, max_line=options["max-line"])
    for description in options["port"]:
        ListeningService(serverFromString(reactor, description), factory).setServiceParent(top)
    return top
