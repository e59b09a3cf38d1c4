"""
The mirror, on top of rooms, moderation and delivery: what the other processes of a cluster
announce, applied here.

L{Mirror} keeps this process's picture of the users of the other processes (in the
L{Directory} and in each L{Room}) and shows this process's users what happened elsewhere, each
event in its place in the bus's one order (L{Delivery.in_sequence}). It is the only reader of
the events the layers announce through L{chat_twisted.peers}; their fields, by kind:

    join: room, nick, account, away, flags, since   part: room, nick, reason
    quit: nick, reason                          down: reason (every user of that process)
    nick: old, new                              away: nick, message
    account: nick, account                      msg: room, kind, nick, text, when, id, account, notice
    pm: target, sender, text, when, notice, action, account
    mode: room, by, change, target              kick: room, by, target, reason
    invite: room, by, target, by_operator       claim: room, nick, account, operators
    kill: nick, by, reason                      evict: nick key
    wall: nick, text, when                      gban: mask, by, when, expires, reason
    ungban: mask

It decides no chat rule (the announcing process did) and touches no transport.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.logger import Logger

from chat_twisted.delivery import Delivery
from chat_twisted.model import (
    AccountChanged,
    Action,
    AwayChanged,
    Ban,
    Event,
    Goodbye,
    Invited,
    Joined,
    Kicked,
    Killed,
    Left,
    ModeChanged,
    NickChanged,
    PrivateMessage,
    RoomClaimed,
    RoomCutOff,
    Said,
    TopicChanged,
    Wallops,
    name_key,
)
from chat_twisted.moderation import Moderation
from chat_twisted.rooms import Room, Rooms, quit_notices
from chat_twisted.sessions import CONNECTION_LOST, Directory, RemoteUser, Session

log = Logger()

_Close = Callable[[Session, str, Event | None, str | None], None]


class Mirror:
    """
    Applies the other processes' events: their users' comings and goings, messages and
    moderation. C{close} ends one of this process's sessions (a kill or an eviction from elsewhere).
    """

    def __init__(self, delivery: Delivery, rooms: Rooms, directory: Directory, moderation: Moderation,
                 close: _Close) -> None:
        self._delivery = delivery
        self._rooms = rooms
        self._directory = directory
        self._moderation = moderation
        self._close = close
        self._apply: dict[str, Callable[[str, list[Any]], None]] = {
            "join": self._join, "part": self._part, "quit": self._quit, "down": self._down,
            "nick": self._nick, "away": self._away, "account": self._account, "msg": self._msg,
            "pm": self._pm, "mode": self._mode, "kick": self._kick, "invite": self._invite,
            "claim": self._claim, "kill": self._kill, "evict": self._evict, "wall": self._wall,
            "gban": self._gban, "ungban": self._ungban,
        }

    def apply(self, origin: str, kind: str, fields: list[Any]) -> None:
        """Apply one event process C{origin} announced; an unknown or malformed one is logged and dropped."""
        action = self._apply.get(kind)
        try:
            if action is None:
                raise ValueError(kind)
            action(origin, fields)
        except (ValueError, TypeError, KeyError, IndexError):
            log.warn("dropped a {kind!r} event from process {origin} that could not be applied", kind=kind,
                     origin=origin)

    # --- who is where ---------------------------------------------------------------------------

    def load(self, users: list[tuple[str, dict[str, Any]]]) -> None:
        """
        Take the users the live processes announced (read when the link starts or comes back):
        those who are new are shown joining, those no longer there leaving ("connection lost").
        """
        present = {name_key(entry["nick"]): (origin, entry) for origin, entry in users}
        for key, user in list(self._directory.remote.items()):
            if key not in present or present[key][0] != user.process:
                self._remove(user, CONNECTION_LOST)
        for origin, entry in present.values():
            user = self._user(origin, entry["nick"])
            user.account, user.away, user.since = entry.get("account"), entry.get("away", ""), entry.get("since", 0.0)
            rooms = entry.get("rooms", {})
            for room in self._rooms.remote_members(user):
                if room.name not in rooms and room.key not in {name_key(name) for name in rooms}:
                    self._leave(user, room, CONNECTION_LOST)
            for name, flags in rooms.items():
                room = self._rooms.open(name)
                if name_key(user.nick) not in room.remote:
                    self._enter(user, room, flags)

    def cut(self) -> None:
        """The link was lost for a while: tell this process's users of rooms shared with others."""
        for room in self._rooms:
            if room.members:
                self._delivery.in_sequence(room.members, RoomCutOff(room.name))

    def _user(self, origin: str, nick: str) -> RemoteUser:
        key = name_key(nick)
        user = self._directory.remote.get(key)
        if user is None or user.process != origin:
            if user is not None:
                self._remove(user, CONNECTION_LOST)
            user = self._directory.remote[key] = RemoteUser(nick, origin)
        return user

    def _enter(self, user: RemoteUser, room: Room, flags: str) -> None:
        large = self._rooms.large(room)
        self._rooms.remote_enter(room, user, flags)
        if large:  # shown joining once they speak
            room.unseen.add(name_key(user.nick))
        else:
            self._delivery.in_sequence(room.members, Joined(room.name, user.nick))

    def _leave(self, user: RemoteUser, room: Room, reason: str) -> None:
        unseen = name_key(user.nick) in room.unseen
        self._rooms.remote_leave(room, user)
        if not unseen:
            self._delivery.in_sequence(room.members, Left(room.name, user.nick, reason))

    def _remove(self, user: RemoteUser, reason: str) -> None:
        """Take C{user} out of every room and the directory; the users who shared a room see one quit each."""
        shared: dict[Session, list[str]] = {}
        for room in self._rooms.remote_members(user):
            for member in () if name_key(user.nick) in room.unseen else room.members:
                shared.setdefault(member, []).append(room.name)
            self._rooms.remote_leave(room, user)
        self._directory.remote.pop(name_key(user.nick), None)
        for members, event in quit_notices(user.nick, reason, shared):
            self._delivery.in_sequence(members, event)

    def _known(self, origin: str, nick: str) -> RemoteUser | None:
        user = self._directory.remote.get(name_key(nick))
        return user if user is not None and user.process == origin else None

    def _join(self, origin: str, fields: list[Any]) -> None:
        name, nick, account, away, flags, since = fields
        user = self._user(origin, nick)
        user.account, user.away, user.since = account, away, since
        self._enter(user, self._rooms.open(name), flags)

    def _part(self, origin: str, fields: list[Any]) -> None:
        name, nick, reason = fields
        user, room = self._known(origin, nick), self._rooms.get(name)
        if user is not None and room is not None:
            self._leave(user, room, reason)

    def _quit(self, origin: str, fields: list[Any]) -> None:
        nick, reason = fields
        user = self._known(origin, nick)
        if user is not None:
            self._remove(user, reason)

    def _down(self, origin: str, fields: list[Any]) -> None:
        (reason,) = fields
        for user in [user for user in self._directory.remote.values() if user.process == origin]:
            self._remove(user, reason)

    def _nick(self, origin: str, fields: list[Any]) -> None:
        old, new = fields
        user = self._known(origin, old)
        if user is None:
            return
        rooms = self._rooms.remote_members(user)
        flags = {room.key: room.remote[name_key(old)][1] for room in rooms}
        for room in rooms:
            room.remote.pop(name_key(old), None)
        self._directory.remote.pop(name_key(old), None)
        user.nick = new
        self._directory.remote[name_key(new)] = user
        neighbours: dict[Session, None] = {}
        for room in rooms:
            room.remote[name_key(new)] = (user, flags[room.key])
            if name_key(old) in room.unseen:
                room.unseen.discard(name_key(old))
                room.unseen.add(name_key(new))
            neighbours.update(room.members)
        self._delivery.in_sequence(neighbours, NickChanged(old, new))

    def _neighbours(self, user: RemoteUser) -> list[Session]:
        neighbours: dict[Session, None] = {}
        for room in self._rooms.remote_members(user):
            neighbours.update(room.members)
        return list(neighbours)

    def _away(self, origin: str, fields: list[Any]) -> None:
        nick, message = fields
        user = self._known(origin, nick)
        if user is not None:
            user.away = message
            self._delivery.in_sequence(self._neighbours(user), AwayChanged(user.nick, message))

    def _account(self, origin: str, fields: list[Any]) -> None:
        nick, account = fields
        user = self._known(origin, nick)
        if user is not None:
            user.account = account
            self._delivery.in_sequence(self._neighbours(user), AccountChanged(user.nick, account))

    # --- messages -----------------------------------------------------------------------------

    def _msg(self, origin: str, fields: list[Any]) -> None:
        name, kind, nick, text, when, id, account, notice = fields
        room = self._rooms.get(name)
        if room is None or not room.members:
            return
        event: Event
        if kind == "say":
            event = Said(room.name, nick, text, when, notice, id, account)
        elif kind == "action":
            event = Action(room.name, nick, text, when, id, account)
        else:
            self._rooms.set_topic(room, text, nick, when)
            event = TopicChanged(room.name, nick, text, when, id)
        if room.unseen and self._rooms.speaks(room, nick):  # a large room: shown joining only now
            self._delivery.in_sequence(room.members, Joined(room.name, nick))
        recipients = [member for member in room.members if not member.seen or id not in member.seen.get(room.key, ())]
        self._delivery.in_sequence(recipients, event)

    def _pm(self, origin: str, fields: list[Any]) -> None:
        target, sender, text, when, notice, action, account = fields
        session = self._directory.find(target) or self._directory.find_account(target)
        if session is not None and session.nick is not None:
            event = PrivateMessage(sender, session.nick, text, when, notice=notice, action=action, account=account)
            self._delivery.in_sequence((session,), event)

    def _wall(self, origin: str, fields: list[Any]) -> None:
        nick, text, when = fields
        self._delivery.in_sequence(list(self._directory), Wallops(nick, text, when))

    # --- moderation ---------------------------------------------------------------------------

    def _mode(self, origin: str, fields: list[Any]) -> None:
        name, by, change, target = fields
        room = self._rooms.get(name)
        if room is None:
            return
        self._moderation.apply_change(room, by, change, target)
        self._delivery.in_sequence(room.members, ModeChanged(room.name, by, change, target))

    def _kick(self, origin: str, fields: list[Any]) -> None:
        name, by, target, reason = fields
        room = self._rooms.get(name)
        if room is None:
            return
        session = self._directory.find(target)
        if session is not None and session in room.members:
            self._rooms.kick(room, session, by, reason, announce=False)
            return
        remote = self._directory.remote.get(name_key(target))
        if remote is not None:
            self._rooms.remote_leave(room, remote)
        self._delivery.in_sequence(room.members, Kicked(room.name, by, target, reason))

    def _invite(self, origin: str, fields: list[Any]) -> None:
        name, by, target, by_operator = fields
        session = self._directory.find(target)
        room = self._rooms.get(name)
        if session is None or room is None:
            return
        room.invited[session] = room.invited.get(session, False) or bool(by_operator)
        self._delivery.in_sequence((session,), Invited(room.name, by, session.nick or target))

    def _claim(self, origin: str, fields: list[Any]) -> None:
        name, nick, account, operators = fields
        room = self._rooms.open(name)
        room.owner, room.kept_operators = account, set(operators)
        self._delivery.in_sequence(room.members, RoomClaimed(room.name, nick, account))

    def _kill(self, origin: str, fields: list[Any]) -> None:
        nick, by, reason = fields
        session = self._directory.find(nick)
        if session is not None:
            shown = f"killed by {by}" + (f": {reason}" if reason else "")
            self._close(session, shown, Killed(by, reason), f"killed by {by}")

    def _evict(self, origin: str, fields: list[Any]) -> None:
        (key,) = fields
        session = self._directory.find(key)
        if session is not None:
            reason = "logged in from elsewhere"
            self._close(session, reason, Goodbye(reason), None)

    def _gban(self, origin: str, fields: list[Any]) -> None:
        mask, by, when, expires, reason = fields
        self._moderation.apply_server_ban(Ban(mask, by, when, expires, reason))

    def _ungban(self, origin: str, fields: list[Any]) -> None:
        (mask,) = fields
        self._moderation.lift_server_ban(mask)
