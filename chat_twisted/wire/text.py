"""
How the line protocol shows each core event: one or more lines of text, without line endings.

Pure functions; the only state is the time zone passed in. The line door encodes what these
return; nothing here touches a transport.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from collections.abc import Callable
from functools import singledispatch
from typing import Any

from chat_twisted import errors
from chat_twisted.errors import ChatError
from chat_twisted.model import (
    LOBBY,
    AccountChanged,
    Action,
    AwayChanged,
    AwaySet,
    Ban,
    BanList,
    ErrorReply,
    Event,
    Goodbye,
    History,
    Invited,
    Joined,
    Kicked,
    Killed,
    Left,
    LoggedIn,
    LoggedOut,
    ModeChanged,
    NickChanged,
    OfflineQueued,
    PasswordChanged,
    PrivateMessage,
    RecipientAway,
    Registered,
    RoomClaimed,
    RoomCutOff,
    RoomList,
    RoomModes,
    Said,
    SearchResults,
    ServerBanChanged,
    ServerShutdown,
    ServerTime,
    StoredMessage,
    TopicChanged,
    TopicInfo,
    UserList,
    UserQuit,
    Wallops,
    Welcome,
    WhoList,
    sanitise,
)
from chat_twisted.wire.slash import HelpText, NickPrompt, PasswordExpected, PasswordPrompt, UnknownCommand, Usage

#: Every line the server writes that is not a user's message or an error starts with this.
SYSTEM = "* "


def clock_time(when: float, timezone: tzinfo) -> str:
    """Return C{when} (seconds since the epoch) as C{HH:MM:SS} in C{timezone}."""
    return datetime.fromtimestamp(when, timezone).strftime("%H:%M:%S")


def date_time(when: float, timezone: tzinfo) -> str:
    """Return C{when} (seconds since the epoch) as C{YYYY-MM-DD HH:MM:SS} in C{timezone}."""
    return datetime.fromtimestamp(when, timezone).strftime("%Y-%m-%d %H:%M:%S")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


@singledispatch
def render(event: Event, timezone: tzinfo) -> list[str]:
    """Return the lines that show C{event} to a line-protocol user, times shown in C{timezone}."""
    raise TypeError(f"no line form for {type(event).__name__}")


@render.register
def _(event: NickPrompt, timezone: tzinfo) -> list[str]:
    if event.first:
        return [SYSTEM + "Welcome to chat_twisted! Please choose a nickname:"]
    return [SYSTEM + "Please choose a nickname:"]


@render.register
def _(event: PasswordPrompt, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} is registered. Password (or /nick NAME for another nickname):"]


@render.register
def _(event: Welcome, timezone: tzinfo) -> list[str]:
    return [
        f"{SYSTEM}Welcome, {event.nick}! {_count(event.online, 'user')} online."
        f" You are in {LOBBY}; type /help for commands."
    ]


@render.register
def _(event: Joined, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} joined {event.room}"]


def _left(nick: str, room: str, reason: str) -> str:
    return f"{SYSTEM}{nick} left {room} ({reason})" if reason else f"{SYSTEM}{nick} left {room}"


@render.register
def _(event: Left, timezone: tzinfo) -> list[str]:
    return [_left(event.nick, event.room, event.reason)]


@render.register
def _(event: UserQuit, timezone: tzinfo) -> list[str]:
    return [_left(event.nick, room, event.reason) for room in event.rooms]


@render.register
def _(event: NickChanged, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.old} is now known as {event.new}"]


@render.register
def _(event: Said, timezone: tzinfo) -> list[str]:
    return [f"[{clock_time(event.when, timezone)}] {event.nick}: {event.text}"]


@render.register
def _(event: Action, timezone: tzinfo) -> list[str]:
    return [f"[{clock_time(event.when, timezone)}] * {event.nick} {event.text}"]


@render.register
def _(event: PrivateMessage, timezone: tzinfo) -> list[str]:
    if event.stored:
        return [f"[{date_time(event.when, timezone)}] (private, while you were away) {event.sender}: {event.text}"]
    mark = f"(private to {event.recipient})" if event.echo else "(private)"
    said = f"* {event.sender} {event.text}" if event.action else f"{event.sender}: {event.text}"
    return [f"[{clock_time(event.when, timezone)}] {mark} {said}"]


@render.register
def _(event: TopicChanged, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} set the topic of {event.room} to: {event.topic}"]


@render.register
def _(event: TopicInfo, timezone: tzinfo) -> list[str]:
    if event.topic:
        return [f"{SYSTEM}topic of {event.room}: {event.topic}"]
    return [f"{SYSTEM}{event.room} has no topic"]


@render.register
def _(event: WhoList, timezone: tzinfo) -> list[str]:
    lines = [f"{SYSTEM}{_count(len(event.nicks), 'user')} in {event.room}: {', '.join(event.nicks)}"]
    if event.operators:
        lines.append(f"{SYSTEM}operators of {event.room}: {', '.join(event.operators)}")
    if event.voiced:
        lines.append(f"{SYSTEM}voiced in {event.room}: {', '.join(event.voiced)}")
    return lines


# --- moderation -------------------------------------------------------------------------------

_MODE_WORDS = {
    "+o": "made {target} an operator of {room}",
    "-o": "took {target}'s operator status in {room}",
    "+v": "gave {target} a voice in {room}",
    "-v": "took {target}'s voice in {room}",
    "+b": "banned {target} from {room}",
    "-b": "lifted the ban on {target} in {room}",
    "+i": "made {room} invite-only",
    "-i": "made {room} open to everyone",
    "+m": "made {room} moderated: only operators and voiced users speak",
    "-m": "made {room} unmoderated",
    "+t": "locked the topic of {room}: only operators set it",
    "-t": "unlocked the topic of {room}",
}
_MODE_NAMES = {"i": "invite-only", "m": "moderated", "t": "topic-locked"}


@render.register
def _(event: ModeChanged, timezone: tzinfo) -> list[str]:
    who = event.nick or "the server"
    return [f"{SYSTEM}{who} {_MODE_WORDS[event.change].format(target=event.target, room=event.room)}"]


@render.register
def _(event: Kicked, timezone: tzinfo) -> list[str]:
    reason = f" ({event.reason})" if event.reason else ""
    return [f"{SYSTEM}{event.nick} kicked {event.target} from {event.room}{reason}"]


@render.register
def _(event: Invited, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} invited {event.target} to {event.room} (/join {event.room})"]


@render.register
def _(event: RoomClaimed, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} claimed {event.room} for the account {event.account}:"
            " it keeps its operators, bans, modes and topic"]


@render.register
def _(event: RoomModes, timezone: tzinfo) -> list[str]:
    modes = ", ".join(_MODE_NAMES[letter] for letter in event.modes)
    owner = f"; claimed by {event.owner}" if event.owner else ""
    if not modes:
        return [f"{SYSTEM}{event.room} has no modes{owner}"]
    return [f"{SYSTEM}modes of {event.room}: +{event.modes} ({modes}){owner}"]


def _ban_line(ban: Ban, timezone: tzinfo) -> str:
    until = f", until {date_time(ban.expires, timezone)}" if ban.expires is not None else ""
    reason = f": {ban.reason}" if ban.reason else ""
    return f"{SYSTEM}  {ban.mask} (by {ban.by}, {date_time(ban.when, timezone)}{until}){reason}"


@render.register
def _(event: BanList, timezone: tzinfo) -> list[str]:
    where = f"in {event.room}" if event.room else "on this server"
    if not event.bans:
        return [f"{SYSTEM}no bans {where}"]
    return [f"{SYSTEM}{_count(len(event.bans), 'ban')} {where}:"] + [_ban_line(ban, timezone) for ban in event.bans]


@render.register
def _(event: ServerBanChanged, timezone: tzinfo) -> list[str]:
    if not event.added:
        return [f"{SYSTEM}lifted the server ban on {event.ban.mask}"]
    return [f"{SYSTEM}banned from the server:"] + [_ban_line(event.ban, timezone)]


@render.register
def _(event: RoomCutOff, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.room} was cut off from the other servers for a while;"
            " messages sent there meanwhile may be missing here (see /history)"]


@render.register
def _(event: Killed, timezone: tzinfo) -> list[str]:
    reason = f" ({event.reason})" if event.reason else ""
    return [f"{SYSTEM}you were disconnected by the server operator {event.nick}{reason}"]


@render.register
def _(event: Wallops, timezone: tzinfo) -> list[str]:
    return [f"[{clock_time(event.when, timezone)}] (to everyone) {event.nick}: {event.text}"]


@render.register
def _(event: RoomList, timezone: tzinfo) -> list[str]:
    lines = [f"{SYSTEM}{_count(len(event.rooms), 'room')}:"]
    for room in event.rooms:
        topic = f": {room.topic}" if room.topic else ""
        lines.append(f"{SYSTEM}  {room.name} ({_count(room.members, 'user')}){topic}")
    return lines


@render.register
def _(event: ServerTime, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}server time: {event.iso}"]


@render.register
def _(event: HelpText, timezone: tzinfo) -> list[str]:
    width = max(len(entry.usage) for entry in event.entries)
    return [f"{SYSTEM}commands:"] + [
        f"{SYSTEM}  {entry.usage.ljust(width)}  {entry.description}" for entry in event.entries
    ]


@render.register
def _(event: UserList, timezone: tzinfo) -> list[str]:
    found = {user.nick.lower(): user for user in event.users}
    lines = []
    for asked in event.asked:
        user = found.get(asked.lower())
        if user is None:
            lines.append(f"{SYSTEM}no user named {sanitise(asked)!r} is online")
            continue
        where = f" in {', '.join(user.rooms)}" if user.rooms else ""
        away = f", away: {user.away}" if user.away else ""
        lines.append(f"{SYSTEM}{user.nick} is online{where}{away}")
        if user.account is not None:
            lines.append(f"{SYSTEM}{user.nick} is logged in as {user.account}")
    return lines


@render.register
def _(event: Registered, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} is now registered; next time log in with /login {event.nick} PASSWORD"]


@render.register
def _(event: LoggedIn, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}you are logged in as {event.nick}"]


@render.register
def _(event: LoggedOut, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}you are logged out", f"{SYSTEM}Please choose a nickname:"]


@render.register
def _(event: PasswordChanged, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}password changed"]


@render.register
def _(event: OfflineQueued, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} is offline; your message will be delivered when they log in"]


@render.register
def _(event: AwaySet, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}you are marked as away" if event.away else f"{SYSTEM}you are no longer marked as away"]


@render.register
def _(event: RecipientAway, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} is away: {event.message}"]


@render.register
def _(event: AccountChanged, timezone: tzinfo) -> list[str]:
    return []


@render.register
def _(event: AwayChanged, timezone: tzinfo) -> list[str]:
    return []


def _history_line(message: StoredMessage, timezone: tzinfo) -> str:
    stamp = f"[history {date_time(message.when, timezone)}]"
    if message.kind == "action":
        return f"{stamp} * {message.sender} {message.text}"
    if message.kind == "topic":  # not "* bob set the topic", which "/me set the topic" could fake
        return f"{stamp} (topic) {message.sender}: {message.text}"
    return f"{stamp} {message.sender}: {message.text}"


@render.register
def _(event: History, timezone: tzinfo) -> list[str]:
    if not event.messages:
        return [f"{SYSTEM}no messages in {event.room} yet"]
    header = f"{SYSTEM}last {_count(len(event.messages), 'message')} in {event.room}:"
    return [header] + [_history_line(message, timezone) for message in event.messages]


def _found_line(message: StoredMessage, timezone: tzinfo) -> str:
    stamp = f"[{date_time(message.when, timezone)}] {message.room}:"
    if message.kind == "action":
        return f"{stamp} * {message.sender} {message.text}"
    if message.kind == "topic":
        return f"{stamp} (topic) {message.sender}: {message.text}"
    return f"{stamp} {message.sender}: {message.text}"


@render.register
def _(event: SearchResults, timezone: tzinfo) -> list[str]:
    if not event.messages:
        return [f'{SYSTEM}no messages found for "{event.text}"']
    header = f'{SYSTEM}{_count(len(event.messages), "message")} found for "{event.text}":'
    return [header] + [_found_line(message, timezone) for message in event.messages]


@render.register
def _(event: Goodbye, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}Goodbye! ({event.reason})"]


@render.register
def _(event: ServerShutdown, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}server shutting down"]


@render.register
def _(event: ErrorReply, timezone: tzinfo) -> list[str]:
    return [f"error: {describe(event.error)}"]


@singledispatch
def describe(error: ChatError) -> str:
    """Return why C{error} happened, in the line protocol's words."""
    return "request failed"


def _words(kind: type[ChatError], words: Callable[[Any], str]) -> None:
    describe.register(kind, words)


_NAME_PROBLEMS = {
    "too_long": "{what} {name!r}... is longer than {limit} characters",
    "bad_start": "{what} {name!r} must not start with a digit or '-'",
    "bad_characters": "{what} {name!r} may only contain ASCII letters, digits and _-[]\\^{{}}|",
    "empty": "{what} must not be empty",
}
_PASSWORD_PROBLEMS = {
    "too_short": "a password needs at least {limit} characters",
    "too_long": "a password may have at most {limit} characters",
    "spaces": "a password may not contain spaces",
}

_words(errors.InvalidName, lambda e: _NAME_PROBLEMS[e.problem].format(what=e.what, name=e.name, limit=e.limit))
_words(errors.NickInUse, lambda e: f"nickname {e.nick!r} is already in use; choose another")
_words(errors.NickRegistered, lambda e: f"{e.nick} is registered; use /login {e.nick} PASSWORD")
_words(errors.AlreadyNamed, lambda e: f"you are already known as {e.nick}")
_words(errors.NoSuchUser, lambda e: f"no user named {e.nick!r} is online")
_words(errors.AlreadyInRoom, lambda e: f"you are already in {e.room}")
_words(errors.NotInRoom, lambda e: f"you are not in {e.room}")
_words(errors.NoSuchRoom, lambda e: f"there is no room named {e.room}")
_words(errors.EmptyText, lambda e: "there is nothing to send")
_words(errors.PasswordRule, lambda e: _PASSWORD_PROBLEMS[e.problem].format(limit=e.limit))
_words(errors.AlreadyRegistered, lambda e: f"{e.nick} is already registered" + (" to you" if e.yours else ""))
_words(errors.NotRegistered, lambda e: f"{e.nick} is not registered")
_words(errors.NotIdentified, lambda e: "you are not logged in to a registered nickname")
_words(errors.WrongPassword, lambda e: f"wrong password for {e.nick}")
_words(errors.TooManyAttempts, lambda e: f"too many failed logins; try again in {e.seconds} seconds")
_words(errors.Busy, lambda e: "server busy; try again in a moment")
_words(errors.Unavailable, lambda e: "accounts cannot be checked just now; try again in a moment"
       if e.what == "accounts" else "the other servers cannot be reached just now; try again in a moment")
_words(errors.NotLoggedIn, lambda e: "choose a nickname first (or /login NICK PASSWORD, or /quit)")
_words(errors.AlreadyLoggedIn, lambda e: "you already have a nickname; use /nick NEW to change it")
_words(errors.MailboxFull, lambda e: f"{e.nick} has too many messages waiting; try again later")
_words(errors.NotStored, lambda e: "your message could not be saved, so it was not sent")
_words(errors.HistoryUnavailable, lambda e: f"history unavailable: {e.room}'s history could not be read; try again later")
_words(errors.SearchUnavailable, lambda e: "search unavailable; try again later")
_words(errors.ServerFull, lambda e: f"the server is full ({e.limit} connections); try again later")
_words(errors.TooManyFromAddress, lambda e: f"too many connections from your address (at most {e.limit})")
_words(errors.TooManyConnectionsRecently,
       lambda e: f"too many new connections from your address (at most {e.limit} in {_count_seconds(e.seconds)});"
                 " try again later")
_words(errors.ShuttingDown, lambda e: "the server is shutting down")
_words(errors.LoginTimedOut, lambda e: f"no nickname chosen within {_count_seconds(e.seconds)}")
_words(errors.InternalError, lambda e: "internal error; the line was not handled")
_words(errors.InputTooLong, lambda e: f"line longer than {e.limit} bytes; it was dropped")
_words(errors.NotUtf8, lambda e: "line is not valid UTF-8; it was dropped")
_words(errors.ExcessFlood, lambda e: "excess flood")
_words(errors.WrongProtocol, lambda e: "this is a chat server, not a web server")
_words(errors.NotOperator, lambda e: f"you are not an operator of {e.room}")
_words(errors.NotServerOperator, lambda e: "only a server operator may do that")
_words(errors.Banned, lambda e: f"you are banned from {e.room}")
_words(errors.InviteOnly, lambda e: f"{e.room} is invite-only; ask one of its operators to /invite you")
_words(errors.CannotSpeak, lambda e: f"{e.room} is moderated: only operators and voiced users may speak there"
       if e.why == "moderated" else f"you are banned from {e.room}, so you may not speak there")
_words(errors.UserNotInRoom, lambda e: f"{e.nick} is not in {e.room}")
_words(errors.UserInRoom, lambda e: f"{e.nick} is already in {e.room}")
_words(errors.Protected, lambda e: f"{e.nick} owns {e.room} or is a server operator; a room operator cannot do that")
_words(errors.InvalidMask, lambda e: f"{e.mask!r} is not a ban mask: give a nickname (* and ? allowed),"
                                     " account:NAME, or an address or CIDR network (server bans: no nicknames)")
_words(errors.InvalidDuration, lambda e: f"{e.text!r} is not a duration: give seconds, or a number with s, m, h, d"
                                         " or w (30m, 7d)")
_words(errors.NoSuchBan, lambda e: f"{e.mask} is not banned {'from ' + e.room if e.room else 'from the server'}")
_words(errors.UnknownMode, lambda e: f"unknown mode {e.mode!r}: the room modes are i (invite-only), m (moderated)"
                                     " and t (topic-locked)")
_words(errors.AlreadyClaimed, lambda e: f"{e.room} is already claimed by {e.owner}")
_words(errors.CannotClaim, lambda e: f"{e.room} belongs to the server; only a server operator may claim it")
_words(errors.ServerBanned, lambda e: "you are banned from this server"
       + (f" until {datetime.fromtimestamp(e.expires, UTC):%Y-%m-%d %H:%M} UTC" if e.expires else "")
       + (f": {e.reason}" if e.reason else ""))
_words(Usage, lambda e: f"usage: {e.usage}")
_words(UnknownCommand, lambda e: f"unknown command /{e.name} (try /help)")
_words(PasswordExpected, lambda e: f"enter the password for {e.nick}, /nick NAME for another nickname, or /quit")


def _count_seconds(seconds: float) -> str:
    return f"{seconds:g} second{'' if seconds == 1 else 's'}"
