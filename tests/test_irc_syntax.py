"""
Tests for the IRC message syntax (chat_twisted.wire.irc_syntax): parsing a client's line,
building the server's lines and tags, and splitting long texts to fit 512-byte lines.

Pure functions: no core, no transport, no clock.
"""

from __future__ import annotations

import pytest

from chat_twisted.wire.irc_syntax import (
    MAX_LINE,
    IrcMessage,
    line,
    parse_message,
    server_time,
    split_text,
    tag_section,
)
from tests.helpers import START

# --- parse_message ---------------------------------------------------------------------------


def test_command_and_middle_parameters() -> None:
    """A command is upper-cased and its space-separated parameters are kept in order."""
    assert parse_message("user alice 0 * :Alice Liddell") == IrcMessage("USER", ("alice", "0", "*", "Alice Liddell"))


def test_trailing_parameter_keeps_spaces_and_colons() -> None:
    """Everything after the first C{ :} is one parameter, spaces and colons included."""
    assert parse_message("PRIVMSG #lobby :hello :there  you") == IrcMessage("PRIVMSG", ("#lobby", "hello :there  you"))


def test_empty_trailing_parameter_is_kept() -> None:
    """A bare C{:} at the end is an empty last parameter, not a missing one."""
    assert parse_message("TOPIC #lobby :") == IrcMessage("TOPIC", ("#lobby", ""))


def test_colon_inside_a_middle_parameter_is_not_trailing() -> None:
    """A colon that does not start a parameter is part of that parameter."""
    assert parse_message("CMD a:b c") == IrcMessage("CMD", ("a:b", "c"))


def test_runs_of_spaces_between_parameters_are_one_separator() -> None:
    """Extra spaces before the command and between middle parameters are ignored."""
    assert parse_message("   JOIN    #a   #b") == IrcMessage("JOIN", ("#a", "#b"))


def test_a_client_prefix_is_ignored() -> None:
    """A prefix sent by a client is dropped: the server knows who sent the line."""
    assert parse_message(":mallory!m@evil PRIVMSG bob :hi") == IrcMessage("PRIVMSG", ("bob", "hi"))


@pytest.mark.parametrize("text", ["", "   ", ":prefix-only", "@tag=1", "@tag=1 :prefix"])
def test_a_line_without_a_command_is_none(text: str) -> None:
    """Empty lines, and lines that are only tags or a prefix, carry no message."""
    assert parse_message(text) is None


def test_tags_are_parsed_and_unescaped() -> None:
    """Tag values are unescaped (C{\\:} C{\\s} C{\\\\} C{\\r} C{\\n}); a tag without a value is empty."""
    message = parse_message(r"@a=x\:y\sz\\w\r\n;flag;+draft/reply=42 PRIVMSG #lobby :hi")
    assert message == IrcMessage(
        "PRIVMSG", ("#lobby", "hi"), {"a": "x;y z\\w\r\n", "flag": "", "+draft/reply": "42"}
    )


def test_unknown_tag_escape_keeps_the_character_and_a_lone_backslash_vanishes() -> None:
    """An unknown escape stands for the character itself; a backslash at the very end is dropped."""
    assert parse_message(r"@a=\b;c=d\ PING x") == IrcMessage("PING", ("x",), {"a": "b", "c": "d"})


def test_tags_then_prefix_then_command() -> None:
    """A line may carry tags and a prefix before its command."""
    assert parse_message("@t=1 :nick!u@h notice bob :psst") == IrcMessage("NOTICE", ("bob", "psst"), {"t": "1"})


# --- building lines --------------------------------------------------------------------------


def test_line_with_prefix_params_and_trailing() -> None:
    """C{line} joins prefix, command, parameters and the trailing parameter."""
    assert line("chat.twisted", "001", "alice", trailing="Welcome") == ":chat.twisted 001 alice :Welcome"


def test_line_without_prefix_or_trailing() -> None:
    """No prefix means no leading colon; no trailing means no C{ :}."""
    assert line("", "AUTHENTICATE", "+") == "AUTHENTICATE +"


def test_line_with_empty_trailing() -> None:
    """An empty trailing parameter is still written (as a bare colon)."""
    assert line("a", "TOPIC", "#x", trailing="") == ":a TOPIC #x :"


def test_tag_section_escapes_values() -> None:
    """Tag values are escaped; a tag with an empty value is written as its key alone."""
    assert tag_section({"a": "x y;z\\", "b": "", "c": "\r\n"}) == "@a=x\\sy\\:z\\\\;b;c=\\r\\n "


def test_no_tags_no_section() -> None:
    """Without tags a line starts straight with its prefix."""
    assert tag_section({}) == ""


def test_tag_section_round_trips_through_the_parser() -> None:
    """What the server writes as tags, a parser reads back unchanged."""
    tags = {"time": "2026-01-02T03:04:05.000Z", "odd": "a b;c\\d"}
    assert parse_message(tag_section(tags) + "PING x") == IrcMessage("PING", ("x",), tags)


def test_server_time_is_utc_with_milliseconds() -> None:
    """The C{time} tag is ISO 8601 in UTC with exactly three decimals and a Z."""
    assert server_time(START) == "2026-01-02T03:04:05.000Z"
    assert server_time(START + 0.1239) == "2026-01-02T03:04:05.123Z"


# --- split_text ------------------------------------------------------------------------------


def test_short_text_is_one_piece() -> None:
    """Text that fits is returned as it is."""
    assert split_text("hello", 100) == ["hello"]


def test_text_is_cut_at_spaces() -> None:
    """Long text is cut after a space when one falls in the second half of the piece."""
    assert split_text("ab cd " * 5, 16) == ["ab cd ab cd ab ", "cd ab cd ab cd "]


def test_text_without_spaces_is_cut_at_the_limit() -> None:
    """A word longer than the room is cut at exactly the room."""
    assert split_text("x" * 40, 16) == ["x" * 16, "x" * 16, "x" * 8]


def test_multibyte_characters_are_never_split() -> None:
    """Pieces are measured in UTF-8 bytes and never end inside a character."""
    pieces = split_text("é" * 20, 17)
    assert pieces == ["é" * 8, "é" * 8, "é" * 4]
    assert all(len(piece.encode("utf-8")) <= 17 for piece in pieces)


def test_pieces_join_back_to_the_text() -> None:
    """Nothing is lost or added: the pieces joined are the original text."""
    text = "naïve café 🙂 " * 200
    pieces = split_text(text, 100)
    assert "".join(pieces) == text
    assert all(len(piece.encode("utf-8")) <= 100 for piece in pieces)


def test_room_has_a_floor() -> None:
    """A tiny room is raised to 16 bytes, so splitting always makes progress."""
    assert split_text("y" * 20, 1) == ["y" * 16, "y" * 4]


def test_max_line_is_512() -> None:
    """An IRC line, CRLF included and tags excluded, is at most 512 bytes."""
    assert MAX_LINE == 512
