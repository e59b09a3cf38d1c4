"""
The browser harness: Playwright for Python driving Debian's Chromium (C{/usr/bin/chromium},
through C{executable_path}: nothing is downloaded), against the real server's web page.

L{ChatPage} is one user's page, found only by role and accessible name (the names the page
promises: "Nickname", "Password", "Message", the C{log}, the "Rooms" navigation, "Members",
the "Log in", "Send", ... buttons). Every selector lives here, so that a change in the page's
structure changes this file only. Each page records its console errors (a Content Security
Policy violation is one), uncaught exceptions and dialogs (dismissed), for tests to assert none
happened. L{WebServer} is a L{ServerProcess} with its web door. Every wait is bounded by
L{WAIT}; none sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e import PLAIN_PORT, WAIT, WEB_PORT, ServerProcess, free_port, web_port

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # pragma: no cover - the tests are skipped then
    sync_playwright = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Locator, Page

#: Debian's Chromium (apt-get install chromium); Playwright launches it instead of a browser of its own.
CHROMIUM = Path("/usr/bin/chromium")

#: Playwright's timeouts, in milliseconds: the end-to-end tests' bound on any single wait.
TIMEOUT_MS = WAIT * 1000


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if sync_playwright is None:
        return "the playwright module is not installed (pip install '.[test]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


#: Skips a test, saying why, where Playwright or Debian's Chromium is missing.
needs_browser = pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or "")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for a test module (each user gets a fresh context of it)."""
    reason = browser_missing()
    if reason is not None:
        pytest.skip(reason)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, timeout=TIMEOUT_MS)
        try:
            yield chromium
        finally:
            chromium.close()


class WebServer:
    """
    A L{ServerProcess} with its web door on 127.0.0.1: C{line} is the line port, C{web} the
    web port, C{url} the page. Given fixed ports (L{on_fixed_ports}), it can be stopped and
    started again at the same addresses, on the same database.
    """

    def __init__(
        self, workdir: Path, extra_args: Sequence[str] = (), line: str = PLAIN_PORT, web: str = WEB_PORT
    ) -> None:
        self.args = ["--web", web, *extra_args]
        self.process = ServerProcess(workdir, self.args, port=line)
        self.line = self.process.port
        self.web = web_port(self.process)

    @classmethod
    def on_fixed_ports(cls, workdir: Path, extra_args: Sequence[str] = ()) -> WebServer:
        """A server on two free ports chosen now, so that it can come back at the same addresses."""
        return cls(workdir, extra_args, line=f"tcp:{free_port()}:interface=127.0.0.1",
                   web=f"tcp:{free_port()}:interface=127.0.0.1")

    @property
    def url(self) -> str:
        """The page's address."""
        return f"http://127.0.0.1:{self.web}/"

    @property
    def origin(self) -> str:
        """The origin of the server's own pages."""
        return f"http://127.0.0.1:{self.web}"

    def log_text(self) -> str:
        """What the running server process has logged so far."""
        return self.process.log_text()

    def stop(self) -> int:
        """Stop the server (SIGTERM, bounded wait) and return its exit status."""
        return self.process.stop()

    def start_again(self) -> None:
        """Start a new server process on the same ports and database (stop this one first)."""
        line, web = self.line, self.web
        self.process = self.process.restart(self.args)
        self.line = self.process.port
        self.web = web_port(self.process)
        assert (self.line, self.web) == (line, web), "start_again needs fixed ports (WebServer.on_fixed_ports)"


# --- the page -------------------------------------------------------------------------------

#: Words a page uses to say that it lost its connection (in a status or alert region).
DISCONNECTED = re.compile(r"disconnected|reconnecting|connection (was )?lost|not connected|offline", re.IGNORECASE)

#: The elements of the log that are its lines: list items, articles or rows; failing those, its children.
_LINE_SELECTOR = "li, [role=listitem], article, [role=article], [role=row]"

_LINES_JS = """
(log) => {
    let rows = log.querySelectorAll(%r);
    if (rows.length === 0) rows = log.children;
    return Array.from(rows, row => row.innerText.replace(/\\s+/g, " ").trim()).filter(text => text);
}
""" % _LINE_SELECTOR

# Whether the visible log has a line holding every one of the texts (the log is looked up each
# time: a page may replace it when another conversation is shown).
_HAS_LINE_JS = """
(texts) => {
    const log = Array.from(document.querySelectorAll("[role=log]")).find(el => el.checkVisibility());
    if (!log) return false;
    let rows = log.querySelectorAll(%r);
    if (rows.length === 0) rows = log.children;
    return Array.from(rows).some(row => {
        const text = row.innerText.replace(/\\s+/g, " ");
        return texts.every(wanted => text.includes(wanted));
    });
}
""" % _LINE_SELECTOR

# Scroll the log (or the nearest ancestor that scrolls it) to its top, as a reader would; in the
# same turn (so that nothing the page does can come between), the text of the lines now in view.
_SCROLL_TOP_JS = """
(log) => {
    let box = log;
    while (box && box.scrollHeight <= box.clientHeight + 1) box = box.parentElement;
    box = box || document.scrollingElement;
    box.scrollTop = 0;
    box.dispatchEvent(new Event("scroll"));
    const view = box.getBoundingClientRect();
    let rows = log.querySelectorAll(%r);
    if (rows.length === 0) rows = log.children;
    const shown = Array.from(rows).filter(row => {
        const edges = row.getBoundingClientRect();
        return edges.bottom > Math.max(view.top, 0) && edges.top < Math.min(view.bottom, innerHeight);
    });
    return {
        scrolls: box.scrollHeight > box.clientHeight,
        shown: shown.map(row => row.innerText.replace(/\\s+/g, " ").trim()).filter(text => text),
    };
}
""" % _LINE_SELECTOR

#: The roles an entry (a room, a conversation, a member) may have in a list the reader clicks.
_ENTRY_ROLES = ("link", "button", "tab", "option", "treeitem", "menuitem")


def _entry(container: Page | Locator, name: str) -> Locator:
    """The clickable entry in C{container} whose accessible name starts with C{name} (a room's may start with #)."""
    pattern = re.compile(rf"^\W*{re.escape(name)}(?![\w-])", re.IGNORECASE)
    found: Locator = container.get_by_role(_ENTRY_ROLES[0], name=pattern)  # type: ignore[arg-type]
    for role in _ENTRY_ROLES[1:]:
        found = found.or_(container.get_by_role(role, name=pattern))  # type: ignore[arg-type]
    return found.first


class ChatPage:
    """
    One user's chat page in a browser context of its own. It owns the lists of what went wrong
    in the page (C{console_errors}, C{page_errors}, C{dialogs}); every action waits, bounded, for
    its effect.
    """

    def __init__(self, context: BrowserContext, url: str) -> None:
        self.context = context
        self.url = url
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        self.page: Page = context.new_page()
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    # --- the page's parts, by role and name ----------------------------------------------------

    @property
    def nickname_field(self) -> Locator:
        """The "Nickname" field of the login form."""
        return self.page.get_by_label("Nickname", exact=True)

    @property
    def password_field(self) -> Locator:
        """The "Password" field."""
        return self.page.get_by_label("Password", exact=True)

    @property
    def message_field(self) -> Locator:
        """The "Message" field where the user writes."""
        return self.page.get_by_label("Message", exact=True)

    @property
    def log(self) -> Locator:
        """The visible message list (ARIA role C{log}) of the conversation shown."""
        return self.page.get_by_role("log")

    @property
    def rooms(self) -> Locator:
        """The navigation landmark "Rooms"."""
        return self.page.get_by_role("navigation", name="Rooms", exact=True)

    @property
    def members(self) -> Locator:
        """The member list, labelled "Members"."""
        return self.page.get_by_label("Members", exact=True)

    @property
    def room_field(self) -> Locator:
        """The field naming a room to join (beside "Join"): a text box whose name says "room"."""
        return self.page.get_by_role("textbox", name=re.compile(r"\broom\b", re.IGNORECASE))

    def button(self, name: str) -> Locator:
        """The button named C{name} ("Log in", "Register", "Join", "Leave room", "Send")."""
        return self.page.get_by_role("button", name=name, exact=True)

    def room(self, name: str) -> Locator:
        """The entry of room C{name} in "Rooms"."""
        return _entry(self.rooms, name)

    def conversation(self, nick: str) -> Locator:
        """The entry of the private conversation with C{nick}: in "Rooms" or in a navigation beside it."""
        return _entry(self.page.get_by_role("navigation"), nick)

    def member(self, nick: str) -> Locator:
        """C{nick}'s entry in "Members"."""
        return _entry(self.members, nick).or_(self.members.get_by_text(nick, exact=True)).first

    def member_row(self, nick: str) -> Locator:
        """The item of "Members" that holds C{nick}'s entry, with what is shown beside it (away, you)."""
        return self.members.get_by_role("listitem").filter(has=_entry(self.page, nick))

    @property
    def connection_problem(self) -> Locator:
        """A status or alert region saying that the page lost its connection."""
        regions = self.page.get_by_role("status").or_(self.page.get_by_role("alert"))
        return regions.filter(has_text=DISCONNECTED)

    # --- actions -------------------------------------------------------------------------------

    def open(self) -> ChatPage:
        """Load the page."""
        self.page.goto(self.url)
        return self

    def log_in(self, nick: str, password: str | None = None, room: str = "lobby") -> None:
        """Log in as C{nick} (with C{password} if given); wait until C{room} is listed and the message field is usable."""
        expect(self.nickname_field).to_be_editable()
        self.nickname_field.fill(nick)
        if password is not None:
            self.password_field.fill(password)
        self.button("Log in").click()
        expect(self.room(room)).to_be_visible()
        expect(self.message_field).to_be_editable()

    def send(self, text: str) -> None:
        """Write C{text} in "Message" and press "Send"; wait until the field is empty again."""
        self.message_field.fill(text)
        self.button("Send").click()
        expect(self.message_field).to_have_value("")

    def join(self, room: str) -> None:
        """Join (or create) C{room} with the field beside "Join"; wait for its entry in "Rooms"."""
        self.room_field.fill(room)
        self.button("Join").click()
        expect(self.room(room)).to_be_visible()

    def open_room(self, name: str) -> None:
        """Show room C{name} (click its entry in "Rooms")."""
        self.room(name).click()

    def open_private(self, nick: str) -> None:
        """Open the private conversation with C{nick} by clicking C{nick} in "Members"; wait for its entry."""
        self.member(nick).click()
        expect(self.conversation(nick)).to_be_visible()
        expect(self.message_field).to_be_editable()

    def lines(self) -> list[str]:
        """The text of each line in the visible log, whitespace squeezed."""
        return list(self.log.evaluate(_LINES_JS))

    def line(self, text: str) -> Locator:
        """The line of the visible log that holds C{text}."""
        rows = self.log.locator(_LINE_SELECTOR).or_(self.log.locator(":scope > *"))
        return rows.filter(has_text=text).last

    def wait_for_line(self, text: str, nick: str | None = None) -> None:
        """Wait until the visible log has a line holding C{text} (and C{nick}, if given)."""
        wanted = [text] if nick is None else [nick, text]
        try:
            self.page.wait_for_function(_HAS_LINE_JS, arg=wanted, polling=50)
        except PlaywrightTimeout:
            try:
                lines: object = self.lines()[-20:]
            except PlaywrightError as error:
                lines = f"(no log: {error.message.splitlines()[0]})"
            raise AssertionError(f"no line with {wanted!r} in the log; its last lines: {lines!r}") from None

    def scroll_history_to_top(self) -> list[str]:
        """
        Scroll the log to its top, as a reader looking for older messages; where it does not
        scroll at all (its lines fit), turn the mouse wheel up over it instead. Return the text
        of the lines in view just after scrolling (read in the same turn of the page's event loop).
        """
        result = self.log.evaluate(_SCROLL_TOP_JS)
        if not result["scrolls"]:
            self.log.hover()
            self.page.mouse.wheel(0, -2000)
        return list(result["shown"])

    def wait_until_disconnected(self) -> None:
        """Wait until the page says that it lost its connection."""
        expect(self.connection_problem.first).to_be_visible()

    def wait_until_reconnected(self, timeout: float = 3 * WAIT) -> None:
        """
        Wait (up to C{timeout} seconds: a page backs off between attempts, 1, 2, 4, 8 s ...)
        until the page no longer says it lost its connection and the message field is usable.
        """
        expect(self.connection_problem).to_have_count(0, timeout=timeout * 1000)
        expect(self.message_field).to_be_editable()

    def problems(self, allow: re.Pattern[str] | None = None) -> list[str]:
        """What went wrong in the page: console errors (but those C{allow} matches), page errors and dialogs."""
        console = [text for text in self.console_errors if allow is None or not allow.search(text)]
        return [f"console error: {text}" for text in console] + \
               [f"page error: {text}" for text in self.page_errors] + \
               [f"dialog: {text}" for text in self.dialogs]

    def close(self) -> None:
        """Close the page's browser context."""
        self.context.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., ChatPage]]:
    """
    Opens a L{ChatPage} at a URL in a fresh browser context (1200x800, light by default; other
    C{new_context} arguments pass through; C{load=False} leaves it blank); all are closed after
    the test.
    """
    pages: list[ChatPage] = []

    def open_one(url: str, load: bool = True, **context_args: Any) -> ChatPage:
        context_args.setdefault("viewport", {"width": 1200, "height": 800})
        context_args.setdefault("color_scheme", "light")
        chat = ChatPage(browser.new_context(**context_args), url)
        pages.append(chat)
        return chat.open() if load else chat

    try:
        yield open_one
    finally:
        for chat in pages:
            chat.close()
