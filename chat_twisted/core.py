"""
The chat itself: who is connected, under which nickname, in which room, and what every command does.

L{ChatService} owns all shared chat state and every chat rule. It does no I/O: it never touches a
transport, opens a socket, imports the reactor or formats wire text. It reaches users only through
L{IChatClient.deliver} and L{IChatClient.close}, and reads time only from the clock it is given.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chat_twisted.commands import HELP, Command, Message, parse_line
from chat_twisted.errors import BadArguments, ChatError, NickInUse, NoSuchUser, NotAllowed, UnknownCommand
from chat_twisted.interfaces import IChatClient
from chat_twisted.model import (
    LOBBY,
    Action,
    ErrorReply,
    Event,
    Goodbye,
    HelpText,
    Joined,
    Left,
    NickChanged,
    NickPrompt,
    PrivateMessage,
    RoomList,
    RoomSummary,
    Said,
    ServerTime,
    TopicChanged,
    TopicInfo,
    Welcome,
    WhoList,
    check_name,
    name_key,
    sanitise,
)

log = Logger()

#: The reason others are shown when a connection ends without C{/quit}.
CONNECTION_LOST = "connection lost"


class Session:
    """
    One connection's standing in the chat: its client, nickname (None until logged in) and room.

    Created by L{ChatService.connect} and handed to the door, which passes each of the user's lines
    to L{handle_line} and reports the end of the connection with L{disconnected}. The core alone
    changes its fields.
    """

    __slots__ = ("client", "peer", "nick", "room", "closed", "_service")

    def __init__(self, service: ChatService, client: IChatClient, peer: str) -> None:
        self._service = service
        self.client = client
        self.peer = peer
        self.nick: str | None = None
        self.room: Room | None = None
        self.closed = False

    def handle_line(self, line: str) -> None:
        """Act on one decoded line the user sent; replies and errors arrive through the client."""
        self._service.handle_line(self, line)

    def disconnected(self, reason: str = CONNECTION_LOST) -> None:
        """Tell the core the connection has ended; safe to call more than once."""
        self._service.disconnect(self, reason)


class Room:
    """A named room: its topic and its members in the order they joined. Owned by L{ChatService}."""

    __slots__ = ("name", "topic", "members")

    def __init__(self, name: str) -> None:
        self.name = name
        self.topic = ""
        self.members: dict[Session, None] = {}  # an ordered set


class ChatService(Service):
    """
    The chat core: nickname registry, rooms, topics and command handling for every door.

    @param clock: where the time of messages and C{/time} comes from.
    @param timezone: the zone times are shown in (the server's local zone if None).
    """

    def __init__(self, clock: IReactorTime, timezone: tzinfo | None = None) -> None:
        self.clock = clock
        self.timezone: tzinfo = timezone or datetime.now().astimezone().tzinfo  # type: ignore[assignment]
        self._users: dict[str, Session] = {}
        self._rooms: dict[str, Room] = {LOBBY: Room(LOBBY)}

    # --- what doors call ---------------------------------------------------------------------

    def connect(self, client: IChatClient, peer: str) -> Session:
        """Start a session for a new connection and ask it for a nickname."""
        session = Session(self, client, peer)
        self._deliver(session, NickPrompt(first=True))
        return session

    def handle_line(self, session: Session, line: str) -> None:
        """
        Act on one line from C{session}: a nickname before login, then a message or command.

        Expected problems reach the user as one L{ErrorReply}; unexpected ones are logged and
        reported as an internal error. Either way the session stays open.
        """
        if session.closed:
            return
        try:
            if session.nick is None:
                self._choose_first_nick(session, line)
            else:
                self._handle_request(session, line)
        except ChatError as error:
            self._deliver(session, ErrorReply(error.text))
            if session.nick is None and not session.closed:
                self._deliver(session, NickPrompt())
        except Exception:
            log.failure("unexpected error handling a line from {peer}", peer=session.peer)
            self._deliver(session, ErrorReply("internal error; the line was not handled"))

    def disconnect(self, session: Session, reason: str = CONNECTION_LOST) -> None:
        """Forget C{session}; its room sees it leave with C{reason}. Idempotent."""
        if session.closed:
            return
        session.closed = True
        if session.nick is None:
            return
        self._leave_room(session, reason)
        del self._users[name_key(session.nick)]
        log.info("{nick} left ({reason})", nick=session.nick, reason=reason)

    @property
    def online(self) -> int:
        """How many users are logged in."""
        return len(self._users)

    # --- login -------------------------------------------------------------------------------

    def _choose_first_nick(self, session: Session, line: str) -> None:
        request = parse_line(line.strip())
        if isinstance(request, Command):
            if request.name == "quit":
                self.cmd_quit(session, request.args)
                return
            if request.name != "nick":
                raise NotAllowed(f"choose a nickname first (or /quit); /{sanitise(request.name)} can wait")
            nick = request.args
        else:
            nick = request.text.strip()
        self._claim_nick(session, nick)
        self._users[name_key(nick)] = session
        session.nick = nick
        log.info("{nick} logged in from {peer}", nick=nick, peer=session.peer)
        self._deliver(session, Welcome(nick, self.online, LOBBY))
        self._enter_room(session, self._rooms[LOBBY])

    def _claim_nick(self, session: Session, nick: str) -> None:
        """Raise unless C{nick} is valid and free for C{session}."""
        check_name(nick, "nickname")
        holder = self._users.get(name_key(nick))
        if holder is not None and holder is not session:
            raise NickInUse(f"nickname {nick!r} is already in use; choose another")

    # --- messages and commands ---------------------------------------------------------------

    def _handle_request(self, session: Session, line: str) -> None:
        request = parse_line(line)
        if isinstance(request, Message):
            self._say(session, request.text)
            return
        handler = getattr(self, "cmd_" + request.name, None)
        if handler is None:
            raise UnknownCommand(f"unknown command /{sanitise(request.name)} (try /help)")
        handler(session, request.args)

    def _say(self, session: Session, text: str) -> None:
        text = sanitise(text)
        if not text.strip():
            return
        assert session.room is not None and session.nick is not None
        self._broadcast(session.room, Said(session.room.name, session.nick, text, self.clock.seconds()))

    def cmd_nick(self, session: Session, args: str) -> None:
        """C{/nick NEW}: rename; the room sees the change."""
        new = args
        if not new:
            raise BadArguments("usage: /nick NEW")
        old = session.nick
        assert old is not None and session.room is not None
        if new == old:
            raise NotAllowed(f"you are already known as {old}")
        self._claim_nick(session, new)
        del self._users[name_key(old)]
        self._users[name_key(new)] = session
        session.nick = new
        log.info("{old} is now known as {new}", old=old, new=new)
        self._broadcast(session.room, NickChanged(old, new))

    def cmd_who(self, session: Session, args: str) -> None:
        """C{/who}: the nicknames in the user's room."""
        room = session.room
        assert room is not None
        nicks = sorted((member.nick for member in room.members if member.nick), key=name_key)
        self._deliver(session, WhoList(room.name, tuple(nicks)))

    def cmd_time(self, session: Session, args: str) -> None:
        """C{/time}: the server's date and time in ISO 8601 with its UTC offset."""
        now = datetime.fromtimestamp(self.clock.seconds(), self.timezone)
        self._deliver(session, ServerTime(now.isoformat(timespec="seconds")))

    def cmd_msg(self, session: Session, args: str) -> None:
        """C{/msg NICK TEXT}: a private message only NICK sees; the sender gets it back as confirmation."""
        words = Command("msg", args).words(2)
        if len(words) < 2:
            raise BadArguments("usage: /msg NICK TEXT")
        target_nick, text = words
        text = sanitise(text)
        if not text.strip():
            raise BadArguments("usage: /msg NICK TEXT")
        target = self._users.get(name_key(target_nick))
        if target is None:
            raise NoSuchUser(f"no user named {sanitise(target_nick)!r} is online")
        assert target.nick is not None and session.nick is not None
        when = self.clock.seconds()
        self._deliver(target, PrivateMessage(session.nick, target.nick, text, when))
        if target is not session:
            self._deliver(session, PrivateMessage(session.nick, target.nick, text, when, echo=True))

    def cmd_me(self, session: Session, args: str) -> None:
        """C{/me TEXT}: an action shown to the room."""
        text = sanitise(args)
        if not text.strip():
            raise BadArguments("usage: /me TEXT")
        assert session.room is not None and session.nick is not None
        self._broadcast(session.room, Action(session.room.name, session.nick, text, self.clock.seconds()))

    def cmd_join(self, session: Session, args: str) -> None:
        """C{/join ROOM}: leave the current room and enter ROOM, creating it if new."""
        if not args:
            raise BadArguments("usage: /join ROOM")
        name = check_name(args[1:] if args.startswith("#") else args, "room name")
        self._move(session, self._rooms.get(name_key(name)) or Room(name))

    def cmd_part(self, session: Session, args: str) -> None:
        """C{/part}: leave the current room and go back to the lobby."""
        self._move(session, self._rooms[LOBBY])

    def cmd_rooms(self, session: Session, args: str) -> None:
        """C{/rooms}: every room with its member count and topic."""
        rooms = sorted(self._rooms.values(), key=lambda room: name_key(room.name))
        summaries = tuple(RoomSummary(room.name, len(room.members), room.topic) for room in rooms)
        self._deliver(session, RoomList(summaries))

    def cmd_topic(self, session: Session, args: str) -> None:
        """C{/topic [TEXT]}: show the room's topic, or set it and tell the room."""
        room = session.room
        assert room is not None and session.nick is not None
        if not args:
            self._deliver(session, TopicInfo(room.name, room.topic))
            return
        topic = sanitise(args).strip()
        if not topic:
            raise BadArguments("usage: /topic [TEXT]")
        room.topic = topic
        self._broadcast(room, TopicChanged(room.name, session.nick, topic))

    def cmd_help(self, session: Session, args: str) -> None:
        """C{/help}: every command with a one-line description."""
        self._deliver(session, HelpText(HELP))

    def cmd_quit(self, session: Session, args: str) -> None:
        """C{/quit [REASON]}: say goodbye, close the connection; the room sees the reason."""
        reason = sanitise(args).strip() or "quit"
        self._deliver(session, Goodbye(reason))
        self.disconnect(session, reason)
        session.client.close()

    # --- rooms -------------------------------------------------------------------------------

    def _move(self, session: Session, room: Room) -> None:
        if room is session.room:
            raise NotAllowed(f"you are already in {room.name}")
        self._leave_room(session, f"moved to {room.name}")
        self._enter_room(session, room)

    def _enter_room(self, session: Session, room: Room) -> None:
        assert session.nick is not None
        self._rooms.setdefault(name_key(room.name), room)
        room.members[session] = None
        session.room = room
        self._broadcast(room, Joined(room.name, session.nick))
        if room.topic:
            self._deliver(session, TopicInfo(room.name, room.topic))

    def _leave_room(self, session: Session, reason: str) -> None:
        room = session.room
        if room is None or session.nick is None:
            return
        del room.members[session]
        session.room = None
        if not room.members and room.name != LOBBY:
            del self._rooms[name_key(room.name)]
        self._broadcast(room, Left(room.name, session.nick, reason))

    # --- delivery ----------------------------------------------------------------------------

    def _broadcast(self, room: Room, event: Event) -> None:
        """Deliver C{event} to every member of C{room}; one failing client never stops the rest."""
        for member in list(room.members):
            self._deliver(member, event)

    def _deliver(self, session: Session, event: Event) -> None:
        try:
            session.client.deliver(event)
        except Exception:
            log.failure("delivering {event} to {peer} failed", event=type(event).__name__, peer=session.peer)
