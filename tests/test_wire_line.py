"""
Tests for the line door (chat_twisted.wire.line) and its text forms (chat_twisted.wire.text).

Every connection is a StringTransportWithDisconnection on one shared core with a fake clock set to
03:04:05 UTC (tests.helpers.START); no sockets, no reactor, no sleeps.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import timedelta, timezone, tzinfo

import pytest
from twisted.internet.address import IPv4Address, UNIXAddress
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from chat_twisted.errors import NoSuchUser
from chat_twisted.model import (
    Ban,
    BanList,
    Invited,
    Kicked,
    Killed,
    ModeChanged,
    RoomClaimed,
    RoomCutOff,
    RoomModes,
    ServerBanChanged,
    Wallops,
    AccountChanged,
    AwayChanged,
    AwaySet,
    LoggedIn,
    LoggedOut,
    OfflineQueued,
    PasswordChanged,
    RecipientAway,
    Registered,
    UserInfo,
    UserList,
    UserQuit,
    Action,
    ErrorReply,
    Event,
    Goodbye,
    History,
    Joined,
    Left,
    NickChanged,
    PrivateMessage,
    RoomList,
    RoomSummary,
    Said,
    SearchResults,
    ServerShutdown,
    ServerTime,
    StoredMessage,
    TopicChanged,
    TopicInfo,
    Welcome,
    WhoList,
)
from chat_twisted.wire import line as line_module
from chat_twisted.wire.line import LineChatFactory, describe_peer
from chat_twisted.wire.slash import HelpEntry, HelpText, NickPrompt, PasswordPrompt
from chat_twisted.wire.text import render
from tests.helpers import START, LineConnection, line_user, make_line_factory

#: The time prefix of every message sent at helpers.START.
AT = "[03:04:05]"

#: The limit used by the long-line tests; the smallest --max-line accepts.
SMALL = 64

TOO_LONG = f"error: line longer than {SMALL} bytes; it was dropped"
NOT_UTF8 = "error: line is not valid UTF-8; it was dropped"


def two_users(max_line: int = 4096) -> tuple[LineChatFactory, LineConnection, LineConnection]:
    """Return a factory with alice and bob logged in to its lobby, every greeting already read."""
    factory, _, _ = make_line_factory(max_line=max_line)
    alice = line_user(factory, "alice", port=40001)
    bob = line_user(factory, "bob", port=40002)
    alice.lines()  # "* bob joined lobby"
    return factory, alice, bob


def send_bytewise(connection: LineConnection, data: bytes) -> None:
    """Feed C{data} to C{connection} one byte per read."""
    for index in range(len(data)):
        connection.send(data[index : index + 1])


def unsafe_characters(text: str) -> list[str]:
    """Return the control and format characters in C{text}, apart from the CR LF line endings."""
    return [char for char in text.replace("\r\n", "") if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}]


# --- connecting and framing ------------------------------------------------------------------


def test_greeting_asks_for_a_nickname() -> None:
    """A new connection is greeted with one line that asks for a nickname."""
    factory, _, _ = make_line_factory()
    connection = LineConnection(factory)
    [greeting] = connection.lines()
    assert "nickname" in greeting


def test_every_server_line_ends_with_crlf() -> None:
    """Everything the server writes, across many kinds of reply, is lines ending in CRLF, with no bare CR or LF."""
    factory, _, _ = make_line_factory()
    connection = LineConnection(factory)
    for line in ["alice", "hi", "/who", "/rooms", "/help", "/topic tea", "/topic", "/time", "/me waves", "/nope"]:
        connection.send(line + "\n")
    raw = connection.transport.value()
    assert raw.endswith(b"\r\n")
    assert raw.count(b"\n") == raw.count(b"\r") == raw.count(b"\r\n") > 10


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("feed", [LineConnection.send, send_bytewise], ids=["one-read", "byte-by-byte"])
def test_lines_framed_whatever_the_reads(ending: bytes, feed: Callable[[LineConnection, bytes], None]) -> None:
    """Login and messages work with LF or CRLF endings, whether a line arrives in one read or byte by byte."""
    factory, _, _ = make_line_factory()
    alice = line_user(factory, "alice")
    bob = LineConnection(factory, port=40002)
    bob.lines()
    feed(bob, b"bob" + ending + b"hello there" + ending)
    assert bob.lines()[-1] == f"{AT} bob: hello there"
    assert alice.lines() == ["* bob joined lobby", f"{AT} bob: hello there"]


def test_several_lines_in_one_read_are_handled_in_order() -> None:
    """One read holding several lines, mixed endings and a partial tail yields each complete line in order."""
    _, alice, bob = two_users()
    bob.send(b"one\ntwo\r\nthree\nfo")
    assert alice.lines() == [f"{AT} bob: one", f"{AT} bob: two", f"{AT} bob: three"]
    bob.send(b"ur\r\n")
    assert alice.lines() == [f"{AT} bob: four"]


def test_two_users_see_each_others_messages() -> None:
    """Two connections on one core see each other's messages as [HH:MM:SS] nick: text, the sender included."""
    _, alice, bob = two_users()
    alice.send("hello bob\r\n")
    bob.send("hi alice\r\n")
    expected = [f"{AT} alice: hello bob", f"{AT} bob: hi alice"]
    assert alice.lines() == expected
    assert bob.lines() == expected


# --- over-long lines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rest", [[b"after\n"], [b"af", b"ter\n"]], ids=["rest-complete", "rest-split-over-reads"]
)
def test_long_line_dropped_up_to_its_lf_and_what_follows_is_kept(rest: list[bytes]) -> None:
    """An over-long line gets one error and is dropped up to its LF; what follows the LF in that read is used."""
    _, alice, bob = two_users(max_line=SMALL)
    bob.send(b"x" * (SMALL * 3) + b"\n" + rest[0])
    for chunk in rest[1:]:
        bob.send(chunk)
    assert bob.lines() == [TOO_LONG, f"{AT} bob: after"]
    assert alice.lines() == [f"{AT} bob: after"]
    assert bob.transport.connected


def test_two_long_lines_in_one_read_each_get_one_error() -> None:
    """Two over-long lines in one read give one error each, and the short line after them still gets through."""
    _, alice, bob = two_users(max_line=SMALL)
    bob.send(b"x" * 100 + b"\r\n" + b"y" * 100 + b"\nok\n")
    assert bob.lines() == [TOO_LONG, TOO_LONG, f"{AT} bob: ok"]
    assert alice.lines() == [f"{AT} bob: ok"]


def test_long_line_in_many_chunks_is_not_buffered() -> None:
    """A long line arriving in many reads gives one error, keeps the buffer small, and ends at its LF."""
    _, alice, bob = two_users(max_line=SMALL)
    for _ in range(1000):
        bob.send(b"z" * 50)
        assert len(bob.protocol._buffer) <= SMALL + 2
    assert bob.lines() == [TOO_LONG]
    bob.send(b"still the long line\nback to normal\r\n")
    assert bob.lines() == [f"{AT} bob: back to normal"]
    assert alice.lines() == [f"{AT} bob: back to normal"]


@pytest.mark.parametrize(
    ("length", "ending", "accepted"),
    [
        (SMALL, b"\r\n", True),
        (SMALL, b"\n", True),
        (SMALL + 1, b"\n", False),
        (SMALL + 1, b"\r\n", False),
    ],
)
@pytest.mark.parametrize("feed", [LineConnection.send, send_bytewise], ids=["one-read", "byte-by-byte"])
def test_line_length_limit_is_exact(
    length: int, ending: bytes, accepted: bool, feed: Callable[[LineConnection, bytes], None]
) -> None:
    """A line of exactly max_line bytes is accepted with LF or CRLF; one byte more gets a single error."""
    _, alice, bob = two_users(max_line=SMALL)
    feed(bob, b"m" * length + ending)
    message = f"{AT} bob: {'m' * length}"
    assert bob.lines() == ([message] if accepted else [TOO_LONG])
    assert alice.lines() == ([message] if accepted else [])


# --- decoding and sanitising -----------------------------------------------------------------


def test_invalid_utf8_line_is_dropped_with_an_error() -> None:
    """A line that is not valid UTF-8 gets an error, never reaches the room, and the connection carries on."""
    _, alice, bob = two_users()
    bob.send(b"caf\xe9 \xff\xfe\r\n")
    assert bob.lines() == [NOT_UTF8]
    assert alice.lines() == []
    assert bob.transport.connected
    bob.send("still here\n")
    assert alice.lines() == [f"{AT} bob: still here"]


@pytest.mark.parametrize("text", ["café", "日本語", "🎉 party"])
def test_utf8_character_split_across_reads_is_decoded(text: str) -> None:
    """A multi-byte UTF-8 character split between reads arrives whole."""
    _, alice, bob = two_users()
    send_bytewise(bob, (text + "\n").encode("utf-8"))
    assert alice.lines() == [f"{AT} bob: {text}"]


def test_nul_and_bare_cr_never_reach_another_user() -> None:
    """NUL and CR inside a line are removed before the message reaches anyone else."""
    _, alice, bob = two_users()
    bob.send(b"a\x00b\rc\r\n")
    bob.send(b"\x00\r\r\n")  # nothing visible left: not sent at all
    raw = alice.transport.value()
    assert alice.lines() == [f"{AT} bob: abc"]
    assert b"\x00" not in raw and raw.count(b"\r") == raw.count(b"\r\n")


#: Hostile text and what is left of it once sanitised.
HOSTILE = {
    "CSI colour": ("\x1b[31msafe\x1b[0m", "safe"),
    "OSC title": ("\x1b]0;owned\x07safe", "safe"),
    "OSC with ST": ("\x1b]8;;http://evil\x1b\\safe", "safe"),
    "8-bit CSI": ("\x9b2Jsafe", "2Jsafe"),  # the C1 introducer goes; "2J" alone is plain text
    "bidi override": ("\u202esafe\u202c", "safe"),
    "bidi isolate": ("\u2066safe\u2069", "safe"),
    "zero width": ("sa\u200bfe", "safe"),
    "line separator": ("safe\u2028", "safe"),
}

COMMANDS = {
    "message": ("{}", lambda shown: f"{AT} bob: {shown}"),
    "/me": ("/me {}", lambda shown: f"{AT} * bob {shown}"),
    "/topic": ("/topic {}", lambda shown: f"* bob set the topic of lobby to: {shown}"),
    "/quit reason": ("/quit {}", lambda shown: f"* bob left lobby ({shown})"),
}


@pytest.mark.parametrize(("payload", "shown"), HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("command", COMMANDS, ids=COMMANDS.keys())
def test_escape_sequences_never_reach_another_user(command: str, payload: str, shown: str) -> None:
    """Terminal escapes and bidi or format characters are stripped from messages, /me, topics and /quit reasons."""
    template, expected = COMMANDS[command]
    _, alice, bob = two_users()
    bob.send(template.format(payload) + "\r\n")
    received = alice.transport.value().decode("utf-8")
    assert alice.lines() == [expected(shown)]
    assert unsafe_characters(received) == []


# --- leaving ---------------------------------------------------------------------------------


def test_quit_says_goodbye_then_closes_and_others_see_the_reason() -> None:
    """/quit writes one goodbye line, then closes the connection; the room sees the user leave with the reason."""
    _, alice, bob = two_users()
    bob.send("/quit time for tea\r\nignored after quit\n")
    assert bob.lines() == ["* Goodbye! (time for tea)"]
    # StringTransportWithDisconnection.loseConnection clears `connected` (it never sets `disconnecting`).
    assert not bob.transport.connected
    assert alice.lines() == ["* bob left lobby (time for tea)"]


def test_quit_without_reason_says_quit() -> None:
    """/quit with no reason shows the reason "quit" to the leaver and to the room."""
    _, alice, bob = two_users()
    bob.send("/quit\n")
    assert bob.lines() == ["* Goodbye! (quit)"]
    assert alice.lines() == ["* bob left lobby (quit)"]


DROPS: dict[str, Callable[[LineConnection], None]] = {
    "transport.loseConnection": lambda connection: connection.transport.loseConnection(),
    "protocol.connectionLost": lambda connection: connection.protocol.connectionLost(Failure(ConnectionDone())),
}


@pytest.mark.parametrize("drop", DROPS.values(), ids=DROPS.keys())
def test_dropped_connection_is_announced_once(drop: Callable[[LineConnection], None]) -> None:
    """A connection ending without /quit shows the room one "(connection lost)" line, however often reported."""
    _, alice, bob = two_users()
    drop(bob)
    drop(bob)
    bob.protocol.connectionLost(Failure(ConnectionDone()))
    assert alice.lines() == ["* bob left lobby (connection lost)"]


def test_dropped_connection_before_login_is_not_announced() -> None:
    """A connection that ends before choosing a nickname leaves no trace for others."""
    factory, _, _ = make_line_factory()
    alice = line_user(factory, "alice")
    stranger = LineConnection(factory, port=40009)
    stranger.transport.loseConnection()
    assert alice.lines() == []


# --- encoding --------------------------------------------------------------------------------


def record_writes(connection: LineConnection, monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Return a list that receives every bytes object written to C{connection}'s transport."""
    written: list[bytes] = []
    write = connection.transport.write

    def recording_write(data: bytes) -> None:
        written.append(data)
        write(data)

    monkeypatch.setattr(connection.transport, "write", recording_write)
    return written


def test_fanned_out_event_is_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """An event delivered to a whole room is rendered once and every member is written the same bytes object."""
    factory, _, _ = make_line_factory()
    users = [line_user(factory, nick, port=40001 + index) for index, nick in enumerate(["alice", "bob", "carol"])]
    writes = [record_writes(user, monkeypatch) for user in users]
    rendered: list[Event] = []

    def counting_render(event: Event, zone: tzinfo) -> list[str]:
        rendered.append(event)
        return render(event, zone)

    monkeypatch.setattr(line_module, "render", counting_render)

    users[0].send("one encoding\n")

    assert len(rendered) == 1
    [[first], [second], [third]] = writes
    assert first == f"{AT} alice: one encoding\r\n".encode()
    assert first is second is third


# --- render: every event type ----------------------------------------------------------------

RENDERED: list[tuple[str, Event, list[str]]] = [
    ("NickPrompt first", NickPrompt(first=True), ["* Welcome to chat_twisted! Please choose a nickname:"]),
    ("NickPrompt again", NickPrompt(), ["* Please choose a nickname:"]),
    (
        "Welcome one user",
        Welcome("alice", 1, None),
        ["* Welcome, alice! 1 user online. You are in lobby; type /help for commands."],
    ),
    (
        "Welcome many users",
        Welcome("bob", 3, "bob"),
        ["* Welcome, bob! 3 users online. You are in lobby; type /help for commands."],
    ),
    ("Joined", Joined("tea", "alice"), ["* alice joined tea"]),
    ("Left", Left("tea", "alice", "moved to lobby"), ["* alice left tea (moved to lobby)"]),
    ("Left without a reason", Left("tea", "alice", ""), ["* alice left tea"]),
    ("UserQuit one room", UserQuit("alice", "quit", ("lobby",)), ["* alice left lobby (quit)"]),
    (
        "UserQuit two rooms",
        UserQuit("alice", "connection lost", ("tea", "lobby")),
        ["* alice left tea (connection lost)", "* alice left lobby (connection lost)"],
    ),
    ("AccountChanged (not shown)", AccountChanged("alice", "alice"), []),
    ("AwayChanged (not shown)", AwayChanged("alice", "lunch"), []),
    ("AwaySet away", AwaySet(True), ["* you are marked as away"]),
    ("AwaySet back", AwaySet(False), ["* you are no longer marked as away"]),
    ("RecipientAway", RecipientAway("bob", "lunch"), ["* bob is away: lunch"]),
    (
        "UserList",
        UserList(("alice", "zed"), (UserInfo("alice", None, "lunch", ("lobby", "tea"), 5.0, START),)),
        ["* alice is online in lobby, tea, away: lunch", "* no user named 'zed' is online"],
    ),
    (
        "UserList",
        UserList(("Ally",), (UserInfo("ally", "alice", "", ("lobby",), 5.0, START),)),
        ["* ally is online in lobby", "* ally is logged in as alice"],
    ),
    ("NickChanged", NickChanged("alice", "alicia"), ["* alice is now known as alicia"]),
    ("Said", Said("lobby", "alice", "hello", START), ["[03:04:05] alice: hello"]),
    ("Action", Action("lobby", "alice", "waves", START + 61), ["[03:05:06] * alice waves"]),
    (
        "PrivateMessage received",
        PrivateMessage("alice", "bob", "psst", START),
        ["[03:04:05] (private) alice: psst"],
    ),
    (
        "PrivateMessage echo",
        PrivateMessage("alice", "bob", "psst", START, echo=True),
        ["[03:04:05] (private to bob) alice: psst"],
    ),
    ("TopicChanged", TopicChanged("tea", "alice", "earl grey"), ["* alice set the topic of tea to: earl grey"]),
    ("TopicInfo set", TopicInfo("tea", "earl grey"), ["* topic of tea: earl grey"]),
    ("TopicInfo empty", TopicInfo("tea", ""), ["* tea has no topic"]),
    ("WhoList one", WhoList("lobby", ("alice",)), ["* 1 user in lobby: alice"]),
    ("WhoList many", WhoList("lobby", ("alice", "Bob", "carol")), ["* 3 users in lobby: alice, Bob, carol"]),
    (
        "WhoList with operators and voiced",
        WhoList("tea", ("alice", "bob", "carol"), operators=("alice",), voiced=("bob", "carol")),
        ["* 3 users in tea: alice, bob, carol", "* operators of tea: alice", "* voiced in tea: bob, carol"],
    ),
    ("ModeChanged op", ModeChanged("tea", "alice", "+o", "bob"), ["* alice made bob an operator of tea"]),
    ("ModeChanged deop", ModeChanged("tea", "alice", "-o", "bob"), ["* alice took bob's operator status in tea"]),
    ("ModeChanged by the server", ModeChanged("tea", "", "+o", "bob"), ["* the server made bob an operator of tea"]),
    ("ModeChanged voice", ModeChanged("tea", "alice", "+v", "bob"), ["* alice gave bob a voice in tea"]),
    ("ModeChanged devoice", ModeChanged("tea", "alice", "-v", "bob"), ["* alice took bob's voice in tea"]),
    ("ModeChanged ban", ModeChanged("tea", "alice", "+b", "spam*"), ["* alice banned spam* from tea"]),
    ("ModeChanged unban", ModeChanged("tea", "alice", "-b", "spam*"), ["* alice lifted the ban on spam* in tea"]),
    ("ModeChanged +i", ModeChanged("tea", "alice", "+i"), ["* alice made tea invite-only"]),
    ("ModeChanged -i", ModeChanged("tea", "alice", "-i"), ["* alice made tea open to everyone"]),
    ("ModeChanged +m", ModeChanged("tea", "alice", "+m"),
     ["* alice made tea moderated: only operators and voiced users speak"]),
    ("ModeChanged -m", ModeChanged("tea", "alice", "-m"), ["* alice made tea unmoderated"]),
    ("ModeChanged +t", ModeChanged("tea", "alice", "+t"), ["* alice locked the topic of tea: only operators set it"]),
    ("ModeChanged -t", ModeChanged("tea", "alice", "-t"), ["* alice unlocked the topic of tea"]),
    ("Kicked with a reason", Kicked("tea", "alice", "bob", "spam"), ["* alice kicked bob from tea (spam)"]),
    ("Kicked without a reason", Kicked("tea", "alice", "bob"), ["* alice kicked bob from tea"]),
    ("Invited", Invited("tea", "alice", "bob"), ["* alice invited bob to tea (/join tea)"]),
    ("RoomClaimed", RoomClaimed("tea", "Alice", "alice"),
     ["* Alice claimed tea for the account alice: it keeps its operators, bans, modes and topic"]),
    ("RoomModes none", RoomModes("tea", ""), ["* tea has no modes"]),
    ("RoomModes claimed", RoomModes("tea", "mt", "alice"),
     ["* modes of tea: +mt (moderated, topic-locked); claimed by alice"]),
    ("BanList empty", BanList("tea", ()), ["* no bans in tea"]),
    (
        "BanList of a room",
        BanList("tea", (Ban("account:zed", "alice", START), Ban("spam*", "bob", START + 60))),
        ["* 2 bans in tea:", "*   account:zed (by alice, 2026-01-02 03:04:05)", "*   spam* (by bob, 2026-01-02 03:05:05)"],
    ),
    (
        "BanList of the server",
        BanList("", (Ban("192.0.2.0/24", "boss", START, START + 3600, "spam"),)),
        ["* 1 ban on this server:", "*   192.0.2.0/24 (by boss, 2026-01-02 03:04:05, until 2026-01-02 04:04:05): spam"],
    ),
    ("ServerBanChanged set", ServerBanChanged(Ban("account:zed", "boss", START), True),
     ["* banned from the server:", "*   account:zed (by boss, 2026-01-02 03:04:05)"]),
    ("ServerBanChanged lifted", ServerBanChanged(Ban("account:zed", "boss", START), False),
     ["* lifted the server ban on account:zed"]),
    ("RoomCutOff", RoomCutOff("tea"), ["* tea was cut off from the other servers for a while;"
                                       " messages sent there meanwhile may be missing here (see /history)"]),
    ("Killed", Killed("boss", "flooding"), ["* you were disconnected by the server operator boss (flooding)"]),
    ("Wallops", Wallops("boss", "restart at noon", START), ["[03:04:05] (to everyone) boss: restart at noon"]),
    ("RoomList one", RoomList((RoomSummary("lobby", 1, ""),)), ["* 1 room:", "*   lobby (1 user)"]),
    (
        "RoomList many",
        RoomList((RoomSummary("lobby", 2, ""), RoomSummary("tea", 1, "earl grey"), RoomSummary("zoo", 0, ""))),
        ["* 3 rooms:", "*   lobby (2 users)", "*   tea (1 user): earl grey", "*   zoo (0 users)"],
    ),
    ("ServerTime", ServerTime("2026-01-02T03:04:05+00:00"), ["* server time: 2026-01-02T03:04:05+00:00"]),
    (
        "HelpText",
        HelpText((HelpEntry("/who", "list users"), HelpEntry("/msg NICK TEXT", "whisper"))),
        ["* commands:", "*   /who            list users", "*   /msg NICK TEXT  whisper"],
    ),
    (
        "PrivateMessage kept while offline",
        PrivateMessage("alice", "bob", "psst", START, stored=True),
        ["[2026-01-02 03:04:05] (private, while you were away) alice: psst"],
    ),
    ("PasswordPrompt", PasswordPrompt("alice"), ["* alice is registered. Password (or /nick NAME for another nickname):"]),
    ("PasswordChanged", PasswordChanged(), ["* password changed"]),
    (
        "Registered",
        Registered("alice"),
        ["* alice is now registered; next time log in with /login alice PASSWORD"],
    ),
    ("LoggedIn", LoggedIn("alice"), ["* you are logged in as alice"]),
    ("LoggedOut", LoggedOut(), ["* you are logged out", "* Please choose a nickname:"]),
    (
        "OfflineQueued",
        OfflineQueued("alice"),
        ["* alice is offline; your message will be delivered when they log in"],
    ),
    ("History requested, empty", History("tea", (), requested=True), ["* no messages in tea yet"]),
    (
        "History of every kind",
        History("tea", (
            StoredMessage("tea", "say", "alice", "hello", START),
            StoredMessage("tea", "action", "bob", "waves", START + 60),
            StoredMessage("tea", "topic", "alice", "earl grey", START + 3600),
        )),
        [
            "* last 3 messages in tea:",
            "[history 2026-01-02 03:04:05] alice: hello",
            "[history 2026-01-02 03:05:05] * bob waves",
            "[history 2026-01-02 04:04:05] (topic) alice: earl grey",
        ],
    ),
    (
        "History of one",
        History("tea", (StoredMessage("tea", "say", "alice", "hi", START),)),
        ["* last 1 message in tea:", "[history 2026-01-02 03:04:05] alice: hi"],
    ),
    ("SearchResults, none", SearchResults("zebra crossing", ()), ['* no messages found for "zebra crossing"']),
    (
        "SearchResults of every kind",
        SearchResults("tea", (
            StoredMessage("tea", "topic", "alice", "Tea time", START + 3600),
            StoredMessage("dev", "action", "bob", "makes tea", START + 60),
            StoredMessage("tea", "say", "alice", "tea?", START),
        )),
        [
            '* 3 messages found for "tea":',
            "[2026-01-02 04:04:05] tea: (topic) alice: Tea time",
            "[2026-01-02 03:05:05] dev: * bob makes tea",
            "[2026-01-02 03:04:05] tea: alice: tea?",
        ],
    ),
    (
        "SearchResults of one",
        SearchResults("hi", (StoredMessage("tea", "say", "alice", "hi", START),)),
        ['* 1 message found for "hi":', "[2026-01-02 03:04:05] tea: alice: hi"],
    ),
    ("Goodbye", Goodbye("quit"), ["* Goodbye! (quit)"]),
    ("ServerShutdown", ServerShutdown(), ["* server shutting down"]),
    ("ErrorReply", ErrorReply(NoSuchUser("zed")), ["error: no user named 'zed' is online"]),
]


@pytest.mark.parametrize(
    ("event", "expected"), [case[1:] for case in RENDERED], ids=[case[0] for case in RENDERED]
)
def test_render_every_event(event: Event, expected: list[str]) -> None:
    """Each event type renders to its documented lines, with singular and plural counts right."""
    assert render(event, timezone.utc) == expected


def test_render_covers_every_event_type() -> None:
    """The render table above exercises every event class of the core (model) and of the slash dialect."""
    tested = {type(case[1]).__name__ for case in RENDERED}
    # By name: @dataclass(slots=True) replaces each class, leaving the original among the subclasses.
    # Another door's own events (the IRC door's) never reach the line door.
    line_modules = ("chat_twisted.model", "chat_twisted.wire.slash")
    defined = {cls.__name__ for cls in Event.__subclasses__() if cls.__module__ in line_modules}
    assert defined <= tested


def test_render_shows_times_in_the_given_zone() -> None:
    """Message times are shown in the time zone passed to render, not in UTC."""
    plus_one = timezone(timedelta(hours=1))
    assert render(Said("lobby", "alice", "hi", START), plus_one) == ["[04:04:05] alice: hi"]


def test_render_unknown_event_raises_type_error() -> None:
    """An Event subclass with no line form is a programming error: render raises TypeError naming it."""

    class Mystery(Event):
        __slots__ = ()

    with pytest.raises(TypeError, match="Mystery"):
        render(Mystery(), timezone.utc)


# --- describe_peer ---------------------------------------------------------------------------


def test_describe_peer_ipv4() -> None:
    """An IPv4 peer is shown as host:port."""
    assert describe_peer(IPv4Address("TCP", "192.0.2.7", 5123)) == "192.0.2.7:5123"


def test_describe_peer_unix_path() -> None:
    """A UNIX socket address is shown as its plain path."""
    assert describe_peer(UNIXAddress("/tmp/chat.sock")) == "/tmp/chat.sock"


def test_describe_peer_unnamed_unix_peer_is_text() -> None:
    """An unnamed UNIX peer (how clients of a UNIX socket appear) is still described by some text."""
    assert isinstance(describe_peer(UNIXAddress(None)), str)
