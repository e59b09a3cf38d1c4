"""
What kind of line a server line is (own message, someone else's, private, system notice, error,
history) and the colour each kind is shown in. Pure functions; nothing here writes anywhere.
"""

from __future__ import annotations

import enum
import re

_STAMP = r"\[[^\]]*\] "
_LEADING_STAMP = re.compile(_STAMP)
_PRIVATE = re.compile(_STAMP + r"\(private")
_ACTION = re.compile(_STAMP + r"\* (\S+) ")
_SAID = re.compile(_STAMP + r"([^\s:]+): ")


class Style(enum.Enum):
    """The kinds of line the interactive client tells apart, each with its SGR colour parameters."""

    OWN = "32"  # green: what we said
    OTHER = ""  # the terminal's own colour: what others said
    PRIVATE = "1;35"  # bold magenta: private messages, to or from us
    SYSTEM = "36"  # cyan: the server's "* " notices
    ERROR = "1;31"  # bold red: the server's "error:" lines
    HISTORY = "34"  # blue: replayed history
    CLIENT = "33"  # yellow: the client's own notices (connection lost, reconnected, help)


def classify(line: str, nick: str | None) -> Style:
    """Return the L{Style} of server line C{line}, C{nick} being our own nickname (if known)."""
    if line.startswith("error:"):
        return Style.ERROR
    if line.startswith("[history "):
        return Style.HISTORY
    if line.startswith("* "):
        return Style.SYSTEM
    if _PRIVATE.match(line):
        return Style.PRIVATE
    match = _ACTION.match(line) or _SAID.match(line)
    if match and nick is not None and match.group(1).lower() == nick.lower():
        return Style.OWN
    return Style.OTHER


def coloured(text: str, style: Style, colour: bool) -> str:
    """Return C{text} wrapped in the SGR sequences for C{style} (unchanged without C{colour})."""
    if not colour or not style.value:
        return text
    return f"\x1b[{style.value}m{text}\x1b[0m"


def split_stamp(line: str) -> tuple[str, str]:
    """Split a user line into its leading C{[time] } stamp and the rest (C{""} and the line if it has none)."""
    match = _LEADING_STAMP.match(line)
    return (match.group(), line[match.end():]) if match else ("", line)
