"""
The reactor stays responsive while a password is hashed: on the real reactor (pytest-twisted),
with the real L{PasswordHasher} in the reactor's thread pool and deliberately slow Argon2
parameters, timers fire and other users chat while a login is being checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timezone
from typing import Any

import pytest
import pytest_twisted
from argon2 import PasswordHasher as Argon2
from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool
from zope.interface import implementer

from chat_twisted.core import ChatService
from chat_twisted.interfaces import IChatClient
from chat_twisted.model import Event, Said, Welcome
from chat_twisted.passwords import PasswordHasher
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.line import LineChatFactory
from chat_twisted.wire.slash import SlashSession
from tests.helpers import LineConnection

#: The longest any single wait here may take, in seconds.
WAIT = 10.0

#: Argon2id parameters that make one hash (or check) take about a third of a second here.
SLOW_ARGON2 = dict(time_cost=8, memory_cost=64 * 1024, parallelism=1)

#: How soon the timer that must not be held up by a login is due, in seconds.
TICK = 0.01


def threaded_hasher() -> PasswordHasher:
    """The hasher as tap.makeService builds it (the reactor's thread pool), but slow."""
    pool = reactor.getThreadPool()  # type: ignore[attr-defined]
    return PasswordHasher(lambda f, *args: deferToThreadPool(reactor, pool, f, *args), Argon2(**SLOW_ARGON2))


def inline_hasher() -> PasswordHasher:
    """A slow hasher that (wrongly) hashes on the reactor thread: the control case."""
    return PasswordHasher(maybeDeferred, Argon2(**SLOW_ARGON2))


def make_core(hasher: PasswordHasher) -> ChatService:
    core = ChatService(
        clock=reactor, store=MemoryStore(), hasher=hasher, timezone=timezone.utc,  # type: ignore[arg-type]
    )
    core.startService()
    return core


def bounded(d: Deferred[Any] | None) -> Deferred[Any]:
    """C{d} (None: a line handled at once), failed with a timeout if it has not fired within L{WAIT} seconds."""
    if d is None:
        return succeed(None)
    return d.addTimeout(WAIT, reactor)  # type: ignore[arg-type]


def connect(core: ChatService, client: OrderedClient, peer: str) -> SlashSession:
    """Start a session for C{client} and speak the line dialect over it."""
    return SlashSession(core.connect(client, peer))


async def wait_until(condition: Callable[[], bool]) -> None:
    """Wait on the reactor, polling, until C{condition()} holds; fail after L{WAIT} seconds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await deferLater(reactor, 0.005, lambda: None)  # type: ignore[arg-type]


@implementer(IChatClient)
class OrderedClient:
    """A client that records what it is shown in one list shared by every client, with its name."""

    def __init__(self, name: str, order: list[tuple[str, object]]) -> None:
        self.name = name
        self.order = order

    def deliver(self, event: Event) -> None:
        self.order.append((self.name, event))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.order.append((self.name, "closed"))


async def register(core: ChatService, nick: str, password: str, order: list[tuple[str, object]]) -> None:
    """Register C{nick} through the core, then log that session out with /quit."""
    session = connect(core, OrderedClient("registrant", order), "127.0.0.1:40001")
    await bounded(session.handle_line(nick))
    await bounded(session.handle_line(f"/register {password}"))
    await bounded(session.handle_line("/quit"))


@pytest.mark.parametrize("in_thread", [True, False], ids=["thread-pool", "inline-control"])
@pytest_twisted.ensureDeferred
async def test_timer_and_chat_go_on_while_a_login_hashes(in_thread: bool) -> None:
    """A 10 ms timer and another user's message beat a slow login, unless (the control) it hashes inline."""
    order: list[tuple[str, object]] = []
    core = make_core(threaded_hasher() if in_thread else inline_hasher())
    await register(core, "alice", "pw1234", order)
    carol = connect(core, OrderedClient("carol", order), "127.0.0.1:40002")
    await bounded(carol.handle_line("carol"))
    newcomer = connect(core, OrderedClient("newcomer", order), "127.0.0.1:40003")
    del order[:]

    def tick() -> None:
        order.append(("timer", "fired"))
        carol.handle_line("tick while alice logs in")

    reactor.callLater(TICK, tick)  # type: ignore[attr-defined]
    await bounded(newcomer.handle_line("/login alice pw1234"))
    order.append(("login", "done"))
    if not in_thread:
        # The control: hashing on the reactor thread holds the timer back until the login is over.
        await wait_until(lambda: ("timer", "fired") in order)
        assert order.index(("login", "done")) < order.index(("timer", "fired"))
        core.stopService()
        return

    # Order only: the timer and carol's line come before the login is done (SLOW_ARGON2 makes a
    # hash last many ticks; should it ever be cheaper than one, this fails rather than prove nothing).
    before_login = order[: order.index(("login", "done"))]
    assert ("timer", "fired") in before_login, f"the timer waited for the login (or the hash took under {TICK}s): {order}"
    said = [event.text for who, event in before_login if who == "carol" and isinstance(event, Said)]
    assert said == ["tick while alice logs in"], f"carol's message waited for the login: {order}"
    welcome = [i for i, (who, event) in enumerate(order) if who == "newcomer" and isinstance(event, Welcome)]
    assert welcome and before_login.index(("timer", "fired")) < welcome[0], order
    core.stopService()


@pytest_twisted.ensureDeferred
async def test_line_door_holds_only_the_connection_that_is_logging_in() -> None:
    """Over the line door, the user logging in waits for the hash (in order) while another chats on."""
    core = make_core(threaded_hasher())
    factory = LineChatFactory(core)
    await register(core, "alice", "pw1234", [])
    carol = LineConnection(factory, port=40002)
    carol.send("carol\n")
    carol.lines()
    alice = LineConnection(factory, port=40003)
    alice.lines()

    # The login and a message after it, in one read: the message must wait for the login.
    alice.send("/login alice pw1234\nfirst words\n")
    # The door holds alice's next line (waiting in her input queue) while the password is checked.
    assert alice.protocol._input.waiting_bytes == len(b"first words\n")
    alice_lines: list[str] = []
    carol_lines: list[str] = []
    reactor.callLater(TICK, carol.send, "still chatting\n")  # type: ignore[attr-defined]
    await wait_until(lambda: shown(carol, carol_lines, "carol: still chatting"))
    assert not shown(alice, alice_lines, "Welcome")
    assert alice.protocol._input.waiting_bytes == len(b"first words\n")

    await wait_until(lambda: shown(alice, alice_lines, "alice: first words"))
    assert index_of(alice_lines, "* Welcome, alice!") < index_of(alice_lines, "alice: first words")
    await wait_until(lambda: shown(carol, carol_lines, "alice: first words"))
    assert index_of(carol_lines, "carol: still chatting") < index_of(carol_lines, "* alice joined lobby")
    core.stopService()


def shown(connection: LineConnection, lines: list[str], text: str) -> bool:
    """Add what C{connection} was written since last time to C{lines}; return whether one has C{text}."""
    lines.extend(connection.lines())
    return any(text in line for line in lines)


def index_of(lines: list[str], text: str) -> int:
    """The index of the first of C{lines} that contains C{text}."""
    found = [i for i, line in enumerate(lines) if text in line]
    assert found, f"{text!r} not in {lines}"
    return found[0]
