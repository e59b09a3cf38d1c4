"""Unit tests for the interactive client's pure helpers: cell widths, wrapping, input layout and line kinds."""

from __future__ import annotations

import pytest

from chat_twisted.client.layout import InputLayout, cell_width, hanging_indent, layout_input, text_width, wrap
from chat_twisted.client.styles import Style, classify, coloured


@pytest.mark.parametrize(
    ("char", "width"),
    [("a", 1), ("é", 1), ("\u0301", 0), ("\u200b", 0), ("世", 2), ("\uff21", 2), ("\U0001f600", 2)],
)
def test_cell_width(char: str, width: int) -> None:
    """Combining and format characters take no cell, wide and fullwidth ones two, the rest one."""
    assert cell_width(char) == width


def test_text_width() -> None:
    """A text's width is the sum of its characters' widths."""
    assert text_width("ab世e\u0301") == 5


@pytest.mark.parametrize(
    ("text", "width", "indent"),
    [("[12:00:00] bob: hi", 80, 11), ("[12:00:00] bob: hi", 20, 0), ("* bob joined", 80, 2),
     ("*** lost", 80, 4), ("error: x", 80, 0), ("plain", 80, 0)],
)
def test_hanging_indent(text: str, width: int, indent: int) -> None:
    """Wrapped rows line up past the time stamp or the stars, unless that would take more than half the row."""
    assert hanging_indent(text, width) == indent


def test_wrap_short_line_is_one_row() -> None:
    """A line that fits is one row, as it is; an empty line is one empty row."""
    assert wrap("[12:00:00] bob: hi", 40) == ["[12:00:00] bob: hi"]
    assert wrap("", 40) == [""]


def test_wrap_breaks_between_words() -> None:
    """Rows break between words, never past the width, trailing spaces dropped."""
    rows = wrap("* one two three four five six", 12)
    assert rows == ["* one two", "  three four", "  five six"]
    assert all(text_width(row) <= 12 for row in rows)


def test_wrap_breaks_long_word() -> None:
    """A word wider than a row is broken where the row is full."""
    assert wrap("ab " + "x" * 25, 10) == ["ab xxxxxxx", "xxxxxxxxxx", "xxxxxxxx"]


def test_wrap_wide_characters_by_cells() -> None:
    """Wide characters count two cells, so fewer fit on a row, and none is split across rows."""
    rows = wrap("世界世界世界", 5)
    assert rows == ["世界", "世界", "世界"]


def test_wrap_expands_tabs_and_long_spaces() -> None:
    """Tabs become spaces; a run of spaces too long for the row ends it."""
    assert wrap("a\tb", 40) == ["a       b"]
    assert wrap("a" + " " * 20 + "b", 10) == ["a", "b"]


def test_wrap_tiny_width() -> None:
    """Even a width of 0 or 1 gives rows, one character each."""
    assert wrap("abc", 0) == ["a", "b", "c"]


def test_layout_input_single_row() -> None:
    """A short line is one row; the cursor goes after the prompt and the characters before it."""
    assert layout_input("> ", "hello", 2, 40, 10) == InputLayout(("> hello",), 0, 4)


def test_layout_input_wraps_and_places_cursor() -> None:
    """A long line is split into rows of the width; the cursor is found on its row."""
    layout = layout_input("> ", "abcdefghijkl", 10, 6, 10)
    assert layout.rows == ("> abcd", "efghij", "kl")
    assert (layout.cursor_row, layout.cursor_column) == (2, 0)


def test_layout_input_cursor_on_wrapped_wide_character() -> None:
    """A wide character that does not fit moves to the next row, and a cursor before it moves with it."""
    layout = layout_input("> ", "ab世", 2, 5, 10)
    assert layout.rows == ("> ab", "世")
    assert (layout.cursor_row, layout.cursor_column) == (1, 0)


def test_layout_input_full_row_gets_empty_row_for_cursor() -> None:
    """When the text ends exactly at the edge, an empty row follows for the cursor."""
    layout = layout_input("> ", "abcd", 4, 6, 10)
    assert layout.rows == ("> abcd", "")
    assert (layout.cursor_row, layout.cursor_column) == (1, 0)


def test_layout_input_window_follows_cursor() -> None:
    """With more rows than allowed, only the rows around the cursor are kept."""
    text = "".join(str(digit) * 4 for digit in range(8))  # "> " and 32 characters: 9 rows of at most 4
    at_end = layout_input("> ", text, len(text), 4, 3)
    assert at_end == InputLayout(("5566", "6677", "77"), 2, 2)
    at_start = layout_input("> ", text, 0, 4, 3)
    assert at_start.rows == ("> 00", "0011", "1122")
    assert (at_start.cursor_row, at_start.cursor_column) == (0, 2)
    middle = layout_input("> ", text, 16, 4, 3)
    assert middle == InputLayout(("1122", "2233", "3344"), 2, 2)


@pytest.mark.parametrize(
    ("line", "style"),
    [
        ("[12:00:00] alice: hi", Style.OWN),
        ("[12:00:00] ALICE: hi", Style.OWN),
        ("[12:00:00] * alice waves", Style.OWN),
        ("[12:00:00] bob: alice: hi", Style.OTHER),
        ("[12:00:00] * bob waves", Style.OTHER),
        ("[12:00:00] (private) bob: hi", Style.PRIVATE),
        ("[12:00:00] (private to bob) alice: hi", Style.PRIVATE),
        ("[history 2026-11-22 04:04:29] alice: hi", Style.HISTORY),
        ("* alice joined lobby", Style.SYSTEM),
        ("error: nope", Style.ERROR),
        ("something else", Style.OTHER),
    ],
)
def test_classify(line: str, style: Style) -> None:
    """Each kind of server line is told apart; own lines by our nickname, in any case."""
    assert classify(line, "alice") is style


def test_classify_without_nickname() -> None:
    """Before we have a nickname nothing is our own."""
    assert classify("[12:00:00] alice: hi", None) is Style.OTHER


def test_coloured() -> None:
    """Colour wraps the text in its SGR sequence and a reset; without colour, or for others' lines, it is unchanged."""
    assert coloured("x", Style.ERROR, True) == "\x1b[1;31mx\x1b[0m"
    assert coloured("x", Style.ERROR, False) == "x"
    assert coloured("x", Style.OTHER, True) == "x"
