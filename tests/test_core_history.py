"""Tests for ChatService history: storing room events, /history, history on joining, topics from the store, slow stores."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred
from twisted.logger import capturedLogs

from chat_twisted.model import (
    LOBBY,
    Account,
    Action,
    ErrorReply,
    Goodbye,
    History,
    Joined,
    Left,
    NickChanged,
    Registered,
    RoomList,
    RoomSummary,
    Said,
    StoredMessage,
    TopicChanged,
    TopicInfo,
    UserQuit,
    Welcome,
    WhoList,
)
from chat_twisted import requests as rq
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.slash import SlashSession
from tests.fakes import RecordingClient
from tests.helpers import START, ErrorText, ManualStore, connect, login, make_core, success_result_of

NOT_SAVED = ErrorText("your message could not be saved, so it was not sent")


class ManualHasher:
    """A password hasher whose every call waits until the test answers it, like a busy thread pool."""

    def __init__(self) -> None:
        self.calls: list[Deferred[Any]] = []

    def hash(self, password: str) -> Deferred[str]:
        return self._call()

    def verify(self, password_hash: str, password: str) -> Deferred[bool]:
        return self._call()

    def _call(self) -> Deferred[Any]:
        waiting: Deferred[Any] = Deferred()
        self.calls.append(waiting)
        return waiting


def stored(store: MemoryStore, room_key: str = LOBBY) -> list[StoredMessage]:
    """Return everything the store holds for the room."""
    return success_result_of(store.recent_messages(room_key, 10_000))  # type: ignore[no-any-return]


def said(text: str, nick: str = "alice", room: str = LOBBY, when: float = START) -> StoredMessage:
    """The stored form of a plain message."""
    return StoredMessage(room, "say", nick, text, when)


def fill(store: MemoryStore, count: int, room: str = LOBBY) -> list[StoredMessage]:
    """Append C{count} messages to the room's history directly and return them."""
    messages = [said(f"m{number}", room=room, when=START + number) for number in range(count)]
    for message in messages:
        store.append_message(room.lower(), message)
    return messages


# --- every room event is stored ----------------------------------------------------------------


def test_room_events_are_stored() -> None:
    """Messages, actions and topics are kept under the room's key, with its display name and the clock's time."""
    store = MemoryStore()
    core, clock = make_core(store=store)
    (alice,) = login(core, "alice")
    alice.send("hello")
    clock.advance(1)
    alice.send("/me waves")
    alice.send("/join Rust")
    clock.advance(1)
    alice.send("/topic crabs")
    alice.send("/msg alice private")
    assert stored(store) == [said("hello"), StoredMessage(LOBBY, "action", "alice", "waves", START + 1)]
    assert stored(store, "rust") == [StoredMessage("Rust", "topic", "alice", "crabs", START + 2)]


@pytest.mark.parametrize(
    ("line", "event", "record"),
    [
        ("hi", Said(LOBBY, "alice", "hi", START), said("hi")),
        ("/me waves", Action(LOBBY, "alice", "waves", START), StoredMessage(LOBBY, "action", "alice", "waves", START)),
        ("/topic news", TopicChanged(LOBBY, "alice", "news", START), StoredMessage(LOBBY, "topic", "alice", "news", START)),
    ],
)
def test_stored_before_anyone_sees_it(line: str, event: object, record: StoredMessage) -> None:
    """A room event reaches nobody, sender included, until the store has committed it."""
    store = ManualStore()
    core, _ = make_core(store=store)
    alice, bob = login(core, "alice", "bob")
    assert alice.send(line) == []
    assert bob.take() == []
    store.commit()
    assert stored(store) == [record]
    assert alice.take() == [event]
    assert bob.take() == [event]


# --- /history ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "stored", "shown"),
    [("/history", 25, 20), ("/history 1", 30, 1), ("/history 3", 30, 3), ("/history 30", 30, 30),
     ("/history 40", 30, 30), ("/history 100000", 600, 500)],
)
def test_history_count(command: str, stored: int, shown: int) -> None:
    """/history replays the room's last N messages (default 20, at most 500), oldest first."""
    store = MemoryStore()
    core, _ = make_core(store=store)
    (alice,) = login(core, "alice")
    messages = fill(store, stored)
    assert alice.send(command) == [History(LOBBY, tuple(messages[stored - shown :]), requested=True)]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ("x", "usage: /history [N], N a whole number"),
        ("2.5", "usage: /history [N], N a whole number"),
        ("0", "usage: /history [N], N at least 1"),
        ("-3", "usage: /history [N], N at least 1"),
    ],
)
def test_history_errors(args: str, error: str) -> None:
    """/history with a count that is not a whole number of at least 1 is refused."""
    core, _ = make_core()
    (alice,) = login(core, "alice")
    assert alice.send(f"/history {args}") == [ErrorText(error)]


def test_history_empty_room() -> None:
    """/history in a room without history still answers, with an empty History."""
    core, _ = make_core()
    (alice,) = login(core, "alice")
    alice.send("/join quiet")
    assert alice.send("/history") == [History("quiet", (), requested=True)]


def test_history_only_own_room() -> None:
    """/history replays only the messages of the user's current room."""
    core, _ = make_core()
    alice, bob = login(core, "alice", "bob")
    alice.send("in the lobby")
    bob.send("/join rust")
    bob.send("in rust")
    assert bob.send("/history") == [History("rust", (said("in rust", "bob", "rust"),), requested=True)]


# --- history on joining ------------------------------------------------------------------------


def test_join_history_after_joined_and_topic() -> None:
    """A newcomer is shown the room's last 10 messages, after Joined and the topic."""
    store = MemoryStore()
    core, _ = make_core(store=store)
    (alice,) = login(core, "alice")
    alice.send("/topic news")
    messages = [StoredMessage(LOBBY, "topic", "alice", "news", START), *fill(store, 12)]
    assert connect(core).send("bob") == [
        Welcome("bob", 2, None),
        Joined(LOBBY, "bob"),
        TopicInfo(LOBBY, "news", "alice", START),
        History(LOBBY, tuple(messages[-10:])),
    ]


def test_join_history_on_join_command() -> None:
    """/join shows the entered room's recent history too."""
    store = MemoryStore()
    core, _ = make_core(store=store)
    (alice,) = login(core, "alice")
    messages = fill(store, 3, room="Rust")
    assert alice.send("/join rust") == [
        Joined("rust", "alice"),
        History("rust", tuple(messages)),
        Left(LOBBY, "alice", "moved to rust"),
    ]


def test_join_history_configured() -> None:
    """join_history sets how many messages a newcomer is shown."""
    store = MemoryStore()
    core, _ = make_core(store=store, join_history=2)
    messages = fill(store, 5)
    assert connect(core).send("bob")[2:] == [History(LOBBY, tuple(messages[-2:]))]


def test_join_history_disabled() -> None:
    """With join_history=0 nobody is shown history on joining, though /history still works."""
    store = MemoryStore()
    core, _ = make_core(store=store, join_history=0)
    messages = fill(store, 5)
    user = connect(core)
    assert user.send("bob") == [Welcome("bob", 1, None), Joined(LOBBY, "bob")]
    assert user.send("/history 2") == [History(LOBBY, tuple(messages[-2:]), requested=True)]


def test_join_without_history() -> None:
    """Entering a room that has no history shows no History event at all."""
    core, _ = make_core()
    (alice,) = login(core, "alice")
    assert alice.send("/join empty") == [Joined("empty", "alice"), Left(LOBBY, "alice", "moved to empty")]


# --- topics restored from the store ------------------------------------------------------------


def test_topics_restored_from_store() -> None:
    """A started core shows the stored topics: the newest for the lobby, and for a room created later."""
    store = MemoryStore()
    store.append_message(LOBBY, StoredMessage(LOBBY, "topic", "old", "first", START - 20))
    store.append_message(LOBBY, StoredMessage(LOBBY, "topic", "old", "welcome back", START - 10))
    store.append_message("rust", StoredMessage("Rust", "topic", "old", "crabs", START - 5))
    core, _ = make_core(store=store, join_history=0)
    core.startService()
    user = connect(core)
    assert user.send("alice") == [Welcome("alice", 1, None), Joined(LOBBY, "alice"), TopicInfo(LOBBY, "welcome back")]
    assert user.send("/join RUST") == [Joined("RUST", "alice"), TopicInfo("RUST", "crabs"), Left(LOBBY, "alice", "moved to RUST")]
    assert user.send("/rooms") == [RoomList((RoomSummary(LOBBY, 0, "welcome back"), RoomSummary("RUST", 1, "crabs")))]


def test_lines_wait_while_the_store_opens() -> None:
    """Requests that arrive while the store's topics load wait, in order, so a topic set then is kept."""

    class SlowTopics(MemoryStore):
        """Answers room_topics only when the test fires C{topics}."""

        def __init__(self) -> None:
            super().__init__()
            self.topics: Deferred[dict[str, str]] = Deferred()

        def room_topics(self) -> Deferred[dict[str, str]]:
            return self.topics

    store = SlowTopics()
    core, _ = make_core(store=store, join_history=0)
    core.startService()
    alice = connect(core)
    # Submitted at once, as a door that does not wait would: each must still act in order.
    requests = (rq.Login("alice", None, (LOBBY,)), rq.Join("rust"), rq.Topic("rust", "new"), rq.Part("rust"))
    done = [alice.session.submit(request) for request in requests]
    assert alice.take() == []
    assert not any(d.called for d in done)
    store.topics.callback({"rust": "old", LOBBY: "stored lobby topic"})
    assert [success_result_of(d) for d in done] == [None] * 4
    assert alice.take()[:3] == [Welcome("alice", 1, None), Joined(LOBBY, "alice"), TopicInfo(LOBBY, "stored lobby topic")]
    assert alice.send("/join rust") == [
        Joined("rust", "alice"),
        TopicInfo("rust", "new", "alice", START),
        Left(LOBBY, "alice", "moved to rust"),
    ]


# --- a slow store keeps everything in order ----------------------------------------------------


def test_nothing_overtakes_a_message_being_stored() -> None:
    """A /nick and a /who made after an unstored message, by its sender or another user, are shown after it."""
    store = ManualStore()
    core, _ = make_core(store=store)
    alice, bob = login(core, "alice", "bob")
    alice.send("hi")
    assert alice.send("/nick alicia") == []
    assert bob.send("/who") == []
    assert alice.send("/who") == []
    store.commit()
    hi = Said(LOBBY, "alice", "hi", START)
    assert bob.take() == [hi, NickChanged("alice", "alicia"), WhoList(LOBBY, ("alicia", "bob"))]
    assert alice.take() == [hi, NickChanged("alice", "alicia"), WhoList(LOBBY, ("alicia", "bob"))]


def test_messages_from_several_users_keep_their_order() -> None:
    """Messages from several users waiting on the store are shown in the order they were made, once each commits."""
    store = ManualStore()
    core, _ = make_core(store=store)
    alice, bob = login(core, "alice", "bob")
    alice.send("one")
    bob.send("two")
    alice.send("/me three")
    store.commit()
    assert bob.take() == [Said(LOBBY, "alice", "one", START)]
    store.commit()
    store.commit()
    assert bob.take() == [Said(LOBBY, "bob", "two", START), Action(LOBBY, "alice", "three", START)]
    assert alice.take() == [
        Said(LOBBY, "alice", "one", START),
        Said(LOBBY, "bob", "two", START),
        Action(LOBBY, "alice", "three", START),
    ]


def test_recipients_fixed_when_message_is_made() -> None:
    """A message goes to those in the room when it was made, not to whoever is there when it is stored."""
    store = ManualStore()
    core, _ = make_core(store=store, join_history=0)
    alice, bob, carol = login(core, "alice", "bob", "carol")
    carol.send("/join elsewhere")
    alice.send("hi")
    bob.send("/join elsewhere")
    carol.send("/part")
    store.commit()
    hi = Said(LOBBY, "alice", "hi", START)
    assert bob.take() == [
        hi,
        Joined("elsewhere", "bob"),
        Left(LOBBY, "bob", "moved to elsewhere"),
        Left("elsewhere", "carol", "moved to lobby"),
    ]
    assert carol.take() == [Joined("elsewhere", "bob"), Joined(LOBBY, "carol"), Left("elsewhere", "carol", "moved to lobby")]


def test_quit_waits_for_the_message_before_it() -> None:
    """/quit right after an unstored message closes the connection only after the message is shown."""
    store = ManualStore()
    core, _ = make_core(store=store)
    alice, bob = login(core, "alice", "bob")
    alice.send("bye")
    alice.send("/quit")
    assert not alice.client.closed
    store.commit()
    assert alice.take() == [Said(LOBBY, "alice", "bye", START), Goodbye("quit")]
    assert alice.client.closed
    assert bob.take() == [Said(LOBBY, "alice", "bye", START), UserQuit("alice", "quit", (LOBBY,))]


def test_failed_append_is_not_sent() -> None:
    """When the store fails an append, the sender gets an error, nobody sees the message, and later events flow."""
    store = ManualStore()
    core, _ = make_core(store=store)
    alice, bob = login(core, "alice", "bob")
    alice.send("lost")
    bob.send("/who")
    with capturedLogs() as events:
        store.fail()
    assert alice.take() == [NOT_SAVED]
    assert bob.take() == [WhoList(LOBBY, ("alice", "bob"))]
    (failure,) = [event for event in events if "log_failure" in event]
    assert failure["log_failure"].check(OSError)
    assert stored(store) == []
    alice.send("kept")
    store.commit()
    assert bob.take() == [Said(LOBBY, "alice", "kept", START)]


def test_failed_topic_append_leaves_topic_unchanged() -> None:
    """A topic the store could not save is not sent, so the room's topic stays what it was."""
    store = ManualStore()
    core, _ = make_core(store=store)
    alice, bob = login(core, "alice", "bob")
    alice.send("/topic unsaved")
    with capturedLogs():
        store.fail()
    assert alice.take() == [NOT_SAVED]
    assert bob.send("/topic") == [TopicInfo(LOBBY, "")]


def test_joiner_sees_message_stored_while_joining() -> None:
    """A user who joins while an earlier message is still being stored sees it, in the join history or live."""
    store = ManualStore()
    core, _ = make_core(store=store)
    (alice,) = login(core, "alice")
    alice.send("just before you came")
    bob = RecordingClient()
    SlashSession(core.connect(bob, "127.0.0.1:5")).handle_line("bob")
    store.commit()
    live = [event.text for event in bob.of_type(Said)]  # type: ignore[attr-defined]
    replayed = [message.text for event in bob.of_type(History) for message in event.messages]  # type: ignore[attr-defined]
    assert live + replayed == ["just before you came"]


# --- slow password hashing ---------------------------------------------------------------------


def test_line_deferred_waits_for_slow_login() -> None:
    """handle_line's Deferred stays unfired while the password is being checked, and fires once it is."""
    store, hasher = MemoryStore(), ManualHasher()
    core, _ = make_core(store=store, hasher=hasher)
    store.create_account("alice", Account("alice", "$argon2id$stand-in", START))
    (bob,) = login(core, "bob")
    user = connect(core)
    done = user.dialect.handle_line("/login alice pass")
    assert done is not None and not done.called
    assert user.take() == []
    assert bob.send("not blocked") == [Said(LOBBY, "bob", "not blocked", START)]
    hasher.calls[0].callback(True)
    assert success_result_of(done) is None
    assert user.take()[:2] == [Welcome("alice", 2, "alice"), Joined(LOBBY, "alice")]


def test_line_deferred_waits_for_slow_register() -> None:
    """/register's Deferred stays unfired while the password is being hashed, and fires once it is."""
    hasher = ManualHasher()
    core, _ = make_core(hasher=hasher)
    (alice,) = login(core, "alice")
    done = alice.dialect.handle_line("/register pass-word")
    assert done is not None and not done.called
    hasher.calls[0].callback("$argon2id$stand-in")
    assert success_result_of(done) is None
    assert alice.take() == [Registered("alice")]


def test_slow_login_of_closed_connection_does_nothing() -> None:
    """A connection that ends while its password is being checked is not logged in when the check succeeds."""
    store, hasher = MemoryStore(), ManualHasher()
    core, _ = make_core(store=store, hasher=hasher)
    store.create_account("alice", Account("alice", "$argon2id$stand-in", START))
    user = connect(core)
    done = user.dialect.handle_line("/login alice pass")
    assert done is not None
    user.session.disconnected()
    hasher.calls[0].callback(True)
    assert success_result_of(done) is None
    assert user.take() == []
    assert core.online == 0

