"""
The chat's vocabulary: events the core hands to clients, and the rules for names and text.

Everything here is pure: frozen dataclasses and functions with no I/O and no state. The core
creates events; each door (line protocol, later IRC and WebSocket) turns them into its own bytes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from chat_twisted.errors import ChatError, InvalidName

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
    C{what} ("nickname" or "room name") is carried in the error; so is the name, sanitised.
    """
    if not name:
        raise InvalidName(what, "", "empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(what, sanitise(name)[:MAX_NAME_LENGTH], "too_long", MAX_NAME_LENGTH)
    if not _NAME_PATTERN.match(name):
        problem = "bad_start" if name[0].isdigit() or name[0] == "-" else "bad_characters"
        raise InvalidName(what, sanitise(name), problem)
    return name


# --- Events: what the core hands to IChatClient.deliver(). -------------------------------------
# "when" is the server clock's reading (seconds since the epoch); doors format it as they show
# time. Events that happen in a room name it; each door decorates room names in its own way.


class Event:
    """Base class of everything the core delivers to a client."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Welcome(Event):
    """
    The connection is logged in as C{nick} (the registered user C{account}, or a guest if None);
    C{online} users are connected, including it.
    """

    nick: str
    online: int
    account: str | None = None


@dataclass(frozen=True, slots=True)
class Joined(Event):
    """C{nick} entered C{room}; sent to everyone in the room, the newcomer too."""

    room: str
    nick: str


@dataclass(frozen=True, slots=True)
class Left(Event):
    """C{nick} left C{room} because of C{reason}; sent to those who remain and to the one who left."""

    room: str
    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class UserQuit(Event):
    """
    C{nick} left the chat because of C{reason}; sent once to each user who shared a room with them,
    C{rooms} naming the rooms that user shared (in the order the leaver had joined them).
    """

    nick: str
    reason: str
    rooms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NickChanged(Event):
    """C{old} is now called C{new}; sent once to everyone who shares a room with them, and to them."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class AccountChanged(Event):
    """C{nick} is now the registered user C{account} (None: logged out); sent like L{NickChanged}."""

    nick: str
    account: str | None


@dataclass(frozen=True, slots=True)
class AwayChanged(Event):
    """C{nick} went away with C{message} (or came back: empty); sent like L{NickChanged}."""

    nick: str
    message: str


@dataclass(frozen=True, slots=True)
class Said(Event):
    """
    C{nick} said C{text} in C{room} at C{when} (as a notice if C{notice}); C{id} is its stored id,
    C{account} the sender's registered account (None: a guest). So for L{Action} and
    L{PrivateMessage}.
    """

    room: str
    nick: str
    text: str
    when: float
    notice: bool = False
    id: int = field(default=0, compare=False)  # an annotation: the same message, wherever read
    account: str | None = None


@dataclass(frozen=True, slots=True)
class Action(Event):
    """C{nick} performed the C{/me} action C{text} in C{room} at C{when}; C{id} is its stored id."""

    room: str
    nick: str
    text: str
    when: float
    id: int = field(default=0, compare=False)  # an annotation: the same message, wherever read
    account: str | None = None


@dataclass(frozen=True, slots=True)
class PrivateMessage(Event):
    """
    A private message from C{sender} to C{recipient}.

    Delivered to the recipient with C{echo} false, and to the sender, as the confirmation that it
    was delivered, with C{echo} true. C{stored} marks one kept while the recipient was offline;
    C{notice} and C{action} how it was sent.
    """

    sender: str
    recipient: str
    text: str
    when: float
    echo: bool = False
    stored: bool = False
    notice: bool = False
    action: bool = False
    account: str | None = None


@dataclass(frozen=True, slots=True)
class RecipientAway(Event):
    """The user a private message was just delivered to is away with C{message}."""

    nick: str
    message: str


@dataclass(frozen=True, slots=True)
class TopicChanged(Event):
    """C{nick} set the topic of C{room} to C{topic} at C{when}; sent to the room. C{id}: its stored id."""

    room: str
    nick: str
    topic: str
    when: float = 0.0
    id: int = field(default=0, compare=False)  # an annotation: the same message, wherever read


@dataclass(frozen=True, slots=True)
class TopicInfo(Event):
    """
    The topic of C{room} (empty: none), in answer to a topic question or on joining; C{nick} set
    it at C{when}, where known (empty and 0 for a topic kept from before a restart).
    """

    room: str
    topic: str
    nick: str = ""
    when: float = 0.0


@dataclass(frozen=True, slots=True)
class WhoList(Event):
    """
    The nicknames in C{room}, sorted without regard to case; C{away} names those who are away,
    C{operators} the room's operators and C{voiced} those who may speak when it is moderated.
    """

    room: str
    nicks: tuple[str, ...]
    away: tuple[str, ...] = ()
    operators: tuple[str, ...] = ()
    voiced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserInfo:
    """
    One online user as others may see them: nickname, account, away message, rooms, idle seconds,
    when they connected, and whether they are a server operator.
    """

    nick: str
    account: str | None
    away: str
    rooms: tuple[str, ...]
    idle: float
    since: float
    server_operator: bool = False


@dataclass(frozen=True, slots=True)
class UserList(Event):
    """The answer to a question about the nicknames C{asked}: those of them online, in that order."""

    asked: tuple[str, ...]
    users: tuple[UserInfo, ...]


@dataclass(frozen=True, slots=True)
class RoomSummary:
    """One room as listed by a rooms question."""

    name: str
    members: int
    topic: str


@dataclass(frozen=True, slots=True)
class RoomList(Event):
    """Every room with its member count and topic."""

    rooms: tuple[RoomSummary, ...]


@dataclass(frozen=True, slots=True)
class ServerTime(Event):
    """The server's date and time, ISO 8601 with its UTC offset, and the clock reading C{when}."""

    iso: str
    when: float = 0.0


@dataclass(frozen=True, slots=True)
class Registered(Event):
    """The user's nickname C{nick} is now registered to them."""

    nick: str


@dataclass(frozen=True, slots=True)
class LoggedIn(Event):
    """The user, already chatting, is now the registered user C{nick}."""

    nick: str


@dataclass(frozen=True, slots=True)
class LoggedOut(Event):
    """The user is no longer a registered user; they have left their rooms and have no nickname."""


@dataclass(frozen=True, slots=True)
class PasswordChanged(Event):
    """The user's account has a new password."""


@dataclass(frozen=True, slots=True)
class AwaySet(Event):
    """The user is now marked away (C{away} true) or back."""

    away: bool


@dataclass(frozen=True, slots=True)
class OfflineQueued(Event):
    """C{nick} is offline: the user's private message will be delivered when they log in."""

    nick: str


# --- moderation: what operators did, and what users may ask about it ---------------------------


@dataclass(frozen=True, slots=True)
class ModeChanged(Event):
    """
    C{nick} (empty: the server) changed one mode of C{room}: C{change} is C{"+o"}/C{"-o"}
    (operator), C{"+v"}/C{"-v"} (voice) or C{"+b"}/C{"-b"} (ban) with its C{target} (a nickname,
    or the ban's mask), or C{"+i"}, C{"-m"}, ... for the room's own modes (no target).
    """

    room: str
    nick: str
    change: str
    target: str = ""


@dataclass(frozen=True, slots=True)
class Kicked(Event):
    """C{nick} removed C{target} from C{room}, for C{reason} (may be empty)."""

    room: str
    nick: str
    target: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Invited(Event):
    """C{nick} invited C{target} into C{room} (shown to both)."""

    room: str
    nick: str
    target: str


@dataclass(frozen=True, slots=True)
class RoomClaimed(Event):
    """C{nick} claimed C{room} for the registered account C{account}: it keeps its settings from now on."""

    room: str
    nick: str
    account: str


@dataclass(frozen=True, slots=True)
class RoomModes(Event):
    """The modes of C{room} (sorted letters of C{"imt"}) and the account that owns it (None: unclaimed)."""

    room: str
    modes: str
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class BanList(Event):
    """The bans of C{room} (C{room} empty: the server's), in the order of their masks."""

    room: str
    bans: tuple[Ban, ...]


@dataclass(frozen=True, slots=True)
class ServerBanChanged(Event):
    """A server operator set (C{added}) or lifted the server-wide ban C{ban}: shown to them."""

    ban: Ban
    added: bool


@dataclass(frozen=True, slots=True)
class RoomCutOff(Event):
    """
    This server lost its link to the cluster's other servers for a while: C{room} may have
    missed messages from their users meanwhile (its history has them).
    """

    room: str


@dataclass(frozen=True, slots=True)
class Killed(Event):
    """The server operator C{nick} disconnected this user, for C{reason} (may be empty)."""

    nick: str
    reason: str


@dataclass(frozen=True, slots=True)
class Wallops(Event):
    """A message from the server operator C{nick} to everyone online."""

    nick: str
    text: str
    when: float = 0.0


@dataclass(frozen=True, slots=True)
class Goodbye(Event):
    """The last event before the server closes the connection: C{reason} is why."""

    reason: str


@dataclass(frozen=True, slots=True)
class ServerShutdown(Event):
    """The server is stopping; the connection closes next."""


@dataclass(frozen=True, slots=True)
class ErrorReply(Event):
    """
    Something the user asked for could not be done (C{error} says why); the connection stays open
    unless a L{Goodbye} or close follows.
    """

    error: ChatError


# --- Records: what the core keeps in its store. -------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """
    One line of a room's history: C{kind} is C{"say"}, C{"action"} or C{"topic"}. C{id} is the
    store's number for it (0 until stored): unique in the store, larger for later messages.
    """

    room: str
    kind: str
    sender: str
    text: str
    when: float
    id: int = field(default=0, compare=False)  # an annotation: the same message, wherever read


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """A place in a room's history: just before or after the message C{id}, or the time C{when}."""

    id: int | None = None
    when: float | None = None


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
class Ban:
    """
    One ban: everyone C{mask} matches (its canonical text, see L{chat_twisted.masks}), set by the
    nickname C{by} at the time C{when}, until the time C{expires} (None: until lifted), for
    C{reason} (may be empty).
    """

    mask: str
    by: str
    when: float
    expires: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RoomRecord:
    """
    What a claimed room keeps across restarts and its owner's absences: its key and name, the
    account key of its C{owner}, the account keys of its other C{operators}, its C{bans}, and its
    C{modes} (sorted letters of C{"imt"}). Its topic is kept with its history.
    """

    key: str
    name: str
    owner: str
    operators: tuple[str, ...] = ()
    bans: tuple[Ban, ...] = ()
    modes: str = ""


@dataclass(frozen=True, slots=True)
class StoredRoom:
    """
    One room as the store holds it, for the admin tool: its name as last written, how many
    messages of its history are kept, and when the newest of them was sent.
    """

    room: str
    messages: int
    last: float


@dataclass(frozen=True, slots=True)
class History(Event):
    """
    Earlier messages of C{room}, oldest first: the automatic replay on joining, or the answer to
    C{/history} (C{requested} true, sent even when there are none).
    """

    room: str
    messages: tuple[StoredMessage, ...]
    requested: bool = False


@dataclass(frozen=True, slots=True)
class SearchResults(Event):
    """
    The answer to a search for C{text} (as sanitised) in the asker's rooms: the messages found,
    newest first (none: nothing matched).
    """

    text: str
    messages: tuple[StoredMessage, ...]
