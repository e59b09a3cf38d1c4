"""
The line door's dialect: slash commands, C{//}, the nickname and password dialogue, C{/help}.

L{SlashSession} turns each line a user typed into the core's typed requests, from the one table
L{COMMANDS} (handler, flood cost, usable before login, help). It keeps the line protocol's habits
that the core does not have: a user is in one room at a time (joining another parts the old
one), a registered nickname typed at the prompt asks for its password on the next line. It shows
what it finds itself (prompts, usage errors) through the session, in turn; it never touches a
transport.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from chat_twisted import requests as rq
from chat_twisted.errors import ChatError, EmptyText, InvalidDuration, NickRegistered, NotLoggedIn
from chat_twisted.masks import parse_duration
from chat_twisted.model import LOBBY, ErrorReply, Event, name_key, sanitise
from chat_twisted.sessions import Session

# --- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """A plain line of chat for the user's room (a leading C{//} already turned into C{/})."""

    text: str


@dataclass(frozen=True, slots=True)
class Command:
    """
    A C{/name args} line: C{name} in lower case without the slash, C{args} the rest of the line
    with the whitespace around it removed.
    """

    name: str
    args: str


Line = Message | Command


def parse_line(line: str) -> Line:
    """
    Classify one line: a command if it starts with a single C{/}, otherwise a message.

    C{//text} is the message C{/text}; a lone C{/} or C{/ text} is a message as typed.
    """
    if line.startswith("//"):
        return Message(line[1:])
    if line.startswith("/") and len(line) > 1 and not line[1].isspace():
        name, *rest = line[1:].split(None, 1)
        return Command(name.lower(), rest[0].strip() if rest else "")
    return Message(line)


# --- what only this door shows ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NickPrompt(Event):
    """Ask the connection to choose a nickname; C{first} is true for the greeting on connect."""

    first: bool = False


@dataclass(frozen=True, slots=True)
class PasswordPrompt(Event):
    """C{nick} is registered: ask for its password (or another nickname)."""

    nick: str


@dataclass(frozen=True, slots=True)
class HelpEntry:
    """One command as listed by C{/help}."""

    usage: str
    description: str


@dataclass(frozen=True, slots=True)
class HelpText(Event):
    """Every command with a one-line description."""

    entries: tuple[HelpEntry, ...]


@dataclass(eq=False, repr=False)
class Usage(ChatError):
    """A command was given missing or malformed arguments; C{usage} says how to give it."""

    usage: str


@dataclass(eq=False, repr=False)
class UnknownCommand(ChatError):
    """The line starts with C{/} but names no command."""

    name: str


@dataclass(eq=False, repr=False)
class PasswordExpected(ChatError):
    """A command other than C{/nick}, C{/login} or C{/quit} was typed at the password prompt."""

    nick: str


# --- the command table ------------------------------------------------------------------------

Handler = Callable[["SlashSession", str], "Deferred[Any] | None"]


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """One slash command: its handler, its flood-control cost, whether it works before login, its help."""

    handler: Handler
    usage: str
    help: str
    cost: float = 1.0
    before_login: bool = False


def _words(args: str, count: int, usage: str) -> list[str]:
    words = args.split()
    if len(words) != count:
        raise Usage(usage)
    return words


def _word_and_rest(args: str, usage: str) -> tuple[str, str]:
    """The first word of C{args} (there must be one) and the rest, stripped."""
    words = args.split(None, 1)
    if not words:
        raise Usage(usage)
    return words[0], words[1].strip() if len(words) > 1 else ""


class SlashSession:
    """
    One line-door user's dialogue with the core: the session, and the nickname whose password
    the prompt waits for. C{handle_line} takes each decoded line in turn.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self.pending_nick: str | None = None

    @property
    def room(self) -> str:
        """
        The user's one room (the line door keeps each user in one while logged in; only one
        kicked from the lobby is in none, and is then said to be in the lobby, which it is not).
        """
        return next((room.name for room in self.session.rooms.values()), LOBBY)

    def handle_line(self, line: str) -> Deferred[Any] | None:
        """Act on one line; return a Deferred when the next line must wait for it to take effect."""
        if self.session.closed:  # lines handed in after a quit or a disconnection are ignored
            return None
        try:
            if self.session.nick is None:
                return self._login_line(line)
            parsed = parse_line(line)
            if isinstance(parsed, Message):
                return self.submit(rq.Say(self.room, parsed.text))
            command = COMMANDS.get(parsed.name)
            if command is None:
                raise UnknownCommand(sanitise(parsed.name))
            return command.handler(self, parsed.args)
        except ChatError as error:
            self._show_error(error)
            return None

    def submit(self, request: rq.Request, usage: str | None = None) -> Deferred[Any]:
        """Submit C{request}; show why if it fails (as C{usage} when it had nothing to send)."""
        done = self.session.submit(request)
        done.addErrback(self._failed, usage)
        return done

    def show(self, event: Event) -> None:
        """Show an event this door made, in turn."""
        self.session.show(event)

    def _failed(self, failure: Failure, usage: str | None) -> None:
        failure.trap(ChatError)
        error = failure.value
        if isinstance(error, EmptyText) and usage is not None:
            error = Usage(usage)
        self._show_error(error)

    def _show_error(self, error: ChatError) -> None:
        """Show C{error}, then ask again for what login still needs."""
        self.show(ErrorReply(error))
        self._prompt()

    def _prompt(self) -> None:
        if self.session.nick is not None or self.session.closed:
            return
        if self.pending_nick is not None:
            self.show(PasswordPrompt(self.pending_nick))
        else:
            self.show(NickPrompt())

    # --- login -------------------------------------------------------------------------------

    def _login_line(self, line: str) -> Deferred[Any] | None:
        """A line before login: a nickname, a password, C{/nick}, C{/login} or C{/quit}."""
        text = line.strip()
        parsed = parse_line(text)
        if isinstance(parsed, Command):
            command = COMMANDS.get(parsed.name)
            if command is not None and command.before_login:
                return command.handler(self, parsed.args)
            if self.pending_nick is not None:
                raise PasswordExpected(self.pending_nick)
            raise NotLoggedIn()
        if self.pending_nick is not None:
            if not text:
                self._prompt()
                return None
            return self.log_in(self.pending_nick, text)
        return self.choose_nick(text)

    def choose_nick(self, nick: str) -> Deferred[Any]:
        """Log in as guest C{nick}, or ask for its password if it is registered."""
        self.pending_nick = None
        done = self.session.submit(rq.Login(nick, None, (LOBBY,)))

        def failed(failure: Failure) -> None:
            failure.trap(ChatError)
            if isinstance(failure.value, NickRegistered):
                self.pending_nick = nick
                self.show(PasswordPrompt(nick))
            else:
                self._show_error(failure.value)

        return done.addErrback(failed)

    def log_in(self, nick: str, password: str) -> Deferred[Any]:
        """Log in to registered C{nick} with C{password}."""
        return self.submit(rq.Login(nick, password, (LOBBY,)))

    # --- commands ----------------------------------------------------------------------------

    def cmd_nick(self, args: str) -> Deferred[Any]:
        if self.session.nick is None:
            return self.choose_nick(args)
        if not args:
            raise Usage("/nick NEW")
        return self.submit(rq.Nick(args))

    def cmd_login(self, args: str) -> Deferred[Any]:
        nick, password = _words(args, 2, "/login NICK PASSWORD")
        return self.log_in(nick, password)

    def cmd_quit(self, args: str) -> Deferred[Any]:
        return self.submit(rq.Quit(args))

    def cmd_who(self, args: str) -> Deferred[Any]:
        return self.submit(rq.Who(self.room))

    def cmd_time(self, args: str) -> Deferred[Any]:
        return self.submit(rq.Time())

    def cmd_whois(self, args: str) -> Deferred[Any]:
        (nick,) = _words(args, 1, "/whois NICK")
        return self.submit(rq.Whois((nick,)))

    def cmd_msg(self, args: str) -> Deferred[Any]:
        words = args.split(None, 1)
        if len(words) < 2:
            raise Usage("/msg NICK TEXT")
        return self.submit(rq.Tell(words[0], words[1]), usage="/msg NICK TEXT")

    def cmd_me(self, args: str) -> Deferred[Any]:
        return self.submit(rq.Act(self.room, args), usage="/me TEXT")

    def cmd_join(self, args: str) -> Deferred[Any]:
        if not args:
            raise Usage("/join ROOM")
        return self.move(args[1:] if args.startswith("#") else args)

    def cmd_part(self, args: str) -> Deferred[Any]:
        return self.move(LOBBY)

    def move(self, name: str) -> Deferred[Any]:
        """
        Enter room C{name} and leave the one the user was in (this door's one-room habit). The
        core decides whether C{name} may be entered; only once it has been is the old one left.
        """
        old = next((room.name for room in self.session.rooms.values()), None)  # None: kicked from the lobby

        def joined(_: object) -> Deferred[Any] | None:
            new = next((room.name for room in self.session.rooms.values() if room.key == name_key(name)), None)
            if new is None or old is None or self.session.closed:
                return None
            return self.submit(rq.Part(old, f"moved to {new}"))

        return self.session.submit(rq.Join(name)).addCallbacks(joined, self._failed, errbackArgs=(None,))

    def cmd_rooms(self, args: str) -> Deferred[Any]:
        return self.submit(rq.Rooms())

    def cmd_topic(self, args: str) -> Deferred[Any]:
        return self.submit(rq.Topic(self.room, args or None), usage="/topic [TEXT]")

    def cmd_history(self, args: str) -> Deferred[Any]:
        try:
            count = int(args) if args else DEFAULT_HISTORY
        except ValueError:
            raise Usage("/history [N], N a whole number") from None
        if count < 1:
            raise Usage("/history [N], N at least 1")
        return self.submit(rq.ReadHistory(self.room, count))

    def cmd_search(self, args: str) -> Deferred[Any]:
        if not args:
            raise Usage("/search TEXT")
        return self.submit(rq.Search(args), usage="/search TEXT")

    def cmd_help(self, args: str) -> None:
        self.show(HelpText(HELP))

    def cmd_register(self, args: str) -> Deferred[Any]:
        if not args:
            raise Usage("/register PASSWORD")
        return self.submit(rq.Register(args))

    def cmd_password(self, args: str) -> Deferred[Any]:
        old, new = _words(args, 2, "/password OLD NEW")
        return self.submit(rq.ChangePassword(old, new))

    def cmd_logout(self, args: str) -> Deferred[Any]:
        return self.submit(rq.Logout())

    # --- moderation: each acts on the user's room ------------------------------------------------

    def cmd_claim(self, args: str) -> Deferred[Any]:
        return self.submit(rq.Claim(self.room))

    def cmd_op(self, args: str) -> Deferred[Any]:
        (nick,) = _words(args, 1, "/op NICK")
        return self.submit(rq.SetOperator(self.room, nick, give=True))

    def cmd_deop(self, args: str) -> Deferred[Any]:
        (nick,) = _words(args, 1, "/deop NICK")
        return self.submit(rq.SetOperator(self.room, nick, give=False))

    def cmd_voice(self, args: str) -> Deferred[Any]:
        (nick,) = _words(args, 1, "/voice NICK")
        return self.submit(rq.SetVoice(self.room, nick, give=True))

    def cmd_devoice(self, args: str) -> Deferred[Any]:
        (nick,) = _words(args, 1, "/devoice NICK")
        return self.submit(rq.SetVoice(self.room, nick, give=False))

    def cmd_kick(self, args: str) -> Deferred[Any]:
        nick, reason = _word_and_rest(args, "/kick NICK [REASON]")
        return self.submit(rq.Kick(self.room, nick, reason))

    def cmd_ban(self, args: str) -> Deferred[Any]:
        (mask,) = _words(args, 1, "/ban MASK")
        return self.submit(rq.SetBan(self.room, mask, add=True))

    def cmd_unban(self, args: str) -> Deferred[Any]:
        (mask,) = _words(args, 1, "/unban MASK")
        return self.submit(rq.SetBan(self.room, mask, add=False))

    def cmd_bans(self, args: str) -> Deferred[Any]:
        return self.submit(rq.ListBans(self.room))

    def cmd_invite(self, args: str) -> Deferred[Any]:
        (nick,) = _words(args, 1, "/invite NICK")
        return self.submit(rq.Invite(self.room, nick))

    def cmd_mode(self, args: str) -> Deferred[Any]:
        if args and (len(args.split()) != 1 or args[0] not in "+-"):
            raise Usage("/mode [+|-][imt]")
        return self.submit(rq.SetModes(self.room, args or None))

    def cmd_kill(self, args: str) -> Deferred[Any]:
        nick, reason = _word_and_rest(args, "/kill NICK [REASON]")
        return self.submit(rq.KillUser(nick, reason))

    def cmd_gban(self, args: str) -> Deferred[Any]:
        mask, rest = _word_and_rest(args, "/gban MASK [DURATION] [REASON]")
        first, _, reason = rest.partition(" ")
        seconds = None
        if first:
            try:
                seconds = parse_duration(first)
            except InvalidDuration:
                if first[0].isdigit():
                    raise
                reason = rest
        return self.submit(rq.ServerBan(mask, True, seconds, reason.strip()))

    def cmd_ungban(self, args: str) -> Deferred[Any]:
        (mask,) = _words(args, 1, "/ungban MASK")
        return self.submit(rq.ServerBan(mask, add=False))

    def cmd_gbans(self, args: str) -> Deferred[Any]:
        return self.submit(rq.ListServerBans())

    def cmd_wall(self, args: str) -> Deferred[Any]:
        if not args:
            raise Usage("/wall TEXT")
        return self.submit(rq.Wall(args), usage="/wall TEXT")


#: Messages C{/history} shows without a count.
DEFAULT_HISTORY = 20

#: Every slash command, in the order C{/help} lists them.
COMMANDS: dict[str, SlashCommand] = {
    "nick": SlashCommand(SlashSession.cmd_nick, "/nick NEW", "change your nickname", 3.0, before_login=True),
    "who": SlashCommand(SlashSession.cmd_who, "/who", "list the users in your room", 2.0),
    "whois": SlashCommand(SlashSession.cmd_whois, "/whois NICK", "show who NICK is: their account, rooms, away",
                          2.0),
    "msg": SlashCommand(SlashSession.cmd_msg, "/msg NICK TEXT", "send a private message that only NICK sees"),
    "me": SlashCommand(SlashSession.cmd_me, "/me TEXT", "describe an action to your room"),
    "join": SlashCommand(SlashSession.cmd_join, "/join ROOM", "leave your room and enter ROOM (created if new)", 3.0),
    "part": SlashCommand(SlashSession.cmd_part, "/part", "leave your room and go back to the lobby", 2.0),
    "rooms": SlashCommand(SlashSession.cmd_rooms, "/rooms", "list every room with its member count and topic", 2.0),
    "topic": SlashCommand(SlashSession.cmd_topic, "/topic [TEXT]", "show your room's topic, or set it to TEXT"),
    "history": SlashCommand(SlashSession.cmd_history, "/history [N]",
                            "replay the last N messages of your room (default 20, at most 500)", 5.0),
    "search": SlashCommand(SlashSession.cmd_search, "/search TEXT",
                           "find messages with these words in the rooms you are in", 5.0),
    "time": SlashCommand(SlashSession.cmd_time, "/time", "show the server's date and time"),
    "register": SlashCommand(SlashSession.cmd_register, "/register PASSWORD",
                             "register your nickname so that only you can use it", 3.0),
    "login": SlashCommand(SlashSession.cmd_login, "/login NICK PASSWORD", "log in to a registered nickname", 3.0,
                          before_login=True),
    "password": SlashCommand(SlashSession.cmd_password, "/password OLD NEW", "change your password", 3.0),
    "logout": SlashCommand(SlashSession.cmd_logout, "/logout", "log out and choose a nickname anew"),
    "claim": SlashCommand(SlashSession.cmd_claim, "/claim",
                          "keep your room's operators, bans, modes and topic (registered operators)", 3.0),
    "op": SlashCommand(SlashSession.cmd_op, "/op NICK", "make NICK an operator of your room (operators)"),
    "deop": SlashCommand(SlashSession.cmd_deop, "/deop NICK", "take NICK's operator status (operators)"),
    "voice": SlashCommand(SlashSession.cmd_voice, "/voice NICK", "let NICK speak when the room is moderated"),
    "devoice": SlashCommand(SlashSession.cmd_devoice, "/devoice NICK", "take NICK's voice"),
    "kick": SlashCommand(SlashSession.cmd_kick, "/kick NICK [REASON]", "remove NICK from your room (operators)"),
    "ban": SlashCommand(SlashSession.cmd_ban, "/ban MASK",
                        "keep out a nickname (* and ? allowed), account:NAME, or an address or CIDR (operators)"),
    "unban": SlashCommand(SlashSession.cmd_unban, "/unban MASK", "lift a ban (operators)"),
    "bans": SlashCommand(SlashSession.cmd_bans, "/bans", "list your room's bans", 2.0),
    "invite": SlashCommand(SlashSession.cmd_invite, "/invite NICK", "let NICK into your room even if invite-only"),
    "mode": SlashCommand(SlashSession.cmd_mode, "/mode [+|-][imt]",
                         "show or change your room's modes: i invite-only, m moderated, t topic-locked"),
    "kill": SlashCommand(SlashSession.cmd_kill, "/kill NICK [REASON]", "disconnect NICK (server operators)"),
    "gban": SlashCommand(SlashSession.cmd_gban, "/gban MASK [DURATION] [REASON]",
                         "ban an account:NAME, address or CIDR from the server, e.g. for 7d (server operators)", 3.0),
    "ungban": SlashCommand(SlashSession.cmd_ungban, "/ungban MASK", "lift a server ban (server operators)"),
    "gbans": SlashCommand(SlashSession.cmd_gbans, "/gbans", "list the server bans (server operators)", 2.0),
    "wall": SlashCommand(SlashSession.cmd_wall, "/wall TEXT", "send TEXT to everyone online (server operators)",
                         3.0),
    "help": SlashCommand(SlashSession.cmd_help, "/help", "show this list"),
    "quit": SlashCommand(SlashSession.cmd_quit, "/quit [REASON]", "leave the chat", before_login=True),
}

#: What C{/help} shows: every command, then how to send a line that starts with C{/}.
HELP: tuple[HelpEntry, ...] = tuple(HelpEntry(command.usage, command.help) for command in COMMANDS.values()) + (
    HelpEntry("//TEXT", "send a message that starts with /"),
)


def line_cost(line: str) -> float:
    """Return how many flood-control tokens C{line} costs: 1 for a message, more for heavier commands."""
    parsed = parse_line(line)
    if isinstance(parsed, Command):
        command = COMMANDS.get(parsed.name)
        return command.cost if command is not None else 1.0
    return 1.0
