"""
The chat core's facade: L{ChatService} takes the doors' typed requests and owns the life of the
layers below it.

The layers, each given the ones below it and never importing one above: L{Delivery} (the outbox,
fan-out, flush); L{Rooms} (membership, topics, moderation state); L{Publishing} (room and private
messages, history, offline messages), L{Logins} (nicknames, accounts, the login timer) and
L{Moderation} (operators, modes, bans, server operators); and this service on top. Together they own all shared chat state and every chat rule, and do no I/O:
they never touch a transport, open a socket, import the reactor or word a message. They reach
users only through L{IChatClient}, read time only from the clock they are given, and keep what
must last in the L{IChatStore} they are given.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, tzinfo
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted import requests as rq
from chat_twisted.accounts import Accounts
from chat_twisted.delivery import Delivery
from chat_twisted.errors import ChatError, InternalError, NotLoggedIn, ShuttingDown
from chat_twisted.interfaces import IChatClient, IChatStore
from chat_twisted.limits import ConnectionLimits
from chat_twisted.logins import Logins
from chat_twisted.metrics import ChatMetrics, MetricsHooks
from chat_twisted.bus import IChatBus
from chat_twisted.mirror import Mirror
from chat_twisted.moderation import Moderation
from chat_twisted.peers import BusPeers, Peers, flags
from chat_twisted.model import (
    ErrorReply,
    Event,
    Goodbye,
    RoomList,
    ServerShutdown,
    ServerTime,
    UserInfo,
    UserList,
    name_key,
    sanitise,
)
from chat_twisted.passwords import PasswordHasher
from chat_twisted.publishing import MAX_HISTORY, Publishing
from chat_twisted.rooms import QUIET_JOINS_ABOVE, Rooms
from chat_twisted.sessions import CONNECTION_LOST, Directory, Session

log = Logger()

__all__ = ["CONNECTION_LOST", "MAX_HISTORY", "ChatService", "Session"]

#: Messages shown on entering a room, unless configured otherwise.
DEFAULT_JOIN_HISTORY = 10
#: Connection limits, unless configured otherwise.
DEFAULT_MAX_CLIENTS = 10_000
DEFAULT_MAX_PER_ADDRESS = 16
#: New connections admitted per address group in each window of this many seconds (as ergo does).
DEFAULT_CONNECTIONS_PER_WINDOW, DEFAULT_CONNECTION_WINDOW = 32, 600.0
#: Seconds a new connection has to choose a nickname, unless configured otherwise.
DEFAULT_NICK_TIMEOUT = 60.0
#: Seconds shutdown waits for connections to close after telling them.
SHUTDOWN_GRACE = 3.0

_Handler = Callable[["ChatService", Session, Any], "Coroutine[Any, Any, None] | None"]


class ChatService(Service):
    """
    The chat core: takes each door's requests for its sessions, and starts and stops the store.

    @param clock: where the time of messages and of the time question comes from.
    @param store: where history, accounts and offline messages are kept.
    @param hasher: hashes and checks passwords (off the reactor thread).
    @param timezone: the zone the server's time is given in (the server's local zone if None).
    @param join_history: how many earlier messages a user is shown on entering a room (0: none).
    @param limits: how many connections are admitted, in all, per address, and per address in a while.
    @param nick_timeout: seconds a connection may take to log in before it is closed.
    @param on_store_failure: called with the failure if the store cannot be opened (the server
        cannot work without it: the process should stop); by default it is only logged.
    @param metrics: what the core counts into (C{--metrics}); None counts nothing.
    @param operators: the accounts of the server operators (C{--oper}).
    @param bus: the link to the other processes of a cluster (C{--bus}); None: this process alone.
    @param quiet_joins_above: in a room with more members than this, joining is shown only to
        the newcomer, and to the others once the newcomer speaks (0: always shown).
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
        on_store_failure: Callable[[Failure], None] | None = None,
        metrics: ChatMetrics | None = None,
        operators: Iterable[str] = (),
        bus: IChatBus | None = None,
        quiet_joins_above: int = QUIET_JOINS_ABOVE,
    ) -> None:
        self.clock = clock
        self.store = store
        self.timezone: tzinfo = timezone or datetime.now().astimezone().tzinfo  # type: ignore[assignment]
        self.join_history = join_history
        self.limits = limits or ConnectionLimits(DEFAULT_MAX_CLIENTS, DEFAULT_MAX_PER_ADDRESS, clock=clock,
                                                 per_window=DEFAULT_CONNECTIONS_PER_WINDOW,
                                                 window=DEFAULT_CONNECTION_WINDOW)
        self._on_store_failure = on_store_failure
        self.metrics: MetricsHooks = metrics or MetricsHooks()
        self.delivery = Delivery()
        store.batch_runner = self.delivery.outbox.as_one
        if bus is not None:
            bus.batch_runner = self.delivery.outbox.as_one
        store = self.metrics.watch(self, store)  # the layers' store: with metrics, its failures and commits count
        accounts = Accounts(store, hasher, clock)
        self.peers = peers = BusPeers(bus, clock) if bus is not None else Peers()
        self.directory = Directory()
        self.rooms = Rooms(self.delivery, peers, quiet_joins_above)
        self.publishing = Publishing(clock, store, accounts, self.delivery, self.rooms, self.directory, self.metrics,
                                     peers)
        self.logins = Logins(clock, accounts, self.delivery, self.rooms, self.directory, nick_timeout, self._close,
                             lambda session, account: self.moderation.refuse_account(session, account), peers)
        self.moderation = Moderation(clock, store, self.delivery, self.rooms, self.directory, operators,
                                     lambda: self._sessions, self._close, self.metrics, peers)
        if isinstance(peers, BusPeers):
            self._mirror(peers)
        self._sessions: set[Session] = set()  # every admitted connection, logged in or not
        self._shutting_down = False
        self._all_gone: Deferred[None] | None = None
        # While the store opens: the Deferreds of requests that wait for it, in arrival order.
        self._waiting_for_store: list[Deferred[None]] | None = None

    def _mirror(self, peers: BusPeers) -> None:
        """Apply what the other processes announce, through a L{Mirror}."""
        mirror = Mirror(self.delivery, self.rooms, self.directory, self.moderation, self._close)
        peers.on_remote = mirror.apply
        peers.on_snapshot = mirror.load
        peers.on_cut = mirror.cut

        def gone(origin: str) -> None:
            log.info("process {origin} is gone; its users leave", origin=origin)
            peers.announce_for(origin, "down", CONNECTION_LOST)

        peers.on_gone = gone

    # --- service life ------------------------------------------------------------------------

    def startService(self) -> None:
        """
        Open the store and load the rooms' topics, the claimed rooms and the server bans; users'
        requests wait until that is done.
        """
        super().startService()
        self._waiting_for_store = []
        opened = self.store.start()
        opened.addCallback(lambda _: self.store.room_topics())
        opened.addCallback(self.rooms.load_topics)
        opened.addCallback(lambda _: self.moderation.load())
        opened.addCallback(lambda _: self.peers.start())
        opened.addErrback(self._store_failed)
        opened.addBoth(lambda _: self._store_ready())

    def _store_failed(self, failure: Failure) -> None:
        log.failure("could not open the store or reach the other processes", failure)
        if self._on_store_failure is not None:
            self._on_store_failure(failure)

    def _store_ready(self) -> None:
        waiting, self._waiting_for_store = self._waiting_for_store, None
        for turn in waiting or ():
            turn.callback(None)

    def stopService(self) -> Deferred[None]:
        """
        Tell every connection the server is shutting down and close it; once they are gone (or
        after L{SHUTDOWN_GRACE} seconds), close the store after its pending writes. The
        Deferred fires when all that is done.
        """
        super().stopService()
        self._shutting_down = self.rooms.quiet = True
        leaving = self.peers.stop("server shutting down")
        for session in list(self._sessions):
            self.logins.cancel_timer(session)
            self.delivery.to(session, ServerShutdown())
            self.delivery.close(session)
        gone: Deferred[None] = succeed(None)
        if self._sessions:
            gone = self._all_gone = Deferred()
            gone.addTimeout(SHUTDOWN_GRACE, self.clock, onTimeoutCancel=lambda result, timeout: None)
        gone.addCallback(lambda _: leaving)
        gone.addCallback(lambda _: self.store.stop())
        return gone

    # --- what doors call ---------------------------------------------------------------------

    def connect(self, client: IChatClient, peer: str, door: str = "line") -> Session:
        """
        Start a session for a new connection through C{door} (its name in metrics) and give it
        the time allowed to log in. A connection over the limits, or arriving during shutdown,
        gets one error and is closed; its session is closed. So is one from an address banned from
        the server.
        """
        session = Session(self, client, peer, self.clock.seconds(), door)
        ban = self.moderation.server_ban_for(session)
        if ban is not None:
            session.closed = True
            self.moderation.refuse(session, ban)
            return session
        refusal = ShuttingDown() if self._shutting_down else self.limits.admit(session.address)
        if refusal is not None:
            session.closed = True
            log.info("refused a connection from {peer}: {why}", peer=peer, why=type(refusal).__name__)
            self.delivery.to(session, ErrorReply(refusal))
            self.delivery.close(session)
            return session
        self._sessions.add(session)
        self.logins.start_timer(session)
        return session

    def submit(self, session: Session, request: rq.Request) -> Deferred[None]:
        """
        Do C{request} for C{session} (see L{Session.submit}). Expected problems fail the
        Deferred with their L{ChatError}; unexpected ones are logged and reported as
        L{InternalError}. Either way the session stays open.
        """
        if session.closed:
            return succeed(None)
        if self._waiting_for_store is not None:
            turn: Deferred[None] = Deferred()
            self._waiting_for_store.append(turn)
            return turn.addCallback(lambda _: self.submit(session, request))
        try:
            handler = _HANDLERS[type(request)]
            if session.nick is None and type(request) not in _BEFORE_LOGIN:
                raise NotLoggedIn()
            pending = handler(self, session, request)
        except Exception:
            return fail(self._as_chat_error(Failure(), session))
        if pending is None:
            return succeed(None)
        return ensureDeferred(pending).addErrback(self._as_chat_error, session)

    def _as_chat_error(self, failure: Failure, session: Session) -> Failure:
        self.metrics.request_failed(failure.value)
        if failure.check(ChatError):
            return failure
        log.failure("unexpected error handling a request from {peer}", failure, peer=session.peer)
        return Failure(InternalError())

    def end(self, session: Session, reason: str, error: ChatError | None = None) -> None:
        """Close C{session} for C{reason}, after an L{ErrorReply} of C{error} if given."""
        self._close(session, reason, ErrorReply(error) if error is not None else None)

    def _close(self, session: Session, reason: str, last: Event | None, logged_as: str | None = None) -> None:
        """Show C{session} C{last} (if any), take it out of the chat for C{reason}, and close it."""
        if last is not None:
            self.delivery.to(session, last)
        self.disconnect(session, reason, logged_as)
        self.delivery.close(session)

    def disconnect(self, session: Session, reason: str = CONNECTION_LOST, logged_as: str | None = None) -> None:
        """
        Forget C{session}; its rooms see it leave with C{reason} (logged as C{logged_as}, if
        given, when the reason is the user's own words). Idempotent.
        """
        if session.closed:
            return
        session.closed = True
        self.logins.cancel_timer(session)
        self._sessions.discard(session)
        self.limits.release(session.address)
        log.info("{who} left ({reason})", who=session.nick or session.peer, reason=logged_as or reason)
        self.metrics.disconnected(logged_as or reason)
        if session.nick is not None:
            self.logins.log_out(session, reason)
        if not self._sessions and self._all_gone is not None and not self._all_gone.called:
            self._all_gone.callback(None)

    @property
    def online(self) -> int:
        """How many users are logged in."""
        return len(self.directory)

    @property
    def sessions(self) -> frozenset[Session]:
        """Every admitted connection's session, logged in or not (a copy)."""
        return frozenset(self._sessions)

    # --- requests ----------------------------------------------------------------------------

    async def _login(self, session: Session, request: rq.Login) -> None:
        new_user = await self.logins.log_in(session, request.nick, request.password)
        if session.closed:
            return
        for room in request.rooms if new_user else ():
            self._enter(session, room)
        if session.account is not None and (new_user or request.password is not None):
            self.publishing.deliver_offline(session, session.account)

    def _authenticate(self, session: Session, request: rq.Authenticate) -> Coroutine[Any, Any, None]:
        return self.logins.authenticate(session, request.account, request.password)

    def _enter(self, session: Session, name: str, who: bool = False) -> None:
        self.moderation.check_entry(session, name)
        room = self.rooms.enter(session, name)
        self.moderation.entered(session, room)
        if self.peers.shared:
            self.peers.announce("join", room.name, session.nick, session.account, session.away, flags(room, session),
                                session.connected_at)
            self.peers.present(session)
        if who:
            self.delivery.to(session, self.rooms.who(room))
        if self.join_history > 0:
            self.publishing.show_history(session, room, rq.ReadHistory(name, self.join_history), requested=False)

    def _join(self, session: Session, request: rq.Join) -> None:
        self._enter(session, request.room, request.who)

    def _part(self, session: Session, request: rq.Part) -> None:
        self.rooms.leave(session, self.rooms.joined(session, request.room), request.reason)

    def _say(self, session: Session, request: rq.Say) -> None:
        room = self.rooms.joined(session, request.room)
        if room.modes or room.bans:
            self.moderation.check_speak(session, room)
        self.publishing.say(session, room, request.text, request.notice)

    def _act(self, session: Session, request: rq.Act) -> None:
        room = self.rooms.joined(session, request.room)
        if room.modes or room.bans:
            self.moderation.check_speak(session, room)
        self.publishing.act(session, room, request.text)

    def _tell(self, session: Session, request: rq.Tell) -> Coroutine[Any, Any, None]:
        return self.publishing.tell(session, request.target, request.text, request.notice, request.action)

    def _topic(self, session: Session, request: rq.Topic) -> None:
        if request.text is None:
            self.delivery.to(session, self.rooms.find(request.room).topic_info())
        else:
            room = self.rooms.joined(session, request.room)
            self.moderation.check_topic(session, room)
            self.publishing.set_topic(session, room, request.text)

    def _history(self, session: Session, request: rq.ReadHistory) -> None:
        self.publishing.show_history(session, self.rooms.joined(session, request.room), request)

    def _search(self, session: Session, request: rq.Search) -> None:
        self.publishing.search(session, request)

    def _who(self, session: Session, request: rq.Who) -> None:
        self.delivery.to(session, self.rooms.who(self.rooms.find(request.room)))

    def _rooms(self, session: Session, request: rq.Rooms) -> None:
        self.delivery.to(session, RoomList(self.rooms.summaries()))

    def _whois(self, session: Session, request: rq.Whois) -> None:
        now = self.clock.seconds()
        users = []
        for nick in request.nicks:
            user = self.directory.find(nick)
            if user is not None:
                users.append(UserInfo(user.nick or "", user.account, user.away,
                                      tuple(room.name for room in user.rooms.values()), now - user.active_at,
                                      user.connected_at, self.moderation.is_server_operator(user)))
                continue
            remote = self.directory.remote.get(name_key(nick))
            if remote is not None:  # on another process: how long idle is not known here
                users.append(UserInfo(remote.nick, remote.account, remote.away,
                                      tuple(room.name for room in self.rooms.remote_members(remote)), 0.0,
                                      remote.since, self.moderation.is_operator_account(remote.account)))
        self.delivery.to(session, UserList(request.nicks, tuple(users)))

    def _time(self, session: Session, request: rq.Time) -> None:
        now = self.clock.seconds()
        iso = datetime.fromtimestamp(now, self.timezone).isoformat(timespec="seconds")
        self.delivery.to(session, ServerTime(iso, now))

    def _nick(self, session: Session, request: rq.Nick) -> Coroutine[Any, Any, None]:
        return self.logins.rename(session, request.new)

    def _away(self, session: Session, request: rq.Away) -> None:
        self.logins.set_away(session, request.message)

    def _register(self, session: Session, request: rq.Register) -> Coroutine[Any, Any, None]:
        return self.logins.register(session, request.password)

    def _change_password(self, session: Session, request: rq.ChangePassword) -> Coroutine[Any, Any, None]:
        return self.logins.change_password(session, request.old, request.new)

    def _logout(self, session: Session, request: rq.Logout) -> None:
        self.logins.give_up_account(session)

    def _quit(self, session: Session, request: rq.Quit) -> None:
        reason = sanitise(request.reason).strip() or "quit"
        self._close(session, reason, Goodbye(reason), logged_as="quit")


def _by_moderation(method: Callable[[Moderation, Session, Any], Any]) -> _Handler:
    """The handler of a request that the moderation layer's C{method} does."""
    return lambda service, session, request: method(service.moderation, session, request)


#: Each request's handler: the one table the core dispatches from.
_HANDLERS: dict[type[rq.Request], _Handler] = {
    rq.Login: ChatService._login,
    rq.Authenticate: ChatService._authenticate,
    rq.Register: ChatService._register,
    rq.ChangePassword: ChatService._change_password,
    rq.Logout: ChatService._logout,
    rq.Nick: ChatService._nick,
    rq.Away: ChatService._away,
    rq.Quit: ChatService._quit,
    rq.Join: ChatService._join,
    rq.Part: ChatService._part,
    rq.Topic: ChatService._topic,
    rq.Say: ChatService._say,
    rq.Act: ChatService._act,
    rq.Tell: ChatService._tell,
    rq.ReadHistory: ChatService._history,
    rq.Search: ChatService._search,
    rq.Who: ChatService._who,
    rq.Rooms: ChatService._rooms,
    rq.Whois: ChatService._whois,
    rq.Time: ChatService._time,
    rq.Claim: _by_moderation(Moderation.claim),
    rq.SetOperator: _by_moderation(Moderation.set_operator),
    rq.SetVoice: _by_moderation(Moderation.set_voice),
    rq.Kick: _by_moderation(Moderation.kick),
    rq.SetBan: _by_moderation(Moderation.set_ban),
    rq.ListBans: _by_moderation(Moderation.list_bans),
    rq.Invite: _by_moderation(Moderation.invite),
    rq.SetModes: _by_moderation(Moderation.set_modes),
    rq.KillUser: _by_moderation(Moderation.kill),
    rq.ServerBan: _by_moderation(Moderation.server_ban),
    rq.ListServerBans: _by_moderation(Moderation.list_server_bans),
    rq.Wall: _by_moderation(Moderation.wall),
}  # type: ignore[dict-item]

#: Requests a session may make before it has a nickname.
_BEFORE_LOGIN = frozenset({rq.Login, rq.Authenticate, rq.Quit})
