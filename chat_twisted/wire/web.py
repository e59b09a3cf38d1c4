"""
The WebSocket door and the web page: the chat in a browser, in the same rooms as everyone else.

L{make_site} builds the C{twisted.web} site: the page at C{/} and its files under C{/static/}
(each response with a Content-Security-Policy that allows no inline script, C{nosniff},
C{frame-ancestors 'none'}, a Referrer-Policy and revalidation headers), and the WebSocket at
C{/ws}, which refuses other origins. L{WebChatProtocol} is one WebSocket connection: each text
message is one JSON request, turned into the core's typed requests from the one table
L{REQUESTS} (builder, flood cost, usable before login); each core event goes out as one JSON
message (L{chat_twisted.wire.json_render}). It reuses the guard's pieces (request order, flood
control, the input bound, the slow-reader bound) and writes only to its own connection.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http, pages, static
from twisted.web._websocket_impl import _WebSocketWireProtocol, serverBootstrap
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from twisted.web.websocket import WebSocketResource, WebSocketTransport
from wsproto import ConnectionType
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError
from zope.interface import implementer

from chat_twisted import requests as rq
from chat_twisted.core import ChatService
from chat_twisted.errors import ChatError, ExcessFlood, InputTooLong
from chat_twisted.guard import (
    DEFAULT_BURST,
    DEFAULT_MAX_INPUT,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_RATE,
    InputQueue,
    Output,
    Pinger,
    describe_peer,
    show_in_turn,
    tune_if_tcp,
)
from chat_twisted.interfaces import IChatClient
from chat_twisted.limits import TokenBucket
from chat_twisted.masks import parse_duration
from chat_twisted.model import (
    Action,
    BanList,
    Event,
    History,
    HistoryPoint,
    Joined,
    Kicked,
    Left,
    ModeChanged,
    NickChanged,
    RoomClaimed,
    RoomList,
    RoomModes,
    Said,
    SearchResults,
    ServerTime,
    TopicChanged,
    TopicInfo,
    UserList,
    UserQuit,
    Wallops,
    WhoList,
)
from chat_twisted.sessions import CONNECTION_LOST, Session
from chat_twisted.wire.json_render import PROTOCOL_VERSION, Json, render, render_error
from chat_twisted.wire.text import describe

log = Logger()

#: The longest WebSocket message a client may send, in bytes; longer ones close the connection (1009).
MAX_MESSAGE = 16 * 1024
#: The longest text (a message, a topic) in a request, in bytes, as for the line door.
MAX_TEXT = 4096
#: Seconds of silence before the server pings a WebSocket, and then before it gives up on it.
PING_INTERVAL = 60.0
PING_TIMEOUT = 30.0

#: WebSocket close codes (RFC 6455).
CLOSE_NORMAL, CLOSE_GOING_AWAY, CLOSE_UNSUPPORTED, CLOSE_POLICY, CLOSE_TOO_BIG = 1000, 1001, 1003, 1008, 1009

#: What every page response says about what the page may do.
SECURITY_HEADERS = {
    b"Content-Security-Policy": b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
                                b" connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none';"
                                b" frame-ancestors 'none'",
    b"X-Content-Type-Options": b"nosniff",
    b"Referrer-Policy": b"no-referrer",
    b"X-Frame-Options": b"DENY",
    b"Cache-Control": b"no-cache",
}


def static_directory() -> Path:
    """Where the page's files are: C{chat_twisted/wire/static} inside the installed package."""
    return Path(str(resources.files("chat_twisted.wire") / "static"))


# --- requests ---------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class BadRequest(ChatError):
    """A JSON message that is not a request this door understands: C{problem} says what is wrong."""

    problem: str


describe.register(BadRequest, lambda error: f"bad request: {error.problem}")


def _text(request: Json, key: str, optional: bool = False) -> Any:
    value = request.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{key!r} must be a string")
    if len(value.encode("utf-8")) > MAX_TEXT:
        raise InputTooLong(MAX_TEXT)
    return value


def _number(request: Json, key: str, default: int | None = None) -> Any:
    value = request.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(f"{key!r} must be a whole number")
    return value


def _names(request: Json, key: str) -> tuple[str, ...]:
    value = request.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value) or len(value) > 20:
        raise BadRequest(f"{key!r} must be a list of at most 20 strings")
    return tuple(value)


def _duration(request: Json) -> float | None:
    """
    A server ban's C{duration}: absent or null (until lifted), a whole number of seconds, or a
    text such as C{"7d"} (see L{parse_duration}, which also bounds it).
    """
    value = request.get("duration")
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_duration(str(value))
    if isinstance(value, str):
        return parse_duration(_text(request, "duration"))
    raise BadRequest("'duration' must be a whole number of seconds or a text such as \"7d\"")


def _server_ban(request: Json) -> rq.ServerBan:
    return rq.ServerBan(_text(request, "mask"), True, _duration(request), _text(request, "reason", optional=True) or "")


def _history(request: Json) -> rq.ReadHistory:
    before = _number(request, "before")
    return rq.ReadHistory(_text(request, "room"), _number(request, "limit", 50),
                          before=HistoryPoint(id=before) if before is not None else None)


@dataclass(frozen=True, slots=True)
class WebRequest:
    """One kind of JSON request: how to build the core request, its flood cost, whether it works before login."""

    build: Callable[[Json], rq.Request]
    cost: float = 1.0
    before_login: bool = False
    answer: type[Event] | None = None  # the event that answers it, which gets the request's id


#: Every request the door understands, by its C{type}.
REQUESTS: dict[str, WebRequest] = {
    "login": WebRequest(lambda r: rq.Login(_text(r, "nick"), _text(r, "password", optional=True), _names(r, "rooms")),
                        3.0, before_login=True),
    "register": WebRequest(lambda r: rq.Register(_text(r, "password")), 3.0),
    "password": WebRequest(lambda r: rq.ChangePassword(_text(r, "old"), _text(r, "new")), 3.0),
    "logout": WebRequest(lambda r: rq.Logout()),
    "nick": WebRequest(lambda r: rq.Nick(_text(r, "nick")), 3.0),
    "away": WebRequest(lambda r: rq.Away(_text(r, "message", optional=True) or "")),
    "quit": WebRequest(lambda r: rq.Quit(_text(r, "reason", optional=True) or ""), before_login=True),
    "join": WebRequest(lambda r: rq.Join(_text(r, "room"), who=True), 3.0),
    "part": WebRequest(lambda r: rq.Part(_text(r, "room"), _text(r, "reason", optional=True) or ""), 2.0),
    "topic": WebRequest(lambda r: rq.Topic(_text(r, "room"), _text(r, "text", optional=True)), answer=TopicInfo),
    "say": WebRequest(lambda r: rq.Say(_text(r, "room"), _text(r, "text"))),
    "act": WebRequest(lambda r: rq.Act(_text(r, "room"), _text(r, "text"))),
    "tell": WebRequest(lambda r: rq.Tell(_text(r, "nick"), _text(r, "text"), action=bool(r.get("action")))),
    "history": WebRequest(_history, 5.0, answer=History),
    "who": WebRequest(lambda r: rq.Who(_text(r, "room")), 2.0, answer=WhoList),
    "rooms": WebRequest(lambda r: rq.Rooms(), 2.0, answer=RoomList),
    "whois": WebRequest(lambda r: rq.Whois(_names(r, "nicks")), 2.0, answer=UserList),
    "time": WebRequest(lambda r: rq.Time(), answer=ServerTime),
    "search": WebRequest(lambda r: rq.Search(_text(r, "text"), _number(r, "limit", 20), _number(r, "before")), 5.0,
                         answer=SearchResults),
    # moderation: a room's operators (the core says who may)
    "op": WebRequest(lambda r: rq.SetOperator(_text(r, "room"), _text(r, "nick"), give=True)),
    "deop": WebRequest(lambda r: rq.SetOperator(_text(r, "room"), _text(r, "nick"), give=False)),
    "voice": WebRequest(lambda r: rq.SetVoice(_text(r, "room"), _text(r, "nick"), give=True)),
    "devoice": WebRequest(lambda r: rq.SetVoice(_text(r, "room"), _text(r, "nick"), give=False)),
    "kick": WebRequest(lambda r: rq.Kick(_text(r, "room"), _text(r, "nick"), _text(r, "reason", optional=True) or ""),
                       2.0),
    "ban": WebRequest(lambda r: rq.SetBan(_text(r, "room"), _text(r, "mask"), add=True), 2.0),
    "unban": WebRequest(lambda r: rq.SetBan(_text(r, "room"), _text(r, "mask"), add=False), 2.0),
    "bans": WebRequest(lambda r: rq.ListBans(_text(r, "room")), 2.0, answer=BanList),
    "invite": WebRequest(lambda r: rq.Invite(_text(r, "room"), _text(r, "nick")), 2.0),
    "mode": WebRequest(lambda r: rq.SetModes(_text(r, "room"), _text(r, "changes", optional=True)), 2.0,
                       answer=RoomModes),
    "claim": WebRequest(lambda r: rq.Claim(_text(r, "room")), 3.0),
    # server operators (accounts named by --oper)
    "kill": WebRequest(lambda r: rq.KillUser(_text(r, "nick"), _text(r, "reason", optional=True) or ""), 2.0),
    "gban": WebRequest(_server_ban, 3.0),
    "ungban": WebRequest(lambda r: rq.ServerBan(_text(r, "mask"), add=False), 3.0),
    "gbans": WebRequest(lambda r: rq.ListServerBans(), 2.0, answer=BanList),
    "wall": WebRequest(lambda r: rq.Wall(_text(r, "text")), 3.0),
}


@dataclass(frozen=True, slots=True)
class AnswerTo(Event):
    """Shown (in turn) just before a question is asked: the answer that comes next gets C{id}."""

    id: Any
    answer: type[Event]


@dataclass(frozen=True, slots=True)
class DoorMessage(Event):
    """A JSON object the door made itself (an error, a pong), shown in turn."""

    body: Json


#: What a message that is not JSON parses to (parsed once, on arrival, for its cost and its turn).
_NOT_JSON = object()


def _is_change(request: rq.Request) -> bool:
    """Whether C{request} changes something rather than asks (a topic with a text sets it, so do modes with changes)."""
    return (isinstance(request, rq.Topic) and request.text is not None) or \
        (isinstance(request, rq.SetModes) and request.changes is not None)


# --- one connection ---------------------------------------------------------------------------


def text_frame(text: str) -> bytes:
    """
    One WebSocket text message as a server sends it (RFC 6455: one final frame, unmasked, no
    extension): the same bytes for every recipient, so a room's fan-out frames it once.
    """
    data = text.encode("utf-8")
    size = len(data)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 0x10000:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + data


class MessageOutput(Output):
    """
    An L{Output} of WebSocket frames (see L{text_frame}): what one run delivers leaves in one
    write to the connection beneath, as for the line door.
    """

    __slots__ = ()

    def attach(self, transport: Any) -> None:
        """Send on the WebSocket C{transport}; learn from its TCP transport when the peer stops reading."""
        self.transport = transport
        transport.attachProducer(self.guard)

    def _send(self, data: bytes) -> None:
        """Hand frames made by L{text_frame} to the WebSocket, which writes them while it is open."""
        self.transport.send_frames(data)


@implementer(IChatClient)
class WebChatProtocol:
    """
    One WebSocket connection: requests in as JSON text messages, in order and under flood
    control; events out as JSON text messages, to this connection only.
    """

    def __init__(self, factory: WebChatFactory, peer: str) -> None:
        self.factory = factory
        self.peer = peer
        self.session: Session | None = None
        self.transport: Any = None
        clock = factory.service.clock
        self._input = InputQueue(clock, TokenBucket(clock, factory.rate, factory.burst), factory.max_input,
                                 lambda: self._end("excess flood", ExcessFlood()),
                                 lambda: self.session.flood_waited() if self.session else None)
        self.output = MessageOutput(factory.max_output, self._drop_slow_reader)
        self._queue = self.output.pending.append
        self._answer_id: Any = None
        self._answer_type: type[Event] | None = None
        self._pinger = Pinger(clock, factory.ping_interval, factory.ping_timeout,
                              lambda: self.transport.ping(b"chat_twisted"),
                              lambda: self._end("ping timeout", None, CLOSE_GOING_AWAY))
        self._closing = False
        self._close_code = CLOSE_NORMAL
        self.close_reason = CONNECTION_LOST

    # --- WebSocketProtocol ---------------------------------------------------------------------

    def negotiationStarted(self, transport: WebSocketTransport) -> None:
        """The handshake is under way: this is the connection to write to."""
        self.transport = transport

    def negotiationFinished(self) -> None:
        """The WebSocket is open: start the session, say hello, start pinging."""
        log.info("WebSocket connection from {peer}", peer=self.peer)
        tune_if_tcp(getattr(self.transport, "transport", None))  # the TCP (or TLS) connection beneath
        self.output.attach(self.transport)
        self.session = self.factory.service.connect(self, self.peer, door="web")
        if not self.session.closed:
            self.show(DoorMessage({"type": "hello", "version": PROTOCOL_VERSION, "server": "chat_twisted",
                                   "max_text": MAX_TEXT, "max_message": MAX_MESSAGE}))
        self._pinger.start()

    def textMessageReceived(self, message: str) -> None:
        """Queue one JSON request for its turn."""
        self._alive()
        if self._closing:
            return
        size = len(message.encode("utf-8"))
        try:
            request: Any = json.loads(message)
        except ValueError:
            request = _NOT_JSON
        self._input.push(size, self._cost(request), lambda: self._handle(request))

    def bytesMessageReceived(self, data: bytes | bytearray) -> None:
        """Binary messages are not part of the protocol: close (1003)."""
        self._alive()
        self._end("binary message", None, CLOSE_UNSUPPORTED)

    def pongReceived(self, payload: bytes) -> None:
        """The browser answered a ping."""
        self._alive()

    def connectionLost(self, reason: Failure) -> None:
        """Tell the core the user is gone."""
        log.info("WebSocket {peer} disconnected ({reason})", peer=self.peer, reason=self.close_reason)
        self.output.gone = True
        self._input.stop()
        self._pinger.stop()
        if self.session is not None:
            self.session.disconnected(self.close_reason)

    # --- requests ----------------------------------------------------------------------------

    @staticmethod
    def _cost(request: Any) -> float:
        kind = request.get("type") if isinstance(request, dict) else None
        entry = REQUESTS.get(kind) if isinstance(kind, str) else None
        return entry.cost if entry is not None else 1.0

    def _handle(self, request: Any) -> Deferred[Any] | None:
        """Do one parsed request (or answer why it is not one), in its turn."""
        if self.session is None or self.session.closed:
            return None
        if request is _NOT_JSON:
            self._refuse(BadRequest("not JSON"), None)
            return None
        if not isinstance(request, dict):
            self._refuse(BadRequest("a request is a JSON object"), None)
            return None
        kind = request.get("type")
        if kind == "ping":
            self.show(DoorMessage({"type": "pong", **({"id": request["id"]} if "id" in request else {})}))
            return None
        entry = REQUESTS.get(kind) if isinstance(kind, str) else None
        if entry is None:
            self._refuse(BadRequest(f"unknown type {str(kind)[:40]!r}"), request)
            return None
        try:
            core_request = entry.build(request)
        except ChatError as error:
            self._refuse(error, request)
            return None
        if entry.answer is not None and "id" in request and not _is_change(core_request):
            self.show(AnswerTo(request["id"], entry.answer))
        done = self.session.submit(core_request)
        return done.addErrback(self._failed, request)

    def _failed(self, failure: Failure, request: Json) -> None:
        """A request failed: say why, in turn (this also ends waiting for its answer)."""
        failure.trap(ChatError)
        self._refuse(failure.value, request)

    def _refuse(self, error: ChatError, request: Json | None) -> None:
        self.show(DoorMessage(render_error(error, request)))

    def show(self, event: Event) -> None:
        """Show this user an event the door made, in turn with the core's."""
        show_in_turn(self, self.session, event)

    # --- IChatClient -------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """
        Queue C{event} as one JSON message for this connection. The fan-out path: an event that
        is the same for everyone (a message, a join...) is made into JSON once for a whole room,
        through the factory's one-entry cache (never with an answer's id, which is this
        connection's own).
        """
        if type(event) in _SHARED and self._answer_type is None:
            factory = self.factory
            if event is not factory.cached_event:
                shared = render(event)
                assert shared is not None  # every shared event has a JSON form
                factory.cached_frame = text_frame(_json(shared))
                factory.cached_event = event
            self._queue(factory.cached_frame)
            return
        if isinstance(event, AnswerTo):
            self._answer_id, self._answer_type = event.id, event.answer
            return
        body = event.body if isinstance(event, DoorMessage) else render(event)
        if body is None:
            return
        if body["type"] == "error":
            self._answer_id = self._answer_type = None  # a question that failed gets no answer
        if self._answer_type is not None and isinstance(event, self._answer_type) and \
                not (isinstance(event, History) and not event.requested):
            body = {**body, "id": self._answer_id}
            self._answer_id = self._answer_type = None
        self._queue(text_frame(_json(body)))

    def flush(self) -> None:
        """Send what is queued."""
        self.output.flush()

    def close(self) -> None:
        """Close after what was delivered (1000, or the code of the rule the client broke)."""
        self.flush()
        self._lose()

    # --- connection life ---------------------------------------------------------------------

    def _lose(self, code: int | None = None, reason: str = "") -> None:
        if self._closing or self.transport is None:
            return
        self._closing = True
        self.transport.detachProducer()
        self.transport.loseConnection(code or self._close_code, reason)

    def _end(self, what: str, error: ChatError | None, code: int = CLOSE_POLICY) -> None:
        """Close a connection that broke the rules, after C{error} if given; its rooms see C{what}."""
        if self._closing:
            return
        log.info("closing WebSocket {peer}: {what}", peer=self.peer, what=what)
        self.close_reason, self._close_code = what, code
        self._input.stop()
        if self.session is None or self.session.closed:
            self._lose(code, what)
            return
        self.session.end(what, error)

    def _drop_slow_reader(self) -> None:
        log.info("dropping WebSocket {peer}: not reading its output", peer=self.peer)
        self.close_reason = "too slow"
        self.output.gone = True
        self._input.stop()
        self._closing = True
        self.transport.detachProducer()
        self.transport.transport.abortConnection()

    def _alive(self) -> None:
        self._pinger.alive()


def _json(body: Json) -> str:
    """One event's JSON text, as sent."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


#: Events shown alike to everyone who gets them (no answer id), whose JSON the factory caches.
_SHARED = frozenset({Said, Action, Joined, Left, UserQuit, TopicChanged, NickChanged, ModeChanged, Kicked,
                     RoomClaimed, Wallops})


# --- the site ---------------------------------------------------------------------------------


class WebChatFactory:
    """
    Builds a L{WebChatProtocol} per WebSocket; holds the core, per-listener settings, and a
    one-entry cache of the last shared event's frame (as the line door's factory keeps its bytes).
    """

    def __init__(
        self,
        service: ChatService,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_input: int = DEFAULT_MAX_INPUT,
        max_output: int = DEFAULT_MAX_OUTPUT,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
    ) -> None:
        self.service = service
        self.rate = rate
        self.burst = burst
        self.max_input = max(max_input, MAX_MESSAGE + 1)
        self.max_output = max_output
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        #: A one-entry cache of the last shared event's frame, so that an event fanned out
        #: to a whole room is rendered and dumped once.
        self.cached_event: Event | None = None
        self.cached_frame = b""

    def buildProtocol(self, request: Request) -> WebChatProtocol:
        """A protocol for the WebSocket that C{request} opens."""
        return WebChatProtocol(self, describe_peer(request.getClientAddress()))


class _BoundedWire(_WebSocketWireProtocol[WebChatProtocol]):
    """
    Twisted's WebSocket wire protocol, with a bound on a message being reassembled (wsproto
    puts fragments together without one): past L{MAX_MESSAGE} bytes, close with 1009; and a
    way to send frames already made (L{text_frame}), so that a room's message is framed once
    and not once per recipient (no extension is negotiated, so a frame is the same for all).
    """

    def send_frames(self, data: bytes) -> None:
        """Write frames made by L{text_frame}, while the WebSocket is open."""
        if self._wsconn.state is ConnectionState.OPEN:
            self.transport.write(data)

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        waiting = len(self._textBuffer.data) + len(self._bytesBuffer.data)
        if waiting > MAX_MESSAGE and self.transport is not None:
            self._wsp.close_reason = "message too big"
            self._textBuffer.done()
            self._bytesBuffer.done()
            self.loseConnection(CLOSE_TOO_BIG, "message too big")


def _origin_of(request: Request) -> str:
    """The origin a page served by this request's server has: scheme, host and port."""
    scheme = "https" if request.isSecure() else "http"
    host = (request.getHeader("host") or "").lower()
    return f"{scheme}://{host}"


class ChatWebSocketResource(WebSocketResource):
    """
    C{/ws}: accepts a WebSocket from a page of this server's own origin (or of C{allowed}
    origins; C{*} allows any), and answers others with 403.
    """

    def __init__(self, factory: WebChatFactory, allowed: Sequence[str] = ()) -> None:
        super().__init__(factory)  # type: ignore[arg-type]
        self.allowed = {origin.rstrip("/").lower() for origin in allowed}

    def origin_allowed(self, request: Request) -> bool:
        """Whether the request's Origin may open a WebSocket (no Origin: not a browser, allowed)."""
        origin = request.getHeader("origin")
        if origin is None:
            return True
        origin = origin.rstrip("/").lower()
        if "*" in self.allowed or origin in self.allowed:
            return True
        parts = urlsplit(origin)
        return f"{parts.scheme}://{parts.netloc}" == _origin_of(request)

    def render_GET(self, request: Request) -> bytes | int:  # type: ignore[override]
        """Check the origin, then upgrade to a WebSocket with a bounded message size."""
        if not self.origin_allowed(request):
            log.info("refused a WebSocket from origin {origin}", origin=request.getHeader("origin"))
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"this origin may not open a chat connection\n"
        handshake = H11Handshake(ConnectionType.SERVER)
        headers = [(key, value) for key, values in request.requestHeaders.getAllRawHeaders() for value in values]
        try:
            handshake.initiate_upgrade_connection(headers, request.path)
        except RemoteProtocolError:
            request.setResponseCode(400)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"a WebSocket handshake was expected here\n"
        protocol = self.factory.buildProtocol(request)
        accept = handshake.send(AcceptConnection())
        assert handshake.connection is not None and request.channel.transport is not None
        # The HTTP channel is the transport's producer; the chat connection's output guard takes over.
        request.channel.transport.unregisterProducer()  # type: ignore[attr-defined]
        wire = _BoundedWire(handshake.connection, serverBootstrap, protocol)  # type: ignore[arg-type]
        channel = request.channel
        channel._protocolUpgradeForWebsockets(wire)
        channel.transport.write(accept)  # type: ignore[union-attr]
        # The channel no longer reads HTTP: let the upgrade request (its headers, its body
        # buffer) go, rather than keep it for the life of the WebSocket.
        channel.requests.remove(request)
        protocol.negotiationFinished()
        return NOT_DONE_YET


class SecureFile(static.File):
    """
    One of the page's files (or their directory), served whole from memory with the page's
    security and caching headers: they are small, and no directory is ever listed.
    """

    indexNames: list[str] = []  # /static/ is not a page

    def render(self, request: Request) -> bytes | int:  # type: ignore[override]
        """Add the headers, then serve."""
        for name, value in SECURITY_HEADERS.items():
            request.setHeader(name, value)
        return super().render(request)

    def render_GET(self, request: Request) -> bytes:  # type: ignore[override]
        """The file's bytes, or 304 Not Modified when the browser's copy is current, or 404."""
        self.restat(False)
        if not self.exists() or self.isdir():
            return pages.notFound().render(request)  # type: ignore[no-any-return]
        content_type, _ = static.getTypeAndEncoding(self.basename(), self.contentTypes, self.contentEncodings,
                                                    self.defaultType)
        request.setHeader(b"content-type", content_type.encode("ascii"))
        if request.setLastModified(self.getModificationTime()) is http.CACHED:
            return b""
        return self.getContent()  # type: ignore[no-any-return]

    render_HEAD = render_GET

    def directoryListing(self) -> IResource:
        """No directory listings."""
        return pages.notFound()


def make_site(factory: WebChatFactory, allowed_origins: Sequence[str] = (), directory: Path | None = None) -> Site:
    """The web site: the page at C{/}, its files under C{/static/}, the WebSocket at C{/ws}."""
    directory = directory or static_directory()
    root = Resource()
    root.putChild(b"", SecureFile(str(directory / "index.html"), defaultType="text/html; charset=utf-8"))
    root.putChild(b"static", SecureFile(str(directory)))
    root.putChild(b"ws", ChatWebSocketResource(factory, allowed_origins))
    site = Site(root)
    site.displayTracebacks = False
    return site
