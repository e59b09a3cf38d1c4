"""
The chat's vocabulary: events the core hands to clients, and the rules for names and text.

Everything here is pure: frozen dataclasses and functions with no I/O and no state. The core
creates events; each door (line protocol, later IRC and WebSocket) turns them into its own bytes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from chat_twisted.errors import InvalidName

#: The room every user enters on login and returns to with ``/part``.
LOBBY = "lobby"

#: Longest nickname or room name, in characters.
MAX_NAME_LENGTH = 30

_NAME_PATTERN = re.compile(r"[A-Za-z_\[\]\\^{}|][A-Za-z0-9_\-\[\]\\^{}|]{0,%d}\Z" % (MAX_NAME_LENGTH - 1))

# ESC-introduced sequences: CSI (ESC [ ... final), OSC/DCS/PM/APC strings (ended by BEL or ESC \),
# and two-character escapes. Removed whole so that no half of one is left to act on a terminal.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -~]?"
)

# Unicode categories that never reach another client: controls (Cc), format characters (Cf: bidi
# overrides and isolates, zero-width characters, ...), line and paragraph separators, surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def _is_safe(char: str) -> bool:
    return char == "\t" or unicodedata.category(char) not in _UNSAFE_CATEGORIES


def sanitise(text: str) -> str:
    """
    Return C{text} with every terminal escape sequence and unsafe character removed.

    Removed: C0 controls except tab, DEL, C1 controls, ESC sequences, and Unicode format and
    separator characters: bidi marks, overrides and isolates, every zero-width character (so
    an emoji sequence joined with U+200D shows as its parts), U+2028/U+2029.
    Printable text, including any script and emoji, is kept as it is.
    """
    if text.isprintable():
        return text
    text = _ESCAPE_SEQUENCE.sub("", text)
    return "".join(char for char in text if _is_safe(char))


def name_key(name: str) -> str:
    """Return the form of a nickname or room name under which names are compared (case-insensitive)."""
    return name.lower()


def check_name(name: str, what: str) -> str:
    """
    Return C{name} if it is a valid nickname or room name, else raise L{InvalidName}.

    Valid: 1 to 30 ASCII letters, digits and C{_-[]\\^{}|}, not starting with a digit or C{-}.
    C{what} ("nickname" or "room name") is used in the error text.
    """
    if not name:
        raise InvalidName(f"{what} must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"{what} {sanitise(name)[:MAX_NAME_LENGTH]!r}... is longer than {MAX_NAME_LENGTH} characters")
    if not _NAME_PATTERN.match(name):
        shown = sanitise(name)
        if name[0].isdigit() or name[0] == "-":
            raise InvalidName(f"{what} {shown!r} must not start with a digit or '-'")
        raise InvalidName(
            f"{what} {shown!r} may only contain ASCII letters, digits and _-[]\\^{{}}|"
        )
    return name


# --- Events: what the core hands to IChatClient.deliver(). -------------------------------------
# "when" is the server clock's reading (seconds since the epoch); doors format it in the
# service's display time zone.


class Event:
    """Base class of everything the core delivers to a client."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class NickPrompt(Event):
    """Ask the connection to choose a nickname; C{first} is true for the greeting on connect."""

    first: bool = False


@dataclass(frozen=True, slots=True)
class PasswordPrompt(Event):
    """C{nick} is registered: ask for its password (or another nickname)."""

    nick: str


@dataclass(frozen=True, slots=True)
class Welcome(Event):
    """The connection is logged in as C{nick}; C{online} users are connected, including it."""

    nick: str
    online: int
    room: str


@dataclass(frozen=True, slots=True)
class Joined(Event):
    """C{nick} entered C{room}; sent to everyone in the room, the newcomer too."""

    room: str
    nick: str


@dataclass(frozen=True, slots=True)
class Left(Event):
    """C{nick} left C{room} because of C{reason}; sent to those who remain."""

    room: str
    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class NickChanged(Event):
    """C{old} is now called C{new}; sent to the room, the renamed user too."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Said(Event):
    """C{nick} said C{text} in C{room} at C{when}."""

    room: str
    nick: str
    text: str
    when: float


@dataclass(frozen=True, slots=True)
class Action(Event):
    """C{nick} performed the C{/me} action C{text} in C{room} at C{when}."""

    room: str
    nick: str
    text: str
    when: float


@dataclass(frozen=True, slots=True)
class PrivateMessage(Event):
    """
    A private message from C{sender} to C{recipient}.

    Delivered to the recipient with C{echo} false, and to the sender, as the confirmation that it
    was delivered, with C{echo} true. C{stored} marks one kept while the recipient was offline.
    """

    sender: str
    recipient: str
    text: str
    when: float
    echo: bool = False
    stored: bool = False


@dataclass(frozen=True, slots=True)
class TopicChanged(Event):
    """C{nick} set the topic of C{room} to C{topic}; sent to the room."""

    room: str
    nick: str
    topic: str


@dataclass(frozen=True, slots=True)
class TopicInfo(Event):
    """The topic of C{room} (empty: none), in answer to C{/topic} or on joining."""

    room: str
    topic: str


@dataclass(frozen=True, slots=True)
class WhoList(Event):
    """The nicknames in C{room}, sorted without regard to case."""

    room: str
    nicks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """One room as listed by C{/rooms}."""

    name: str
    members: int
    topic: str


@dataclass(frozen=True, slots=True)
class RoomList(Event):
    """Every room with its member count and topic."""

    rooms: tuple[RoomSummary, ...]


@dataclass(frozen=True, slots=True)
class ServerTime(Event):
    """The server's date and time, ISO 8601 with its UTC offset."""

    iso: str


@dataclass(frozen=True, slots=True)
class HelpEntry:
    """One command as listed by C{/help}."""

    usage: str
    description: str


@dataclass(frozen=True, slots=True)
class HelpText(Event):
    """Every command with a one-line description."""

    entries: tuple[HelpEntry, ...]


@dataclass(frozen=True, slots=True)
class Notice(Event):
    """A short confirmation for this user only ("password changed")."""

    text: str


@dataclass(frozen=True, slots=True)
class Goodbye(Event):
    """The last line before the server closes the connection on C{/quit}."""

    reason: str


@dataclass(frozen=True, slots=True)
class ServerShutdown(Event):
    """The server is stopping; the connection closes next."""


@dataclass(frozen=True, slots=True)
class ErrorReply(Event):
    """Something the user asked for could not be done; the connection stays open."""

    text: str


# --- Records: what the core keeps in its store. -------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One line of a room's history: C{kind} is C{"say"}, C{"action"} or C{"topic"}."""

    room: str
    kind: str
    sender: str
    text: str
    when: float


@dataclass(frozen=True, slots=True)
class Account:
    """A registered nickname and the Argon2id hash of its password."""

    nick: str
    password_hash: str
    created: float


@dataclass(frozen=True, slots=True)
class OfflineMessage:
    """A private message kept for a registered user who was offline when it was sent."""

    sender: str
    recipient: str
    text: str
    when: float


@dataclass(frozen=True, slots=True)
class History(Event):
    """
    Earlier messages of C{room}, oldest first: the automatic replay on joining, or the answer to
    C{/history} (C{requested} true, sent even when there are none).
    """

    room: str
    messages: tuple[StoredMessage, ...]
    requested: bool = False
