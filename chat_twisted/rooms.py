"""
Rooms, on top of delivery: which rooms exist, who is in each, their topics and their moderation state.

L{Rooms} owns every L{Room} and the topics of rooms nobody is in (so a room gets its topic back
when it is used again). A claimed room lives on while nobody is in it. It tells members what
happens in their rooms through L{Delivery}; it does not store anything (publishing and
moderation do), decides no moderation rule (moderation does) and touches no transport.
"""

from __future__ import annotations

from collections.abc import Iterator


from chat_twisted.delivery import Delivery
from chat_twisted.errors import AlreadyInRoom, NoSuchRoom, NotInRoom
from chat_twisted.model import (
    LOBBY,
    Ban,
    Joined,
    Kicked,
    Left,
    NickChanged,
    RoomRecord,
    RoomSummary,
    TopicInfo,
    UserQuit,
    WhoList,
    check_name,
    name_key,
)
from chat_twisted.peers import Peers
from chat_twisted.sessions import RemoteUser, Session


#: Above this many members, a room is not shown each newcomer joining, only those who then
#: speak (just before their first words), and not shown those who leave without having spoken:
#: a storm of N logins into one room costs O(N), not O(N^2). /who and history stay exact.
QUIET_JOINS_ABOVE = 500


def quit_notices(nick: str, reason: str, shared: dict[Session, list[str]]) -> list[tuple[list[Session], UserQuit]]:
    """
    The L{UserQuit} events that tell whoever shared rooms with C{nick} (C{shared}: each such
    member and the names of the rooms shared) of its leaving: one per set of rooms, with its members.
    """
    groups: dict[tuple[str, ...], list[Session]] = {}
    for member, names in shared.items():
        groups.setdefault(tuple(names), []).append(member)
    return [(members, UserQuit(nick, reason, rooms)) for rooms, members in groups.items()]


class Room:
    """
    A named room: its topic (who set it, when), its members in the order they joined, and its
    moderation state: the members who are its operators and who are voiced, its modes (letters
    of C{"imt"}), its bans by mask, the users invited in (by an operator or not), and, once claimed, its owner's account
    key and the account keys of the operators it keeps.
    """

    __slots__ = ("name", "key", "topic", "topic_by", "topic_at", "members", "operators", "voiced", "modes",
                 "bans", "invited", "owner", "kept_operators", "remote", "unseen")

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = name_key(name)
        self.topic = ""
        self.topic_by = ""
        self.topic_at = 0.0
        self.members: dict[Session, None] = {}  # an ordered set
        self.operators: set[Session] = set()
        self.voiced: set[Session] = set()
        self.modes: set[str] = set()
        self.bans: dict[str, Ban] = {}
        self.invited: dict[Session, bool] = {}  # whether an operator invited them
        self.owner: str | None = None
        self.kept_operators: set[str] = set()
        self.remote: dict[str, tuple[RemoteUser, str]] = {}  # users of other processes by key: user, flags "o"/"v"/""
        self.unseen: set[str] = set()  # keys of members whose joining the room was not shown (a large room)

    @property
    def empty(self) -> bool:
        """Whether nobody, here or on another process, is in the room."""
        return not self.members and not self.remote

    def topic_info(self) -> TopicInfo:
        """The room's topic as an event."""
        return TopicInfo(self.name, self.topic, self.topic_by, self.topic_at)

    def mode_letters(self) -> str:
        """The room's modes as sorted letters."""
        return "".join(sorted(self.modes))

    def record(self) -> RoomRecord:
        """What a claimed room keeps across restarts."""
        assert self.owner is not None
        return RoomRecord(self.key, self.name, self.owner, tuple(sorted(self.kept_operators)),
                          tuple(self.bans[mask] for mask in sorted(self.bans)), self.mode_letters())

    def restore(self, record: RoomRecord) -> None:
        """Take the kept state of a claimed room."""
        self.owner = record.owner
        self.kept_operators = set(record.operators)
        self.bans = {ban.mask: ban for ban in record.bans}
        self.modes = set(record.modes)


class Rooms:
    """
    Every room in use (the lobby always), their members and topics.

    C{quiet} is set while the server shuts down: then nobody is told of others leaving.
    """

    def __init__(self, delivery: Delivery, peers: Peers | None = None,
                 quiet_joins_above: int = QUIET_JOINS_ABOVE) -> None:
        self._delivery = delivery
        self._peers = peers or Peers()
        self.quiet_joins_above = quiet_joins_above
        self._rooms: dict[str, Room] = {LOBBY: Room(LOBBY)}
        self._topics: dict[str, tuple[str, str, float]] = {}  # by room key: text, by, at
        self.quiet = False

    def load_topics(self, topics: dict[str, str]) -> None:
        """Take the topics kept in the store (by room key) for rooms that have none yet."""
        for key, text in topics.items():
            self._topics.setdefault(key, (text, "", 0.0))
        for room in self._rooms.values():
            self._restore_topic(room)

    def load_claimed(self, records: list[RoomRecord]) -> None:
        """Bring back the claimed rooms kept in the store; they live on while nobody is in them."""
        for record in records:
            room = self._rooms.get(record.key)
            if room is None:
                room = self._rooms[record.key] = Room(record.name)
                self._restore_topic(room)
            room.restore(record)

    def find(self, name: str) -> Room:
        """Return the room named C{name}; raise L{NoSuchRoom} if it does not exist."""
        room = self._rooms.get(name_key(name))
        if room is None:
            raise NoSuchRoom(name)
        return room

    def get(self, name: str) -> Room | None:
        """Return the room named C{name}, or None if it does not exist (yet)."""
        return self._rooms.get(name_key(name))

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
        room = self.open(name)
        room.members[session] = None
        session.rooms[key] = room
        if self.large(room):
            room.unseen.add(name_key(session.nick))
            self._delivery.to(session, Joined(room.name, session.nick))
        else:
            self._delivery.to_all(room.members, Joined(room.name, session.nick))
        if room.topic:
            self._delivery.to(session, room.topic_info())
        return room

    def leave(self, session: Session, room: Room, reason: str) -> None:
        """Take C{session} out of C{room}; those who remain, and the leaver, see it leave."""
        assert session.nick is not None
        unseen = self._unseen(room, session.nick)
        self._remove(session, room)
        if not self.quiet:
            shown_to = (session,) if unseen else (*room.members, session)
            self._delivery.to_all(shown_to, Left(room.name, session.nick, reason))
            self._peers.announce("part", room.name, session.nick, reason)
            self._peers.present(session)

    def leave_all(self, session: Session, reason: str) -> None:
        """
        Take C{session} out of every room: each user who shared a room with it gets one
        L{UserQuit} naming the rooms they shared.
        """
        nick = session.nick
        assert nick is not None
        shared: dict[Session, list[str]] = {}
        for room in list(session.rooms.values()):
            unseen = self._unseen(room, nick)
            self._remove(session, room)
            if unseen or self.quiet:  # nobody is to be told (while shutting down: everyone is leaving)
                continue
            for member in room.members:
                shared.setdefault(member, []).append(room.name)
        if self.quiet:
            return
        self._peers.announce("quit", nick, reason)
        self._peers.absent(nick)
        for members, event in quit_notices(nick, reason, shared):
            self._delivery.to_all(members, event)

    def kick(self, room: Room, target: Session, by: str, reason: str, announce: bool = True) -> None:
        """
        Take C{target} out of C{room}: everyone in it, C{target} too, sees who removed them and
        why; the other processes are told unless not C{announce} (they told us).
        """
        assert target.nick is not None
        if announce:
            self._delivery.to_all(room.members, Kicked(room.name, by, target.nick, reason))
            self._peers.announce("kick", room.name, by, target.nick, reason)
        else:
            self._delivery.in_sequence(room.members, Kicked(room.name, by, target.nick, reason))
        self._remove(target, room)
        self._peers.present(target)

    # --- users of other processes (the mirror's) --------------------------------------------------

    def open(self, name: str) -> Room:
        """The room C{name}, made (with the topic it last had) if it does not exist here yet."""
        key = name_key(name)
        room = self._rooms.get(key)
        if room is None:
            room = self._rooms[key] = Room(name)
            self._restore_topic(room)
        return room

    def remote_enter(self, room: Room, user: RemoteUser, flags: str) -> None:
        """Record that C{user}, of another process, is in C{room}, with C{flags}."""
        room.remote[name_key(user.nick)] = (user, flags)
        user.rooms[room.key] = None

    def remote_leave(self, room: Room, user: RemoteUser) -> None:
        """Record that C{user}, of another process, has left C{room}."""
        room.remote.pop(name_key(user.nick), None)
        room.unseen.discard(name_key(user.nick))
        user.rooms.pop(room.key, None)
        self._forget_if_unused(room)

    def __iter__(self) -> Iterator[Room]:
        """Every room in use, in no order."""
        return iter(list(self._rooms.values()))

    def remote_members(self, user: RemoteUser) -> list[Room]:
        """The rooms C{user}, of another process, is in (that this process knows)."""
        return [self._rooms[key] for key in user.rooms if key in self._rooms]

    def neighbours(self, session: Session) -> list[Session]:
        """Everyone who shares a room with C{session}, and C{session} itself, each once."""
        seen: dict[Session, None] = {session: None}
        for room in session.rooms.values():
            seen.update(room.members)
        return list(seen)

    def renamed(self, session: Session, old: str) -> None:
        """Tell C{session}'s neighbours it is now called by its (new) nickname."""
        assert session.nick is not None
        for room in session.rooms.values():
            if self._unseen(room, old):
                room.unseen.add(name_key(session.nick))
        self._delivery.to_all(self.neighbours(session), NickChanged(old, session.nick))
        self._peers.announce("nick", old, session.nick)
        self._peers.absent(old)
        self._peers.present(session)

    # --- large rooms: joins shown once the newcomer speaks ------------------------------------------

    def large(self, room: Room) -> bool:
        """Whether C{room} has more members (here and elsewhere) than joins are shown for."""
        return 0 < self.quiet_joins_above < len(room.members) + len(room.remote)

    @staticmethod
    def _unseen(room: Room, nick: str) -> bool:
        """Forget that C{nick}'s joining C{room} was not shown; say whether it was not."""
        if not room.unseen:
            return False
        key = name_key(nick)
        if key not in room.unseen:
            return False
        room.unseen.discard(key)
        return True

    def speaks(self, room: Room, nick: str) -> bool:
        """
        C{nick} is about to speak in C{room}: if its joining was not shown, it is to be shown now
        (return True; the caller shows it, in its place in the order).
        """
        return self._unseen(room, nick)

    def set_topic(self, room: Room, text: str, by: str, at: float) -> None:
        """Make C{text} the topic of C{room} (it has been stored already)."""
        room.topic, room.topic_by, room.topic_at = text, by, at
        self._topics[room.key] = (text, by, at)

    def who(self, room: Room) -> WhoList:
        """The members of C{room}, sorted without regard to case."""
        people = [(member.nick, member.away, member in room.operators, member in room.voiced)
                  for member in room.members if member.nick]
        people += [(user.nick, user.away, "o" in flags, "v" in flags) for user, flags in room.remote.values()]
        people.sort(key=lambda person: name_key(person[0] or ""))
        return WhoList(
            room.name,
            tuple(nick or "" for nick, _, _, _ in people),
            tuple(nick or "" for nick, away, _, _ in people if away),
            tuple(nick or "" for nick, _, operator, _ in people if operator),
            tuple(nick or "" for nick, _, _, voiced in people if voiced),
        )

    def summaries(self) -> tuple[RoomSummary, ...]:
        """Every room with its member count and topic, by name."""
        rooms = sorted(self._rooms.values(), key=lambda room: room.key)
        return tuple(RoomSummary(room.name, len(room.members) + len(room.remote), room.topic) for room in rooms)

    def __len__(self) -> int:
        return len(self._rooms)

    def _remove(self, session: Session, room: Room) -> None:
        del room.members[session]
        del session.rooms[room.key]
        room.operators.discard(session)
        room.voiced.discard(session)
        if room.unseen:
            room.unseen.discard(name_key(session.nick or ""))
        if session.seen:
            session.seen.pop(room.key, None)
        self._forget_if_unused(room)

    def _forget_if_unused(self, room: Room) -> None:
        """Forget a room nobody is in (here or elsewhere), unless it is the lobby or claimed."""
        if room.empty:
            room.invited.clear()
            if room.key != LOBBY and room.owner is None:
                del self._rooms[room.key]

    def _restore_topic(self, room: Room) -> None:
        room.topic, room.topic_by, room.topic_at = self._topics.get(room.key, ("", "", 0.0))
