"""
Large rooms: above --quiet-joins-above members, a newcomer's joining is shown to the others only
once it speaks, and its leaving only if it did; /who stays exact, and a storm of N logins into
one room delivers O(N) events, not O(N^2).
"""

from __future__ import annotations

from chat_twisted import requests as rq
from chat_twisted.model import LOBBY, Joined, Left, NickChanged, Said, UserQuit, WhoList
from tests.fakes import RecordingClient
from tests.helpers import START, make_core, ok, user


def crowd(size: int = 3, threshold: int = 3) -> tuple[object, list[tuple[RecordingClient, object]]]:
    """A core whose rooms are large above C{threshold}, with C{size} users in the lobby, their events forgotten."""
    core, _ = make_core(quiet_joins_above=threshold)
    members = [user(core, f"user{number}", LOBBY, port=number) for number in range(size)]
    for client, _ in members:
        client.take()
    return core, members


def test_joining_a_large_room_is_shown_only_to_the_newcomer_and_who_stays_exact() -> None:
    """Nobody already in a large room is shown a newcomer joining; /who lists it all the same."""
    core, members = crowd()
    late_c, late = user(core, "late", LOBBY, port=99)  # type: ignore[arg-type]
    assert [client.take() for client, _ in members] == [[], [], []]
    ok(late.submit(rq.Who(LOBBY)))
    assert late_c.take()[-1] == WhoList(LOBBY, ("late", "user0", "user1", "user2"))


def test_the_newcomer_is_shown_joining_just_before_its_first_words() -> None:
    """The others see the newcomer join, once, just before its first message."""
    core, members = crowd()
    late_c, late = user(core, "late", LOBBY, port=99)  # type: ignore[arg-type]
    ok(late.submit(rq.Say(LOBBY, "hello")))
    ok(late.submit(rq.Say(LOBBY, "again")))
    hello, again = Said(LOBBY, "late", "hello", START), Said(LOBBY, "late", "again", START)
    assert members[0][0].take() == [Joined(LOBBY, "late"), hello, again]
    assert late_c.take() == [hello, again]


def test_leaving_unseen_is_shown_only_to_the_leaver() -> None:
    """A newcomer who leaves or quits without a word is not shown leaving; one who spoke is."""
    core, members = crowd()
    late_c, late = user(core, "late", LOBBY, port=99)  # type: ignore[arg-type]
    ok(late.submit(rq.Join("tea")))
    ok(late.submit(rq.Part(LOBBY, "bye")))
    assert Left(LOBBY, "late", "bye") in late_c.take()
    assert members[0][0].take() == []
    _, other = user(core, "other", LOBBY, port=98)  # type: ignore[arg-type]
    ok(other.submit(rq.Quit("gone")))
    assert members[1][0].take() == []
    spoke_c, spoke = user(core, "spoke", LOBBY, port=97)  # type: ignore[arg-type]
    ok(spoke.submit(rq.Say(LOBBY, "hi")))
    members[2][0].take()
    ok(spoke.submit(rq.Quit("gone")))
    assert members[2][0].take() == [UserQuit("spoke", "gone", (LOBBY,))]


def test_a_renamed_newcomer_is_shown_joining_under_its_new_name() -> None:
    """A newcomer renamed before speaking is shown joining under the name it speaks with."""
    core, members = crowd()
    _, late = user(core, "late", LOBBY, port=99)  # type: ignore[arg-type]
    ok(late.submit(rq.Nick("later")))
    assert members[0][0].take() == [NickChanged("late", "later")]
    ok(late.submit(rq.Say(LOBBY, "hi")))
    assert members[0][0].take() == [Joined(LOBBY, "later"), Said(LOBBY, "later", "hi", START)]


def test_a_login_storm_into_one_room_costs_linear_deliveries() -> None:
    """1000 logins into a room large above 50: joins and Welcomes delivered grow with N, not N squared."""
    core, _ = make_core(quiet_joins_above=50, join_history=0)
    before = core.delivery.delivered
    for number in range(1000):
        user(core, f"storm{number}", LOBBY, port=number)
    delivered = core.delivery.delivered - before
    assert 1000 * 2 <= delivered <= 50 * 51 // 2 + 1000 * 3  # below the threshold every join is shown; then ~2 each


class CountingMembers(dict):  # type: ignore[type-arg]
    """A room's members that count how often someone walks through them."""

    walks = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        CountingMembers.walks += 1
        return super().__iter__()


def test_shutting_down_does_not_walk_the_room_for_each_user() -> None:
    """At shutdown nobody is told of others leaving, so a room of N is not walked N times (that was O(N^2))."""
    core, _ = make_core(join_history=0)
    sessions = [user(core, f"idle{number}", LOBBY, port=number)[1] for number in range(300)]
    lobby = core.rooms.find(LOBBY)
    lobby.members = CountingMembers(lobby.members)
    CountingMembers.walks = 0
    core.stopService()
    for session in sessions:  # each connection, closed, reports its end
        session.disconnected()
    assert core.sessions == frozenset() and not lobby.members
    assert CountingMembers.walks < 10
