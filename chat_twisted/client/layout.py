"""
Where text lands on a terminal: how many cells each character takes, how a message wraps, and
how the line being typed is laid out over one or more rows.

Pure functions; nothing here writes anywhere.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

#: Tabs in messages are shown as spaces, to this many columns.
TAB_SIZE = 8

_TOKENS = re.compile(r"\S+|\s+")
_TIMESTAMP_PREFIX = re.compile(r"\[[^\]]*\] ")
_STARS_PREFIX = re.compile(r"\*(?:\*\*)? ")


def cell_width(char: str) -> int:
    """Return how many terminal cells C{char} takes: 0 (combining, format), 2 (wide), else 1."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
        return 0
    if unicodedata.east_asian_width(char) in ("W", "F"):
        return 2
    return 1


def text_width(text: str) -> int:
    """Return how many terminal cells C{text} takes on one row."""
    return sum(cell_width(char) for char in text)


def hanging_indent(text: str, width: int) -> int:
    """
    Return how far a wrapped message's further rows are indented: past a leading
    C{[HH:MM:SS] } stamp, or past the C{* } of system lines and the C{*** } of the client's own;
    never more than half the width.
    """
    match = _TIMESTAMP_PREFIX.match(text) or _STARS_PREFIX.match(text)
    indent = match.end() if match else 0
    return indent if indent <= width // 2 else 0


def wrap(text: str, width: int) -> list[str]:
    """
    Split C{text} into rows of at most C{width} cells, breaking between words where it can and
    inside a word only when the word alone is wider than a row; further rows get a hanging
    indent (see L{hanging_indent}). Always returns at least one row.
    """
    width = max(width, 1)
    text = text.expandtabs(TAB_SIZE).rstrip()
    indent = " " * hanging_indent(text, width)
    rows: list[str] = []
    row, used = "", 0

    def new_row() -> None:
        nonlocal row, used
        rows.append(row.rstrip())
        row, used = indent, len(indent)

    for token in _TOKENS.findall(text):
        size = text_width(token)
        if token.isspace():  # kept if it fits; else the row ends here
            if used + size <= width:
                row, used = row + token, used + size
            elif used > len(indent):
                new_row()
            continue
        if used + size > width and used > len(indent) and size <= width - len(indent):
            new_row()
        if used + size <= width:
            row, used = row + token, used + size
            continue
        for char in token:  # a word wider than a row: break it where the row is full
            char_size = cell_width(char)
            if used + char_size > width and used > len(indent):
                new_row()
            row, used = row + char, used + char_size
    rows.append(row.rstrip())
    return rows


@dataclass(frozen=True)
class InputLayout:
    """
    The line being typed, laid out on screen: C{rows} to write (each at most the width, written
    one below the other), and the C{cursor_row} and C{cursor_column} where the cursor then goes.
    """

    rows: tuple[str, ...]
    cursor_row: int
    cursor_column: int


def layout_input(prompt: str, text: str, cursor: int, width: int, max_rows: int) -> InputLayout:
    """
    Lay out C{prompt} followed by C{text} with the cursor before character C{cursor} of C{text}.

    A wide character that does not fit at the end of a row moves to the next. When the cursor is
    at the very end of a full row, an empty row follows for it. With more rows than C{max_rows},
    only C{max_rows} rows around the cursor are kept.
    """
    width = max(width, 2)
    rows: list[str] = []
    row, used = "", 0
    cursor_at = (0, 0)
    for index, char in enumerate(prompt + text):
        if index == len(prompt) + cursor:
            cursor_at = (len(rows), used)
        size = cell_width(char)
        if used + size > width:
            rows.append(row)
            row, used = "", 0
            if index == len(prompt) + cursor:
                cursor_at = (len(rows), 0)
        row, used = row + char, used + size
    if cursor >= len(text):
        cursor_at = (len(rows), used)
    rows.append(row)
    if cursor_at[1] >= width:
        rows.append("")
        cursor_at = (len(rows) - 1, 0)
    first = min(max(cursor_at[0] - max(max_rows, 1) + 1, 0), max(len(rows) - max(max_rows, 1), 0))
    shown = rows[first:first + max(max_rows, 1)]
    return InputLayout(tuple(shown), cursor_at[0] - first, cursor_at[1])
