"""
The IRC door: any IRC client in the same rooms as everyone else (a room is a channel: C{lobby}
is C{#lobby}).

L{IrcProtocol} is a L{GuardedLineReceiver} (framing, UTF-8, flood control, input and output
bounds) that turns each IRC command into the core's typed requests, from the one table
L{COMMANDS} (handler, minimum parameters, flood cost, usable before registration), and writes
what L{IrcView} makes of each event to its own transport. Registration (NICK, USER, PASS), CAP
negotiation and SASL PLAIN, PING both ways; channel operators' MODE, KICK and INVITE, and server
operators' KILL, WALLOPS and server bans (GBAN). L{IrcFactory} holds the core and per-listener
settings; no chat state lives in either.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory, connectionDone
from twisted.python.failure import Failure

from chat_twisted import errors
from chat_twisted import requests as rq
from chat_twisted.core import ChatService
from chat_twisted.errors import ChatError
from chat_twisted.guard import (
    DEFAULT_BURST,
    DEFAULT_MAX_INPUT,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_RATE,
    GuardedLineReceiver,
    Pinger,
)
from chat_twisted.masks import parse_duration
from chat_twisted.model import (
    Action,
    Event,
    HistoryPoint,
    Joined,
    Kicked,
    Left,
    ModeChanged,
    Said,
    TopicChanged,
    UserQuit,
    Wallops,
)
from chat_twisted.sessions import Session
from chat_twisted.wire.irc_render import (
    CAPABILITIES,
    LIST_MODES,
    MODE_PARAMS,
    PREFIX_MODES,
    IrcView,
    channel,
)
from chat_twisted.wire.irc_syntax import MAX_CLIENT_TAGS, MAX_LINE, IrcMessage, ban_mask, line, parse_message
from chat_twisted.wire.text import describe

#: Seconds of silence before the server pings a client, and then before it gives up on it.
PING_INTERVAL = 90.0
PING_TIMEOUT = 60.0

# Events every member of a room is shown alike: their bytes are made once per set of capabilities.
_SHARED = frozenset({Said, Action, Joined, Left, UserQuit, TopicChanged, ModeChanged, Kicked, Wallops})


@dataclass(frozen=True, slots=True)
class IrcReply(Event):
    """Lines the door made itself (an answer to a command, a numeric error), shown in turn."""

    lines: tuple[str, ...]


class IrcFactory(Factory):
    """
    Builds an L{IrcProtocol} per connection, all sharing one L{ChatService}; holds only
    per-listener settings and a one-entry cache of a shared event's bytes.
    """

    def __init__(
        self,
        service: ChatService,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_input: int = DEFAULT_MAX_INPUT,
        max_output: int = DEFAULT_MAX_OUTPUT,
        ping_interval: float = PING_INTERVAL,
        ping_timeout: float = PING_TIMEOUT,
    ) -> None:
        self.service = service
        self.rate = rate
        self.burst = burst
        self.max_input = max_input
        self.max_output = max_output
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.started = service.clock.seconds()
        # The last shared event, the capabilities it was made for, and its bytes.
        self.cached_event: Event | None = None
        self.cached_caps: frozenset[str] = frozenset()
        self.cached_bytes = b""

    def buildProtocol(self, addr: IAddress | None) -> IrcProtocol:
        """Return a protocol for a new connection from C{addr}."""
        protocol = IrcProtocol(self)
        protocol.factory = self
        return protocol

    def encode_shared(self, event: Event, view: IrcView) -> bytes:
        """Return a shared event's bytes for C{view}'s capabilities, made once for a run of alike."""
        if event is not self.cached_event or view.caps is not self.cached_caps:
            self.cached_bytes = _crlf(view.render(event))
            self.cached_event, self.cached_caps = event, view.caps
        return self.cached_bytes


def _crlf(lines: list[str] | tuple[str, ...]) -> bytes:
    return "".join(text + "\r\n" for text in lines).encode("utf-8")


Handler = Callable[["IrcProtocol", IrcMessage], "Deferred[Any] | None"]
#: What answers a request's failure: its lines, or None for the generic form.
OnError = Callable[[ChatError], "list[str] | None"]


@dataclass(frozen=True, slots=True)
class IrcCommand:
    """One IRC command: its handler, the parameters it needs, its flood cost, whether it works before registration."""

    handler: Handler
    min_params: int = 0
    cost: float = 1.0
    before_registration: bool = False


class IrcProtocol(GuardedLineReceiver):
    """
    One IRC connection: registration, capabilities and SASL state, and the commands of L{COMMANDS}.
    It writes only to its own transport.
    """

    def __init__(self, factory: IrcFactory) -> None:
        self.factory = factory
        super().__init__(factory.service.clock, MAX_LINE - 2 + MAX_CLIENT_TAGS, factory.rate, factory.burst,
                         factory.max_input, factory.max_output)
        self.view = IrcView(factory.service.timezone, factory.started)
        self._nick: str | None = None  # asked for before registration
        self._user_given = False
        self._password: str | None = None
        self._negotiating = False
        self._registering = False
        self._sasl: str | None = None  # the mechanism in progress
        self._sasl_buffer = ""
        self._pinger = Pinger(factory.service.clock, factory.ping_interval, factory.ping_timeout,
                              self._ping, self._ping_timed_out)
        self._modes: set[str] = set()
        self._queue = self.output.pending.append

    # --- GuardedLineReceiver -----------------------------------------------------------------

    def start_session(self) -> Session:
        """Start the core session and the timer that pings a silent client."""
        self._pinger.start()
        return self.factory.service.connect(self, self.peer, door="irc")

    def line_cost(self, text: str) -> float:
        """The table's cost of the command on this line."""
        message = parse_message(text)
        command = COMMANDS.get(message.command) if message is not None else None
        return command.cost if command is not None else 1.0

    def deliver(self, event: Event) -> None:
        """
        Queue C{event}'s lines for this client: the fan-out path, so an event every member of a
        room sees alike is made once per set of capabilities.
        """
        kind = type(event)
        if kind not in _SHARED:
            super().deliver(event)
            return
        view = self.view
        if (kind is Said or kind is Action) and event.nick == view.nick and "echo-message" not in view.caps:  # type: ignore[attr-defined]
            return  # one's own message, without echo-message
        factory = self.factory
        if event is factory.cached_event and view.caps is factory.cached_caps:
            self._queue(factory.cached_bytes)
        else:
            self._queue(factory.encode_shared(event, view))

    def encode(self, event: Event) -> bytes:
        """Return C{event} as IRC lines for this client."""
        if isinstance(event, IrcReply):
            return _crlf(event.lines)
        return _crlf(self.view.render(event))  # shared events take deliver's cached path

    def handle_text(self, text: str) -> Deferred[Any] | None:
        """Act on one IRC line."""
        message = parse_message(text)
        if message is None:
            return None
        if len(text.partition(" ")[2] if text.startswith("@") else text) > MAX_LINE - 2:
            self.reply(self.view.numeric("417", trailing="Input line was too long"))
            return None
        command = COMMANDS.get(message.command)
        if command is None:
            self.reply(self.view.numeric("421", message.command, trailing="Unknown command"))
            return None
        if not self.registered and not command.before_registration:
            self.reply(self.view.numeric("451", trailing="You have not registered"))
            return None
        if len(message.params) < command.min_params:
            self.reply(self.view.numeric("461", message.command, trailing="Not enough parameters"))
            return None
        return command.handler(self, message)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Stop pinging; tell the core the user is gone."""
        self._pinger.stop()
        super().connectionLost(reason)

    # --- helpers -----------------------------------------------------------------------------

    @property
    def registered(self) -> bool:
        """Whether registration is complete (the client has a nickname in the chat)."""
        return self.logged_in

    def reply(self, *lines: str) -> None:
        """Show C{lines} to this client, in turn."""
        self.show(IrcReply(tuple(lines)))

    def submit(self, request: rq.Request, on_error: OnError | None = None) -> Deferred[Any]:
        """
        Submit C{request}; answer a failure with C{on_error}'s lines (or, if it gives None, the
        generic form). The Deferred fires with whether the request was done.
        """
        assert self.session is not None

        def failed(failure: Failure) -> bool:
            failure.trap(ChatError)
            error = failure.value
            lines = on_error(error) if on_error is not None else None
            self.reply(*(lines if lines is not None else self._generic_error(error)))
            return False

        return self.session.submit(request).addCallbacks(lambda _: True, failed)

    def submit_each(self, requests: list[tuple[rq.Request, OnError | None]]) -> Deferred[Any] | None:
        """
        Submit each request in turn (one IRC command that asks for several changes); an error
        line that one of them has already shown is not shown again. Return the last Deferred.
        """
        shown: set[str] = set()

        def once(on_error: OnError | None) -> OnError:
            def answer(error: ChatError) -> list[str]:
                lines = on_error(error) if on_error is not None else None
                fresh = [text for text in (lines if lines is not None else self._generic_error(error))
                         if text not in shown]
                shown.update(fresh)
                return fresh
            return answer

        last: Deferred[Any] | None = None
        for request, on_error in requests:
            last = self.submit(request, once(on_error))
        return last

    def _generic_error(self, error: ChatError) -> list[str]:
        view = self.view
        if isinstance(error, errors.NoSuchUser):
            return [view.numeric("401", error.nick, trailing="No such nick/channel")]
        if isinstance(error, errors.NoSuchRoom):
            return [view.numeric("403", channel(error.room), trailing="No such channel")]
        if isinstance(error, errors.NotInRoom):
            return [view.numeric("442", channel(error.room), trailing="You're not on that channel")]
        if isinstance(error, errors.EmptyText):
            return [view.numeric("412", trailing="No text to send")]
        if isinstance(error, errors.NotLoggedIn):
            return [view.numeric("451", trailing="You have not registered")]
        if isinstance(error, errors.InvalidName):
            if error.what == "nickname":
                return [view.numeric("432", error.name or "*", trailing="Erroneous nickname")]
            return [view.numeric("479", "#" + error.name, trailing="Illegal channel name")]
        if isinstance(error, (errors.NickInUse, errors.NickRegistered)):
            why = "Nickname is already in use" if isinstance(error, errors.NickInUse) else \
                "Nickname is registered; log in with SASL or PASS nick:password"
            return [view.numeric("433", error.nick, trailing=why)]
        if isinstance(error, errors.MailboxFull):
            return [line(view.server, "FAIL", "PRIVMSG", "MAILBOX_FULL", error.nick,
                         trailing=f"{error.nick} has too many messages waiting")]
        if isinstance(error, errors.TooManyAttempts):
            return [view.numeric("464", trailing=f"Too many failed logins; try again in {error.seconds} seconds")]
        if isinstance(error, (errors.WrongPassword, errors.NotRegistered)):
            return [view.numeric("464", trailing="Password incorrect")]
        if isinstance(error, errors.Busy):
            return [line(view.server, "FAIL", "*", "TEMPORARILY_UNAVAILABLE",
                         trailing="Server busy; try again in a moment")]
        if isinstance(error, errors.Unavailable):
            return [line(view.server, "FAIL", "*", "TEMPORARILY_UNAVAILABLE", trailing=describe(error))]
        if isinstance(error, errors.InternalError):
            return [line(view.server, "FAIL", "*", "INTERNAL_ERROR", trailing="internal error; the command was not handled")]
        return view.error(error)

    @staticmethod
    def _room(target: str) -> str | None:
        """The room a channel name stands for, or None if C{target} is not a channel."""
        return target[1:] if target.startswith("#") else None

    # --- registration ------------------------------------------------------------------------

    def irc_CAP(self, message: IrcMessage) -> Deferred[Any] | None:
        sub = message.params[0].upper()
        args = message.params[1] if len(message.params) > 1 else ""
        view = self.view
        if sub == "LS":
            if not self.registered:
                self._negotiating = True
            if args.strip() >= "302":
                view.enable("cap-notify")
            offered = " ".join(f"{name}={value}" if value and args.strip() >= "302" else name
                               for name, value in CAPABILITIES.items())
            self.reply(line(view.server, "CAP", view.nick, "LS", trailing=offered))
        elif sub == "LIST":
            self.reply(line(view.server, "CAP", view.nick, "LIST", trailing=" ".join(sorted(view.caps))))
        elif sub == "REQ":
            if not self.registered:
                self._negotiating = True
            wanted = args.split()
            if wanted and all(name.lstrip("-") in CAPABILITIES for name in wanted):
                for name in wanted:
                    view.disable(name[1:]) if name.startswith("-") else view.enable(name)
                self.reply(line(view.server, "CAP", view.nick, "ACK", trailing=args.strip()))
            else:
                self.reply(line(view.server, "CAP", view.nick, "NAK", trailing=args.strip()))
        elif sub == "END":
            self._negotiating = False
            return self._try_register()
        else:
            self.reply(view.numeric("410", sub, trailing="Invalid CAP command"))
        return None

    def irc_NICK(self, message: IrcMessage) -> Deferred[Any] | None:
        nick = message.params[0] if message.params else ""
        if not nick:
            self.reply(self.view.numeric("431", trailing="No nickname given"))
            return None
        if self.registered:
            return self.submit(rq.Nick(nick), lambda error: [] if isinstance(error, errors.AlreadyNamed) else None)
        self._nick = nick
        return self._try_register()

    def irc_USER(self, message: IrcMessage) -> Deferred[Any] | None:
        if self.registered:
            self.reply(self.view.numeric("462", trailing="You may not reregister"))
            return None
        self._user_given = True
        return self._try_register()

    def irc_PASS(self, message: IrcMessage) -> None:
        if self.registered:
            self.reply(self.view.numeric("462", trailing="You may not reregister"))
            return
        self._password = message.params[0]

    def _try_register(self) -> Deferred[Any] | None:
        """Once NICK and USER are in and CAP negotiation is over, log in (proving PASS first)."""
        if self.registered or self._registering or self._negotiating or not (self._nick and self._user_given):
            return None
        assert self.session is not None
        nick, password = self._nick, self._password
        self._registering = True
        done: Deferred[Any]
        if password is not None and self.session.proven is None:
            account, _, secret = password.rpartition(":")
            self._password = None
            done = self.submit(rq.Authenticate(account or nick, secret), self._login_refused)
            done.addCallback(lambda proven: self.submit(rq.Login(nick), self._login_refused) if proven else None)
        else:
            done = self.submit(rq.Login(nick), self._login_refused)

        def finished(result: object) -> None:
            self._registering = False

        return done.addBoth(finished)

    def _login_refused(self, error: ChatError) -> list[str] | None:
        self._nick = None  # the client may pick another with NICK
        return None

    def irc_AUTHENTICATE(self, message: IrcMessage) -> Deferred[Any] | None:
        view = self.view
        value = message.params[0]
        if self.registered:
            self.reply(view.numeric("907", trailing="You have already authenticated"))
            return None
        if value == "*":
            self._sasl, self._sasl_buffer = None, ""
            self.reply(view.numeric("906", trailing="SASL authentication aborted"))
            return None
        if self._sasl is None:
            if value.upper() != "PLAIN":
                self.reply(view.numeric("908", "PLAIN", trailing="are available SASL mechanisms"),
                           view.numeric("904", trailing="SASL authentication failed"))
                return None
            self._sasl = "PLAIN"
            self.reply(line("", "AUTHENTICATE", "+"))
            return None
        if value != "+":
            self._sasl_buffer += value
        if len(value) == 400:
            return None  # more to come
        data, self._sasl, self._sasl_buffer = self._sasl_buffer, None, ""
        try:
            _, account, password = base64.b64decode(data, validate=True).decode("utf-8").split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self.reply(view.numeric("904", trailing="SASL authentication failed"))
            return None
        view.authenticating = True
        done = self.submit(rq.Authenticate(account, password),
                           lambda error: [view.numeric("904", trailing="SASL authentication failed")])

        def outcome(proven: bool) -> None:
            view.authenticating = False
            if proven and self.session is not None and not self.session.closed:  # not refused by a server ban
                self.reply(view.numeric("903", trailing="SASL authentication successful"))

        return done.addCallback(outcome)

    # --- connection life ---------------------------------------------------------------------

    def irc_PING(self, message: IrcMessage) -> None:
        self.reply(line(self.view.server, "PONG", self.view.server, trailing=message.params[0]))

    def irc_PONG(self, message: IrcMessage) -> None:
        """The client answered: nothing more to do (any line counts as life)."""

    def _ping(self) -> None:
        self.reply(line("", "PING", trailing=self.view.server))

    def _ping_timed_out(self) -> None:
        self.reply(line("", "ERROR", trailing=f"Closing link: {self.view.server} (Ping timeout)"))
        self.refuse("ping timeout", None)

    def dataReceived(self, data: bytes) -> None:
        """Any input shows the client is alive."""
        if data:
            self._pinger.alive()
        super().dataReceived(data)

    def irc_QUIT(self, message: IrcMessage) -> Deferred[Any]:
        return self.submit(rq.Quit(message.params[0] if message.params else ""))

    # --- rooms -------------------------------------------------------------------------------

    def irc_JOIN(self, message: IrcMessage) -> Deferred[Any] | None:
        if message.params[0] == "0":
            assert self.session is not None
            for room in [room.name for room in self.session.rooms.values()]:
                self.submit(rq.Part(room))
            return None
        last: Deferred[Any] | None = None
        for target in message.params[0].split(","):
            name = self._room(target)
            if name is None:
                self.reply(self.view.numeric("403", target, trailing="No such channel"))
                continue
            self.view.who_purposes.append("names")  # the members come with the join
            last = self.submit(rq.Join(name, who=True), self._not_joined)
        return last

    def _not_joined(self, error: ChatError) -> list[str] | None:
        self._drop_purpose(self.view.who_purposes)
        return [] if isinstance(error, errors.AlreadyInRoom) else None

    def _names(self, room: str) -> Deferred[Any]:
        self.view.who_purposes.append("names")
        return self.submit(rq.Who(room), lambda error: self._no_list(error, room, "366", "End of /NAMES list"))

    def _no_list(self, error: ChatError, room: str, end: str, text: str) -> list[str] | None:
        """A NAMES or WHO of a channel that does not exist is only the list's end (modern.ircdocs.horse)."""
        self._drop_purpose(self.view.who_purposes)
        if isinstance(error, errors.NoSuchRoom):
            return [self.view.numeric(end, channel(room), trailing=text)]
        return None

    @staticmethod
    def _drop_purpose(purposes: Any) -> None:
        if purposes:
            purposes.pop()
        return None

    def irc_PART(self, message: IrcMessage) -> Deferred[Any] | None:
        reason = message.params[1] if len(message.params) > 1 else ""
        last: Deferred[Any] | None = None
        for target in message.params[0].split(","):
            room = self._room(target)
            if room is None:
                self.reply(self.view.numeric("403", target, trailing="No such channel"))
                continue
            last = self.submit(rq.Part(room, reason))
        return last

    def irc_TOPIC(self, message: IrcMessage) -> Deferred[Any] | None:
        room = self._room(message.params[0])
        if room is None:
            self.reply(self.view.numeric("403", message.params[0], trailing="No such channel"))
            return None
        text = message.params[1] if len(message.params) > 1 else None
        if text == "":
            self.reply(self.view.numeric("461", "TOPIC", trailing="Clearing a topic is not supported"))
            return None
        return self.submit(rq.Topic(room, text))

    def irc_NAMES(self, message: IrcMessage) -> Deferred[Any] | None:
        if not message.params:
            self.reply(self.view.numeric("366", "*", trailing="End of /NAMES list"))
            return None
        room = self._room(message.params[0].split(",")[0])
        if room is None:
            self.reply(self.view.numeric("366", message.params[0], trailing="End of /NAMES list"))
            return None
        return self._names(room)

    def irc_LIST(self, message: IrcMessage) -> Deferred[Any]:
        return self.submit(rq.Rooms())

    def irc_WHO(self, message: IrcMessage) -> Deferred[Any]:
        target = message.params[0]
        room = self._room(target)
        if room is not None:
            self.view.who_purposes.append("who")
            return self.submit(rq.Who(room), lambda error: self._no_list(error, room, "315", "End of /WHO list"))
        return self._ask_users("who", (target,))

    def _ask_users(self, purpose: str, nicks: tuple[str, ...]) -> Deferred[Any]:
        self.view.user_purposes.append(purpose)
        return self.submit(rq.Whois(nicks), lambda error: self._drop_purpose(self.view.user_purposes))

    def irc_WHOIS(self, message: IrcMessage) -> Deferred[Any]:
        return self._ask_users("whois", (message.params[-1].split(",")[0],))

    def irc_ISON(self, message: IrcMessage) -> Deferred[Any]:
        return self._ask_users("ison", tuple(" ".join(message.params).split()))

    def irc_USERHOST(self, message: IrcMessage) -> Deferred[Any]:
        return self._ask_users("userhost", tuple(" ".join(message.params).split()[:5]))

    # --- messages ----------------------------------------------------------------------------

    def irc_PRIVMSG(self, message: IrcMessage) -> Deferred[Any] | None:
        return self._send(message, notice=False)

    def irc_NOTICE(self, message: IrcMessage) -> Deferred[Any] | None:
        return self._send(message, notice=True)

    def _send(self, message: IrcMessage, notice: bool) -> Deferred[Any] | None:
        view = self.view
        # No error ever answers a NOTICE (modern.ircdocs.horse: servers must not reply to one).
        quiet: Callable[[ChatError], list[str] | None] | None = (lambda error: []) if notice else None
        if not message.params or not message.params[0]:
            if not notice:
                self.reply(view.numeric("411", trailing=f"No recipient given ({message.command})"))
            return None
        if len(message.params) < 2 or not message.params[1]:
            if not notice:
                self.reply(view.numeric("412", trailing="No text to send"))
            return None
        text = message.params[1]
        action = text.startswith("\x01ACTION ") and not notice
        if action:
            text = text[len("\x01ACTION "):].rstrip("\x01")
        elif text.startswith("\x01"):
            return None  # other CTCP requests and replies: nobody here answers them
        last: Deferred[Any] | None = None
        for target in message.params[0].split(",")[:4]:
            room = self._room(target)
            if room is None:
                last = self.submit(rq.Tell(target, text, notice=notice, action=action), quiet)
            elif action:
                last = self.submit(rq.Act(room, text), self._cannot_send)
            else:
                last = self.submit(rq.Say(room, text, notice=notice), quiet or self._cannot_send)
        return last

    def _cannot_send(self, error: ChatError) -> list[str] | None:
        if isinstance(error, errors.NotInRoom):
            return [self.view.numeric("404", channel(error.room), trailing="Cannot send to channel")]
        return None

    def irc_AWAY(self, message: IrcMessage) -> Deferred[Any]:
        return self.submit(rq.Away(message.params[0] if message.params else ""))

    # --- questions ---------------------------------------------------------------------------

    def irc_MODE(self, message: IrcMessage) -> Deferred[Any] | None:
        """
        C{MODE #channel [changes [parameters]]}: the channel's modes (324), its ban list, or
        changes, each its own request; C{MODE ownnick [+i|-i]}: the user mode, kept here.
        """
        view = self.view
        target = message.params[0]
        change = message.params[1] if len(message.params) > 1 else ""
        room = self._room(target)
        if room is not None:
            if not change:
                return self.submit(rq.SetModes(room))
            return self.submit_each(self._mode_requests(room, change, message.params[2:]))
        if target.lower() != view.nick.lower():
            self.reply(view.numeric("502", trailing="Can't change mode for other users"))
            return None
        if not change:
            self.reply(view.numeric("221", "+i" if "i" in self._modes else "+"))
            return None
        adding, applied = True, ""
        for char in change:
            if char in "+-":
                adding = char == "+"
            elif char == "i":
                (self._modes.add if adding else self._modes.discard)("i")
                applied += ("+" if adding else "-") + "i"
            else:
                self.reply(view.numeric("501", trailing="Unknown MODE flag"))
        if applied:
            self.reply(line(view.nick, "MODE", view.nick, trailing=applied))
        return None

    def _mode_requests(self, room: str, change: str, args: tuple[str, ...]) -> list[tuple[rq.Request, OnError | None]]:
        """
        The requests a channel MODE change asks for, one per change: C{o} and C{v} with a
        nickname, C{b} with a mask (without one: the ban list), any other letter a room mode
        (the core knows which exist). At most L{MODE_PARAMS} changes with a parameter are made
        (the rest are ignored, as ISUPPORT MODES says); a flag repeated in one command acts once.
        """
        requests: list[tuple[rq.Request, OnError | None]] = []
        params = list(args)
        adding, with_param = True, 0
        seen: set[object] = set()  # the list asked for, and each flag change made
        for char in change:
            if char in "+-":
                adding = char == "+"
                continue
            if char in PREFIX_MODES + LIST_MODES:
                if not params:
                    if char in LIST_MODES and char not in seen:
                        seen.add(char)
                        requests.append((rq.ListBans(room), None))
                    continue  # an operator or voice change without a nickname is ignored
                arg = params.pop(0)
                with_param += 1
                if with_param > MODE_PARAMS:
                    continue
                if char == "o":
                    requests.append((rq.SetOperator(room, arg, adding), None))
                elif char == "v":
                    requests.append((rq.SetVoice(room, arg, adding), None))
                else:
                    mask = ban_mask(arg, self.view.server)
                    requests.append((rq.SetBan(room, mask, adding), self._mask_error(room, char, arg)))
            elif (adding, char) not in seen:
                seen.add((adding, char))
                requests.append((rq.SetModes(room, ("+" if adding else "-") + char), None))
        return requests

    def _mask_error(self, room: str, mode: str, mask: str) -> OnError:
        """A bad ban mask in a MODE command: ERR_INVALIDMODEPARAM (696), as ergo and InspIRCd answer."""
        def answer(error: ChatError) -> list[str] | None:
            if isinstance(error, errors.InvalidMask):
                return [self.view.numeric("696", channel(room), mode, mask,
                                          trailing=f"Invalid ban mask {mask}: use nick!*@*, *!*@address, "
                                                   "*!*@network/bits or account:NAME")]
            return None
        return answer

    # --- channel operators -------------------------------------------------------------------

    def irc_KICK(self, message: IrcMessage) -> Deferred[Any] | None:
        """C{KICK #channel nick[,nick...] [:reason]}: one Kick per nickname (at most four)."""
        room = self._room(message.params[0])
        if room is None:
            self.reply(self.view.numeric("403", message.params[0], trailing="No such channel"))
            return None
        reason = message.params[2] if len(message.params) > 2 else ""
        nicks = [nick for nick in message.params[1].split(",") if nick][:4]
        return self.submit_each([(rq.Kick(room, nick, reason), None) for nick in nicks])

    def irc_INVITE(self, message: IrcMessage) -> Deferred[Any] | None:
        """C{INVITE nick #channel}: 341 to the inviter, an INVITE to the one invited."""
        nick, target = message.params[0], message.params[1]
        room = self._room(target)
        if room is None:
            self.reply(self.view.numeric("403", target, trailing="No such channel"))
            return None
        return self.submit(rq.Invite(room, nick))

    def irc_CLAIM(self, message: IrcMessage) -> Deferred[Any] | None:
        """C{CLAIM #channel}: keep the channel for one's account (the line door's C{/claim})."""
        room = self._room(message.params[0])
        if room is None:
            self.reply(self.view.numeric("403", message.params[0], trailing="No such channel"))
            return None
        return self.submit(rq.Claim(room), lambda error: self.view.moderation_error(error, "CLAIM"))

    # --- server operators --------------------------------------------------------------------

    def irc_KILL(self, message: IrcMessage) -> Deferred[Any]:
        """C{KILL nick [:reason]}."""
        return self.submit(rq.KillUser(message.params[0], message.params[1] if len(message.params) > 1 else ""))

    def irc_WALLOPS(self, message: IrcMessage) -> Deferred[Any]:
        """C{WALLOPS :text}, shown to everyone online."""
        return self.submit(rq.Wall(message.params[0]))

    def irc_GBAN(self, message: IrcMessage) -> Deferred[Any] | None:
        """
        C{GBAN mask [duration] [:reason]} (the line door's C{/gban}): a single word starting with a
        digit after the mask is the duration (C{90}, C{30m}, C{7d}); what follows is the reason.
        """
        mask, rest = message.params[0], list(message.params[1:])
        seconds = None
        if rest and rest[0][:1].isdigit() and " " not in rest[0]:
            try:
                seconds = parse_duration(rest.pop(0))
            except errors.InvalidDuration as error:
                self.reply(*(self.view.moderation_error(error, "GBAN") or []))
                return None
        return self.submit(rq.ServerBan(mask, True, seconds, " ".join(rest)),
                           lambda error: self.view.moderation_error(error, "GBAN"))

    def irc_UNGBAN(self, message: IrcMessage) -> Deferred[Any]:
        """C{UNGBAN mask}: lift a server ban."""
        return self.submit(rq.ServerBan(message.params[0], add=False),
                           lambda error: self.view.moderation_error(error, "UNGBAN"))

    def irc_GBANS(self, message: IrcMessage) -> Deferred[Any]:
        """C{GBANS}: the server bans in force, as notices."""
        return self.submit(rq.ListServerBans())

    def irc_LUSERS(self, message: IrcMessage) -> None:
        self.view.online = self.factory.service.online
        self.reply(*self.view.lusers())

    def irc_MOTD(self, message: IrcMessage) -> None:
        self.reply(self.view.numeric("422", trailing="MOTD File is missing"))

    def irc_TIME(self, message: IrcMessage) -> Deferred[Any]:
        return self.submit(rq.Time())

    def irc_CHATHISTORY(self, message: IrcMessage) -> Deferred[Any] | None:
        """
        C{CHATHISTORY LATEST|BEFORE|AFTER|AROUND <#channel> <timestamp=...|msgid=...|*> <limit>},
        answered from the store in a C{chathistory} batch.
        """
        sub, target = message.params[0].upper(), message.params[1]
        room = self._room(target)
        if sub not in ("LATEST", "BEFORE", "AFTER", "AROUND") or len(message.params) < 4:
            self.reply(line(self.view.server, "FAIL", "CHATHISTORY", "INVALID_PARAMS", sub,
                            trailing="expected LATEST, BEFORE, AFTER or AROUND, a target, a point and a limit"))
            return None
        if room is None:
            self.reply(line(self.view.server, "FAIL", "CHATHISTORY", "INVALID_TARGET", sub, target,
                            trailing="only channels have history here"))
            return None
        point = parse_point(message.params[2])
        try:
            limit = int(message.params[3])
        except ValueError:
            limit = 0
        if limit < 1 or (point is None and message.params[2] != "*") or (point is None and sub != "LATEST"):
            self.reply(line(self.view.server, "FAIL", "CHATHISTORY", "INVALID_PARAMS", sub,
                            trailing="invalid message reference or limit"))
            return None
        request = {
            "LATEST": rq.ReadHistory(room, limit, after=point, newest=True),
            "BEFORE": rq.ReadHistory(room, limit, before=point),
            "AFTER": rq.ReadHistory(room, limit, after=point),
            "AROUND": rq.ReadHistory(room, limit, around=point),
        }[sub]
        return self.submit(request)


def parse_point(reference: str) -> HistoryPoint | None:
    """A CHATHISTORY message reference (C{timestamp=...} or C{msgid=...}) as a place in history."""
    kind, _, value = reference.partition("=")
    try:
        if kind == "msgid":
            return HistoryPoint(id=int(value))
        if kind == "timestamp":
            return HistoryPoint(when=datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None
    return None


#: Every IRC command the door understands.
COMMANDS: dict[str, IrcCommand] = {
    "CAP": IrcCommand(IrcProtocol.irc_CAP, 1, 0.5, before_registration=True),
    "NICK": IrcCommand(IrcProtocol.irc_NICK, 0, 2.0, before_registration=True),
    "USER": IrcCommand(IrcProtocol.irc_USER, 4, 1.0, before_registration=True),
    "PASS": IrcCommand(IrcProtocol.irc_PASS, 1, 1.0, before_registration=True),
    "AUTHENTICATE": IrcCommand(IrcProtocol.irc_AUTHENTICATE, 1, 1.0, before_registration=True),
    "PING": IrcCommand(IrcProtocol.irc_PING, 1, 0.5, before_registration=True),
    "PONG": IrcCommand(IrcProtocol.irc_PONG, 0, 0.5, before_registration=True),
    "QUIT": IrcCommand(IrcProtocol.irc_QUIT, 0, 1.0, before_registration=True),
    "JOIN": IrcCommand(IrcProtocol.irc_JOIN, 1, 2.0),
    "PART": IrcCommand(IrcProtocol.irc_PART, 1, 2.0),
    "TOPIC": IrcCommand(IrcProtocol.irc_TOPIC, 1, 1.0),
    "NAMES": IrcCommand(IrcProtocol.irc_NAMES, 0, 2.0),
    "LIST": IrcCommand(IrcProtocol.irc_LIST, 0, 2.0),
    "WHO": IrcCommand(IrcProtocol.irc_WHO, 1, 2.0),
    "WHOIS": IrcCommand(IrcProtocol.irc_WHOIS, 1, 2.0),
    "ISON": IrcCommand(IrcProtocol.irc_ISON, 1, 1.0),
    "USERHOST": IrcCommand(IrcProtocol.irc_USERHOST, 1, 1.0),
    "PRIVMSG": IrcCommand(IrcProtocol.irc_PRIVMSG, 0, 1.0),
    "NOTICE": IrcCommand(IrcProtocol.irc_NOTICE, 0, 1.0),
    "AWAY": IrcCommand(IrcProtocol.irc_AWAY, 0, 1.0),
    "MODE": IrcCommand(IrcProtocol.irc_MODE, 1, 1.0),
    "KICK": IrcCommand(IrcProtocol.irc_KICK, 2, 2.0),
    "INVITE": IrcCommand(IrcProtocol.irc_INVITE, 2, 2.0),
    "CLAIM": IrcCommand(IrcProtocol.irc_CLAIM, 1, 3.0),
    "KILL": IrcCommand(IrcProtocol.irc_KILL, 1, 2.0),
    "WALLOPS": IrcCommand(IrcProtocol.irc_WALLOPS, 1, 2.0),
    "GBAN": IrcCommand(IrcProtocol.irc_GBAN, 1, 3.0),
    "UNGBAN": IrcCommand(IrcProtocol.irc_UNGBAN, 1, 2.0),
    "GBANS": IrcCommand(IrcProtocol.irc_GBANS, 0, 2.0),
    "LUSERS": IrcCommand(IrcProtocol.irc_LUSERS, 0, 2.0),
    "MOTD": IrcCommand(IrcProtocol.irc_MOTD, 0, 2.0),
    "TIME": IrcCommand(IrcProtocol.irc_TIME, 0, 1.0),
    "CHATHISTORY": IrcCommand(IrcProtocol.irc_CHATHISTORY, 3, 5.0),
}
