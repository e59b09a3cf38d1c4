"""
Unit tests for the desktop window's logic without a display: L{WindowPresenter} between a real
L{ChatClient} (its server on a StringTransport, time on a L{Clock}) and a recording view, plus
the login fields and the remembered last login. No Tk, no sockets, no sleeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from chat_twisted.client import ChatClient
from chat_twisted.client.reconnect import Backoff, ConnectionStatus, Link
from chat_twisted.client.styles import Style
from chat_twisted.gui.login import Login, check, last_login_path, load_last, login_defaults, save_last
from chat_twisted.gui.model import ROOM_TAB, WINDOW_HELP, Shown, WindowPresenter
from tests.helpers import Dialler, ServerConnection, result_of

WHERE = "127.0.0.1:5000"


class RecordingView:
    """A L{WindowView} that records what it was told to show."""

    def __init__(self) -> None:
        self.lines: list[Shown] = []
        self.cleared: list[str] = []
        self.room: tuple[str | None, str | None] = (None, None)
        self.members: list[str] = []
        self.status = ""
        self.input = ""
        self.secret = False
        self.closed = False

    def add(self, shown: Shown) -> None:
        self.lines.append(shown)

    def clear(self, tab: str) -> None:
        self.cleared.append(tab)

    def set_room(self, room: str | None, topic: str | None) -> None:
        self.room = (room, topic)

    def set_members(self, members: Sequence[str]) -> None:
        self.members = list(members)

    def set_status(self, text: str) -> None:
        self.status = text

    def set_input(self, text: str) -> None:
        self.input = text

    def set_secret(self, secret: bool) -> None:
        self.secret = secret

    def close(self) -> None:
        self.closed = True

    def take(self) -> list[Shown]:
        """Return the lines shown since the last call."""
        lines, self.lines = self.lines, []
        return lines


class Window:
    """A presenter attached to a client whose server is connected (nickname sent and read)."""

    def __init__(self, nick: str | None = "alice", welcome: bool = True) -> None:
        self.clock = Clock()
        self.client = ChatClient(self.clock, nick=nick)
        self.view = RecordingView()
        self.presenter = WindowPresenter(self.client, self.view, self.clock)
        self.client.terminal_attached(self.presenter)
        self.server = ServerConnection(self.client)
        self.server.sent()
        if welcome:
            self.receive("* Welcome, alice! 2 users online. You are in lobby; type /help for commands.",
                         "* alice joined lobby")
            self.server.receive(b"* 2 users in lobby: alice, bob\r\n")
            self.server.sent()
            self.view.take()

    def receive(self, *lines: str) -> list[Shown]:
        """The server sends C{lines}; return what the window showed for them."""
        self.server.receive("".join(line + "\r\n" for line in lines).encode("utf-8"))
        return self.view.take()


# --- which tab and style each server line gets -----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "tab", "stamp", "style"),
    [
        ("[12:00:00] alice: mine", ROOM_TAB, "[12:00:00] ", Style.OWN),
        ("[12:00:00] * alice waves", ROOM_TAB, "[12:00:00] ", Style.OWN),
        ("[12:00:00] bob: theirs", ROOM_TAB, "[12:00:00] ", Style.OTHER),
        ("[12:00:00] (private) bob: psst", "bob", "[12:00:00] ", Style.PRIVATE),
        ("[12:00:00] (private to bob) alice: psst", "bob", "[12:00:00] ", Style.PRIVATE),
        ("[2026-11-22 04:06:16] (private, while you were away) bob: see you", "bob", "[2026-11-22 04:06:16] ",
         Style.PRIVATE),
        ("* bob is offline; your message will be delivered when they log in", "bob", "", Style.SYSTEM),
        ("* server time: 2026-11-22T03:48:51+00:00", ROOM_TAB, "", Style.SYSTEM),
        ("error: unknown command /foo (try /help)", ROOM_TAB, "", Style.ERROR),
        ("[history 2026-11-22 04:04:29] bob: old", ROOM_TAB, "", Style.HISTORY),
    ],
)
def test_each_server_line_gets_its_tab_and_style(line: str, tab: str, stamp: str, style: Style) -> None:
    """Room lines go to the room's tab, private ones to the peer's tab, each styled as in the terminal, the time apart."""
    window = Window()
    [shown] = window.receive(line)
    assert shown == Shown(tab, stamp, line[len(stamp):], style)
    assert window.presenter.tabs == ([] if tab == ROOM_TAB else ["bob"])


def test_private_tab_opened_once_whatever_the_case() -> None:
    """Private messages from and to one user share one tab, however the nickname's case is written."""
    window = Window()
    window.receive("[12:00:00] (private) bob: one", "[12:00:01] (private to Bob) alice: two")
    assert window.presenter.tabs == ["bob"]


def test_errors_and_notices_go_to_the_selected_tab() -> None:
    """An error, and the client's own notices, appear in the tab the user is in (where they typed)."""
    window = Window()
    window.receive("[12:00:00] (private) bob: hi")
    window.presenter.tab_selected("bob")
    assert [shown.tab for shown in window.receive("error: no user named 'bob' is online")] == ["bob"]
    window.client.notice("hello")
    assert window.view.take() == [Shown("bob", "", "*** hello", Style.CLIENT)]


# --- room, topic and members ---------------------------------------------------------------------------


def test_welcome_and_join_set_the_room_and_ask_who_quietly() -> None:
    """Entering a room names it at the top, asks the server /who, and shows the members from the hidden answer."""
    window = Window(welcome=False)
    shown = window.receive("* Welcome, alice! 2 users online. You are in lobby; type /help for commands.",
                           "* alice joined lobby")
    assert [line.text for line in shown][-1] == "* alice joined lobby"
    assert window.view.room == ("lobby", None)
    assert window.server.sent() == [b"/who"]
    assert window.receive("* 2 users in lobby: alice, bob") == []
    assert window.view.members == ["alice", "bob"]
    assert [line.text for line in window.receive("* 2 users in lobby: alice, bob")] == ["* 2 users in lobby: alice, bob"]


def test_members_follow_joins_leaves_and_nick_changes() -> None:
    """Joins add a member, leaves remove one, a nick change renames one; the list stays sorted without regard to case."""
    window = Window()
    window.receive("* Carol joined lobby")
    assert window.view.members == ["alice", "bob", "Carol"]
    window.receive("* bob left lobby (moved to dev)")
    assert window.view.members == ["alice", "Carol"]
    window.receive("* Carol is now known as aaron")
    assert window.view.members == ["aaron", "alice"]
    window.receive("* alice is now known as Zed")
    assert window.view.members == ["aaron", "Zed"]
    assert window.client.identity.nick == "Zed"


def test_joining_another_room_starts_its_member_list_afresh() -> None:
    """Moving to another room clears the old members and topic, names the new room, and asks /who there."""
    window = Window()
    window.receive("* topic of lobby: Weekly planning")
    assert window.view.room == ("lobby", "Weekly planning")
    window.receive("* alice joined dev")
    assert window.view.room == ("dev", None)
    assert window.view.members == ["alice"]
    assert window.server.sent() == [b"/who"]
    window.receive("* 2 users in dev: alice, dave", "* erin joined lobby")
    assert window.view.members == ["alice", "dave"]


def test_topic_lines_set_the_topic_of_the_room_only() -> None:
    """Setting, showing and lacking a topic change the top line for the room we are in, not for others."""
    window = Window()
    window.receive("* bob set the topic of lobby to: Release: 2.0")
    assert window.view.room == ("lobby", "Release: 2.0")
    window.receive("* topic of dev: elsewhere")
    assert window.view.room == ("lobby", "Release: 2.0")
    window.receive("* lobby has no topic")
    assert window.view.room == ("lobby", None)


def test_logout_forgets_room_and_members() -> None:
    """After /logout the window shows no room and no members."""
    window = Window()
    window.receive("* you are logged out")
    assert window.view.room == (None, None)
    assert window.view.members == []


# --- typing ------------------------------------------------------------------------------------------------


def test_enter_sends_the_line_and_clears_the_input() -> None:
    """A line entered in the room's tab is sent as typed and the input is cleared."""
    window = Window()
    window.view.input = "hello"
    window.presenter.entered("hello")
    assert window.server.sent() == [b"hello"]
    assert window.view.input == ""


@pytest.mark.parametrize(
    ("typed", "sent"),
    [("are you there?", b"/msg bob are you there?"), ("//slash", b"/msg bob /slash"), ("/who", b"/who")],
)
def test_typing_in_a_private_tab_goes_to_that_user(typed: str, sent: bytes) -> None:
    """In a private tab a line goes to that user with /msg (// for a leading slash), and commands stay commands."""
    window = Window()
    window.receive("[12:00:00] (private) bob: hi")
    window.presenter.tab_selected("bob")
    window.presenter.entered(typed)
    assert window.server.sent() == [sent]


def test_up_and_down_recall_lines_but_never_passwords() -> None:
    """Up and Down walk the lines sent, with the half-typed one kept; /login's password is never kept."""
    window = Window()
    for line in ("first", "/login alice s3cret", "second"):
        window.presenter.entered(line)
    window.presenter.up("half")
    assert window.view.input == "second"
    window.presenter.up("second")
    assert window.view.input == "first"
    window.presenter.up("first")
    assert window.view.input == "first"
    window.presenter.down()
    window.presenter.down()
    assert window.view.input == "half"
    window.presenter.down()
    assert window.view.input == ""


def test_password_prompt_masks_the_input() -> None:
    """At the server's password prompt the input is masked; the password is sent as typed, not /msg'd, and not kept."""
    window = Window(nick=None, welcome=False)
    window.receive("[12:00:00] (private) bob: hi")
    window.presenter.tab_selected("bob")
    window.receive("* alice is registered. Password (or /nick NAME for another nickname):")
    assert window.view.secret is True
    window.presenter.entered("s3cret")
    assert window.server.sent() == [b"s3cret"]
    assert window.view.secret is False
    assert window.presenter.history.lines == []


def test_clear_and_help_are_the_window_s() -> None:
    """/clear clears the selected tab without sending anything; /help shows the window's help, then asks the server."""
    window = Window()
    window.presenter.entered("/clear")
    assert window.view.cleared == [ROOM_TAB]
    window.presenter.entered("/help")
    assert [shown.text for shown in window.view.take()] == [f"*** {text}" for text in WINDOW_HELP]
    assert window.server.sent() == [b"/help"]


def test_join_field_joins_a_room() -> None:
    """The join field sends /join with the room typed; an empty field sends nothing."""
    window = Window()
    window.presenter.join("  dev ")
    window.presenter.join("  ")
    assert window.server.sent() == [b"/join dev"]


def test_line_entered_while_offline_stays_in_the_input() -> None:
    """Without a connection an entered line is not sent: the user is told and the line stays in the input."""
    window = Window()
    window.client.enable_reconnect(Dialler(), WHERE)
    window.server.close()
    window.view.take()
    window.presenter.entered("still here")
    assert window.view.input == "still here"
    assert "not connected" in window.view.take()[-1].text


# --- connection life ---------------------------------------------------------------------------------------


def test_status_line_counts_down_to_the_next_try() -> None:
    """While waiting to reconnect the status line counts the seconds down, once a second, and stops at the try."""
    window = Window()
    window.presenter.status(ConnectionStatus(Link.WAITING, WHERE, "connection refused", retry_at=3.0))
    assert window.view.status == f"lost {WHERE}: connection refused; retrying in 3 s"
    window.clock.advance(1)
    assert window.view.status.endswith("retrying in 2 s")
    window.clock.advance(1)
    assert window.view.status.endswith("retrying in 1 s")
    assert window.clock.getDelayedCalls() == []


def test_connection_life_in_the_status_line_and_members() -> None:
    """Losing the server empties the members and says so; the retry says connecting; the new connection logs in again."""
    window = Window()
    dialler = Dialler()
    window.client.enable_reconnect(dialler, WHERE, Backoff(random=lambda: 0.0), status=window.presenter.status)
    window.server.close()
    assert window.view.status == f"lost {WHERE}: the server closed the connection; retrying in 1 s"
    assert window.view.members == []
    window.clock.advance(1)
    assert window.view.status == f"connecting to {WHERE}..."
    server = ServerConnection(window.client)
    dialler.attempts[-1].callback(server.protocol)
    assert window.view.status == f"connected to {WHERE}"
    assert server.sent() == [b"alice"]
    assert window.view.take()[-1].text == f"*** reconnected to {WHERE}"


def test_first_connection_failure_retries() -> None:
    """A window that cannot reach the server at start says so and tries again, then says when it is connected."""
    clock = Clock()
    client = ChatClient(clock, nick="alice")
    view = RecordingView()
    presenter = WindowPresenter(client, view, clock)
    client.terminal_attached(presenter)
    dialler = Dialler()
    client.enable_reconnect(dialler, WHERE, Backoff(random=lambda: 0.0), status=presenter.status).start()
    assert view.status == f"connecting to {WHERE}..."
    dialler.refuse()
    assert view.take()[-1].text == f"*** cannot connect to {WHERE}: connection refused; trying again in 1.0 s"
    clock.advance(1)
    server = ServerConnection(client)
    dialler.attempts[-1].callback(server.protocol)
    assert view.take()[-1].text == f"*** connected to {WHERE}"
    assert server.sent() == [b"alice"]


def test_closing_the_window_leaves_with_quit() -> None:
    """Closing the window sends /quit; once the server closes, the window is closed and the exit status is 0."""
    window = Window()
    window.presenter.close_requested()
    assert window.server.sent() == [b"/quit"]
    window.server.close()
    assert window.view.closed
    assert result_of(window.client.done) == 0


def test_password_from_the_dialog_logs_in_with_login() -> None:
    """A password given with the nickname is sent as /login on connecting, and kept for logging in again."""
    client = ChatClient(Clock(), nick="alice", password="s3cret")
    server = ServerConnection(client)
    assert server.sent() == [b"/login alice s3cret"]
    server.receive(b"* Welcome, alice! 1 user online. You are in lobby; type /help for commands.\r\n")
    assert client.identity.greeting() == "/login alice s3cret"


def test_refused_dialog_password_is_not_tried_again() -> None:
    """A password the server refuses is forgotten: the next connection sends the bare nickname."""
    client = ChatClient(Clock(), nick="alice", password="wrong")
    server = ServerConnection(client)
    server.receive(b"error: wrong password for alice\r\n")
    assert client.identity.greeting() == "alice"


# --- the login dialog's fields and the last login -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "result"),
    [
        ((" chat.example ", "5001", " alice ", ""), Login("chat.example", 5001, "alice", None)),
        (("h", "5000", "alice", " pw "), Login("h", 5000, "alice", "pw")),
        (("", "5000", "alice", ""), "the server's name or address is missing"),
        (("h", "x", "alice", ""), "the port must be a number, not 'x'"),
        (("h", "70000", "alice", ""), "the port must be between 1 and 65535"),
        (("h", "5000", "a b", ""), "the nickname must be one word"),
    ],
)
def test_login_fields_checked(fields: tuple[str, str, str, str], result: Login | str) -> None:
    """The dialog's fields give a Login, or one line saying what is wrong."""
    assert check(*fields) == result


def test_last_login_kept_without_password(tmp_path: Path) -> None:
    """The last server, port and nickname are kept under XDG_CONFIG_HOME; the password never is."""
    path = last_login_path({"XDG_CONFIG_HOME": str(tmp_path)})
    assert path == tmp_path / "chat_twisted" / "gui-last.ini"
    assert load_last(path) is None
    save_last(path, Login("chat.example", 5001, "alice", "s3cret"))
    assert "s3cret" not in path.read_text()
    assert load_last(path) == Login("chat.example", 5001, "alice")


def test_unreadable_last_login_ignored(tmp_path: Path) -> None:
    """A damaged last-login file is ignored rather than stopping the window."""
    path = tmp_path / "gui-last.ini"
    path.write_text("[last]\nhost = h\nport = many\n")
    assert load_last(path) is None


def test_dialog_defaults() -> None:
    """The dialog starts from the last login unless the options name another server than the default."""
    last = Login("chat.example", 5001, "alice")
    assert login_defaults("127.0.0.1", 5000, last) == last
    assert login_defaults("other.example", 5000, last) == Login("other.example", 5000, "alice")
    assert login_defaults("127.0.0.1", 5000, None) == Login("127.0.0.1", 5000, "")
