"""
Expected problems: why a request could not be done, as a kind and its parameters.

The core raises these and never words them: each door renders every kind in its own form (an
C{error:} line, an IRC numeric, a JSON error). They compare by kind and parameters, so tests and
doors can match them as values. Nothing here touches a transport.
"""

from __future__ import annotations

from dataclasses import dataclass


class ChatError(Exception):
    """A request that cannot be done; subclasses carry what a door needs to say why."""

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and vars(other) == vars(self)

    def __hash__(self) -> int:
        return hash((type(self), tuple(sorted(vars(self).items()))))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in vars(self).items())
        return f"{type(self).__name__}({fields})"


# --- names ------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class InvalidName(ChatError):
    """
    C{name} breaks the naming rules for C{what} (C{"nickname"} or C{"room name"}): C{problem}
    is C{"empty"}, C{"too_long"} (more than C{limit} characters), C{"bad_start"} (a digit or
    C{-} first) or C{"bad_characters"}.
    """

    what: str
    name: str
    problem: str
    limit: int = 0


@dataclass(eq=False, repr=False)
class NickInUse(ChatError):
    """Another connected user already has C{nick} (compared without regard to case)."""

    nick: str


@dataclass(eq=False, repr=False)
class NickRegistered(ChatError):
    """C{nick} belongs to a registered account: taking it needs that account's password."""

    nick: str


@dataclass(eq=False, repr=False)
class AlreadyNamed(ChatError):
    """The user asked to be renamed to the nickname they already have."""

    nick: str


@dataclass(eq=False, repr=False)
class NoSuchUser(ChatError):
    """No user named C{nick} is online (and none is registered, where that would do)."""

    nick: str


# --- rooms ------------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class AlreadyInRoom(ChatError):
    """The user is already in C{room}."""

    room: str


@dataclass(eq=False, repr=False)
class NotInRoom(ChatError):
    """The request is about C{room}, which the user is not in."""

    room: str


@dataclass(eq=False, repr=False)
class NoSuchRoom(ChatError):
    """No room named C{room} exists now."""

    room: str


@dataclass(eq=False, repr=False)
class EmptyText(ChatError):
    """A message, action or topic had nothing left to show once sanitised."""


# --- accounts ---------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class PasswordRule(ChatError):
    """A new password breaks a rule: C{problem} is C{"too_short"}, C{"too_long"} or C{"spaces"}."""

    problem: str
    limit: int = 0


@dataclass(eq=False, repr=False)
class AlreadyRegistered(ChatError):
    """C{nick} is registered already (C{yours}: to this very user)."""

    nick: str
    yours: bool = False


@dataclass(eq=False, repr=False)
class NotRegistered(ChatError):
    """A password was given for C{nick}, which no account holds."""

    nick: str


@dataclass(eq=False, repr=False)
class NotIdentified(ChatError):
    """The request needs the user to be logged in to a registered account."""


@dataclass(eq=False, repr=False)
class WrongPassword(ChatError):
    """The password given for C{nick} did not match its account's."""

    nick: str


@dataclass(eq=False, repr=False)
class TooManyAttempts(ChatError):
    """Too many recent failed logins for the account or the address; try again in C{seconds}."""

    seconds: int


@dataclass(eq=False, repr=False)
class Busy(ChatError):
    """The server is checking as many passwords as it may at once; try again in a moment."""


@dataclass(eq=False, repr=False)
class NotLoggedIn(ChatError):
    """The request needs a nickname first."""


@dataclass(eq=False, repr=False)
class AlreadyLoggedIn(ChatError):
    """The user has a nickname already; use a nick change instead."""


# --- private messages -------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class MailboxFull(ChatError):
    """C{nick} is offline and has too many messages waiting already."""

    nick: str


# --- moderation -------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class NotOperator(ChatError):
    """Only an operator of C{room} (or a server operator) may do that."""

    room: str


@dataclass(eq=False, repr=False)
class NotServerOperator(ChatError):
    """Only a server operator may do that."""


@dataclass(eq=False, repr=False)
class Banned(ChatError):
    """The user is banned from C{room}, so may not enter it."""

    room: str


@dataclass(eq=False, repr=False)
class InviteOnly(ChatError):
    """C{room} is invite-only and the user has not been invited."""

    room: str


@dataclass(eq=False, repr=False)
class CannotSpeak(ChatError):
    """
    The user may not speak in C{room}: C{why} is C{"moderated"} (only operators and voiced
    users speak) or C{"banned"}.
    """

    room: str
    why: str


@dataclass(eq=False, repr=False)
class UserNotInRoom(ChatError):
    """C{nick} is not in C{room}."""

    nick: str
    room: str


@dataclass(eq=False, repr=False)
class UserInRoom(ChatError):
    """C{nick} is already in C{room} (there is no need to invite them)."""

    nick: str
    room: str


@dataclass(eq=False, repr=False)
class Protected(ChatError):
    """C{nick} is C{room}'s owner or a server operator: a room operator cannot do that to them."""

    nick: str
    room: str


@dataclass(eq=False, repr=False)
class InvalidMask(ChatError):
    """
    C{mask} is not a ban mask: a nickname pattern, C{account:NAME}, or an address or CIDR network
    (server-wide bans: an account, address or network only).
    """

    mask: str


@dataclass(eq=False, repr=False)
class InvalidDuration(ChatError):
    """C{text} is not a duration: a whole number of seconds, or one with a unit (C{30m}, C{2h}, C{7d})."""

    text: str


@dataclass(eq=False, repr=False)
class NoSuchBan(ChatError):
    """Nothing is banned under C{mask} (in C{room}; C{room} empty: server-wide)."""

    mask: str
    room: str = ""


@dataclass(eq=False, repr=False)
class UnknownMode(ChatError):
    """C{mode} is not a room mode: they are C{i} (invite-only), C{m} (moderated) and C{t} (topic-locked)."""

    mode: str


@dataclass(eq=False, repr=False)
class AlreadyClaimed(ChatError):
    """C{room} is claimed already, by the account C{owner}."""

    room: str
    owner: str


@dataclass(eq=False, repr=False)
class CannotClaim(ChatError):
    """C{room} (the lobby) belongs to the server: only a server operator may claim it."""

    room: str


@dataclass(eq=False, repr=False)
class ServerBanned(ChatError):
    """
    The user's address or account is banned from this server until the time C{expires} (None:
    until lifted), for C{reason} (may be empty). The connection is closed.
    """

    reason: str = ""
    expires: float | None = None


# --- the server -------------------------------------------------------------------------------


@dataclass(eq=False, repr=False)
class NotStored(ChatError):
    """A message could not be stored, so nobody was shown it."""


@dataclass(eq=False, repr=False)
class Unavailable(ChatError):
    """
    What the request needs cannot be reached just now: C{what} is C{"accounts"} (the store
    could not be read) or C{"servers"} (the link to the cluster's other servers is down).
    """

    what: str


@dataclass(eq=False, repr=False)
class HistoryUnavailable(ChatError):
    """The history of C{room} could not be read from the store."""

    room: str


@dataclass(eq=False, repr=False)
class SearchUnavailable(ChatError):
    """A search could not be done: the store could not be read."""


@dataclass(eq=False, repr=False)
class ServerFull(ChatError):
    """The server has C{limit} connections, its most; try again later."""

    limit: int


@dataclass(eq=False, repr=False)
class TooManyFromAddress(ChatError):
    """The connection's address has C{limit} connections, the most allowed."""

    limit: int


@dataclass(eq=False, repr=False)
class TooManyConnectionsRecently(ChatError):
    """The connection's address has opened C{limit} connections in the last C{seconds}, the most allowed."""

    limit: int
    seconds: float


@dataclass(eq=False, repr=False)
class ShuttingDown(ChatError):
    """The server is shutting down and accepts nothing new."""


@dataclass(eq=False, repr=False)
class LoginTimedOut(ChatError):
    """The connection did not log in within C{seconds}."""

    seconds: float


@dataclass(eq=False, repr=False)
class InternalError(ChatError):
    """Something unexpected went wrong (logged on the server); the request was not done."""


# --- what a door finds in a connection's input --------------------------------------------------


@dataclass(eq=False, repr=False)
class InputTooLong(ChatError):
    """A line or message longer than C{limit} bytes was dropped."""

    limit: int


@dataclass(eq=False, repr=False)
class NotUtf8(ChatError):
    """A line or message that is not valid UTF-8 was dropped."""


@dataclass(eq=False, repr=False)
class ExcessFlood(ChatError):
    """The connection sent more than it may have waiting; it is closed."""


@dataclass(eq=False, repr=False)
class WrongProtocol(ChatError):
    """The connection spoke another protocol (C{protocol}: C{"http"}, say); it is closed."""

    protocol: str
