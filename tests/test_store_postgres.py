"""
PostgreSQL specifics: the pure helpers (URLs, search words and queries), the C{_txn} functions run
synchronously on a psycopg connection to a new database (the C{postgres_url} fixture of
conftest.py), the schema migrations, and L{PostgresStore} on the real reactor through
pytest-twisted (every wait bounded): group commit, reads waiting for writes, a connection lost
mid-way, a database that cannot be reached; and C{--db postgresql://...} in the command line.
What every store does is in test_store_contract.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

import psycopg
import pytest
import pytest_twisted
from twisted.application.service import IServiceCollection
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactor
from twisted.python import usage

from chat_twisted import tap
from chat_twisted.core import ChatService
from chat_twisted.model import Account, HistoryPoint, OfflineMessage, StoredMessage
from chat_twisted.store.postgres import (
    MAX_WORD_BYTES,
    MIGRATIONS,
    PostgresStore,
    connection_parameters,
    create_account_txn,
    find_messages_txn,
    get_account_txn,
    index_words,
    insert_messages_txn,
    is_postgres_url,
    migrate_txn,
    queue_offline_txn,
    recent_messages_txn,
    redacted,
    room_topics_txn,
    search_messages_txn,
    search_query,
    take_offline_txn,
)
from chat_twisted.store.sqlite import SqliteStore

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


def scalar(connection: psycopg.Connection[Any], sql: str, *parameters: Any) -> Any:
    """Return the first column of the first row C{sql} gives."""
    row = connection.execute(sql, parameters).fetchone()
    assert row is not None
    return row[0]


def schema(connection: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Return every column and index of the public schema, in a stable order."""
    columns = connection.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, column_name"
    ).fetchall()
    indexes = connection.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"
    ).fetchall()
    return columns + indexes


@pytest.fixture
def connection(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to a new, empty database, closed after the test."""
    with psycopg.connect(postgres_url) as connection:
        yield connection


@pytest.fixture
def cursor(connection: psycopg.Connection[Any]) -> psycopg.Cursor[Any]:
    """A cursor on the new database, migrated to the latest schema and committed."""
    cursor = connection.cursor()
    migrate_txn(cursor)
    connection.commit()
    return cursor


# --- URLs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "database, postgres",
    [
        ("postgresql://postgres@127.0.0.1:5432/chat", True),
        ("postgres://chat:secret@db.example.org/chat?sslmode=require", True),
        ("chat.sqlite3", False),
        ("/var/lib/chat/postgresql.sqlite3", False),
        ("postgresql.sqlite3", False),
    ],
)
def test_is_postgres_url_takes_only_the_two_url_schemes(database: str, postgres: bool) -> None:
    """--db is a PostgreSQL database only when it starts with postgresql:// or postgres://; anything else is a file."""
    assert is_postgres_url(database) is postgres


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://postgres@127.0.0.1:5432/chat", "postgresql://postgres@127.0.0.1:5432/chat"),
        ("postgresql://chat:s3cr%40t@db:5432/chat", "postgresql://chat:***@db:5432/chat"),
        ("postgres://chat:pw@db/chat?sslmode=require&password=other",
         "postgres://chat:***@db/chat?sslmode=require&password=***"),
    ],
)
def test_redacted_hides_passwords(url: str, shown: str) -> None:
    """A password in the URL, before the host or as a parameter, never reaches a log line."""
    assert redacted(url) == shown


def test_connection_parameters_add_defaults_the_url_can_override() -> None:
    """The store connects with a timeout and an application name, unless the URL sets its own."""
    assert connection_parameters("postgresql://postgres@127.0.0.1:5432/chat") == {
        "user": "postgres", "host": "127.0.0.1", "port": "5432", "dbname": "chat",
        "connect_timeout": 10, "application_name": "chat_twisted",
    }
    own = connection_parameters("postgresql://u@h/d?connect_timeout=3&application_name=mine")
    assert (own["connect_timeout"], own["application_name"]) == ("3", "mine")


def test_connection_parameters_refuse_a_url_libpq_cannot_read() -> None:
    """A malformed URL is a ValueError that names the URL without its password."""
    with pytest.raises(ValueError, match=r"postgresql://u:\*\*\*@h/d\?nosuchparameter=1"):
        connection_parameters("postgresql://u:pw@h/d?nosuchparameter=1")


# --- search words and queries -------------------------------------------------------------------


def test_index_words_are_folded_unique_and_sorted() -> None:
    """A message is indexed by its words, lower-cased and without accents, each once; marks alone vanish."""
    assert index_words("Café CAFE crème, don't \u0301 x-ray 42") == ["42", "cafe", "creme", "don", "ray", "t", "x"]
    assert index_words("!!! 🎉 ...") == []


def test_index_words_cut_long_words_on_a_character_boundary() -> None:
    """A word longer than PostgreSQL's lexeme limit is kept by its first MAX_WORD_BYTES bytes, whole characters only."""
    [word] = index_words("é" * MAX_WORD_BYTES)

    assert len(word.encode()) <= MAX_WORD_BYTES
    assert word == "e" * len(word) and len(word) >= MAX_WORD_BYTES // 2
    [long] = index_words("ж" * MAX_WORD_BYTES)
    assert long == "ж" * (MAX_WORD_BYTES // 2)


@pytest.mark.parametrize(
    "text, query",
    [
        ("fox", "'fox':*"),
        ("Brown FOX brown", "'brown':* & 'fox':*"),
        ("Café", "'cafe':*"),
        ("'fox' & !bar | baz:* <-> (qux)", "'fox':* & 'bar':* & 'baz':* & 'qux':*"),
        ("o'clock", "'o':* & 'clock':*"),
        ("\\", None),
        ("", None),
        ("\u0301", None),
        ("🎉 ...", None),
    ],
)
def test_search_query_quotes_each_word_as_a_prefix(text: str, query: str | None) -> None:
    """The tsquery holds only the folded words of the text, each quoted with :*, joined by &; no word gives None."""
    assert search_query(text) == query


def test_search_query_is_always_valid_tsquery(cursor: psycopg.Cursor[Any]) -> None:
    """PostgreSQL parses every query search_query makes, whatever tsquery syntax the text was full of."""
    for text in ["'a", "''a''", "a:*b", "\\'a\\", "!(a|b)&c<->d", "a:B", "ab:*:*", "Ǆ ǅ ǆ", "x" * 3000]:
        query = search_query(text)
        assert query is not None
        cursor.execute("SELECT %s::tsquery", (query,))


# --- migrations -------------------------------------------------------------------------------------


def test_migrate_from_empty_reaches_the_latest_version(connection: psycopg.Connection[Any]) -> None:
    """migrate_txn on an empty database creates every table and index and records version len(MIGRATIONS)."""
    assert migrate_txn(connection.cursor()) == len(MIGRATIONS)
    connection.commit()

    assert scalar(connection, "SELECT MAX(version) FROM schema_version") == len(MIGRATIONS)
    tables = {row[0] for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert tables == {"schema_version", "messages", "accounts", "offline_messages", "room_topics",
                      "claimed_rooms", "server_bans"}
    indexes = {row[0] for row in connection.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"messages_by_room", "messages_by_word", "offline_by_recipient"} <= indexes


def test_migrate_again_is_a_no_op(cursor: psycopg.Cursor[Any], connection: psycopg.Connection[Any]) -> None:
    """migrate_txn on an up-to-date database changes nothing: same version, no new version rows, data kept."""
    insert_messages_txn(cursor, [("lobby", message("kept", kind="topic"))])
    connection.commit()
    before = schema(connection)

    assert migrate_txn(cursor) == len(MIGRATIONS)
    connection.commit()

    assert scalar(connection, "SELECT COUNT(*) FROM schema_version") == len(MIGRATIONS)
    assert schema(connection) == before
    assert recent_messages_txn(cursor, "lobby", 10) == [message("kept", kind="topic")]
    assert room_topics_txn(cursor) == {"lobby": "kept"}


def test_migrate_waits_for_a_migration_under_way(postgres_url: str) -> None:
    """While one connection migrates (not yet committed), a second one's migrate_txn waits, then finds it done."""
    with psycopg.connect(postgres_url) as first, psycopg.connect(postgres_url) as second:
        migrate_txn(first.cursor())
        second.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            migrate_txn(second.cursor())
        second.rollback()
        first.commit()

        assert migrate_txn(second.cursor()) == len(MIGRATIONS)
        second.commit()
        assert scalar(second, "SELECT COUNT(*) FROM schema_version") == len(MIGRATIONS)


# --- the _txn functions -----------------------------------------------------------------------------


def test_insert_messages_txn_returns_ids_in_order_and_upserts_topics(cursor: psycopg.Cursor[Any]) -> None:
    """insert_messages_txn gives each row its id in order and sets each room's topic to its newest topic row."""
    rows = [
        ("lobby", message("lobby 1", kind="topic", n=0)),
        ("lobby", message("lobby 2", kind="topic", n=1)),
        ("dev", message("dev 1", room="dev", kind="topic", n=2)),
        ("lobby", message("just talk", n=3)),
    ]

    ids = insert_messages_txn(cursor, rows)

    assert ids == sorted(ids) and len(set(ids)) == 4
    assert room_topics_txn(cursor) == {"lobby": "lobby 2", "dev": "dev 1"}
    assert [m.id for m in recent_messages_txn(cursor, "lobby", 10)] == [ids[0], ids[1], ids[3]]
    assert insert_messages_txn(cursor, []) == []


def test_find_messages_txn_bounds_by_id_and_by_time(cursor: psycopg.Cursor[Any]) -> None:
    """find_messages_txn keeps strictly between the bounds, by id or by time, oldest or newest first."""
    ids = insert_messages_txn(cursor, [("lobby", message(f"m{n}", n=n)) for n in range(6)])

    def texts(**kwargs: Any) -> list[str]:
        return [m.text for m in find_messages_txn(cursor, "lobby", **kwargs)]

    assert texts(limit=2, after=HistoryPoint(id=ids[1])) == ["m2", "m3"]
    assert texts(limit=2, before=HistoryPoint(id=ids[4]), newest=True) == ["m2", "m3"]
    assert texts(limit=10, after=HistoryPoint(when=START + 1), before=HistoryPoint(when=START + 4)) == ["m2", "m3"]
    assert texts(limit=10, after=HistoryPoint(when=START + 0.5)) == ["m1", "m2", "m3", "m4", "m5"]


def test_search_messages_txn_matches_prefixes_of_folded_words(cursor: psycopg.Cursor[Any]) -> None:
    """The index matches each folded search word against the start of a message word, and nothing else."""
    insert_messages_txn(cursor, [("lobby", message(text, n=n)) for n, text in enumerate(
        ["Twisted Matrix", "untwisted", "CAFÉ crème", "x-ray vision", "e\u0301te\u0301"])])

    def found(text: str) -> list[str]:
        query = search_query(text)
        return [] if query is None else [m.text for m in search_messages_txn(cursor, ["lobby"], query, 10)]

    assert found("twist") == ["Twisted Matrix"]
    assert found("café CREM") == ["CAFÉ crème"]
    assert found("ray") == ["x-ray vision"]
    assert found("ete") == ["e\u0301te\u0301"]
    assert found("atrix") == []


def test_search_can_use_the_word_index(cursor: psycopg.Cursor[Any], connection: psycopg.Connection[Any]) -> None:
    """The words column's match operator can be answered from its GIN index (shown with sequential scans off)."""
    insert_messages_txn(cursor, [("lobby", message(f"word{n} other", n=n)) for n in range(50)])
    connection.execute("SET enable_seqscan = off")

    plan = connection.execute("EXPLAIN SELECT id FROM messages WHERE words @@ %s::tsquery", ("'word1':*",)).fetchall()

    assert "messages_by_word" in " ".join(row[0] for row in plan)


def test_accounts_txn_refuse_a_taken_key(cursor: psycopg.Cursor[Any]) -> None:
    """create_account_txn returns False for a key already registered and leaves that account as it was."""
    original = Account("Alice", "$argon2id$first", START)

    assert create_account_txn(cursor, "alice", original) is True
    assert create_account_txn(cursor, "alice", Account("ALICE", "$argon2id$second", START + 1)) is False
    assert get_account_txn(cursor, "alice") == original


def test_queue_offline_txn_holds_the_limit_against_a_concurrent_sender(postgres_url: str) -> None:
    """Two transactions queueing for one recipient at once take turns, so the second sees the first's message."""
    with psycopg.connect(postgres_url) as setup:
        migrate_txn(setup.cursor())
    with psycopg.connect(postgres_url) as first, psycopg.connect(postgres_url) as second:
        assert queue_offline_txn(first.cursor(), "bob", offline("first"), 1) is True
        second.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):  # it would wait for the first to commit
            queue_offline_txn(second.cursor(), "bob", offline("second"), 1)
        second.rollback()
        assert queue_offline_txn(second.cursor(), "carol", offline("for carol", "carol"), 1) is True
        first.commit()

        assert queue_offline_txn(second.cursor(), "bob", offline("second"), 1) is False
        second.commit()
        assert take_offline_txn(second.cursor(), "bob") == [offline("first")]


def test_take_offline_txn_returns_oldest_first_and_deletes_only_those(cursor: psycopg.Cursor[Any]) -> None:
    """take_offline_txn returns the recipient's messages oldest first and deletes them, and only them."""
    for n in range(3):
        queue_offline_txn(cursor, "bob", offline(f"pm {n}", n=n), 10)
    queue_offline_txn(cursor, "carol", offline("for carol", "carol"), 10)

    assert take_offline_txn(cursor, "bob") == [offline(f"pm {n}", n=n) for n in range(3)]
    assert take_offline_txn(cursor, "bob") == []
    assert take_offline_txn(cursor, "carol") == [offline("for carol", "carol")]


# --- PostgresStore on the reactor ---------------------------------------------------------------------


async def within(d: Deferred[T]) -> T:
    """Wait for C{d}, failing with a timeout instead of hanging if it has not fired in L{TIMEOUT}."""
    from twisted.internet import reactor

    return await d.addTimeout(TIMEOUT, reactor)  # type: ignore[arg-type]


async def next_turn() -> None:
    """Let the reactor run one turn (the store starts a queued write in the turn after the append)."""
    from twisted.internet import reactor

    await deferLater(reactor, 0, lambda: None)  # type: ignore[arg-type]


async def blocked_backend(admin: psycopg.Connection[Any], database: str) -> int:
    """Return the process id of the store's connection waiting for a lock on C{database}, once there is one."""
    for _ in range(200):
        row = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'chat_twisted'"
            " AND wait_event_type = 'Lock'", (database,),
        ).fetchone()
        if row is not None:
            return int(row[0])
        from twisted.internet import reactor

        await deferLater(reactor, 0.01, lambda: None)  # type: ignore[arg-type]
    raise AssertionError("the store's write never waited for the lock")


def transactions_of_messages(postgres_url: str) -> list[tuple[int, list[int]]]:
    """Return, per transaction that wrote messages, in commit order, the ids it wrote."""
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute("SELECT xmin::text::bigint, id FROM messages ORDER BY id").fetchall()
    transactions: dict[int, list[int]] = {}
    for xmin, id in rows:
        transactions.setdefault(xmin, []).append(id)
    return list(transactions.items())


@pytest.fixture
def lock_holder(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A second connection to the test database, for holding locks the store must wait for."""
    with psycopg.connect(postgres_url) as connection:
        yield connection


@pytest_twisted.ensureDeferred
async def test_appends_in_one_turn_are_one_transaction_with_consecutive_ids(postgres_url: str) -> None:
    """Appends made in one reactor turn are committed in one transaction, fire in order, with consecutive ids."""
    store = PostgresStore(postgres_url)
    await within(store.start())
    try:
        appends = [store.append_message("lobby", message(f"line {n}", n=n)) for n in range(50)]
        order: list[int] = []

        def noted(id: int, position: int) -> int:
            order.append(position)
            return id

        for position, d in enumerate(appends):
            d.addCallback(noted, position)

        ids = await within(gatherResults(appends))

        assert order == list(range(50))
        assert ids == list(range(ids[0], ids[0] + 50))
        assert [written for _, written in transactions_of_messages(postgres_url)] == [ids]
    finally:
        await within(store.stop())


@pytest_twisted.ensureDeferred
async def test_appends_during_a_commit_share_the_next_one_and_reads_wait_for_both(
    postgres_url: str, lock_holder: psycopg.Connection[Any]
) -> None:
    """
    While one commit is held up, later appends queue and go together in the next transaction,
    and a read asked meanwhile (the pool has other free connections) still sees every message.
    """
    store = PostgresStore(postgres_url)
    await within(store.start())
    try:
        lock_holder.execute("LOCK TABLE messages IN SHARE MODE")  # inserts wait for it
        first = store.append_message("lobby", message("first"))
        await next_turn()
        await blocked_backend(lock_holder, postgres_url.rsplit("/", 1)[1])
        later = [store.append_message("lobby", message(f"later {n}", n=n + 1)) for n in range(5)]
        reading = store.recent_messages("lobby", 10)
        topics = store.room_topics()
        await next_turn()
        assert not reading.called and not first.called

        lock_holder.commit()

        ids = await within(gatherResults([first, *later]))
        assert [m.text for m in await within(reading)] == ["first"] + [f"later {n}" for n in range(5)]
        assert await within(topics) == {}
        assert [written for _, written in transactions_of_messages(postgres_url)] == [ids[:1], ids[1:]]
    finally:
        await within(store.stop())


@pytest_twisted.ensureDeferred
async def test_a_connection_lost_mid_write_fails_that_write_and_the_next_one_reconnects(
    postgres_url: str, lock_holder: psycopg.Connection[Any]
) -> None:
    """
    When the server ends the store's connection in the middle of a write, that write's appends
    fail, nothing else does, and the next append is stored on a new connection.
    """
    store = PostgresStore(postgres_url, pool_size=1)
    await within(store.start())
    try:
        await within(store.create_account("alice", Account("Alice", "$argon2id$hash", START)))
        lock_holder.execute("LOCK TABLE messages IN SHARE MODE")
        lost = [store.append_message("lobby", message(f"lost {n}")) for n in range(2)]
        outcomes: list[type] = []
        for d in lost:
            d.addCallbacks(lambda _: outcomes.append(int), lambda f: outcomes.append(f.type))
        await next_turn()
        pid = await blocked_backend(lock_holder, postgres_url.rsplit("/", 1)[1])

        assert scalar(lock_holder, "SELECT pg_terminate_backend(%s)", pid) is True
        await within(gatherResults(lost))
        lock_holder.commit()

        assert len(outcomes) == 2 and all(issubclass(kind, psycopg.OperationalError) for kind in outcomes)
        kept = await within(store.append_message("lobby", message("kept", n=1)))
        assert await within(store.recent_messages("lobby", 10)) == [message("kept", n=1)]
        assert (await within(store.recent_messages("lobby", 10)))[0].id == kept
        assert await within(store.get_account("alice")) == Account("Alice", "$argon2id$hash", START)
        new_pid = scalar(lock_holder, "SELECT pid FROM pg_stat_activity WHERE application_name = 'chat_twisted'")
        assert new_pid != pid
    finally:
        await within(store.stop())


@pytest_twisted.ensureDeferred
async def test_a_database_that_cannot_be_reached_fails_start(postgres_server: str) -> None:
    """start() fails when the database cannot be connected to (here: it does not exist), and stop() still closes."""
    url = postgres_server.rsplit("/", 1)[0] + "/chat_no_such_database"
    store = PostgresStore(url)

    with pytest.raises(psycopg.OperationalError, match="chat_no_such_database"):
        await within(store.start())
    await within(store.stop())


# --- the command line ---------------------------------------------------------------------------------


def core_of(service: IServiceCollection) -> ChatService:
    """Return the chat core among the services makeService built."""
    [core] = [child for child in service if isinstance(child, ChatService)]
    return core


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:5432/chat", "postgres://chat:pw@db/chat"])
def test_db_url_selects_the_postgresql_store(url: str) -> None:
    """--db with a postgresql:// or postgres:// URL gives the core a PostgresStore for it (not started here)."""
    options = tap.Options()
    options.parseOptions(["--db", url, "--no-web"])

    store = core_of(tap.makeService(options, reactor=MemoryReactor())).store

    assert isinstance(store, PostgresStore)
    assert (store.url, store.description) == (url, redacted(url))


def test_db_file_still_selects_sqlite(tmp_path: Any) -> None:
    """--db with anything but such a URL is a SQLite file, as before."""
    options = tap.Options()
    options.parseOptions(["--db", str(tmp_path / "chat.sqlite3"), "--no-web"])

    assert isinstance(core_of(tap.makeService(options, reactor=MemoryReactor())).store, SqliteStore)


def test_db_url_libpq_cannot_read_is_a_usage_error() -> None:
    """A --db URL that libpq cannot read is refused on the command line, without showing its password."""
    with pytest.raises(usage.UsageError, match=r"--db: .*u:\*\*\*@h") as raised:
        tap.Options().parseOptions(["--db", "postgresql://u:pw@h/d?nosuchparameter=1", "--no-web"])
    assert "pw" not in str(raised.value)


def test_db_help_mentions_postgresql() -> None:
    """--help explains that --db also takes a PostgreSQL URL."""
    assert "postgresql://USER" in str(tap.Options())
