"""
``python -m chat_twisted.admin``: looking after a chat database from the command line.

    python -m chat_twisted.admin --db chat.sqlite3 accounts list
    python -m chat_twisted.admin --db chat.sqlite3 accounts reset-password alice [--password-stdin]
    python -m chat_twisted.admin --db chat.sqlite3 accounts delete alice
    python -m chat_twisted.admin --db chat.sqlite3 rooms list
    python -m chat_twisted.admin --db chat.sqlite3 bans list
    python -m chat_twisted.admin --db chat.sqlite3 backup /backups/chat-2026-01-02.sqlite3
    python -m chat_twisted.admin --db postgresql://chat@db/chat prune --history-days 90

C{--db} takes what the server's C{--db} takes: a SQLite file or a C{postgresql://} URL.

Why synchronous, without a reactor: a command-line tool does one thing and exits, so it opens one
direct connection (sqlite3 or psycopg) and calls the stores' own C{_txn} functions on it, the same
SQL the server runs, each in a transaction of its own; a reactor and a thread pool would only add
a way to get that wrong. The server may be running meanwhile. SQLite in WAL mode (which the server
sets) lets this tool read while the server writes; this tool's writes wait up to L{BUSY_TIMEOUT}
for the server's (milliseconds long) write transactions, and C{prune} deletes in batches with a
pause between them, so the server's commits get their turn. On PostgreSQL, lock waits are bounded
the same way. C{backup} uses SQLite's backup API, which copies a consistent snapshot while the
server keeps writing.

The tool never creates a database and never migrates one: that is the server's job at start-up.
Exit status: 0 done; 1 the account named does not exist (or the two passwords typed differ); 2
wrong usage, or a database this tool cannot or must not use (no such file, not a chat database,
a schema newer or older than this tool's, a database locked beyond L{BUSY_TIMEOUT}, or
C{backup} of a PostgreSQL database), with one line on stderr saying which.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from twisted.internet.defer import maybeDeferred
from twisted.python.failure import Failure

from chat_twisted.accounts import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, check_password_rules
from chat_twisted.errors import PasswordRule
from chat_twisted.model import name_key, sanitise
from chat_twisted.passwords import PasswordHasher
from chat_twisted.retention import DEFAULT_BATCH, RetentionSettings
from chat_twisted.store import postgres as postgres_sql
from chat_twisted.store import sqlite as sqlite_sql
from chat_twisted.store.postgres import is_postgres_url, redacted

T = TypeVar("T")

#: Seconds to wait for a lock the server (or anyone) holds before saying the database is in use.
BUSY_TIMEOUT = 2.0
#: Seconds C{prune} pauses between batches, so that the server's writes get the lock in between.
PRUNE_PAUSE = 0.05
#: The tables every chat database has, whatever its schema version.
CHAT_TABLES = frozenset({"schema_version", "messages", "accounts", "offline_messages"})

#: Exit statuses.
OK, NOT_FOUND, USAGE = 0, 1, 2


class AdminError(Exception):
    """A problem reported as one line on stderr, ending the command with exit status C{status}."""

    def __init__(self, message: str, status: int = USAGE) -> None:
        super().__init__(message)
        self.status = status


# --- the database ------------------------------------------------------------------------------


class Database:
    """
    One direct connection to a chat database. C{sql} is the store module (sqlite or postgres)
    whose C{_txn} functions match it; L{run} runs one of them in a transaction of its own.
    """

    sql: ModuleType
    description: str
    version: int

    connection: Any
    #: The query that lists the database's tables.
    TABLES_SQL = ""

    def run(self, txn: Callable[..., T], *args: Any) -> T:
        """Run C{txn(cursor, *args)} in one transaction, commit, and return its result."""
        try:
            try:
                result = txn(self.connection.cursor(), *args)
                self.connection.commit()
                return result
            except BaseException:
                self.connection.rollback()
                raise
        except Exception as error:
            translated = self._translate(error)
            if translated is None:
                raise
            raise translated from None

    def _translate(self, error: Exception) -> AdminError | None:
        """The one-line error the user is shown for a database error (None: not a database error)."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def tables(self) -> set[str]:
        """Return the names of the database's tables."""

        def names(cursor: Any) -> set[str]:
            cursor.execute(self.TABLES_SQL)
            return {row[0] for row in cursor.fetchall()}

        return self.run(names)

    def check_schema(self, current: bool = True) -> None:
        """
        Refuse a database that is not a chat database, or whose schema is newer than this tool
        knows; with C{current}, also one the server has not migrated to this tool's version.
        """
        missing = CHAT_TABLES - self.tables()
        if missing:
            raise AdminError(f"{self.description} is not a chat database (it has no table {', '.join(sorted(missing))})")
        latest = len(self.sql.MIGRATIONS)
        self.version = self.run(_schema_version_txn)
        if self.version > latest:
            raise AdminError(
                f"{self.description} is at schema version {self.version}, newer than this tool knows ({latest});"
                " use the admin tool of the same release as the server"
            )
        if current and self.version < latest:
            raise AdminError(
                f"{self.description} is at schema version {self.version}, older than this tool's ({latest});"
                " start the server once (it migrates the database at start-up), then try again"
            )


def _schema_version_txn(cursor: Any) -> int:
    cursor.execute("SELECT MAX(version) FROM schema_version")
    row = cursor.fetchone()
    return int(row[0] or 0) if row else 0


class SqliteDatabase(Database):
    """A SQLite file, opened read-write without ever creating it."""

    sql = sqlite_sql

    def __init__(self, path: str) -> None:
        self.description = path
        if not os.path.exists(path):
            raise AdminError(f"no database at {path} (the admin tool never creates one; check --db)")
        if os.path.isdir(path):
            raise AdminError(f"{path} is a directory, not a database file")
        uri = Path(path).resolve().as_uri() + "?mode=rw"
        try:
            self.connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT)
        except sqlite3.Error as error:
            raise AdminError(f"cannot open {path}: {error}") from None

    TABLES_SQL = "SELECT name FROM sqlite_master WHERE type = 'table'"

    def _translate(self, error: Exception) -> AdminError | None:
        if isinstance(error, sqlite3.OperationalError):
            if "locked" in str(error) or "busy" in str(error):
                return AdminError(
                    f"{self.description} is in use: another connection kept it locked for over {BUSY_TIMEOUT:g}"
                    " seconds (the server's own writes take milliseconds); try again, and check that nothing"
                    " else holds a transaction open on it"
                )
            return AdminError(f"{self.description}: {error}")
        if isinstance(error, sqlite3.DatabaseError):  # "file is not a database", and other damage
            return AdminError(f"{self.description} is not a SQLite database, or is damaged ({error})")
        return None


class PostgresDatabase(Database):
    """A PostgreSQL database given by URL; connecting never creates it."""

    sql = postgres_sql

    def __init__(self, url: str) -> None:
        import psycopg

        self.description = redacted(url)
        try:
            parameters = postgres_sql.connection_parameters(url)
        except ValueError as error:
            raise AdminError(str(error)) from None
        parameters["application_name"] = "chat_twisted admin"
        try:
            self.connection = psycopg.connect(**parameters)
        except psycopg.Error as error:
            raise AdminError(f"cannot connect to {self.description}: {_one_line(error)}") from None
        self.run(lambda cursor: cursor.execute("SELECT set_config('lock_timeout', %s, false)",
                                               (f"{int(BUSY_TIMEOUT * 1000)}ms",)))

    TABLES_SQL = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"

    def _translate(self, error: Exception) -> AdminError | None:
        import psycopg

        if isinstance(error, psycopg.errors.LockNotAvailable):
            return AdminError(
                f"{self.description} is in use: a lock this command needs was held for over {BUSY_TIMEOUT:g}"
                " seconds; try again"
            )
        if isinstance(error, psycopg.Error):
            return AdminError(f"{self.description}: {_one_line(error)}")
        return None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def open_database(db: str, current: bool = True) -> Database:
    """Open the database C{--db} names and check it is a chat database this tool may work on."""
    database: Database = PostgresDatabase(db) if is_postgres_url(db) else SqliteDatabase(db)
    try:
        database.check_schema(current)
    except BaseException:
        database.close()
        raise
    return database


# --- the commands ------------------------------------------------------------------------------


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """
    Print C{rows} under C{header}, each column as wide as its widest cell (the last one not
    padded, and no line ending in spaces when its last cells are empty).
    """
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join([cell.ljust(width) for cell, width in zip(row, widths)] + [row[-1]]).rstrip())


def accounts_list(database: Database, args: argparse.Namespace) -> int:
    """Print every account's nickname and when it was registered."""
    accounts = database.run(database.sql.list_accounts_txn)
    if not accounts:
        print("no accounts")
        return OK
    _table(("NICK", "REGISTERED (UTC)"), [(account.nick, _when(account.created)) for account in accounts])
    return OK


_PASSWORD_PROBLEMS = {
    "too_short": f"a password needs at least {MIN_PASSWORD_LENGTH} characters",
    "too_long": f"a password may have at most {MAX_PASSWORD_LENGTH} characters",
    "spaces": "a password may not contain spaces",
}


def _read_password(nick: str, from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at a prompt that does not echo it."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"New password for {nick}: ")
        if getpass.getpass("Again: ") != password:
            raise AdminError("the two passwords differ; nothing was changed", NOT_FOUND)
    try:
        return check_password_rules(password)
    except PasswordRule as error:
        raise AdminError(f"{_PASSWORD_PROBLEMS[error.problem]}; nothing was changed") from None


def hash_password(password: str) -> str:
    """Hash C{password} as the server does (L{PasswordHasher} with its default Argon2id parameters)."""
    hashed: list[Any] = []
    PasswordHasher(maybeDeferred).hash(password).addBoth(hashed.append)  # fires at once: no thread
    if isinstance(hashed[0], Failure):
        hashed[0].raiseException()
    return str(hashed[0])


def accounts_reset_password(database: Database, args: argparse.Namespace) -> int:
    """Give an account a new password, read from a prompt or stdin."""
    account = database.run(database.sql.get_account_txn, name_key(args.nick))
    if account is None:
        raise AdminError(f"no account {args.nick}", NOT_FOUND)
    password_hash = hash_password(_read_password(account.nick, args.password_stdin))
    database.run(database.sql.set_password_hash_txn, name_key(args.nick), password_hash)
    print(f"password of {account.nick} changed")
    return OK


def accounts_delete(database: Database, args: argparse.Namespace) -> int:
    """Delete an account and the offline messages waiting for it."""
    account = database.run(database.sql.get_account_txn, name_key(args.nick))
    if account is None or not database.run(database.sql.delete_account_txn, name_key(args.nick)):
        raise AdminError(f"no account {args.nick}", NOT_FOUND)
    print(f"deleted account {account.nick} and its offline messages")
    return OK


def rooms_list(database: Database, args: argparse.Namespace) -> int:
    """Print every room with messages: how many, and when the newest was sent."""
    rooms = database.run(database.sql.room_summaries_txn)
    if not rooms:
        print("no rooms with messages")
        return OK
    _table(("ROOM", "MESSAGES", "LAST MESSAGE (UTC)"), [(r.room, str(r.messages), _when(r.last)) for r in rooms])
    return OK


#: What the ROOM column of C{bans list} shows for a server-wide ban (no room name has parentheses).
SERVER_WIDE = "(server)"


def _expiry(expires: float | None, now: float) -> str:
    if expires is None:
        return "never"
    return _when(expires) + (" (expired)" if expires <= now else "")


def bans_list(database: Database, args: argparse.Namespace) -> int:
    """
    Print every server-wide ban, then the bans of each claimed room (in the order of the rooms'
    keys, each room's by mask): where it applies, its mask, who set it and when, when it expires
    (C{never}; an expired one the server has not lifted yet is marked so), and its reason (free
    text, so shown sanitised: nothing in it can act on the terminal).
    """
    now = time.time()
    bans = [(SERVER_WIDE, ban) for ban in database.run(database.sql.server_bans_txn)]
    bans += [(record.name, ban) for record in database.run(database.sql.claimed_rooms_txn)
             for ban in sorted(record.bans, key=lambda ban: ban.mask)]
    if not bans:
        print("no bans")
        return OK
    _table(("ROOM", "MASK", "SET BY", "SET (UTC)", "EXPIRES (UTC)", "REASON"),
           [(where, sanitise(ban.mask), ban.by, _when(ban.when), _expiry(ban.expires, now), sanitise(ban.reason))
            for where, ban in bans])
    return OK


def backup(database: Database, args: argparse.Namespace) -> int:
    """
    Copy the SQLite database into a new file with SQLite's backup API: one consistent snapshot,
    taken while the server keeps running. Written under a temporary name beside C{FILE}, checked,
    then renamed, so C{FILE} is never a half-written copy; an existing C{FILE} is never replaced.
    """
    assert isinstance(database, SqliteDatabase)
    target = Path(args.file)
    if target.exists():
        raise AdminError(f"{target} exists already; backup writes only a new file")
    if not target.parent.is_dir():
        raise AdminError(f"cannot write {target}: no directory {target.parent}")
    fd, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    try:
        copy = sqlite3.connect(partial)
        try:
            database.run(lambda cursor: database.connection.backup(copy))  # type: ignore[attr-defined]
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            check = copy.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            copy.close()
        if check != "ok":
            raise AdminError(f"the copy failed its check ({check}); {target} was not written")
        os.replace(partial, target)
    except sqlite3.Error as error:
        raise AdminError(f"cannot write {target}: {error}") from None
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    print(f"backed up {database.description} (schema version {database.version}) to {target},"
          f" {target.stat().st_size} bytes")
    return OK


def prune(database: Database, args: argparse.Namespace) -> int:
    """Delete what the retention options make due, now, as the server's retention service would."""
    now = time.time()
    settings = RetentionSettings.configured(args.history_days, args.history_max, args.offline_days)
    older_than, offline_before = settings.history_cutoff(now), settings.offline_cutoff(now)
    pruned = 0
    if settings.prunes_history:
        while True:
            deleted = database.run(database.sql.prune_messages_txn, older_than, settings.history_max, args.batch)
            pruned += deleted
            if deleted < args.batch:
                break
            time.sleep(PRUNE_PAUSE)
    expired = database.run(database.sql.expire_offline_txn, offline_before) if offline_before is not None else 0
    print(f"pruned {pruned} room messages, expired {expired} offline messages")
    return OK


# --- the command line --------------------------------------------------------------------------


def _days(value: str) -> float:
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {value!r}") from None
    if not days >= 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, not {value}")
    return days


def _count(minimum: int) -> Callable[[str], int]:
    def count(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return number

    return count


def make_parser() -> argparse.ArgumentParser:
    """The tool's argument parser: C{--db}, then a command (with its action, for some)."""
    parser = argparse.ArgumentParser(
        prog="python -m chat_twisted.admin",
        description="Look after a chat_twisted database: accounts, rooms, bans, backups, pruning."
        " Safe to use while the server runs.",
        epilog="Exit status: 0 done, 1 no such account, 2 usage or database problem.",
    )
    parser.add_argument("--db", "-d", required=True, metavar="PATH_OR_URL",
                        help="the server's --db: a SQLite file (never created here) or"
                             " postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    accounts = commands.add_parser("accounts", help="list, reset the password of, or delete registered nicknames")
    actions = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every account and when it was registered").set_defaults(run=accounts_list)
    reset = actions.add_parser("reset-password", help="set a new password (asked for twice, not echoed)")
    reset.add_argument("nick")
    reset.add_argument("--password-stdin", action="store_true", help="read the new password from one line of stdin")
    reset.set_defaults(run=accounts_reset_password)
    delete = actions.add_parser("delete", help="delete an account and its offline messages")
    delete.add_argument("nick")
    delete.set_defaults(run=accounts_delete)

    rooms = commands.add_parser("rooms", help="the rooms with history")
    rooms.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "list", help="each room, its message count and its newest message's time").set_defaults(run=rooms_list)

    bans = commands.add_parser("bans", help="the server-wide bans and the bans of claimed rooms")
    bans.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "list", help="every ban: where, mask, set by, when, expiry, reason").set_defaults(run=bans_list)

    copy = commands.add_parser("backup", help="copy a SQLite database to a new FILE, online and consistent")
    copy.add_argument("file", metavar="FILE")
    copy.set_defaults(run=backup)

    trim = commands.add_parser("prune", help="delete old history and offline messages now, as the server's"
                                             " --history-days, --history-max and --offline-days would")
    trim.add_argument("--history-days", type=_days, default=0, metavar="N",
                      help="delete room messages older than N days")
    trim.add_argument("--history-max", type=_count(0), default=0, metavar="N",
                      help="keep at most the newest N messages of each room")
    trim.add_argument("--offline-days", type=_days, default=0, metavar="N",
                      help="delete offline messages older than N days")
    trim.add_argument("--batch", type=_count(1), default=DEFAULT_BATCH, metavar="N",
                      help=f"messages deleted per transaction (default {DEFAULT_BATCH})")
    trim.set_defaults(run=prune)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command C{argv} (default: the process's arguments) names; return the exit status."""
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # --help, or a usage error argparse has reported
        return int(exit.code or 0)
    if args.command == "prune" and not (args.history_days or args.history_max or args.offline_days):
        print(f"{parser.prog}: prune needs --history-days, --history-max or --offline-days (above 0)", file=sys.stderr)
        return USAGE
    if args.command == "backup" and is_postgres_url(args.db):
        print(f"{parser.prog}: backup copies SQLite databases only; for PostgreSQL use pg_dump, e.g."
              f" pg_dump -Fc '{redacted(args.db)}' > {args.file}", file=sys.stderr)
        return USAGE
    try:
        database = open_database(args.db, current=args.command != "backup")
        try:
            return int(args.run(database, args))
        finally:
            database.close()
    except AdminError as error:
        print(f"{parser.prog}: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
