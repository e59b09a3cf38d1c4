"""
The IRC message syntax: parsing a client's line (IRCv3 tags, prefix, command, parameters) and
building the server's lines, with long texts split to fit IRC's 512-byte lines.

Pure functions over C{str}; no state, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatchcase

#: The longest IRC line without its tags, in bytes, CRLF included.
MAX_LINE = 512
#: The longest tag section a client may send, in bytes, with its C{@} and trailing space.
MAX_CLIENT_TAGS = 4096

_TAG_ESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_TAG_ESCAPING = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})


@dataclass(frozen=True, slots=True)
class IrcMessage:
    """One line a client sent: its tags, its command (upper case) and its parameters."""

    command: str
    params: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


def _unescape(value: str) -> str:
    out, chars = [], iter(value)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            out.append(_TAG_ESCAPES.get(following, following))
        else:
            out.append(char)
    return "".join(out)


def parse_message(line: str) -> IrcMessage | None:
    """Return the message in C{line}, or None for an empty line (which clients may send)."""
    tags: dict[str, str] = {}
    if line.startswith("@"):
        raw_tags, _, line = line[1:].partition(" ")
        for item in raw_tags.split(";"):
            if item:
                key, _, value = item.partition("=")
                tags[key] = _unescape(value)
    line = line.lstrip(" ")
    if line.startswith(":"):  # a prefix from a client is ignored
        _, _, line = line.partition(" ")
    trailing: str | None = None
    if " :" in line:
        line, trailing = line.split(" :", 1)
    elif line.startswith(":"):
        line, trailing = "", line[1:]
    words = line.split()
    if not words:
        return None
    params = words[1:] + ([trailing] if trailing is not None else [])
    return IrcMessage(words[0].upper(), tuple(params), tags)


def server_time(when: float) -> str:
    """Return C{when} in the form of the IRCv3 C{time} tag (UTC, milliseconds)."""
    stamp = datetime.fromtimestamp(when, timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def tag_section(tags: dict[str, str]) -> str:
    """Return C{tags} as the C{@...} section that starts a line (with its space), or nothing."""
    if not tags:
        return ""
    return "@" + ";".join(key if not value else f"{key}={value.translate(_TAG_ESCAPING)}"
                          for key, value in tags.items()) + " "


def line(prefix: str, command: str, *params: str, trailing: str | None = None) -> str:
    """Build one line (without tags or CRLF): C{:prefix COMMAND params :trailing}."""
    parts = [f":{prefix}", command, *params] if prefix else [command, *params]
    if trailing is not None:
        parts.append(":" + trailing)
    return " ".join(parts)


def split_text(text: str, room: int) -> list[str]:
    """
    Cut C{text} into pieces of at most C{room} UTF-8 bytes each, at spaces where it can and
    never inside a character, so that each fits on one IRC line.
    """
    room = max(room, 16)
    pieces: list[str] = []
    while len(text.encode("utf-8")) > room:
        cut = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
        space = cut.rfind(" ")
        if space > len(cut) // 2:
            cut = cut[:space + 1]
        pieces.append(cut)
        text = text[len(cut):]
    pieces.append(text)
    return pieces


def ban_mask(text: str, host: str) -> str:
    """
    Return the IRC ban mask C{text} as the chat's masks read it (see L{chat_twisted.masks}).
    Every user is shown with the same C{host} (and a user part cut from their nickname), so a
    C{nick!user@host} mask whose host is C{*} or matches C{host} says nothing about an address:
    it bans by its nickname part, or, when that is C{*}, by its user part (the first ten
    characters of a nickname, so a ten-character one also matches longer nicknames); C{*!spam@*}
    bans C{spam}, not everyone. A mask on the shown host is what C{/ban nick} sends from clients
    that build one from the host they saw. Any other text is returned as it is.
    """
    nick, bang, rest = text.strip().partition("!")
    user, at, mask_host = rest.rpartition("@")
    if not (bang and at) or not mask_host or not fnmatchcase(host.lower(), mask_host.lower()):
        return text
    if nick.strip("*"):
        return nick
    user = user.lstrip("~")
    if not user.strip("*"):
        return "*"
    return user + "*" if len(user) >= 10 and not user.endswith("*") else user
