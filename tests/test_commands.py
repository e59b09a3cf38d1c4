"""Tests for chat_twisted.commands: classifying typed lines and splitting command arguments."""

from __future__ import annotations

import pytest

from chat_twisted.wire.slash import Command, Line, Message, parse_line


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello", Message("hello")),
        ("", Message("")),
        (" /who", Message(" /who")),
        ("//x", Message("/x")),
        ("//", Message("/")),
        ("///triple", Message("//triple")),
        ("/", Message("/")),
        ("/ x", Message("/ x")),
        ("/\tx", Message("/\tx")),
    ],
)
def test_parse_line_message(line: str, expected: Line) -> None:
    """Plain lines, '//text' (one slash removed), a lone '/' and '/ text' are messages."""
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/who", Command("who", "")),
        ("/who   ", Command("who", "")),
        ("/CMD args", Command("cmd", "args")),
        ("/Nick Alice", Command("nick", "Alice")),
        ("/msg   bob   hi  there  ", Command("msg", "bob   hi  there")),
        ("/topic /slash inside", Command("topic", "/slash inside")),
    ],
)
def test_parse_line_command(line: str, expected: Line) -> None:
    """'/name args' is a command with the name lower-cased and the args stripped but not otherwise changed."""
    assert parse_line(line) == expected


def test_parse_line_command_tab_separated() -> None:
    """A tab between the command name and its arguments separates them like a space."""
    assert parse_line("/me\twaves") == Command("me", "waves")
