"""
Unit tests for the interactive client: L{InteractiveTerminal} under insults' ServerProtocol on a
StringTransport (keys typed in as raw bytes), its output fed to an in-memory terminal emulator
(insults' ClientProtocol driving a TerminalBuffer) to check what a person would see, and its
server side on a StringTransport. No real terminal, sockets or sleeps.
"""

from __future__ import annotations

import re

import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chat_twisted.client import ChatClient
from chat_twisted.client.interactive import CLIENT_HELP, HISTORY, SCROLLBACK
from chat_twisted.client.session import QUIT_GRACE_SECONDS
from tests.helpers import (
    BACKSPACE,
    CTRL_C,
    CTRL_D,
    CTRL_L,
    DELETE,
    DOWN,
    END,
    HOME,
    INSERT,
    LEFT,
    RIGHT,
    UP,
    Screen,
    ServerConnection,
    TerminalUnderTest,
    make_session,
    result_of,
)


# --- typing and sending ------------------------------------------------------------------------------


def test_prompt_shows_nickname() -> None:
    """The input line starts with a prompt naming the nickname, where the cursor was, and nothing else is drawn."""
    _, _, _, terminal = make_session()
    assert terminal.text() == ["alice>"]
    assert terminal.screen.cursor == (7, 0)


def test_prompt_without_nickname() -> None:
    """Before a nickname is known the prompt is a bare '> '."""
    _, _, _, terminal = make_session(nick=None)
    assert terminal.text() == [">"]


def test_typed_line_sent_on_enter_and_input_cleared() -> None:
    """Typed characters show on the input line; Enter sends the line CRLF-ended and empties the input."""
    _, _, server, terminal = make_session()
    terminal.type(b"hello")
    assert terminal.text() == ["alice> hello"]
    assert server.sent() == []
    terminal.type(b"\r")
    assert server.sent() == [b"hello"]
    assert terminal.text() == ["alice>"]
    assert terminal.line == b""


def test_empty_line_not_sent() -> None:
    """Enter on an empty (or blank) input line sends nothing."""
    _, _, server, terminal = make_session()
    terminal.type(b"\r   \r")
    assert server.sent() == []


def test_utf8_typed_characters_sent_as_utf8() -> None:
    """Multi-byte UTF-8 keystrokes become one character each and are sent UTF-8 encoded."""
    _, _, server, terminal = make_session()
    terminal.type("café ✓ 世界".encode("utf-8"))
    assert len(terminal.protocol.lineBuffer) == len("café ✓ 世界")
    terminal.type(LEFT + BACKSPACE + b"\r")
    assert server.sent() == ["café ✓ 界".encode("utf-8")]


def test_invalid_utf8_keystroke_becomes_replacement_character() -> None:
    """A byte that cannot start UTF-8 is typed as U+FFFD rather than breaking the line."""
    _, _, server, terminal = make_session()
    terminal.type(b"a\xffb\r")
    assert server.sent() == ["a\ufffdb".encode("utf-8")]


def test_control_characters_and_unknown_keys_ignored() -> None:
    """Control characters without a binding, function keys and Alt combinations type nothing."""
    _, _, _, terminal = make_session()
    terminal.type(b"a\x07\x1bOP\x1b[15~\x1bxb\x1b[Z\x1b[99q")
    assert terminal.line == b"ab"


# --- the core promise: messages arrive above, the typed line stays whole ----------------------------


def test_message_arrives_above_partial_line() -> None:
    """A message arriving while a line is half typed goes above it; the typed text and cursor stay put."""
    _, _, server, terminal = make_session()
    terminal.type(b"half a li")
    server.receive(b"[12:00:00] bob: hi alice\r\n")
    assert terminal.text() == ["[12:00:00] bob: hi alice", "alice> half a li"]
    assert terminal.screen.cursor == (16, 1)
    terminal.type(b"ne\r")
    assert server.sent() == [b"half a line"]


def test_many_messages_scroll_and_input_stays_at_bottom() -> None:
    """More messages than the screen has rows scroll away at the top; the input line stays on the last row."""
    _, _, server, terminal = make_session(height=5)
    terminal.type(b"typing")
    for number in range(8):
        server.receive(b"* line %d\r\n" % number)
    assert terminal.text() == ["* line 4", "* line 5", "* line 6", "* line 7", "alice> typing"]
    assert terminal.screen.cursor == (13, 4)


def test_cursor_in_middle_of_line_kept_when_message_arrives() -> None:
    """With the cursor moved back into the line, a message arriving leaves it at the same character."""
    _, _, server, terminal = make_session()
    terminal.type(b"abcdef" + LEFT + LEFT)
    server.receive(b"* news\r\n")
    assert terminal.text() == ["* news", "alice> abcdef"]
    assert terminal.screen.cursor == (11, 1)
    terminal.type(b"X")
    assert terminal.text()[-1] == "alice> abcdXef"


def test_long_input_wraps_and_survives_messages() -> None:
    """A typed line longer than the width wraps over rows, and stays whole when messages arrive."""
    _, _, server, terminal = make_session(width=20)
    terminal.type(b"0123456789abcdefghijklmnopqrstuvwxyz")
    assert terminal.text() == ["alice> 0123456789abc", "defghijklmnopqrstuvw", "xyz"]
    assert terminal.screen.cursor == (3, 2)
    server.receive(b"* one\r\n* two\r\n")
    assert terminal.text() == ["* one", "* two", "alice> 0123456789abc", "defghijklmnopqrstuvw", "xyz"]
    terminal.type(HOME)
    terminal.written()
    assert terminal.screen.cursor == (7, 2)
    server.receive(b"* three\r\n")
    assert terminal.text()[-4:] == ["* three", "alice> 0123456789abc", "defghijklmnopqrstuvw", "xyz"]
    assert terminal.screen.cursor == (7, 3)


def test_input_exactly_filling_rows_puts_cursor_on_next_row() -> None:
    """When the typed line ends exactly at the right edge, the cursor waits at the start of the next row."""
    _, _, server, terminal = make_session(width=20)
    terminal.type(b"x" * 13)
    assert terminal.text() == ["alice> " + "x" * 13]
    assert terminal.screen.cursor == (0, 1)
    server.receive(b"* hello\r\n")
    assert terminal.text() == ["* hello", "alice> " + "x" * 13]
    assert terminal.screen.cursor == (0, 2)


def test_input_taller_than_screen_shows_rows_around_cursor() -> None:
    """A typed line needing more rows than the screen has shows the rows around the cursor only."""
    _, _, server, terminal = make_session(width=10, height=4)
    terminal.type(b"abcdefghij" * 6)
    server.receive(b"* hi\r\n")
    rows = terminal.text()
    assert rows[-3:] == ["defghijabc", "defghijabc", "defghij"]
    assert len(rows) <= 4


def test_long_message_wraps_with_hanging_indent() -> None:
    """A message wider than the screen wraps between words, further rows indented past the time stamp."""
    _, _, server, terminal = make_session(width=30)
    server.receive(b"[12:00:00] bob: the quick brown fox jumps over the lazy dog\r\n")
    assert terminal.text() == [
        "[12:00:00] bob: the quick",
        "           brown fox jumps",
        "           over the lazy dog",
        "alice>",
    ]


def test_server_lines_before_terminal_shown_when_attached() -> None:
    """Lines that came before the interactive terminal was attached are shown above the prompt when it is."""
    client = ChatClient(Clock(), nick="alice")
    server = ServerConnection(client)
    server.receive(b"* Welcome to chat_twisted! Please choose a nickname:\r\n")
    terminal = TerminalUnderTest(client, width=60)
    assert terminal.text() == ["* Welcome to chat_twisted! Please choose a nickname:", "alice>"]


def test_prompt_follows_the_nickname_the_server_confirms() -> None:
    """Once the server welcomes or renames us, the prompt shows the new nickname."""
    _, _, server, terminal = make_session(nick=None, width=80)
    terminal.type(b"zoe\r")
    server.receive(b"* Welcome, zoe! 1 user online. You are in lobby; type /help for commands.\r\n")
    assert terminal.text()[-1] == "zoe>"
    server.receive(b"* zoe is now known as Zoe\r\n")
    assert terminal.text()[-1] == "Zoe>"


# --- editing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "line", "cursor"),
    [
        (b"abc" + LEFT + LEFT + b"X", b"aXbc", 2),
        (b"abc" + LEFT + LEFT + LEFT + LEFT + RIGHT, b"abc", 1),
        (b"abc" + RIGHT, b"abc", 3),
        (b"abc" + HOME + b"X", b"Xabc", 1),
        (b"abc" + b"\x01" + b"\x05" + b"X", b"abcX", 4),  # Ctrl-A, Ctrl-E
        (b"abc" + b"\x02\x02\x06", b"abc", 2),  # Ctrl-B, Ctrl-B, Ctrl-F
        (b"abc" + HOME + END + b"X", b"abcX", 4),
        (b"abc" + BACKSPACE, b"ab", 2),
        (b"abc" + b"\x08", b"ab", 2),  # Ctrl-H
        (BACKSPACE + b"abc" + HOME + BACKSPACE, b"abc", 0),
        (b"abc" + HOME + DELETE, b"bc", 0),
        (b"abc" + DELETE, b"abc", 3),
        (b"abc" + LEFT + CTRL_D, b"ab", 2),  # Ctrl-D on a non-empty line deletes
        (b"abcdef" + LEFT + LEFT + LEFT + b"\x0b", b"abc", 3),  # Ctrl-K
        (b"abcdef" + LEFT + LEFT + b"\x15", b"ef", 0),  # Ctrl-U
        (b"one two  three" + b"\x17", b"one two  ", 9),  # Ctrl-W
        (b"one two  " + b"\x17", b"one ", 4),
        (b"one two" + b"\x1b\x7f", b"one ", 4),  # Alt-Backspace
        (b"one two three" + b"\x1bb" + b"\x1bb" + b"X", b"one Xtwo three", 5),  # Alt-B
        (b"one two three" + HOME + b"\x1bf" + b"X", b"oneX two three", 4),  # Alt-F
        (b"one two" + HOME + b"\x1bf\x1bf\x1bf", b"one two", 7),
        (b"abc" + HOME + INSERT + b"XY", b"XYc", 2),  # Insert: type over
        (b"abc" + INSERT + INSERT + HOME + b"X", b"Xabc", 1),
        (b"ab\t", b"ab  ", 4),
    ],
)
def test_editing_keys(keys: bytes, line: bytes, cursor: int) -> None:
    """Each editing key changes the typed line and the cursor as a shell's line editor would."""
    _, _, _, terminal = make_session()
    terminal.type(keys)
    assert (terminal.line, terminal.protocol.lineBufferIndex) == (line, cursor)
    assert terminal.text()[-1] == ("alice> " + line.decode()).rstrip()
    assert terminal.screen.cursor == (7 + cursor, 0)


def test_ctrl_l_repaints() -> None:
    """Ctrl-L clears the screen and draws the recent messages and the input line again."""
    _, _, server, terminal = make_session()
    server.receive(b"* one\r\n")
    terminal.type(b"abc")
    terminal.written()
    terminal.screen.feed(b"\x1b[Hgarbage")
    terminal.type(CTRL_L)
    assert terminal.text() == ["* one", "alice> abc"]


# --- input history ---------------------------------------------------------------------------------------


def test_up_and_down_recall_earlier_lines() -> None:
    """Up recalls earlier lines, newest first; Down goes forward again and past the newest to an empty line."""
    _, _, server, terminal = make_session()
    terminal.type(b"first\rsecond\r")
    server.sent()
    terminal.type(UP)
    assert terminal.line == b"second"
    terminal.type(UP + UP)
    assert terminal.line == b"first"
    terminal.type(DOWN)
    assert terminal.line == b"second"
    terminal.type(DOWN)
    assert terminal.line == b""
    terminal.type(b"\x10\r")  # Ctrl-P, Enter
    assert server.sent() == [b"second"]
    assert terminal.text()[-1] == "alice>"


def test_up_keeps_the_line_being_typed() -> None:
    """A half-typed line is kept when Up is pressed, and Down brings it back."""
    _, _, _, terminal = make_session()
    terminal.type(b"old\rhalf")
    terminal.type(UP)
    assert terminal.line == b"old"
    terminal.type(b"\x0e")  # Ctrl-N
    assert terminal.line == b"half"


def test_repeated_line_kept_once_in_history() -> None:
    """The same line entered twice in a row is one history entry."""
    _, _, _, terminal = make_session()
    terminal.type(b"again\ragain\r")
    assert terminal.protocol.historyLines == [b"again"]


def test_history_is_bounded() -> None:
    """Only the last HISTORY lines are kept."""
    _, _, _, terminal = make_session()
    for number in range(HISTORY + 5):
        terminal.type(b"line %d\r" % number)
    assert len(terminal.protocol.historyLines) == HISTORY
    assert terminal.protocol.historyLines[0] == b"line 5"


# --- colours -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "colour"),
    [
        (b"[12:00:00] alice: mine", 2),  # green
        (b"[12:00:00] * alice waves", 2),
        (b"[12:00:00] bob: theirs", 7),  # the terminal's default
        (b"[12:00:00] * bob waves", 7),
        (b"[12:00:00] (private) bob: psst", 5),  # magenta
        (b"[12:00:00] (private to bob) alice: psst", 5),
        (b"[2026-11-22 04:06:16] (private, while you were away) bob: see you", 5),
        (b"* bob joined lobby", 6),  # cyan
        (b"error: unknown command /foo (try /help)", 1),  # red
        (b"[history 2026-11-22 04:04:29] bob: old", 4),  # blue
    ],
)
def test_lines_coloured_by_kind(line: bytes, colour: int) -> None:
    """Own, others', private, system, error and history lines each get their own colour."""
    _, _, server, terminal = make_session(width=80, colour=True)
    server.receive(line + b"\r\n")
    terminal.written()
    assert terminal.screen.text()[0] == line.decode()
    assert terminal.screen.foreground(0, 0) == colour


def test_client_notices_coloured_yellow() -> None:
    """The client's own notices are marked *** and yellow."""
    client, _, _, terminal = make_session(colour=True)
    client.notice("hello from the client")
    assert terminal.text()[0] == "*** hello from the client"
    assert terminal.screen.foreground(0, 0) == 3


def test_no_colour_writes_no_colour_sequences() -> None:
    """Without colour, lines are written with no SGR sequence at all."""
    _, _, server, terminal = make_session()
    server.receive(b"error: nope\r\n[12:00:00] alice: hi\r\n")
    assert re.search(rb"\x1b\[[0-9;]*m", terminal.written()) is None


def test_colour_reset_before_each_row_ends() -> None:
    """Each coloured row ends with a reset, so a colour never bleeds into the next row or the prompt."""
    _, _, server, terminal = make_session(width=20, colour=True)
    server.receive(b"error: a rather long error that wraps\r\n")
    data = terminal.written()
    assert data.count(b"\x1b[1;31m") == data.count(b"\x1b[0m\r\n") == 2
    assert terminal.screen.foreground(0, 2) == 7  # the prompt


# --- passwords ---------------------------------------------------------------------------------------------


def test_password_prompt_masks_input_and_keeps_it_out_of_history() -> None:
    """At the server's password prompt the typed password shows as stars, is sent as typed, and is not in history."""
    _, _, server, terminal = make_session(nick=None, width=80)
    server.receive(b"* alice is registered. Password (or /nick NAME for another nickname):\r\n")
    terminal.type(b"s3cret")
    assert terminal.text()[-1] == "password: ******"
    terminal.type(b"\r")
    assert server.sent() == [b"s3cret"]
    assert terminal.protocol.historyLines == []
    assert terminal.text()[-1] == ">"


@pytest.mark.parametrize(
    ("typed", "shown"),
    [
        (b"/login alice s3cret", "/login alice ******"),
        (b"/LOGIN alice s3cret", "/LOGIN alice ******"),
        (b"/register hunter2", "/register *******"),
        (b"/password old new", "/password *******"),
        (b"/login alice", "/login alice"),
        (b"/msg bob hi", "/msg bob hi"),
    ],
)
def test_password_commands_masked(typed: bytes, shown: str) -> None:
    """The passwords of /login, /register and /password show as stars while typed and stay out of history."""
    _, _, server, terminal = make_session(width=80)
    terminal.type(typed)
    assert terminal.text()[-1] == "alice> " + shown
    terminal.type(b"\r")
    assert server.sent() == [typed]
    assert terminal.protocol.historyLines == ([] if "*" in shown else [typed])


def test_up_does_not_keep_a_half_typed_password() -> None:
    """Pressing Up over a half-typed /login line does not put the password into the history."""
    _, _, _, terminal = make_session()
    terminal.type(b"/login alice pass" + UP)
    assert terminal.protocol.historyLines == []


# --- client commands --------------------------------------------------------------------------------------


def test_clear_clears_screen_and_is_not_sent() -> None:
    """/clear empties the screen (the prompt goes to the top) and is not sent to the server."""
    _, _, server, terminal = make_session()
    server.receive(b"* one\r\n* two\r\n")
    terminal.type(b"/clear\r")
    assert terminal.text() == ["alice>"]
    assert server.sent() == []
    assert terminal.protocol._messages == type(terminal.protocol._messages)()
    terminal.type(CTRL_L)
    assert terminal.text() == ["alice>"]


def test_help_shows_client_commands_and_asks_server() -> None:
    """/help lists the client's own commands and keys, then sends /help for the server's list."""
    _, _, server, terminal = make_session(width=200)
    terminal.type(b"/help\r")
    assert terminal.text()[:-1] == [f"*** {text}" for text in CLIENT_HELP]
    assert server.sent() == [b"/help"]


def test_quit_typed_sends_it_and_exits_0_when_server_closes() -> None:
    """/quit with a reason is sent as typed; the server's close then ends the client with status 0."""
    client, _, server, terminal = make_session()
    terminal.type(b"/quit lunch\r")
    assert server.sent() == [b"/quit lunch"]
    server.receive(b"* Goodbye! (lunch)\r\n")
    server.close()
    assert result_of(client.done) == 0


def test_quit_gives_up_waiting_after_grace_period() -> None:
    """If the server does not close after /quit, the client closes it itself after QUIT_GRACE_SECONDS, status 0."""
    client, clock, server, terminal = make_session()
    terminal.type(b"/quit\r")
    clock.advance(QUIT_GRACE_SECONDS)
    assert not server.transport.connected
    assert result_of(client.done) == 0


@pytest.mark.parametrize("key", [CTRL_C, CTRL_D])
def test_ctrl_c_and_ctrl_d_on_empty_line_leave(key: bytes) -> None:
    """Ctrl-C (any time) and Ctrl-D (on an empty line) send /quit and end with status 0."""
    client, _, server, terminal = make_session()
    terminal.type(key)
    assert server.sent() == [b"/quit"]
    terminal.type(CTRL_C)
    assert server.sent() == []
    server.close()
    assert result_of(client.done) == 0


# --- resizing and closing ---------------------------------------------------------------------------------


def test_resize_repaints_recent_messages_for_new_width() -> None:
    """A new window size repaints the screen: the latest messages, wrapped for the new width, then the input."""
    _, _, server, terminal = make_session(width=40, height=10)
    server.receive(b"* first\r\n[12:00:00] bob: one two three four five six\r\n")
    terminal.type(b"draft")
    terminal.written()
    terminal.protocol.terminalSize(24, 4)
    small = Screen(24, 4)
    small.feed(terminal.transport.value())
    assert small.text() == [
        "[12:00:00] bob: one two",
        "           three four",
        "           five six",
        "alice> draft",
    ]
    assert small.cursor == (12, 3)


def test_resize_to_tiny_window_does_not_fail() -> None:
    """Even a one-cell window repaints without error."""
    _, _, server, terminal = make_session()
    server.receive(b"* hello there\r\n")
    terminal.protocol.terminalSize(0, 0)
    assert (terminal.protocol.width, terminal.protocol.height) == (1, 1)


def test_scrollback_is_bounded() -> None:
    """Only the last SCROLLBACK messages are kept for repainting."""
    client, _, _, terminal = make_session()
    for number in range(SCROLLBACK + 3):
        client.notice(f"n{number}")
    assert len(terminal.protocol._messages) == SCROLLBACK


def test_close_erases_input_line_and_keeps_messages() -> None:
    """When the chat ends, the input line is erased, messages stay, the terminal is not reset, and done fires."""
    client, _, server, terminal = make_session()
    server.receive(b"* Goodbye! (quit)\r\n")
    terminal.type(b"/quit\r" + b"unsent")
    server.close()
    data = terminal.written()
    assert b"\x1bc" not in data
    assert terminal.screen.text() == ["* Goodbye! (quit)"]
    assert terminal.screen.cursor == (0, 1)
    assert not terminal.transport.connected
    assert result_of(client.done) == 0
    assert result_of(terminal.protocol.close()) is None


def test_terminal_gone_means_leaving() -> None:
    """If the terminal itself goes away (the window closed), the client says /quit and still finishes."""
    client, _, server, terminal = make_session()
    terminal.written()
    terminal.insults.connectionLost(Failure(ConnectionDone()))
    assert server.sent() == [b"/quit"]
    server.close()
    assert result_of(client.done) == 0
    terminal.protocol.show("late line")  # nothing written once the terminal is gone
    assert terminal.transport.value() == b""
