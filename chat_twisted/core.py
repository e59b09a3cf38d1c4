"""
The chat itself: who is connected, under which nickname, in which room, and what every command does.

L{ChatService} owns all shared chat state and every chat rule. It does no I/O: it never touches a
transport, opens a socket, imports the reactor or formats wire text. It reaches users only through
L{IChatClient.deliver} and L{IChatClient.close}, reads time only from the clock it is given, and
keeps what must last in the L{IChatStore} it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime, tzinfo
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted.accounts import Accounts
from chat_twisted.commands import HELP, Command, Message, parse_line
from chat_twisted.errors import (
    BadArguments,
    ChatError,
    InvalidName,
    NickInUse,
    NoSuchUser,
    NotAllowed,
    UnknownCommand,
)
from chat_twisted.interfaces import IChatClient, IChatStore
from chat_twisted.limits import ConnectionLimits
from chat_twisted.model import (
    LOBBY,
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
    OfflineMessage,
    PasswordPrompt,
    PrivateMessage,
    RoomList,
    RoomSummary,
    Said,
    ServerShutdown,
    ServerTime,
    StoredMessage,
    TopicChanged,
    TopicInfo,
    Welcome,
    WhoList,
    check_name,
    name_key,
    sanitise,
)
from chat_twisted.outbox import Outbox
from chat_twisted.passwords import PasswordHasher

log = Logger()

#: The reason others are shown when a connection ends without C{/quit}.
CONNECTION_LOST = "connection lost"

#: Messages shown on entering a room, unless configured otherwise.
DEFAULT_JOIN_HISTORY = 10
#: Messages C{/history} shows without a count, and at most.
DEFAULT_HISTORY = 20
MAX_HISTORY = 500
#: Private messages kept at most for one offline user.
OFFLINE_LIMIT = 100
#: Connection limits, unless configured otherwise.
DEFAULT_MAX_CLIENTS = 10_000
DEFAULT_MAX_PER_ADDRESS = 16
#: Seconds a new connection has to choose a nickname, unless configured otherwise.
DEFAULT_NICK_TIMEOUT = 60.0
#: Seconds shutdown waits for connections to close after telling them.
SHUTDOWN_GRACE = 3.0


class Session:
    """
    One connection's standing in the chat: its client, nickname (None until logged in), room,
    and the registered account it has proved it owns (None for a guest).

    Created by L{ChatService.connect} and handed to the door, which passes each of the user's lines
    to L{handle_line} and reports the end of the connection with L{disconnected}. The core alone
    changes its fields.
    """

    __slots__ = (
        "client", "peer", "address", "nick", "room", "account", "pending_nick", "closed", "login_timer",
        "unflushed", "_service",
    )

    def __init__(self, service: ChatService, client: IChatClient, peer: str) -> None:
        self._service = service
        self.client = client
        self.peer = peer
        self.address = peer.rpartition(":")[0] or peer
        self.nick: str | None = None
        self.room: Room | None = None
        self.account: str | None = None
        self.pending_nick: str | None = None
        self.closed = False
        self.login_timer: IDelayedCall | None = None
        self.unflushed = False  # delivered to since the core last flushed it

    def handle_line(self, line: str) -> Deferred[None]:
        """
        Act on one decoded line the user sent; replies and errors arrive through the client.
        The Deferred fires once the line is dealt with: the door should hold back this user's
        next line until then, so that each user's lines take effect in order.
        """
        return self._service.handle_line(self, line)

    def disconnected(self, reason: str = CONNECTION_LOST) -> None:
        """Tell the core the connection has ended; safe to call more than once."""
        self._service.disconnect(self, reason)

    def tell_error(self, text: str) -> None:
        """Show the user an error the door found (a line too long, say), in turn with other replies."""
        self._service.tell_error(self, text)

    def end(self, reason: str, error: str | None = None) -> None:
        """
        End this connection for a reason the door found (flooding, a wrong protocol): after
        what is already on its way, an error line if C{error}, then the close; the room sees
        the user leave with C{reason}.
        """
        self._service.end(self, reason, error)


class Room:
    """A named room: its topic and its members in the order they joined. Owned by L{ChatService}."""

    __slots__ = ("name", "key", "topic", "members")

    def __init__(self, name: str) -> None:
        self.name = name
        self.key = name_key(name)
        self.topic = ""
        self.members: dict[Session, None] = {}  # an ordered set


class ChatService(Service):
    """
    The chat core: nickname registry, rooms, topics, history, accounts and every command.

    @param clock: where the time of messages and C{/time} comes from.
    @param store: where history, accounts and offline messages are kept.
    @param hasher: hashes and checks passwords (off the reactor thread).
    @param timezone: the zone times are shown in (the server's local zone if None).
    @param join_history: how many earlier messages a user is shown on entering a room (0: none).
    @param limits: how many connections are admitted, in all and per address.
    @param nick_timeout: seconds a connection may take to log in before it is closed.
    """

    def __init__(
        self,
        clock: IReactorTime,
        store: IChatStore,
        hasher: PasswordHasher,
        timezone: tzinfo | None = None,
        join_history: int = DEFAULT_JOIN_HISTORY,
        limits: ConnectionLimits | None = None,
        nick_timeout: float = DEFAULT_NICK_TIMEOUT,
    ) -> None:
        self.clock = clock
        self.store = store
        self.accounts = Accounts(store, hasher, clock)
        self.timezone: tzinfo = timezone or datetime.now().astimezone().tzinfo  # type: ignore[assignment]
        self.join_history = join_history
        self.limits = limits or ConnectionLimits(DEFAULT_MAX_CLIENTS, DEFAULT_MAX_PER_ADDRESS)
        self.nick_timeout = nick_timeout
        self._sessions: set[Session] = set()  # every admitted connection, logged in or not
        self._shutting_down = False
        self._all_gone: Deferred[None] | None = None
        self._users: dict[str, Session] = {}
        self._rooms: dict[str, Room] = {LOBBY: Room(LOBBY)}
        self._topics: dict[str, str] = {}  # by room key, kept while rooms are empty
        self._outbox = Outbox(on_idle=self._flush)
        self._unflushed: list[Session] = []
        store.batch_runner = self._outbox.as_one
        # While the store opens: the Deferreds of lines that wait for it, in arrival order.
        self._waiting_for_store: list[Deferred[None]] | None = None

    # --- service life ------------------------------------------------------------------------

    def startService(self) -> None:
        """Open the store and load the rooms' topics; users' lines wait until that is done."""
        super().startService()
        self._waiting_for_store = []
        opened = self.store.start()
        opened.addCallback(lambda _: self.store.room_topics())
        opened.addCallback(self._topics_loaded)
        opened.addErrback(lambda failure: log.failure("could not open the store", failure))
        opened.addBoth(lambda _: self._store_ready())

    def _topics_loaded(self, topics: dict[str, str]) -> None:
        self._topics.update(topics)
        for room in self._rooms.values():
            room.topic = self._topics.get(room.key, "")

    def _store_ready(self) -> None:
        waiting, self._waiting_for_store = self._waiting_for_store, None
        for line_turn in waiting or ():
            line_turn.callback(None)

    def stopService(self) -> Deferred[None]:
        """
        Tell every connection the server is shutting down and close it; once they are gone (or
        after L{SHUTDOWN_GRACE} seconds), close the store after its pending writes. The
        Deferred fires when all that is done.
        """
        super().stopService()
        self._shutting_down = True
        for session in list(self._sessions):
            self._cancel_login_timer(session)
            self._deliver(session, ServerShutdown())
            self._outbox.now(session.client.close)
        gone: Deferred[None] = succeed(None)
        if self._sessions:
            gone = self._all_gone = Deferred()
            gone.addTimeout(SHUTDOWN_GRACE, self.clock, onTimeoutCancel=lambda result, timeout: None)
        gone.addCallback(lambda _: self.store.stop())
        return gone

    # --- what doors call ---------------------------------------------------------------------

    def connect(self, client: IChatClient, peer: str) -> Session:
        """
        Start a session for a new connection and ask it for a nickname. A connection over the
        limits, or arriving during shutdown, gets one error and is closed; its session is closed.
        """
        session = Session(self, client, peer)
        refusal = "the server is shutting down" if self._shutting_down else self.limits.admit(session.address)
        if refusal is not None:
            session.closed = True
            log.info("refused a connection from {peer}: {why}", peer=peer, why=refusal)
            self._deliver(session, ErrorReply(refusal))
            self._outbox.now(client.close)
            return session
        self._sessions.add(session)
        self._start_login_timer(session)
        self._deliver(session, NickPrompt(first=True))
        return session

    def _start_login_timer(self, session: Session) -> None:
        if self.nick_timeout > 0:
            session.login_timer = self.clock.callLater(self.nick_timeout, self._login_timed_out, session)

    def _login_timed_out(self, session: Session) -> None:
        session.login_timer = None
        if session.nick is None and not session.closed:
            seconds = f"{self.nick_timeout:g} second{'' if self.nick_timeout == 1 else 's'}"
            self.end(session, "login timed out", f"no nickname chosen within {seconds}")

    def handle_line(self, session: Session, line: str) -> Deferred[None]:
        """
        Act on one line from C{session}: login lines first, then messages and commands.

        Expected problems reach the user as one L{ErrorReply}; unexpected ones are logged and
        reported as an internal error. Either way the session stays open, and the Deferred
        fires with None once the line has taken effect.
        """
        if session.closed:
            return succeed(None)
        if self._waiting_for_store is not None:
            line_turn: Deferred[None] = Deferred()
            self._waiting_for_store.append(line_turn)
            return line_turn.addCallback(lambda _: self.handle_line(session, line))
        try:
            pending = self._handle(session, line)
        except Exception:
            self._report(Failure(), session)
            return succeed(None)
        if pending is None:
            return succeed(None)
        return ensureDeferred(pending).addErrback(self._report, session)

    def tell_error(self, session: Session, text: str) -> None:
        """Deliver an L{ErrorReply} the door found, in its turn."""
        self._deliver(session, ErrorReply(text))

    def end(self, session: Session, reason: str, error: str | None = None) -> None:
        """Close C{session} for C{reason}, after an L{ErrorReply} of C{error} if given."""
        if error is not None:
            self._deliver(session, ErrorReply(error))
        self.disconnect(session, reason)
        self._outbox.now(session.client.close)

    def disconnect(self, session: Session, reason: str = CONNECTION_LOST, logged_as: str | None = None) -> None:
        """
        Forget C{session}; its room sees it leave with C{reason} (logged as C{logged_as}, if
        given, when the reason is the user's own words). Idempotent.
        """
        if session.closed:
            return
        session.closed = True
        self._cancel_login_timer(session)
        self._sessions.discard(session)
        self.limits.release(session.address)
        log.info("{who} left ({reason})", who=session.nick or session.peer, reason=logged_as or reason)
        if session.nick is not None:
            self._log_out(session, reason)
        if not self._sessions and self._all_gone is not None and not self._all_gone.called:
            self._all_gone.callback(None)

    @staticmethod
    def _cancel_login_timer(session: Session) -> None:
        if session.login_timer is not None and session.login_timer.active():
            session.login_timer.cancel()
        session.login_timer = None

    @property
    def online(self) -> int:
        """How many users are logged in."""
        return len(self._users)

    # --- dispatch ----------------------------------------------------------------------------

    def _handle(self, session: Session, line: str) -> Coroutine[Any, Any, None] | None:
        """Handle C{line}; return a coroutine still to be run for handlers that must wait."""
        if session.nick is None:
            return self._login_line(session, line)
        request = parse_line(line)
        if isinstance(request, Message):
            self._say(session, request.text)
            return None
        handler = getattr(self, "cmd_" + request.name, None)
        if handler is None:
            raise UnknownCommand(f"unknown command /{sanitise(request.name)} (try /help)")
        result: Coroutine[Any, Any, None] | None = handler(session, request.args)
        return result

    def _report(self, failure: Failure, session: Session) -> None:
        """Tell the user why their line failed, and ask again for what login still needs."""
        if failure.check(ChatError):
            text = failure.value.text
        else:
            log.failure("unexpected error handling a line from {peer}", failure, peer=session.peer)
            text = "internal error; the line was not handled"
        self._deliver(session, ErrorReply(text))
        self._prompt(session)

    def _prompt(self, session: Session) -> None:
        """Ask a user who is not logged in for what comes next: a password or a nickname."""
        if session.nick is not None or session.closed:
            return
        if session.pending_nick is not None:
            self._deliver(session, PasswordPrompt(session.pending_nick))
        else:
            self._deliver(session, NickPrompt())

    # --- login -------------------------------------------------------------------------------

    async def _login_line(self, session: Session, line: str) -> None:
        """A line before login: a nickname, a password, C{/nick}, C{/login} or C{/quit}."""
        text = line.strip()
        request = parse_line(text)
        if isinstance(request, Command) and request.name in ("quit", "login", "nick"):
            if request.name == "quit":
                self.cmd_quit(session, request.args)
            elif request.name == "login":
                await self.cmd_login(session, request.args)
            else:
                session.pending_nick = None
                await self._choose_nick(session, request.args)
        elif session.pending_nick is not None:
            if isinstance(request, Command):
                raise NotAllowed(f"enter the password for {session.pending_nick}, /nick NAME for another nickname, or /quit")
            if text:
                await self._log_in_with_password(session, session.pending_nick, text)
            else:
                self._prompt(session)
        elif isinstance(request, Command):
            raise NotAllowed("choose a nickname first (or /login NICK PASSWORD, or /quit)")
        else:
            await self._choose_nick(session, text)

    async def _choose_nick(self, session: Session, nick: str) -> None:
        """
        Log in as guest C{nick}, or ask for its password if it is registered (even while its
        owner is connected elsewhere: the right password then closes that older connection).
        """
        check_name(nick, "nickname")
        account = await self.accounts.lookup(name_key(nick))
        if session.closed:
            return
        if account is None:
            self._log_in(session, nick, account_key=None)
        else:
            session.pending_nick = nick
            self._deliver(session, PasswordPrompt(nick))

    async def _log_in_with_password(self, session: Session, nick: str, password: str) -> None:
        """Check C{password} for registered C{nick}; on success the session becomes that user."""
        check_name(nick, "nickname")
        key = name_key(nick)
        await self.accounts.check(key, nick, password, session.address)
        if session.closed:
            return
        holder = self._users.get(key)
        if holder is not None and holder is not session:
            self._evict(holder, "logged in from elsewhere")
        if session.nick is None:
            self._log_in(session, nick, account_key=key)
            return
        if session.nick != nick:
            self._rename(session, nick)
        session.account = key
        self._deliver(session, Notice(f"you are logged in as {nick}"))
        self._deliver_offline(session, key)

    def _claim_nick(self, session: Session, nick: str) -> None:
        """Raise unless C{nick} is valid and free for C{session}."""
        check_name(nick, "nickname")
        holder = self._users.get(name_key(nick))
        if holder is not None and holder is not session:
            raise NickInUse(f"nickname {nick!r} is already in use; choose another")

    def _log_in(self, session: Session, nick: str, account_key: str | None) -> None:
        self._claim_nick(session, nick)
        session.nick, session.account, session.pending_nick = nick, account_key, None
        self._cancel_login_timer(session)
        self._users[name_key(nick)] = session
        log.info("{nick} logged in from {peer}", nick=nick, peer=session.peer)
        self._deliver(session, Welcome(nick, self.online, LOBBY))
        self._enter_room(session, self._rooms[LOBBY])
        if account_key is not None:
            self._deliver_offline(session, account_key)

    def _log_out(self, session: Session, reason: str) -> None:
        """Take C{session} out of its room and free its nickname."""
        assert session.nick is not None
        self._leave_room(session, reason)
        del self._users[name_key(session.nick)]
        session.nick = session.account = None

    def _evict(self, session: Session, reason: str) -> None:
        """Close another connection of the same user, who just logged in anew."""
        self._deliver(session, Goodbye(reason))
        self.disconnect(session, reason)
        self._outbox.now(session.client.close)

    def _deliver_offline(self, session: Session, account_key: str) -> None:
        """Deliver the private messages kept for C{account_key} while it was offline."""

        def deliver(messages: list[OfflineMessage]) -> None:
            for message in messages:
                event = PrivateMessage(message.sender, message.recipient, message.text, message.when, stored=True)
                self._write(session, event)

        self._outbox.after(self.store.take_offline(account_key), deliver, self._failed_quietly)

    # --- messages ----------------------------------------------------------------------------

    def _say(self, session: Session, text: str) -> None:
        text = sanitise(text)
        if not text.strip():
            return
        assert session.room is not None and session.nick is not None
        when = self.clock.seconds()
        self._publish(session, Said(session.room.name, session.nick, text, when), "say", text, when)

    def _publish(
        self,
        session: Session,
        event: Event,
        kind: str,
        text: str,
        when: float,
        stored: Callable[[], None] | None = None,
    ) -> None:
        """
        Store a room event, then (after calling C{stored}, if given) show it to those who were
        in the room when it was made. If it can't be stored, only the sender hears of it.
        """
        room = session.room
        assert room is not None and session.nick is not None
        recipients = tuple(room.members)
        record = StoredMessage(room.name, kind, session.nick, text, when)

        def show(_: object) -> None:
            if stored is not None:
                stored()
            self._fan_out(recipients, event)

        self._outbox.after(
            self.store.append_message(room.key, record),
            show,
            lambda failure: self._store_failed(session, failure),
        )

    def _store_failed(self, session: Session, failure: Failure) -> None:
        log.failure("storing a message from {nick} failed", failure, nick=session.nick)
        self._write(session, ErrorReply("your message could not be saved, so it was not sent"))

    # --- commands ----------------------------------------------------------------------------

    async def cmd_nick(self, session: Session, args: str) -> None:
        """C{/nick NEW}: rename; the room sees the change. Registered nicknames need C{/login}."""
        new, old = args, session.nick
        if not new:
            raise BadArguments("usage: /nick NEW")
        if new == old:
            raise NotAllowed(f"you are already known as {old}")
        self._claim_nick(session, new)
        key = name_key(new)
        if key != session.account and key != name_key(old or ""):
            if await self.accounts.lookup(key) is not None:
                raise NotAllowed(f"{new} is registered; use /login {new} PASSWORD")
            if session.closed or session.nick != old:
                return
            self._claim_nick(session, new)
        self._rename(session, new)

    def _rename(self, session: Session, new: str) -> None:
        old = session.nick
        assert old is not None and session.room is not None
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

    async def cmd_msg(self, session: Session, args: str) -> None:
        """
        C{/msg NICK TEXT}: a private message only NICK sees; the sender gets it back as
        confirmation. For a registered user who is offline, it is kept until they log in.
        """
        words = args.split(None, 1)
        if len(words) < 2 or not sanitise(words[1]).strip():
            raise BadArguments("usage: /msg NICK TEXT")
        target_nick, text = words[0], sanitise(words[1])
        sender = session.nick
        assert sender is not None
        when = self.clock.seconds()
        target = self._users.get(name_key(target_nick))
        if target is not None:
            assert target.nick is not None
            self._deliver(target, PrivateMessage(sender, target.nick, text, when))
            if target is not session:
                self._deliver(session, PrivateMessage(sender, target.nick, text, when, echo=True))
            return
        await self._keep_for_offline(session, target_nick, text, when)

    async def _keep_for_offline(self, session: Session, target_nick: str, text: str, when: float) -> None:
        """Keep a private message for a registered user who is offline; raise if there is no such user."""
        unknown = NoSuchUser(f"no user named {sanitise(target_nick)!r} is online")
        try:
            key = name_key(check_name(target_nick, "nickname"))
        except InvalidName:
            raise unknown from None
        account = await self.accounts.lookup(key)
        if account is None:
            raise unknown
        assert session.nick is not None
        message = OfflineMessage(session.nick, account.nick, text, when)
        if not await self.store.queue_offline(key, message, OFFLINE_LIMIT):
            raise NotAllowed(f"{account.nick} has too many messages waiting; try again later")
        self._deliver(session, Notice(f"{account.nick} is offline; your message will be delivered when they log in"))

    def cmd_me(self, session: Session, args: str) -> None:
        """C{/me TEXT}: an action shown to the room."""
        text = sanitise(args)
        if not text.strip():
            raise BadArguments("usage: /me TEXT")
        assert session.room is not None and session.nick is not None
        when = self.clock.seconds()
        self._publish(session, Action(session.room.name, session.nick, text, when), "action", text, when)

    def cmd_join(self, session: Session, args: str) -> None:
        """C{/join ROOM}: leave the current room and enter ROOM, creating it if new."""
        if not args:
            raise BadArguments("usage: /join ROOM")
        name = check_name(args[1:] if args.startswith("#") else args, "room name")
        self._move(session, self._rooms.get(name_key(name)) or self._new_room(name))

    def cmd_part(self, session: Session, args: str) -> None:
        """C{/part}: leave the current room and go back to the lobby."""
        self._move(session, self._rooms[LOBBY])

    def cmd_rooms(self, session: Session, args: str) -> None:
        """C{/rooms}: every room with its member count and topic."""
        rooms = sorted(self._rooms.values(), key=lambda room: room.key)
        summaries = tuple(RoomSummary(room.name, len(room.members), room.topic) for room in rooms)
        self._deliver(session, RoomList(summaries))

    def cmd_topic(self, session: Session, args: str) -> None:
        """C{/topic [TEXT]}: show the room's topic, or set it (kept in history) and tell the room."""
        room = session.room
        assert room is not None and session.nick is not None
        if not args:
            self._deliver(session, TopicInfo(room.name, room.topic))
            return
        topic = sanitise(args).strip()
        if not topic:
            raise BadArguments("usage: /topic [TEXT]")

        def set_topic() -> None:
            room.topic = self._topics[room.key] = topic

        event = TopicChanged(room.name, session.nick, topic)
        self._publish(session, event, "topic", topic, self.clock.seconds(), stored=set_topic)

    def cmd_history(self, session: Session, args: str) -> None:
        """C{/history [N]}: replay the last N (default 20, at most 500) messages of the room."""
        try:
            count = int(args) if args else DEFAULT_HISTORY
        except ValueError:
            raise BadArguments("usage: /history [N], N a whole number") from None
        if count < 1:
            raise BadArguments("usage: /history [N], N at least 1")
        assert session.room is not None
        self._show_history(session, session.room, min(count, MAX_HISTORY), requested=True)

    def _show_history(self, session: Session, room: Room, count: int, requested: bool) -> None:
        def show(messages: list[StoredMessage]) -> None:
            if messages or requested:
                self._write(session, History(room.name, tuple(messages), requested))

        self._outbox.after(self.store.recent_messages(room.key, count), show, self._failed_quietly)

    def cmd_help(self, session: Session, args: str) -> None:
        """C{/help}: every command with a one-line description."""
        self._deliver(session, HelpText(HELP))

    def cmd_quit(self, session: Session, args: str) -> None:
        """C{/quit [REASON]}: say goodbye, close the connection; the room sees the reason."""
        reason = sanitise(args).strip() or "quit"
        self._deliver(session, Goodbye(reason))
        self.disconnect(session, reason, logged_as="quit")
        self._outbox.now(session.client.close)

    # --- account commands --------------------------------------------------------------------

    async def cmd_register(self, session: Session, args: str) -> None:
        """C{/register PASSWORD}: register the current nickname, so only its password can claim it."""
        nick = session.nick
        assert nick is not None
        if not args:
            raise BadArguments("usage: /register PASSWORD")
        if session.account == name_key(nick):
            raise NotAllowed(f"{nick} is already registered to you")
        await self.accounts.register(name_key(nick), nick, args)
        if session.nick == nick and not session.closed:
            session.account = name_key(nick)
        log.info("{nick} registered", nick=nick)
        self._deliver(session, Notice(f"{nick} is now registered; next time log in with /login {nick} PASSWORD"))

    async def cmd_login(self, session: Session, args: str) -> None:
        """C{/login NICK PASSWORD}: become registered user NICK (also as the first line)."""
        words = args.split()
        if len(words) != 2:
            raise BadArguments("usage: /login NICK PASSWORD")
        await self._log_in_with_password(session, words[0], words[1])

    async def cmd_password(self, session: Session, args: str) -> None:
        """C{/password OLD NEW}: change the password of the account you are logged in to."""
        words = args.split()
        if len(words) != 2:
            raise BadArguments("usage: /password OLD NEW")
        account = session.account
        if account is None:
            raise NotAllowed("you are not logged in to a registered nickname")
        await self.accounts.change_password(account, words[0], words[1], session.address)
        self._deliver(session, Notice("password changed"))

    def cmd_logout(self, session: Session, args: str) -> None:
        """C{/logout}: stop being your registered user; leave the room and choose a nickname anew."""
        if session.account is None:
            raise NotAllowed("you are not logged in to a registered nickname")
        log.info("{nick} logged out", nick=session.nick)
        self._log_out(session, "logged out")
        self._deliver(session, Notice("you are logged out"))
        self._deliver(session, NickPrompt())
        self._start_login_timer(session)

    # --- rooms -------------------------------------------------------------------------------

    def _new_room(self, name: str) -> Room:
        """A room not in use: it gets back the topic it had when it was last used."""
        room = Room(name)
        room.topic = self._topics.get(room.key, "")
        return room

    def _move(self, session: Session, room: Room) -> None:
        if room is session.room:
            raise NotAllowed(f"you are already in {room.name}")
        self._leave_room(session, f"moved to {room.name}")
        self._enter_room(session, room)

    def _enter_room(self, session: Session, room: Room) -> None:
        assert session.nick is not None
        self._rooms.setdefault(room.key, room)
        room.members[session] = None
        session.room = room
        self._broadcast(room, Joined(room.name, session.nick))
        if room.topic:
            self._deliver(session, TopicInfo(room.name, room.topic))
        if self.join_history > 0:
            self._show_history(session, room, self.join_history, requested=False)

    def _leave_room(self, session: Session, reason: str) -> None:
        room = session.room
        if room is None or session.nick is None:
            return
        del room.members[session]
        session.room = None
        if not room.members and room.name != LOBBY:
            del self._rooms[room.key]
        if not self._shutting_down:  # everyone is told the server is going instead
            self._broadcast(room, Left(room.name, session.nick, reason))

    # --- delivery ----------------------------------------------------------------------------
    # Everything shown to users passes through the outbox, so that nothing overtakes a room
    # message that is still being stored.

    def _broadcast(self, room: Room, event: Event) -> None:
        """Deliver C{event} to everyone now in C{room}, in its turn."""
        self._outbox.now(self._fan_out, tuple(room.members), event)

    def _deliver(self, session: Session, event: Event) -> None:
        """Deliver C{event} to C{session}, in its turn."""
        self._outbox.now(self._write, session, event)

    def _fan_out(self, recipients: tuple[Session, ...], event: Event) -> None:
        """
        Hand C{event} to each recipient's client (this loop is the server's hottest); one
        failing client never stops delivery to the others.
        """
        unflushed = self._unflushed
        for session in recipients:
            try:
                session.client.deliver(event)
            except Exception:
                log.failure("delivering {event} to {peer} failed", event=type(event).__name__, peer=session.peer)
            if not session.unflushed:
                session.unflushed = True
                unflushed.append(session)

    def _write(self, session: Session, event: Event) -> None:
        """Hand C{event} to one client (see L{_fan_out})."""
        self._fan_out((session,), event)

    def _flush(self) -> None:
        """At the end of a run of deliveries, have each client that got some send them in one go."""
        unflushed, self._unflushed = self._unflushed, []
        for session in unflushed:
            session.unflushed = False
            try:
                session.client.flush()
            except Exception:
                log.failure("flushing to {peer} failed", peer=session.peer)

    @staticmethod
    def _failed_quietly(failure: Failure) -> None:
        log.failure("reading from the store failed", failure)

