"""
The WebSocket door and the page's site, without a browser or a socket: the site is driven over a
StringTransport, and a wsproto client connection makes the client's frames and reads the
server's. The clock is a task.Clock.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransportWithDisconnection
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from chat_twisted.core import ChatService
from chat_twisted.limits import ConnectionLimits
from chat_twisted.wire import web
from chat_twisted.wire.line import LineChatFactory
from chat_twisted.wire.web import WebChatFactory, make_site
from tests.helpers import line_user, make_core
from tests.test_core_accounts import SwitchedHasher


def site_for(core: ChatService, **options: Any) -> Any:
    """The web site over C{core} with flood control off unless given."""
    options.setdefault("rate", 0.0)
    allowed = options.pop("allowed", ())
    return make_site(WebChatFactory(core, **options), allowed)


class HttpConnection:
    """One HTTP connection to the site over a StringTransport."""

    def __init__(self, site: Any, port: int = 50000) -> None:
        self.transport = StringTransportWithDisconnection(peerAddress=IPv4Address("TCP", "127.0.0.1", port),
                                                         hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
        self.protocol = site.buildProtocol(self.transport.getPeer())
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send a GET and return the status, headers (lower-case names) and body."""
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1:8080"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.protocol.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        self.transport.clear()
        status_line, *header_lines = head.decode().split("\r\n")
        parsed = {name.lower(): value for name, _, value in (line.partition(": ") for line in header_lines)}
        return int(status_line.split()[1]), parsed, body


class WebSocketUser:
    """A browser's WebSocket to the site: send JSON requests, read JSON events."""

    def __init__(self, site: Any, port: int = 50000, origin: str | None = "http://127.0.0.1:8080") -> None:
        self.http = HttpConnection(site, port)
        self.client = WSConnection(ConnectionType.CLIENT)
        headers = [("Origin", origin)] if origin is not None else []
        self.http.protocol.dataReceived(self.client.send(Request(host="127.0.0.1:8080", target="/ws",
                                                                 extra_headers=headers)))
        self.closed: CloseConnection | None = None
        self.accepted = False
        self.rejected_status: int | None = None
        self.events: list[dict[str, Any]] = []
        self._read()

    @property
    def transport(self) -> StringTransportWithDisconnection:
        """The TCP side of the connection."""
        return self.http.transport

    def _read(self) -> None:
        data = self.transport.value()
        self.transport.clear()
        self.client.receive_data(data)
        for event in self.client.events():
            if isinstance(event, AcceptConnection):
                self.accepted = True
            elif isinstance(event, RejectConnection):
                self.rejected_status = event.status_code
            elif isinstance(event, (RejectData, Ping)):
                pass
            elif isinstance(event, TextMessage):
                self.events.append(json.loads(event.data))
            elif isinstance(event, CloseConnection):
                self.closed = event

    def send(self, request: dict[str, Any] | str) -> None:
        """Send one request (a dict as JSON; a str as it is)."""
        text = request if isinstance(request, str) else json.dumps(request)
        self.send_raw(self.client.send(TextMessage(text)))

    def send_raw(self, data: bytes) -> None:
        """Feed bytes as they are."""
        self.http.protocol.dataReceived(data)

    def take(self) -> list[dict[str, Any]]:
        """The events received since the last call."""
        self._read()
        events, self.events = self.events, []
        return events

    def login(self, nick: str, *rooms: str) -> list[dict[str, Any]]:
        """Log in as C{nick} (and join C{rooms}); return what that brought."""
        self.take()
        self.send({"type": "login", "nick": nick})
        for room in rooms:
            self.send({"type": "join", "room": room})
        return self.take()


def types(events: list[dict[str, Any]]) -> list[str]:
    """The types of C{events}, in order."""
    return [event["type"] for event in events]


@pytest.fixture
def core() -> ChatService:
    """A core on a fake clock."""
    return make_core()[0]


# --- the page ---------------------------------------------------------------------------------


def test_page_is_served_with_its_security_headers(core: ChatService) -> None:
    """/ is the page, with a CSP that allows no inline script, nosniff, no framing, a referrer policy and no-cache."""
    status, headers, body = HttpConnection(site_for(core)).get("/")
    assert status == 200 and b"<html" in body
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-cache" and "last-modified" in headers


def test_static_files_revalidate_with_304(core: ChatService, tmp_path: Any) -> None:
    """A file under /static/ is served with the same headers, and a current copy gets 304 Not Modified."""
    (tmp_path / "index.html").write_text("<html></html>")
    (tmp_path / "app.js").write_text("export {};")
    site = make_site(WebChatFactory(core), directory=tmp_path)
    status, headers, body = HttpConnection(site).get("/static/app.js")
    assert status == 200 and body == b"export {};" and headers["x-content-type-options"] == "nosniff"
    status, _, _ = HttpConnection(site).get("/static/app.js", {"If-Modified-Since": headers["last-modified"]})
    assert status == 304


def test_no_directory_listing_and_no_escape(core: ChatService, tmp_path: Any) -> None:
    """/static/ lists nothing and a path cannot climb out of the directory."""
    (tmp_path / "index.html").write_text("<html></html>")
    site = make_site(WebChatFactory(core), directory=tmp_path)
    assert HttpConnection(site).get("/static/")[0] == 404
    assert HttpConnection(site).get("/static/../../etc/passwd")[0] == 404


def test_the_packaged_page_exists() -> None:
    """The page's files are inside the package (no build step, nothing fetched)."""
    assert (web.static_directory() / "index.html").is_file()


# --- the handshake ----------------------------------------------------------------------------


def test_websocket_from_the_same_origin_says_hello(core: ChatService) -> None:
    """A WebSocket from the server's own origin opens and is greeted with the protocol version."""
    user = WebSocketUser(site_for(core))
    assert user.accepted
    assert user.take() == [{"type": "hello", "version": 1, "server": "chat_twisted", "max_text": 4096,
                            "max_message": 16384}]


def test_websocket_from_another_origin_is_refused(core: ChatService) -> None:
    """A page of another origin gets 403 and no session."""
    user = WebSocketUser(site_for(core), origin="http://evil.invalid")
    assert user.rejected_status == 403 and not user.accepted
    assert core.online == 0 and not core._sessions


def test_allowed_origins_and_star(core: ChatService) -> None:
    """--web-origin lets a named origin in; * lets any in."""
    assert WebSocketUser(site_for(core, allowed=["https://chat.example.org"]), origin="https://chat.example.org").accepted
    assert WebSocketUser(site_for(core, allowed=["*"]), origin="http://anything.invalid").accepted


def test_a_client_without_origin_is_let_in(core: ChatService) -> None:
    """A non-browser client (no Origin header) may connect."""
    assert WebSocketUser(site_for(core), origin=None).accepted


def test_a_plain_get_of_ws_is_a_bad_request(core: ChatService) -> None:
    """GET /ws without a WebSocket handshake is answered 400."""
    assert HttpConnection(site_for(core)).get("/ws")[0] == 400


# --- requests and events ----------------------------------------------------------------------


def test_login_join_and_say(core: ChatService) -> None:
    """A login and a join bring welcome, joined, members and history; a message comes back with its id and time."""
    user = WebSocketUser(site_for(core))
    events = user.login("alice", "lobby")
    assert types(events) == ["welcome", "joined", "members"]
    assert events[0] == {"type": "welcome", "nick": "alice", "online": 1, "account": None}
    assert events[2] == {"type": "members", "room": "lobby", "nicks": ["alice"], "away": []}
    user.send({"type": "say", "room": "lobby", "text": "hello"})
    [message] = user.take()
    assert message == {"type": "message", "room": "lobby", "id": 1, "kind": "say", "nick": "alice", "text": "hello",
                       "time": 1767323045.0, "account": None}


def test_web_line_and_history_meet(core: ChatService) -> None:
    """A line user and a web user share the lobby; joining shows the history with ids."""
    liner = line_user(LineChatFactory(core), "liner")
    liner.send("before\n")
    user = WebSocketUser(site_for(core))
    events = user.login("webby", "lobby")
    assert events[-1] == {"type": "history", "room": "lobby", "requested": False, "messages": [
        {"id": 1, "kind": "say", "nick": "liner", "text": "before", "time": 1767323045.0}]}
    assert "* webby joined lobby" in liner.lines()
    user.send({"type": "say", "room": "lobby", "text": "hi <b>liner</b>"})
    assert "[03:04:05] webby: hi <b>liner</b>" in liner.lines()
    liner.send("/me waves\n")
    assert user.take()[-1]["kind"] == "action"


def test_questions_carry_the_request_id(core: ChatService) -> None:
    """The answer to a question and an error carry the id of the request they answer."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    user.send({"type": "who", "room": "lobby", "id": "w1"})
    user.send({"type": "history", "room": "lobby", "limit": 5, "id": 2})
    user.send({"type": "time", "id": [3]})
    user.send({"type": "join", "room": "lobby", "id": "j"})
    events = user.take()
    assert [(event["type"], event.get("id")) for event in events] == [
        ("members", "w1"), ("history", 2), ("time", [3]), ("error", "j")]
    assert events[-1]["code"] == "already_in_room" and events[-1]["message"] == "you are already in lobby"


def test_a_failed_question_does_not_lend_its_id(core: ChatService) -> None:
    """A question that fails gets an error, and the next answer of its kind does not take its id."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    user.send({"type": "who", "room": "nowhere", "id": 1})
    user.send({"type": "join", "room": "rust"})
    events = user.take()
    assert events[0]["code"] == "no_such_room" and events[0]["id"] == 1
    assert [event for event in events if event["type"] == "members"][0].get("id") is None


def test_history_pages_by_id(core: ChatService) -> None:
    """history with before gives the newest messages older than that id, oldest first."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    for number in range(1, 8):
        user.send({"type": "say", "room": "lobby", "text": f"m{number}"})
    user.take()
    user.send({"type": "history", "room": "lobby", "limit": 3, "before": 5})
    [history] = user.take()
    assert [message["text"] for message in history["messages"]] == ["m2", "m3", "m4"]


def test_private_messages_and_offline(core: ChatService) -> None:
    """tell reaches a web user and echoes to the sender; to an unknown user it is an error."""
    site = site_for(core)
    alice, bob = WebSocketUser(site, 50001), WebSocketUser(site, 50002)
    alice.login("alice")
    bob.login("bob")
    alice.send({"type": "tell", "nick": "bob", "text": "psst"})
    assert alice.take()[0]["echo"] is True
    [private] = bob.take()
    assert (private["type"], private["from"], private["to"], private["text"]) == ("private", "alice", "bob", "psst")
    alice.send({"type": "tell", "nick": "zed", "text": "hi", "id": 5})
    [error] = alice.take()
    assert (error["code"], error["nick"], error["id"]) == ("no_such_user", "zed", 5)


@pytest.mark.parametrize(("request_", "problem"), [
    ("not json", "not JSON"),
    ("[1, 2]", "a request is a JSON object"),
    ({"type": "dance"}, "unknown type 'dance'"),
    ({"type": "say", "room": "lobby", "text": 5}, "'text' must be a string"),
    ({"type": "history", "room": "lobby", "limit": "5"}, "'limit' must be a whole number"),
    ({"type": "whois", "nicks": "bob"}, "'nicks' must be a list of at most 20 strings"),
])
def test_bad_requests_get_an_error_and_keep_the_connection(core: ChatService, request_: Any, problem: str) -> None:
    """A malformed request is answered with bad_request saying what is wrong; the connection stays open."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    user.send(request_)
    [error] = user.take()
    assert (error["type"], error["code"], error["problem"]) == ("error", "bad_request", problem)
    user.send({"type": "ping", "id": 1})
    assert user.take() == [{"type": "pong", "id": 1}]


def test_requests_before_login(core: ChatService) -> None:
    """Before login only login, quit and ping are taken."""
    user = WebSocketUser(site_for(core))
    user.take()
    user.send({"type": "say", "room": "lobby", "text": "hi"})
    assert user.take()[0]["code"] == "not_logged_in"


def test_too_long_text_is_refused(core: ChatService) -> None:
    """A text over 4096 bytes is refused with input_too_long; nothing is said."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    user.send({"type": "say", "room": "lobby", "text": "x" * 4097})
    [error] = user.take()
    assert (error["code"], error["limit"]) == ("input_too_long", 4096)


def test_an_oversized_message_closes_with_1009(core: ChatService) -> None:
    """A WebSocket message over 16 KiB (even in fragments) closes the connection with 1009."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    user.send_raw(user.client.send(TextMessage("x" * 10_000, message_finished=False)))
    user.send_raw(user.client.send(TextMessage("x" * 10_000, message_finished=False)))
    user.take()
    assert user.closed is not None and user.closed.code == 1009
    assert core.online == 0


def test_a_binary_message_closes_with_1003(core: ChatService) -> None:
    """Binary messages are not part of the protocol: closed with 1003."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    user.send_raw(user.client.send(BytesMessage(b"\x00\x01")))
    user.take()
    assert user.closed is not None and user.closed.code == 1003


def test_flood_is_slowed_then_closed(core: ChatService) -> None:
    """Past the burst, requests wait for the clock (fake lag); past the input bound, excess_flood and close 1008."""
    clock = core.clock
    user = WebSocketUser(site_for(core, rate=1.0, burst=10, max_input=1024))
    user.login("alice", "lobby")  # 3 + 3 of the 10 tokens
    for number in range(6):
        user.send({"type": "say", "room": "lobby", "text": f"m{number}"})
    assert [event["text"] for event in user.take()] == ["m0", "m1", "m2", "m3"]
    clock.advance(1)  # type: ignore[attr-defined]
    assert [event["text"] for event in user.take()] == ["m4"]
    clock.advance(1)  # type: ignore[attr-defined]
    assert [event["text"] for event in user.take()] == ["m5"]
    for number in range(20_000 // 1000):
        user.send({"type": "say", "room": "lobby", "text": "y" * 1000})
    events = user.take()
    assert events[-1]["code"] == "excess_flood" and user.closed is not None and user.closed.code == 1008


def test_slow_reader_is_dropped(core: ChatService) -> None:
    """A browser that stops reading while output piles up past --max-output is dropped."""
    user = WebSocketUser(site_for(core, max_output=4096))
    user.login("alice", "lobby")
    liner = line_user(LineChatFactory(core), "liner")
    user.transport.producer.pauseProducing()
    for number in range(20):
        liner.send(f"{'z' * 400} {number}\n")
    assert user.transport.disconnecting or not user.transport.connected
    assert "* alice left lobby (too slow)" in liner.lines()


def test_silent_websocket_is_pinged_then_closed(core: ChatService) -> None:
    """After 60 s of silence the server pings; 30 s more without an answer closes it (1001)."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    core.clock.advance(60)  # type: ignore[attr-defined]
    user.take()
    core.clock.advance(30)  # type: ignore[attr-defined]
    user.take()
    assert user.closed is not None and user.closed.code == 1001


def test_any_message_keeps_it_alive(core: ChatService) -> None:
    """A request within the interval resets the ping timer."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    for _ in range(5):
        core.clock.advance(50)  # type: ignore[attr-defined]
        user.send({"type": "ping"})
    user.take()
    assert user.closed is None


def test_quit_says_goodbye_and_closes_1000(core: ChatService) -> None:
    """quit brings goodbye and a normal close; the line user sees the reason."""
    liner = line_user(LineChatFactory(core), "liner")
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby")
    liner.lines()
    user.send({"type": "quit", "reason": "bye now"})
    events = user.take()
    assert events[-1] == {"type": "goodbye", "reason": "bye now"}
    assert user.closed is not None and user.closed.code == 1000
    assert liner.lines() == ["* alice left lobby (bye now)"]


def test_per_address_limit_applies(core: ChatService) -> None:
    """The core's connection limits apply to WebSockets too: the refused one gets an error and a close."""
    limited, _ = make_core(limits=ConnectionLimits(10, 1, limit_loopback=True))
    site = site_for(limited)
    WebSocketUser(site, 50001).login("alice")
    second = WebSocketUser(site, 50002)
    events = second.take()
    assert events[0]["code"] == "too_many_from_address"
    assert second.closed is not None


def test_connection_rate_applies(core: ChatService) -> None:
    """The per-address connection rate applies to WebSockets too: the refused one gets its error, worded, and a close."""
    clock = Clock()
    limited, _ = make_core(limits=ConnectionLimits(10, 10, limit_loopback=True, clock=clock, per_window=1))
    site = site_for(limited)
    WebSocketUser(site, 50001)
    second = WebSocketUser(site, 50002)
    (event,) = second.take()
    assert event == {"type": "error", "code": "too_many_connections_recently", "limit": 1, "seconds": 600.0,
                     "message": "too many new connections from your address (at most 1 in 600 seconds);"
                                " try again later"}
    assert second.closed is not None


def test_busy_is_an_error_with_its_words(core: ChatService) -> None:
    """A /register refused because too many passwords are being checked answers a C{busy} error."""
    hasher = SwitchedHasher()
    busy_core, _ = make_core(hasher=hasher)
    user = WebSocketUser(site_for(busy_core))
    user.login("alice")
    hasher.busy = True
    user.send({"type": "register", "password": "sekrit99", "id": 7})
    (event,) = user.take()
    assert (event["code"], event["message"], event["id"]) == ("busy", "server busy; try again in a moment", 7)


def test_password_is_never_logged(core: ChatService, capsys: Any) -> None:
    """Registering and logging in over the WebSocket leaves no password in the log."""
    from twisted.logger import capturedLogs

    with capturedLogs() as logged:
        user = WebSocketUser(site_for(core))
        user.login("alice", "lobby")
        user.send({"type": "register", "password": "sekrit-123"})
        assert user.take()[0] == {"type": "registered", "nick": "alice"}
        other = WebSocketUser(site_for(core), 50009)
        other.take()
        other.send({"type": "login", "nick": "alice", "password": "sekrit-123"})
        assert other.take()[0]["type"] == "welcome"
    assert not any("sekrit-123" in repr(event) for event in logged)


def test_search_finds_messages_in_the_users_rooms(core: ChatService) -> None:
    """search answers with search_results, newest first, each with its room and id; a search that fails says so."""
    user = WebSocketUser(site_for(core))
    user.login("alice", "lobby", "rust")
    user.send({"type": "say", "room": "lobby", "text": "Twisted is fun"})
    user.send({"type": "say", "room": "rust", "text": "twisting rust"})
    user.send({"type": "say", "room": "rust", "text": "nothing here"})
    user.take()
    user.send({"type": "search", "text": "twist", "id": "s"})
    [results] = user.take()
    assert results["type"] == "search_results" and results["id"] == "s" and results["text"] == "twist"
    assert [(found["room"], found["text"], found["id"]) for found in results["messages"]] == [
        ("rust", "twisting rust", 2), ("lobby", "Twisted is fun", 1)]
    user.send({"type": "search", "text": "", "id": "e"})
    [error] = user.take()
    assert (error["code"], error["id"]) == ("empty_text", "e")


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
def test_frames_made_once_are_what_a_client_reads(core: ChatService, size: int) -> None:
    """text_frame's bytes (7-, 16- and 64-bit lengths) are read by a WebSocket client as that one message."""
    user = WebSocketUser(site_for(core))
    user.take()
    text = "é" * (size // 2) + "x" * (size % 2)
    user.client.receive_data(web.text_frame(json.dumps({"text": text})))
    assert [event["text"] for event in user.take()] == [text]
