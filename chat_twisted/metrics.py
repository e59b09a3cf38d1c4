"""
Prometheus metrics of the chat core, served by ``twistd chat --metrics ENDPOINT`` at C{/metrics}.

The core counts; a door never does. The core is given a L{ChatMetrics} (or, without
C{--metrics}, the no-op L{MetricsHooks}) and passes it to the layers that count: each calls a
one-line hook when something happens. What mirrors the core's state (connections by door, users,
rooms) and the deliveries the fan-out adds up in a plain number are read from the core when
Prometheus scrapes, so nothing is counted twice and the fan-out pays no more than an addition.
Every label is a fixed word: nothing here ever holds a message's text, a nickname or a password.

L{ChatMetrics} owns a C{CollectorRegistry} of its own (not prometheus_client's global one), so
that several cores, in tests or in one process, never collide. L{metrics_site} is the web site
that serves it; it renders on the reactor thread, where the core's state may be read safely.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import Request, Site
from zope.interface.interface import Method

from chat_twisted.errors import NotRegistered, TooManyAttempts, WrongPassword
from chat_twisted.interfaces import IChatStore

if TYPE_CHECKING:
    from chat_twisted.core import ChatService

#: The doors, each reported in C{chat_connections} even when nobody uses it.
DOORS = ("line", "irc", "web")

#: Kinds of C{chat_messages_total}: room messages as stored (say includes notices), a private
#: message delivered at once, and one kept for a registered user who is offline.
MESSAGE_KINDS = ("say", "action", "topic", "private", "offline")

#: The reasons a connection ends that count as the server dropping it (C{chat_dropped_total}),
#: by the words L{ChatService.disconnect} is given. Any other reason (a quit, a lost
#: connection) is the user's doing and is not counted.
DROP_REASONS = {
    "too slow": "too_slow",
    "excess flood": "excess_flood",
    "ping timeout": "ping_timeout",
    "login timed out": "login_timeout",
    "logged in from elsewhere": "replaced",
    "HTTP request": "wrong_protocol",
    "TLS handshake": "wrong_protocol",
    "binary message": "wrong_protocol",
    "message too big": "message_too_big",
}

#: The errors that count as a failed login (C{chat_login_failures_total}), with their reason.
LOGIN_FAILURES: dict[type[BaseException], str] = {
    WrongPassword: "wrong_password",
    TooManyAttempts: "throttled",
    NotRegistered: "not_registered",
}

#: Upper bounds, in seconds, of C{chat_commit_seconds}'s buckets.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class MetricsHooks:
    """
    What the core tells its metrics as it works. Every hook does nothing here: this is what the
    core uses when it is given no metrics, at the cost of a call.
    """

    def watch(self, core: ChatService, store: IChatStore) -> IChatStore:
        """Start reading C{core}'s state; return the store its layers should use (C{store} here)."""
        return store

    def message(self, kind: str) -> None:
        """A message of C{kind} (one of L{MESSAGE_KINDS}) was shown or kept."""

    def history_read(self, requested: bool) -> None:
        """A room's history is being read: asked for (C{requested}) or shown on entering it."""

    def flood_wait(self) -> None:
        """Flood control made a connection's next input wait."""

    def disconnected(self, reason: str) -> None:
        """A session ended for C{reason} (counted if it is one of L{DROP_REASONS})."""

    def request_failed(self, error: BaseException) -> None:
        """A request failed with C{error} (counted if it is one of L{LOGIN_FAILURES})."""

    def ban_applied(self) -> None:
        """A ban took effect: it kept a user out of a room or quiet in one, or refused or closed a connection."""


class ChatMetrics(MetricsHooks):
    """
    The chat server's Prometheus collectors, in L{registry}. Give one to L{ChatService}; it
    calls L{watch} once, and each layer calls its hooks.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        messages = Counter("chat_messages", "Messages shown or kept, by kind.", ["kind"], registry=registry)
        # The children of the counters counted per message, looked up once (labels() is slow).
        self._messages = {kind: messages.labels(kind) for kind in MESSAGE_KINDS}
        self._commits = Histogram(
            "chat_commit_seconds", "Seconds from a room message's append to the store until it is committed.",
            buckets=COMMIT_BUCKETS, registry=registry,
        )
        history = Counter("chat_history_reads", "Reads of a room's history, by trigger.", ["trigger"],
                          registry=registry)
        self._history = {requested: history.labels("request" if requested else "join") for requested in (True, False)}
        self._flood = Counter("chat_flood_waits", "Inputs flood control made wait (fake lag).", registry=registry)
        self._dropped = Counter("chat_dropped", "Connections the server dropped, by reason.", ["reason"],
                                registry=registry)
        for reason in sorted(set(DROP_REASONS.values())):
            self._dropped.labels(reason)
        self._logins = Counter("chat_login_failures", "Failed password checks, by reason.", ["reason"],
                               registry=registry)
        for reason in LOGIN_FAILURES.values():
            self._logins.labels(reason)
        self._bans = Counter("chat_bans_applied",
                             "Bans that took effect: room entries and messages refused, connections refused or closed.",
                             registry=registry)
        self._store_errors = Counter("chat_store_errors", "Store operations that failed, by operation.",
                                     ["operation"], registry=registry)
        ProcessCollector(registry=registry)

    def watch(self, core: ChatService, store: IChatStore) -> IChatStore:
        """
        Read C{core}'s connections, users, rooms and deliveries at each scrape; return C{store}
        watched for failures and commit times.
        """
        self.registry.register(_CoreState(core))
        return _WatchedStore(store, core.clock, self._store_errors, self._commits)  # type: ignore[return-value]

    def message(self, kind: str) -> None:
        self._messages[kind].inc()

    def history_read(self, requested: bool) -> None:
        self._history[requested].inc()

    def flood_wait(self) -> None:
        self._flood.inc()

    def disconnected(self, reason: str) -> None:
        label = DROP_REASONS.get(reason)
        if label is not None:
            self._dropped.labels(label).inc()

    def request_failed(self, error: BaseException) -> None:
        reason = LOGIN_FAILURES.get(type(error))
        if reason is not None:
            self._logins.labels(reason).inc()

    def ban_applied(self) -> None:
        self._bans.inc()


class _CoreState:
    """A collector of what mirrors the core's state, read from it at each scrape (on the reactor thread)."""

    def __init__(self, core: ChatService) -> None:
        self._core = core

    def collect(self) -> Iterator[Metric]:
        """Yield the core's connections by door, users, rooms, and deliveries so far."""
        core = self._core
        connections = GaugeMetricFamily("chat_connections", "Open connections, logged in or not, by door.",
                                        labels=["door"])
        by_door = Tally(session.door for session in core.sessions)
        for door in sorted(set(DOORS) | set(by_door)):
            connections.add_metric([door], by_door[door])
        yield connections
        yield GaugeMetricFamily("chat_users", "Users logged in.", value=core.online)
        yield GaugeMetricFamily("chat_rooms", "Rooms in use (the lobby always is).", value=len(core.rooms))
        yield CounterMetricFamily("chat_deliveries", "Events handed to clients (each recipient counts).",
                                  value=core.delivery.delivered)


class _WatchedStore:
    """
    The store as the core's layers see it when metrics are on: each L{IChatStore} method is the
    store's own, but a Deferred that fails counts in C{chat_store_errors_total} by the method's
    name, and C{append_message}'s time until its Deferred fires is observed in
    C{chat_commit_seconds}. Anything else is the store's.
    """

    def __init__(self, store: IChatStore, clock: IReactorTime, errors: Counter, commits: Histogram) -> None:
        self._store = store
        self._clock = clock
        self._errors = errors
        self._commits = commits
        for name, description in IChatStore.namesAndDescriptions():
            method = getattr(store, name, None)
            if isinstance(description, Method) and method is not None:
                errors.labels(name)
                if name != "append_message":
                    setattr(self, name, self._watched(name, method))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _watched(self, name: str, method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            if isinstance(result, Deferred):
                result.addErrback(self._failed, name)
            return result

        return call

    def append_message(self, room_key: str, message: Any) -> Deferred[Any]:
        """Append as the store does, timing it until its Deferred fires."""
        started = self._clock.seconds()
        appended: Deferred[Any] = self._store.append_message(room_key, message)
        return appended.addCallbacks(self._committed, self._failed, (started,), errbackArgs=("append_message",))

    def _committed(self, result: object, started: float) -> object:
        self._commits.observe(max(0.0, self._clock.seconds() - started))
        return result

    def _failed(self, failure: Failure, name: str) -> Failure:
        self._errors.labels(name).inc()
        return failure


class _MetricsPage(Resource):
    """C{/metrics}: the registry in the text format the scraper asks for (Prometheus's by default)."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self._registry = registry

    def render_GET(self, request: Request) -> bytes:
        """Collect every metric now and answer with them."""
        accept = request.getHeader(b"accept")
        encode, content_type = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", content_type.encode("ascii"))
        return encode(self._registry)


def metrics_site(metrics: ChatMetrics) -> Site:
    """
    Return the web site that serves C{metrics} at C{/metrics} (anything else is not found).
    It renders on the reactor thread (prometheus_client's own C{MetricsResource} renders in a
    thread pool, where reading the core's state would race with the reactor).
    """
    root = Resource()
    root.putChild(b"metrics", _MetricsPage(metrics.registry))
    site = _QuietSite(root)
    site.displayTracebacks = False
    return site


class _QuietSite(Site):
    """A site that logs no access lines: a scrape every few seconds would fill the log."""

    noisy = False

    def log(self, request: http.Request) -> None:
        """Log nothing."""
