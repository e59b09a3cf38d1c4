"""
How the IRC door shows each core event and error: IRC lines, shaped by the capabilities the
client negotiated (server-time, echo-message, account-tag, batch, ...).

L{IrcView} holds what rendering needs to know of one connection (its nickname, capabilities,
and what each of its pending questions was for) and turns events into lines without CRLF. It
never touches a transport; the door writes what it returns.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Container
from datetime import datetime, tzinfo
from functools import singledispatchmethod

from chat_twisted import __version__, errors
from chat_twisted.errors import ChatError
from chat_twisted.masks import ACCOUNT_PREFIX
from chat_twisted.model import (
    MAX_NAME_LENGTH,
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
    UserInfo,
    UserList,
    UserQuit,
    Wallops,
    Welcome,
    WhoList,
)
from chat_twisted.moderation import ROOM_MODES
from chat_twisted.publishing import MAX_HISTORY
from chat_twisted.wire.irc_syntax import MAX_LINE, line, server_time, split_text, tag_section

#: What the server calls itself, and the network, unless configured otherwise.
SERVER_NAME = "chat.twisted"
NETWORK = "chat_twisted"
#: The longest topic shown, in characters.
TOPIC_LENGTH = 390
#: Messages a CHATHISTORY request returns at most: the core's limit on one history read.
CHATHISTORY_LIMIT = MAX_HISTORY
#: Channel modes with a parameter (a nickname, or a ban mask) one MODE command may change (MODES).
MODE_PARAMS = 4
#: Channel modes: C{b} is a list (its parameter a mask), C{o} and C{v} take a nickname, the room's
#: own modes (invite-only, moderated, topic-locked) none.
LIST_MODES = "b"
PREFIX_MODES = "ov"
FLAG_MODES = "".join(sorted(ROOM_MODES))
#: The prefix each of PREFIX_MODES gives a member in NAMES and WHO.
PREFIXES = {"o": "@", "v": "+"}

#: Every capability the door offers, with its value for CAP LS 302.
CAPABILITIES: dict[str, str] = {
    "account-notify": "",
    "account-tag": "",
    "away-notify": "",
    "batch": "",
    "cap-notify": "",
    "draft/chathistory": "",
    "echo-message": "",
    "message-tags": "",
    "multi-prefix": "",
    "sasl": "PLAIN",
    "server-time": "",
}


def isupport() -> list[str]:
    """The RPL_ISUPPORT tokens, honest about what the door does."""
    return [
        "CASEMAPPING=ascii", "CHANTYPES=#", f"NICKLEN={MAX_NAME_LENGTH}", f"CHANNELLEN={MAX_NAME_LENGTH + 1}",
        f"TOPICLEN={TOPIC_LENGTH}", f"PREFIX=({PREFIX_MODES}){''.join(PREFIXES[mode] for mode in PREFIX_MODES)}",
        f"CHANMODES={LIST_MODES},,,{FLAG_MODES}", f"NETWORK={NETWORK}", "UTF8ONLY",
        "TARGMAX=PRIVMSG:4,NOTICE:4,JOIN:10,PART:10,WHOIS:1,NAMES:1,KICK:4", f"CHATHISTORY={CHATHISTORY_LIMIT}",
        "MSGREFTYPES=timestamp", "AWAYLEN=300", f"MODES={MODE_PARAMS}", "STATUSMSG=", "CHANLIMIT=#:",
    ]


_CAPABILITY_SETS: dict[frozenset[str], frozenset[str]] = {}


def _canonical(caps: frozenset[str]) -> frozenset[str]:
    """The one shared object for this set of capabilities, so that views compare them by identity."""
    return _CAPABILITY_SETS.setdefault(caps, caps)


def channel(room: str) -> str:
    """Room C{room} as an IRC channel."""
    return "#" + room


def mask(nick: str) -> str:
    """The C{nick!user@host} a user is shown with (no address is ever revealed)."""
    return f"{nick}!{nick[:10]}@{SERVER_NAME}"


def ban_hostmask(canonical: str) -> str:
    """
    A ban's canonical mask (see L{chat_twisted.masks}) as IRC clients expect one: C{spam*} as
    C{spam*!*@*}, an address as C{*!*@192.0.2.1}, a network as C{*!*@10.0.0.0/8}; an
    C{account:NAME} mask as it is. Each reads back as the same mask.
    """
    if canonical.startswith(ACCOUNT_PREFIX):
        return canonical
    if "/" in canonical:
        try:
            network = ipaddress.ip_network(canonical)
        except ValueError:
            return canonical
        host = str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)
        return f"*!*@{host}"
    return f"{canonical}!*@*"


class IrcView:
    """
    One IRC connection's way of showing events: its nickname (C{*} until it has one), its
    enabled capabilities, the purposes of its pending L{WhoList} and L{UserList} questions,
    which the door notes as it asks, and whether a SASL exchange awaits its outcome.
    """

    def __init__(self, timezone: tzinfo, started: float = 0.0, server: str = SERVER_NAME) -> None:
        self.timezone = timezone
        self.started = started
        self.server = server
        self.nick = "*"
        self.caps: frozenset[str] = frozenset()  # replaced, never changed: see enable
        self.who_purposes: deque[str] = deque()  # "names" or "who"
        self.user_purposes: deque[str] = deque()  # "whois", "who", "ison" or "userhost"
        self.online = 0
        self.authenticating = False  # a SASL exchange awaits its outcome
        self._batch = 0

    def enable(self, name: str) -> None:
        """Turn capability C{name} on."""
        self.caps = _canonical(self.caps | {name})

    def disable(self, name: str) -> None:
        """Turn capability C{name} off."""
        self.caps = _canonical(self.caps - {name})

    # --- building lines ----------------------------------------------------------------------

    def numeric(self, code: str, *params: str, trailing: str | None = None) -> str:
        """A numeric reply to this client."""
        return line(self.server, code, self.nick, *params, trailing=trailing)

    def _tags(self, when: float | None = None, account: str | None = None, batch: str | None = None,
              msgid: int = 0) -> dict[str, str]:
        tags: dict[str, str] = {}
        if batch is not None:
            tags["batch"] = batch
        if when is not None and "server-time" in self.caps:
            tags["time"] = server_time(when)
        if msgid and "message-tags" in self.caps:
            tags["msgid"] = str(msgid)
        if account and "account-tag" in self.caps:
            tags["account"] = account
        return tags

    def _message(self, sender: str, command: str, target: str, text: str, tags: dict[str, str],
                 source: str | None = None) -> list[str]:
        """
        C{command} (PRIVMSG or NOTICE) lines from user C{sender} (or from C{source}, a prefix as
        it is) carrying C{text}, split to fit; each piece of a CTCP ACTION stays an ACTION.
        """
        head = tag_section(tags) + line(source or mask(sender), command, target, trailing="")
        room = MAX_LINE - 2 - len(head.encode("utf-8")) + len(tag_section(tags).encode("utf-8"))
        if text.startswith("\x01ACTION ") and text.endswith("\x01"):
            return [f"{head}\x01ACTION {piece}\x01" for piece in split_text(text[8:-1], room - 9)]
        return [head + piece for piece in split_text(text, room)]

    def _is_me(self, nick: str) -> bool:
        return nick.lower() == self.nick.lower()

    # --- events ------------------------------------------------------------------------------

    @singledispatchmethod
    def render(self, event: Event) -> list[str]:
        """Return the lines that show C{event} to this client (none for what it need not see)."""
        return []

    @render.register
    def _(self, event: Welcome) -> list[str]:
        self.nick = event.nick
        self.online = event.online
        created = datetime.fromtimestamp(self.started, self.timezone).strftime("%Y-%m-%d %H:%M:%S")
        lines = [
            self.numeric("001", trailing=f"Welcome to the {NETWORK} IRC network, {mask(event.nick)}"),
            self.numeric("002", trailing=f"Your host is {self.server}, running chat_twisted-{__version__}"),
            self.numeric("003", trailing=f"This server was created {created}"),
            self.numeric("004", self.server, f"chat_twisted-{__version__}", "i",
                         "".join(sorted(LIST_MODES + PREFIX_MODES + FLAG_MODES)), "".join(sorted(LIST_MODES + PREFIX_MODES))),
        ]
        tokens = isupport()
        for start in range(0, len(tokens), 12):
            lines.append(self.numeric("005", *tokens[start:start + 12], trailing="are supported by this server"))
        lines += self.lusers()
        lines.append(self.numeric("422", trailing="MOTD File is missing"))
        return lines

    def lusers(self) -> list[str]:
        """The LUSERS replies."""
        return [
            self.numeric("251", trailing=f"There are {self.online} users and 0 invisible on 1 servers"),
            self.numeric("255", trailing=f"I have {self.online} clients and 0 servers"),
        ]

    @render.register
    def _(self, event: Joined) -> list[str]:
        return [line(mask(event.nick), "JOIN", channel(event.room))]

    @render.register
    def _(self, event: Left) -> list[str]:
        reason = event.reason or None
        return [line(mask(event.nick), "PART", channel(event.room), trailing=reason)]

    @render.register
    def _(self, event: UserQuit) -> list[str]:
        return [line(mask(event.nick), "QUIT", trailing=event.reason)]

    @render.register
    def _(self, event: NickChanged) -> list[str]:
        if self._is_me(event.old):
            self.nick = event.new
        return [line(mask(event.old), "NICK", trailing=event.new)]

    @render.register
    def _(self, event: AccountChanged) -> list[str]:
        if "account-notify" not in self.caps:
            return []
        return [line(mask(event.nick), "ACCOUNT", event.account or "*")]

    @render.register
    def _(self, event: AwayChanged) -> list[str]:
        if "away-notify" not in self.caps:
            return []
        return [line(mask(event.nick), "AWAY", trailing=event.message or None)]

    @render.register
    def _(self, event: Said) -> list[str]:
        if self._is_me(event.nick) and "echo-message" not in self.caps:
            return []
        command = "NOTICE" if event.notice else "PRIVMSG"
        return self._message(event.nick, command, channel(event.room), event.text,
                             self._tags(event.when, event.account, msgid=event.id))

    @render.register
    def _(self, event: Action) -> list[str]:
        if self._is_me(event.nick) and "echo-message" not in self.caps:
            return []
        return self._message(event.nick, "PRIVMSG", channel(event.room), f"\x01ACTION {event.text}\x01",
                             self._tags(event.when, event.account, msgid=event.id))

    @render.register
    def _(self, event: PrivateMessage) -> list[str]:
        if event.echo and "echo-message" not in self.caps:
            return []
        text = f"\x01ACTION {event.text}\x01" if event.action else event.text
        if event.stored and "server-time" not in self.caps:
            text = f"[{datetime.fromtimestamp(event.when, self.timezone):%Y-%m-%d %H:%M:%S}] {text}"
        command = "NOTICE" if event.notice else "PRIVMSG"
        return self._message(event.sender, command, event.recipient, text, self._tags(event.when, event.account))

    @render.register
    def _(self, event: RecipientAway) -> list[str]:
        return [self.numeric("301", event.nick, trailing=event.message)]

    @render.register
    def _(self, event: TopicChanged) -> list[str]:
        return [tag_section(self._tags(event.when, msgid=event.id))
                + line(mask(event.nick), "TOPIC", channel(event.room), trailing=event.topic[:TOPIC_LENGTH])]

    @render.register
    def _(self, event: TopicInfo) -> list[str]:
        name = channel(event.room)
        if not event.topic:
            return [self.numeric("331", name, trailing="No topic is set")]
        lines = [self.numeric("332", name, trailing=event.topic[:TOPIC_LENGTH])]
        if event.nick:
            lines.append(self.numeric("333", name, mask(event.nick), str(int(event.when))))
        return lines

    def _prefix(self, nick: str, operators: Container[str], voiced: Container[str]) -> str:
        """
        A member's channel prefix: C{@} for an operator, C{+} for a voiced user; both (C{@+})
        only for a client that negotiated multi-prefix, otherwise the highest.
        """
        prefix = "@" if nick in operators else ""
        if nick in voiced and (not prefix or "multi-prefix" in self.caps):
            prefix += "+"
        return prefix

    @render.register
    def _(self, event: WhoList) -> list[str]:
        name = channel(event.room)
        operators, voiced = frozenset(event.operators), frozenset(event.voiced)
        if (self.who_purposes.popleft() if self.who_purposes else "names") == "who":
            away = set(event.away)
            return [self._who_line(name, nick, nick in away, self._prefix(nick, operators, voiced))
                    for nick in event.nicks] + [self.numeric("315", name, trailing="End of /WHO list")]
        head = self.numeric("353", "=", name, trailing="")
        room = MAX_LINE - 2 - len(head.encode("utf-8"))  # nicknames are ASCII: one byte a character
        lines: list[str] = []
        chunk: list[str] = []
        used = 0
        for nick in event.nicks:  # one pass: a line is full when the next nickname would not fit
            if operators or voiced:
                nick = self._prefix(nick, operators, voiced) + nick
            if chunk and used + 1 + len(nick) > room:
                lines.append(head + " ".join(chunk))
                chunk, used = [], 0
            used += len(nick) + (1 if chunk else 0)
            chunk.append(nick)
        if chunk:
            lines.append(head + " ".join(chunk))
        return lines + [self.numeric("366", name, trailing="End of /NAMES list")]

    def _who_line(self, name: str, nick: str, away: bool, prefix: str = "", server_operator: bool = False) -> str:
        """One RPL_WHOREPLY; its flags: H (here) or G (gone), C{*} for a server operator, the channel prefix."""
        flags = ("G" if away else "H") + ("*" if server_operator else "") + prefix
        return self.numeric("352", name, nick[:10], self.server, self.server, nick, flags, trailing=f"0 {nick}")

    @render.register
    def _(self, event: UserList) -> list[str]:
        purpose = self.user_purposes.popleft() if self.user_purposes else "whois"
        if purpose == "ison":
            return [self.numeric("303", trailing=" ".join(user.nick for user in event.users))]
        if purpose == "userhost":
            replies = [f"{user.nick}={'-' if user.away else '+'}{user.nick[:10]}@{self.server}" for user in event.users]
            return [self.numeric("302", trailing=" ".join(replies))]
        if purpose == "who":
            target = event.asked[0] if event.asked else "*"
            return [self._who_line("*", user.nick, bool(user.away), server_operator=user.server_operator)
                    for user in event.users] + [
                self.numeric("315", target, trailing="End of /WHO list")]
        return self._whois(event)

    def _whois(self, event: UserList) -> list[str]:
        found = {user.nick.lower(): user for user in event.users}
        lines: list[str] = []
        for asked in event.asked:
            user: UserInfo | None = found.get(asked.lower())
            if user is None:
                lines.append(self.numeric("401", asked, trailing="No such nick/channel"))
            else:
                lines.append(self.numeric("311", user.nick, user.nick[:10], self.server, "*", trailing=user.nick))
                if user.rooms:
                    lines.append(self.numeric("319", user.nick, trailing=" ".join(map(channel, user.rooms))))
                lines.append(self.numeric("312", user.nick, self.server, trailing=NETWORK))
                if user.server_operator:
                    lines.append(self.numeric("313", user.nick, trailing="is an IRC operator"))
                if user.away:
                    lines.append(self.numeric("301", user.nick, trailing=user.away))
                if user.account:
                    lines.append(self.numeric("330", user.nick, user.account, trailing="is logged in as"))
                lines.append(self.numeric("317", user.nick, str(int(user.idle)), str(int(user.since)),
                                          trailing="seconds idle, signon time"))
            lines.append(self.numeric("318", asked, trailing="End of /WHOIS list"))
        return lines

    @render.register
    def _(self, event: RoomList) -> list[str]:
        return [self.numeric("321", "Channel", trailing="Users  Name")] + [
            self.numeric("322", channel(room.name), str(room.members), trailing=room.topic[:TOPIC_LENGTH])
            for room in event.rooms
        ] + [self.numeric("323", trailing="End of /LIST")]

    @render.register
    def _(self, event: ServerTime) -> list[str]:
        return [self.numeric("391", self.server, trailing=event.iso)]

    @render.register
    def _(self, event: History) -> list[str]:
        name = channel(event.room)
        use_batch = "batch" in self.caps
        batch = None
        lines: list[str] = []
        if use_batch:
            self._batch += 1
            batch = f"h{self._batch}"
            lines.append(line(self.server, "BATCH", f"+{batch}", "chathistory", name))
        for message in event.messages:
            lines += self._history_message(name, message, batch)
        if batch is not None:
            lines.append(line(self.server, "BATCH", f"-{batch}"))
        return lines

    def _history_message(self, name: str, message: StoredMessage, batch: str | None) -> list[str]:
        # Without server-time the time goes in the text, inside a CTCP ACTION (so that it stays one),
        # never inside a TOPIC's (which would become the topic).
        stamp = "" if "server-time" in self.caps else \
            f"[{datetime.fromtimestamp(message.when, self.timezone):%Y-%m-%d %H:%M:%S}] "
        tags = self._tags(message.when, batch=batch, msgid=message.id)
        if message.kind == "topic":
            if batch is not None:
                return [tag_section(tags) + line(mask(message.sender), "TOPIC", name, trailing=message.text[:TOPIC_LENGTH])]
            return self._message(self.server, "NOTICE", name, f"{stamp}{message.sender} set the topic: {message.text}",
                                 tags, source=self.server)
        if message.kind == "action":
            return self._message(message.sender, "PRIVMSG", name, f"\x01ACTION {stamp}{message.text}\x01", tags)
        return self._message(message.sender, "PRIVMSG", name, stamp + message.text, tags)

    @render.register
    def _(self, event: SearchResults) -> list[str]:
        # No IRC command asks for a search; should the answer come, it is shown as notices.
        if not event.messages:
            return self._notices(f"No messages match {event.text!r}")
        return self._notices(f"{len(event.messages)} messages match {event.text!r}, newest first:", *(
            f"[{self._time(message.when)}] {channel(message.room)} {message.sender}: {message.text}"
            for message in event.messages
        ), "End of search results")

    @render.register
    def _(self, event: RoomCutOff) -> list[str]:
        name = channel(event.room)
        return [line(self.server, "NOTICE", name, trailing=f"This server lost its link to the rest of the network "
                     f"for a while: {name} may have missed messages meanwhile (CHATHISTORY has them)")]

    # --- moderation ----------------------------------------------------------------------------

    def _notices(self, *texts: str) -> list[str]:
        """NOTICEs from the server to this client, one for each of C{texts} (split to fit if long)."""
        return [piece for text in texts for piece in self._message(self.server, "NOTICE", self.nick, text, {},
                                                                     source=self.server)]

    def _time(self, when: float) -> str:
        return datetime.fromtimestamp(when, self.timezone).strftime("%Y-%m-%d %H:%M:%S %Z").strip()

    @render.register
    def _(self, event: ModeChanged) -> list[str]:
        target = event.target
        if target and event.change[1:] in LIST_MODES:
            target = ban_hostmask(target)
        params = (channel(event.room), event.change) + ((target,) if target else ())
        return [line(mask(event.nick) if event.nick else self.server, "MODE", *params)]

    @render.register
    def _(self, event: Kicked) -> list[str]:
        return [line(mask(event.nick), "KICK", channel(event.room), event.target, trailing=event.reason or event.nick)]

    @render.register
    def _(self, event: Invited) -> list[str]:
        if self._is_me(event.target):
            return [line(mask(event.nick), "INVITE", event.target, channel(event.room))]
        return [self.numeric("341", event.target, channel(event.room))]

    @render.register
    def _(self, event: RoomClaimed) -> list[str]:
        name = channel(event.room)
        return [line(self.server, "NOTICE", name, trailing=f"{event.nick} claimed {name} for the account "
                     f"{event.account}: it keeps its operators, bans, modes and topic")]

    @render.register
    def _(self, event: RoomModes) -> list[str]:
        return [self.numeric("324", channel(event.room), "+" + event.modes)]

    @render.register
    def _(self, event: BanList) -> list[str]:
        if not event.room:
            return self._server_bans(event.bans)
        name = channel(event.room)
        return [self.numeric("367", name, ban_hostmask(ban.mask), ban.by or self.server, str(int(ban.when)))
                for ban in event.bans] + [self.numeric("368", name, trailing="End of channel ban list")]

    def _server_bans(self, bans: tuple[Ban, ...]) -> list[str]:
        if not bans:
            return self._notices("No server bans")
        return self._notices(f"{len(bans)} server bans:", *(f"{ban.mask} {self._ban_terms(ban)}" for ban in bans),
                             "End of server bans")

    def _ban_terms(self, ban: Ban) -> str:
        until = f"until {self._time(ban.expires)}" if ban.expires is not None else "until lifted"
        return f"(set by {ban.by or self.server} on {self._time(ban.when)}, {until})" + \
            (f": {ban.reason}" if ban.reason else "")

    @render.register
    def _(self, event: ServerBanChanged) -> list[str]:
        if event.added:
            return self._notices(f"Server ban set on {event.ban.mask} {self._ban_terms(event.ban)}")
        return self._notices(f"Server ban on {event.ban.mask} lifted")

    @render.register
    def _(self, event: Killed) -> list[str]:
        why = f"Killed by {event.nick}" + (f": {event.reason}" if event.reason else "")
        return [line(mask(event.nick), "KILL", self.nick, trailing=event.reason or why),
                line("", "ERROR", trailing=f"Closing link: {self.server} ({why})")]

    @render.register
    def _(self, event: Wallops) -> list[str]:
        tags = tag_section(self._tags(event.when))
        head = line(mask(event.nick), "WALLOPS", trailing="")
        room = MAX_LINE - 2 - len(head.encode("utf-8"))
        return [tags + head + piece for piece in split_text(event.text, room)]

    # --- accounts ------------------------------------------------------------------------------

    @render.register
    def _(self, event: Registered) -> list[str]:
        return [self.numeric("900", mask(self.nick), event.nick, trailing=f"You are now logged in as {event.nick}"),
                line(self.server, "NOTICE", self.nick, trailing=f"{event.nick} is now registered")]

    @render.register
    def _(self, event: LoggedIn) -> list[str]:
        return [self.numeric("900", mask(self.nick), event.nick, trailing=f"You are now logged in as {event.nick}")]

    @render.register
    def _(self, event: LoggedOut) -> list[str]:
        return [self.numeric("901", mask(self.nick), trailing="You are now logged out")]

    @render.register
    def _(self, event: PasswordChanged) -> list[str]:
        return [line(self.server, "NOTICE", self.nick, trailing="Your password has been changed")]

    @render.register
    def _(self, event: OfflineQueued) -> list[str]:
        return [line(self.server, "NOTICE", self.nick,
                     trailing=f"{event.nick} is offline; your message will be delivered when they log in")]

    @render.register
    def _(self, event: AwaySet) -> list[str]:
        if event.away:
            return [self.numeric("306", trailing="You have been marked as being away")]
        return [self.numeric("305", trailing="You are no longer marked as being away")]

    @render.register
    def _(self, event: Goodbye) -> list[str]:
        return [line("", "ERROR", trailing=f"Closing link: {self.server} ({event.reason})")]

    @render.register
    def _(self, event: ServerShutdown) -> list[str]:
        return [line("", "ERROR", trailing="Closing link: server shutting down")]

    @render.register
    def _(self, event: ErrorReply) -> list[str]:
        return self.error(event.error)

    # --- errors without a command to answer --------------------------------------------------

    def error(self, error: ChatError) -> list[str]:
        """Lines for an error that reached the user on its own (not as the answer to a command)."""
        closing = _CLOSING.get(type(error))
        if closing is not None:
            return [line("", "ERROR", trailing=f"Closing link: {self.server} ({closing(error)})")]
        if isinstance(error, errors.ServerBanned):
            return self._server_banned(error)
        moderation = self.moderation_error(error)
        if moderation is not None:
            return moderation
        if isinstance(error, errors.InputTooLong):
            return [self.numeric("417", trailing="Input line was too long")]
        if isinstance(error, errors.NotUtf8):
            return [line(self.server, "FAIL", "*", "INVALID_UTF8", trailing="Message rejected: it was not valid UTF-8")]
        if isinstance(error, errors.HistoryUnavailable):
            return [line(self.server, "FAIL", "CHATHISTORY", "MESSAGE_ERROR", channel(error.room),
                         trailing="history unavailable; try again later")]
        if isinstance(error, errors.NotStored):
            return [line(self.server, "FAIL", "PRIVMSG", "MESSAGE_ERROR",
                         trailing="your message could not be saved, so it was not sent")]
        return [line(self.server, "NOTICE", self.nick, trailing=f"error: {type(error).__name__}")]

    def _server_banned(self, error: errors.ServerBanned) -> list[str]:
        """
        ERR_YOUREBANNEDCREEP, then the ERROR that closes the link; after ERR_SASLFAIL if the ban
        refused the account a SASL exchange was proving (the client waits for its outcome).
        """
        reason = f": {error.reason}" if error.reason else ""
        until = self._time(error.expires) if error.expires is not None else ""
        failed = [self.numeric("904", trailing="SASL authentication failed")] if self.authenticating else []
        return failed + [self.numeric("465", trailing=f"You are banned from this server{reason}"
                             + (f" (until {until})" if until else "")),
                line("", "ERROR", trailing=f"Closing link: {self.server} (banned{reason}"
                     + (f"; until {until})" if until else ")"))]

    def moderation_error(self, error: ChatError, command: str = "*") -> list[str] | None:
        """
        The numeric for a moderation error, or the standard reply (C{FAIL command ...}) where IRC
        has no numeric for it; None if C{error} is not one.
        """
        numeric = self.numeric
        if isinstance(error, errors.NotOperator):
            return [numeric("482", channel(error.room), trailing="You're not channel operator")]
        if isinstance(error, errors.Protected):
            return [numeric("482", channel(error.room), trailing=f"{error.nick} is protected: they own "
                            f"{channel(error.room)} or are a server operator")]
        if isinstance(error, errors.NotServerOperator):
            return [numeric("481", trailing="Permission Denied- You're not an IRC operator")]
        if isinstance(error, errors.Banned):
            return [numeric("474", channel(error.room), trailing="Cannot join channel (+b)")]
        if isinstance(error, errors.InviteOnly):
            return [numeric("473", channel(error.room), trailing="Cannot join channel (+i)")]
        if isinstance(error, errors.CannotSpeak):
            why = "+m" if error.why == "moderated" else "you are banned"
            return [numeric("404", channel(error.room), trailing=f"Cannot send to channel ({why})")]
        if isinstance(error, errors.UserNotInRoom):
            return [numeric("441", error.nick, channel(error.room), trailing="They aren't on that channel")]
        if isinstance(error, errors.UserInRoom):
            return [numeric("443", error.nick, channel(error.room), trailing="is already on channel")]
        if isinstance(error, errors.UnknownMode):
            return [numeric("472", error.mode or "*", trailing="is unknown mode char to me")]
        if isinstance(error, errors.InvalidMask):
            return [line(self.server, "FAIL", command, "INVALID_MASK", error.mask or "*", trailing=_MASKS)]
        if isinstance(error, errors.InvalidDuration):
            return [line(self.server, "FAIL", command, "INVALID_DURATION", error.text or "*", trailing=_DURATIONS)]
        if isinstance(error, errors.NoSuchBan):
            if error.room:
                name = channel(error.room)
                return [numeric("698", name, ban_hostmask(error.mask), "b",
                                trailing=f"Channel {name} list does not contain {ban_hostmask(error.mask)}")]
            return [line(self.server, "FAIL", "UNGBAN", "NO_SUCH_BAN", error.mask,
                         trailing=f"There is no server ban on {error.mask}")]
        if isinstance(error, errors.AlreadyClaimed):
            name = channel(error.room)
            return [line(self.server, "FAIL", "CLAIM", "ALREADY_CLAIMED", name,
                         trailing=f"{name} is already claimed by the account {error.owner}")]
        if isinstance(error, errors.CannotClaim):
            name = channel(error.room)
            return [line(self.server, "FAIL", "CLAIM", "CANNOT_CLAIM", name,
                         trailing=f"{name} belongs to the server; only a server operator may claim it")]
        if isinstance(error, errors.NotIdentified):
            return [line(self.server, "FAIL", command, "ACCOUNT_REQUIRED",
                         trailing="Only a registered user may do that: log in with SASL or PASS nick:password")]
        return None


#: What a ban mask may be, and a duration, for the errors that say so.
_MASKS = "A ban mask is nick!*@*, *!*@address, *!*@network/bits or account:NAME (a server ban: no nickname)"
_DURATIONS = "A duration is a number of seconds, or one with s, m, h, d or w (30m, 7d), at most ten years"


_CLOSING = {
    errors.LoginTimedOut: lambda e: "registration timed out",
    errors.ServerFull: lambda e: f"server full ({e.limit} connections)",
    errors.TooManyFromAddress: lambda e: f"too many connections from your address (at most {e.limit})",
    errors.TooManyConnectionsRecently:
        lambda e: f"too many new connections from your address (at most {e.limit} in {e.seconds:g} seconds)",
    errors.ShuttingDown: lambda e: "server shutting down",
    errors.ExcessFlood: lambda e: "Excess Flood",
    errors.WrongProtocol: lambda e: "this is an IRC server, not a web server",
}
