"""
Message search: the core through typed L{rq.Search} requests with RecordingClient fakes (which
rooms are searched, the answer's place in the outbox, limits, paging, refusals, a failing store),
then the line door's C{/search} with the exact lines a user reads.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail
from twisted.logger import capturedLogs

from chat_twisted import requests as rq
from chat_twisted.errors import EmptyText, NotLoggedIn, SearchUnavailable
from chat_twisted.model import LOBBY, ErrorReply, Said, SearchResults, StoredMessage
from chat_twisted.publishing import MAX_SEARCH
from chat_twisted.sessions import Session
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.line import LineChatFactory
from chat_twisted.wire.slash import line_cost
from tests.fakes import RecordingClient
from tests.helpers import (
    START,
    ManualStore,
    error_of,
    line_user,
    make_core,
    make_line_factory,
    ok,
    success_result_of,
    user,
)


def said(room: str, nick: str, text: str, when: float = START) -> StoredMessage:
    """The stored form of a plain message in C{room}."""
    return StoredMessage(room, "say", nick, text, when)


def results(client: RecordingClient) -> list[SearchResults]:
    """Return the SearchResults the client was shown, forgetting everything it recorded."""
    return [event for event in client.take() if isinstance(event, SearchResults)]


class FailingSearchStore(MemoryStore):
    """A MemoryStore whose searches fail, like a database that cannot be queried."""

    def search_messages(self, *args: Any, **kwargs: Any) -> Deferred[list[StoredMessage]]:
        return fail(OSError("disk error"))


class WaitingSearchStore(ManualStore):
    """A ManualStore whose searches, like its history reads, see appends that have not fired yet."""

    def search_messages(self, *args: Any, **kwargs: Any) -> Deferred[list[StoredMessage]]:
        self._store_waiting()
        return super().search_messages(*args, **kwargs)


# --- the core ---------------------------------------------------------------------------------


def test_search_covers_every_room_the_user_is_in_and_no_other() -> None:
    """A Search answers only the asker, with matches from each of its rooms, newest first, and none from others."""
    core, clock = make_core()
    alice_c, alice = user(core, "alice", LOBBY, "tea", port=1)
    bob_c, bob = user(core, "bob", LOBBY, "secret", port=2)
    ok(alice.submit(rq.Say(LOBBY, "kettle in the lobby")))
    clock.advance(1)
    ok(bob.submit(rq.Say("secret", "secret kettle")))
    clock.advance(1)
    ok(alice.submit(rq.Act("tea", "fills the Kettle")))
    clock.advance(1)
    ok(alice.submit(rq.Say("tea", "no match here")))
    alice_c.take()
    bob_c.take()

    ok(alice.submit(rq.Search("kettle")))

    assert alice_c.take() == [SearchResults("kettle", (
        StoredMessage("tea", "action", "alice", "fills the Kettle", START + 2),
        said(LOBBY, "alice", "kettle in the lobby", START),
    ))]
    assert bob_c.take() == []


def test_search_results_carry_their_ids() -> None:
    """Each message found carries the id it was stored under, the same as the live event's."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY)
    ok(alice.submit(rq.Say(LOBBY, "first note")))
    ok(alice.submit(rq.Say(LOBBY, "second note")))
    live_ids = [event.id for event in alice_c.take() if isinstance(event, Said)]

    ok(alice.submit(rq.Search("note")))

    [answer] = results(alice_c)
    assert [message.id for message in answer.messages] == list(reversed(live_ids))


def test_search_forgets_a_room_once_left() -> None:
    """Messages of a room the user has left are no longer searched, though they stay in the store."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY, "tea")
    ok(alice.submit(rq.Say("tea", "teapot")))
    ok(alice.submit(rq.Part("tea")))
    alice_c.take()

    ok(alice.submit(rq.Search("teapot")))

    assert alice_c.take() == [SearchResults("teapot", ())]


def test_search_in_no_room_finds_nothing() -> None:
    """A user in no room gets an empty answer without the store being asked."""
    core, _ = make_core(store=FailingSearchStore())
    alice_c, alice = user(core, "alice")

    ok(alice.submit(rq.Search("anything")))

    assert alice_c.take() == [SearchResults("anything", ())]


def test_search_with_no_match_answers_empty() -> None:
    """A search that matches nothing, or whose text has no word in it, is still answered, with no messages."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY)
    ok(alice.submit(rq.Say(LOBBY, "hello")))
    alice_c.take()

    ok(alice.submit(rq.Search("zebra")))
    ok(alice.submit(rq.Search('"*:-(')))

    assert alice_c.take() == [SearchResults("zebra", ()), SearchResults('"*:-(', ())]


@pytest.mark.parametrize("text", ["", "   ", "\x07\x1b[2J", "\u200b"])
def test_empty_search_text_is_refused(text: str) -> None:
    """A search text with nothing visible in it fails with EmptyText and shows nothing."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY)

    assert error_of(alice.submit(rq.Search(text))) == EmptyText()
    assert alice_c.take() == []


def test_search_text_is_sanitised_and_trimmed_in_the_answer() -> None:
    """The answer names the text as searched: control characters and surrounding spaces removed."""
    core, _ = make_core()
    alice_c, alice = user(core, "alice", LOBBY)
    ok(alice.submit(rq.Say(LOBBY, "fox")))
    alice_c.take()

    ok(alice.submit(rq.Search("  f\x1b[31mox\x07 ")))

    assert alice_c.take() == [SearchResults("fox", (said(LOBBY, "alice", "fox"),))]


@pytest.mark.parametrize(
    "limit, count", [(-5, 1), (0, 1), (1, 1), (20, 20), (MAX_SEARCH, MAX_SEARCH), (10_000, MAX_SEARCH)]
)
def test_search_limit_is_clamped(limit: int, count: int) -> None:
    """The limit is held between 1 and MAX_SEARCH (100); the newest matches are the ones given."""
    store = MemoryStore()
    for number in range(MAX_SEARCH + 20):
        store.append_message(LOBBY, said(LOBBY, "bob", f"match {number}", START + number))
    core, _ = make_core(store=store)
    alice_c, alice = user(core, "alice", LOBBY)

    ok(alice.submit(rq.Search("match", limit=limit)))

    [answer] = results(alice_c)
    newest_first = [f"match {n}" for n in range(MAX_SEARCH + 19, -1, -1)]
    assert [message.text for message in answer.messages] == newest_first[:count]


def test_search_before_pages_to_older_matches() -> None:
    """Search with C{before} set to the oldest id of one answer gives the next older matches."""
    store = MemoryStore()
    for number in range(5):
        store.append_message(LOBBY, said(LOBBY, "bob", f"page {number}", START + number))
    core, _ = make_core(store=store)
    alice_c, alice = user(core, "alice", LOBBY)

    ok(alice.submit(rq.Search("page", limit=2)))
    [first] = results(alice_c)
    ok(alice.submit(rq.Search("page", limit=2, before=first.messages[-1].id)))
    [second] = results(alice_c)

    assert [message.text for message in first.messages] == ["page 4", "page 3"]
    assert [message.text for message in second.messages] == ["page 2", "page 1"]


def test_search_answer_waits_its_turn_and_includes_what_was_said_before() -> None:
    """A search made while the user's own message is still being stored is answered after it, and finds it."""
    store = WaitingSearchStore()
    core, _ = make_core(store=store)
    alice_c, alice = user(core, "alice", LOBBY)

    ok(alice.submit(rq.Say(LOBBY, "pending words")))
    ok(alice.submit(rq.Search("pending")))
    assert alice_c.take() == []

    store.commit()

    assert alice_c.take() == [
        Said(LOBBY, "alice", "pending words", START),
        SearchResults("pending", (said(LOBBY, "alice", "pending words"),)),
    ]


def test_failed_search_answers_search_unavailable_and_is_logged() -> None:
    """A search the store cannot do is answered with ErrorReply(SearchUnavailable), logged, and the session goes on."""
    core, _ = make_core(store=FailingSearchStore())
    alice_c, alice = user(core, "alice", LOBBY)

    with capturedLogs() as events:
        ok(alice.submit(rq.Search("anything")))

    assert alice_c.take() == [ErrorReply(SearchUnavailable())]
    assert len([event for event in events if "log_failure" in event]) == 1
    ok(alice.submit(rq.Say(LOBBY, "still here")))
    assert alice_c.take() == [Said(LOBBY, "alice", "still here", START)]


def test_search_needs_a_nickname() -> None:
    """A session that has not logged in cannot search."""
    core, _ = make_core()
    client = RecordingClient()
    session: Session = core.connect(client, client.peer)

    assert error_of(session.submit(rq.Search("anything"))) == NotLoggedIn()


# --- the line door ----------------------------------------------------------------------------


def test_line_search_shows_a_header_then_each_message_newest_first() -> None:
    """/search shows a count line, then each match as [date time] room: ..., in each kind's form, newest first."""
    factory, _, clock = make_line_factory()
    alice = line_user(factory, "alice", 1)
    bob = line_user(factory, "bob", 2)
    alice.send("hello Twisted\n")
    clock.advance(60)
    bob.send("/me loves twisted\n")
    clock.advance(3600)
    alice.send("/topic Twisting the night away\n")
    bob.send("unrelated\n")
    alice.lines()
    bob.lines()

    bob.send("/search twist\n")

    assert bob.lines() == [
        '* 3 messages found for "twist":',
        "[2026-01-02 04:05:05] lobby: (topic) alice: Twisting the night away",
        "[2026-01-02 03:05:05] lobby: * bob loves twisted",
        "[2026-01-02 03:04:05] lobby: alice: hello Twisted",
    ]
    assert alice.lines() == []


def test_line_search_with_one_or_no_match() -> None:
    """/search says "1 message" for a single match and "no messages found" when nothing matches."""
    factory, _, clock = make_line_factory()
    alice = line_user(factory, "alice")
    alice.send("only once\n")
    alice.lines()

    alice.send("/search ONCE\n/search zebra crossing\n")
    clock.advance(2)  # the second search waits for flood-control tokens

    assert alice.lines() == [
        '* 1 message found for "ONCE":',
        "[2026-01-02 03:04:05] lobby: alice: only once",
        '* no messages found for "zebra crossing"',
    ]


def test_line_search_looks_only_in_the_current_room() -> None:
    """The line door keeps a user in one room, so /search finds only that room's messages."""
    factory, _, clock = make_line_factory()
    alice = line_user(factory, "alice")
    alice.send("lobby banana\n/join dev\ndev banana\n")
    alice.lines()

    alice.send("/search banana\n")
    clock.advance(2)  # the search waits for flood-control tokens

    assert alice.lines() == ['* 1 message found for "banana":', "[2026-01-02 03:04:05] dev: alice: dev banana"]


@pytest.mark.parametrize("line", ["/search", "/search   ", "/search \x07"])
def test_line_search_without_text_is_a_usage_error(line: str) -> None:
    """/search with no text, or only invisible text, answers with its usage."""
    factory, _, _ = make_line_factory()
    alice = line_user(factory, "alice")

    alice.send(line + "\n")

    assert alice.lines() == ["error: usage: /search TEXT"]


def test_line_search_with_fts_syntax_is_plain_words() -> None:
    """Quotes, stars and operators typed into /search are searched as plain words, never an error."""
    factory, _, clock = make_line_factory()
    alice = line_user(factory, "alice")
    alice.send("fox OR hound\n")
    alice.lines()

    alice.send('/search "fox* OR\n/search NOT(\n')
    clock.advance(2)  # the second search waits for flood-control tokens

    assert alice.lines() == [
        '* 1 message found for ""fox* OR":',
        "[2026-01-02 03:04:05] lobby: alice: fox OR hound",
        '* no messages found for "NOT("',
    ]


def test_line_search_failure_is_reported() -> None:
    """A search the store cannot do is reported as "search unavailable; try again later"."""
    core, _ = make_core(store=FailingSearchStore())
    alice = line_user(LineChatFactory(core), "alice")

    alice.send("/search anything\n")

    assert alice.lines() == ["error: search unavailable; try again later"]


def test_line_search_costs_five_tokens_and_is_in_help() -> None:
    """/search costs 5 flood-control tokens, like /history, and /help lists it."""
    factory, _, _ = make_line_factory()
    alice = line_user(factory, "alice")

    alice.send("/help\n")

    assert line_cost("/search anything") == 5.0
    assert any(line.split(None, 3)[1:] == ["/search", "TEXT", "find messages with these words in the rooms you are in"]
               for line in alice.lines())


def test_search_over_the_line_door_reaches_the_store_with_room_keys() -> None:
    """The core asks the store with room keys (case-folded), so a room named with capitals is searched."""
    factory, core, _ = make_line_factory()
    alice = line_user(factory, "alice")
    alice.send("/join DevOps\nship it\n")
    alice.lines()

    alice.send("/search ship\n")

    assert alice.lines() == ['* 1 message found for "ship":', "[2026-01-02 03:04:05] DevOps: alice: ship it"]
    assert success_result_of(core.store.search_messages(["devops"], "ship", 10)) == [
        said("DevOps", "alice", "ship it")
    ]