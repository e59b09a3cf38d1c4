"""Deliveries made in one run leave in one write per connection, and a batch of commits is one run."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from chat_twisted.outbox import Outbox
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.line import LineChatFactory
from tests.helpers import LineConnection, make_core


class CountingTransportConnection(LineConnection):
    """A LineConnection that counts the transport's write calls."""

    def __init__(self, factory: LineChatFactory, port: int) -> None:
        super().__init__(factory, port)
        self.writes = 0
        write = self.transport.write

        def counting_write(data: bytes) -> None:
            self.writes += 1
            write(data)

        self.transport.write = counting_write  # type: ignore[method-assign]


def test_as_one_runs_a_batch_of_fired_deferreds_in_one_run() -> None:
    """Deferreds fired inside as_one() run their actions in order, and on_idle is called once, after all."""
    runs: list[str] = []
    outbox = Outbox(on_idle=lambda: runs.append("idle"))
    waiting = [Deferred() for _ in range(3)]
    for number, d in enumerate(waiting):
        outbox.after(d, lambda _, n=number: runs.append(f"action {n}"), lambda failure: None)

    def fire() -> None:
        for d in waiting:
            d.callback(None)

    outbox.as_one(fire)
    assert runs == ["action 0", "action 1", "action 2", "idle"]


class BatchingStore(MemoryStore):
    """A MemoryStore whose appends wait until commit_all() fires them as one batch, through batch_runner."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Deferred[None]] = []

    def append_message(self, room_key, message):  # type: ignore[no-untyped-def]
        super().append_message(room_key, message)
        d: Deferred[None] = Deferred()
        self.waiting.append(d)
        return d

    def commit_all(self) -> None:
        waiting, self.waiting = self.waiting, []

        def fire() -> None:
            for d in waiting:
                d.callback(None)

        self.batch_runner(fire)  # type: ignore[misc]


def test_a_batch_of_commits_reaches_each_connection_in_one_write() -> None:
    """Messages committed in one batch are written to each member with a single transport write."""
    store = BatchingStore()
    core, _ = make_core(store=store, join_history=0)
    factory = LineChatFactory(core, rate=0)
    alice, bob = (CountingTransportConnection(factory, port) for port in (40001, 40002))
    for connection, nick in ((alice, "alice"), (bob, "bob")):
        connection.send(nick + "\n")
    store.commit_all()
    alice.lines(), bob.lines()
    alice.writes = bob.writes = 0
    alice.send("one\ntwo\nthree\n")
    assert bob.writes == 0
    store.commit_all()
    assert bob.writes == 1
    assert [line[11:] for line in bob.lines()] == ["alice: one", "alice: two", "alice: three"]


def test_each_run_is_flushed_before_the_next_line() -> None:
    """With a store that commits at once, each line's deliveries are written before the next line is read."""
    core, _ = make_core(join_history=0)
    factory = LineChatFactory(core, rate=0)
    alice = CountingTransportConnection(factory, 40001)
    alice.send("alice\n")
    alice.lines()
    alice.writes = 0
    alice.send("one\n\xff\ntwo\n".encode("latin-1"))
    assert alice.writes == 3
    assert [line[11:] if line.startswith("[") else line for line in alice.lines()] == [
        "alice: one", "error: line is not valid UTF-8; it was dropped", "alice: two",
    ]
