"""
Moderation, on top of rooms and delivery: who may do what in a room, and server-wide bans.

L{Moderation} owns the rules: the first to enter a new room (other than the lobby) becomes its
operator; a claimed room gives operator status back to its owner and kept operators when they
enter; bans keep matching users out and quiet; an invite lets a user in past invite-only, and
an operator's past a ban too; a moderated room hears only operators and voiced users; a topic-locked room takes
its topic from operators only. Server operators (accounts named by C{--oper}) may do anything a
room operator may, in any room, and may kill, ban server-wide and write to everyone. It keeps
claimed rooms and server bans in the store, tells users what operators did through
L{Delivery}, and touches no transport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted import requests as rq
from chat_twisted.delivery import Delivery
from chat_twisted.errors import (
    AlreadyClaimed,
    Banned,
    CannotClaim,
    CannotSpeak,
    EmptyText,
    InviteOnly,
    NoSuchBan,
    NoSuchUser,
    NotIdentified,
    NotOperator,
    NotServerOperator,
    NotStored,
    Protected,
    ServerBanned,
    UnknownMode,
    UserInRoom,
    UserNotInRoom,
)
from chat_twisted.interfaces import IChatStore
from chat_twisted.masks import Who, matches, parse_mask
from chat_twisted.metrics import MetricsHooks
from chat_twisted.model import (
    LOBBY,
    Ban,
    BanList,
    ErrorReply,
    Event,
    Invited,
    Kicked,
    Killed,
    ModeChanged,
    RoomClaimed,
    RoomModes,
    ServerBanChanged,
    Wallops,
    name_key,
    sanitise,
)
from chat_twisted.rooms import Room, Rooms
from chat_twisted.peers import Peers
from chat_twisted.sessions import Directory, RemoteUser, Session

log = Logger()

#: The room modes: invite-only, moderated, topic-locked.
ROOM_MODES = frozenset("imt")
#: The reason others see when a server ban disconnects a user.
BANNED = "banned"

_Close = Callable[[Session, str, Event | None, str | None], None]


def who(session: Session) -> Who:
    """What a ban mask is matched against for C{session}."""
    return Who(session.nick or "", session.account or session.proven, session.address)


class Moderation:
    """
    Room operators, voices, modes, bans, invites and claims, server operators and server bans.

    @param operators: the account keys of the server operators.
    @param sessions: returns every admitted session (logged in or not), for server bans.
    @param close: shows a session an event, takes it out of the chat for a reason and closes it.
    """

    def __init__(
        self,
        clock: IReactorTime,
        store: IChatStore,
        delivery: Delivery,
        rooms: Rooms,
        directory: Directory,
        operators: Iterable[str],
        sessions: Callable[[], Iterable[Session]],
        close: _Close,
        metrics: MetricsHooks | None = None,
        peers: Peers | None = None,
    ) -> None:
        self._peers = peers or Peers()
        self._clock = clock
        self._store = store
        self._delivery = delivery
        self._rooms = rooms
        self._directory = directory
        self._operators = frozenset(name_key(account) for account in operators)
        self._sessions = sessions
        self._close = close
        self._metrics = metrics or MetricsHooks()
        self._server_bans: dict[str, Ban] = {}

    # --- start ---------------------------------------------------------------------------------

    def load(self) -> Deferred[None]:
        """Read the claimed rooms and the server bans from the store."""
        loading = self._store.claimed_rooms()
        loading.addCallback(self._rooms.load_claimed)
        loading.addCallback(lambda _: self._store.server_bans())
        loading.addCallback(self._load_server_bans)
        return loading

    def _load_server_bans(self, bans: list[Ban]) -> None:
        self._server_bans = {ban.mask: ban for ban in bans}

    # --- who may ----------------------------------------------------------------------------------

    def is_server_operator(self, session: Session) -> bool:
        """Whether C{session} is identified to an account named by C{--oper}."""
        return session.account is not None and session.account in self._operators

    def is_operator_account(self, account: str | None) -> bool:
        """Whether C{account} (a key, or None for a guest) is named by C{--oper}."""
        return account is not None and account in self._operators

    def _is_operator(self, session: Session, room: Room) -> bool:
        return session in room.operators or self.is_server_operator(session)

    def _require_operator(self, session: Session, room: Room) -> None:
        if not self._is_operator(session, room):
            raise NotOperator(room.name)

    def _require_server_operator(self, session: Session) -> None:
        if not self.is_server_operator(session):
            raise NotServerOperator()

    def _banned(self, session: Session, room: Room) -> bool:
        if not room.bans:
            return False
        user = who(session)
        return any(matches(mask, user) for mask in room.bans)

    def _keeps_operator(self, session: Session, room: Room) -> bool:
        """Whether a claimed C{room} makes C{session} an operator by its account."""
        account = session.account
        return account is not None and (account == room.owner or account in room.kept_operators)

    def check_entry(self, session: Session, name: str) -> None:
        """Raise why C{session} may not enter room C{name} (a ban, invite-only), if it may not."""
        room = self._rooms.get(name)
        if room is None or self.is_server_operator(session) or self._keeps_operator(session, room):
            return
        invited_by_operator = room.invited.get(session)
        if self._banned(session, room) and not invited_by_operator:
            self._metrics.ban_applied()
            raise Banned(room.name)
        if "i" in room.modes and invited_by_operator is None:
            raise InviteOnly(room.name)

    def entered(self, session: Session, room: Room) -> None:
        """
        C{session} has just entered C{room}: its invite is used up; the first to enter a new
        room becomes its operator, and a claimed room makes its owner and kept operators
        operators again (shown to the room).
        """
        room.invited.pop(session, None)
        if room.owner is None:
            if room.key != LOBBY and len(room.members) == 1 and not room.remote:
                room.operators.add(session)
        elif self._keeps_operator(session, room):
            room.operators.add(session)
            assert session.nick is not None
            self._delivery.to_all(room.members, ModeChanged(room.name, "", "+o", session.nick))
            self._peers.announce("mode", room.name, "", "+o", session.nick)

    def check_speak(self, session: Session, room: Room) -> None:
        """Raise L{CannotSpeak} if C{session} may not speak in C{room} (moderated, or banned)."""
        if session in room.operators or session in room.voiced or self.is_server_operator(session):
            return
        if "m" in room.modes:
            raise CannotSpeak(room.name, "moderated")
        if self._banned(session, room):
            self._metrics.ban_applied()
            raise CannotSpeak(room.name, "banned")

    def check_topic(self, session: Session, room: Room) -> None:
        """
        Raise L{NotOperator} if C{room} is topic-locked and C{session} is not its operator, or
        L{CannotSpeak} if a ban quiets C{session} there.
        """
        if "t" in room.modes:
            self._require_operator(session, room)
        elif room.bans and session not in room.voiced and not self._is_operator(session, room) \
                and self._banned(session, room):
            self._metrics.ban_applied()
            raise CannotSpeak(room.name, "banned")

    # --- room operators -------------------------------------------------------------------------

    def _member(self, room: Room, nick: str) -> Session | RemoteUser:
        """The member of C{room} called C{nick}, here or on another process."""
        target = self._directory.find(nick)
        if target is not None:
            if target not in room.members:
                raise UserNotInRoom(target.nick or "", room.name)
            return target
        remote = self._directory.remote.get(name_key(nick))
        if remote is None:
            raise NoSuchUser(sanitise(nick))
        if name_key(remote.nick) not in room.remote:
            raise UserNotInRoom(remote.nick, room.name)
        return remote

    def _protect(self, session: Session, target: Session | RemoteUser, room: Room) -> None:
        """Room operators cannot act against the room's owner or a server operator."""
        if self.is_server_operator(session) or target is session:
            return
        if target.account is not None and (target.account == room.owner or target.account in self._operators):
            raise Protected(target.nick or "", room.name)

    @staticmethod
    def _flagged(room: Room, target: Session | RemoteUser, letter: str) -> bool:
        """Whether C{target} is an operator (C{letter} C{o}) or voiced (C{v}) in C{room}."""
        if isinstance(target, Session):
            return target in (room.operators if letter == "o" else room.voiced)
        return letter in room.remote[name_key(target.nick)][1]

    def _flag(self, room: Room, target: Session | RemoteUser, letter: str, give: bool) -> None:
        """Make C{target} an operator or voiced in C{room} (C{give}), or no longer."""
        if isinstance(target, Session):
            group = room.operators if letter == "o" else room.voiced
            (group.add if give else group.discard)(target)
            self._peers.present(target)
        else:
            key = name_key(target.nick)
            user, flags = room.remote[key]
            room.remote[key] = (user, flags.replace(letter, "") + (letter if give else ""))

    def _announce_change(self, session: Session, room: Room, change: str, target: str = "") -> None:
        """Show the room a change C{session} made, and tell the other processes."""
        assert session.nick is not None
        self._tell_room(room, ModeChanged(room.name, session.nick, change, target), session)
        self._peers.announce("mode", room.name, session.nick, change, target)

    def _tell_room(self, room: Room, event: Event, actor: Session | None) -> None:
        """Show C{event} to everyone in C{room}, and to C{actor} (a server operator) if not in it."""
        if actor is None or actor in room.members:
            self._delivery.to_all(room.members, event)
        else:
            self._delivery.to_all((*room.members, actor), event)

    def set_operator(self, session: Session, request: rq.SetOperator) -> None:
        """Make a member of the room an operator, or no longer one (kept by account in a claimed room)."""
        room = self._operated_room(session, request.room)
        if not request.give and self._forget_kept_operator(session, room, request.nick):
            return
        target = self._member(room, request.nick)
        if not request.give:
            self._protect(session, target, room)
        if self._flagged(room, target, "o") == request.give:
            return
        self._flag(room, target, "o", request.give)
        if room.owner is not None and target.account is not None and target.account != room.owner:
            (room.kept_operators.add if request.give else room.kept_operators.discard)(target.account)
            self._save(room)
        self._announce_change(session, room, "+o" if request.give else "-o", target.nick or "")

    def _forget_kept_operator(self, session: Session, room: Room, nick: str) -> bool:
        """Deop a kept operator of a claimed room who is not in it (by account name); say whether it was one."""
        key = name_key(nick)
        present = self._directory.find(nick)
        if key not in room.kept_operators or (present is not None and present in room.members) or key in room.remote:
            return False
        room.kept_operators.discard(key)
        self._save(room)
        self._announce_change(session, room, "-o", sanitise(nick))
        return True

    def set_voice(self, session: Session, request: rq.SetVoice) -> None:
        """Let a member speak while the room is moderated, or no longer."""
        room = self._operated_room(session, request.room)
        target = self._member(room, request.nick)
        if self._flagged(room, target, "v") == request.give:
            return
        self._flag(room, target, "v", request.give)
        self._announce_change(session, room, "+v" if request.give else "-v", target.nick or "")

    def kick(self, session: Session, request: rq.Kick) -> None:
        """Remove a member from the room; everyone in it sees who did it and why."""
        room = self._operated_room(session, request.room)
        target = self._member(room, request.nick)
        self._protect(session, target, room)
        assert session.nick is not None
        reason = sanitise(request.reason).strip()
        nick = target.nick or ""
        log.info("{by} kicked {nick} from {room}", by=session.nick, nick=nick, room=room.name)
        if isinstance(target, Session):
            if session not in room.members:
                self._delivery.to(session, Kicked(room.name, session.nick, nick, reason))
            self._rooms.kick(room, target, session.nick, reason)
            return
        self._rooms.remote_leave(room, target)
        self._tell_room(room, Kicked(room.name, session.nick, nick, reason), session)
        self._peers.announce("kick", room.name, session.nick, nick, reason)

    def apply_change(self, room: Room, by: str, change: str, target: str) -> None:
        """Apply a change of C{room} another process's operator C{by} made (the mirror's)."""
        give, letter = change[0] == "+", change[1]
        if letter in "ov":
            try:
                member = self._member(room, target)
            except (NoSuchUser, UserNotInRoom):
                member = None
            if member is not None:
                self._flag(room, member, letter, give)
            account = member.account if member is not None else name_key(target)
            if letter == "o" and room.owner is not None and account is not None and account != room.owner:
                (room.kept_operators.add if give else room.kept_operators.discard)(account)
        elif letter == "b":
            if give:
                room.bans[target] = Ban(target, by, self._clock.seconds())
            else:
                room.bans.pop(target, None)
        elif letter in ROOM_MODES:
            (room.modes.add if give else room.modes.discard)(letter)

    def set_ban(self, session: Session, request: rq.SetBan) -> None:
        """Ban a mask from the room, or lift the ban; shown to the room as a mode change."""
        room = self._operated_room(session, request.room)
        mask = parse_mask(request.mask)
        assert session.nick is not None
        if request.add:
            if mask in room.bans:
                return
            room.bans[mask] = Ban(mask, session.nick, self._clock.seconds())
        elif room.bans.pop(mask, None) is None:
            raise NoSuchBan(mask, room.name)
        self._save(room)
        change = "+b" if request.add else "-b"
        log.info("{by} set {change} {mask} in {room}", by=session.nick, change=change, mask=mask, room=room.name)
        self._announce_change(session, room, change, mask)

    def list_bans(self, session: Session, request: rq.ListBans) -> None:
        """Show the asker the bans of a room."""
        room = self._rooms.find(request.room)
        self._delivery.to(session, BanList(room.name, tuple(room.bans[mask] for mask in sorted(room.bans))))

    def invite(self, session: Session, request: rq.Invite) -> None:
        """
        Let a user in past the room's invite-only mode (and, invited by an operator, its bans);
        they and the inviter are told.
        """
        room = self._room_of(session, request.room)
        if "i" in room.modes:
            self._require_operator(session, room)
        assert session.nick is not None
        by_operator = self._is_operator(session, room)
        target = self._directory.find(request.nick)
        if target is None:
            remote = self._directory.find_remote(request.nick)
            if remote is None:
                raise NoSuchUser(sanitise(request.nick))
            if name_key(remote.nick) in room.remote:
                raise UserInRoom(remote.nick, room.name)
            self._peers.announce("invite", room.name, session.nick, remote.nick, by_operator)
            self._delivery.to(session, Invited(room.name, session.nick, remote.nick))
            return
        assert target.nick is not None
        if target in room.members:
            raise UserInRoom(target.nick, room.name)
        room.invited[target] = room.invited.get(target, False) or by_operator
        invited = Invited(room.name, session.nick, target.nick)
        self._delivery.to(target, invited)
        if target is not session:
            self._delivery.to(session, invited)

    def set_modes(self, session: Session, request: rq.SetModes) -> None:
        """Show the room's modes, or change them (each change shown to the room)."""
        if request.changes is None:
            room = self._rooms.find(request.room)
            self._delivery.to(session, RoomModes(room.name, room.mode_letters(), room.owner))
            return
        changes = _parse_modes(request.changes)
        room = self._operated_room(session, request.room)
        assert session.nick is not None
        changed = False
        for add, letter in changes:
            if (letter in room.modes) == add:
                continue
            (room.modes.add if add else room.modes.discard)(letter)
            changed = True
            change = ("+" if add else "-") + letter
            log.info("{by} set {change} in {room}", by=session.nick, change=change, room=room.name)
            self._announce_change(session, room, change)
        if changed:
            self._save(room)

    def _room_of(self, session: Session, name: str) -> Room:
        """The room C{name}, which C{session} must be in (a server operator need not be)."""
        return self._rooms.find(name) if self.is_server_operator(session) else self._rooms.joined(session, name)

    def _operated_room(self, session: Session, name: str) -> Room:
        """The room C{name}, which C{session} must be in and operate (a server operator need not be in it)."""
        room = self._room_of(session, name)
        self._require_operator(session, room)
        return room

    def claim(self, session: Session, request: rq.Claim) -> None:
        """
        Claim a room for the user's account: announced once it is stored. Needs a registered
        user who operates the room; the lobby only by a server operator.
        """
        room = self._rooms.joined(session, request.room)
        if room.owner is not None:
            raise AlreadyClaimed(room.name, room.owner)
        if room.key == LOBBY and not self.is_server_operator(session):
            raise CannotClaim(room.name)
        self._require_operator(session, room)
        if session.account is None:
            raise NotIdentified()
        room.owner = account = session.account
        room.kept_operators = {member.account for member in room.operators
                               if member.account is not None and member.account != account}
        room.kept_operators.update(user.account for user, flags in room.remote.values()
                                   if "o" in flags and user.account is not None and user.account != account)
        nick = session.nick
        assert nick is not None

        def announce(_: None) -> None:
            log.info("{nick} claimed {room} for {account}", nick=nick, room=room.name, account=account)
            self._delivery.to_all(room.members, RoomClaimed(room.name, nick, account))
            self._peers.announce("claim", room.name, nick, account, sorted(room.kept_operators))

        def failed(failure: Failure) -> None:
            log.failure("keeping the claim of {room} failed", failure, room=room.name)
            room.owner = None
            self._delivery.write(session, ErrorReply(NotStored()))

        self._delivery.after(self._store.save_room(room.record()), announce, failed)

    def _save(self, room: Room) -> None:
        """Keep a claimed room's state (nothing for a room that is not claimed)."""
        if room.owner is None:
            return
        saving = self._store.save_room(room.record())
        saving.addErrback(lambda failure: log.failure("keeping the state of {room} failed", failure, room=room.name))

    # --- server operators -----------------------------------------------------------------------

    def kill(self, session: Session, request: rq.KillUser) -> None:
        """Disconnect a user; their rooms see who did it."""
        self._require_server_operator(session)
        assert session.nick is not None
        reason = sanitise(request.reason).strip()
        target = self._directory.find(request.nick)
        if target is None:
            remote = self._directory.remote.get(name_key(request.nick))
            if remote is None:
                raise NoSuchUser(sanitise(request.nick))
            log.info("{by} killed {nick}", by=session.nick, nick=remote.nick)
            self._peers.announce("kill", remote.nick, session.nick, reason)
            return
        shown = f"killed by {session.nick}" + (f": {reason}" if reason else "")
        log.info("{by} killed {nick}", by=session.nick, nick=target.nick)
        self._close(target, shown, Killed(session.nick, reason), f"killed by {session.nick}")

    def wall(self, session: Session, request: rq.Wall) -> None:
        """Send a message to everyone online."""
        self._require_server_operator(session)
        text = sanitise(request.text).strip()
        if not text:
            raise EmptyText()
        assert session.nick is not None
        log.info("{by} wrote to everyone", by=session.nick)
        now = self._clock.seconds()
        self._delivery.to_all(list(self._directory), Wallops(session.nick, text, now))
        self._peers.announce("wall", session.nick, text, now)

    async def server_ban(self, session: Session, request: rq.ServerBan) -> None:
        """
        Ban a mask from the server (stored first), then disconnect everyone it matches; or lift
        the ban. The operator is shown what was done.
        """
        self._require_server_operator(session)
        mask = parse_mask(request.mask, server=True)
        assert session.nick is not None
        if not request.add:
            if mask not in self._server_bans or not await self._store.remove_server_ban(mask):
                raise NoSuchBan(mask)
            lifted = self._server_bans.pop(mask, None) or Ban(mask, session.nick, self._clock.seconds())
            log.info("{by} lifted the server ban on {mask}", by=session.nick, mask=mask)
            self._delivery.to(session, ServerBanChanged(lifted, added=False))
            self._peers.announce("ungban", mask)
            return
        now = self._clock.seconds()
        expires = now + request.seconds if request.seconds is not None else None
        ban = Ban(mask, session.nick, now, expires, sanitise(request.reason).strip())
        await self._store.add_server_ban(ban)
        log.info("{by} banned {mask} from the server", by=session.nick, mask=mask)
        self._delivery.to(session, ServerBanChanged(ban, added=True))
        self._peers.announce("gban", ban.mask, ban.by, ban.when, ban.expires, ban.reason)
        self.apply_server_ban(ban, spare=session)

    def apply_server_ban(self, ban: Ban, spare: Session | None = None) -> None:
        """Put C{ban} in force here: close every session it matches (but C{spare} and server operators)."""
        self._server_bans[ban.mask] = ban
        for other in list(self._sessions()):
            if other is not spare and not other.closed and not self.is_server_operator(other) \
                    and matches(ban.mask, who(other)):
                self.refuse(other, ban)

    def lift_server_ban(self, mask: str) -> None:
        """Take the server ban of C{mask} out of force here (another process lifted it)."""
        self._server_bans.pop(mask, None)

    def list_server_bans(self, session: Session, request: rq.ListServerBans) -> None:
        """Show a server operator the server bans in force."""
        self._require_server_operator(session)
        now = self._clock.seconds()
        bans = tuple(self._server_bans[mask] for mask in sorted(self._server_bans)
                     if not _expired(self._server_bans[mask], now))
        self._delivery.to(session, BanList("", bans))

    def refuse_account(self, session: Session, account: str) -> bool:
        """
        If a server ban matches C{session} proving C{account} (a server operator's is never
        refused), close it and return True.
        """
        if not self._server_bans or account in self._operators:
            return False
        ban = self.server_ban_for(session, Who(session.nick or "", account, session.address))
        if ban is not None:
            self.refuse(session, ban)
        return ban is not None

    def server_ban_for(self, session: Session, user: Who | None = None) -> Ban | None:
        """The server ban in force that matches C{session} (or C{user}, given), if any."""
        if not self._server_bans:
            return None
        now, user = self._clock.seconds(), user or who(session)
        for ban in self._server_bans.values():
            if not _expired(ban, now) and matches(ban.mask, user):
                return ban
        return None

    def refuse(self, session: Session, ban: Ban) -> None:
        """Close C{session}, which C{ban} matches, telling it why."""
        self._metrics.ban_applied()
        log.info("server ban {mask} refused {peer}", mask=ban.mask, peer=session.peer)
        self._close(session, BANNED, ErrorReply(ServerBanned(ban.reason, ban.expires)), None)


def _expired(ban: Ban, now: float) -> bool:
    return ban.expires is not None and ban.expires <= now


def _parse_modes(changes: str) -> list[tuple[bool, str]]:
    """C{"+mt-i"} as (add, letter) pairs; raise L{UnknownMode} for a letter that is not a room mode."""
    parsed, add = [], True
    for char in changes.strip():
        if char in "+-":
            add = char == "+"
        elif char in ROOM_MODES:
            parsed.append((add, char))
        else:
            raise UnknownMode(sanitise(char))
    if not parsed:
        raise UnknownMode(sanitise(changes.strip()) or "")
    return parsed
