"""
The WebSocket door and the page's site, without a browser or a socket: the site is driven over a
StringTransport, and a wsproto client connection makes the client's frames and reads the
server's. The clock is a task.Clock.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.task import Clock
from wsproto.events import BytesMessage, TextMessage

from chat_twisted.core import ChatService
from chat_twisted.limits import ConnectionLimits
from chat_twisted.wire import web
from chat_twisted.wire.line import LineChatFactory
from chat_twisted.wire.web import WebChatFactory, make_site
from tests.helpers import START, HttpConnection, SwitchedHasher, WebSocketUser, line_user, make_core, site_for


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
    assert events[2] == {"type": "members", "room": "lobby", "nicks": ["alice"], "away": [], "operators": [],
                         "voiced": []}
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
    from twisted.logger import capturedLogs, formatEvent

    with capturedLogs() as logged:
        user = WebSocketUser(site_for(core))
        user.login("alice", "lobby")
        user.send({"type": "register", "password": "sekrit-123"})
        assert user.take()[0] == {"type": "registered", "nick": "alice"}
        other = WebSocketUser(site_for(core), 50009)
        other.take()
        other.send({"type": "login", "nick": "alice", "password": "sekrit-123"})
        assert other.take()[0]["type"] == "welcome"
    texts = [formatEvent(event) for event in logged]
    assert any(text.startswith("alice logged in from") for text in texts), texts  # the logins were logged
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


# --- moderation -------------------------------------------------------------------------------


@pytest.fixture
def moderated() -> tuple[ChatService, Any]:
    """A core whose account C{root} is a server operator, and its web site."""
    core = make_core(operators=["root"])[0]
    return core, site_for(core)


def op_and_member(site: Any) -> tuple[WebSocketUser, WebSocketUser]:
    """alice, who made #mods (so operates it), and bob, who joined it after her; their events taken."""
    alice, bob = WebSocketUser(site, 50001), WebSocketUser(site, 50002)
    alice.login("alice", "mods")
    bob.login("bob", "mods")
    alice.take()
    return alice, bob


def server_operator(site: Any, *rooms: str) -> WebSocketUser:
    """root, registered (so identified to the account --oper names), in C{rooms}; its events taken."""
    root = WebSocketUser(site, 50009)
    root.login("root", *rooms)
    root.send({"type": "register", "password": "sekrit-99"})
    assert root.take() == [{"type": "registered", "nick": "root"}]
    return root


def mode(nick: str, change: str, target: str = "", room: str = "mods") -> dict[str, Any]:
    """The JSON of a ModeChanged."""
    return {"type": "mode", "room": room, "nick": nick, "change": change, "target": target}


def error_of(user: WebSocketUser) -> dict[str, Any]:
    """The one event C{user} got, which must be an error; without its English words (checked to be there)."""
    [error] = user.take()
    assert error["type"] == "error" and isinstance(error["message"], str) and error["message"]
    return {key: value for key, value in error.items() if key not in ("type", "message")}


def test_members_name_the_operators_and_the_voiced(moderated: tuple[ChatService, Any]) -> None:
    """members carries operators and voiced: the first to enter a new room operates it, the lobby has none."""
    _, site = moderated
    alice = WebSocketUser(site, 50001)
    events = alice.login("alice", "mods")
    assert events[-1] == {"type": "members", "room": "mods", "nicks": ["alice"], "away": [], "operators": ["alice"],
                          "voiced": []}
    alice.send({"type": "who", "room": "lobby", "id": "w"})
    assert alice.take()[0]["operators"] == []


@pytest.mark.parametrize(("kind", "change"), [("op", "+o"), ("voice", "+v")])
def test_op_and_voice_are_shown_to_the_room_and_undone(moderated: tuple[ChatService, Any], kind: str,
                                                       change: str) -> None:
    """op/voice give bob the mode (everyone in the room sees mode +o/+v and members lists him); deop/devoice take it back."""
    _, site = moderated
    alice, bob = op_and_member(site)
    alice.send({"type": kind, "room": "mods", "nick": "bob"})
    assert alice.take() == bob.take() == [mode("alice", change, "bob")]
    listed = "operators" if kind == "op" else "voiced"
    bob.send({"type": "who", "room": "mods"})
    assert "bob" in bob.take()[0][listed]
    alice.send({"type": "de" + kind, "room": "mods", "nick": "bob"})
    assert alice.take() == bob.take() == [mode("alice", "-" + change[1], "bob")]
    bob.send({"type": "who", "room": "mods"})
    assert "bob" not in bob.take()[0][listed]


def test_kick_removes_the_member_with_the_reason(moderated: tuple[ChatService, Any]) -> None:
    """kick: both see kicked with who, whom and why; bob is out of the room; without a reason it is empty."""
    _, site = moderated
    alice, bob = op_and_member(site)
    alice.send({"type": "kick", "room": "mods", "nick": "bob", "reason": "spam"})
    kicked = {"type": "kicked", "room": "mods", "nick": "alice", "target": "bob", "reason": "spam"}
    assert alice.take() == bob.take() == [kicked]
    bob.send({"type": "say", "room": "mods", "text": "still here?"})
    assert error_of(bob) == {"code": "not_in_room", "room": "mods", "request": "say"}
    bob.send({"type": "join", "room": "mods"})
    bob.take()
    alice.take()
    alice.send({"type": "kick", "room": "mods", "nick": "bob"})
    assert bob.take() == [{**kicked, "reason": ""}]


def test_a_member_who_is_not_an_operator_is_refused(moderated: tuple[ChatService, Any]) -> None:
    """bob, not an operator, gets not_operator (with the room) for op, kick, ban and mode changes; nothing happens."""
    _, site = moderated
    alice, bob = op_and_member(site)
    for request in ({"type": "op", "room": "mods", "nick": "bob"},
                    {"type": "kick", "room": "mods", "nick": "alice"},
                    {"type": "ban", "room": "mods", "mask": "alice"},
                    {"type": "mode", "room": "mods", "changes": "+m", "id": 9}):
        bob.send(request)
        expected = {"code": "not_operator", "room": "mods", "request": request["type"]}
        assert error_of(bob) == {**expected, **({"id": 9} if "id" in request else {})}
    assert alice.take() == []


def test_ban_bans_and_unban(moderated: tuple[ChatService, Any]) -> None:
    """ban is shown as mode +b; bans lists it (with its id); a banned user cannot come back; unban lifts it, twice is no_such_ban."""
    _, site = moderated
    alice, bob = op_and_member(site)
    alice.send({"type": "ban", "room": "mods", "mask": "Bob"})
    assert alice.take() == bob.take() == [mode("alice", "+b", "bob")]
    bob.send({"type": "bans", "room": "mods", "id": "b"})
    assert bob.take() == [{"type": "bans", "room": "mods", "id": "b", "bans": [
        {"mask": "bob", "by": "alice", "time": START, "expires": None, "reason": ""}]}]
    alice.send({"type": "kick", "room": "mods", "nick": "bob"})
    bob.take()
    bob.send({"type": "join", "room": "mods"})
    assert error_of(bob) == {"code": "banned", "room": "mods", "request": "join"}
    alice.take()
    alice.send({"type": "unban", "room": "mods", "mask": "bob"})
    assert alice.take() == [mode("alice", "-b", "bob")]
    alice.send({"type": "unban", "room": "mods", "mask": "bob"})
    assert error_of(alice) == {"code": "no_such_ban", "mask": "bob", "room": "mods", "request": "unban"}
    alice.send({"type": "ban", "room": "mods", "mask": "no spaces"})
    assert error_of(alice) == {"code": "invalid_mask", "mask": "no spaces", "request": "ban"}


def test_modes_asked_set_and_applied(moderated: tuple[ChatService, Any]) -> None:
    """mode without changes answers modes (with the id); with changes each one is shown; +m quiets bob, +i needs an invite."""
    _, site = moderated
    alice, bob = op_and_member(site)
    alice.send({"type": "mode", "room": "mods", "id": 1})
    assert alice.take() == [{"type": "modes", "room": "mods", "modes": "", "owner": None, "id": 1}]
    alice.send({"type": "mode", "room": "mods", "changes": "+mi", "id": 2})
    assert alice.take() == bob.take() == [mode("alice", "+m"), mode("alice", "+i")]
    bob.send({"type": "say", "room": "mods", "text": "hello?"})
    assert error_of(bob) == {"code": "cannot_speak", "room": "mods", "why": "moderated", "request": "say"}
    bob.send({"type": "mode", "room": "mods", "id": 3})
    assert bob.take() == [{"type": "modes", "room": "mods", "modes": "im", "owner": None, "id": 3}]
    alice.send({"type": "mode", "room": "mods", "changes": "+x"})
    assert error_of(alice) == {"code": "unknown_mode", "mode": "x", "request": "mode"}
    alice.send({"type": "mode", "room": "mods", "changes": "-m"})
    assert alice.take() == [mode("alice", "-m")]


def test_invite_lets_a_user_into_an_invite_only_room(moderated: tuple[ChatService, Any]) -> None:
    """An invite-only room refuses carol (invite_only) until its operator invites her (invited, to both); inviting a member is user_in_room."""
    _, site = moderated
    alice, bob = op_and_member(site)
    carol = WebSocketUser(site, 50003)
    carol.login("carol")
    alice.send({"type": "mode", "room": "mods", "changes": "+i"})
    alice.take()
    carol.send({"type": "join", "room": "mods"})
    assert error_of(carol) == {"code": "invite_only", "room": "mods", "request": "join"}
    alice.send({"type": "invite", "room": "mods", "nick": "carol"})
    invited = {"type": "invited", "room": "mods", "nick": "alice", "target": "carol"}
    assert alice.take() == carol.take() == [invited]
    carol.send({"type": "join", "room": "mods"})
    assert types(carol.take())[:1] == ["joined"]
    alice.take()
    alice.send({"type": "invite", "room": "mods", "nick": "bob"})
    assert error_of(alice) == {"code": "user_in_room", "nick": "bob", "room": "mods", "request": "invite"}
    alice.send({"type": "op", "room": "mods", "nick": "zed"})
    assert error_of(alice) == {"code": "no_such_user", "nick": "zed", "request": "op"}


def test_claim_needs_a_registered_operator(moderated: tuple[ChatService, Any]) -> None:
    """claim: a guest gets not_identified; a registered operator's claim is shown as claimed; again is already_claimed; the lobby cannot_claim."""
    _, site = moderated
    alice, bob = op_and_member(site)
    alice.send({"type": "claim", "room": "mods"})
    assert error_of(alice) == {"code": "not_identified", "request": "claim"}
    alice.send({"type": "register", "password": "sekrit-99"})
    alice.take()
    bob.take()
    alice.send({"type": "claim", "room": "mods"})
    assert alice.take() == bob.take() == [{"type": "claimed", "room": "mods", "nick": "alice", "account": "alice"}]
    alice.send({"type": "mode", "room": "mods", "id": 1})
    assert alice.take()[0]["owner"] == "alice"
    alice.send({"type": "claim", "room": "mods"})
    assert error_of(alice) == {"code": "already_claimed", "room": "mods", "owner": "alice", "request": "claim"}
    alice.send({"type": "join", "room": "lobby"})
    alice.take()
    alice.send({"type": "claim", "room": "lobby"})
    assert error_of(alice) == {"code": "cannot_claim", "room": "lobby", "request": "claim"}


def test_a_server_operator_is_protected_and_says_so_in_whois(moderated: tuple[ChatService, Any]) -> None:
    """whois tells server_operator; a room operator kicking the server operator gets protected; the server operator ops in a room he does not operate."""
    _, site = moderated
    alice, bob = op_and_member(site)
    root = server_operator(site, "mods")
    alice.take()
    alice.send({"type": "whois", "nicks": ["root", "bob"]})
    [users] = alice.take()
    assert [(user["nick"], user["server_operator"]) for user in users["users"]] == [("root", True), ("bob", False)]
    alice.send({"type": "kick", "room": "mods", "nick": "root"})
    assert error_of(alice) == {"code": "protected", "nick": "root", "room": "mods", "request": "kick"}
    root.send({"type": "op", "room": "mods", "nick": "bob"})
    assert root.take() == [mode("root", "+o", "bob")]


def test_kill_and_wall_need_a_server_operator(moderated: tuple[ChatService, Any]) -> None:
    """kill and wall from a guest are not_server_operator; root's wall reaches everyone, root's kill shows bob killed and closes him."""
    _, site = moderated
    alice, bob = op_and_member(site)
    for request in ({"type": "kill", "nick": "bob"}, {"type": "wall", "text": "hi"}, {"type": "gbans"},
                    {"type": "gban", "mask": "10.0.0.0/8"}, {"type": "ungban", "mask": "10.0.0.0/8"}):
        alice.send(request)
        assert error_of(alice) == {"code": "not_server_operator", "request": request["type"]}
    root = server_operator(site)
    root.send({"type": "wall", "text": "maintenance at noon"})
    wall = {"type": "wall", "nick": "root", "text": "maintenance at noon", "time": START}
    assert alice.take() == bob.take() == root.take() == [wall]
    root.send({"type": "kill", "nick": "bob", "reason": "flooding"})
    assert bob.take() == [{"type": "killed", "nick": "root", "reason": "flooding"}]
    assert bob.closed is not None
    [quit] = alice.take()
    assert (quit["type"], quit["nick"], quit["rooms"]) == ("quit", "bob", ["mods"])
    root.send({"type": "wall", "text": "  "})
    assert error_of(root) == {"code": "empty_text", "request": "wall"}


def test_server_bans_set_listed_lifted_and_refusing(moderated: tuple[ChatService, Any]) -> None:
    """gban (duration as text or seconds) answers gban added, gbans lists them (room null), ungban lifts; a banned address is refused with server_banned."""
    core, site = moderated
    root = server_operator(site)
    root.send({"type": "gban", "mask": "10.0.0.0/8", "duration": "7d", "reason": "spam"})
    ban = {"mask": "10.0.0.0/8", "by": "root", "time": START, "expires": START + 7 * 86400, "reason": "spam"}
    assert root.take() == [{"type": "gban", "added": True, "ban": ban}]
    root.send({"type": "gban", "mask": "account:mallory", "duration": 3600})
    mallory = {"mask": "account:mallory", "by": "root", "time": START, "expires": START + 3600, "reason": ""}
    assert root.take() == [{"type": "gban", "added": True, "ban": mallory}]
    root.send({"type": "gbans", "id": "g"})
    assert root.take() == [{"type": "bans", "room": None, "bans": [ban, mallory], "id": "g"}]
    root.send({"type": "ungban", "mask": "10.0.0.0/8"})
    [lifted] = root.take()
    assert (lifted["type"], lifted["added"], lifted["ban"]["mask"]) == ("gban", False, "10.0.0.0/8")
    root.send({"type": "ungban", "mask": "10.0.0.0/8"})
    assert error_of(root) == {"code": "no_such_ban", "mask": "10.0.0.0/8", "room": "", "request": "ungban"}
    root.send({"type": "gban", "mask": "bob"})
    assert error_of(root) == {"code": "invalid_mask", "mask": "bob", "request": "gban"}

    root.send({"type": "gban", "mask": "127.0.0.1", "reason": "go away"})
    root.take()
    refused = WebSocketUser(site, 50020)
    [error] = refused.take()
    assert (error["code"], error["reason"], error["expires"]) == ("server_banned", "go away", None)
    assert refused.closed is not None


@pytest.mark.parametrize(("duration", "error"), [
    ("soon", {"code": "invalid_duration", "text": "soon"}),
    (0, {"code": "invalid_duration", "text": "0"}),
    (-5, {"code": "invalid_duration", "text": "-5"}),
    (1.5, {"code": "bad_request", "problem": "'duration' must be a whole number of seconds or a text such as \"7d\""}),
    (True, {"code": "bad_request", "problem": "'duration' must be a whole number of seconds or a text such as \"7d\""}),
    (["7d"], {"code": "bad_request", "problem": "'duration' must be a whole number of seconds or a text such as \"7d\""}),
])
def test_a_bad_server_ban_duration_is_an_error(moderated: tuple[ChatService, Any], duration: Any,
                                               error: dict[str, Any]) -> None:
    """A gban duration that is not a positive whole number of seconds or a text such as 7d is refused; no ban is set."""
    _, site = moderated
    root = server_operator(site)
    root.send({"type": "gban", "mask": "10.0.0.0/8", "duration": duration})
    assert error_of(root) == {**error, "request": "gban"}
    root.send({"type": "gbans"})
    assert root.take()[0]["bans"] == []


@pytest.mark.parametrize(("request_", "problem"), [
    ({"type": "op", "room": "mods"}, "'nick' must be a string"),
    ({"type": "deop", "room": "mods", "nick": 7}, "'nick' must be a string"),
    ({"type": "voice", "nick": "bob"}, "'room' must be a string"),
    ({"type": "devoice", "room": ["mods"], "nick": "bob"}, "'room' must be a string"),
    ({"type": "kick", "room": "mods", "nick": "bob", "reason": 5}, "'reason' must be a string"),
    ({"type": "ban", "room": "mods"}, "'mask' must be a string"),
    ({"type": "unban", "room": "mods", "mask": None}, "'mask' must be a string"),
    ({"type": "bans"}, "'room' must be a string"),
    ({"type": "invite", "room": "mods", "nick": {"n": 1}}, "'nick' must be a string"),
    ({"type": "mode", "room": "mods", "changes": 5}, "'changes' must be a string"),
    ({"type": "claim", "room": 1}, "'room' must be a string"),
    ({"type": "kill"}, "'nick' must be a string"),
    ({"type": "kill", "nick": "bob", "reason": False}, "'reason' must be a string"),
    ({"type": "gban", "duration": "7d"}, "'mask' must be a string"),
    ({"type": "gban", "mask": "10.0.0.0/8", "reason": 3}, "'reason' must be a string"),
    ({"type": "ungban", "mask": 10}, "'mask' must be a string"),
    ({"type": "wall", "text": None}, "'text' must be a string"),
])
def test_bad_moderation_requests_get_an_error_and_keep_the_connection(
    moderated: tuple[ChatService, Any], request_: dict[str, Any], problem: str
) -> None:
    """A moderation request with a missing or ill-typed field is answered bad_request saying which; nothing changes; the connection stays."""
    _, site = moderated
    alice, bob = op_and_member(site)
    alice.send({**request_, "id": "x"})
    assert error_of(alice) == {"code": "bad_request", "problem": problem, "request": request_["type"], "id": "x"}
    assert bob.take() == []
    alice.send({"type": "ping", "id": 1})
    assert alice.take() == [{"type": "pong", "id": 1}]


def test_a_too_long_kick_reason_is_refused(moderated: tuple[ChatService, Any]) -> None:
    """A kick reason (or wall text) over 4096 bytes is input_too_long and kicks nobody."""
    _, site = moderated
    alice, bob = op_and_member(site)
    alice.send({"type": "kick", "room": "mods", "nick": "bob", "reason": "x" * 4097})
    assert error_of(alice) == {"code": "input_too_long", "limit": 4096, "request": "kick"}
    assert bob.take() == []


def test_shared_moderation_events_are_rendered_once_for_a_room(moderated: tuple[ChatService, Any]) -> None:
    """A mode change fanned out to a room is made into JSON once (the factory's cache), and still reads the same for each."""
    _, site = moderated
    alice, bob = op_and_member(site)
    carol = WebSocketUser(site, 50003)
    carol.login("carol", "mods")
    alice.take(), bob.take()
    factory = site.resource.children[b"ws"].factory
    alice.send({"type": "voice", "room": "mods", "nick": "carol"})
    assert alice.take() == bob.take() == carol.take() == [mode("alice", "+v", "carol")]
    assert type(factory.cached_event).__name__ == "ModeChanged"


def test_the_protocol_doc_shows_every_request_and_moderation_event() -> None:
    """docs/websocket.md has an example of every request the door takes and of every moderation event."""
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "websocket.md").read_text()
    events = ["members", "users", "mode", "kicked", "invited", "claimed", "modes", "bans", "gban", "killed", "wall"]
    missing = [kind for kind in [*web.REQUESTS, *events] if f'{{"type":"{kind}"' not in doc]
    assert missing == []
