"""
Tests for C{python -m chat_twisted.admin}: each command, and each way a database can be wrong.

They run L{main} in-process on SQLite databases made in C{tmp_path} by the store's own code
(C{configure_connection} and C{migrate_txn}, as the server opens a file), reading what it printed
with capsys; PostgreSQL variants use the scratch database of conftest.py's C{postgres_url}.
The bans are kept by the stores themselves (L{SqliteStore}, L{PostgresStore}), on the reactor
through pytest-twisted, every wait bounded, before the tool reads them.
One test runs the tool as a subprocess to check that C{python -m} finds it.
"""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from argon2 import PasswordHasher as Argon2
from twisted.internet.defer import Deferred

from chat_twisted import admin
from chat_twisted.interfaces import IChatStore
from chat_twisted.model import Account, Ban, OfflineMessage, RoomRecord, StoredMessage, StoredRoom
from chat_twisted.store import postgres as postgres_sql
from chat_twisted.store import sqlite as sqlite_sql
from chat_twisted.store.postgres import PostgresStore
from chat_twisted.store.sqlite import MIGRATIONS, SqliteStore

#: 2026-01-02 03:04:05 UTC.
START = 1767323045.0
DAY = 86400.0


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the tool with C{argv}; return its exit status, stdout and stderr."""
    status = admin.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def fill(cursor: Any, connection: Any, sql: Any) -> None:
    """Put two accounts, two rooms' messages and offline messages into a migrated database."""
    sql.create_account_txn(cursor, "bob", Account("Bob", "$argon2id$bob", START + DAY))
    sql.create_account_txn(cursor, "alice", Account("Alice", "$argon2id$alice", START))
    sql.insert_messages_txn(cursor, [
        ("lobby", StoredMessage("lobby", "say", "alice", "hello", START)),
        ("dev", StoredMessage("Dev", "topic", "bob", "builds", START + 60)),
        ("lobby", StoredMessage("Lobby", "say", "bob", "hi", START + 120)),
    ])
    sql.queue_offline_txn(cursor, "bob", OfflineMessage("alice", "Bob", "old pm", START), 10)
    sql.queue_offline_txn(cursor, "alice", OfflineMessage("bob", "Alice", "for alice", START), 10)
    connection.commit()


def make_database(path: Path, filled: bool = True) -> Path:
    """Make a chat database at C{path} as the SQLite store does (WAL, migrated), with some data."""
    connection = sqlite3.connect(path)
    sqlite_sql.configure_connection(connection)
    cursor = connection.cursor()
    sqlite_sql.migrate_txn(cursor)
    connection.commit()
    if filled:
        fill(cursor, connection, sqlite_sql)
    connection.close()
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A filled chat database file."""
    return make_database(tmp_path / "chat.sqlite3")


def query(path: Path, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
    """Return the rows C{sql} gives on the database at C{path}."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short lock waits and no pause between prune batches, so that the tests are fast."""
    monkeypatch.setattr(admin, "BUSY_TIMEOUT", 0.2)
    monkeypatch.setattr(admin, "PRUNE_PAUSE", 0.0)


# --- the command line --------------------------------------------------------------------------


def test_help_runs_as_a_module() -> None:
    """C{python -m chat_twisted.admin --help} exits 0 and names every command."""
    done = subprocess.run([sys.executable, "-m", "chat_twisted.admin", "--help"],
                          capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    for word in ("--db", "accounts", "rooms", "bans", "backup", "prune"):
        assert word in done.stdout


@pytest.mark.parametrize("argv", [[], ["accounts", "list"], ["--db", "x"], ["--db", "x", "accounts"],
                                  ["--db", "x", "prune", "--history-days", "-1"],
                                  ["--db", "x", "prune", "--history-max", "many"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """A missing --db, command or action, or a bad option value, is a usage error: status 2, said on stderr."""
    status, out, err = run(capsys, *argv)

    assert status == 2 and out == "" and "usage:" in err


# --- accounts ----------------------------------------------------------------------------------


def test_accounts_list_gives_nicks_and_registration_dates(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """accounts list prints each account's nickname and UTC registration time, in nickname order."""
    assert run(capsys, "--db", str(db), "accounts", "list") == (0, (
        "NICK   REGISTERED (UTC)\n"
        "Alice  2026-01-02 03:04\n"
        "Bob    2026-01-03 03:04\n"
    ), "")


def test_accounts_list_without_accounts(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """accounts list on a database with no accounts says so."""
    empty = make_database(tmp_path / "empty.sqlite3", filled=False)

    assert run(capsys, "--db", str(empty), "accounts", "list") == (0, "no accounts\n", "")


def password_hash(db: Path, nick_key: str) -> str:
    """The password hash stored for C{nick_key}."""
    [(stored,)] = query(db, "SELECT password_hash FROM accounts WHERE nick_key = ?", nick_key)
    return str(stored)


def test_reset_password_from_stdin_stores_a_server_grade_hash(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """reset-password --password-stdin reads one line and stores its Argon2id hash with the server's parameters."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("new-secret\n"))

    assert run(capsys, "--db", str(db), "accounts", "reset-password", "ALICE", "--password-stdin") == (
        0, "password of Alice changed\n", "")

    stored = password_hash(db, "alice")
    assert Argon2().verify(stored, "new-secret")
    assert not Argon2().check_needs_rehash(stored)  # the default parameters, as the server hashes
    assert password_hash(db, "bob") == "$argon2id$bob"


def test_reset_password_asks_twice_without_echo(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --password-stdin, the password is asked for twice with getpass, naming the account."""
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return "typed-twice"

    monkeypatch.setattr(admin.getpass, "getpass", getpass)

    assert run(capsys, "--db", str(db), "accounts", "reset-password", "bob")[0] == 0

    assert prompts == ["New password for Bob: ", "Again: "]
    assert Argon2().verify(password_hash(db, "bob"), "typed-twice")


def test_reset_password_refuses_differing_passwords(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two different passwords at the prompt change nothing and exit 1."""
    answers = iter(["first-try", "second-try"])
    monkeypatch.setattr(admin.getpass, "getpass", lambda prompt: next(answers))

    status, out, err = run(capsys, "--db", str(db), "accounts", "reset-password", "bob")

    assert (status, out) == (1, "") and "the two passwords differ; nothing was changed" in err
    assert password_hash(db, "bob") == "$argon2id$bob"


@pytest.mark.parametrize(("password", "complaint"), [
    ("abc", "a password needs at least 4 characters"),
    ("has space", "a password may not contain spaces"),
    ("", "a password needs at least 4 characters"),
])
def test_reset_password_keeps_the_servers_password_rules(
    capsys: pytest.CaptureFixture[str], db: Path, monkeypatch: pytest.MonkeyPatch, password: str, complaint: str
) -> None:
    """A password the server would refuse is refused here too (status 2), and nothing changes."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))

    status, _, err = run(capsys, "--db", str(db), "accounts", "reset-password", "bob", "--password-stdin")

    assert status == 2 and complaint in err
    assert password_hash(db, "bob") == "$argon2id$bob"


def test_reset_password_of_an_unknown_nick_exits_1(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """reset-password of a nickname nobody registered says so and exits 1, without asking for a password."""
    assert run(capsys, "--db", str(db), "accounts", "reset-password", "carol") == (
        1, "", "python -m chat_twisted.admin: no account carol\n")


def test_accounts_delete_removes_the_account_and_its_offline_messages(
    capsys: pytest.CaptureFixture[str], db: Path
) -> None:
    """accounts delete removes that account and the messages waiting for it, and nothing else."""
    assert run(capsys, "--db", str(db), "accounts", "delete", "Bob") == (
        0, "deleted account Bob and its offline messages\n", "")

    assert query(db, "SELECT nick FROM accounts") == [("Alice",)]
    assert query(db, "SELECT recipient_key FROM offline_messages") == [("alice",)]
    assert run(capsys, "--db", str(db), "accounts", "delete", "bob") == (
        1, "", "python -m chat_twisted.admin: no account bob\n")


# --- rooms and bans ----------------------------------------------------------------------------


def test_rooms_list_gives_counts_and_newest_times(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """rooms list prints each room with messages: its latest name, message count and newest message's time."""
    assert run(capsys, "--db", str(db), "rooms", "list") == (0, (
        "ROOM   MESSAGES  LAST MESSAGE (UTC)\n"
        "Dev    1         2026-01-02 03:05\n"
        "Lobby  2         2026-01-02 03:06\n"
    ), "")


def test_rooms_list_without_messages(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """rooms list on a database without messages says so."""
    empty = make_database(tmp_path / "empty.sqlite3", filled=False)

    assert run(capsys, "--db", str(empty), "rooms", "list") == (0, "no rooms with messages\n", "")


def test_bans_list_without_bans(capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path) -> None:
    """bans list says there are none on an empty database, and on one whose only claimed room has no bans."""
    empty = make_database(tmp_path / "empty.sqlite3", filled=False)
    assert run(capsys, "--db", str(empty), "bans", "list") == (0, "no bans\n", "")

    connection = sqlite3.connect(db)
    sqlite_sql.save_room_txn(connection.cursor(), RoomRecord("lobby", "Lobby", "alice", ("bob",), (), "t"))
    connection.commit()
    connection.close()

    assert run(capsys, "--db", str(db), "bans", "list") == (0, "no bans\n", "")
    assert run(capsys, "--db", str(db.parent / "missing.sqlite3"), "bans", "list")[0] == 2


#: What bans list is asked at: a day after START.
NOW = START + DAY

#: The rooms and bans L{moderate} keeps, and how bans list shows them at L{NOW}: server bans first,
#: by mask; then each claimed room's, rooms by key and bans by mask; a room without bans not at all.
BANS_LISTED = (
    "ROOM      MASK               SET BY  SET (UTC)         EXPIRES (UTC)               REASON\n"
    "(server)  *!*@10.0.0.1       alice   2026-01-02 03:04  never                       spam\n"
    "(server)  troll!*@*          bob     2026-01-02 03:05  2026-01-02 03:06 (expired)\n"
    "(server)  zed!*@*            alice   2026-01-02 03:06  2026-01-04 03:04            flooding again\n"
    "Dev       eve!*@*            alice   2026-01-02 03:08  2026-01-04 03:04\n"
    "Dev       mallory!*@*        bob     2026-01-02 03:07  never                       rude\n"
    "Ops       *!*@*.example.org  carol   2026-01-02 03:09  never                       wiped the screen\n"
)


async def moderate(store: IChatStore) -> None:
    """Start C{store}, keep some claimed rooms and server bans through the store's own API, and stop it."""
    from twisted.internet import reactor

    def within(d: Deferred[Any]) -> Deferred[Any]:
        return d.addTimeout(10, reactor)  # type: ignore[arg-type]

    await within(store.start())
    try:
        for server_ban in [Ban("zed!*@*", "alice", START + 120, START + 2 * DAY, "flooding again"),
                           Ban("*!*@10.0.0.1", "alice", START, None, "spam"),
                           Ban("troll!*@*", "bob", START + 60, START + 120)]:
            await within(store.add_server_ban(server_ban))
        await within(store.save_room(RoomRecord("ops", "Ops", "carol", bans=(
            Ban("*!*@*.example.org", "carol", START + 300, None, "\x1b[2Jwiped the screen"),))))
        await within(store.save_room(RoomRecord("lobby", "Lobby", "alice", ("bob",), modes="t")))
        await within(store.save_room(RoomRecord("dev", "Dev", "alice", ("bob",), (
            Ban("mallory!*@*", "bob", START + 180, None, "rude"), Ban("eve!*@*", "alice", START + 240, START + 2 * DAY),
        ), "imt")))
    finally:
        await within(store.stop())


def run_at(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, now: float, *argv: str
           ) -> tuple[int, str, str]:
    """Run the tool with C{argv} while the clock says C{now}."""
    with monkeypatch.context() as patch:
        patch.setattr(admin.time, "time", lambda: now)
        return run(capsys, *argv)


@pytest_twisted.ensureDeferred
async def test_bans_list_gives_server_bans_then_each_rooms(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, db: Path
) -> None:
    """
    bans list shows what the server's store kept: every server ban, then each claimed room's bans,
    with who set them, when, their expiry (never, or marked expired once past) and their reason,
    sanitised.
    """
    await moderate(SqliteStore(str(db)))

    assert run_at(capsys, monkeypatch, NOW, "--db", str(db), "bans", "list") == (0, BANS_LISTED, "")


# --- backup ------------------------------------------------------------------------------------


def test_backup_writes_a_consistent_copy_while_a_write_is_under_way(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    """
    backup copies every committed row into a new, self-contained file (no WAL), readable only by its
    owner, even while another connection is in the middle of a write, which it leaves out.
    """
    writer = sqlite3.connect(db, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO accounts VALUES ('carol', 'Carol', '$h', 0)")
    target = tmp_path / "backup.sqlite3"
    try:
        status, out, err = run(capsys, "--db", str(db), "backup", str(target))
    finally:
        writer.execute("COMMIT")
        writer.close()

    assert (status, err) == (0, "") and out.startswith(f"backed up {db} (schema version {len(MIGRATIONS)}) to {target}, ")
    assert query(target, "SELECT nick FROM accounts ORDER BY nick") == [("Alice",), ("Bob",)]
    assert query(target, "SELECT COUNT(*) FROM messages") == [(3,)]
    assert query(target, "PRAGMA journal_mode") == [("delete",)]
    assert target.stat().st_mode & 0o077 == 0
    assert run(capsys, "--db", str(target), "rooms", "list")[0] == 0  # a chat database in its own right
    assert sorted(path.name for path in tmp_path.iterdir()) == ["backup.sqlite3", "chat.sqlite3"]


def test_backup_never_replaces_a_file(capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path) -> None:
    """backup to a file that exists (the database itself included) refuses with status 2 and leaves it alone."""
    existing = tmp_path / "existing"
    existing.write_text("keep me")

    for target in (existing, db):
        status, out, err = run(capsys, "--db", str(db), "backup", str(target))
        assert (status, out) == (2, "") and "exists already" in err
    assert existing.read_text() == "keep me"
    assert run(capsys, "--db", str(db), "backup", str(tmp_path / "no" / "such" / "dir.sqlite3"))[0] == 2


def test_backup_of_postgresql_points_to_pg_dump(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """backup of a PostgreSQL URL exits 2 saying to use pg_dump, with any password hidden, and writes nothing."""
    status, out, err = run(capsys, "--db", "postgresql://chat:secret@db.example.org/chat", "backup",
                           str(tmp_path / "chat.dump"))

    assert (status, out) == (2, "")
    assert "pg_dump -Fc 'postgresql://chat:***@db.example.org/chat'" in err and "secret" not in err
    assert list(tmp_path.iterdir()) == []


# --- prune -------------------------------------------------------------------------------------


def add_old_messages(db: Path, count: int, days_ago: float) -> None:
    """Append C{count} lobby messages sent C{days_ago} days ago."""
    connection = sqlite3.connect(db)
    sent = time.time() - days_ago * DAY
    sqlite_sql.insert_messages_txn(connection.cursor(), [
        ("lobby", StoredMessage("lobby", "say", "alice", f"old {n}", sent + n)) for n in range(count)
    ])
    connection.commit()
    connection.close()


def test_prune_by_age_deletes_in_batches_until_none_are_due(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """prune --history-days deletes every message older than that, over as many batches as it takes."""
    add_old_messages(db, 7, days_ago=0)  # the fixture's messages are from 2026-01-02, long before "now"

    assert run(capsys, "--db", str(db), "prune", "--history-days", "1", "--batch", "2") == (
        0, "pruned 3 room messages, expired 0 offline messages\n", "")

    assert query(db, "SELECT COUNT(*) FROM messages") == [(7,)]
    assert query(db, "SELECT room_key, topic FROM room_topics") == [("dev", "builds")]  # topics stay


def test_prune_history_max_keeps_the_newest_of_each_room(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """prune --history-max keeps each room's newest N messages."""
    add_old_messages(db, 5, days_ago=0)

    assert run(capsys, "--db", str(db), "prune", "--history-max", "2")[0] == 0

    assert query(db, "SELECT body FROM messages ORDER BY id") == [("builds",), ("old 3",), ("old 4",)]


def test_prune_offline_days_expires_offline_messages(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """prune --offline-days deletes offline messages older than that and leaves room history alone."""
    assert run(capsys, "--db", str(db), "prune", "--offline-days", "30") == (
        0, "pruned 0 room messages, expired 2 offline messages\n", "")

    assert query(db, "SELECT COUNT(*) FROM offline_messages") == [(0,)]
    assert query(db, "SELECT COUNT(*) FROM messages") == [(3,)]


def test_prune_without_a_rule_is_a_usage_error(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """prune with no rule (or only zeros) deletes nothing and exits 2, saying what it needs."""
    for argv in (["prune"], ["prune", "--history-days", "0"]):
        status, out, err = run(capsys, "--db", str(db), *argv)
        assert (status, out) == (2, "") and "--history-days, --history-max or --offline-days" in err
    assert query(db, "SELECT COUNT(*) FROM messages") == [(3,)]


# --- databases the tool must refuse ------------------------------------------------------------


def test_a_missing_database_is_refused_and_not_created(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A --db path that does not exist exits 2, saying so, and no file is created there."""
    missing = tmp_path / "typo.sqlite3"

    status, out, err = run(capsys, "--db", str(missing), "accounts", "list")

    assert (status, out) == (2, "") and f"no database at {missing}" in err
    assert list(tmp_path.iterdir()) == []


def test_a_directory_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A --db that names a directory exits 2, saying so."""
    status, _, err = run(capsys, "--db", str(tmp_path), "rooms", "list")

    assert status == 2 and "is a directory" in err


def test_a_file_that_is_not_sqlite_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A --db file that is not a SQLite database exits 2 and is left as it was."""
    notes = tmp_path / "notes.txt"
    notes.write_text("these are not the tables you are looking for\n" * 100)

    status, _, err = run(capsys, "--db", str(notes), "accounts", "list")

    assert status == 2 and "is not a SQLite database" in err
    assert notes.read_text().startswith("these are not")


@pytest.mark.parametrize("setup", [
    "CREATE TABLE inventory (item TEXT)",
    "CREATE TABLE schema_version (version INTEGER NOT NULL)",
    "",
])
def test_a_sqlite_database_that_is_not_a_chat_database_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, setup: str
) -> None:
    """Another application's SQLite database (or an empty file) exits 2 as "not a chat database", untouched."""
    other = tmp_path / "other.sqlite3"
    connection = sqlite3.connect(other)
    if setup:
        connection.execute(setup)
    connection.commit()
    connection.close()
    before = other.read_bytes()

    status, _, err = run(capsys, "--db", str(other), "accounts", "delete", "bob")

    assert status == 2 and "is not a chat database" in err
    assert other.read_bytes() == before


def test_a_newer_schema_is_refused(capsys: pytest.CaptureFixture[str], db: Path) -> None:
    """A database at a schema version this tool does not know exits 2 for every command, backup included."""
    latest = len(sqlite_sql.MIGRATIONS)
    connection = sqlite3.connect(db)
    connection.execute("INSERT INTO schema_version (version) VALUES (?)", (latest + 1,))
    connection.commit()
    connection.close()

    for argv in (["accounts", "list"], ["backup", str(db.parent / "copy.sqlite3")]):
        status, _, err = run(capsys, "--db", str(db), *argv)
        assert status == 2 and f"schema version {latest + 1}, newer than this tool knows ({latest})" in err


def test_an_older_schema_is_refused_except_for_backup(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A database the server has not migrated yet exits 2 (start the server first); backup still copies it."""
    old = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(old)
    connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for statement in sqlite_sql.MIGRATIONS[0]:
        connection.execute(statement)
    connection.execute("INSERT INTO schema_version (version) VALUES (1)")
    connection.commit()
    connection.close()

    status, _, err = run(capsys, "--db", str(old), "prune", "--history-days", "1")

    assert status == 2 and "schema version 1, older than this tool's" in err and "start the server once" in err
    assert run(capsys, "--db", str(old), "backup", str(tmp_path / "copy.sqlite3"))[0] == 0


@pytest.fixture
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock (a transaction left open) for the test."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


def test_a_write_lock_held_too_long_says_the_database_is_in_use(
    capsys: pytest.CaptureFixture[str], db: Path, write_lock: sqlite3.Connection
) -> None:
    """A write that waits past the busy timeout exits 2 saying the database is in use; reads still work (WAL)."""
    status, out, err = run(capsys, "--db", str(db), "accounts", "delete", "bob")

    assert (status, out) == (2, "") and f"{db} is in use" in err
    assert run(capsys, "--db", str(db), "accounts", "list")[0] == 0
    assert query(db, "SELECT COUNT(*) FROM accounts") == [(2,)]


def test_a_rollback_journal_database_locked_by_a_writer_is_in_use(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Without WAL (someone turned it off), a writer's exclusive lock blocks even reads: the tool says it is in use."""
    path = make_database(tmp_path / "journal.sqlite3")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        status, _, err = run(capsys, "--db", str(path), "accounts", "list")
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    assert status == 2 and "is in use" in err


# --- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
def pg(postgres_url: str) -> str:
    """A filled chat database on the test PostgreSQL server, migrated as the store does."""
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        cursor = connection.cursor()
        postgres_sql.migrate_txn(cursor)
        connection.commit()
        fill(cursor, connection, postgres_sql)
    return postgres_url


def test_postgresql_accounts_rooms_and_delete(capsys: pytest.CaptureFixture[str], pg: str) -> None:
    """accounts list, rooms list and accounts delete work the same on a PostgreSQL database."""
    assert run(capsys, "--db", pg, "accounts", "list")[1].splitlines()[1:] == [
        "Alice  2026-01-02 03:04", "Bob    2026-01-03 03:04"]
    assert run(capsys, "--db", pg, "rooms", "list")[1].splitlines()[1:] == [
        "Dev    1         2026-01-02 03:05", "Lobby  2         2026-01-02 03:06"]
    assert run(capsys, "--db", pg, "accounts", "delete", "alice")[0] == 0
    assert run(capsys, "--db", pg, "accounts", "list")[1].splitlines()[1:] == ["Bob   2026-01-03 03:04"]



@pytest_twisted.ensureDeferred
async def test_postgresql_bans_list(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, pg: str) -> None:
    """bans list shows a PostgreSQL database's bans, kept by its store, exactly as it shows a SQLite one's."""
    assert run(capsys, "--db", pg, "bans", "list") == (0, "no bans\n", "")

    await moderate(PostgresStore(pg))

    assert run_at(capsys, monkeypatch, NOW, "--db", pg, "bans", "list") == (0, BANS_LISTED, "")


def test_postgresql_reset_password_and_prune(
    capsys: pytest.CaptureFixture[str], pg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """reset-password and prune change a PostgreSQL database as they change a SQLite one."""
    import psycopg

    monkeypatch.setattr(sys, "stdin", io.StringIO("on-postgres\n"))
    assert run(capsys, "--db", pg, "accounts", "reset-password", "bob", "--password-stdin")[0] == 0
    assert run(capsys, "--db", pg, "prune", "--history-max", "1", "--offline-days", "1") == (
        0, "pruned 1 room messages, expired 2 offline messages\n", "")

    with psycopg.connect(pg) as connection:
        stored = connection.execute("SELECT password_hash FROM accounts WHERE nick_key = 'bob'").fetchone()
        assert stored is not None and Argon2().verify(stored[0], "on-postgres")
        assert postgres_sql.room_summaries_txn(connection.cursor()) == [
            StoredRoom("Dev", 1, START + 60), StoredRoom("Lobby", 1, START + 120)]


def test_postgresql_database_that_is_missing_or_not_a_chat_database(
    capsys: pytest.CaptureFixture[str], postgres_url: str
) -> None:
    """A PostgreSQL database that does not exist, or has no chat tables, exits 2 saying which."""
    missing = postgres_url.rsplit("/", 1)[0] + "/chat_test_no_such_database"
    status, _, err = run(capsys, "--db", missing, "accounts", "list")
    assert status == 2 and "cannot connect to" in err and "does not exist" in err

    status, _, err = run(capsys, "--db", postgres_url, "accounts", "list")
    assert status == 2 and "is not a chat database" in err


def test_postgresql_row_locked_too_long_says_the_database_is_in_use(
    capsys: pytest.CaptureFixture[str], pg: str
) -> None:
    """A PostgreSQL row another transaction keeps locked past the timeout makes a write exit 2 as "in use"."""
    import psycopg

    with psycopg.connect(pg) as holder:
        holder.execute("UPDATE accounts SET nick = nick WHERE nick_key = 'bob'")  # locked until rollback
        status, out, err = run(capsys, "--db", pg, "accounts", "delete", "bob")
        holder.rollback()

    assert (status, out) == (2, "") and "is in use" in err
    assert run(capsys, "--db", pg, "accounts", "list")[1].count("Bob") == 1
