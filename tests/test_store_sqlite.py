"""
SQLite specifics: the C{_txn} functions run synchronously on C{sqlite3.connect(":memory:")}, the
schema migrations, connection set-up, and the group commit of L{SqliteStore} (on the real reactor
through pytest-twisted, every wait bounded). What every store does is in test_store_contract.py.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred, gatherResults

from chat_twisted.model import Account, Ban, OfflineMessage, RoomRecord, StoredMessage
from chat_twisted.store.sqlite import (
    MIGRATIONS,
    SqliteStore,
    add_server_ban_txn,
    claimed_rooms_txn,
    configure_connection,
    create_account_txn,
    get_account_txn,
    insert_messages_txn,
    migrate_txn,
    prune_messages_txn,
    queue_offline_txn,
    recent_messages_txn,
    room_topics_txn,
    save_room_txn,
    search_messages_txn,
    server_bans_txn,
    take_offline_txn,
)

T = TypeVar("T")

#: Longest any single wait on the reactor may take, in seconds.
TIMEOUT = 10.0

#: 2026-01-02 03:04:05 UTC.
START = 1767323045.0


def message(text: str, room: str = "lobby", kind: str = "say", n: int = 0) -> StoredMessage:
    """Return a history record of C{room} from alice, sent C{n} seconds after L{START}."""
    return StoredMessage(room=room, kind=kind, sender="alice", text=text, when=START + n)


def offline(text: str, recipient: str = "bob", n: int = 0) -> OfflineMessage:
    """Return a private message from alice to C{recipient}, sent C{n} seconds after L{START}."""
    return OfflineMessage(sender="alice", recipient=recipient, text=text, when=START + n)


def count_rows(cursor: sqlite3.Cursor, table: str) -> int:
    """Return how many rows C{table} has."""
    return int(cursor.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def schema_version(cursor: sqlite3.Cursor) -> int:
    """Return the highest version recorded in schema_version."""
    return int(cursor.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])


@pytest.fixture
def connection() -> Iterator[sqlite3.Connection]:
    """An empty in-memory database, closed after the test."""
    connection = sqlite3.connect(":memory:")
    yield connection
    connection.close()


@pytest.fixture
def cursor(connection: sqlite3.Connection) -> sqlite3.Cursor:
    """A cursor on the in-memory database, migrated to the latest schema and committed."""
    cursor = connection.cursor()
    migrate_txn(cursor)
    connection.commit()
    return cursor


class RecordingCursor:
    """A cursor that notes every statement executed through it before running it."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self.statements: list[tuple[str, Any]] = []

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        """Note C{sql} and its parameters, then run it."""
        self.statements.append((sql, parameters))
        return self._cursor.execute(sql, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


# --- migrations -----------------------------------------------------------------------------


def test_migrate_from_empty_reaches_the_latest_version(connection: sqlite3.Connection) -> None:
    """migrate_txn on an empty database creates every table and records version len(MIGRATIONS)."""
    cursor = connection.cursor()

    assert migrate_txn(cursor) == len(MIGRATIONS)
    connection.commit()

    assert schema_version(cursor) == len(MIGRATIONS)
    tables = {row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {
        "schema_version", "messages", "accounts", "offline_messages", "room_topics", "claimed_rooms", "server_bans", "fts_pending",
        "messages_fts", "messages_fts_data", "messages_fts_idx", "messages_fts_docsize", "messages_fts_config",
    }


def test_migrate_again_is_a_no_op(cursor: sqlite3.Cursor, connection: sqlite3.Connection) -> None:
    """migrate_txn on an up-to-date database changes nothing: same version, no new version rows, data kept."""
    insert_messages_txn(cursor, [("lobby", message("kept", kind="topic"))])
    connection.commit()
    schema = cursor.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()

    assert migrate_txn(cursor) == len(MIGRATIONS)
    connection.commit()

    assert count_rows(cursor, "schema_version") == len(MIGRATIONS)
    assert cursor.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
    assert recent_messages_txn(cursor, "lobby", 10) == [message("kept", kind="topic")]
    assert room_topics_txn(cursor) == {"lobby": "kept"}


def test_upgrade_from_version_1_back_fills_room_topics(connection: sqlite3.Connection) -> None:
    """A version-1 database with topic messages is upgraded and room_topics holds each room's newest topic."""
    cursor = connection.cursor()
    for statement in MIGRATIONS[0]:
        cursor.execute(statement)
    cursor.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    cursor.execute("INSERT INTO schema_version (version) VALUES (1)")
    cursor.executemany(
        "INSERT INTO messages (room_key, room, kind, sender, body, sent_at) VALUES (?, ?, 'topic', 'alice', ?, ?)",
        [("lobby", "Lobby", "old lobby topic", START), ("dev", "dev", "dev topic", START + 1),
         ("lobby", "Lobby", "new lobby topic", START + 2)],
    )
    cursor.execute(
        "INSERT INTO messages (room_key, room, kind, sender, body, sent_at)"
        " VALUES ('lobby', 'Lobby', 'say', 'bob', 'said after the topic', ?)", (START + 3,)
    )
    cursor.execute(
        "INSERT INTO messages (room_key, room, kind, sender, body, sent_at)"
        " VALUES ('quiet', 'quiet', 'say', 'bob', 'no topic here', ?)", (START + 4,)
    )
    connection.commit()

    assert migrate_txn(cursor) == len(MIGRATIONS)
    connection.commit()

    assert schema_version(cursor) == len(MIGRATIONS)
    assert room_topics_txn(cursor) == {"lobby": "new lobby topic", "dev": "dev topic"}
    assert count_rows(cursor, "messages") == 5


def test_upgrade_from_version_2_indexes_the_old_messages_for_search(connection: sqlite3.Connection) -> None:
    """A version-2 database is upgraded to the search index, and its old messages are found like new ones."""
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:2], start=1):
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    cursor.executemany(
        "INSERT INTO messages (room_key, room, kind, sender, body, sent_at) VALUES (?, ?, ?, 'alice', ?, ?)",
        [("lobby", "Lobby", "say", "an old Twisted question", START), ("dev", "dev", "topic", "twisted dev", START + 1),
         ("lobby", "Lobby", "action", "waves", START + 2)],
    )
    connection.commit()

    assert migrate_txn(cursor) == len(MIGRATIONS)
    connection.commit()
    insert_messages_txn(cursor, [("lobby", message("a new twist", n=3))])

    assert schema_version(cursor) == len(MIGRATIONS)
    found = search_messages_txn(cursor, ["lobby", "dev"], '"twist"*', 10)
    assert [(m.id, m.room, m.kind, m.text) for m in found] == [
        (4, "lobby", "say", "a new twist"),
        (2, "dev", "topic", "twisted dev"),
        (1, "Lobby", "say", "an old Twisted question"),
    ]
    assert count_rows(cursor, "messages") == 4


# --- the _txn functions ---------------------------------------------------------------------


def test_create_account_txn_refuses_a_taken_key(cursor: sqlite3.Cursor) -> None:
    """create_account_txn returns False for a key already registered and leaves that account as it was."""
    original = Account("Alice", "$argon2id$first", START)

    assert create_account_txn(cursor, "alice", original) is True
    assert create_account_txn(cursor, "alice", Account("ALICE", "$argon2id$second", START + 1)) is False
    assert get_account_txn(cursor, "alice") == original
    assert count_rows(cursor, "accounts") == 1


def test_queue_offline_txn_stops_at_the_limit_per_recipient(cursor: sqlite3.Cursor) -> None:
    """queue_offline_txn keeps up to C{limit} messages per recipient, and one recipient's limit does not affect another."""
    kept = [queue_offline_txn(cursor, "bob", offline(f"pm {n}", n=n), 2) for n in range(3)]

    assert kept == [True, True, False]
    assert count_rows(cursor, "offline_messages") == 2
    assert queue_offline_txn(cursor, "carol", offline("for carol", "carol"), 2) is True


def test_take_offline_txn_deletes_what_it_returns(cursor: sqlite3.Cursor) -> None:
    """take_offline_txn returns the recipient's messages oldest first and deletes them, and only them."""
    for n in range(3):
        queue_offline_txn(cursor, "bob", offline(f"pm {n}", n=n), 10)
    queue_offline_txn(cursor, "carol", offline("for carol", "carol"), 10)

    assert take_offline_txn(cursor, "bob") == [offline(f"pm {n}", n=n) for n in range(3)]
    assert take_offline_txn(cursor, "bob") == []
    assert count_rows(cursor, "offline_messages") == 1


def test_insert_messages_txn_upserts_room_topics(cursor: sqlite3.Cursor) -> None:
    """insert_messages_txn stores rows in order and sets each room's topic to its newest topic row, across batches."""
    first = [
        ("lobby", message("lobby 1", kind="topic", n=0)),
        ("lobby", message("lobby 2", kind="topic", n=1)),
        ("dev", message("dev 1", room="dev", kind="topic", n=2)),
        ("lobby", message("just talk", n=3)),
    ]
    insert_messages_txn(cursor, first)
    assert room_topics_txn(cursor) == {"lobby": "lobby 2", "dev": "dev 1"}

    insert_messages_txn(cursor, [("lobby", message("lobby 3", kind="topic", n=4))])

    assert room_topics_txn(cursor) == {"lobby": "lobby 3", "dev": "dev 1"}
    assert [m.text for m in recent_messages_txn(cursor, "lobby", 10)] == ["lobby 1", "lobby 2", "just talk", "lobby 3"]


def test_configure_connection_sets_wal_on_a_file(tmp_path: Path) -> None:
    """configure_connection puts a file database in WAL mode with synchronous NORMAL and a lock timeout."""
    connection = sqlite3.connect(str(tmp_path / "chat.sqlite"))
    try:
        configure_connection(connection)

        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert connection.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
        assert connection.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    finally:
        connection.close()


def test_recent_messages_query_uses_the_room_index(cursor: sqlite3.Cursor) -> None:
    """The query recent_messages_txn runs searches the messages_by_room index rather than scanning the table."""
    recording = RecordingCursor(cursor)
    recent_messages_txn(recording, "lobby", 10)
    [(sql, parameters)] = recording.statements

    plan = " ".join(row[3] for row in cursor.execute("EXPLAIN QUERY PLAN " + sql, parameters))

    assert "USING INDEX messages_by_room" in plan
    assert "TEMP B-TREE" not in plan  # the index also gives the order: no sort step


def test_search_query_is_driven_by_the_full_text_index(cursor: sqlite3.Cursor) -> None:
    """search_messages_txn's query reads the FTS index newest first and looks messages up by id, with no sort."""
    recording = RecordingCursor(cursor)
    search_messages_txn(recording, ["dev", "lobby"], '"twist"*', 10, before=100)
    *_, (sql, parameters) = recording.statements  # after bringing the index up to date

    plan = [row[3] for row in cursor.execute("EXPLAIN QUERY PLAN " + sql, parameters)]

    assert plan[0].startswith("SCAN messages_fts VIRTUAL TABLE")
    assert "SEARCH m USING INTEGER PRIMARY KEY" in plan[1]
    assert not any("TEMP B-TREE" in step for step in plan)


def test_search_index_follows_deleted_and_edited_messages(cursor: sqlite3.Cursor) -> None:
    """The triggers take a deleted message out of the search index and re-index an edited one under its new text."""
    insert_messages_txn(cursor, [("lobby", message("first draft", n=0)), ("lobby", message("second draft", n=1))])

    cursor.execute("DELETE FROM messages WHERE id = 1")
    cursor.execute("UPDATE messages SET body = 'final text' WHERE id = 2")

    assert search_messages_txn(cursor, ["lobby"], '"draft"*', 10) == []
    assert [m.text for m in search_messages_txn(cursor, ["lobby"], '"final"*', 10)] == ["final text"]
    # FTS5's own check that the index matches the messages table: it raises if they differ.
    cursor.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


def test_upgrade_from_version_3_indexes_message_times(connection: sqlite3.Connection) -> None:
    """A version-3 database gets the index of message times that retention prunes by, and keeps its messages."""
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:3], start=1):
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    insert_messages_txn(cursor, [("lobby", message("old", n=0)), ("lobby", message("new", n=9))])
    connection.commit()

    assert migrate_txn(cursor) == len(MIGRATIONS)
    connection.commit()

    indexes = {row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "messages_by_time" in indexes
    assert prune_messages_txn(cursor, START + 1, None, 10) == 1
    assert [m.text for m in recent_messages_txn(cursor, "lobby", 10)] == ["new"]



def test_upgrade_from_version_4_adds_empty_room_and_ban_tables(connection: sqlite3.Connection) -> None:
    """A version-4 database gets empty claimed_rooms and server_bans tables that take records, and keeps its data."""
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:4], start=1):
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    insert_messages_txn(cursor, [("dev", message("kept topic", room="dev", kind="topic"))])
    create_account_txn(cursor, "alice", Account("Alice", "$h", START))
    connection.commit()

    assert migrate_txn(cursor) == len(MIGRATIONS)
    connection.commit()

    assert schema_version(cursor) == len(MIGRATIONS)
    assert claimed_rooms_txn(cursor) == [] and server_bans_txn(cursor) == []
    record = RoomRecord("dev", "dev", "alice", ("bob",), (Ban("x!*@*", "alice", START, START + 60, "why"),), "t")
    save_room_txn(cursor, record)
    add_server_ban_txn(cursor, Ban("*!*@10.0.0.1", "alice", START))
    assert claimed_rooms_txn(cursor) == [record]
    assert server_bans_txn(cursor) == [Ban("*!*@10.0.0.1", "alice", START)]
    assert room_topics_txn(cursor) == {"dev": "kept topic"}
    assert get_account_txn(cursor, "alice") == Account("Alice", "$h", START)


def test_a_room_record_is_one_row_with_its_operators_and_bans_as_json(cursor: sqlite3.Cursor) -> None:
    """save_room_txn writes a record as one row, lists as JSON (readable with the sqlite3 shell), replacing it in place."""
    ban = Ban("é!*@*", "bob", START + 0.5, None, "it's \"quoted\"")
    save_room_txn(cursor, RoomRecord("dev", "Dev", "alice", ("carol", "bob"), (ban,), "imt"))
    save_room_txn(cursor, RoomRecord("dev", "DEV", "alice", ("bob",), (ban,), "t"))

    assert cursor.execute("SELECT * FROM claimed_rooms").fetchall() == [(
        "dev", "DEV", "alice", '["bob"]',
        '[{"mask": "é!*@*", "by": "bob", "when": 1767323045.5, "expires": null, "reason": "it\'s \\"quoted\\""}]',
        "t",
    )]


def test_prune_queries_walk_indexes_only(cursor: sqlite3.Cursor) -> None:
    """Every query prune_messages_txn runs searches an index (time, room or id), never scanning the table or sorting."""
    for n in range(4):
        insert_messages_txn(cursor, [("lobby", message(f"lobby {n}", n=n)), ("dev", message(f"dev {n}", room="dev", n=n))])
    recording = RecordingCursor(cursor)

    assert prune_messages_txn(recording, START + 1, 2, 10) == 4

    plans = [" ".join(row[3] for row in cursor.execute("EXPLAIN QUERY PLAN " + sql, parameters))
             for sql, parameters in recording.statements]
    assert len(plans) == 7  # by time; the rooms; per room: its limit and what is beyond it; the delete
    for plan in plans:
        assert "USING" in plan and "SCAN messages " not in plan + " " and "TEMP B-TREE" not in plan, plan
    assert "messages_by_time" in plans[0]


def test_pruned_messages_leave_the_search_index(cursor: sqlite3.Cursor) -> None:
    """The delete trigger takes each pruned message out of the search index, which stays consistent with the table."""
    insert_messages_txn(cursor, [("lobby", message(f"needle {n}", n=n)) for n in range(5)])

    assert prune_messages_txn(cursor, START + 3, None, 2) == 2
    assert prune_messages_txn(cursor, START + 3, None, 2) == 1

    assert [m.text for m in search_messages_txn(cursor, ["lobby"], '"needle"*', 10)] == ["needle 4", "needle 3"]
    assert count_rows(cursor, "messages_fts_docsize") == 2
    cursor.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


# --- SqliteStore on the reactor -------------------------------------------------------------


async def within(d: Deferred[T]) -> T:
    """Wait for C{d}, failing with a timeout instead of hanging if it has not fired in L{TIMEOUT}."""
    from twisted.internet import reactor

    return await d.addTimeout(TIMEOUT, reactor)  # type: ignore[arg-type]


@pytest_twisted.ensureDeferred
async def test_appends_in_one_turn_share_few_transactions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """100 appends made in one reactor turn are written in at most 3 insert transactions and still fire in order."""
    store = SqliteStore(str(tmp_path / "chat.sqlite"))
    await within(store.start())
    batch_sizes: list[int] = []
    run_interaction = store._pool.runInteraction

    def counting(interaction: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if interaction is insert_messages_txn:
            batch_sizes.append(len(args[0]))
        return run_interaction(interaction, *args, **kwargs)

    monkeypatch.setattr(store._pool, "runInteraction", counting)
    try:
        records = [message(f"line {n}", n=n) for n in range(100)]
        appends = [store.append_message("lobby", record) for record in records]
        order: list[int] = []
        for position, d in enumerate(appends):
            d.addCallback(lambda _, position=position: order.append(position))

        await within(gatherResults(appends))

        assert order == list(range(100))
        assert sum(batch_sizes) == 100
        assert len(batch_sizes) <= 3
        assert await within(store.recent_messages("lobby", 100)) == records
    finally:
        await within(store.stop())


@pytest_twisted.ensureDeferred
async def test_failed_write_fails_its_appends_and_the_store_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a group's transaction fails every append in it fails, and later appends are written as usual."""
    store = SqliteStore(str(tmp_path / "chat.sqlite"))
    await within(store.start())
    run_interaction = store._pool.runInteraction
    failures = [True]

    def broken_insert(cursor: sqlite3.Cursor, rows: object, index: bool = False) -> None:
        cursor.execute("INSERT INTO no_such_table VALUES (1)")

    def failing_once(interaction: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        if interaction is insert_messages_txn and failures:
            failures.pop()
            interaction = broken_insert
        return run_interaction(interaction, *args, **kwargs)

    monkeypatch.setattr(store._pool, "runInteraction", failing_once)
    try:
        lost = store.append_message("lobby", message("lost"))
        outcomes: list[str] = []
        lost.addCallbacks(lambda _: outcomes.append("stored"), lambda f: outcomes.append(f.type.__name__))
        await within(lost)
        assert outcomes == ["OperationalError"]

        await within(store.append_message("lobby", message("kept")))

        assert await within(store.recent_messages("lobby", 10)) == [message("kept")]
    finally:
        await within(store.stop())


def test_search_indexes_stored_messages_in_batches(cursor: sqlite3.Cursor) -> None:
    """
    Stored messages wait in fts_pending until the index is brought up to date (every
    INDEX_BATCH messages, or by a search, which so sees them all); deleting one still waiting
    only takes it off the list, and the index stays whole through all of it.
    """
    insert_messages_txn(cursor, [("lobby", message("early bird", n=0)), ("lobby", message("late bird", n=1))])
    assert count_rows(cursor, "fts_pending") == 2
    cursor.execute("DELETE FROM messages WHERE id = 1")
    assert count_rows(cursor, "fts_pending") == 1
    assert [m.text for m in search_messages_txn(cursor, ["lobby"], '"bird"*', 10)] == ["late bird"]
    assert count_rows(cursor, "fts_pending") == 0
    insert_messages_txn(cursor, [("lobby", message("third bird", n=2))], index=True)
    assert count_rows(cursor, "fts_pending") == 0
    cursor.execute("DELETE FROM messages WHERE id = 2")
    assert [m.text for m in search_messages_txn(cursor, ["lobby"], '"bird"*', 10)] == ["third bird"]
    cursor.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")


def test_upgrade_from_version_5_keeps_the_search_index_and_batches_new_messages(connection: sqlite3.Connection) -> None:
    """A version-5 database keeps its index of old messages; new ones wait for the next batch; nothing is lost."""
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:5], start=1):
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    cursor.execute("INSERT INTO messages (room_key, room, kind, sender, body, sent_at)"
                   " VALUES ('lobby', 'lobby', 'say', 'bob', 'indexed already', 1.0)")
    connection.commit()

    assert migrate_txn(cursor) == len(MIGRATIONS)
    connection.commit()

    insert_messages_txn(cursor, [("lobby", message("indexed later", n=1))])
    assert count_rows(cursor, "fts_pending") == 1
    assert [m.text for m in search_messages_txn(cursor, ["lobby"], '"indexed"*', 10)] == ["indexed later",
                                                                                          "indexed already"]
    cursor.execute("DELETE FROM messages")
    cursor.execute("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)")
