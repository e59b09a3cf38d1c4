"""
The core through its typed requests (what every door submits), with RecordingClient fakes: several
rooms per session, parting, quitting, renaming, away, whois, and the typed errors; and, at the line
door, that refused lines pay for flood control like any other.
"""

from __future__ import annotations

from datetime import timezone
from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail
from twisted.logger import capturedLogs
from twisted.python.failure import Failure

from chat_twisted import core as core_module
from chat_twisted import requests as rq
from chat_twisted.core import ChatService
from chat_twisted.errors import ChatError, HistoryUnavailable, InternalError, NoSuchRoom, NotInRoom, NotLoggedIn
from chat_twisted.model import (
    LOBBY,
    Action,
    AwayChanged,
    ErrorReply,
    AwaySet,
    Joined,
    Left,
    NickChanged,
    PrivateMessage,
    RecipientAway,
    Said,
    StoredMessage,
    TopicInfo,
    UserInfo,
    UserList,
    UserQuit,
    Welcome,
    WhoList,
)
from chat_twisted.sessions import Session
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.line import LineChatFactory
from chat_twisted.wire.text import render
from tests.fakes import RecordingClient
from tests.helpers import START, LineConnection, error_of, make_core, ok, success_result_of, user


def failure_result_of(d: Deferred[Any]) -> Failure:
    """Return the failure of a Deferred that has already failed."""
    results: list[Any] = []
    d.addBoth(results.append)
    assert results, "the Deferred has not fired"
    assert isinstance(results[0], Failure), results[0]
    return results[0]


# --- several rooms at once ---------------------------------------------------------------------


def test_session_in_two_rooms_speaks_in_each() -> None:
    """A session may be in two rooms at once: each Say names its room and reaches that room's members only."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY, "tea", port=1)
    bob_c, _ = user(core, "bob", LOBBY, port=2)
    carol_c, _ = user(core, "carol", "tea", port=3)
    alice_c.take()
    ok(alice.submit(rq.Say(LOBBY, "hi lobby")))
    ok(alice.submit(rq.Say("tea", "hi tea")))
    ok(alice.submit(rq.Act("tea", "sips")))
    assert alice_c.take() == [
        Said(LOBBY, "alice", "hi lobby", START),
        Said("tea", "alice", "hi tea", START),
        Action("tea", "alice", "sips", START),
    ]
    assert bob_c.take() == [Said(LOBBY, "alice", "hi lobby", START)]
    assert carol_c.take() == [Said("tea", "alice", "hi tea", START), Action("tea", "alice", "sips", START)]
    ok(alice.submit(rq.Who(LOBBY)))
    ok(alice.submit(rq.Who("tea")))
    assert alice_c.take() == [WhoList(LOBBY, ("alice", "bob")), WhoList("tea", ("alice", "carol"), operators=("alice",))]
    assert list(alice.rooms) == [LOBBY, "tea"]


def test_join_a_second_room_keeps_the_first() -> None:
    """Join adds a room: the member stays in the first, and the second room's members see it join."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY, port=1)
    bob_c, _ = user(core, "bob", LOBBY, port=2)
    alice_c.take()
    ok(alice.submit(rq.Join("tea")))
    assert alice_c.take() == [Joined("tea", "alice")]
    assert bob_c.take() == []
    ok(alice.submit(rq.Who(LOBBY)))
    assert alice_c.take() == [WhoList(LOBBY, ("alice", "bob"))]


@pytest.mark.parametrize("reason", ["", "off to bed"])
def test_part_is_seen_by_the_leaver_and_the_rest(reason: str) -> None:
    """Part, with or without a reason, shows the same Left to the one who left and to those who stay."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY, "tea", port=1)
    bob_c, _ = user(core, "bob", "tea", port=2)
    carol_c, _ = user(core, "carol", LOBBY, port=3)
    alice_c.take()
    ok(alice.submit(rq.Part("tea", reason)))
    assert alice_c.take() == [Left("tea", "alice", reason)]
    assert bob_c.take() == [Left("tea", "alice", reason)]
    assert carol_c.take() == []
    assert list(alice.rooms) == [LOBBY]


# --- leaving the chat, renaming, away: once per neighbour ----------------------------------------


def test_user_quit_names_every_shared_room_once() -> None:
    """A user leaving two rooms it shares with a watcher gives the watcher one UserQuit naming both rooms."""
    core, _ = make_core()
    _, alice = user(core, "alice", LOBBY, "tea", "go", port=1)
    watcher_c, _ = user(core, "watcher", "tea", LOBBY, port=2)
    other_c, _ = user(core, "other", "go", port=3)
    watcher_c.take()
    alice.disconnected()
    assert watcher_c.take() == [UserQuit("alice", "connection lost", (LOBBY, "tea"))]
    assert other_c.take() == [UserQuit("alice", "connection lost", ("go",))]


def test_quit_request_gives_one_user_quit_per_neighbour() -> None:
    """A Quit request with a reason reaches each neighbour once, as UserQuit with that reason."""
    core, _ = make_core()
    _, alice = user(core, "alice", LOBBY, "tea", port=1)
    watcher_c, _ = user(core, "watcher", LOBBY, "tea", port=2)
    watcher_c.take()
    ok(alice.submit(rq.Quit("bye all")))
    assert watcher_c.take() == [UserQuit("alice", "bye all", (LOBBY, "tea"))]


def test_nick_change_reaches_a_two_room_neighbour_once() -> None:
    """NickChanged goes once to a user who shares two rooms with the renamed one, and once to it."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY, "tea", port=1)
    bob_c, _ = user(core, "bob", LOBBY, "tea", port=2)
    alice_c.take()
    ok(alice.submit(rq.Nick("alicia")))
    assert alice_c.take() == [NickChanged("alice", "alicia")]
    assert bob_c.take() == [NickChanged("alice", "alicia")]


def test_away_is_told_to_self_neighbours_and_senders() -> None:
    """Away gives AwaySet to the user, AwayChanged to its neighbours, and RecipientAway to whoever tells it something."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY, "tea", port=1)
    bob_c, bob = user(core, "bob", LOBBY, "tea", port=2)
    carol_c, _ = user(core, "carol", "elsewhere", port=3)
    alice_c.take()
    ok(alice.submit(rq.Away("lunch")))
    assert alice_c.take() == [AwaySet(True)]
    assert bob_c.take() == [AwayChanged("alice", "lunch")]
    assert carol_c.take() == []
    ok(bob.submit(rq.Tell("alice", "ping")))
    assert bob_c.take() == [PrivateMessage("bob", "alice", "ping", START, echo=True), RecipientAway("alice", "lunch")]
    assert alice_c.take() == [PrivateMessage("bob", "alice", "ping", START)]
    ok(bob.submit(rq.Who(LOBBY)))
    assert bob_c.take() == [WhoList(LOBBY, ("alice", "bob"), ("alice",))]
    ok(alice.submit(rq.Away("")))
    assert alice_c.take() == [AwaySet(False)]
    assert bob_c.take() == [AwayChanged("alice", "")]
    ok(bob.submit(rq.Tell("alice", "back?")))
    assert bob_c.take() == [PrivateMessage("bob", "alice", "back?", START, echo=True)]


def test_whois_answers_with_a_user_list() -> None:
    """Whois answers the asker with one UserList of those asked about who are online, in the order asked."""
    core, clock = make_core()
    _, alice = user(core, "alice", LOBBY, "tea", port=1)
    bob_c, bob = user(core, "bob", LOBBY, port=2)
    ok(alice.submit(rq.Away("lunch")))
    clock.advance(7)
    bob_c.take()
    ok(bob.submit(rq.Whois(("ALICE", "nobody", "bob"))))
    assert bob_c.take() == [
        UserList(
            ("ALICE", "nobody", "bob"),
            (
                UserInfo("alice", None, "lunch", (LOBBY, "tea"), 7.0, START),
                UserInfo("bob", None, "", (LOBBY,), 7.0, START),
            ),
        )
    ]


# --- typed errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [rq.Say("tea", "hi"), rq.Act("tea", "waves"), rq.Part("tea"), rq.ReadHistory("tea", 5), rq.Topic("tea", "new")],
    ids=["Say", "Act", "Part", "ReadHistory", "Topic set"],
)
def test_requests_about_a_room_not_joined_fail_with_not_in_room(request_: rq.Request) -> None:
    """Say, Act, Part, ReadHistory and setting a topic in a room the user is not in fail with NotInRoom, showing nothing."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY, port=1)
    bob_c, _ = user(core, "bob", "tea", port=2)
    alice_c.take()
    assert error_of(alice.submit(request_)) == NotInRoom("tea")
    assert alice_c.take() == []
    assert bob_c.take() == []


@pytest.mark.parametrize("request_", [rq.Who("nowhere"), rq.Topic("nowhere")], ids=["Who", "Topic query"])
def test_questions_about_a_missing_room_fail_with_no_such_room(request_: rq.Request) -> None:
    """Who and a topic question about a room nobody is in fail with NoSuchRoom."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY)
    assert error_of(alice.submit(request_)) == NoSuchRoom("nowhere")
    assert alice_c.take() == []


def test_topic_question_needs_no_membership() -> None:
    """A topic question about an existing room the user is not in is answered."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY, port=1)
    _, bob = user(core, "bob", "tea", port=2)
    ok(bob.submit(rq.Topic("tea", "green")))
    alice_c.take()
    ok(alice.submit(rq.Topic("tea")))
    assert alice_c.take() == [TopicInfo("tea", "green", "bob", START)]


@pytest.mark.parametrize(
    "request_",
    [rq.Say(LOBBY, "hi"), rq.Join("tea"), rq.Who(LOBBY), rq.Nick("bob"), rq.Away("x"), rq.Time(), rq.Rooms()],
    ids=["Say", "Join", "Who", "Nick", "Away", "Time", "Rooms"],
)
def test_requests_before_login_fail_with_not_logged_in(request_: rq.Request) -> None:
    """Every request but Login and Quit fails with NotLoggedIn before the session has a nickname."""
    core, _ = make_core()
    client = RecordingClient()
    session = core.connect(client, client.peer)
    assert error_of(session.submit(request_)) == NotLoggedIn()
    assert client.take() == []
    assert core.online == 0


def test_login_with_rooms_enters_them_in_order() -> None:
    """Login with rooms=(...) welcomes the user and enters each room in order; without rooms it enters none."""
    core, _ = make_core(join_history=0)
    bob_c, _ = user(core, "bob", "tea", port=1)
    client = RecordingClient("127.0.0.1:2")
    session = core.connect(client, client.peer)
    ok(session.submit(rq.Login("alice", None, (LOBBY, "tea"))))
    assert client.take() == [Welcome("alice", 2, None), Joined(LOBBY, "alice"), Joined("tea", "alice")]
    assert bob_c.take() == [Joined("tea", "alice")]
    assert list(session.rooms) == [LOBBY, "tea"]
    loner = RecordingClient("127.0.0.1:3")
    alone = core.connect(loner, loner.peer)
    ok(alone.submit(rq.Login("carol")))
    assert loner.take() == [Welcome("carol", 3, None)]
    assert alone.rooms == {}


def test_unexpected_exception_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that raises unexpectedly fails the request with InternalError (logged), and the session goes on."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY)

    def explode(service: ChatService, session: Session, request: rq.Rooms) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(core_module._HANDLERS, rq.Rooms, explode)
    with capturedLogs() as events:
        assert error_of(alice.submit(rq.Rooms())) == InternalError()
    (failure,) = [event for event in events if "log_failure" in event]
    assert failure["log_failure"].check(ZeroDivisionError)
    ok(alice.submit(rq.Say(LOBBY, "still here")))
    assert alice_c.take() == [Said(LOBBY, "alice", "still here", START)]


class UnreadableStore(MemoryStore):
    """A MemoryStore whose history reads fail, like a database that cannot be queried."""

    def recent_messages(self, room_key: str, limit: int) -> Deferred[list[StoredMessage]]:
        return fail(OSError("disk error"))

    def find_messages(self, room_key: str, limit: int, *args: Any, **kwargs: Any) -> Deferred[list[StoredMessage]]:
        return fail(OSError("disk error"))


def test_failed_history_read_answers_history_unavailable() -> None:
    """A history read that fails, asked for or on joining, is answered with ErrorReply(HistoryUnavailable) and logged."""
    core, _ = make_core(store=UnreadableStore())
    client = RecordingClient()
    session = core.connect(client, client.peer)
    with capturedLogs() as events:
        ok(session.submit(rq.Login("alice", None, (LOBBY,))))
        ok(session.submit(rq.ReadHistory(LOBBY, 5)))
    assert client.take() == [
        Welcome("alice", 1, None),
        Joined(LOBBY, "alice"),
        ErrorReply(HistoryUnavailable(LOBBY)),
        ErrorReply(HistoryUnavailable(LOBBY)),
    ]
    assert len([event for event in events if "log_failure" in event]) == 2
    assert render(ErrorReply(HistoryUnavailable(LOBBY)), timezone.utc) == [
        "error: history unavailable: lobby's history could not be read; try again later"
    ]


# --- the line door: refused lines are not free ---------------------------------------------------

MAX_LINE = 100


@pytest.mark.parametrize(
    ("bad_line", "error"),
    [
        (b"x" * (MAX_LINE + 1) + b"\n", f"error: line longer than {MAX_LINE} bytes; it was dropped"),
        (b"caf\xe9 \xff\n", "error: line is not valid UTF-8; it was dropped"),
    ],
    ids=["over-long", "invalid-utf8"],
)
def test_refused_lines_cost_flood_budget(bad_line: bytes, error: str) -> None:
    """Past the burst, each refused line (over-long or invalid UTF-8) waits for its token like any other line."""
    core, clock = make_core()
    factory = LineChatFactory(core, max_line=MAX_LINE, rate=5, burst=10)
    alice = LineConnection(factory)
    alice.send("alice\n")
    alice.lines()
    clock.advance(2)  # the bucket is full again: 10 tokens
    alice.send(bad_line * 13)
    assert alice.lines() == [error] * 10  # the burst
    clock.advance(0.1)
    assert alice.lines() == []  # half a token: the 11th still waits (fake lag)
    clock.advance(0.15)  # one token is 0.2 s at 5 a second
    assert alice.lines() == [error]
    clock.advance(0.4)
    assert alice.lines() == [error] * 2
    alice.send("hello\n")  # a message after them waits its turn too
    assert alice.lines() == []
    clock.advance(0.2)
    assert alice.lines() == ["[03:04:07] alice: hello"]
