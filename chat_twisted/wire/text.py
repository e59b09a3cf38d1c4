"""
How the line protocol shows each core event: one or more lines of text, without line endings.

Pure functions; the only state is the time zone passed in. The line door encodes what these
return; nothing here touches a transport.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import singledispatch

from chat_twisted.model import (
    Action,
    ErrorReply,
    Event,
    Goodbye,
    HelpText,
    History,
    Joined,
    Left,
    NickChanged,
    NickPrompt,
    Notice,
    PasswordPrompt,
    PrivateMessage,
    RoomList,
    Said,
    ServerShutdown,
    ServerTime,
    StoredMessage,
    TopicChanged,
    TopicInfo,
    Welcome,
    WhoList,
)

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
        f" You are in {event.room}; type /help for commands."
    ]


@render.register
def _(event: Joined, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} joined {event.room}"]


@render.register
def _(event: Left, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}{event.nick} left {event.room} ({event.reason})"]


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
    return [f"[{clock_time(event.when, timezone)}] {mark} {event.sender}: {event.text}"]


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
    return [f"{SYSTEM}{_count(len(event.nicks), 'user')} in {event.room}: {', '.join(event.nicks)}"]


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
def _(event: Notice, timezone: tzinfo) -> list[str]:
    return [SYSTEM + event.text]


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


@render.register
def _(event: Goodbye, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}Goodbye! ({event.reason})"]


@render.register
def _(event: ServerShutdown, timezone: tzinfo) -> list[str]:
    return [f"{SYSTEM}server shutting down"]


@render.register
def _(event: ErrorReply, timezone: tzinfo) -> list[str]:
    return [f"error: {event.text}"]
