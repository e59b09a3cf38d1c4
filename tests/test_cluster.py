"""
Several server processes sharing one chat, as two cores in one test on one LocalBus hub and one
clock (and one store, as they would share PostgreSQL): users on either see the same rooms,
members, messages in one order, private messages and moderation; a process that dies or stops
leaves its users' rooms; a lost link is survived and reported.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from chat_twisted import requests as rq
from chat_twisted.bus.local import LocalBus
from chat_twisted.core import SHUTDOWN_GRACE, ChatService
from chat_twisted.errors import NickInUse, NotOperator, Unavailable
from chat_twisted.model import (
    LOBBY,
    Goodbye,
    Joined,
    Kicked,
    Left,
    ModeChanged,
    NickChanged,
    PrivateMessage,
    RoomCutOff,
    Said,
    TopicChanged,
    TopicInfo,
    UserQuit,
    Wallops,
    WhoList,
)
from chat_twisted.peers import COMEBACK, LEASE, RENEW
from chat_twisted.store.memory import MemoryStore
from tests.fakes import RecordingClient
from tests.helpers import PASSWORD, START, error_of, make_core, ok, success_result_of, user


class Cluster:
    """Two cores, A and B, on one hub, one clock and one store, started."""

    def __init__(self, **options: Any) -> None:
        self.store = MemoryStore()
        self.a, self.clock = make_core(store=self.store, bus=None, **options)
        self.bus_a = LocalBus(self.clock)
        self.bus_b = self.bus_a.sibling()
        self.a = self.core(self.bus_a, **options)
        self.b = self.core(self.bus_b, **options)

    def core(self, bus: LocalBus, **options: Any) -> ChatService:
        """Another started core of the cluster, on C{bus}."""
        core = ChatService(clock=self.clock, store=self.store, hasher=self.a.logins.accounts._hasher,  # type: ignore[attr-defined]
                           bus=bus, **options)
        core.startService()
        return core

    def advance(self, seconds: float) -> None:
        """Let C{seconds} pass, a renewal period at a time."""
        while seconds > 0:
            step = min(seconds, RENEW)
            self.clock.advance(step)
            seconds -= step


def said(client: RecordingClient) -> list[str]:
    """The room messages C{client} was shown, as C{nick: text}, forgetting everything it was shown."""
    return [f"{event.nick}: {event.text}" for event in client.take() if isinstance(event, Said)]


def test_members_of_both_processes_share_a_room() -> None:
    """Joins, /who and /rooms show the users of both processes."""
    cluster = Cluster()
    alice_c, alice = user(cluster.a, "alice", LOBBY, port=1)
    bob_c, bob = user(cluster.b, "bob", LOBBY, port=2)
    assert alice_c.take() == [Joined(LOBBY, "bob")]
    ok(alice.submit(rq.Who(LOBBY)))
    ok(bob.submit(rq.Who(LOBBY)))
    assert alice_c.take() == bob_c.take() == [WhoList(LOBBY, ("alice", "bob"))]
    ok(bob.submit(rq.Join("tea")))
    ok(alice.submit(rq.Rooms()))
    rooms = alice_c.take()[-1]
    assert [(room.name, room.members) for room in rooms.rooms] == [(LOBBY, 2), ("tea", 1)]  # type: ignore[attr-defined]


def test_messages_from_both_processes_arrive_in_one_order() -> None:
    """Whoever speaks, wherever, every member on every process sees the same messages in the same order, once."""
    cluster = Cluster()
    alice_c, alice = user(cluster.a, "alice", LOBBY, port=1)
    bob_c, bob = user(cluster.b, "bob", LOBBY, port=2)
    carol_c, carol = user(cluster.b, "carol", LOBBY, port=3)
    for turn in range(5):
        ok(alice.submit(rq.Say(LOBBY, f"a{turn}")))
        ok(bob.submit(rq.Say(LOBBY, f"b{turn}")))
        ok(carol.submit(rq.Say(LOBBY, f"c{turn}")))
    expected = [f"{nick}: {nick[0]}{turn}" for turn in range(5) for nick in ("alice", "bob", "carol")]
    assert said(alice_c) == said(bob_c) == said(carol_c) == expected
    history = success_result_of(cluster.store.recent_messages(LOBBY, 50))
    assert [f"{message.sender}: {message.text}" for message in history] == expected


def test_a_nickname_is_unique_across_processes() -> None:
    """A nickname in use on one process is refused on the other, and free again once its user left."""
    cluster = Cluster()
    _, bob = user(cluster.b, "bob", LOBBY, port=2)
    client = RecordingClient("127.0.0.1:3")
    session = cluster.a.connect(client, client.peer)
    assert error_of(session.submit(rq.Login("Bob", None, (LOBBY,)))) == NickInUse("Bob")
    ok(bob.submit(rq.Nick("robert")))
    ok(session.submit(rq.Login("Bob", None, (LOBBY,))))
    client.take()
    _, other = user(cluster.b, "someone", LOBBY, port=4)
    assert error_of(other.submit(rq.Nick("BOB"))) == NickInUse("BOB")


def test_nick_changes_private_messages_and_away_cross_processes() -> None:
    """A rename is seen on the other process; a private message reaches a user there, and its echo the sender."""
    cluster = Cluster()
    alice_c, alice = user(cluster.a, "alice", LOBBY, port=1)
    bob_c, bob = user(cluster.b, "bob", LOBBY, port=2)
    alice_c.take()
    ok(bob.submit(rq.Nick("robert")))
    assert alice_c.take() == [NickChanged("bob", "robert")]
    ok(alice.submit(rq.Tell("Robert", "psst")))
    when = cluster.clock.seconds()
    assert bob_c.take()[-1] == PrivateMessage("alice", "robert", "psst", when)
    assert alice_c.take() == [PrivateMessage("alice", "robert", "psst", when, echo=True)]


def test_a_dead_process_users_leave_and_their_nicknames_free_themselves() -> None:
    """A process that stops renewing (killed): within one lease and a sweep its users quit "connection lost"."""
    cluster = Cluster()
    alice_c, _ = user(cluster.a, "alice", LOBBY, port=1)
    user(cluster.b, "bob", LOBBY, "tea", port=2)
    alice_c.take()
    cluster.bus_b.cut()  # as if the process were killed: it renews nothing any more
    cluster.advance(LEASE + 2 * RENEW)
    assert alice_c.take() == [UserQuit("bob", "connection lost", (LOBBY,))]
    client = RecordingClient("127.0.0.1:9")
    session = cluster.a.connect(client, client.peer)
    ok(session.submit(rq.Login("bob", None, (LOBBY,))))


def test_a_process_shutting_down_tells_the_others_its_users_leave() -> None:
    """SIGTERM on one process: the other sees its users leave "server shutting down" at once."""
    cluster = Cluster()
    alice_c, _ = user(cluster.a, "alice", LOBBY, port=1)
    user(cluster.b, "bob", LOBBY, port=2)
    alice_c.take()
    cluster.b.stopService()
    cluster.clock.advance(SHUTDOWN_GRACE)
    assert alice_c.take() == [UserQuit("bob", "server shutting down", (LOBBY,))]


def test_a_lost_link_is_survived_and_reported() -> None:
    """While cut off a process serves its own users; once the link is back they are told the room was cut off."""
    cluster = Cluster()
    alice_c, alice = user(cluster.a, "alice", LOBBY, port=1)
    anna_c, anna = user(cluster.a, "anna", LOBBY, port=2)
    bob_c, bob = user(cluster.b, "bob", LOBBY, port=3)
    alice_c.take()
    anna_c.take()
    cluster.bus_a.cut()
    ok(alice.submit(rq.Say(LOBBY, "still here")))
    assert said(anna_c) == ["alice: still here"]
    assert said(bob_c) == []
    ok(bob.submit(rq.Say(LOBBY, "anyone?")))  # missed by A: the gap it will be told of
    assert error_of(alice.submit(rq.Tell("bob", "psst"))) == Unavailable("servers")
    cluster.bus_a.restore()
    assert RoomCutOff(LOBBY) in anna_c.take()
    alice_c.take()
    ok(bob.submit(rq.Say(LOBBY, "back")))
    assert said(alice_c) == ["bob: back"]


def test_moderation_reaches_the_other_process() -> None:
    """An operator on one process ops and kicks a member on the other; everyone sees it."""
    cluster = Cluster()
    alice_c, alice = user(cluster.a, "alice", "tea", port=1)
    bob_c, bob = user(cluster.b, "bob", "tea", port=2)
    carol_c, carol = user(cluster.b, "carol", "tea", port=3)
    for client in (alice_c, bob_c, carol_c):
        client.take()
    assert error_of(bob.submit(rq.Kick("tea", "carol"))) == NotOperator("tea")
    ok(alice.submit(rq.SetOperator("tea", "bob")))
    assert bob_c.take() == carol_c.take() == alice_c.take() == [ModeChanged("tea", "alice", "+o", "bob")]
    ok(bob.submit(rq.Kick("tea", "alice", "bye")))
    assert alice_c.take() == bob_c.take() == carol_c.take() == [Kicked("tea", "bob", "alice", "bye")]
    ok(carol.submit(rq.Who("tea")))
    assert carol_c.take() == [WhoList("tea", ("bob", "carol"), operators=("bob",))]
    ok(alice.submit(rq.Join("tea")))
    assert bob_c.take() == [Joined("tea", "alice")]
    ok(alice.submit(rq.Part("tea", "later")))
    assert carol_c.take()[-1] == Left("tea", "alice", "later")


def test_whois_and_topics_cross_processes() -> None:
    """/whois answers for a user of the other process; a topic set there is shown here."""
    cluster = Cluster()
    alice_c, alice = user(cluster.a, "alice", LOBBY, port=1)
    _, bob = user(cluster.b, "bob", LOBBY, "tea", port=2)
    ok(bob.submit(rq.Away("lunch")))
    ok(alice.submit(rq.Whois(("bob",))))
    (info,) = alice_c.take()[-1].users  # type: ignore[attr-defined]
    assert (info.nick, info.away, info.rooms, info.since) == ("bob", "lunch", (LOBBY, "tea"), START)
    ok(alice.submit(rq.Join("tea")))
    ok(bob.submit(rq.Topic("tea", "earl grey")))
    assert TopicChanged("tea", "bob", "earl grey", START) in alice_c.take()
    ok(alice.submit(rq.Topic("tea")))
    assert alice_c.take() == [TopicInfo("tea", "earl grey", "bob", START)]


def test_a_registered_owner_takes_the_nickname_back_from_the_other_process() -> None:
    """The password of a registered nickname held on the other process closes that holder there."""
    cluster = Cluster()
    bob_c, bob = user(cluster.b, "bob", LOBBY, port=2)
    ok(bob.submit(rq.Register(PASSWORD)))
    ok(bob.submit(rq.Logout()))
    _, intruder = user(cluster.b, "carol", LOBBY, port=3)
    ok(intruder.submit(rq.Nick("carol2")))
    client = RecordingClient("127.0.0.1:4")
    session = cluster.b.connect(client, client.peer)
    ok(session.submit(rq.Login("bob", PASSWORD, (LOBBY,))))
    owner_c = RecordingClient("127.0.0.1:5")
    owner = cluster.a.connect(owner_c, owner_c.peer)
    ok(owner.submit(rq.Login("bob", PASSWORD, (LOBBY,))))
    assert Goodbye("logged in from elsewhere") in client.take()
    assert client.closed
    assert owner.nick == "bob"


def test_server_bans_and_wallops_reach_every_process() -> None:
    """A server operator on one process bans an account: its user on the other is closed; /wall reaches both."""
    cluster = Cluster(operators=["root"])
    root_c, root = user(cluster.a, "root", LOBBY, port=1)
    ok(root.submit(rq.Register(PASSWORD)))
    zed_c, zed = user(cluster.b, "zed", LOBBY, port=2)
    ok(zed.submit(rq.Register(PASSWORD)))
    bob_c, _ = user(cluster.b, "bob", LOBBY, port=3)
    ok(root.submit(rq.Wall("maintenance at noon")))
    assert Wallops("root", "maintenance at noon", START) in bob_c.take()
    ok(root.submit(rq.ServerBan("account:zed")))
    assert zed_c.closed
    assert UserQuit("zed", "banned", (LOBBY,)) in root_c.take()


def test_a_large_room_shows_a_newcomer_of_the_other_process_once_it_speaks() -> None:
    """Above the threshold, a join on the other process is shown here only just before the newcomer's words."""
    cluster = Cluster(quiet_joins_above=1)
    alice_c, _ = user(cluster.a, "alice", LOBBY, port=1)
    user(cluster.b, "bob", LOBBY, port=2)
    alice_c.take()
    _, carol = user(cluster.b, "carol", LOBBY, port=3)
    assert alice_c.take() == []
    ok(carol.submit(rq.Say(LOBBY, "hi")))
    assert alice_c.take() == [Joined(LOBBY, "carol"), Said(LOBBY, "carol", "hi", START)]


def test_a_room_message_that_never_comes_back_is_shown_here_alone() -> None:
    """A process whose subscription is lost while its message is on its way shows it here after a while; nothing waits forever."""
    cluster = Cluster()
    alice_c, alice = user(cluster.a, "alice", LOBBY, port=1)
    anna_c, _ = user(cluster.a, "anna", LOBBY, port=2)
    alice_c.take()
    # Only A's subscription is lost (its publishes still go through): it hears nothing back.
    receive, cluster.bus_a._receive = cluster.bus_a._receive, lambda *message: None  # type: ignore[method-assign]
    ok(alice.submit(rq.Say(LOBBY, "lost on the way")))
    ok(alice.submit(rq.Time()))
    assert said(anna_c) == []
    cluster.clock.advance(COMEBACK)
    events = alice_c.take()
    assert [type(event).__name__ for event in events] == ["Said", "ServerTime"]
    cluster.bus_a._receive = receive  # type: ignore[method-assign]
