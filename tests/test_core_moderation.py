"""
Tests for moderation in ChatService, through the typed requests every door submits: room operators,
voices, kicks, bans, invites, modes and claims; server operators' kill, server bans and wall; and
what who, whois, rooms and the metrics show of it. RecordingClient fakes, a fake clock, MemoryStore.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from chat_twisted import requests as rq
from chat_twisted.core import SHUTDOWN_GRACE, ChatService
from chat_twisted.errors import (
    AlreadyClaimed,
    Banned,
    CannotClaim,
    CannotSpeak,
    EmptyText,
    InvalidMask,
    InviteOnly,
    NoSuchBan,
    NoSuchRoom,
    NoSuchUser,
    NotIdentified,
    NotInRoom,
    NotOperator,
    NotServerOperator,
    NotStored,
    Protected,
    ServerBanned,
    UnknownMode,
    UserInRoom,
    UserNotInRoom,
)
from chat_twisted.metrics import MetricsHooks
from chat_twisted.model import (
    LOBBY,
    Action,
    Ban,
    BanList,
    ErrorReply,
    Invited,
    Joined,
    Kicked,
    Killed,
    ModeChanged,
    RoomClaimed,
    RoomList,
    RoomModes,
    RoomRecord,
    RoomSummary,
    Said,
    ServerBanChanged,
    TopicChanged,
    TopicInfo,
    UserInfo,
    UserList,
    UserQuit,
    Wallops,
    WhoList,
)
from chat_twisted.sessions import Session
from chat_twisted.store.memory import MemoryStore
from tests.fakes import RecordingClient
from tests.helpers import PASSWORD, START, error_of, make_core, ok, success_result_of, user

#: The account named by --oper in these tests.
ROOT = "root"

_Member = tuple[RecordingClient, Session]


def moderated_core(**options: Any) -> tuple[ChatService, Clock]:
    """A core from L{make_core} whose one server operator is the account C{root}, started (claims and bans loaded)."""
    options.setdefault("operators", [ROOT])
    core, clock = make_core(**options)
    core.startService()
    return core, clock


def registered(core: ChatService, nick: str, *rooms: str, port: int) -> _Member:
    """
    Log C{nick} in as a guest into C{rooms}, then register it (it is identified from then on);
    forget what it was shown (others in its rooms are shown its AccountChanged).
    """
    client, session = user(core, nick, *rooms, port=port)
    ok(session.submit(rq.Register(PASSWORD)))
    client.take()
    return client, session


def arrive(core: ChatService, peer: str) -> tuple[RecordingClient, Session]:
    """Connect a RecordingClient from C{peer}, without logging in."""
    client = RecordingClient(peer)
    return client, core.connect(client, peer)


def nobody_heard(*clients: RecordingClient) -> None:
    """Forget what C{clients} have been shown so far."""
    for client in clients:
        client.take()


def tea(**options: Any) -> tuple[ChatService, Clock, _Member, _Member, _Member, _Member]:
    """
    A core with alice (first in, so operator), bob and carol in the lobby and the room tea, and
    dave in the lobby only; all of them guests, every earlier event forgotten.
    """
    core, clock = moderated_core(**options)
    alice = user(core, "alice", LOBBY, "tea", port=1)
    bob = user(core, "bob", LOBBY, "tea", port=2)
    carol = user(core, "carol", LOBBY, "tea", port=3)
    dave = user(core, "dave", LOBBY, port=4)
    nobody_heard(alice[0], bob[0], carol[0], dave[0])
    return core, clock, alice, bob, carol, dave


def who(member: _Member, room: str) -> WhoList:
    """Ask who is in C{room} as C{member}; return the answer (nothing else it was shown is kept)."""
    client, session = member
    client.take()
    ok(session.submit(rq.Who(room)))
    (answer,) = client.take()
    assert isinstance(answer, WhoList)
    return answer


class BanCounter(MetricsHooks):
    """Metrics hooks that count the bans applied (and nothing else)."""

    def __init__(self) -> None:
        self.bans = 0

    def ban_applied(self) -> None:
        self.bans += 1


# --- the first to enter a room is its operator ---------------------------------------------------


def test_first_to_enter_a_new_room_is_its_operator() -> None:
    """The first to enter a new room becomes its operator, silently; those after are not; the lobby has none."""
    core, _ = moderated_core()
    alice_c, alice = user(core, "alice", LOBBY, port=1)
    bob_c, bob = user(core, "bob", LOBBY, port=2)
    nobody_heard(alice_c)
    ok(alice.submit(rq.Join("tea")))
    assert alice_c.take() == [Joined("tea", "alice")]
    ok(bob.submit(rq.Join("tea")))
    assert who((alice_c, alice), "tea") == WhoList("tea", ("alice", "bob"), (), ("alice",), ())
    assert who((alice_c, alice), LOBBY) == WhoList(LOBBY, ("alice", "bob"), (), (), ())


def test_operator_status_ends_on_leaving_and_a_new_room_has_a_new_operator() -> None:
    """An operator who leaves is not one on coming back; once a room empties, its next first comer is."""
    core, _, alice, bob, carol, _ = tea()
    ok(alice[1].submit(rq.Part("tea")))
    ok(alice[1].submit(rq.Join("tea")))
    assert who(alice, "tea").operators == ()
    for member in (alice, bob, carol):
        ok(member[1].submit(rq.Part("tea")))
    ok(carol[1].submit(rq.Join("tea")))
    ok(bob[1].submit(rq.Join("tea")))
    assert who(bob, "tea") == WhoList("tea", ("bob", "carol"), (), ("carol",), ())


def test_operator_status_follows_a_rename() -> None:
    """Operator status belongs to the user, not the nickname: after a rename who lists the new one."""
    core, _, alice, bob, _, _ = tea()
    ok(alice[1].submit(rq.Nick("alicia")))
    assert who(bob, "tea").operators == ("alicia",)
    ok(alice[1].submit(rq.SetModes("tea", "+m")))


# --- SetOperator ---------------------------------------------------------------------------------


def test_op_and_deop_are_shown_to_the_room() -> None:
    """SetOperator gives and takes operator status: every member (the actor too) sees a ModeChanged, others nothing."""
    core, _, alice, bob, carol, dave = tea()
    ok(alice[1].submit(rq.SetOperator("tea", "BOB")))
    for client in (alice[0], bob[0], carol[0]):
        assert client.take() == [ModeChanged("tea", "alice", "+o", "bob")]
    assert dave[0].take() == []
    assert who(carol, "tea").operators == ("alice", "bob")
    ok(bob[1].submit(rq.SetOperator("tea", "alice", give=False)))
    for client in (alice[0], bob[0], carol[0]):
        assert client.take() == [ModeChanged("tea", "bob", "-o", "alice")]
    assert who(carol, "tea").operators == ("bob",)
    assert error_of(alice[1].submit(rq.SetModes("tea", "+m"))) == NotOperator("tea")


def test_op_twice_and_deop_of_a_non_operator_are_silent() -> None:
    """Giving operator status to an operator, or taking it from a non-operator, succeeds and shows nothing."""
    core, _, alice, bob, carol, _ = tea()
    ok(alice[1].submit(rq.SetOperator("tea", "bob")))
    nobody_heard(alice[0], bob[0], carol[0])
    ok(alice[1].submit(rq.SetOperator("tea", "bob")))
    ok(alice[1].submit(rq.SetOperator("tea", "carol", give=False)))
    assert [alice[0].take(), bob[0].take(), carol[0].take()] == [[], [], []]


@pytest.mark.parametrize(
    ("request_", "by_operator", "error"),
    [
        (rq.SetOperator("tea", "carol"), False, NotOperator("tea")),
        (rq.SetOperator("tea", "alice", give=False), False, NotOperator("tea")),
        (rq.SetOperator("tea", "nobody"), True, NoSuchUser("nobody")),
        (rq.SetOperator("tea", "dave"), True, UserNotInRoom("dave", "tea")),
        (rq.SetOperator("elsewhere", "carol"), True, NotInRoom("elsewhere")),
    ],
)
def test_op_refusals(request_: rq.SetOperator, by_operator: bool, error: Exception) -> None:
    """SetOperator by a non-operator, of an unknown user, of a non-member, or in a room one is not in, is refused."""
    core, _, alice, bob, carol, _ = tea()
    asker = alice if by_operator else bob
    assert error_of(asker[1].submit(request_)) == error
    assert [alice[0].take(), bob[0].take(), carol[0].take()] == [[], [], []]


# --- SetVoice and moderated rooms ----------------------------------------------------------------


def test_moderated_room_hears_only_operators_and_voiced() -> None:
    """In a +m room operators and voiced members speak; others get CannotSpeak(moderated), for Say and Act."""
    core, _, alice, bob, carol, _ = tea()
    ok(alice[1].submit(rq.SetModes("tea", "+m")))
    ok(alice[1].submit(rq.SetVoice("tea", "bob")))
    for client in (alice[0], bob[0], carol[0]):
        assert client.take() == [ModeChanged("tea", "alice", "+m"), ModeChanged("tea", "alice", "+v", "bob")]
    assert who(carol, "tea") == WhoList("tea", ("alice", "bob", "carol"), (), ("alice",), ("bob",))
    ok(alice[1].submit(rq.Say("tea", "order")))
    ok(bob[1].submit(rq.Say("tea", "thanks")))
    assert carol[0].take() == [Said("tea", "alice", "order", START), Said("tea", "bob", "thanks", START)]
    assert error_of(carol[1].submit(rq.Say("tea", "me too"))) == CannotSpeak("tea", "moderated")
    assert error_of(carol[1].submit(rq.Act("tea", "waves"))) == CannotSpeak("tea", "moderated")
    ok(carol[1].submit(rq.Say(LOBBY, "the lobby is not moderated")))
    ok(alice[1].submit(rq.SetVoice("tea", "bob", give=False)))
    assert carol[0].take() == [Said(LOBBY, "carol", "the lobby is not moderated", START),
                               ModeChanged("tea", "alice", "-v", "bob")]
    assert error_of(bob[1].submit(rq.Say("tea", "hello?"))) == CannotSpeak("tea", "moderated")
    nobody_heard(bob[0])
    ok(alice[1].submit(rq.SetModes("tea", "-m")))
    ok(carol[1].submit(rq.Act("tea", "speaks")))
    assert bob[0].take() == [ModeChanged("tea", "alice", "-m"), Action("tea", "carol", "speaks", START)]


def test_voice_twice_is_silent_and_needs_an_operator() -> None:
    """Voicing a voiced member or devoicing an unvoiced one shows nothing; a non-operator gets NotOperator."""
    core, _, alice, bob, carol, _ = tea()
    ok(alice[1].submit(rq.SetVoice("tea", "bob")))
    nobody_heard(alice[0], bob[0], carol[0])
    ok(alice[1].submit(rq.SetVoice("tea", "bob")))
    ok(alice[1].submit(rq.SetVoice("tea", "carol", give=False)))
    assert error_of(bob[1].submit(rq.SetVoice("tea", "carol"))) == NotOperator("tea")
    assert error_of(alice[1].submit(rq.SetVoice("tea", "dave"))) == UserNotInRoom("dave", "tea")
    assert [alice[0].take(), bob[0].take(), carol[0].take()] == [[], [], []]


# --- Kick ----------------------------------------------------------------------------------------


def test_kick_removes_the_member_and_everyone_sees_it() -> None:
    """Kick shows Kicked to every member, the kicked one too; they are then no member, and may come back."""
    core, _, alice, bob, carol, dave = tea()
    ok(alice[1].submit(rq.Kick("tea", "Bob", "  spam\x1b[31m  ")))
    for client in (alice[0], bob[0], carol[0]):
        assert client.take() == [Kicked("tea", "alice", "bob", "spam")]
    assert dave[0].take() == []
    assert list(bob[1].rooms) == [LOBBY]
    assert who(alice, "tea").nicks == ("alice", "carol")
    assert error_of(bob[1].submit(rq.Say("tea", "hey"))) == NotInRoom("tea")
    ok(alice[1].submit(rq.Say("tea", "quiet now")))
    assert bob[0].take() == []
    nobody_heard(alice[0])
    ok(bob[1].submit(rq.Join("tea")))
    assert alice[0].take() == [Joined("tea", "bob")]


def test_kick_without_reason_and_of_an_operator() -> None:
    """A kick needs no reason, and an operator may kick another operator (neither owns the room)."""
    core, _, alice, bob, carol, _ = tea()
    ok(alice[1].submit(rq.SetOperator("tea", "bob")))
    nobody_heard(alice[0], bob[0], carol[0])
    ok(bob[1].submit(rq.Kick("tea", "alice")))
    assert carol[0].take() == [Kicked("tea", "bob", "alice", "")]
    assert who(carol, "tea") == WhoList("tea", ("bob", "carol"), (), ("bob",), ())


@pytest.mark.parametrize(
    ("nick", "by_operator", "error"),
    [
        ("carol", False, NotOperator("tea")),
        ("dave", True, UserNotInRoom("dave", "tea")),
        ("nobody", True, NoSuchUser("nobody")),
    ],
)
def test_kick_refusals(nick: str, by_operator: bool, error: Exception) -> None:
    """A non-operator may not kick; an operator may not kick a user who is not in the room, or not online."""
    core, _, alice, bob, carol, dave = tea()
    asker = alice if by_operator else bob
    assert error_of(asker[1].submit(rq.Kick("tea", nick, "bye"))) == error
    assert [alice[0].take(), bob[0].take(), carol[0].take(), dave[0].take()] == [[], [], [], []]
    assert len(core.rooms.find("tea").members) == 3


# --- SetBan, ListBans ------------------------------------------------------------------------------


def test_ban_by_nick_quiets_a_member_and_keeps_them_out() -> None:
    """A nick ban is shown as +b; the banned member gets CannotSpeak(banned), and after leaving Banned at join."""
    core, _, alice, bob, carol, _ = tea()
    ok(alice[1].submit(rq.SetBan("tea", "BOB")))
    for client in (alice[0], bob[0], carol[0]):
        assert client.take() == [ModeChanged("tea", "alice", "+b", "bob")]
    assert error_of(bob[1].submit(rq.Say("tea", "but"))) == CannotSpeak("tea", "banned")
    assert error_of(bob[1].submit(rq.Act("tea", "sulks"))) == CannotSpeak("tea", "banned")
    ok(carol[1].submit(rq.Say("tea", "fine here")))
    ok(bob[1].submit(rq.Part("tea")))
    assert error_of(bob[1].submit(rq.Join("tea"))) == Banned("tea")
    assert bob[1].rooms.keys() == {LOBBY}
    nobody_heard(alice[0], bob[0], carol[0])
    ok(alice[1].submit(rq.SetBan("tea", "bob", add=False)))
    assert alice[0].take() == [ModeChanged("tea", "alice", "-b", "bob")]
    assert bob[0].take() == []
    assert carol[0].take() == [ModeChanged("tea", "alice", "-b", "bob")]
    ok(bob[1].submit(rq.Join("tea")))
    assert carol[0].take() == [Joined("tea", "bob")]


def test_ban_list_shows_each_ban_with_who_set_it_and_when() -> None:
    """ListBans answers the asker, member or not, with every ban in mask order; a ban twice is silent."""
    core, clock, alice, bob, carol, dave = tea()
    ok(alice[1].submit(rq.SetBan("tea", "spam*")))
    clock.advance(60)
    ok(alice[1].submit(rq.SetBan("tea", "*!*@10.1.2.3")))
    assert carol[0].take() == [
        ModeChanged("tea", "alice", "+b", "spam*"),
        ModeChanged("tea", "alice", "+b", "10.1.2.3/32"),  # the hostmask, as its canonical network
    ]
    ok(alice[1].submit(rq.SetBan("tea", "Spam*")))
    assert carol[0].take() == []
    nobody_heard(alice[0])
    ok(dave[1].submit(rq.ListBans("TEA")))
    assert dave[0].take() == [BanList("tea", (Ban("10.1.2.3/32", "alice", START + 60), Ban("spam*", "alice", START)))]
    assert alice[0].take() == []
    assert error_of(dave[1].submit(rq.ListBans("nowhere"))) == NoSuchRoom("nowhere")


@pytest.mark.parametrize(
    ("request_", "by_operator", "error"),
    [
        (rq.SetBan("tea", "carol", add=False), True, NoSuchBan("carol", "tea")),
        (rq.SetBan("tea", "10.1.2.3", add=False), True, NoSuchBan("10.1.2.3/32", "tea")),
        (rq.SetBan("tea", "two words"), True, InvalidMask("two words")),
        (rq.SetBan("tea", "carol"), False, NotOperator("tea")),
        (rq.SetBan("tea", "carol", add=False), False, NotOperator("tea")),
        (rq.SetBan("elsewhere", "carol"), True, NotInRoom("elsewhere")),
    ],
)
def test_ban_refusals(request_: rq.SetBan, by_operator: bool, error: Exception) -> None:
    """Unbanning what is not banned is NoSuchBan (canonical mask); a bad mask InvalidMask; a non-op NotOperator."""
    core, _, alice, bob, carol, _ = tea()
    asker = alice if by_operator else bob
    assert error_of(asker[1].submit(request_)) == error
    assert [alice[0].take(), bob[0].take(), carol[0].take()] == [[], [], []]
    assert core.rooms.find("tea").bans == {}


def test_ban_by_nick_pattern_keeps_out_every_match() -> None:
    """A nick pattern ban keeps out each nickname it matches, in any case, and no other."""
    core, _, alice, _, _, _ = tea()
    ok(alice[1].submit(rq.SetBan("tea", "b?b*")))
    bobby = user(core, "Bobby", LOBBY, port=5)
    bib = user(core, "BIB", LOBBY, port=6)
    bo = user(core, "bo", LOBBY, port=7)
    assert error_of(bobby[1].submit(rq.Join("tea"))) == Banned("tea")
    assert error_of(bib[1].submit(rq.Join("tea"))) == Banned("tea")
    ok(bo[1].submit(rq.Join("tea")))


def test_ban_by_account_keeps_out_that_account_under_any_nick() -> None:
    """An account ban keeps out whoever is identified to it, whatever their nickname, and no guest."""
    core, _ = moderated_core()
    alice = user(core, "alice", "tea", port=1)
    mallory = registered(core, "mallory", LOBBY, port=2)
    ok(mallory[1].submit(rq.Nick("innocent")))
    ok(alice[1].submit(rq.SetBan("tea", "account:Mallory")))
    assert alice[0].take()[-1] == ModeChanged("tea", "alice", "+b", "account:mallory")
    assert error_of(mallory[1].submit(rq.Join("tea"))) == Banned("tea")
    ok(mallory[1].submit(rq.Quit()))
    guest = user(core, "other", LOBBY, port=3)
    ok(guest[1].submit(rq.Join("tea")))


def test_ban_by_network_keeps_out_its_addresses() -> None:
    """A CIDR ban keeps out users connecting from inside the network (IPv4-mapped too), not from outside."""
    core, _ = moderated_core()
    alice = user(core, "alice", "tea", port=1)
    ok(alice[1].submit(rq.SetBan("tea", "10.1.2.3/16")))
    assert alice[0].take()[-1] == ModeChanged("tea", "alice", "+b", "10.1.0.0/16")
    for nick, peer, error in [
        ("inside", "10.1.200.9:4000", Banned("tea")),
        ("mapped", "::ffff:10.1.0.1:4000", Banned("tea")),
        ("outside", "10.2.0.1:4000", None),
        ("socket", "/run/chat.sock", None),
    ]:
        client, session = arrive(core, peer)
        ok(session.submit(rq.Login(nick, None, (LOBBY,))))
        joined = session.submit(rq.Join("tea"))
        if error is None:
            ok(joined)
        else:
            assert error_of(joined) == error


@pytest.mark.parametrize("mask", ["account:Mallory", "192.0.2.0/24", "*!*@192.0.2.7", "mal*"])
def test_ban_quiets_a_member_it_matches(mask: str) -> None:
    """A ban by account, network, hostmask or nick pattern quiets a member it matches, and nobody else."""
    core, _ = moderated_core()
    alice = user(core, "alice", "tea", port=1)
    mallory_c, mallory = arrive(core, "192.0.2.7:4000")
    ok(mallory.submit(rq.Login("mallory", None, ("tea",))))
    ok(mallory.submit(rq.Register(PASSWORD)))
    bob = user(core, "bob", "tea", port=2)
    ok(alice[1].submit(rq.SetBan("tea", mask)))
    nobody_heard(alice[0], mallory_c, bob[0])
    assert error_of(mallory.submit(rq.Say("tea", "hi"))) == CannotSpeak("tea", "banned")
    ok(bob[1].submit(rq.Say("tea", "hi")))
    assert mallory_c.take() == [Said("tea", "bob", "hi", START)]
    assert list(mallory.rooms) == ["tea"]


def test_banned_voiced_member_and_banned_operator_still_speak() -> None:
    """A ban quiets plain members only: a voiced member and an operator it matches still speak."""
    core, _, alice, bob, carol, _ = tea()
    ok(alice[1].submit(rq.SetVoice("tea", "bob")))
    ok(alice[1].submit(rq.SetBan("tea", "*")))
    ok(alice[1].submit(rq.Say("tea", "still here")))
    ok(bob[1].submit(rq.Say("tea", "me too")))
    assert error_of(carol[1].submit(rq.Say("tea", "and me?"))) == CannotSpeak("tea", "banned")


def test_moderated_is_the_reason_given_before_banned() -> None:
    """A banned member of a moderated room is told the room is moderated."""
    core, _, alice, bob, _, _ = tea()
    ok(alice[1].submit(rq.SetBan("tea", "bob")))
    ok(alice[1].submit(rq.SetModes("tea", "+m")))
    assert error_of(bob[1].submit(rq.Say("tea", "hm"))) == CannotSpeak("tea", "moderated")


def test_bans_applied_are_counted() -> None:
    """The metrics count each ban that took effect: a join refused and a message refused; not a ban set."""
    metrics = BanCounter()
    core, _, alice, bob, _, dave = tea(metrics=metrics)
    ok(alice[1].submit(rq.SetBan("tea", "bob")))
    ok(alice[1].submit(rq.SetBan("tea", "dave")))
    assert metrics.bans == 0
    error_of(bob[1].submit(rq.Say("tea", "x")))
    error_of(dave[1].submit(rq.Join("tea")))
    ok(alice[1].submit(rq.Say("tea", "ops speak")))
    assert metrics.bans == 2


# --- Invite --------------------------------------------------------------------------------------


def test_invite_only_room_takes_only_the_invited_and_the_invite_is_used_up() -> None:
    """+i refuses a join with InviteOnly; an operator's invite (shown to both) lets one join once."""
    core, _, alice, bob, carol, dave = tea()
    ok(alice[1].submit(rq.SetModes("tea", "+i")))
    nobody_heard(alice[0], bob[0], carol[0])
    assert error_of(dave[1].submit(rq.Join("tea"))) == InviteOnly("tea")
    ok(alice[1].submit(rq.Invite("tea", "DAVE")))
    assert alice[0].take() == [Invited("tea", "alice", "dave")]
    assert dave[0].take() == [Invited("tea", "alice", "dave")]
    assert bob[0].take() == []
    ok(dave[1].submit(rq.Join("tea")))
    assert carol[0].take() == [Joined("tea", "dave")]
    ok(dave[1].submit(rq.Part("tea")))
    assert error_of(dave[1].submit(rq.Join("tea"))) == InviteOnly("tea")


def test_invite_to_invite_only_room_needs_an_operator() -> None:
    """In a +i room a non-operator's invite is NotOperator, and lets nobody in."""
    core, _, alice, bob, _, dave = tea()
    ok(alice[1].submit(rq.SetModes("tea", "+i")))
    nobody_heard(bob[0], dave[0])
    assert error_of(bob[1].submit(rq.Invite("tea", "dave"))) == NotOperator("tea")
    assert dave[0].take() == []
    assert error_of(dave[1].submit(rq.Join("tea"))) == InviteOnly("tea")


def test_operator_invite_lets_a_banned_user_in() -> None:
    """An operator's invite lets a banned user in past the ban (once)."""
    core, _, alice, _, _, dave = tea()
    ok(alice[1].submit(rq.SetBan("tea", "dave")))
    ok(alice[1].submit(rq.Invite("tea", "dave")))
    ok(dave[1].submit(rq.Join("tea")))
    ok(dave[1].submit(rq.Part("tea")))
    assert error_of(dave[1].submit(rq.Join("tea"))) == Banned("tea")


def test_invite_to_an_open_room_by_a_member() -> None:
    """In a room that is not invite-only any member may invite; both are shown the Invited."""
    core, _, _, bob, _, dave = tea()
    ok(bob[1].submit(rq.Invite("tea", "dave")))
    assert bob[0].take() == [Invited("tea", "bob", "dave")]
    assert dave[0].take() == [Invited("tea", "bob", "dave")]


def test_non_operator_invite_does_not_lift_a_ban() -> None:
    """A plain member's invite (allowed in a room that is not +i) must not undo an operator's ban."""
    core, _, alice, bob, _, dave = tea()
    ok(alice[1].submit(rq.SetBan("tea", "dave")))
    ok(bob[1].submit(rq.Invite("tea", "dave")))
    assert error_of(dave[1].submit(rq.Join("tea"))) == Banned("tea")


@pytest.mark.parametrize(
    ("nick", "room", "error"),
    [
        ("bob", "tea", UserInRoom("bob", "tea")),
        ("alice", "tea", UserInRoom("alice", "tea")),
        ("nobody", "tea", NoSuchUser("nobody")),
        ("dave", "elsewhere", NotInRoom("elsewhere")),
    ],
)
def test_invite_refusals(nick: str, room: str, error: Exception) -> None:
    """Inviting a member, an unknown user, or into a room one is not in is refused, and shows nothing."""
    core, _, alice, bob, _, dave = tea()
    assert error_of(alice[1].submit(rq.Invite(room, nick))) == error
    assert [alice[0].take(), bob[0].take(), dave[0].take()] == [[], [], []]


# --- SetModes ------------------------------------------------------------------------------------


def test_modes_are_shown_one_change_at_a_time_and_asked_for() -> None:
    """SetModes shows each actual change to the room, in order; changes=None answers RoomModes to the asker only."""
    core, _, alice, bob, carol, dave = tea()
    ok(dave[1].submit(rq.SetModes("tea")))
    assert dave[0].take() == [RoomModes("tea", "", None)]
    ok(alice[1].submit(rq.SetModes("tea", "+mt")))
    for client in (alice[0], bob[0], carol[0]):
        assert client.take() == [ModeChanged("tea", "alice", "+m"), ModeChanged("tea", "alice", "+t")]
    ok(alice[1].submit(rq.SetModes("tea", " -m+i+t ")))
    assert bob[0].take() == [ModeChanged("tea", "alice", "-m"), ModeChanged("tea", "alice", "+i")]
    ok(alice[1].submit(rq.SetModes("tea", "+it")))
    assert bob[0].take() == []
    ok(bob[1].submit(rq.SetModes("TEA")))
    assert bob[0].take() == [RoomModes("tea", "it", None)]
    assert dave[0].take() == []
    assert error_of(dave[1].submit(rq.SetModes("nowhere"))) == NoSuchRoom("nowhere")


@pytest.mark.parametrize(
    ("changes", "by_operator", "error"),
    [
        ("+x", True, UnknownMode("x")),
        ("+mx", True, UnknownMode("x")),
        ("+o", True, UnknownMode("o")),
        ("", True, UnknownMode("")),
        ("   ", True, UnknownMode("")),
        ("+", True, UnknownMode("+")),
        ("+-", True, UnknownMode("+-")),
        ("+m", False, NotOperator("tea")),
    ],
)
def test_mode_refusals(changes: str, by_operator: bool, error: Exception) -> None:
    """An unknown letter or no letter at all is UnknownMode and changes nothing; a non-operator gets NotOperator."""
    core, _, alice, bob, _, _ = tea()
    asker = alice if by_operator else bob
    assert error_of(asker[1].submit(rq.SetModes("tea", changes))) == error
    assert [alice[0].take(), bob[0].take()] == [[], []]
    assert core.rooms.find("tea").modes == set()


def test_topic_locked_room_takes_its_topic_from_operators_only() -> None:
    """+t: a non-operator setting the topic gets NotOperator; an operator sets it; asking needs no power."""
    core, _, alice, bob, carol, _ = tea()
    ok(bob[1].submit(rq.Topic("tea", "anyone may")))
    ok(alice[1].submit(rq.SetModes("tea", "+t")))
    nobody_heard(alice[0], bob[0], carol[0])
    assert error_of(bob[1].submit(rq.Topic("tea", "mine now"))) == NotOperator("tea")
    ok(bob[1].submit(rq.Topic("tea")))
    assert bob[0].take() == [TopicInfo("tea", "anyone may", "bob", START)]
    ok(alice[1].submit(rq.Topic("tea", "by an op")))
    assert carol[0].take() == [TopicChanged("tea", "alice", "by an op", START, 2)]


# --- Claim -----------------------------------------------------------------------------------------


def test_claim_is_shown_to_the_room_and_stored() -> None:
    """An identified operator's Claim shows RoomClaimed to all members and stores the room, its operators by account."""
    store = MemoryStore()
    core, _ = moderated_core(store=store)
    alice = registered(core, "alice", "tea", port=1)
    bob = registered(core, "bob", "tea", port=2)
    carol = user(core, "carol", "tea", port=3)
    ok(alice[1].submit(rq.SetOperator("tea", "bob")))
    ok(alice[1].submit(rq.SetOperator("tea", "carol")))
    nobody_heard(alice[0], bob[0], carol[0])
    ok(alice[1].submit(rq.Claim("TEA")))
    for client in (alice[0], bob[0], carol[0]):
        assert client.take() == [RoomClaimed("tea", "alice", "alice")]
    assert success_result_of(store.claimed_rooms()) == [RoomRecord("tea", "tea", "alice", ("bob",), (), "")]
    ok(carol[1].submit(rq.SetModes("tea")))
    assert carol[0].take() == [RoomModes("tea", "", "alice")]


def test_claimed_room_keeps_its_changes_in_the_store() -> None:
    """After a claim, bans, modes and op changes of registered users are stored; a guest's op is not."""
    store = MemoryStore()
    core, _ = moderated_core(store=store)
    alice = registered(core, "alice", "tea", port=1)
    bob = registered(core, "bob", "tea", port=2)
    user(core, "carol", "tea", port=3)
    ok(alice[1].submit(rq.Claim("tea")))
    ok(alice[1].submit(rq.SetOperator("tea", "bob")))
    ok(alice[1].submit(rq.SetOperator("tea", "carol")))
    ok(alice[1].submit(rq.SetBan("tea", "spam*")))
    ok(alice[1].submit(rq.SetModes("tea", "+tm")))
    (record,) = success_result_of(store.claimed_rooms())
    assert record == RoomRecord("tea", "tea", "alice", ("bob",), (Ban("spam*", "alice", START),), "mt")
    ok(alice[1].submit(rq.SetOperator("tea", "bob", give=False)))
    ok(alice[1].submit(rq.SetBan("tea", "spam*", add=False)))
    ok(alice[1].submit(rq.SetModes("tea", "-m")))
    assert success_result_of(store.claimed_rooms()) == [RoomRecord("tea", "tea", "alice", (), (), "t")]


@pytest.mark.parametrize(
    ("claimer", "room", "error"),
    [
        ("guest", "tea", NotIdentified()),
        ("member", "tea", NotOperator("tea")),
        ("owner", LOBBY, CannotClaim(LOBBY)),
        ("owner", "elsewhere", NotInRoom("elsewhere")),
    ],
)
def test_claim_refusals(claimer: str, room: str, error: Exception) -> None:
    """Claims by a guest (NotIdentified), a registered non-operator, or of the lobby by a non-server-operator fail."""
    store = MemoryStore()
    core, _ = moderated_core(store=store)
    guest = user(core, "guest", LOBBY, "tea", port=1)  # first in: the operator of tea
    owner = registered(core, "owner", LOBBY, port=2)
    member = registered(core, "member", LOBBY, "tea", port=3)
    if claimer == "owner":
        ok(owner[1].submit(rq.Join("tea")))
        ok(guest[1].submit(rq.SetOperator("tea", "owner")))  # an operator elsewhere is none of the lobby's
    asker = {"guest": guest, "member": member, "owner": owner}[claimer]
    nobody_heard(guest[0], owner[0], member[0])
    assert error_of(asker[1].submit(rq.Claim(room))) == error
    assert [guest[0].take(), owner[0].take(), member[0].take()] == [[], [], []]
    assert success_result_of(store.claimed_rooms()) == []


def test_claim_twice_is_already_claimed() -> None:
    """A claimed room cannot be claimed again, even by its owner or a server operator."""
    core, _ = moderated_core()
    alice = registered(core, "alice", "tea", port=1)
    root = registered(core, ROOT, "tea", port=2)
    ok(alice[1].submit(rq.Claim("tea")))
    assert error_of(alice[1].submit(rq.Claim("tea"))) == AlreadyClaimed("tea", "alice")
    assert error_of(root[1].submit(rq.Claim("tea"))) == AlreadyClaimed("tea", "alice")


def test_server_operator_claims_the_lobby() -> None:
    """A server operator may claim the lobby (without being its operator); the lobby sees RoomClaimed."""
    store = MemoryStore()
    core, _ = moderated_core(store=store)
    bob = user(core, "bob", LOBBY, port=1)
    root = registered(core, ROOT, LOBBY, port=2)
    nobody_heard(bob[0], root[0])
    ok(root[1].submit(rq.Claim(LOBBY)))
    assert bob[0].take() == [RoomClaimed(LOBBY, ROOT, ROOT)]
    assert root[0].take() == [RoomClaimed(LOBBY, ROOT, ROOT)]
    assert success_result_of(store.claimed_rooms()) == [RoomRecord(LOBBY, LOBBY, ROOT)]


class RoomUnsavingStore(MemoryStore):
    """A MemoryStore that cannot keep a room record."""

    def save_room(self, record: RoomRecord) -> Deferred[None]:
        return fail(OSError("disk full"))


def test_claim_that_cannot_be_stored_is_undone() -> None:
    """If the store cannot keep the claim, the claimer gets ErrorReply(NotStored) and the room stays unclaimed."""
    core, _ = moderated_core(store=RoomUnsavingStore())
    alice = registered(core, "alice", "tea", port=1)
    bob = user(core, "bob", "tea", port=2)
    nobody_heard(alice[0], bob[0])
    alice[1].submit(rq.Claim("tea"))
    assert alice[0].take() == [ErrorReply(NotStored())]
    assert bob[0].take() == []
    ok(bob[1].submit(rq.SetModes("tea")))
    assert bob[0].take() == [RoomModes("tea", "", None)]


def test_claimed_room_lives_on_while_empty() -> None:
    """A claimed room everyone has left is still listed (no members) and keeps its modes and bans."""
    core, _ = moderated_core()
    alice = registered(core, "alice", LOBBY, "tea", port=1)
    ok(alice[1].submit(rq.Topic("tea", "green")))
    ok(alice[1].submit(rq.SetModes("tea", "+m")))
    ok(alice[1].submit(rq.SetBan("tea", "spam*")))
    ok(alice[1].submit(rq.Claim("tea")))
    ok(alice[1].submit(rq.Part("tea")))
    alice[0].take()
    ok(alice[1].submit(rq.Rooms()))
    assert alice[0].take() == [RoomList((RoomSummary(LOBBY, 1, ""), RoomSummary("tea", 0, "green")))]
    ok(alice[1].submit(rq.SetModes("tea")))
    ok(alice[1].submit(rq.ListBans("tea")))
    assert alice[0].take() == [RoomModes("tea", "m", "alice"), BanList("tea", (Ban("spam*", "alice", START),))]


def test_first_to_enter_an_empty_claimed_room_is_not_its_operator() -> None:
    """Nobody but the owner and kept operators gets operator status in a claimed room, first or not."""
    core, _ = moderated_core()
    alice = registered(core, "alice", LOBBY, "tea", port=1)
    ok(alice[1].submit(rq.Claim("tea")))
    ok(alice[1].submit(rq.Part("tea")))
    carol = user(core, "carol", LOBBY, port=2)
    ok(carol[1].submit(rq.Join("tea")))
    assert carol[0].take() == [Joined("tea", "carol")]
    assert who(carol, "tea").operators == ()
    assert error_of(carol[1].submit(rq.SetModes("tea", "+i"))) == NotOperator("tea")


def test_owner_coming_back_is_given_operator_by_the_server() -> None:
    """The owner entering their claimed room is shown (with the room) a ModeChanged +o from the server (nick "")."""
    core, _ = moderated_core()
    alice = registered(core, "alice", LOBBY, "tea", port=1)
    ok(alice[1].submit(rq.Claim("tea")))
    ok(alice[1].submit(rq.Part("tea")))
    carol = user(core, "carol", LOBBY, "tea", port=2)
    nobody_heard(alice[0], carol[0])
    ok(alice[1].submit(rq.Join("tea")))
    assert alice[0].take() == [Joined("tea", "alice"), ModeChanged("tea", "", "+o", "alice")]
    assert carol[0].take() == [Joined("tea", "alice"), ModeChanged("tea", "", "+o", "alice")]


def test_owner_coming_back_is_an_operator() -> None:
    """After that ModeChanged +o the owner is an operator: who lists them, and they may set modes."""
    core, _ = moderated_core()
    alice = registered(core, "alice", LOBBY, "tea", port=1)
    ok(alice[1].submit(rq.Claim("tea")))
    ok(alice[1].submit(rq.Part("tea")))
    ok(alice[1].submit(rq.Join("tea")))
    assert who(alice, "tea").operators == ("alice",)
    ok(alice[1].submit(rq.SetModes("tea", "+m")))


def test_owner_and_kept_operators_pass_bans_and_invite_only() -> None:
    """The owner and the kept operators of a claimed room enter it past its bans and +i."""
    core, _ = moderated_core()
    alice = registered(core, "alice", LOBBY, "tea", port=1)
    bob = registered(core, "bob", LOBBY, "tea", port=2)
    ok(alice[1].submit(rq.SetOperator("tea", "bob")))
    ok(alice[1].submit(rq.Claim("tea")))
    ok(alice[1].submit(rq.SetBan("tea", "*")))
    ok(alice[1].submit(rq.SetModes("tea", "+i")))
    ok(bob[1].submit(rq.Part("tea")))
    ok(alice[1].submit(rq.Part("tea")))
    ok(bob[1].submit(rq.Join("tea")))
    ok(alice[1].submit(rq.Join("tea")))
    carol = user(core, "carol", LOBBY, port=3)
    assert error_of(carol[1].submit(rq.Join("tea"))) == Banned("tea")


def restart(core: ChatService, clock: Clock, store: MemoryStore) -> tuple[ChatService, Clock]:
    """Stop C{core} (past its shutdown grace) and start a new one on the same C{store}."""
    stopped = core.stopService()
    clock.advance(SHUTDOWN_GRACE)
    assert success_result_of(stopped) is None
    return moderated_core(store=store)


def test_claimed_room_survives_a_restart() -> None:
    """
    After a restart on the same store the claimed room is listed while empty, keeps its topic,
    bans and modes, and its owner and kept operators entering get +o from the server (nick "").
    """
    store = MemoryStore()
    core, clock = moderated_core(store=store)
    alice = registered(core, "alice", LOBBY, "tea", port=1)
    bob = registered(core, "bob", LOBBY, "tea", port=2)
    ok(alice[1].submit(rq.SetOperator("tea", "bob")))
    ok(alice[1].submit(rq.Topic("tea", "green")))
    ok(alice[1].submit(rq.SetBan("tea", "spam*")))
    ok(alice[1].submit(rq.SetModes("tea", "+mt")))
    ok(alice[1].submit(rq.Claim("tea")))
    core, clock = restart(core, clock, store)

    watcher_c, watcher = user(core, "watcher", LOBBY, port=3)
    ok(watcher.submit(rq.Rooms()))
    ok(watcher.submit(rq.SetModes("tea")))
    ok(watcher.submit(rq.ListBans("tea")))
    assert watcher_c.take() == [
        RoomList((RoomSummary(LOBBY, 1, ""), RoomSummary("tea", 0, "green"))),
        RoomModes("tea", "mt", "alice"),
        BanList("tea", (Ban("spam*", "alice", START),)),
    ]
    spammer_c, spammer = user(core, "spammer1", LOBBY, port=4)
    assert error_of(spammer.submit(rq.Join("tea"))) == Banned("tea")

    alice_c, alice_s = arrive(core, "127.0.0.1:5")
    ok(alice_s.submit(rq.Login("alice", PASSWORD, (LOBBY,))))
    alice_c.take()
    ok(alice_s.submit(rq.Join("tea")))
    (joined, topic, op, history) = alice_c.take()
    assert joined == Joined("tea", "alice")
    assert topic == TopicInfo("tea", "green", "", 0.0)
    assert op == ModeChanged("tea", "", "+o", "alice")
    assert [message.text for message in history.messages] == ["green"]  # type: ignore[attr-defined]

    bob_c, bob_s = arrive(core, "127.0.0.1:6")
    ok(bob_s.submit(rq.Login("bob", PASSWORD, ())))
    ok(bob_s.submit(rq.Join("tea")))
    assert alice_c.take() == [Joined("tea", "bob"), ModeChanged("tea", "", "+o", "bob")]
    assert who((alice_c, alice_s), "tea").operators == ("alice", "bob")
    ok(bob_s.submit(rq.SetModes("tea", "-m")))
    assert alice_c.take() == [ModeChanged("tea", "bob", "-m")]


# --- protection of owners and server operators -------------------------------------------------


def test_room_operators_cannot_deop_or_kick_the_owner() -> None:
    """A room operator's deop or kick of the room's owner is Protected, and changes nothing."""
    core, _ = moderated_core()
    alice = registered(core, "alice", "tea", port=1)
    bob = user(core, "bob", "tea", port=2)
    ok(alice[1].submit(rq.SetOperator("tea", "bob")))
    ok(alice[1].submit(rq.Claim("tea")))
    nobody_heard(alice[0], bob[0])
    assert error_of(bob[1].submit(rq.SetOperator("tea", "alice", give=False))) == Protected("alice", "tea")
    assert error_of(bob[1].submit(rq.Kick("tea", "alice", "coup"))) == Protected("alice", "tea")
    assert [alice[0].take(), bob[0].take()] == [[], []]
    assert who(bob, "tea").operators == ("alice", "bob")
    ok(alice[1].submit(rq.Kick("tea", "bob", "nice try")))


def test_room_operators_cannot_deop_or_kick_a_server_operator() -> None:
    """A room operator's deop or kick of a server operator is Protected; the server operator may kick the owner."""
    core, _ = moderated_core()
    alice = registered(core, "alice", "tea", port=1)
    root = registered(core, ROOT, "tea", port=2)
    ok(alice[1].submit(rq.SetOperator("tea", ROOT)))
    ok(alice[1].submit(rq.Claim("tea")))
    assert error_of(alice[1].submit(rq.SetOperator("tea", ROOT, give=False))) == Protected(ROOT, "tea")
    assert error_of(alice[1].submit(rq.Kick("tea", ROOT))) == Protected(ROOT, "tea")
    nobody_heard(alice[0], root[0])
    ok(root[1].submit(rq.SetOperator("tea", "alice", give=False)))
    ok(root[1].submit(rq.Kick("tea", "alice", "abuse")))
    assert alice[0].take() == [ModeChanged("tea", ROOT, "-o", "alice"), Kicked("tea", ROOT, "alice", "abuse")]


# --- server operators in rooms ------------------------------------------------------------------


def test_server_operator_acts_in_a_room_without_being_in_it() -> None:
    """
    A server operator may op, voice, ban, set modes, invite and kick in a room it is not in;
    members see each, and so does the operator.
    """
    core, _, alice, bob, carol, dave = tea()
    root = registered(core, ROOT, LOBBY, port=9)
    nobody_heard(alice[0], bob[0], carol[0], dave[0], root[0])
    ok(root[1].submit(rq.SetOperator("tea", "bob")))
    ok(root[1].submit(rq.SetVoice("tea", "carol")))
    ok(root[1].submit(rq.SetModes("tea", "+i")))
    ok(root[1].submit(rq.SetBan("tea", "spam*")))
    ok(root[1].submit(rq.Kick("tea", "alice", "bye")))
    expected = [
        ModeChanged("tea", ROOT, "+o", "bob"),
        ModeChanged("tea", ROOT, "+v", "carol"),
        ModeChanged("tea", ROOT, "+i"),
        ModeChanged("tea", ROOT, "+b", "spam*"),
        Kicked("tea", ROOT, "alice", "bye"),
    ]
    assert bob[0].take() == expected
    assert alice[0].take() == expected
    assert root[0].take() == expected  # not in the room, it is shown what it did all the same
    ok(root[1].submit(rq.Invite("tea", "dave")))
    assert root[0].take() == [Invited("tea", ROOT, "dave")]
    assert dave[0].take() == [Invited("tea", ROOT, "dave")]
    ok(dave[1].submit(rq.Join("tea")))


def test_server_operator_enters_and_speaks_past_every_mode_and_ban() -> None:
    """A server operator enters a +i room that bans it and speaks there while +m, without being its operator."""
    core, _, alice, _, _, _ = tea()
    root = registered(core, ROOT, LOBBY, port=9)
    ok(alice[1].submit(rq.SetModes("tea", "+imt")))
    ok(alice[1].submit(rq.SetBan("tea", "account:root")))
    ok(alice[1].submit(rq.SetBan("tea", "127.0.0.1")))
    ok(root[1].submit(rq.Join("tea")))
    ok(root[1].submit(rq.Say("tea", "hello")))
    ok(root[1].submit(rq.Topic("tea", "ops here")))
    assert who(alice, "tea").operators == ("alice",)


def test_server_operator_cannot_act_on_a_room_that_does_not_exist() -> None:
    """A server operator's request about a room nobody uses is NoSuchRoom."""
    core, _ = moderated_core()
    root = registered(core, ROOT, LOBBY, port=9)
    assert error_of(root[1].submit(rq.SetModes("nowhere", "+m"))) == NoSuchRoom("nowhere")


# --- KillUser ------------------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["flooding", ""])
def test_kill_disconnects_the_user(reason: str) -> None:
    """KillUser shows the target Killed and closes it; its rooms see it quit as killed by the server operator."""
    core, _, alice, bob, carol, dave = tea()
    root = registered(core, ROOT, LOBBY, port=9)
    nobody_heard(alice[0], bob[0], carol[0], dave[0], root[0])
    ok(root[1].submit(rq.KillUser("BOB", reason)))
    shown = "killed by root" + (": " + reason if reason else "")
    assert bob[0].take() == [Killed(ROOT, reason)]
    assert bob[0].closed
    assert alice[0].take() == [UserQuit("bob", shown, (LOBBY, "tea"))]
    assert root[0].take() == [UserQuit("bob", shown, (LOBBY,))]
    assert core.directory.find("bob") is None


@pytest.mark.parametrize(
    ("asker", "nick", "error"),
    [("alice", "bob", NotServerOperator()), ("root", "nobody", NoSuchUser("nobody"))],
)
def test_kill_refusals(asker: str, nick: str, error: Exception) -> None:
    """Only a server operator may kill (a room operator gets NotServerOperator), and only a user who is online."""
    core, _, alice, bob, _, _ = tea()
    root = registered(core, ROOT, LOBBY, port=9)
    assert error_of({"alice": alice, "root": root}[asker][1].submit(rq.KillUser(nick))) == error
    assert not bob[0].closed


# --- Wall ----------------------------------------------------------------------------------------


def test_wall_reaches_everyone_online() -> None:
    """Wall sends Wallops to every logged-in user in every room, the sender too; not to a connection not logged in."""
    core, clock, alice, bob, carol, dave = tea()
    root = registered(core, ROOT, port=9)  # in no room at all
    elsewhere = user(core, "eve", "far", port=10)
    waiting_c, _ = arrive(core, "127.0.0.1:11")
    clock.advance(5)
    ok(root[1].submit(rq.Wall("  maintenance at noon \x07 ")))
    for client in (alice[0], bob[0], carol[0], dave[0], root[0], elsewhere[0]):
        assert client.take() == [Wallops(ROOT, "maintenance at noon", START + 5)]
    assert waiting_c.take() == []


@pytest.mark.parametrize(
    ("asker", "text", "error"),
    [("alice", "hi", NotServerOperator()), ("root", " \x1b[0m ", EmptyText())],
)
def test_wall_refusals(asker: str, text: str, error: Exception) -> None:
    """Wall needs a server operator, and some text to show."""
    core, _, alice, bob, _, _ = tea()
    root = registered(core, ROOT, port=9)
    assert error_of({"alice": alice, "root": root}[asker][1].submit(rq.Wall(text))) == error
    assert bob[0].take() == []


# --- ServerBan, ListServerBans ------------------------------------------------------------------


def test_server_ban_of_an_address_disconnects_and_refuses_it() -> None:
    """
    A server ban of an address is shown to the server operator, closes every connection from it
    (logged in or not) with ServerBanned, and refuses the next connection from it at once.
    """
    metrics = BanCounter()
    core, _ = moderated_core(metrics=metrics)
    root = registered(core, ROOT, LOBBY, port=9)
    bob = user(core, "bob", LOBBY, port=2)
    mallory_c, mallory = arrive(core, "192.0.2.7:4000")
    ok(mallory.submit(rq.Login("mallory", None, (LOBBY, "den"))))
    lurker_c, lurker = arrive(core, "192.0.2.7:4001")
    nobody_heard(root[0], bob[0], mallory_c)
    ok(root[1].submit(rq.ServerBan("*!*@192.0.2.7", reason=" spam ")))
    ban = Ban("192.0.2.7/32", ROOT, START, None, "spam")
    assert root[0].take() == [ServerBanChanged(ban, added=True), UserQuit("mallory", "banned", (LOBBY,))]
    assert bob[0].take() == [UserQuit("mallory", "banned", (LOBBY,))]
    for client in (mallory_c, lurker_c):
        assert client.take() == [ErrorReply(ServerBanned("spam", None))]
        assert client.closed
    assert mallory.closed and lurker.closed
    assert core.directory.find("mallory") is None
    again_c, again = arrive(core, "192.0.2.7:4002")
    assert again_c.take() == [ErrorReply(ServerBanned("spam", None))]
    assert again_c.closed and again.closed
    assert again not in core.sessions
    assert metrics.bans == 3
    other_c, other = arrive(core, "192.0.2.8:4000")
    ok(other.submit(rq.Login("other", None, (LOBBY,))))
    assert not other_c.closed


@pytest.mark.parametrize(
    ("mask", "peer"),
    [
        ("192.0.2.0/24", "192.0.2.200:4000"),
        ("192.0.2.0/24", "::ffff:192.0.2.200:4000"),
        ("2001:db8::/32", "2001:db8:7::1:4000"),
    ],
)
def test_server_ban_of_a_network_refuses_its_connections(mask: str, peer: str) -> None:
    """A network server ban (IPv4, IPv6) refuses connections from inside it, IPv4-mapped ones too."""
    core, _ = moderated_core()
    root = registered(core, ROOT, LOBBY, port=9)
    ok(root[1].submit(rq.ServerBan(mask)))
    client, session = arrive(core, peer)
    assert client.take() == [ErrorReply(ServerBanned("", None))]
    assert client.closed and session.closed


def test_server_ban_leaves_a_unix_socket_connection_alone() -> None:
    """A connection whose address is not IP (a UNIX socket) is never matched by an address ban."""
    core, _ = moderated_core()
    root = registered(core, ROOT, LOBBY, port=9)
    ok(root[1].submit(rq.ServerBan("0.0.0.0/1")))
    client, session = arrive(core, "/run/chat.sock")
    ok(session.submit(rq.Login("local", None, (LOBBY,))))
    assert not client.closed


def test_server_ban_of_an_account_disconnects_and_refuses_its_logins() -> None:
    """
    A server ban of an account closes its identified user at once (under any nickname), and then
    refuses a login with its password, and an Authenticate, from any address; a guest is not touched.
    """
    core, _ = moderated_core()
    root = registered(core, ROOT, LOBBY, port=9)
    mallory = registered(core, "mallory", LOBBY, port=2)
    ok(mallory[1].submit(rq.Nick("innocent")))
    nobody_heard(root[0], mallory[0])
    ok(root[1].submit(rq.ServerBan("account:Mallory", seconds=None, reason="abuse")))
    assert root[0].take() == [
        ServerBanChanged(Ban("account:mallory", ROOT, START, None, "abuse"), added=True),
        UserQuit("innocent", "banned", (LOBBY,)),
    ]
    assert mallory[0].take() == [ErrorReply(ServerBanned("abuse", None))]
    assert mallory[0].closed

    client, session = arrive(core, "198.51.100.3:4000")
    assert client.take() == []
    ok(session.submit(rq.Login("mallory", PASSWORD, (LOBBY,))))
    events = client.take()
    assert events[-1] == ErrorReply(ServerBanned("abuse", None))
    assert Joined(LOBBY, "mallory") not in events
    assert client.closed and session.closed
    assert core.directory.find("mallory") is None
    assert root[0].take() == []

    client, session = arrive(core, "198.51.100.4:4000")
    ok(session.submit(rq.Authenticate("mallory", PASSWORD)))
    assert client.take()[-1] == ErrorReply(ServerBanned("abuse", None))
    assert client.closed and session.closed

    guest_c, guest = arrive(core, "198.51.100.5:4000")
    ok(guest.submit(rq.Login("mallory2", None, (LOBBY,))))
    assert not guest_c.closed


def test_server_ban_expires_by_the_clock() -> None:
    """A server ban with a duration refuses until it runs out, then no longer applies nor is listed."""
    core, clock = moderated_core()
    root = registered(core, ROOT, LOBBY, port=9)
    root[0].take()
    ok(root[1].submit(rq.ServerBan("192.0.2.7", seconds=3600.0)))
    ban = Ban("192.0.2.7/32", ROOT, START, START + 3600)
    assert root[0].take() == [ServerBanChanged(ban, added=True)]
    clock.advance(3599)
    client, _ = arrive(core, "192.0.2.7:4000")
    assert client.take() == [ErrorReply(ServerBanned("", START + 3600))]
    ok(root[1].submit(rq.ListServerBans()))
    assert root[0].take() == [BanList("", (ban,))]
    clock.advance(1)
    client, session = arrive(core, "192.0.2.7:4001")
    ok(session.submit(rq.Login("back", None, (LOBBY,))))
    assert not client.closed
    ok(root[1].submit(rq.ListServerBans()))
    assert root[0].take()[-1] == BanList("", ())


def test_lifting_a_server_ban_lets_the_address_back() -> None:
    """Lifting a server ban shows the lifted ban to the operator, forgets it in the store, and admits the address."""
    store = MemoryStore()
    core, _ = moderated_core(store=store)
    root = registered(core, ROOT, LOBBY, port=9)
    ok(root[1].submit(rq.ServerBan("192.0.2.7", reason="spam")))
    root[0].take()
    ok(root[1].submit(rq.ServerBan("192.0.2.7/32", add=False)))
    assert root[0].take() == [ServerBanChanged(Ban("192.0.2.7/32", ROOT, START, None, "spam"), added=False)]
    assert success_result_of(store.server_bans()) == []
    client, session = arrive(core, "192.0.2.7:4000")
    ok(session.submit(rq.Login("back", None, (LOBBY,))))
    assert not client.closed
    assert error_of(root[1].submit(rq.ServerBan("192.0.2.7", add=False))) == NoSuchBan("192.0.2.7/32")


@pytest.mark.parametrize(
    ("asker", "request_", "error"),
    [
        ("alice", rq.ServerBan("192.0.2.7"), NotServerOperator()),
        ("alice", rq.ServerBan("192.0.2.7", add=False), NotServerOperator()),
        ("alice", rq.ListServerBans(), NotServerOperator()),
        ("root", rq.ServerBan("bob"), InvalidMask("bob")),
        ("root", rq.ServerBan("spam*"), InvalidMask("spam*")),
        ("root", rq.ServerBan("nick!user@host.example"), InvalidMask("nick!user@host.example")),
        ("root", rq.ServerBan("192.0.2.9", add=False), NoSuchBan("192.0.2.9/32")),
    ],
)
def test_server_ban_refusals(asker: str, request_: rq.Request, error: Exception) -> None:
    """Server bans need a server operator, a mask of an account or address, and (to lift) a ban that is there."""
    store = MemoryStore()
    core, _, alice, bob, _, _ = tea(store=store)
    root = registered(core, ROOT, LOBBY, port=9)
    assert error_of({"alice": alice, "root": root}[asker][1].submit(request_)) == error
    assert success_result_of(store.server_bans()) == []
    assert not bob[0].closed


def test_server_bans_are_listed_in_mask_order() -> None:
    """ListServerBans answers the server operator with every ban in force, ordered by mask."""
    core, clock = moderated_core()
    root = registered(core, ROOT, LOBBY, port=9)
    ok(root[1].submit(rq.ServerBan("account:zed", reason="z")))
    clock.advance(10)
    ok(root[1].submit(rq.ServerBan("10.0.0.0/8", seconds=60.0)))
    root[0].take()
    ok(root[1].submit(rq.ListServerBans()))
    assert root[0].take() == [BanList("", (
        Ban("10.0.0.0/8", ROOT, START + 10, START + 70),
        Ban("account:zed", ROOT, START, None, "z"),
    ))]


def test_server_ban_is_stored_and_applies_after_a_restart() -> None:
    """A server ban is kept in the store; a new core on it refuses the address at connection."""
    store = MemoryStore()
    core, clock = moderated_core(store=store)
    root = registered(core, ROOT, LOBBY, port=9)
    ok(root[1].submit(rq.ServerBan("192.0.2.7", seconds=86400.0, reason="spam")))
    ban = Ban("192.0.2.7/32", ROOT, START, START + 86400, "spam")
    assert success_result_of(store.server_bans()) == [ban]
    core, clock = restart(core, clock, store)
    client, _ = arrive(core, "192.0.2.7:4000")
    assert client.take() == [ErrorReply(ServerBanned("spam", START + 86400))]
    assert client.closed


# --- what who and whois show -------------------------------------------------------------------


def test_whois_says_who_is_a_server_operator() -> None:
    """Whois flags server operators (by account, whatever their nickname) and nobody else."""
    core, clock = moderated_core()
    root = registered(core, ROOT, LOBBY, port=9)
    ok(root[1].submit(rq.Nick("boss")))
    bob = user(core, "bob", LOBBY, port=2)
    clock.advance(3)
    ok(bob[1].submit(rq.Whois(("boss", "bob"))))
    assert bob[0].take() == [UserList(("boss", "bob"), (
        UserInfo("boss", ROOT, "", (LOBBY,), 3.0, START, True),
        UserInfo("bob", None, "", (LOBBY,), 3.0, START, False),
    ))]


def test_server_operator_is_named_by_account_not_nickname() -> None:
    """A guest who takes the nickname of a server operator's account (not registered) has no powers."""
    core, _ = moderated_core()
    impostor = user(core, ROOT, LOBBY, port=1)
    assert error_of(impostor[1].submit(rq.Wall("hi"))) == NotServerOperator()
    ok(impostor[1].submit(rq.Whois((ROOT,))))
    (answer,) = impostor[0].take()
    assert answer.users[0].server_operator is False  # type: ignore[attr-defined]


def test_who_lists_operators_and_voiced() -> None:
    """WhoList names the room's operators and voiced members, sorted like its nicknames."""
    core, _, alice, bob, carol, _ = tea()
    ok(alice[1].submit(rq.SetOperator("tea", "carol")))
    ok(alice[1].submit(rq.SetVoice("tea", "bob")))
    ok(alice[1].submit(rq.SetVoice("tea", "alice")))
    assert who(bob, "tea") == WhoList("tea", ("alice", "bob", "carol"), (), ("alice", "carol"), ("alice", "bob"))
    ok(bob[1].submit(rq.Part("tea")))
    ok(bob[1].submit(rq.Join("tea")))
    assert who(bob, "tea") == WhoList("tea", ("alice", "bob", "carol"), (), ("alice", "carol"), ("alice",))



def test_owner_deops_a_kept_operator_who_is_away() -> None:
    """In a claimed room, /deop of a kept operator who is not in it forgets their account; nothing else does."""
    store = MemoryStore()
    core, _ = moderated_core(store=store)
    alice = registered(core, "alice", LOBBY, "tea", port=1)
    bob = registered(core, "bob", LOBBY, "tea", port=2)
    ok(alice[1].submit(rq.SetOperator("tea", "bob")))
    ok(alice[1].submit(rq.Claim("tea")))
    ok(bob[1].submit(rq.Part("tea")))
    nobody_heard(alice[0], bob[0])
    assert error_of(alice[1].submit(rq.SetOperator("tea", "carol", give=False))) == NoSuchUser("carol")
    ok(alice[1].submit(rq.SetOperator("tea", "BOB", give=False)))
    assert alice[0].take() == [ModeChanged("tea", "alice", "-o", "BOB")]
    assert success_result_of(store.claimed_rooms())[0].operators == ()
    ok(bob[1].submit(rq.Join("tea")))
    assert bob[1] not in core.rooms.find("tea").operators
