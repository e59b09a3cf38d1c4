"""
How the WebSocket door shows each core event and error: one JSON object per event.

Pure functions from events to plain dicts (C{"type"} first); times travel as seconds since the
epoch, so that the page shows them in the reader's own time zone, and room messages carry their
store ids, so that history and live messages never double up. Errors carry a C{code} (the kind,
in snake_case), its parameters, and C{message}, an English description (the line protocol's
words). Nothing here touches a transport.
"""

from __future__ import annotations

import re
from dataclasses import fields
from functools import singledispatch
from typing import Any

from chat_twisted.errors import ChatError
from chat_twisted.model import (
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
)
from chat_twisted.wire.text import describe

#: The version of the JSON protocol, announced in the server's first message.
PROTOCOL_VERSION = 1

Json = dict[str, Any]


def error_code(error: ChatError) -> str:
    """The error's kind as a C{snake_case} code: C{NickInUse} is C{nick_in_use}."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(error).__name__).lower()


def render_error(error: ChatError, request: Json | None = None) -> Json:
    """An error object: its code, its parameters, its English words, and the request it answers."""
    result: Json = {"type": "error", "code": error_code(error)}
    result.update(vars(error))
    result["message"] = describe(error)
    if request is not None:
        result["request"] = request.get("type")
        if "id" in request:
            result["id"] = request["id"]
    return result


def stored_message(message: StoredMessage) -> Json:
    """One history message."""
    return {"id": message.id, "kind": message.kind, "nick": message.sender, "text": message.text,
            "time": message.when}


@singledispatch
def render(event: Event) -> Json | None:
    """Return C{event} as a JSON object, or None for an event this door does not show."""
    return None


def _plain(kind: str) -> Any:
    """A renderer that copies the event's fields under their own names."""

    def as_object(event: Any) -> Json:
        result: Json = {"type": kind}
        result.update((field.name, getattr(event, field.name)) for field in fields(event))
        return result

    return as_object


render.register(Welcome, _plain("welcome"))
render.register(Joined, _plain("joined"))
render.register(Left, _plain("left"))
render.register(NickChanged, _plain("nick"))
render.register(AccountChanged, _plain("account"))
render.register(AwayChanged, _plain("away"))
render.register(RecipientAway, _plain("recipient_away"))
render.register(Registered, _plain("registered"))
render.register(LoggedIn, _plain("logged_in"))
render.register(LoggedOut, _plain("logged_out"))
render.register(PasswordChanged, _plain("password_changed"))
render.register(AwaySet, _plain("away_set"))
render.register(OfflineQueued, _plain("offline_queued"))
render.register(Goodbye, _plain("goodbye"))
render.register(ServerShutdown, _plain("shutdown"))
render.register(ModeChanged, _plain("mode"))
render.register(Kicked, _plain("kicked"))
render.register(Invited, _plain("invited"))
render.register(RoomClaimed, _plain("claimed"))
render.register(RoomModes, _plain("modes"))
render.register(Killed, _plain("killed"))
render.register(RoomCutOff, _plain("cut_off"))


@render.register
def _(event: UserQuit) -> Json:
    return {"type": "quit", "nick": event.nick, "reason": event.reason, "rooms": list(event.rooms)}


@render.register
def _(event: Said) -> Json:
    return {"type": "message", "room": event.room, "id": event.id, "kind": "notice" if event.notice else "say",
            "nick": event.nick, "text": event.text, "time": event.when, "account": event.account}


@render.register
def _(event: Action) -> Json:
    return {"type": "message", "room": event.room, "id": event.id, "kind": "action", "nick": event.nick,
            "text": event.text, "time": event.when, "account": event.account}


@render.register
def _(event: PrivateMessage) -> Json:
    return {"type": "private", "from": event.sender, "to": event.recipient, "text": event.text,
            "time": event.when, "echo": event.echo, "stored": event.stored, "action": event.action,
            "notice": event.notice, "account": event.account}


@render.register
def _(event: TopicChanged) -> Json:
    return {"type": "topic", "room": event.room, "nick": event.nick, "topic": event.topic, "time": event.when,
            "id": event.id}


@render.register
def _(event: TopicInfo) -> Json:
    return {"type": "topic_info", "room": event.room, "topic": event.topic, "nick": event.nick,
            "time": event.when or None}


@render.register
def _(event: WhoList) -> Json:
    return {"type": "members", "room": event.room, "nicks": list(event.nicks), "away": list(event.away),
            "operators": list(event.operators), "voiced": list(event.voiced)}


@render.register
def _(event: UserList) -> Json:
    return {"type": "users", "asked": list(event.asked), "users": [
        {"nick": user.nick, "account": user.account, "away": user.away, "rooms": list(user.rooms),
         "idle": user.idle, "since": user.since, "server_operator": user.server_operator} for user in event.users]}


def ban(ban: Ban) -> Json:
    """One ban: its mask, who set it and when, until when (null: until lifted), and why."""
    return {"mask": ban.mask, "by": ban.by, "time": ban.when, "expires": ban.expires, "reason": ban.reason}


@render.register
def _(event: BanList) -> Json:
    return {"type": "bans", "room": event.room or None, "bans": [ban(item) for item in event.bans]}


@render.register
def _(event: ServerBanChanged) -> Json:
    return {"type": "gban", "added": event.added, "ban": ban(event.ban)}


@render.register
def _(event: Wallops) -> Json:
    return {"type": "wall", "nick": event.nick, "text": event.text, "time": event.when}


@render.register
def _(event: RoomList) -> Json:
    return {"type": "rooms", "rooms": [{"name": room.name, "members": room.members, "topic": room.topic}
                                       for room in event.rooms]}


@render.register
def _(event: ServerTime) -> Json:
    return {"type": "time", "iso": event.iso, "time": event.when}


@render.register
def _(event: History) -> Json:
    return {"type": "history", "room": event.room, "requested": event.requested,
            "messages": [stored_message(message) for message in event.messages]}


@render.register
def _(event: SearchResults) -> Json:
    return {"type": "search_results", "text": event.text,
            "messages": [{**stored_message(message), "room": message.room} for message in event.messages]}


@render.register
def _(event: ErrorReply) -> Json:
    return render_error(event.error)
