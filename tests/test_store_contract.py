"""
The L{IChatStore} contract, run against every store: L{MemoryStore} (the reference, and the fake
the core's tests rely on), L{SqliteStore} on a file in C{tmp_path}, and L{PostgresStore} on a new
database of the test PostgreSQL server (the C{postgres_url} fixture of conftest.py: skipped, saying
why, only where no server can be reached).

These tests run on the real global reactor through pytest-twisted, because SqliteStore and
PostgresStore work in thread pools. Every wait is bounded by L{within}, so a lost Deferred fails the test instead of
hanging it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from chat_twisted.interfaces import IChatStore
from chat_twisted.model import Account, Ban, OfflineMessage, RoomRecord, StoredMessage, StoredRoom
from chat_twisted.store.memory import MemoryStore
from chat_twisted.store.postgres import PostgresStore
from chat_twisted.store.sqlite import SqliteStore

T = TypeVar("T")

#: Longest any single wait may take, in seconds.
TIMEOUT = 10.0

#: 2026-01-02 03:04:05 UTC.
START = 1767323045.0

#: Texts that must come back exactly as stored: emoji sequences, right-to-left scripts, quotes,
#: SQL and format metacharacters. (NUL is not in any: the core never stores it.)
UNICODE_TEXTS = [
    "family 👩\u200d👩\u200d👧 and flag 🇳🇴 🎉",
    "שלום עולם",
    "مرحبا بالعالم",
    "quotes ' \" ` « » „“ ’",
    "Robert'); DROP TABLE messages;-- %s {} \\ ?",
    "CJK 中文字符, combining e\u0301, astral 𝄞",
]


async def within(d: Deferred[T]) -> T:
    """Wait for C{d}, failing with a timeout instead of hanging if it has not fired in L{TIMEOUT}."""
    from twisted.internet import reactor

    return await d.addTimeout(TIMEOUT, reactor)  # type: ignore[arg-type]


def firing_order(deferreds: Iterable[Deferred[Any]]) -> list[int]:
    """Return a list that receives each Deferred's position, in the order they fire."""
    order: list[int] = []
    for position, d in enumerate(deferreds):
        d.addCallback(lambda _, position=position: order.append(position))
    return order


def message(text: str, room: str = "lobby", kind: str = "say", sender: str = "alice", n: int = 0) -> StoredMessage:
    """Return a history record of C{room}, sent C{n} seconds after L{START}."""
    return StoredMessage(room=room, kind=kind, sender=sender, text=text, when=START + n)


def offline(text: str, n: int = 0) -> OfflineMessage:
    """Return a private message from alice to bob, sent C{n} seconds after L{START}."""
    return OfflineMessage(sender="alice", recipient="bob", text=text, when=START + n)


def ban(mask: str, n: float = 0, expires: float | None = None, reason: str = "", by: str = "alice") -> Ban:
    """Return a ban of C{mask} set by C{by} C{n} seconds after L{START}."""
    return Ban(mask=mask, by=by, when=START + n, expires=expires, reason=reason)


#: A claimed room with every field set: operators and bans out of order (kept as given), one ban
#: with an expiry and a fraction of a second in its times, modes.
DEV = RoomRecord(
    key="dev", name="Dev", owner="alice", operators=("carol", "bob"),
    bans=(ban("troll!*@*", 0.125, reason="flooding"), ban("*!*@10.0.0.1", 60, expires=START + 86400.5, by="bob")),
    modes="imt",
)


def make_store(kind: str, tmp_path: Path, postgres_url: str | None = None) -> IChatStore:
    """Return a new, not yet started store of C{kind} (a PostgreSQL one on the database C{postgres_url})."""
    if kind == "memory":
        return MemoryStore()
    if kind == "postgres":
        assert postgres_url is not None
        return PostgresStore(postgres_url)
    return SqliteStore(str(tmp_path / "chat.sqlite"))


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Each kind of store in turn."""
    return str(request.param)


@pytest.fixture
def database_url(store_kind: str, request: pytest.FixtureRequest) -> str | None:
    """A new PostgreSQL database for the postgres kind (the test is skipped if none can be had); else None."""
    return str(request.getfixturevalue("postgres_url")) if store_kind == "postgres" else None


@pytest_twisted.async_yield_fixture
async def store(store_kind: str, database_url: str | None, tmp_path: Path) -> AsyncIterator[IChatStore]:
    """A started store of each kind, stopped after the test."""
    store = make_store(store_kind, tmp_path, database_url)
    await within(store.start())
    yield store
    await within(store.stop())


class TestStoreContract:
    """What every IChatStore does, whatever keeps the data."""

    @pytest.mark.parametrize("limit, count", [(0, 0), (1, 1), (3, 3), (5, 5), (50, 5)])
    @pytest_twisted.ensureDeferred
    async def test_recent_messages_are_the_newest_of_that_room_oldest_first(
        self, store: IChatStore, limit: int, count: int
    ) -> None:
        """recent_messages gives at most C{limit} of the room's newest messages, oldest first, none from other rooms."""
        lobby = [message(f"lobby {n}", n=n) for n in range(5)]
        for n, record in enumerate(lobby):
            await within(store.append_message("lobby", record))
            await within(store.append_message("other", message(f"other {n}", room="other", n=n)))

        assert await within(store.recent_messages("lobby", limit)) == lobby[len(lobby) - count:]

    @pytest_twisted.ensureDeferred
    async def test_room_without_messages_has_no_history(self, store: IChatStore) -> None:
        """A room nothing was appended to has an empty history."""
        await within(store.append_message("lobby", message("hello")))

        assert await within(store.recent_messages("elsewhere", 10)) == []

    @pytest.mark.parametrize("count", [2, 200])
    @pytest_twisted.ensureDeferred
    async def test_appends_made_at_once_all_fire_in_order(self, store: IChatStore, count: int) -> None:
        """Appends made without waiting all fire, in the order they were made, and are all readable afterwards."""
        records = [message(f"line {n}", n=n) for n in range(count)]
        appends = [store.append_message("lobby", record) for record in records]
        order = firing_order(appends)

        await within(gatherResults(appends))

        assert order == list(range(count))
        assert await within(store.recent_messages("lobby", count + 10)) == records

    @pytest_twisted.ensureDeferred
    async def test_recent_messages_includes_appends_not_yet_fired(self, store: IChatStore) -> None:
        """recent_messages asked right after appends, without waiting for them, includes them."""
        await within(store.append_message("lobby", message("already stored", n=0)))
        records = [message(f"just sent {n}", n=n) for n in range(1, 4)]
        appends = [store.append_message("lobby", record) for record in records]

        recent = await within(store.recent_messages("lobby", 10))

        assert recent[-3:] == records
        await within(gatherResults(appends))

    @pytest_twisted.ensureDeferred
    async def test_room_topics_are_the_newest_topic_message_per_room(self, store: IChatStore) -> None:
        """room_topics maps each room that had a topic message to the text of its newest one."""
        assert await within(store.room_topics()) == {}
        for n, (key, kind, text) in enumerate([
            ("lobby", "topic", "first lobby topic"),
            ("lobby", "say", "not a topic"),
            ("lobby", "topic", "second lobby topic"),
            ("lobby", "action", "waves"),
            ("dev", "topic", "dev topic"),
            ("quiet", "say", "no topic here"),
        ]):
            await within(store.append_message(key, message(text, room=key, kind=kind, n=n)))

        assert await within(store.room_topics()) == {"lobby": "second lobby topic", "dev": "dev topic"}

    @pytest_twisted.ensureDeferred
    async def test_room_topics_includes_topics_not_yet_fired(self, store: IChatStore) -> None:
        """room_topics asked right after topic appends, without waiting for them, reflects the newest one."""
        appends = [
            store.append_message("lobby", message(f"topic {n}", kind="topic", n=n)) for n in range(3)
        ]

        topics = await within(store.room_topics())

        await within(gatherResults(appends))
        assert topics == {"lobby": "topic 2"}

    @pytest_twisted.ensureDeferred
    async def test_missing_account_is_none(self, store: IChatStore) -> None:
        """get_account fires with None for a nickname nobody registered."""
        assert await within(store.get_account("nobody")) is None

    @pytest_twisted.ensureDeferred
    async def test_account_can_be_created_only_once(self, store: IChatStore) -> None:
        """create_account fires True the first time and False for a taken key, which keeps the original account."""
        original = Account(nick="Alice", password_hash="$argon2id$first", created=START)

        assert await within(store.create_account("alice", original)) is True
        assert await within(store.create_account("alice", Account("ALICE", "$argon2id$second", START + 1))) is False
        assert await within(store.get_account("alice")) == original

    @pytest_twisted.ensureDeferred
    async def test_set_password_hash_replaces_only_the_hash(self, store: IChatStore) -> None:
        """set_password_hash changes the account's hash and keeps its nickname and creation time."""
        await within(store.create_account("alice", Account("Alice", "$argon2id$old", START)))

        assert await within(store.set_password_hash("alice", "$argon2id$new")) is None
        assert await within(store.get_account("alice")) == Account("Alice", "$argon2id$new", START)

    @pytest.mark.parametrize("limit", [0, 1, 3])
    @pytest_twisted.ensureDeferred
    async def test_offline_messages_queue_up_to_limit(self, store: IChatStore, limit: int) -> None:
        """queue_offline keeps messages until C{limit} are waiting, then refuses without storing."""
        kept = [await within(store.queue_offline("bob", offline(f"pm {n}", n), limit)) for n in range(limit + 2)]

        assert kept == [True] * limit + [False, False]
        assert await within(store.take_offline("bob")) == [offline(f"pm {n}", n) for n in range(limit)]

    @pytest_twisted.ensureDeferred
    async def test_take_offline_gives_oldest_first_and_forgets(self, store: IChatStore) -> None:
        """take_offline fires with the recipient's messages oldest first, leaves others' alone, and empties the queue."""
        for n in range(3):
            await within(store.queue_offline("bob", offline(f"pm {n}", n), 10))
        await within(store.queue_offline("carol", OfflineMessage("alice", "carol", "for carol", START), 10))

        assert await within(store.take_offline("bob")) == [offline(f"pm {n}", n) for n in range(3)]
        assert await within(store.take_offline("bob")) == []
        assert await within(store.queue_offline("bob", offline("again", 9), 1)) is True
        assert await within(store.take_offline("carol")) == [OfflineMessage("alice", "carol", "for carol", START)]

    @pytest_twisted.ensureDeferred
    async def test_take_offline_for_unknown_recipient_is_empty(self, store: IChatStore) -> None:
        """take_offline for someone with nothing waiting fires with an empty list."""
        assert await within(store.take_offline("nobody")) == []

    @pytest.mark.parametrize("text", UNICODE_TEXTS)
    @pytest_twisted.ensureDeferred
    async def test_unicode_text_round_trips(self, store: IChatStore, text: str) -> None:
        """Messages, topics, offline messages and password hashes come back character for character."""
        said = message(text)
        topic = message(text, kind="topic", n=1)
        await within(gatherResults([store.append_message("lobby", said), store.append_message("lobby", topic)]))
        await within(store.queue_offline("bob", offline(text), 10))
        await within(store.create_account("bob", Account("Bob", text, START)))

        assert await within(store.recent_messages("lobby", 10)) == [said, topic]
        assert await within(store.room_topics()) == {"lobby": text}
        assert await within(store.take_offline("bob")) == [offline(text)]
        assert await within(store.get_account("bob")) == Account("Bob", text, START)

    # --- search ------------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "text, found",
        [
            ("fox", ["the fox and the hound", "a quick brown fox"]),
            ("fox brown", ["a quick brown fox"]),
            ("brown fox", ["a quick brown fox"]),
            ("fox brown hound", []),
            ("cat", []),
        ],
    )
    @pytest_twisted.ensureDeferred
    async def test_search_needs_every_word_in_any_order(self, store: IChatStore, text: str, found: list[str]) -> None:
        """search_messages finds the messages containing every word of the text, in any order, newest first."""
        for n, body in enumerate(["a quick brown fox", "brown bread", "the fox and the hound"]):
            await within(store.append_message("lobby", message(body, n=n)))

        assert [m.text for m in await within(store.search_messages(["lobby"], text, 10))] == found

    @pytest.mark.parametrize(
        "text, found",
        [
            ("twist", ["Twisted Matrix", "twisting words"]),
            ("twisted", ["Twisted Matrix"]),
            ("TWIST", ["Twisted Matrix", "twisting words"]),
            ("tWiStEd mAt", ["Twisted Matrix"]),
            ("cafe", ["CAFÉ crème", "café au lait"]),
            ("Café", ["CAFÉ crème", "café au lait"]),
            ("creme", ["CAFÉ crème"]),
            ("wist", []),
            ("twistedmatrix", []),
        ],
    )
    @pytest_twisted.ensureDeferred
    async def test_search_words_match_as_prefixes_without_case_or_accents(
        self, store: IChatStore, text: str, found: list[str]
    ) -> None:
        """Each search word matches the start of a message's word, whatever its case or accents, never its middle."""
        for n, body in enumerate(["twisting words", "untwisted", "café au lait", "Twisted Matrix", "CAFÉ crème"]):
            await within(store.append_message("lobby", message(body, n=n)))

        assert sorted(m.text for m in await within(store.search_messages(["lobby"], text, 10))) == sorted(found)

    @pytest_twisted.ensureDeferred
    async def test_search_looks_only_in_the_rooms_given(self, store: IChatStore) -> None:
        """search_messages finds matches in every room of room_keys, newest first across them, and in no other room."""
        for n, key in enumerate(["lobby", "dev", "secret", "lobby", "dev"]):
            await within(store.append_message(key, message(f"deploy {n} in {key}", room=key.title(), n=n)))

        found = await within(store.search_messages(["lobby", "dev"], "deploy", 10))

        assert [(m.room, m.text) for m in found] == [
            ("Dev", "deploy 4 in dev"), ("Lobby", "deploy 3 in lobby"), ("Dev", "deploy 1 in dev"),
            ("Lobby", "deploy 0 in lobby"),
        ]
        assert await within(store.search_messages(["secret"], "lobby", 10)) == []
        assert await within(store.search_messages([], "deploy", 10)) == []

    @pytest.mark.parametrize("limit, count", [(0, 0), (1, 1), (3, 3), (5, 5), (50, 5)])
    @pytest_twisted.ensureDeferred
    async def test_search_gives_at_most_limit_newest_first_with_ids(
        self, store: IChatStore, limit: int, count: int
    ) -> None:
        """search_messages gives the newest C{limit} matches, newest first, each with the id its append fired with."""
        ids = []
        for n in range(5):
            ids.append(await within(store.append_message("lobby", message(f"match {n}", n=2 * n))))
            await within(store.append_message("lobby", message(f"other {n}", n=2 * n + 1)))

        found = await within(store.search_messages(["lobby"], "match", limit))

        assert [m.text for m in found] == [f"match {n}" for n in reversed(range(5))][:count]
        assert [m.id for m in found] == list(reversed(ids))[:count]

    @pytest_twisted.ensureDeferred
    async def test_search_pages_to_older_results_with_before(self, store: IChatStore) -> None:
        """Passing the id of the oldest result as C{before} gives the next older page, until none are left."""
        for n in range(7):
            await within(store.append_message("lobby", message(f"page {n}", n=n)))

        pages: list[list[str]] = []
        before = None
        while True:
            page = await within(store.search_messages(["lobby"], "page", 3, before))
            if not page:
                break
            pages.append([m.text for m in page])
            before = page[-1].id

        assert pages == [["page 6", "page 5", "page 4"], ["page 3", "page 2", "page 1"], ["page 0"]]

    @pytest_twisted.ensureDeferred
    async def test_search_finds_every_kind_of_room_message(self, store: IChatStore) -> None:
        """Messages, actions and topics are all searched, and come back with their kind and sender."""
        records = [message("rocket launch", kind="say", sender="alice"),
                   message("prepares the rocket", kind="action", sender="bob", n=1),
                   message("Rocket science", kind="topic", sender="carol", n=2)]
        for record in records:
            await within(store.append_message("lobby", record))

        assert await within(store.search_messages(["lobby"], "rocket", 10)) == list(reversed(records))

    @pytest.mark.parametrize(
        "text",
        ["", "   ", "!!!", '"', "*", ":", "-", "(", ")", '"*:-(', "^", "+", "{}", "🎉", "\u0301", "..."],
    )
    @pytest_twisted.ensureDeferred
    async def test_search_without_a_word_finds_nothing(self, store: IChatStore, text: str) -> None:
        """A text with no word in it (spaces, punctuation, FTS5 operators, emoji) finds nothing, without error."""
        for n, body in enumerate(['"quoted" * : - ( ) ^ + {} 🎉 ...', "plain words"]):
            await within(store.append_message("lobby", message(body, n=n)))

        assert await within(store.search_messages(["lobby"], text, 10)) == []

    @pytest.mark.parametrize(
        "text, found",
        [
            ('"fox', ["fox OR hound"]),
            ("fox*", ["fox OR hound"]),
            ("hound OR", ["fox OR hound"]),
            ("OR", ["or else", "fox OR hound"]),
            ("NOT fox", []),
            ("body:fox", []),
            ("-fox", ["fox OR hound"]),
            ("(fox)", ["fox OR hound"]),
            ("NEAR(fox hound, 1)", []),
            ("fox NEAR hound", []),
            ("fox AND", []),
            ("^fox", ["fox OR hound"]),
            ("{body}: fox", []),
            ("fo'x", []),
        ],
    )
    @pytest_twisted.ensureDeferred
    async def test_search_treats_fts_syntax_as_plain_words(
        self, store: IChatStore, text: str, found: list[str]
    ) -> None:
        """FTS5 operators and punctuation in a search text are never query syntax: only its words are searched for."""
        for n, body in enumerate(["fox OR hound", "or else"]):
            await within(store.append_message("lobby", message(body, n=n)))

        assert [m.text for m in await within(store.search_messages(["lobby"], text, 10))] == found

    @pytest_twisted.ensureDeferred
    async def test_search_includes_appends_not_yet_fired(self, store: IChatStore) -> None:
        """search_messages asked right after appends, without waiting for them, finds them."""
        await within(store.append_message("lobby", message("needle one", n=0)))
        appends = [store.append_message("lobby", message(f"needle {n}", n=n)) for n in range(2, 4)]

        found = await within(store.search_messages(["lobby"], "needle", 10))

        assert [m.text for m in found] == ["needle 3", "needle 2", "needle one"]
        await within(gatherResults(appends))

    @pytest.mark.parametrize("text", UNICODE_TEXTS)
    @pytest_twisted.ensureDeferred
    async def test_search_finds_unicode_text_by_its_first_word(self, store: IChatStore, text: str) -> None:
        """A message in any script is found by its own first word and comes back character for character."""
        await within(store.append_message("lobby", message(text)))
        first_word = text.split()[0]

        assert await within(store.search_messages(["lobby"], first_word, 10)) == [message(text)]

    # --- looking after the data: retention and the admin tool --------------------------------

    @pytest_twisted.ensureDeferred
    async def test_prune_by_age_deletes_only_messages_sent_before_the_time(self, store: IChatStore) -> None:
        """prune_messages with C{older_than} deletes exactly the messages sent before it, in every room."""
        for n in range(6):
            await within(store.append_message("lobby", message(f"lobby {n}", n=n)))
            await within(store.append_message("dev", message(f"dev {n}", room="dev", n=n)))

        assert await within(store.prune_messages(START + 4, None, 100)) == 8
        assert await within(store.prune_messages(START + 4, None, 100)) == 0

        assert [m.text for m in await within(store.recent_messages("lobby", 10))] == ["lobby 4", "lobby 5"]
        assert [m.text for m in await within(store.recent_messages("dev", 10))] == ["dev 4", "dev 5"]

    @pytest_twisted.ensureDeferred
    async def test_prune_deletes_at_most_a_batch_oldest_first(self, store: IChatStore) -> None:
        """Each prune_messages call deletes at most C{batch}, the oldest due first, until fewer than a batch are left."""
        for n in range(10):
            key = "lobby" if n % 2 else "dev"
            await within(store.append_message(key, message(f"{key} {n}", room=key, n=n)))

        first = await within(store.prune_messages(START + 100, None, 3))
        remaining = [m.text for key in ("dev", "lobby") for m in await within(store.recent_messages(key, 10))]
        counts = [first] + [await within(store.prune_messages(START + 100, None, 3)) for _ in range(4)]

        assert counts == [3, 3, 3, 1, 0]
        assert sorted(remaining) == sorted(f"{'lobby' if n % 2 else 'dev'} {n}" for n in range(3, 10))

    @pytest_twisted.ensureDeferred
    async def test_prune_keeps_the_newest_messages_of_each_room(self, store: IChatStore) -> None:
        """prune_messages with C{keep_per_room} deletes each room's messages beyond its newest few, and no others."""
        for n in range(6):
            await within(store.append_message("lobby", message(f"lobby {n}", n=n)))
        for n in range(2):
            await within(store.append_message("dev", message(f"dev {n}", room="dev", n=n)))

        assert await within(store.prune_messages(None, 3, 2)) == 2
        assert await within(store.prune_messages(None, 3, 2)) == 1
        assert await within(store.prune_messages(None, 3, 2)) == 0

        assert [m.text for m in await within(store.recent_messages("lobby", 10))] == ["lobby 3", "lobby 4", "lobby 5"]
        assert [m.text for m in await within(store.recent_messages("dev", 10))] == ["dev 0", "dev 1"]

    @pytest_twisted.ensureDeferred
    async def test_prune_with_both_rules_deletes_what_either_makes_due(self, store: IChatStore) -> None:
        """With both rules a message goes if it is too old or beyond its room's newest C{keep_per_room}."""
        for n in range(5):
            await within(store.append_message("lobby", message(f"lobby {n}", n=n)))
            await within(store.append_message("dev", message(f"dev {n}", room="dev", n=10 + n)))

        assert await within(store.prune_messages(START + 2, 4, 100)) == 3

        assert [m.text for m in await within(store.recent_messages("lobby", 10))] == ["lobby 2", "lobby 3", "lobby 4"]
        assert [m.text for m in await within(store.recent_messages("dev", 10))] == [f"dev {n}" for n in range(1, 5)]

    @pytest_twisted.ensureDeferred
    async def test_prune_without_a_rule_deletes_nothing(self, store: IChatStore) -> None:
        """prune_messages with neither rule, or a batch of 0, deletes nothing."""
        await within(store.append_message("lobby", message("stays")))

        assert await within(store.prune_messages(None, None, 100)) == 0
        assert await within(store.prune_messages(START + 100, 0, 0)) == 0
        assert await within(store.recent_messages("lobby", 10)) == [message("stays")]

    @pytest_twisted.ensureDeferred
    async def test_pruned_messages_leave_the_search_but_topics_stay(self, store: IChatStore) -> None:
        """Pruned messages are no longer found by search; the rooms' topics outlive the messages that set them."""
        await within(store.append_message("lobby", message("old needle", n=0)))
        await within(store.append_message("lobby", message("needle topic", kind="topic", n=1)))
        await within(store.append_message("lobby", message("new needle", n=5)))

        assert await within(store.prune_messages(START + 2, None, 100)) == 2

        assert [m.text for m in await within(store.search_messages(["lobby"], "needle", 10))] == ["new needle"]
        assert await within(store.room_topics()) == {"lobby": "needle topic"}

    @pytest_twisted.ensureDeferred
    async def test_expire_offline_deletes_only_messages_sent_before_the_time(self, store: IChatStore) -> None:
        """expire_offline deletes every recipient's offline messages sent before the time and counts them."""
        for n in range(4):
            await within(store.queue_offline("bob", offline(f"pm {n}", n), 10))
        await within(store.queue_offline("carol", OfflineMessage("alice", "carol", "old", START), 10))

        assert await within(store.expire_offline(START + 2)) == 3
        assert await within(store.expire_offline(START + 2)) == 0

        assert await within(store.take_offline("bob")) == [offline("pm 2", 2), offline("pm 3", 3)]
        assert await within(store.take_offline("carol")) == []

    @pytest_twisted.ensureDeferred
    async def test_list_accounts_gives_every_account_in_key_order(self, store: IChatStore) -> None:
        """list_accounts fires with every account, ordered by key (code points), and with [] when there are none."""
        assert await within(store.list_accounts()) == []
        accounts = {"zoe": Account("Zoe", "$h1", START), "alice": Account("Alice", "$h2", START + 1),
                    "émile": Account("Émile", "$h3", START + 2), "bob": Account("BOB", "$h4", START + 3)}
        for key, account in accounts.items():
            await within(store.create_account(key, account))

        assert await within(store.list_accounts()) == [accounts[key] for key in sorted(accounts)]

    @pytest_twisted.ensureDeferred
    async def test_delete_account_also_deletes_its_offline_messages(self, store: IChatStore) -> None:
        """delete_account removes the account and the messages waiting for it, leaves others alone, and says if it existed."""
        await within(store.create_account("bob", Account("Bob", "$h", START)))
        await within(store.create_account("carol", Account("Carol", "$h", START)))
        await within(store.queue_offline("bob", offline("for bob"), 10))
        await within(store.queue_offline("carol", OfflineMessage("alice", "carol", "for carol", START), 10))

        assert await within(store.delete_account("bob")) is True
        assert await within(store.delete_account("bob")) is False

        assert await within(store.get_account("bob")) is None
        assert await within(store.take_offline("bob")) == []
        assert await within(store.list_accounts()) == [Account("Carol", "$h", START)]
        assert await within(store.take_offline("carol")) == [OfflineMessage("alice", "carol", "for carol", START)]
        assert await within(store.create_account("bob", Account("Bob", "$new", START + 1))) is True

    @pytest_twisted.ensureDeferred
    async def test_room_summaries_count_each_rooms_messages(self, store: IChatStore) -> None:
        """room_summaries gives each room with messages, in key order: its newest name, its count and newest time."""
        assert await within(store.room_summaries()) == []
        for n, (key, room) in enumerate([("lobby", "lobby"), ("dev", "Dev"), ("lobby", "Lobby"), ("dev", "DEV")]):
            await within(store.append_message(key, message(f"line {n}", room=room, n=n)))
        await within(store.append_message("lobby", message("a topic", room="Lobby", kind="topic", n=9)))

        assert await within(store.room_summaries()) == [
            StoredRoom("DEV", 2, START + 3), StoredRoom("Lobby", 3, START + 9),
        ]
        await within(store.prune_messages(None, 0, 100))
        assert await within(store.room_summaries()) == []

    @pytest_twisted.ensureDeferred
    async def test_room_summaries_count_appends_not_yet_fired(self, store: IChatStore) -> None:
        """room_summaries asked right after appends, without waiting for them, counts them."""
        appends = [store.append_message("lobby", message(f"line {n}", n=n)) for n in range(3)]

        summaries = await within(store.room_summaries())

        await within(gatherResults(appends))
        assert summaries == [StoredRoom("lobby", 3, START + 2)]


    # --- moderation: claimed rooms and server bans ----------------------------------------------

    @pytest_twisted.ensureDeferred
    async def test_a_new_store_has_no_claimed_rooms_and_no_server_bans(self, store: IChatStore) -> None:
        """claimed_rooms and server_bans fire with empty lists before anything was saved."""
        assert await within(store.claimed_rooms()) == []
        assert await within(store.server_bans()) == []

    @pytest_twisted.ensureDeferred
    async def test_room_record_round_trips_exactly(self, store: IChatStore) -> None:
        """A saved room record comes back equal: operators and bans in the order given, expiry or None, modes."""
        bare = RoomRecord(key="quiet", name="Quiet", owner="bob")

        assert await within(store.save_room(DEV)) is None
        assert await within(store.save_room(bare)) is None

        rooms = await within(store.claimed_rooms())
        assert rooms == [DEV, bare]
        assert rooms[0].bans[0].when == START + 0.125 and rooms[0].bans[1].expires == START + 86400.5
        assert rooms[0].bans[0].expires is None
        assert (rooms[1].operators, rooms[1].bans, rooms[1].modes) == ((), (), "")

    @pytest_twisted.ensureDeferred
    async def test_save_room_replaces_the_record_under_its_key(self, store: IChatStore) -> None:
        """Saving a record under a kept key replaces all of it (bans and operators too), and no other room."""
        other = RoomRecord(key="lobby", name="lobby", owner="zoe", bans=(ban("spam!*@*"),))
        await within(store.save_room(DEV))
        await within(store.save_room(other))
        changed = RoomRecord(key="dev", name="DEV", owner="bob", operators=("dave",), bans=(ban("new!*@*", 9),), modes="t")

        await within(store.save_room(changed))

        assert await within(store.claimed_rooms()) == [changed, other]
        await within(store.save_room(RoomRecord(key="dev", name="dev", owner="bob")))
        assert await within(store.claimed_rooms()) == [RoomRecord(key="dev", name="dev", owner="bob"), other]

    @pytest_twisted.ensureDeferred
    async def test_claimed_rooms_are_in_key_order(self, store: IChatStore) -> None:
        """claimed_rooms gives the records ordered by key, by code point (punctuation and accents included)."""
        keys = ["zed", "alpha", "émile", "_under", "[x]", "b"]
        for key in keys:
            await within(store.save_room(RoomRecord(key=key, name=key.upper(), owner="alice")))

        assert [room.key for room in await within(store.claimed_rooms())] == ["[x]", "_under", "alpha", "b", "zed", "émile"]

    @pytest_twisted.ensureDeferred
    async def test_delete_room_says_whether_there_was_one(self, store: IChatStore) -> None:
        """delete_room fires True and forgets the record, then False; other records stay; an unknown key is False."""
        lobby = RoomRecord(key="lobby", name="Lobby", owner="bob")
        await within(store.save_room(DEV))
        await within(store.save_room(lobby))

        assert await within(store.delete_room("dev")) is True
        assert await within(store.delete_room("dev")) is False
        assert await within(store.delete_room("nowhere")) is False

        assert await within(store.claimed_rooms()) == [lobby]
        await within(store.save_room(DEV))  # the key is free again
        assert await within(store.claimed_rooms()) == [DEV, lobby]

    @pytest_twisted.ensureDeferred
    async def test_server_bans_are_in_mask_order(self, store: IChatStore) -> None:
        """server_bans gives every ban, with or without an expiry, expired or not, ordered by mask (code points)."""
        bans = [ban("zed!*@*", 1), ban("*!*@10.0.0.1", 2, expires=START + 3600.25, reason="spam"),
                ban("Émile!*@*", 3), ban("alice!*@*", 4, expires=START - 100, reason="expired already")]
        for each in bans:
            assert await within(store.add_server_ban(each)) is None

        assert await within(store.server_bans()) == [bans[1], bans[3], bans[0], bans[2]]

    @pytest_twisted.ensureDeferred
    async def test_add_server_ban_replaces_the_ban_of_the_same_mask(self, store: IChatStore) -> None:
        """A second ban of a mask replaces the first entirely (who, when, expiry, reason); other masks stay."""
        await within(store.add_server_ban(ban("troll!*@*", 0, expires=START + 60, reason="first")))
        await within(store.add_server_ban(ban("other!*@*", 1)))
        again = ban("troll!*@*", 30, reason="for good", by="bob")

        await within(store.add_server_ban(again))

        assert await within(store.server_bans()) == [ban("other!*@*", 1), again]

    @pytest_twisted.ensureDeferred
    async def test_remove_server_ban_says_whether_there_was_one(self, store: IChatStore) -> None:
        """remove_server_ban fires True and forgets the ban, then False; other bans stay; an unknown mask is False."""
        await within(store.add_server_ban(ban("troll!*@*")))
        await within(store.add_server_ban(ban("other!*@*", 1)))

        assert await within(store.remove_server_ban("troll!*@*")) is True
        assert await within(store.remove_server_ban("troll!*@*")) is False
        assert await within(store.remove_server_ban("TROLL!*@*")) is False

        assert await within(store.server_bans()) == [ban("other!*@*", 1)]

    @pytest_twisted.ensureDeferred
    async def test_room_bans_and_server_bans_are_kept_apart(self, store: IChatStore) -> None:
        """A room's bans are not server bans and the reverse; deleting a room leaves the server bans alone."""
        await within(store.save_room(DEV))
        await within(store.add_server_ban(ban("global!*@*")))

        assert await within(store.server_bans()) == [ban("global!*@*")]
        assert await within(store.delete_room("dev")) is True
        assert await within(store.server_bans()) == [ban("global!*@*")]
        assert await within(store.remove_server_ban("troll!*@*")) is False

    @pytest.mark.parametrize("text", UNICODE_TEXTS)
    @pytest_twisted.ensureDeferred
    async def test_moderation_text_round_trips(self, store: IChatStore, text: str) -> None:
        """Ban masks and reasons and room names, in any script or full of quotes, come back character for character."""
        room_ban = ban(text, reason=text)
        record = RoomRecord(key="dev", name=text, owner="alice", operators=(text,), bans=(room_ban,))
        await within(store.save_room(record))
        await within(store.add_server_ban(room_ban))

        assert await within(store.claimed_rooms()) == [record]
        assert await within(store.server_bans()) == [room_ban]


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
@pytest_twisted.ensureDeferred
async def test_stop_keeps_everything_appended(store_kind: str, database_url: str | None, tmp_path: Path) -> None:
    """After stop(), a new store on the same database reads every message appended before it, even unawaited ones."""
    first = make_store(store_kind, tmp_path, database_url)
    await within(first.start())
    await within(first.create_account("alice", Account("Alice", "$argon2id$hash", START)))
    await within(first.queue_offline("bob", offline("while you were out"), 10))
    records = [message(f"line {n}", n=n) for n in range(50)] + [message("last topic", kind="topic", n=50)]
    appends = [first.append_message("lobby", record) for record in records]
    order = firing_order(appends)

    await within(first.stop())  # asked at once: most appends are still queued

    assert order == list(range(len(records)))
    second = make_store(store_kind, tmp_path, database_url)
    await within(second.start())
    try:
        assert await within(second.recent_messages("lobby", 100)) == records
        assert await within(second.room_topics()) == {"lobby": "last topic"}
        assert await within(second.get_account("alice")) == Account("Alice", "$argon2id$hash", START)
        assert await within(second.take_offline("bob")) == [offline("while you were out")]
    finally:
        await within(second.stop())


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"])
@pytest_twisted.ensureDeferred
async def test_claimed_rooms_and_server_bans_survive_a_restart(
    store_kind: str, database_url: str | None, tmp_path: Path
) -> None:
    """After stop(), a new store on the same database reads every room record and server ban as they were saved."""
    first = make_store(store_kind, tmp_path, database_url)
    await within(first.start())
    lobby = RoomRecord(key="lobby", name="Lobby", owner="bob", modes="t")
    bans = [ban("*!*@10.0.0.1", 1, expires=START + 3600.5, reason="spam"), ban("troll!*@*", 2)]
    await within(first.save_room(DEV))
    await within(first.save_room(lobby))
    await within(first.save_room(RoomRecord(key="gone", name="gone", owner="bob")))
    await within(first.delete_room("gone"))
    for each in bans + [ban("lifted!*@*")]:
        await within(first.add_server_ban(each))
    await within(first.remove_server_ban("lifted!*@*"))
    await within(first.stop())

    second = make_store(store_kind, tmp_path, database_url)
    await within(second.start())
    try:
        assert await within(second.claimed_rooms()) == [DEV, lobby]
        assert await within(second.server_bans()) == bans
    finally:
        await within(second.stop())
