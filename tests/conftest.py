"""Shared pytest fixtures (the plain helpers are in tests/helpers.py), and where the garbage collector may run."""

from __future__ import annotations

import gc
import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import pytest

# The helpers' own asserts (a Deferred that has not fired, a line without its CRLF) say what they
# compared, like the tests' (this must come before anything imports tests.helpers).
pytest.register_assert_rewrite("tests.helpers")

from twisted.internet.testing import EventLoggingObserver  # noqa: E402
from twisted.logger import globalLogPublisher  # noqa: E402

import chat_twisted.client.app as client_module  # noqa: E402
from chat_twisted.client.options import ENVIRONMENT  # noqa: E402
from tests.e2e import VirtualDisplay  # noqa: E402
from tests.helpers import FakeStdio, PipedConsole  # noqa: E402

#: Tests between two collections of cyclic garbage (see L{pytest_runtest_teardown}).
_COLLECT_EVERY = 20
_tests_since_collection = 0


def pytest_configure(config: pytest.Config) -> None:
    """
    Collect cyclic garbage only on the main thread, between tests. A CI run aborted ("Fatal
    Python error: Aborted", "Garbage-collecting") when a collection started inside an adbapi
    worker thread (the PostgreSQL store's, in psycopg's connect) and finalised objects made on
    the main thread: pytest-twisted runs the reactor in a greenlet, and a greenlet must not be
    finalised from another thread. The server itself runs no greenlets, so this is the tests'
    own concern.
    """
    gc.disable()


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Every few tests, collect cyclic garbage here, on the main thread."""
    global _tests_since_collection
    _tests_since_collection += 1
    if _tests_since_collection >= _COLLECT_EVERY or nextitem is None:
        _tests_since_collection = 0
        gc.collect()


@pytest.fixture(scope="session")
def x_display(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualDisplay]:
    """
    A virtual X display (Xvfb with an X authority file of its own) for the whole session, stopped
    at its end; the test is skipped, saying why, where Xvfb or xauth is not installed.
    """
    if shutil.which("Xvfb") is None or shutil.which("xauth") is None:
        pytest.skip("no X server can be had: Xvfb and xauth are not installed (apt-get install xvfb)")
    display = VirtualDisplay(tmp_path_factory.mktemp("x-display"))
    try:
        yield display
    finally:
        display.stop()


#: The PostgreSQL server the tests make scratch databases on (these machines run one there, with
#: trust authentication; .ci/run starts it). CHAT_TEST_POSTGRES may name another, as a
#: postgresql:// URL of a database to connect to while creating and dropping the scratch ones.
POSTGRES_ADMIN_URL = os.environ.get("CHAT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """
    The URL of a maintenance database on the test PostgreSQL server, checked once per session.
    The test is skipped, saying why, only where nothing listens at that address at all; a server
    that is there but refuses the connection is an error.
    """
    import psycopg

    parts = urlsplit(POSTGRES_ADMIN_URL)
    address = (parts.hostname or "127.0.0.1", parts.port or 5432)
    try:
        socket.create_connection(address, timeout=5).close()
    except OSError as error:
        pytest.skip(f"no PostgreSQL server at {address[0]}:{address[1]} ({error}); .ci/run starts one")
    with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=5):
        pass
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """
    The URL of a new, empty database (C{chat_test_<random>}) on the test PostgreSQL server,
    dropped after the test, together with any connection the test left open to it.
    """
    import psycopg

    name = f"chat_test_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = urlunsplit(urlsplit(postgres_server)._replace(path=f"/{name}"))
    try:
        yield url
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# --- logs ---------------------------------------------------------------------------------------


@pytest.fixture
def logged() -> Iterator[EventLoggingObserver]:
    """Every log event published while the test runs."""
    observer = EventLoggingObserver()
    globalLogPublisher.addObserver(observer)
    yield observer
    globalLogPublisher.removeObserver(observer)


# --- the terminal client ------------------------------------------------------------------------


@pytest.fixture
def no_user_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """
    Neither CHAT_* variables nor a config file of whoever runs the tests reach the client. The
    client's test modules use it for every test: C{pytestmark = pytest.mark.usefixtures("no_user_settings")}.
    """
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-config"))


@pytest.fixture
def fake_stdio(monkeypatch: pytest.MonkeyPatch) -> FakeStdio:
    """Make C{run} attach its terminal side to a StringTransport instead of the real stdio."""
    fake = FakeStdio()
    monkeypatch.setattr(client_module, "stdio", SimpleNamespace(StandardIO=fake.StandardIO))
    monkeypatch.setattr(client_module, "Console", PipedConsole)
    return fake
