"""Tests for chat_twisted.core.ChatService: every command and error path, on RecordingClient fakes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogEvent, capturedLogs

from chat_twisted import core as core_module
from chat_twisted import requests as rq
from chat_twisted.core import ChatService, Session
from chat_twisted.errors import AlreadyInRoom, InternalError, NickInUse, NotLoggedIn
from chat_twisted.wire.slash import HELP, HelpText, NickPrompt, SlashSession, UnknownCommand, Usage
from chat_twisted.model import (
    LOBBY,
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
    ServerTime,
    StoredMessage,
    TopicChanged,
    TopicInfo,
    UserQuit,
    Welcome,
    WhoList,
)
from tests.fakes import RecordingClient
from tests.helpers import START, ErrorText, User, clear, connect, login, make_core

NAME_RULES = "may only contain ASCII letters, digits and _-[]\\^{}|"


def chat(*nicks: str) -> tuple[ChatService, Clock, list[User]]:
    """Return a UTC core on a fake clock with C{nicks} logged in to the lobby."""
    core, clock = make_core()
    return core, clock, login(core, *nicks)


def nicks_in(user: User) -> tuple[str, ...]:
    """Return the nicknames in C{user}'s room as /who reports them, forgetting its earlier events."""
    user.take()
    (who,) = user.send("/who")
    assert isinstance(who, WhoList)
    return who.nicks


def failures(events: Sequence[LogEvent]) -> list[LogEvent]:
    """Return the captured log events that carry a failure."""
    return [event for event in events if "log_failure" in event]


# --- login -------------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["alice", "  alice  ", "/nick alice", "/NICK   alice "])
def test_login(line: str) -> None:
    """A bare nickname or /nick logs the user in: Welcome with the online count, then Joined lobby."""
    core, _ = make_core()
    user = connect(core)
    assert user.send(line) == [Welcome("alice", 1, None), Joined(LOBBY, "alice")]
    assert core.online == 1


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("", "nickname must not be empty"),
        ("/nick", "nickname must not be empty"),
        ("a" * 31, f"nickname {'a' * 30!r}... is longer than 30 characters"),
        ("9lives", "nickname '9lives' must not start with a digit or '-'"),
        ("-dash", "nickname '-dash' must not start with a digit or '-'"),
        ("al ice", f"nickname 'al ice' {NAME_RULES}"),
        ("alicé", f"nickname 'alicé' {NAME_RULES}"),
        ("/nick a.b", f"nickname 'a.b' {NAME_RULES}"),
    ],
)
def test_login_invalid_nick(line: str, error: str) -> None:
    """An invalid nickname gets its error and a new NickPrompt, and does not log the user in."""
    core, _ = make_core()
    user = connect(core)
    assert user.send(line) == [ErrorText(error), NickPrompt()]
    assert core.online == 0


def test_login_retry_after_error() -> None:
    """After a rejected nickname the same connection can still log in with a valid one."""
    core, _ = make_core()
    user = connect(core)
    user.send("9lives")
    assert user.send("alice") == [Welcome("alice", 1, None), Joined(LOBBY, "alice")]


def test_login_nick_taken_case_insensitively() -> None:
    """A nickname differing only in case from an online one is refused with NickPrompt again."""
    core, _, _ = chat("alice")
    newcomer = connect(core)
    assert newcomer.send("ALICE") == [
        ErrorReply(NickInUse("ALICE")),
        NickPrompt(),
    ]
    assert newcomer.send("bob") == [Welcome("bob", 2, None), Joined(LOBBY, "bob")]


@pytest.mark.parametrize(("line", "reason"), [("/quit", "quit"), ("/QUIT  gotta go ", "gotta go")])
def test_quit_before_login(line: str, reason: str) -> None:
    """/quit before choosing a nickname says Goodbye, closes the client and ignores later lines."""
    core, _ = make_core()
    user = connect(core)
    assert user.send(line) == [Goodbye(reason)]
    assert user.client.closed
    assert user.send("alice") == []
    assert core.online == 0


def test_other_command_before_login() -> None:
    """Any command but /nick and /quit before login is refused and the nickname asked for again."""
    core, _ = make_core()
    user = connect(core)
    assert user.send("/WHO") == [ErrorReply(NotLoggedIn()), NickPrompt()]
    assert core.online == 0


def test_welcome_counts_online_users() -> None:
    """Welcome's online count includes every logged-in user and the newcomer, wherever they are."""
    core, _, (alice, bob) = chat("alice", "bob")
    bob.send("/join elsewhere")
    assert connect(core).send("carol")[0] == Welcome("carol", 3, None)


def test_login_announced_to_lobby() -> None:
    """Users already in the lobby see a newcomer's Joined; users in other rooms do not."""
    core, _, (alice, bob) = chat("alice", "bob")
    bob.send("/join elsewhere")
    clear(alice)
    login(core, "carol")
    assert alice.take() == [Joined(LOBBY, "carol")]
    assert bob.take() == []


def test_login_shows_lobby_topic() -> None:
    """A newcomer is shown the lobby's topic right after joining it, then its recent history."""
    core, _, (alice,) = chat("alice")
    alice.send("/topic be nice")
    assert connect(core).send("bob") == [
        Welcome("bob", 2, None),
        Joined(LOBBY, "bob"),
        TopicInfo(LOBBY, "be nice", "alice", START),
        History(LOBBY, (StoredMessage(LOBBY, "topic", "alice", "be nice", START),)),
    ]


def test_disconnect_before_login() -> None:
    """A connection that ends before login leaves no trace and announces nothing."""
    core, _, (alice,) = chat("alice")
    user = connect(core)
    user.session.disconnected()
    assert alice.take() == []
    assert core.online == 1


# --- plain messages ----------------------------------------------------------------------------


def test_message_said_to_room_with_clock_time() -> None:
    """A plain line reaches everyone in the sender's room, sender included, stamped with the clock."""
    _, clock, (alice, bob, carol) = chat("alice", "bob", "carol")
    carol.send("/join elsewhere")
    clear(alice, bob)
    clock.advance(5)
    said = Said(LOBBY, "alice", "hello  there ", START + 5)
    assert alice.send("hello  there ") == [said]
    assert bob.take() == [said]
    assert carol.take() == []


def test_double_slash_sends_literal_slash() -> None:
    """A line starting with // is said as a message starting with a single /."""
    _, _, (alice,) = chat("alice")
    assert alice.send("//shrug") == [Said(LOBBY, "alice", "/shrug", START)]


@pytest.mark.parametrize("line", ["", "   ", "\t", "\x1b[2J", "\u200b \u202e"])
def test_blank_lines_ignored(line: str) -> None:
    """A line that is empty or only whitespace (after removing control characters) is dropped silently."""
    _, _, (alice, bob) = chat("alice", "bob")
    assert alice.send(line) == []
    assert bob.take() == []


def test_message_sanitised() -> None:
    """Escape sequences and control/format characters are removed from messages before delivery."""
    _, _, (alice, bob) = chat("alice", "bob")
    alice.send("hi \x1b[31mred\x1b[0m\x07\u202e!")
    assert bob.take() == [Said(LOBBY, "alice", "hi red!", START)]


def test_unknown_command() -> None:
    """An unknown command is answered with its lower-cased name and a hint to /help."""
    _, _, (alice, bob) = chat("alice", "bob")
    assert alice.send("/FOO bar") == [ErrorReply(UnknownCommand("foo"))]
    assert bob.take() == []


# --- /nick -------------------------------------------------------------------------------------


def test_nick_change() -> None:
    """/nick tells the whole room, sender included, and frees the old nickname for others."""
    core, _, (alice, bob) = chat("alice", "bob")
    assert alice.send("/nick alicia") == [NickChanged("alice", "alicia")]
    assert bob.take() == [NickChanged("alice", "alicia")]
    assert connect(core).send("alice")[0] == Welcome("alice", 3, None)
    assert nicks_in(bob) == ("alice", "alicia", "bob")


def test_nick_case_only_change() -> None:
    """A user may change only the case of their own nickname."""
    _, _, (alice,) = chat("alice")
    assert alice.send("/nick ALICE") == [NickChanged("alice", "ALICE")]
    assert nicks_in(alice) == ("ALICE",)


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/nick", "usage: /nick NEW"),
        ("/nick alice", "you are already known as alice"),
        ("/nick 9lives", "nickname '9lives' must not start with a digit or '-'"),
        ("/nick two words", f"nickname 'two words' {NAME_RULES}"),
        ("/nick BOB", "nickname 'BOB' is already in use; choose another"),
    ],
)
def test_nick_errors(line: str, error: str) -> None:
    """A refused /nick answers only the sender and leaves every nickname as it was."""
    _, _, (alice, bob) = chat("alice", "bob")
    assert alice.send(line) == [ErrorText(error)]
    assert bob.take() == []
    assert nicks_in(alice) == ("alice", "bob")


# --- /who, /time, /help ------------------------------------------------------------------------


def test_who_lists_room_sorted() -> None:
    """/who answers only the sender with the nicknames in its room, sorted without regard to case."""
    _, _, (bob, alice, carol, dave) = chat("bob", "Alice", "carol", "dave")
    dave.send("/join elsewhere")
    clear(bob, alice)
    assert bob.send("/who") == [WhoList(LOBBY, ("Alice", "bob", "carol"))]
    assert alice.take() == []
    assert dave.send("/who") == [WhoList("elsewhere", ("dave",), operators=("dave",))]  # the first in


@pytest.mark.parametrize(
    ("zone", "moment", "expected"),
    [
        (timezone.utc, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2026-01-02T03:04:05+00:00"),
        ("Europe/Paris", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2026-01-02T04:04:05+01:00"),
        ("Europe/Paris", datetime(2026, 7, 1, 12, 0, 0, tzinfo=timezone.utc), "2026-07-01T14:00:00+02:00"),
        ("America/New_York", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "2026-01-01T22:04:05-05:00"),
    ],
)
def test_time(zone: object, moment: datetime, expected: str) -> None:
    """/time gives the clock's time in the service's zone as ISO 8601 with its UTC offset."""
    core, _ = make_core(moment.timestamp(), timezone=ZoneInfo(zone) if isinstance(zone, str) else zone)
    (alice,) = login(core, "alice")
    assert alice.send("/time") == [ServerTime(expected, moment.timestamp())]


def test_help_lists_every_command() -> None:
    """/help delivers the HELP table, which has an entry for every slash cmd_ handler and no others."""
    _, _, (alice,) = chat("alice")
    assert alice.send("/help") == [HelpText(HELP)]
    handlers = {name.removeprefix("cmd_") for name in dir(SlashSession) if name.startswith("cmd_")}
    listed = {entry.usage.split()[0][1:] for entry in HELP if not entry.usage.startswith("//")}
    assert listed == handlers


# --- /msg and /me ------------------------------------------------------------------------------


def test_msg_reaches_only_recipient() -> None:
    """/msg goes to the recipient (found case-insensitively) alone and is echoed back to the sender."""
    _, clock, (alice, bob, carol) = chat("alice", "bob", "carol")
    clock.advance(2)
    assert alice.send("/msg BOB   hello  there") == [
        PrivateMessage("alice", "bob", "hello  there", START + 2, echo=True)
    ]
    assert bob.take() == [PrivateMessage("alice", "bob", "hello  there", START + 2)]
    assert carol.take() == []


def test_msg_to_self() -> None:
    """A /msg to oneself is delivered once, as a received message rather than an echo."""
    _, _, (alice,) = chat("alice")
    assert alice.send("/msg alice note to self") == [PrivateMessage("alice", "alice", "note to self", START)]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/msg", "usage: /msg NICK TEXT"),
        ("/msg bob", "usage: /msg NICK TEXT"),
        ("/msg bob \u200b\x1b[1m", "usage: /msg NICK TEXT"),
        ("/msg nobody hi", "no user named 'nobody' is online"),
    ],
)
def test_msg_errors(line: str, error: str) -> None:
    """A /msg without text or to an unknown nickname is refused and delivers nothing."""
    _, _, (alice, bob) = chat("alice", "bob")
    assert alice.send(line) == [ErrorText(error)]
    assert bob.take() == []


def test_me_action_to_room() -> None:
    """/me delivers a sanitised Action to the whole room, sender included."""
    _, clock, (alice, bob) = chat("alice", "bob")
    clock.advance(1)
    action = Action(LOBBY, "alice", "waves", START + 1)
    assert alice.send("/me \x1b[1mwaves") == [action]
    assert bob.take() == [action]


def test_me_without_text() -> None:
    """/me without text is refused."""
    _, _, (alice,) = chat("alice")
    assert alice.send("/me") == [ErrorReply(Usage("/me TEXT"))]


def test_me_blank_after_sanitising() -> None:
    """/me whose text is only whitespace once control characters are removed is refused like /msg."""
    _, _, (alice, bob) = chat("alice", "bob")
    assert alice.send("/me \u200b \u200b") == [ErrorReply(Usage("/me TEXT"))]
    assert bob.take() == []


# --- rooms -------------------------------------------------------------------------------------


def test_join_creates_room() -> None:
    """/join of a new room moves the user there; the old room (and the mover) sees Left 'moved to ROOM'."""
    _, _, (alice, bob) = chat("alice", "bob")
    assert alice.send("/join General") == [Joined("General", "alice"), Left(LOBBY, "alice", "moved to General")]
    assert bob.take() == [Left(LOBBY, "alice", "moved to General")]
    assert alice.send("/rooms") == [RoomList((RoomSummary("General", 1, ""), RoomSummary(LOBBY, 1, "")))]


def test_join_existing_room() -> None:
    """/join finds a room by name regardless of case and a leading '#'; its members see Joined."""
    _, _, (alice, bob) = chat("alice", "bob")
    alice.send("/join General")
    clear(bob)
    assert bob.send("/join #general") == [Joined("General", "bob"), Left(LOBBY, "bob", "moved to General")]
    assert alice.take() == [Joined("General", "bob")]


def test_join_shows_topic() -> None:
    """Joining a room with a topic shows the joiner the topic right after Joined."""
    _, _, (alice, bob) = chat("alice", "bob")
    alice.send("/join rust")
    alice.send("/topic crabs")
    clear(bob)
    assert bob.send("/join rust") == [
        Joined("rust", "bob"),
        TopicInfo("rust", "crabs", "alice", START),
        History("rust", (StoredMessage("rust", "topic", "alice", "crabs", START),)),
        Left(LOBBY, "bob", "moved to rust"),
    ]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/join", "usage: /join ROOM"),
        ("/join #", "room name must not be empty"),
        ("/join 2cool", "room name '2cool' must not start with a digit or '-'"),
        ("/join bad room", f"room name 'bad room' {NAME_RULES}"),
        ("/join " + "r" * 31, f"room name {'r' * 30!r}... is longer than 30 characters"),
        ("/join LOBBY", "you are already in lobby"),
        ("/part", "you are already in lobby"),
    ],
)
def test_room_errors(line: str, error: str) -> None:
    """A refused /join or /part answers only the sender, who stays where it was."""
    _, _, (alice, bob) = chat("alice", "bob")
    assert alice.send(line) == [ErrorText(error)]
    assert bob.take() == []
    assert nicks_in(bob) == ("alice", "bob")


def test_join_room_already_in() -> None:
    """/join of the user's own room, under any spelling, is refused."""
    _, _, (alice,) = chat("alice")
    alice.send("/join rust")
    assert alice.send("/join #RUST") == [ErrorReply(AlreadyInRoom("rust"))]


def test_part_returns_to_lobby() -> None:
    """/part moves the user back to the lobby; the room left (and the mover) sees Left 'moved to lobby'."""
    _, _, (alice, bob, carol) = chat("alice", "bob", "carol")
    alice.send("/join rust")
    bob.send("/join rust")
    clear(alice, carol)
    assert alice.send("/part") == [Joined(LOBBY, "alice"), Left("rust", "alice", "moved to lobby")]
    assert bob.take() == [Left("rust", "alice", "moved to lobby")]
    assert carol.take() == [Joined(LOBBY, "alice")]


def test_empty_rooms_disappear_but_lobby_stays() -> None:
    """An empty room leaves /rooms (the lobby stays even when empty) but gets its topic back when used again."""
    _, _, (alice,) = chat("alice")
    alice.send("/join rust")
    alice.send("/topic crabs")
    assert alice.send("/rooms") == [RoomList((RoomSummary(LOBBY, 0, ""), RoomSummary("rust", 1, "crabs")))]
    alice.send("/join go")
    assert alice.send("/rooms") == [RoomList((RoomSummary("go", 1, ""), RoomSummary(LOBBY, 0, "")))]
    assert alice.send("/join rust") == [
        Joined("rust", "alice"),
        TopicInfo("rust", "crabs", "alice", START),
        History("rust", (StoredMessage("rust", "topic", "alice", "crabs", START),)),
        Left("go", "alice", "moved to rust"),
    ]


def test_rooms_lists_every_room() -> None:
    """/rooms lists every room sorted without regard to case, with member counts and topics."""
    _, _, (alice, bob, carol) = chat("alice", "bob", "carol")
    alice.send("/topic welcome")
    bob.send("/join beta")
    carol.send("/join Alpha")
    carol.send("/topic first")
    clear(alice)
    assert alice.send("/rooms") == [
        RoomList(
            (
                RoomSummary("Alpha", 1, "first"),
                RoomSummary("beta", 1, ""),
                RoomSummary(LOBBY, 1, "welcome"),
            )
        )
    ]


# --- /topic ------------------------------------------------------------------------------------


def test_topic_show_when_unset() -> None:
    """/topic without text shows the room's topic, empty when none was set."""
    _, _, (alice,) = chat("alice")
    assert alice.send("/topic") == [TopicInfo(LOBBY, "")]


def test_topic_set_and_show() -> None:
    """/topic TEXT sets the sanitised topic and tells the room; /topic then shows it."""
    _, _, (alice, bob, carol) = chat("alice", "bob", "carol")
    carol.send("/join elsewhere")
    clear(alice, bob)
    changed = TopicChanged(LOBBY, "alice", "Rust news", START)
    assert alice.send("/topic  Rust \x1b[1mnews ") == [changed]
    assert bob.take() == [changed]
    assert carol.take() == []
    assert bob.send("/topic") == [TopicInfo(LOBBY, "Rust news", "alice", START)]


def test_topic_blank_after_sanitising() -> None:
    """/topic whose text is nothing but control or format characters is refused."""
    _, _, (alice,) = chat("alice")
    assert alice.send("/topic \u200b\x1b[1m") == [ErrorReply(Usage("/topic [TEXT]"))]
    assert alice.send("/topic") == [TopicInfo(LOBBY, "")]


# --- leaving -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [("/quit", "quit"), ("/quit gone fishing", "gone fishing"), ("/quit \x1b[2J", "quit")],
)
def test_quit(line: str, reason: str) -> None:
    """/quit says Goodbye, closes the client, shows the room (a UserQuit) the reason and frees the nickname."""
    core, _, (alice, bob) = chat("alice", "bob")
    assert alice.send(line) == [Goodbye(reason)]
    assert alice.client.closed
    assert bob.take() == [UserQuit("alice", reason, (LOBBY,))]
    assert core.online == 1
    assert connect(core).send("alice")[0] == Welcome("alice", 2, None)


def test_disconnect_without_quit() -> None:
    """A connection lost without /quit shows its room UserQuit 'connection lost' and frees the nickname."""
    core, _, (alice, bob) = chat("alice", "bob")
    alice.session.disconnected()
    assert bob.take() == [UserQuit("alice", "connection lost", (LOBBY,))]
    assert alice.take() == []
    assert core.online == 1
    assert nicks_in(bob) == ("bob",)


def test_disconnect_idempotent() -> None:
    """Reporting the same disconnection twice (or after /quit) announces the departure only once."""
    core, _, (alice, bob, carol) = chat("alice", "bob", "carol")
    alice.session.disconnected()
    alice.session.disconnected("again")
    carol.send("/quit")
    carol.session.disconnected()
    assert bob.take() == [UserQuit("alice", "connection lost", (LOBBY,)), UserQuit("carol", "quit", (LOBBY,))]
    assert core.online == 1


def test_lines_after_disconnect_ignored() -> None:
    """Lines a session hands in after its disconnection are ignored."""
    _, _, (alice, bob) = chat("alice", "bob")
    alice.session.disconnected()
    bob.take()
    assert alice.send("hello?") == []
    assert alice.send("/who") == []
    assert bob.take() == []


# --- failures ----------------------------------------------------------------------------------


class BrokenClient(RecordingClient):
    """A client whose deliver always raises, like a connection that died mid-write."""

    def deliver(self, event: Event) -> None:
        raise ConnectionError("gone")


def test_failing_client_does_not_stop_delivery() -> None:
    """A client whose deliver raises is logged and skipped; the rest of the room still gets the event."""
    core, _, (alice,) = chat("alice")
    broken = BrokenClient("10.0.0.2:5")
    with capturedLogs():
        SlashSession(core.connect(broken, broken.peer)).handle_line("bob")
    (carol,) = login(core, "carol")
    clear(alice)
    said = Said(LOBBY, "alice", "hi", START)
    with capturedLogs() as events:
        assert alice.send("hi") == [said]
    assert carol.take() == [said]
    (failure,) = failures(events)
    assert failure["log_failure"].check(ConnectionError)
    assert (failure["event"], failure["peer"]) == ("Said", "10.0.0.2:5")


def test_unexpected_error_in_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unexpected exception in a request's handler is logged, answered with a generic error, and the session goes on."""
    core, _, (alice,) = chat("alice")

    def explode(service: ChatService, session: Session, request: rq.Who) -> None:
        raise RuntimeError("boom")

    monkeypatch.setitem(core_module._HANDLERS, rq.Who, explode)
    with capturedLogs() as events:
        assert alice.send("/who") == [ErrorReply(InternalError())]
    (failure,) = failures(events)
    assert failure["log_failure"].check(RuntimeError)
    assert alice.send("/time") == [ServerTime("2026-01-02T03:04:05+00:00", START)]
