"""
The default L{IChatStore}: one SQLite file in WAL mode, used from a single worker thread.

All SQL lives in the C{_txn} functions below, which take a DB-API cursor and run in the worker
thread (tests call them directly on C{sqlite3.connect(":memory:")}). L{SqliteStore} only queues
work for them through C{twisted.enterprise.adbapi}, so the reactor thread never waits on disk.

Messages are committed in groups: while one transaction is being written, new messages queue,
and the next transaction writes all of them. Each append's Deferred fires after its transaction
commits, in the order the appends were made.

Search uses an FTS5 index of message bodies (schema version 3), kept in step with the messages
table by triggers, so group commit indexes each batch in the same transaction. SQLite must be
built with FTS5 (Python's usually is). The same triggers take deleted messages out of the index
when retention prunes them.

Moderation (schema version 5): each claimed room is one row of C{claimed_rooms}, its operators and
its bans JSON arrays in text columns, so a record is written whole by one statement (replacing the
one kept under its key) and read back exactly as it was saved, its bans in the order it gave them.
Each server-wide ban is one row of C{server_bans}, keyed by its mask.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Sequence
from typing import Any

from twisted.enterprise import adbapi
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorCore
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chat_twisted.interfaces import IChatStore
from chat_twisted.model import Account, Ban, HistoryPoint, OfflineMessage, RoomRecord, StoredMessage, StoredRoom
from chat_twisted.store.search import fts_query

log = Logger()

Cursor = Any  # a DB-API cursor

#: Schema migrations, in order: migration N brings the schema from version N-1 to N.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE messages (
               id INTEGER PRIMARY KEY,
               room_key TEXT NOT NULL,
               room TEXT NOT NULL,
               kind TEXT NOT NULL,
               sender TEXT NOT NULL,
               body TEXT NOT NULL,
               sent_at REAL NOT NULL)""",
        "CREATE INDEX messages_by_room ON messages (room_key, id)",
        """CREATE TABLE accounts (
               nick_key TEXT PRIMARY KEY,
               nick TEXT NOT NULL,
               password_hash TEXT NOT NULL,
               created_at REAL NOT NULL)""",
        """CREATE TABLE offline_messages (
               id INTEGER PRIMARY KEY,
               recipient_key TEXT NOT NULL,
               sender TEXT NOT NULL,
               recipient TEXT NOT NULL,
               body TEXT NOT NULL,
               sent_at REAL NOT NULL)""",
        "CREATE INDEX offline_by_recipient ON offline_messages (recipient_key, id)",
    ),
    (
        """CREATE TABLE room_topics (
               room_key TEXT PRIMARY KEY,
               topic TEXT NOT NULL)""",
        """INSERT INTO room_topics (room_key, topic)
               SELECT room_key, body FROM messages WHERE id IN
                   (SELECT MAX(id) FROM messages WHERE kind = 'topic' GROUP BY room_key)""",
    ),
    (
        # The full-text index of message bodies for search (chat_twisted.store.search): it keeps
        # only the index and reads the text from messages; triggers keep it in step with them.
        """CREATE VIRTUAL TABLE messages_fts USING fts5(
               body, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2')""",
        "INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')",
        """CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
               INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
           END""",
        """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
               INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
           END""",
        """CREATE TRIGGER messages_fts_update AFTER UPDATE OF id, body ON messages BEGIN
               INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
               INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
           END""",
    ),
    (
        # Retention (chat_twisted.retention) finds the messages sent before a time without a scan.
        "CREATE INDEX messages_by_time ON messages (sent_at)",
    ),
    (
        # Moderation: claimed rooms (operators and bans as JSON arrays, see room_row) and server bans.
        """CREATE TABLE claimed_rooms (
               room_key TEXT PRIMARY KEY,
               name TEXT NOT NULL,
               owner TEXT NOT NULL,
               operators TEXT NOT NULL,
               bans TEXT NOT NULL,
               modes TEXT NOT NULL)""",
        """CREATE TABLE server_bans (
               mask TEXT PRIMARY KEY,
               set_by TEXT NOT NULL,
               set_at REAL NOT NULL,
               expires_at REAL,
               reason TEXT NOT NULL)""",
    ),
    (
        # Search indexes new messages in batches (index_messages_txn) instead of one by one as
        # they are stored: an FTS5 insert of a few rows costs several times the rows' own insert.
        # fts_pending lists the stored messages the index does not have yet; deleting one of
        # those only takes it off the list.
        "CREATE TABLE fts_pending (id INTEGER PRIMARY KEY)",
        "DROP TRIGGER messages_fts_insert",
        "DROP TRIGGER messages_fts_delete",
        "DROP TRIGGER messages_fts_update",
        """CREATE TRIGGER messages_fts_pending AFTER INSERT ON messages BEGIN
               INSERT INTO fts_pending (id) VALUES (new.id);
           END""",
        """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
               INSERT INTO messages_fts (messages_fts, rowid, body)
                   SELECT 'delete', old.id, old.body WHERE NOT EXISTS (SELECT 1 FROM fts_pending WHERE id = old.id);
               DELETE FROM fts_pending WHERE id = old.id;
           END""",
        """CREATE TRIGGER messages_fts_update AFTER UPDATE OF id, body ON messages
               WHEN NOT EXISTS (SELECT 1 FROM fts_pending WHERE id = old.id) BEGIN
               INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
               INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
           END""",
    ),
)

#: Stored messages the search index may lack before they are added to it in one go.
INDEX_BATCH = 500


# --- SQL, run in the worker thread ----------------------------------------------------------


def migrate_txn(cursor: Cursor) -> int:
    """Apply every migration the database has not had yet, in one transaction; return the version."""
    cursor.execute("BEGIN IMMEDIATE")
    cursor.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    cursor.execute("SELECT MAX(version) FROM schema_version")
    current = cursor.fetchone()[0] or 0
    for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
        for statement in statements:
            cursor.execute(statement)
        cursor.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return len(MIGRATIONS)


def index_messages_txn(cursor: Cursor) -> None:
    """Add every stored message the search index lacks to it, in one go."""
    cursor.execute("INSERT INTO messages_fts (rowid, body)"
                   " SELECT m.id, m.body FROM fts_pending AS p JOIN messages AS m ON m.id = p.id ORDER BY m.id")
    cursor.execute("DELETE FROM fts_pending")


def insert_messages_txn(cursor: Cursor, rows: Sequence[tuple[str, StoredMessage]], index: bool = False) -> list[int]:
    """
    Insert C{(room_key, message)} pairs, in order, and return their ids; a topic message also
    sets the room's topic; with C{index}, bring the search index up to date too. (One writer:
    the ids of one insert are consecutive.)
    """
    cursor.executemany(
        "INSERT INTO messages (room_key, room, kind, sender, body, sent_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(key, m.room, m.kind, m.sender, m.text, m.when) for key, m in rows],
    )
    cursor.execute("SELECT last_insert_rowid()")
    last = cursor.fetchone()[0]
    topics = [(key, m.text) for key, m in rows if m.kind == "topic"]
    if topics:
        cursor.executemany(
            "INSERT INTO room_topics (room_key, topic) VALUES (?, ?)"
            " ON CONFLICT (room_key) DO UPDATE SET topic = excluded.topic",
            topics,
        )
    if index:
        index_messages_txn(cursor)
    return list(range(last - len(rows) + 1, last + 1))


def room_topics_txn(cursor: Cursor) -> dict[str, str]:
    """Return every room's current topic by room key."""
    cursor.execute("SELECT room_key, topic FROM room_topics")
    return dict(cursor.fetchall())


def history_bound(point: HistoryPoint | None, operator: str, mark: str = "?") -> tuple[str, tuple[float, ...]]:
    """
    The SQL condition (and its parameter) for messages on one side of C{point}, with C{mark} as
    the parameter placeholder (the PostgreSQL store passes its own).
    """
    if point is None:
        return "", ()
    if point.id is not None:
        return f" AND id {operator} {mark}", (point.id,)
    return f" AND sent_at {operator} {mark}", (point.when,)  # type: ignore[return-value]


def find_messages_txn(
    cursor: Cursor,
    room_key: str,
    limit: int,
    after: HistoryPoint | None = None,
    before: HistoryPoint | None = None,
    newest: bool = False,
) -> list[StoredMessage]:
    """Return at most C{limit} messages of a room between the bounds, oldest first (see L{IChatStore})."""
    after_sql, after_args = history_bound(after, ">")
    before_sql, before_args = history_bound(before, "<")
    cursor.execute(
        "SELECT room, kind, sender, body, sent_at, id FROM messages"
        f" WHERE room_key = ?{after_sql}{before_sql} ORDER BY id {'DESC' if newest else 'ASC'} LIMIT ?",
        (room_key, *after_args, *before_args, limit),
    )
    rows = cursor.fetchall()
    return [StoredMessage(*row) for row in (reversed(rows) if newest else rows)]


def search_messages_txn(
    cursor: Cursor, room_keys: Sequence[str], query: str, limit: int, before: int | None = None
) -> list[StoredMessage]:
    """
    Return at most C{limit} messages of the rooms C{room_keys} that match the FTS5 C{query} (see
    L{chat_twisted.store.search.fts_query}), older than message C{before} if given, newest first.
    """
    if not room_keys:
        return []
    index_messages_txn(cursor)  # so that it sees every message stored before it
    rooms = ", ".join("?" * len(room_keys))
    before_sql, before_args = (" AND messages_fts.rowid < ?", (before,)) if before is not None else ("", ())
    # The index gives the matches newest first; "+" keeps the room test from driving the query instead.
    cursor.execute(
        "SELECT m.room, m.kind, m.sender, m.body, m.sent_at, m.id"
        " FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid"
        f" WHERE messages_fts MATCH ?{before_sql} AND +m.room_key IN ({rooms})"
        " ORDER BY messages_fts.rowid DESC LIMIT ?",
        (query, *before_args, *room_keys, limit),
    )
    return [StoredMessage(*row) for row in cursor.fetchall()]


def recent_messages_txn(cursor: Cursor, room_key: str, limit: int) -> list[StoredMessage]:
    """Return the newest C{limit} messages of a room, oldest first."""
    return find_messages_txn(cursor, room_key, limit, newest=True)


def get_account_txn(cursor: Cursor, nick_key: str) -> Account | None:
    """Return the account registered under C{nick_key}, or None."""
    cursor.execute("SELECT nick, password_hash, created_at FROM accounts WHERE nick_key = ?", (nick_key,))
    row = cursor.fetchone()
    return Account(*row) if row else None


def create_account_txn(cursor: Cursor, nick_key: str, account: Account) -> bool:
    """Insert C{account} unless the key is taken; return whether it was inserted."""
    cursor.execute(
        "INSERT INTO accounts (nick_key, nick, password_hash, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (nick_key) DO NOTHING",
        (nick_key, account.nick, account.password_hash, account.created),
    )
    return bool(cursor.rowcount == 1)


def set_password_hash_txn(cursor: Cursor, nick_key: str, password_hash: str) -> None:
    """Replace the password hash of an account."""
    cursor.execute("UPDATE accounts SET password_hash = ? WHERE nick_key = ?", (password_hash, nick_key))


def queue_offline_txn(cursor: Cursor, recipient_key: str, message: OfflineMessage, limit: int) -> bool:
    """Keep C{message} unless C{limit} are waiting for the recipient; return whether it was kept."""
    cursor.execute("SELECT COUNT(*) FROM offline_messages WHERE recipient_key = ?", (recipient_key,))
    if cursor.fetchone()[0] >= limit:
        return False
    cursor.execute(
        "INSERT INTO offline_messages (recipient_key, sender, recipient, body, sent_at) VALUES (?, ?, ?, ?, ?)",
        (recipient_key, message.sender, message.recipient, message.text, message.when),
    )
    return True


def take_offline_txn(cursor: Cursor, recipient_key: str) -> list[OfflineMessage]:
    """Return and delete the messages waiting for C{recipient_key}, oldest first."""
    cursor.execute(
        "SELECT sender, recipient, body, sent_at FROM offline_messages WHERE recipient_key = ? ORDER BY id",
        (recipient_key,),
    )
    messages = [OfflineMessage(*row) for row in cursor.fetchall()]
    cursor.execute("DELETE FROM offline_messages WHERE recipient_key = ?", (recipient_key,))
    return messages


#: At most this many ids go into one C{IN (...)} list (SQLite's limit on parameters may be 999).
_IDS_PER_STATEMENT = 500


def room_keys_txn(cursor: Cursor) -> list[str]:
    """
    Return the key of every room that has messages, in order. It skips from one room to the next
    through the room index (a recursive query), so it costs a few steps per room, not a scan.
    """
    cursor.execute(
        "WITH RECURSIVE rooms (key) AS ("
        " SELECT MIN(room_key) FROM messages"
        " UNION ALL SELECT (SELECT MIN(room_key) FROM messages WHERE room_key > rooms.key)"
        " FROM rooms WHERE rooms.key IS NOT NULL)"
        " SELECT key FROM rooms WHERE key IS NOT NULL"
    )
    return [row[0] for row in cursor.fetchall()]


def due_messages_txn(cursor: Cursor, older_than: float | None, keep_per_room: int | None, batch: int) -> list[int]:
    """
    Return the ids of at most C{batch} messages due for pruning (see L{IChatStore.prune_messages}),
    smallest first. Every query walks an index: the time index for C{older_than}; for
    C{keep_per_room}, per room the room index from its newest message back to the first one
    beyond the limit, then on from there.
    """
    if batch <= 0:
        return []
    due: set[int] = set()
    if older_than is not None:
        cursor.execute(
            "SELECT id FROM messages WHERE sent_at < ? ORDER BY sent_at, id LIMIT ?", (older_than, batch)
        )
        due.update(row[0] for row in cursor.fetchall())
    if keep_per_room is not None:
        for room_key in room_keys_txn(cursor):
            cursor.execute(
                "SELECT id FROM messages WHERE room_key = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
                (room_key, max(keep_per_room, 0)),
            )
            row = cursor.fetchone()
            if row is not None:
                cursor.execute(
                    "SELECT id FROM messages WHERE room_key = ? AND id <= ? ORDER BY id LIMIT ?",
                    (room_key, row[0], batch),
                )
                due.update(found[0] for found in cursor.fetchall())
    return sorted(due)[:batch]


def prune_messages_txn(cursor: Cursor, older_than: float | None, keep_per_room: int | None, batch: int) -> int:
    """Delete at most C{batch} messages due for pruning, oldest first; return how many were deleted."""
    ids = due_messages_txn(cursor, older_than, keep_per_room, batch)
    deleted = 0
    for start in range(0, len(ids), _IDS_PER_STATEMENT):
        chunk = ids[start:start + _IDS_PER_STATEMENT]
        cursor.execute(f"DELETE FROM messages WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        deleted += cursor.rowcount
    return deleted


def expire_offline_txn(cursor: Cursor, older_than: float) -> int:
    """Delete the offline messages sent before C{older_than}; return how many."""
    cursor.execute("DELETE FROM offline_messages WHERE sent_at < ?", (older_than,))
    return int(cursor.rowcount)


def list_accounts_txn(cursor: Cursor) -> list[Account]:
    """Return every account, in the order of their keys."""
    cursor.execute("SELECT nick, password_hash, created_at FROM accounts ORDER BY nick_key")
    return [Account(*row) for row in cursor.fetchall()]


def delete_account_txn(cursor: Cursor, nick_key: str) -> bool:
    """Delete an account and the offline messages waiting for it; return whether the account existed."""
    cursor.execute("DELETE FROM offline_messages WHERE recipient_key = ?", (nick_key,))
    cursor.execute("DELETE FROM accounts WHERE nick_key = ?", (nick_key,))
    return bool(cursor.rowcount == 1)


def room_summaries_txn(cursor: Cursor) -> list[StoredRoom]:
    """Return, per room with messages, in key order, its latest name, message count and newest time."""
    cursor.execute(
        "SELECT m.room, r.count, m.sent_at FROM"
        " (SELECT room_key, COUNT(*) AS count, MAX(id) AS last FROM messages GROUP BY room_key) AS r"
        " JOIN messages AS m ON m.id = r.last ORDER BY r.room_key"
    )
    return [StoredRoom(*row) for row in cursor.fetchall()]


# --- moderation: claimed rooms and server bans (the SQL is standard: PostgreSQL runs it too) ---


def _ban_fields(ban: Ban) -> dict[str, Any]:
    return {"mask": ban.mask, "by": ban.by, "when": ban.when, "expires": ban.expires, "reason": ban.reason}


def room_row(record: RoomRecord) -> tuple[str, str, str, str, str, str]:
    """
    Return the C{claimed_rooms} row of C{record}: key, name, owner, the operators as a JSON array
    of account keys, the bans as a JSON array of objects (mask, by, when, expires, reason), modes.
    """
    return (
        record.key, record.name, record.owner,
        json.dumps(list(record.operators), ensure_ascii=False),
        json.dumps([_ban_fields(ban) for ban in record.bans], ensure_ascii=False),
        record.modes,
    )


def room_record(row: Sequence[Any]) -> RoomRecord:
    """Return the L{RoomRecord} a C{claimed_rooms} row holds (the reverse of L{room_row})."""
    key, name, owner, operators, bans, modes = row
    return RoomRecord(
        key, name, owner, tuple(json.loads(operators)),
        tuple(Ban(b["mask"], b["by"], b["when"], b["expires"], b["reason"]) for b in json.loads(bans)),
        modes,
    )


def save_room_txn(cursor: Cursor, record: RoomRecord) -> None:
    """Keep C{record}, replacing the one kept under its key, in one statement."""
    cursor.execute(
        "INSERT INTO claimed_rooms (room_key, name, owner, operators, bans, modes) VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (room_key) DO UPDATE SET name = excluded.name, owner = excluded.owner,"
        " operators = excluded.operators, bans = excluded.bans, modes = excluded.modes",
        room_row(record),
    )


def delete_room_txn(cursor: Cursor, room_key: str) -> bool:
    """Delete the room record kept under C{room_key}; return whether there was one."""
    cursor.execute("DELETE FROM claimed_rooms WHERE room_key = ?", (room_key,))
    return bool(cursor.rowcount == 1)


def claimed_rooms_txn(cursor: Cursor) -> list[RoomRecord]:
    """Return every kept room record, in the order of their keys."""
    cursor.execute("SELECT room_key, name, owner, operators, bans, modes FROM claimed_rooms ORDER BY room_key")
    return [room_record(row) for row in cursor.fetchall()]


def add_server_ban_txn(cursor: Cursor, ban: Ban) -> None:
    """Keep the server ban C{ban}, replacing the one kept with the same mask."""
    cursor.execute(
        "INSERT INTO server_bans (mask, set_by, set_at, expires_at, reason) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (mask) DO UPDATE SET set_by = excluded.set_by, set_at = excluded.set_at,"
        " expires_at = excluded.expires_at, reason = excluded.reason",
        (ban.mask, ban.by, ban.when, ban.expires, ban.reason),
    )


def remove_server_ban_txn(cursor: Cursor, mask: str) -> bool:
    """Delete the server ban of C{mask}; return whether there was one."""
    cursor.execute("DELETE FROM server_bans WHERE mask = ?", (mask,))
    return bool(cursor.rowcount == 1)


def server_bans_txn(cursor: Cursor) -> list[Ban]:
    """Return every server ban, expired or not, in the order of their masks."""
    cursor.execute("SELECT mask, set_by, set_at, expires_at, reason FROM server_bans ORDER BY mask")
    return [Ban(*row) for row in cursor.fetchall()]


def _call(function: Callable[[], None]) -> None:
    function()


def configure_connection(connection: sqlite3.Connection) -> None:
    """Set up a new connection: WAL journal, durable commits across process crashes, wait on locks."""
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA busy_timeout = 5000")


# --- The store ------------------------------------------------------------------------------


@implementer(IChatStore)
class SqliteStore:
    """
    History, accounts, offline messages, claimed rooms and server bans in the SQLite file C{path}.

    Owns one adbapi connection pool with a single connection (SQLite allows one writer), its
    queue of messages waiting to be committed, and how many commits are under way.
    """

    def __init__(self, path: str, reactor: IReactorCore | None = None) -> None:
        self.path = path
        self._pool = adbapi.ConnectionPool(
            "sqlite3", path, check_same_thread=False, cp_min=1, cp_max=1,
            cp_openfun=configure_connection, cp_reactor=reactor,
        )
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor  # type: ignore[assignment]
        self._reactor = reactor
        self._queued: list[tuple[str, StoredMessage, Deferred[int]]] = []
        self._writes_in_flight = 0
        self._unindexed = 0  # messages stored since the search index was last brought up to date here
        self._write_soon: IDelayedCall | None = None
        self.batch_runner: Callable[[Callable[[], None]], None] = _call

    def start(self) -> Deferred[None]:
        """Open the file (created if missing) and migrate its schema."""
        self._pool.start()
        d = self._pool.runInteraction(migrate_txn)
        d.addCallback(lambda version: log.info("database {path} at schema version {version}",
                                               path=self.path, version=version))
        return d

    def stop(self) -> Deferred[None]:
        """Commit queued messages, wait for everything already asked of the database, then close."""
        if self._queued:
            self._write_queued()
        # One connection runs every interaction in turn, so this one finishes last.
        done = self._pool.runInteraction(lambda cursor: None)
        done.addBoth(lambda _: self._pool.close())
        return done

    def append_message(self, room_key: str, message: StoredMessage) -> Deferred[int]:
        """
        Queue C{message}. It is committed with everything else queued by the end of this reactor
        turn, or, while a commit is under way, by the time that one is done.
        """
        committed: Deferred[int] = Deferred()
        self._queued.append((room_key, message, committed))
        if not self._writes_in_flight and self._write_soon is None:
            self._write_soon = self._reactor.callLater(0, self._write_queued)  # type: ignore[attr-defined]
        return committed

    def _write_queued(self) -> None:
        """Commit every queued message in one transaction."""
        if self._write_soon is not None:
            if self._write_soon.active():
                self._write_soon.cancel()
            self._write_soon = None
        if not self._queued:
            return
        batch, self._queued = self._queued, []
        self._writes_in_flight += 1
        self._unindexed += len(batch)
        index = self._unindexed >= INDEX_BATCH
        if index:
            self._unindexed = 0
        writing = self._pool.runInteraction(insert_messages_txn, [(key, message) for key, message, _ in batch], index)
        writing.addBoth(self._written, batch)

    def _written(self, result: list[int] | Failure, batch: list[tuple[str, StoredMessage, Deferred[int]]]) -> None:
        self._writes_in_flight -= 1
        if isinstance(result, Failure):
            log.failure("writing {count} messages failed", result, count=len(batch))

        def fire() -> None:
            for index, (_, _, committed) in enumerate(batch):
                if isinstance(result, Failure):
                    committed.errback(result)
                else:
                    committed.callback(result[index])

        self.batch_runner(fire)
        if self._queued and not self._writes_in_flight:
            self._write_queued()

    def _write_before_reading(self) -> None:
        """Send queued messages to the database now, so that a read asked for next includes them."""
        if self._queued:
            self._write_queued()

    def recent_messages(self, room_key: str, limit: int) -> Deferred[list[StoredMessage]]:
        """Fire with the newest C{limit} messages of the room, oldest first."""
        return self.find_messages(room_key, limit, newest=True)

    def find_messages(
        self,
        room_key: str,
        limit: int,
        after: HistoryPoint | None = None,
        before: HistoryPoint | None = None,
        newest: bool = False,
    ) -> Deferred[list[StoredMessage]]:
        """Fire with at most C{limit} messages of the room between the bounds, oldest first."""
        if limit <= 0:
            return succeed([])
        self._write_before_reading()
        return self._pool.runInteraction(find_messages_txn, room_key, limit, after, before, newest)

    def search_messages(
        self, room_keys: Collection[str], text: str, limit: int, before: int | None = None
    ) -> Deferred[list[StoredMessage]]:
        """Fire with at most C{limit} messages of those rooms matching C{text}, newest first (see L{IChatStore})."""
        query = fts_query(text)
        if query is None or limit <= 0 or not room_keys:
            return succeed([])
        self._write_before_reading()
        return self._pool.runInteraction(search_messages_txn, sorted(set(room_keys)), query, limit, before)

    def room_topics(self) -> Deferred[dict[str, str]]:
        """Fire with every room's current topic by room key."""
        self._write_before_reading()
        return self._pool.runInteraction(room_topics_txn)

    def get_account(self, nick_key: str) -> Deferred[Account | None]:
        """Fire with the account registered under C{nick_key}, or None."""
        return self._pool.runInteraction(get_account_txn, nick_key)

    def create_account(self, nick_key: str, account: Account) -> Deferred[bool]:
        """Register C{account}; fire with False if the key was taken."""
        return self._pool.runInteraction(create_account_txn, nick_key, account)

    def set_password_hash(self, nick_key: str, password_hash: str) -> Deferred[None]:
        """Replace an account's password hash."""
        return self._pool.runInteraction(set_password_hash_txn, nick_key, password_hash)

    def queue_offline(self, recipient_key: str, message: OfflineMessage, limit: int) -> Deferred[bool]:
        """Keep C{message} for an offline user unless C{limit} are waiting."""
        return self._pool.runInteraction(queue_offline_txn, recipient_key, message, limit)

    def take_offline(self, recipient_key: str) -> Deferred[list[OfflineMessage]]:
        """Fire with, and delete, the messages waiting for C{recipient_key}."""
        return self._pool.runInteraction(take_offline_txn, recipient_key)

    def prune_messages(self, older_than: float | None, keep_per_room: int | None, batch: int) -> Deferred[int]:
        """Delete at most C{batch} messages due for pruning, in one transaction; fire with how many."""
        if batch <= 0 or (older_than is None and keep_per_room is None):
            return succeed(0)
        return self._pool.runInteraction(prune_messages_txn, older_than, keep_per_room, batch)

    def expire_offline(self, older_than: float) -> Deferred[int]:
        """Delete the offline messages sent before C{older_than}; fire with how many."""
        return self._pool.runInteraction(expire_offline_txn, older_than)

    def list_accounts(self) -> Deferred[list[Account]]:
        """Fire with every account, in the order of their keys."""
        return self._pool.runInteraction(list_accounts_txn)

    def delete_account(self, nick_key: str) -> Deferred[bool]:
        """Delete an account and its offline messages; fire with whether it existed."""
        return self._pool.runInteraction(delete_account_txn, nick_key)

    def room_summaries(self) -> Deferred[list[StoredRoom]]:
        """Fire with a summary of each room that has messages, in key order."""
        self._write_before_reading()
        return self._pool.runInteraction(room_summaries_txn)

    # --- moderation: claimed rooms and server bans -------------------------------------------

    def save_room(self, record: RoomRecord) -> Deferred[None]:
        """Keep C{record}, replacing any kept under its key, in one transaction."""
        return self._pool.runInteraction(save_room_txn, record)

    def delete_room(self, room_key: str) -> Deferred[bool]:
        """Forget the room record kept under C{room_key}; fire with whether there was one."""
        return self._pool.runInteraction(delete_room_txn, room_key)

    def claimed_rooms(self) -> Deferred[list[RoomRecord]]:
        """Fire with every kept room record, in the order of their keys."""
        return self._pool.runInteraction(claimed_rooms_txn)

    def add_server_ban(self, ban: Ban) -> Deferred[None]:
        """Keep the server ban C{ban}, replacing any with the same mask."""
        return self._pool.runInteraction(add_server_ban_txn, ban)

    def remove_server_ban(self, mask: str) -> Deferred[bool]:
        """Forget the server ban of C{mask}; fire with whether there was one."""
        return self._pool.runInteraction(remove_server_ban_txn, mask)

    def server_bans(self) -> Deferred[list[Ban]]:
        """Fire with every server ban, expired or not, in the order of their masks."""
        return self._pool.runInteraction(server_bans_txn)
