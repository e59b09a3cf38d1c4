"""Shared pytest fixtures."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e import VirtualDisplay


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
