"""
The requests a door sends the core on a user's behalf: one frozen dataclass per thing a user can ask.

Every door turns its own syntax (a slash line, an IRC command, a JSON frame) into one of these and
hands it to L{chat_twisted.core.Session.submit}. What a request changes reaches users as events
(L{chat_twisted.model}); what it asks about comes back as an event to the asker, in its turn; why
it could not be done comes back as a L{chat_twisted.errors.ChatError}. Room names are given
without any door's decoration (C{lobby}, not C{#lobby}). Pure data; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat_twisted.model import HistoryPoint


class Request:
    """Base class of everything a door may submit."""

    __slots__ = ()


# --- sessions and accounts -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Login(Request):
    """
    Take nickname C{nick}: as a guest if it is not registered, else with its C{password} (without
    one, the request fails with L{NickRegistered}). Then enter C{rooms}, in order. Once logged in,
    a login with a password makes the user that registered user (renamed if need be).
    """

    nick: str
    password: str | None = None
    rooms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Authenticate(Request):
    """
    Before login, prove the password of registered C{account} (SASL, IRC's PASS): a later
    L{Login} as that nickname then needs no password, and any other leaves the user identified.
    """

    account: str
    password: str


@dataclass(frozen=True, slots=True)
class Register(Request):
    """Register the user's current nickname with C{password}."""

    password: str


@dataclass(frozen=True, slots=True)
class ChangePassword(Request):
    """Change the password of the account the user is logged in to."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Logout(Request):
    """Stop being a registered user: leave every room and give up the nickname."""


@dataclass(frozen=True, slots=True)
class Nick(Request):
    """Change nickname to C{new}; everyone who shares a room with the user sees it."""

    new: str


@dataclass(frozen=True, slots=True)
class Away(Request):
    """Mark the user away with C{message}, or back when it is empty."""

    message: str = ""


@dataclass(frozen=True, slots=True)
class Quit(Request):
    """Leave the chat: the connection closes, and the user's rooms see C{reason} (or "quit")."""

    reason: str = ""


# --- rooms ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join(Request):
    """
    Enter C{room}, creating it if it is new. The newcomer is shown the topic, then (if C{who})
    who is in the room, then its latest messages.
    """

    room: str
    who: bool = False


@dataclass(frozen=True, slots=True)
class Part(Request):
    """Leave C{room}; its members see C{reason}."""

    room: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Topic(Request):
    """Set the topic of C{room} to C{text}, or, when C{text} is None, ask for it (a L{TopicInfo})."""

    room: str
    text: str | None = None


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Say(Request):
    """Say C{text} in C{room} (a notice, if C{notice}: something no program should answer)."""

    room: str
    text: str
    notice: bool = False


@dataclass(frozen=True, slots=True)
class Act(Request):
    """Perform the action C{text} in C{room} (C{/me}, CTCP ACTION)."""

    room: str
    text: str


@dataclass(frozen=True, slots=True)
class Tell(Request):
    """
    Send C{text} privately to user C{target}; a registered user who is offline gets it when
    they next log in. C{notice} and C{action} mark how it was sent.
    """

    target: str
    text: str
    notice: bool = False
    action: bool = False


# --- questions: each answered with one event to the asker --------------------------------------


@dataclass(frozen=True, slots=True)
class ReadHistory(Request):
    """
    Ask for at most C{limit} messages of C{room}, oldest first (answered by L{History}): the
    newest ones; or the newest before C{before}; or the oldest after C{after} (the newest after
    it, if C{newest}); or those around C{around}, half before it and the rest from it on.
    """

    room: str
    limit: int
    before: HistoryPoint | None = None
    after: HistoryPoint | None = None
    around: HistoryPoint | None = None
    newest: bool = False


@dataclass(frozen=True, slots=True)
class Search(Request):
    """
    Search the rooms the user is in now for messages with every word of C{text} (a word matches
    as the start of a word, without regard to case): answered by L{SearchResults}, at most
    C{limit} (1 to 100) of them, newest first; with C{before} (a message id), only older ones.
    """

    text: str
    limit: int = 20
    before: int | None = None


@dataclass(frozen=True, slots=True)
class Who(Request):
    """Ask who is in C{room} (answered by L{WhoList})."""

    room: str


@dataclass(frozen=True, slots=True)
class Rooms(Request):
    """Ask for every room with its member count and topic (answered by L{RoomList})."""


@dataclass(frozen=True, slots=True)
class Whois(Request):
    """Ask about the users named in C{nicks}; answered by one L{UserList} of those online."""

    nicks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Time(Request):
    """Ask for the server's date and time (answered by L{ServerTime})."""


# --- moderation: a room's operators (and server operators) ------------------------------------
# Each change is shown to everyone in the room as a L{ModeChanged}, L{Kicked} or L{RoomClaimed};
# a user without the power gets L{NotOperator}.


@dataclass(frozen=True, slots=True)
class Claim(Request):
    """
    Claim C{room} for the user's registered account: the room then keeps its owner, operators,
    bans, modes and topic across restarts and while nobody is in it. Needs an operator of the room.
    """

    room: str


@dataclass(frozen=True, slots=True)
class SetOperator(Request):
    """Make C{nick} an operator of C{room} (C{give}), or no longer one."""

    room: str
    nick: str
    give: bool = True


@dataclass(frozen=True, slots=True)
class SetVoice(Request):
    """Let C{nick} speak in C{room} while it is moderated (C{give}), or no longer."""

    room: str
    nick: str
    give: bool = True


@dataclass(frozen=True, slots=True)
class Kick(Request):
    """Remove C{nick} from C{room}, for C{reason}."""

    room: str
    nick: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SetBan(Request):
    """Ban C{mask} from C{room} (C{add}), or lift that ban (see L{chat_twisted.masks} for masks)."""

    room: str
    mask: str
    add: bool = True


@dataclass(frozen=True, slots=True)
class ListBans(Request):
    """Ask for the bans of C{room} (answered by L{BanList}); anyone may ask."""

    room: str


@dataclass(frozen=True, slots=True)
class Invite(Request):
    """
    Invite C{nick} into C{room}, where the user is: they may then enter it even if it is
    invite-only. When the room is invite-only, only an operator may invite.
    """

    room: str
    nick: str


@dataclass(frozen=True, slots=True)
class SetModes(Request):
    """
    Change the modes of C{room}: C{changes} is like C{"+mt"} or C{"-i+m"}, of the letters C{i}
    (invite-only), C{m} (moderated: only operators and voiced users speak) and C{t}
    (topic-locked: only operators set the topic). C{changes} None asks for them (a L{RoomModes}).
    """

    room: str
    changes: str | None = None


# --- server operators: accounts named by --oper ------------------------------------------------


@dataclass(frozen=True, slots=True)
class KillUser(Request):
    """Disconnect C{nick} from the server, for C{reason}."""

    nick: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ServerBan(Request):
    """
    Ban C{mask} (an account, address or network) from the whole server for C{seconds} (None: until
    lifted), for C{reason} (C{add}), or lift that ban. Users it matches are disconnected at once,
    and it refuses them at connection and login on every door.
    """

    mask: str
    add: bool = True
    seconds: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ListServerBans(Request):
    """Ask for the server-wide bans in force (answered by a L{BanList} with an empty room)."""


@dataclass(frozen=True, slots=True)
class Wall(Request):
    """Send C{text} to everyone online (a L{Wallops})."""

    text: str
