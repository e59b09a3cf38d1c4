"""
Rooms, on top of delivery: which rooms exist, who is in each, and their topics.

L{Rooms} owns every L{Room} and the topics of rooms nobody is in (so a room gets its topic back
when it is used again). It tells members what happens in their rooms through L{Delivery}; it does
not store messages (publishing does) and touches no transport.
"""

from __future__ import annotations


from chat_twisted.delivery import Delivery
from chat_twisted.errors import AlreadyInRoom, NoSuchRoom, NotInRoom
from chat_twisted.model import (
    LOBBY,
    Joined,
    Left,
    NickChanged,
    RoomSummary,
    TopicInfo,
    UserQuit,
    WhoList,
    check_name,
    name_key,
)
from chat_twisted.sessions import Session


class Room:
    """A named room: its topic (who set it, when) and its members in the order they joined."""

    __slots__ = ("name", "key", "topic", "topic_by", "topic_at", "members")

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = name_key(name)
        self.topic = ""
        self.topic_by = ""
        self.topic_at = 0.0
        self.members: dict[Session, None] = {}  # an ordered set

    def topic_info(self) -> TopicInfo:
        """The room's topic as an event."""
        return TopicInfo(self.name, self.topic, self.topic_by, self.topic_at)


class Rooms:
    """
    Every room in use (the lobby always), their members and topics.

    C{quiet} is set while the server shuts down: then nobody is told of others leaving.
    """

    def __init__(self, delivery: Delivery) -> None:
        self._delivery = delivery
        self._rooms: dict[str, Room] = {LOBBY: Room(LOBBY)}
        self._topics: dict[str, tuple[str, str, float]] = {}  # by room key: text, by, at
        self.quiet = False

    def load_topics(self, topics: dict[str, str]) -> None:
        """Take the topics kept in the store (by room key) for rooms that have none yet."""
        for key, text in topics.items():
            self._topics.setdefault(key, (text, "", 0.0))
        for room in self._rooms.values():
            self._restore_topic(room)

    def find(self, name: str) -> Room:
        """Return the room named C{name}; raise L{NoSuchRoom} if nobody is in it."""
        room = self._rooms.get(name_key(name))
        if room is None:
            raise NoSuchRoom(name)
        return room

    def joined(self, session: Session, name: str) -> Room:
        """Return C{session}'s room C{name}; raise L{NotInRoom} if it is not in it."""
        room = session.rooms.get(name_key(name))
        if room is None:
            raise NotInRoom(name)
        return room

    def enter(self, session: Session, name: str) -> Room:
        """
        Put C{session} in room C{name} (created if new, with the topic it last had); everyone in
        it sees the newcomer join, and the newcomer gets the topic if there is one.
        """
        assert session.nick is not None
        key = name_key(check_name(name, "room name"))
        if key in session.rooms:
            raise AlreadyInRoom(session.rooms[key].name)
        room = self._rooms.get(key)
        if room is None:
            room = self._rooms[key] = Room(name)
            self._restore_topic(room)
        room.members[session] = None
        session.rooms[key] = room
        self._delivery.to_all(room.members, Joined(room.name, session.nick))
        if room.topic:
            self._delivery.to(session, room.topic_info())
        return room

    def leave(self, session: Session, room: Room, reason: str) -> None:
        """Take C{session} out of C{room}; those who remain, and the leaver, see it leave."""
        assert session.nick is not None
        self._remove(session, room)
        if not self.quiet:
            self._delivery.to_all((*room.members, session), Left(room.name, session.nick, reason))

    def leave_all(self, session: Session, reason: str) -> None:
        """
        Take C{session} out of every room: each user who shared a room with it gets one
        L{UserQuit} naming the rooms they shared.
        """
        nick = session.nick
        assert nick is not None
        shared: dict[Session, list[str]] = {}
        for room in list(session.rooms.values()):
            self._remove(session, room)
            for member in room.members:
                shared.setdefault(member, []).append(room.name)
        if self.quiet:
            return
        groups: dict[tuple[str, ...], list[Session]] = {}
        for member, names in shared.items():
            groups.setdefault(tuple(names), []).append(member)
        for shared_rooms, members in groups.items():
            self._delivery.to_all(members, UserQuit(nick, reason, shared_rooms))

    def neighbours(self, session: Session) -> list[Session]:
        """Everyone who shares a room with C{session}, and C{session} itself, each once."""
        seen: dict[Session, None] = {session: None}
        for room in session.rooms.values():
            seen.update(room.members)
        return list(seen)

    def renamed(self, session: Session, old: str) -> None:
        """Tell C{session}'s neighbours it is now called by its (new) nickname."""
        assert session.nick is not None
        self._delivery.to_all(self.neighbours(session), NickChanged(old, session.nick))

    def set_topic(self, room: Room, text: str, by: str, at: float) -> None:
        """Make C{text} the topic of C{room} (it has been stored already)."""
        room.topic, room.topic_by, room.topic_at = text, by, at
        self._topics[room.key] = (text, by, at)

    def who(self, room: Room) -> WhoList:
        """The members of C{room}, sorted without regard to case."""
        members = sorted((member for member in room.members if member.nick), key=lambda s: name_key(s.nick or ""))
        return WhoList(
            room.name,
            tuple(member.nick or "" for member in members),
            tuple(member.nick or "" for member in members if member.away),
        )

    def summaries(self) -> tuple[RoomSummary, ...]:
        """Every room with its member count and topic, by name."""
        rooms = sorted(self._rooms.values(), key=lambda room: room.key)
        return tuple(RoomSummary(room.name, len(room.members), room.topic) for room in rooms)

    def __len__(self) -> int:
        return len(self._rooms)

    def _remove(self, session: Session, room: Room) -> None:
        del room.members[session]
        del session.rooms[room.key]
        if not room.members and room.key != LOBBY:
            del self._rooms[room.key]

    def _restore_topic(self, room: Room) -> None:
        room.topic, room.topic_by, room.topic_at = self._topics.get(room.key, ("", "", 0.0))
