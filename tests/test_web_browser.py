"""
The web page end to end: Debian's Chromium, driven by Playwright (L{tests.browser}), on the page
the real ``twistd -n chat --web ...`` serves on 127.0.0.1, with ``nc``-style users
(L{tests.e2e.SocketClient}) on the line port in the same rooms. Two browser users and an nc user
chat; hostile text stays text; older history loads on scrolling up; private conversations; the
page comes back after a server restart; other origins are refused; and the screenshots in the
README (written to docs/ when CHAT_WEB_SCREENSHOTS is set). Skipped, saying why, without
Playwright or /usr/bin/chromium. Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser import ChatPage, WebServer, browser, needs_browser, open_page
from tests.e2e import WAIT, IrcClient, SocketClient, free_port, wait_until

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - skipped by needs_browser
    pass

if TYPE_CHECKING:
    from playwright.sync_api import Locator

__all__ = ["browser", "open_page"]  # fixtures, used here by name

pytestmark = needs_browser

OpenPage = Callable[..., ChatPage]

#: Chromium's own console error when a WebSocket cannot connect (while the server is down).
_WEBSOCKET_REFUSED = re.compile(r"WebSocket connection to 'ws://127\.0\.0\.1:\d+/ws' failed")

_DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    """One server with its web door for the tests that can share it (each uses nicks of its own)."""
    running = WebServer(tmp_path_factory.mktemp("web"), ["--rate", "0"])
    try:
        yield running
    finally:
        assert running.stop() == 0


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[WebServer]:
    """A server of the test's own (an empty #lobby), stopped after it."""
    running = WebServer(tmp_path, ["--rate", "0"])
    try:
        yield running
    finally:
        assert running.stop() == 0


@pytest.fixture
def nc_users() -> Iterator[Callable[[int, str], SocketClient]]:
    """Logs in line-protocol users (as nc would) on a port; closes them after the test."""
    clients: list[SocketClient] = []

    def log_in(port: int, nick: str) -> SocketClient:
        client = SocketClient(port)
        clients.append(client)
        client.login(nick)
        return client

    try:
        yield log_in
    finally:
        for client in clients:
            client.close()


def test_two_browser_users_and_an_nc_user_chat_in_one_room(
    server: WebServer, open_page: OpenPage, nc_users: Callable[[int, str], SocketClient]
) -> None:
    """Two browser users and an nc user in #lobby each see the others' lines, with who said them."""
    nico = nc_users(server.line, "nico")
    anna = open_page(server.url)
    anna.log_in("anna")
    nico.expect("anna joined lobby")
    ben = open_page(server.url)
    ben.log_in("ben")
    nico.expect("ben joined lobby")
    for page, others in ((anna, ("ben", "nico")), (ben, ("anna", "nico"))):
        for nick in others:
            expect(page.member(nick)).to_be_visible()

    anna.send("hello from Anna's browser")
    nico.expect("anna: hello from Anna's browser")
    ben.wait_for_line("hello from Anna's browser", nick="anna")
    anna.wait_for_line("hello from Anna's browser", nick="anna")

    ben.send("and hello from Ben's")
    nico.expect("ben: and hello from Ben's")
    anna.wait_for_line("and hello from Ben's", nick="ben")

    nico.send("hello from nc\n")
    anna.wait_for_line("hello from nc", nick="nico")
    ben.wait_for_line("hello from nc", nick="nico")
    assert anna.problems() == [] and ben.problems() == []


#: Markup and script in a message, each of which must stay text.
_HOSTILE = '<script>alert(1)</script> <img src=x onerror=alert(1)> javascript:alert(1)'
_LINK = "https://example.org/x"

# Elements of the log with an event-handler attribute (on...) or a javascript: address.
_ACTIVE_ATTRIBUTES_JS = """
(log) => Array.from(log.querySelectorAll("*")).flatMap(el => Array.from(el.attributes)
    .filter(a => a.name.startsWith("on") || /^\\s*javascript:/i.test(a.value))
    .map(a => el.tagName + " " + a.name + "=" + a.value))
"""


def test_markup_in_messages_is_shown_as_text_and_runs_nothing(
    server: WebServer, open_page: OpenPage, nc_users: Callable[[int, str], SocketClient]
) -> None:
    """A <script>, an <img onerror> and a javascript: link, sent from the page and from nc, show as text and run nothing; an https address becomes a safe link."""
    eve = nc_users(server.line, "eve")
    mallory = open_page(server.url)
    mallory.log_in("mallory")
    victor = open_page(server.url)
    victor.log_in("victor")
    eve.expect("victor joined lobby")

    from_page = f"{_HOSTILE} from the page, see {_LINK}"
    from_nc = f"{_HOSTILE} from nc"
    mallory.send(from_page)
    eve.expect(f"mallory: {from_page}")
    eve.send(from_nc + "\n")
    for page in (victor, mallory):
        page.wait_for_line(from_page, nick="mallory")
        page.wait_for_line(from_nc, nick="eve")
        assert page.log.locator("script, img, iframe, object, embed, svg").count() == 0
        assert page.log.evaluate(_ACTIVE_ATTRIBUTES_JS) == []
        expect(page.log.get_by_role("link", name=re.compile("javascript", re.IGNORECASE))).to_have_count(0)
        links = page.log.get_by_role("link", name=_LINK, exact=True)
        expect(links).to_have_count(1)
        assert links.get_attribute("href") == _LINK
        assert links.get_attribute("target") == "_blank"
        assert set((links.get_attribute("rel") or "").split()) >= {"noopener", "noreferrer"}
        assert page.problems() == [], "the markup ran, or was refused by the Content-Security-Policy"


def _seed_numbers(lines: list[str]) -> list[int]:
    """The numbers of the seeded messages (C{seed mNNN}) among C{lines}, in the order shown."""
    return [int(number) for line in lines for number in re.findall(r"seed m(\d{3})\b", line)]


def test_older_history_loads_on_scrolling_up(
    fresh_server: WebServer, open_page: OpenPage, nc_users: Callable[[int, str], SocketClient]
) -> None:
    """Of 120 messages a newcomer is shown the newest; scrolling up loads older ones, in order, keeping the lines read in view."""
    seeder = nc_users(fresh_server.line, "seeder")
    seeder.send("".join(f"seed m{number:03d}\n" for number in range(1, 121)))
    seeder.expect("seeder: seed m120")

    reader = open_page(fresh_server.url)
    reader.log_in("reader")
    reader.wait_for_line("seed m120", nick="seeder")
    shown = _seed_numbers(reader.lines())
    assert shown == list(range(shown[0], 121)), f"the newest messages, in order: {shown}"
    assert shown[0] > 1, "a newcomer is shown only the newest page of history"

    while shown[0] > 1:
        in_view = _seed_numbers(reader.scroll_history_to_top())
        assert in_view, f"no seeded line in view at the top of the log: {reader.lines()[:4]}"
        first = in_view[0]
        if first == 1:  # the page had loaded the rest already
            break
        wait_until(lambda: min(_seed_numbers(reader.lines()), default=first) < first,
                   f"messages older than m{first:03d}", seen=lambda: reader.lines()[:4])
        expect(reader.line(f"seed m{first:03d}")).to_be_in_viewport()  # the page did not jump away
        shown = _seed_numbers(reader.lines())
        assert shown == list(range(shown[0], 121)), f"history merged in order, without doubles: {shown}"
    expect(reader.line("seed m001")).to_be_visible()
    assert reader.problems() == []


def test_a_private_message_opens_its_own_conversation(
    server: WebServer, open_page: OpenPage, nc_users: Callable[[int, str], SocketClient]
) -> None:
    """A private message from nc shows a conversation of its own; clicking the member opens it, and the answer reaches nc as private."""
    pia = open_page(server.url)
    pia.log_in("pia")
    nora = nc_users(server.line, "nora")
    pia.wait_for_line("nora")  # she joined
    nora.send("a word for the whole room\n")
    pia.wait_for_line("a word for the whole room", nick="nora")

    nora.send("/msg pia psst, only for you\n")
    expect(pia.conversation("nora")).to_be_visible()
    pia.open_room("lobby")  # whatever the page showed, the reader goes back to the room...
    pia.wait_for_line("a word for the whole room", nick="nora")
    pia.open_private("nora")  # ...and clicks nora among the members
    pia.wait_for_line("psst, only for you", nick="nora")
    pia.send("a private answer")
    nora.expect("(private) pia: a private answer")

    pia.open_room("lobby")
    pia.wait_for_line("a word for the whole room", nick="nora")
    assert not any("a private answer" in line or "psst" in line for line in pia.lines())
    assert pia.problems() == []


def _who_has(client: SocketClient, room: str, nick: str) -> bool:
    """Ask the server (/who) whether C{nick} is in C{room}."""
    client.send(f"/who {room}\n")
    answer = client.expect(f" in {room}: ")[-1]
    return nick in answer.split(f" in {room}: ", 1)[1].split(", ")


def test_the_page_recovers_after_the_server_restarts(
    tmp_path: Path, open_page: OpenPage, nc_users: Callable[[int, str], SocketClient]
) -> None:
    """When the server stops the page says it is disconnected; when it is back on the same address the page logs in again and its messages arrive."""
    server = WebServer.on_fixed_ports(tmp_path, ["--rate", "0"])
    try:
        rosa = open_page(server.url)
        rosa.log_in("rosa")
        nancy = nc_users(server.line, "nancy")
        nancy.send("before the restart\n")
        rosa.wait_for_line("before the restart", nick="nancy")

        assert server.stop() == 0
        nancy.expect_closed()
        rosa.wait_until_disconnected()

        server.start_again()
        nancy = nc_users(server.line, "nancy")
        rosa.wait_until_reconnected()
        # The page backs off between attempts (1, 2, 4, 8 s): a failed one may come after the above.
        wait_until(lambda: _who_has(nancy, "lobby", "rosa"), "rosa back in lobby", timeout=3 * WAIT)
        rosa.send("after the restart")
        nancy.expect("rosa: after the restart")
        assert rosa.problems(allow=_WEBSOCKET_REFUSED) == []
    finally:
        assert server.stop() == 0


class _OtherOrigin:
    """A tiny web server (python -m http.server) on another 127.0.0.1 port: a page of another origin."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1", "--directory", str(directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self._accepts, "python -m http.server to listen")

    def _accepts(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"http.server exited with {self.process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=WAIT).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        """Stop it (bounded wait)."""
        self.process.terminate()
        try:
            self.process.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(WAIT)


# Open the chat's WebSocket from the page, recording in window.outcome what became of it.
_OPEN_WEBSOCKET_JS = """
(url) => {
    const socket = new WebSocket(url);
    socket.onopen = () => { window.outcome = "open"; socket.close(); };
    socket.onclose = (event) => { window.outcome = window.outcome || "closed " + event.code; };
}
"""


def _upgrade_status(port: int, origin: str) -> str:
    """The status line the server answers a WebSocket upgrade of /ws from C{origin} with (raw HTTP)."""
    request = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request.encode("ascii"))
        answer = b""
        deadline = time.monotonic() + WAIT
        while b"\r\n" not in answer and time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode("latin-1")


def test_the_origin_check_refuses_a_page_of_another_origin(
    server: WebServer, open_page: OpenPage, tmp_path: Path
) -> None:
    """A page of another origin cannot open the chat's WebSocket (the server answers 403), the server's own page can."""
    ws_url = f"ws://127.0.0.1:{server.web}/ws"
    (tmp_path / "index.html").write_text("<!doctype html><title>another site</title><p>another site</p>\n")
    other = _OtherOrigin(tmp_path)
    try:
        foreign = open_page(f"http://127.0.0.1:{other.port}/")
        foreign.page.evaluate(_OPEN_WEBSOCKET_JS, ws_url)
        foreign.page.wait_for_function("() => window.outcome !== undefined")
        assert foreign.page.evaluate("window.outcome").startswith("closed")
    finally:
        other.stop()
    server.process.wait_for_log(re.compile(rf"refused a WebSocket from origin http://127\.0\.0\.1:{other.port}\b"))

    own = open_page(server.url)
    own.page.evaluate(_OPEN_WEBSOCKET_JS, ws_url)
    own.page.wait_for_function("() => window.outcome !== undefined")
    assert own.page.evaluate("window.outcome") == "open"

    assert _upgrade_status(server.web, "http://evil.invalid").startswith("HTTP/1.1 403 ")
    assert _upgrade_status(server.web, server.origin).startswith("HTTP/1.1 101 ")


_IRC_LISTENING = re.compile(r"chat IRC listening on 127\.0\.0\.1:(\d+)")

#: The conversation in the screenshots: who says what in #lobby, in order ("alice" types hers in the page).
_CONVERSATION = [
    ("maria", "Morning all! Release branch is cut, RC1 builds are green."),
    ("tom", "Nice. Staging deploy went out at 9:10, no alerts so far."),
    ("sam", "I'll start the changelog draft after standup"),
    ("alice", "Morning! I can take the migration notes."),
    ("priya", "alice, could you review the retry PR before lunch? https://git.example.org/chat/pull/412"),
    ("alice", "Sure, on it after coffee \u2615"),
    ("tom", "/me opens the incident dashboard just in case"),
    ("maria", "Reminder: code freeze is Thursday 18:00. Anything not merged by then waits for 2.5."),
    ("sam", "Changelog draft is up, comments welcome"),
    ("tom", "Latency on the EU cluster is back to ~40 ms after the cache fix"),
    ("alice", "/me gives the cache fix a thumbs up"),
    ("maria", "Let's do the go/no-go call tomorrow at 10."),
]


def test_screenshots_of_a_conversation_in_light_and_dark(
    tmp_path: Path, open_page: OpenPage, nc_users: Callable[[int, str], SocketClient]
) -> None:
    """The page shows a conversation from three doors in a light and a dark colour scheme (docs/web-light.png and web-dark.png when CHAT_WEB_SCREENSHOTS is set)."""
    server = WebServer(tmp_path, ["--rate", "0", "--irc", "tcp:0:interface=127.0.0.1"])
    try:
        dana = nc_users(server.line, "dana")
        dana.send("/join design\n")
        dana.expect("dana joined design")
        omar = nc_users(server.line, "omar")
        omar.send("/join ops\n")
        omar.expect("omar joined ops")
        talkers = {nick: nc_users(server.line, nick) for nick in ("maria", "tom", "sam")}
        talkers["maria"].send("/topic Release 2.4 planning \u00b7 notes: https://wiki.example.org/release-2.4\n")
        talkers["maria"].expect("set the topic")
        priya = IrcClient(int(server.process.wait_for_log(_IRC_LISTENING).group(1)))
        try:
            priya.register("priya")
            priya.join("#lobby")
            alice = open_page(server.url)
            alice.log_in("alice")
            alice.join("design")
            alice.join("ops")
            alice.open_room("lobby")
            for nick, text in _CONVERSATION:
                if nick == "alice":
                    alice.send(text)
                elif nick == "priya":
                    priya.privmsg("#lobby", text)
                else:
                    talkers[nick].send(text + "\n")
                alice.wait_for_line(text.removeprefix("/me "), nick=nick)
            priya.send_line("AWAY :lunch")
            priya.expect_message("306")
            dana.send("mock-ups for the settings page are in the shared folder\nfeedback by Friday, please\n")
            omar.send("disk alert on db-2 cleared\n")
            talkers["tom"].send("/msg alice got a minute after standup?\n/msg alice it's about the rollout plan\n")
            talkers["tom"].expect("(private to alice) tom: it's about the rollout plan")
            expect(alice.conversation("tom")).to_be_visible()
            expect(alice.member_row("priya")).to_contain_text("away")

            shots = {}
            for scheme in ("light", "dark"):
                alice.page.emulate_media(color_scheme=scheme)
                shots[scheme] = tmp_path / f"web-{scheme}.png"
                alice.page.screenshot(path=str(shots[scheme]))
            assert shots["light"].read_bytes() != shots["dark"].read_bytes(), "the page looks the same in dark mode"
            if os.environ.get("CHAT_WEB_SCREENSHOTS"):
                for scheme, shot in shots.items():
                    shutil.copyfile(shot, _DOCS / f"web-{scheme}.png")
            assert alice.problems() == []
        finally:
            priya.close()
    finally:
        assert server.stop() == 0


# --- moderation -------------------------------------------------------------------------------


def _row(page: ChatPage, nick: str) -> Locator:
    """C{nick}'s item in "Members" (the user's own too), with its marks and tags."""
    return page.members.get_by_role("listitem").filter(has=page.page.get_by_text(nick, exact=True))


def _member_menu(page: ChatPage, nick: str) -> Locator:
    """Open C{nick}'s menu in "Members" with its "Actions for" button; return the menu."""
    page.members.get_by_role("button", name=f"Actions for {nick}", exact=True).click()
    menu = page.page.get_by_role("menu", name=f"Actions for {nick}", exact=True)
    expect(menu).to_be_visible()
    return menu


def test_an_operator_ops_a_member_from_the_member_menu(
    server: WebServer, open_page: OpenPage, nc_users: Callable[[int, str], SocketClient]
) -> None:
    """The first in a new room operates it (marked @ on both pages); opping a member from the menu marks them on both pages, and the line door hears it."""
    olga = open_page(server.url)
    olga.log_in("olga")
    olga.join("opsroom")
    pavel = open_page(server.url)
    pavel.log_in("pavel")
    pavel.join("opsroom")
    watcher = nc_users(server.line, "watcher")
    watcher.send("/join opsroom\n")
    watcher.expect("watcher joined opsroom")
    for page in (olga, pavel):
        expect(page.member("pavel")).to_be_visible()
        expect(_row(page, "olga")).to_contain_text("operator")
        expect(_row(page, "olga")).to_contain_text("@")
        expect(_row(page, "pavel")).not_to_contain_text("operator")

    # pavel is not an operator: his menu for olga offers no operator's powers.
    menu = _member_menu(pavel, "olga")
    expect(menu.get_by_role("menuitem", name="Private message")).to_be_visible()
    expect(menu.get_by_role("menuitem", name="Make operator")).to_have_count(0)
    pavel.page.keyboard.press("Escape")
    expect(menu).to_be_hidden()

    menu = _member_menu(olga, "pavel")
    expect(menu.get_by_role("menuitem").first).to_be_focused()  # reachable by keyboard
    menu.get_by_role("menuitem", name="Make operator").click()
    for page in (olga, pavel):
        expect(_row(page, "pavel")).to_contain_text("operator")
        expect(_row(page, "pavel")).to_contain_text("@")
    olga.wait_for_line("made pavel an operator", nick="olga")
    pavel.wait_for_line("made you an operator", nick="olga")
    watcher.expect(lambda line: "olga" in line and "pavel" in line)  # the line door, in its own words
    # pavel's page now knows he operates the room: his menu offers the powers.
    menu = _member_menu(pavel, "olga")
    expect(menu.get_by_role("menuitem", name="Remove operator")).to_be_visible()
    pavel.page.keyboard.press("Escape")
    assert olga.problems() == [] and pavel.problems() == []


def test_an_operator_kicks_a_member_with_a_reason(
    server: WebServer, open_page: OpenPage, nc_users: Callable[[int, str], SocketClient]
) -> None:
    """Kick from the member menu asks a reason; the member leaves the list on the operator's page, and the kicked page loses the room and is told why."""
    kira = open_page(server.url)
    kira.log_in("kira")
    kira.join("kickroom")
    lars = open_page(server.url)
    lars.log_in("lars")
    lars.join("kickroom")
    witness = nc_users(server.line, "witness")
    witness.send("/join kickroom\n")
    witness.expect("witness joined kickroom")
    expect(kira.member("lars")).to_be_visible()

    menu = _member_menu(kira, "lars")
    menu.get_by_role("menuitem", name=re.compile(r"^Kick")).click()
    dialog = kira.page.get_by_role("dialog", name=re.compile(r"Kick lars"))
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason", exact=True).fill("spamming links")
    dialog.get_by_role("button", name="Kick", exact=True).click()
    expect(dialog).to_be_hidden()

    expect(kira.members.get_by_role("button", name=re.compile(r"^lars\b"))).to_have_count(0)
    kira.wait_for_line("kicked lars (spamming links)", nick="kira")
    witness.expect(lambda line: "kira" in line and "lars" in line and "spamming links" in line)
    expect(lars.room("kickroom")).to_have_count(0)
    expect(lars.room("lobby")).to_be_visible()
    lars.wait_for_line("kira kicked you from #kickroom (spamming links)")
    assert kira.problems() == [] and lars.problems() == []
