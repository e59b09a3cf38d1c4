"""The line door's moderation commands, read and written as a user of nc would, over StringTransport."""

from __future__ import annotations

import pytest

from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.line import LineChatFactory
from tests.helpers import LineConnection, line_user, make_core, make_line_factory


def roomy_factory(**options: object) -> LineChatFactory:
    """A line factory over a fresh core whose flood control never gets in these tests' way."""
    core, _ = make_core(**options)
    return LineChatFactory(core, burst=1000)


def joined(factory: LineChatFactory, nick: str, room: str, port: int) -> LineConnection:
    """A line user logged in as C{nick} who has moved to C{room}, its output so far read."""
    user = line_user(factory, nick, port)
    user.send(f"/join {room}\n")
    user.lines()
    return user


@pytest.fixture
def tea() -> tuple[LineChatFactory, LineConnection, LineConnection]:
    """alice (the first in tea, so its operator) and bob in tea."""
    factory = roomy_factory()
    alice = joined(factory, "alice", "tea", 40001)
    bob = joined(factory, "bob", "tea", 40002)
    alice.lines()
    return factory, alice, bob


def test_the_first_in_a_room_is_its_operator(tea: tuple[LineChatFactory, LineConnection, LineConnection]) -> None:
    """/who names the room's operators on a line of their own."""
    _, alice, bob = tea
    bob.send("/who\n")
    assert bob.lines() == ["* 2 users in tea: alice, bob", "* operators of tea: alice"]


def test_op_and_deop_are_shown_to_the_room(tea: tuple[LineChatFactory, LineConnection, LineConnection]) -> None:
    """/op NICK and /deop NICK: everyone in the room sees who did what."""
    _, alice, bob = tea
    alice.send("/op bob\n")
    assert alice.lines() == bob.lines() == ["* alice made bob an operator of tea"]
    bob.send("/deop alice\n")
    assert alice.lines() == bob.lines() == ["* bob took alice's operator status in tea"]


def test_a_non_operator_is_told_plainly(tea: tuple[LineChatFactory, LineConnection, LineConnection]) -> None:
    """Every operator command refuses a user who is not one, in words, and changes nothing."""
    _, alice, bob = tea
    for line in ("/op bob", "/kick alice", "/ban alice", "/mode +m", "/voice bob", "/claim"):
        bob.send(line + "\n")
        assert bob.lines() == ["error: you are not an operator of tea"], line
    assert alice.lines() == []


def test_kick_sends_a_line_user_back_to_the_lobby(
    tea: tuple[LineChatFactory, LineConnection, LineConnection],
) -> None:
    """The kicked user sees the kick and, keeping this door's one-room habit, is back in the lobby."""
    factory, alice, bob = tea
    alice.send("/kick bob spamming links\n")
    assert alice.lines() == ["* alice kicked bob from tea (spamming links)"]
    assert bob.lines() == ["* alice kicked bob from tea (spamming links)"]
    factory.service.clock.advance(0)  # type: ignore[attr-defined]
    assert bob.lines()[0] == "* bob joined lobby"
    bob.send("/who\n")
    assert bob.lines() == ["* 1 user in lobby: bob"]
    bob.send("back again\n")
    assert alice.lines() == []


def test_ban_keeps_out_and_unban_lets_in(tea: tuple[LineChatFactory, LineConnection, LineConnection]) -> None:
    """/ban MASK, /bans, /unban MASK; a banned user's /join is refused and leaves them where they were."""
    factory, alice, bob = tea
    alice.send("/kick bob\n/ban BOB\n")
    factory.service.clock.advance(0)  # type: ignore[attr-defined]
    assert alice.lines() == ["* alice kicked bob from tea", "* alice banned bob from tea"]
    bob.lines()
    bob.send("/join tea\n")
    assert bob.lines() == ["error: you are banned from tea"]
    bob.send("/who\n")
    assert bob.lines() == ["* 1 user in lobby: bob"]
    alice.send("/bans\n")
    lines = alice.lines()
    assert lines[0] == "* 1 ban in tea:"
    assert lines[1].startswith("*   bob (by alice, ")
    alice.send("/unban bob\n/unban bob\n")
    assert alice.lines() == ["* alice lifted the ban on bob in tea", "error: bob is not banned from tea"]
    bob.send("/join tea\n")
    assert bob.lines()[0] == "* bob joined tea"


def test_modes_are_shown_and_changed(tea: tuple[LineChatFactory, LineConnection, LineConnection]) -> None:
    """/mode shows the modes; /mode +mt changes them, one line each; a moderated room quiets bob."""
    _, alice, bob = tea
    bob.send("/mode\n")
    assert bob.lines() == ["* tea has no modes"]
    alice.send("/mode +mt\n")
    assert bob.lines() == [
        "* alice made tea moderated: only operators and voiced users speak",
        "* alice locked the topic of tea: only operators set it",
    ]
    alice.lines()
    bob.send("hello?\n/topic mine\n")
    assert bob.lines() == [
        "error: tea is moderated: only operators and voiced users may speak there",
        "error: you are not an operator of tea",
    ]
    alice.send("/voice bob\n")
    assert alice.lines() == bob.lines() == ["* alice gave bob a voice in tea"]
    bob.send("thanks\n")
    assert [line.split("] ", 1)[1] for line in alice.lines()] == ["bob: thanks"]
    bob.lines()
    bob.send("/mode\n")
    assert bob.lines() == ["* modes of tea: +mt (moderated, topic-locked)"]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/op", "error: usage: /op NICK"),
        ("/op a b", "error: usage: /op NICK"),
        ("/kick", "error: usage: /kick NICK [REASON]"),
        ("/ban", "error: usage: /ban MASK"),
        ("/mode imt", "error: usage: /mode [+|-][imt]"),
        ("/mode +x", "error: unknown mode 'x': the room modes are i (invite-only), m (moderated) and t (topic-locked)"),
        ("/ban no!way@example.org", "error: 'no!way@example.org' is not a ban mask: give a nickname (* and ? allowed),"
                                    " account:NAME, or an address or CIDR network (server bans: no nicknames)"),
        ("/kick zed", "error: no user named 'zed' is online"),
        ("/wall", "error: usage: /wall TEXT"),
        ("/gban", "error: usage: /gban MASK [DURATION] [REASON]"),
        ("/gban 192.0.2.1 7x", "error: '7x' is not a duration: give seconds, or a number with s, m, h, d or w (30m, 7d)"),
        ("/gban 192.0.2.1", "error: only a server operator may do that"),
        ("/kill bob", "error: only a server operator may do that"),
    ],
)
def test_bad_moderation_lines_get_an_error(
    tea: tuple[LineChatFactory, LineConnection, LineConnection], line: str, error: str,
) -> None:
    """Missing or malformed arguments and missing powers are answered with one error line."""
    _, alice, _ = tea
    alice.send(line + "\n")
    assert alice.lines() == [error]


def test_invite_lets_a_user_into_an_invite_only_room(
    tea: tuple[LineChatFactory, LineConnection, LineConnection],
) -> None:
    """/invite NICK: both see it; the invited user may enter the invite-only room once."""
    factory, alice, bob = tea
    carol = line_user(factory, "carol", 40003)
    alice.send("/mode +i\n")
    alice.lines()
    carol.send("/join tea\n")
    assert carol.lines() == ["error: tea is invite-only; ask one of its operators to /invite you"]
    bob.send("/invite carol\n")
    assert bob.lines()[-1] == "error: you are not an operator of tea"
    alice.send("/invite carol\n")
    assert alice.lines() == carol.lines() == ["* alice invited carol to tea (/join tea)"]
    carol.send("/join tea\n")
    assert carol.lines()[0] == "* carol joined tea"


def test_server_operator_commands() -> None:
    """A --oper account: /gban with a duration and a reason, /gbans, /ungban, /wall, /kill."""
    factory = roomy_factory(store=MemoryStore(), operators=["boss"])
    core = factory.service
    boss = line_user(factory, "boss", 40001)
    boss.send("/register hunter2hunter2\n")
    boss.lines()
    assert core.moderation.is_server_operator(next(iter(core.directory)))
    bob = line_user(factory, "bob", 40002)
    boss.lines()
    boss.send("/wall restart at noon\n")
    assert bob.lines() == ["[03:04:05] (to everyone) boss: restart at noon"]
    assert boss.lines() == ["[03:04:05] (to everyone) boss: restart at noon"]
    boss.send("/gban account:zed 2h spam bot\n/gbans\n")
    assert boss.lines() == [
        "* banned from the server:",
        "*   account:zed (by boss, 2026-01-02 03:04:05, until 2026-01-02 05:04:05): spam bot",
        "* 1 ban on this server:",
        "*   account:zed (by boss, 2026-01-02 03:04:05, until 2026-01-02 05:04:05): spam bot",
    ]
    boss.send("/gban 198.51.100.0/24 no reason needed\n/ungban account:zed\n")
    assert boss.lines() == [
        "* banned from the server:",
        "*   198.51.100.0/24 (by boss, 2026-01-02 03:04:05): no reason needed",
        "* lifted the server ban on account:zed",
    ]
    boss.send("/kill bob enough\n")
    assert bob.lines() == ["* you were disconnected by the server operator boss (enough)"]
    assert not bob.transport.connected
    assert boss.lines() == ["* bob left lobby (killed by boss: enough)"]


def test_help_lists_the_moderation_commands() -> None:
    """/help names every moderation command."""
    factory, _, _ = make_line_factory()
    alice = line_user(factory, "alice")
    alice.send("/help\n")
    usages = {line.split()[1] for line in alice.lines()[1:]}
    for command in ("/claim", "/op", "/deop", "/voice", "/devoice", "/kick", "/ban", "/unban", "/bans", "/invite",
                    "/mode", "/kill", "/gban", "/ungban", "/gbans", "/wall"):
        assert command in usages, command


def test_a_user_kicked_from_the_lobby_is_in_no_room_until_they_join_one() -> None:
    """Kicked from the lobby, a line user stays out of it; /join lobby (or another room) just enters it."""
    core, _ = make_core(operators=["boss"])
    factory = LineChatFactory(core, burst=1000)
    boss = line_user(factory, "boss", 40001)
    boss.send("/register hunter2hunter2\n")
    dan = line_user(factory, "dan", 40002)
    boss.lines()
    boss.send("/kick dan\n")
    core.clock.advance(0)  # type: ignore[attr-defined]
    assert dan.lines() == ["* boss kicked dan from lobby"]
    dan.send("hello?\n")
    assert dan.lines() == ["error: you are not in lobby"]
    dan.send("/join lobby\n")
    lines = dan.lines()
    assert lines[0] == "* dan joined lobby"
    assert not any("left" in line or line.startswith("error") for line in lines), lines
