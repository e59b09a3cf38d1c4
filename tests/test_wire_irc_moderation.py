"""
Tests for moderation through the IRC door: channel operators and voices in NAMES, WHO and
ISUPPORT; MODE (room modes, +o/+v, bans and the ban list), KICK, INVITE and CLAIM; the server
operators' KILL, WALLOPS and GBAN/UNGBAN/GBANS; each error's numeric or standard reply; and a
rendering for every event the core can send.

The harness is tests.test_wire_irc's: StringTransports on one core with a fake clock at
03:04:05 UTC (tests.helpers.START), flood control off, accounts registered through line users
(tests.test_wire_irc_caps). A server operator is the account C{boss}, named by
C{ChatService(operators=["boss"])}. No sockets, no reactor, no sleeps.
"""

from __future__ import annotations

import dataclasses
import inspect
from datetime import timezone

import pytest

from chat_twisted import model
from chat_twisted.core import ChatService
from chat_twisted.model import Ban, BanList, Event, RoomCutOff, SearchResults, StoredMessage
from chat_twisted.wire.irc import IrcFactory
from chat_twisted.wire.irc_render import IrcView, ban_hostmask
from chat_twisted.wire.irc_syntax import ban_mask
from tests.helpers import (
    PASSWORD,
    START,
    IrcConnection,
    S,
    in_channel,
    irc_user,
    isupport_tokens,
    line_user,
    make_core,
    make_irc_factory,
    mask,
    plain,
    register_account,
    setup,
    with_caps,
    with_line_users,
)

#: One day after helpers.START, as the door shows times (in the core's zone: UTC here).
TOMORROW = "2026-01-03 03:04:05 UTC"


def account_user(factory: IrcFactory, nick: str, port: int, channel: str | None = None) -> IrcConnection:
    """An IRC user logged in to the registered account C{nick} with PASS, joined to C{channel}, all read."""
    connection = IrcConnection(factory, port)
    connection.send_lines(f"PASS {nick}:{PASSWORD}", f"NICK {nick}", f"USER {nick} 0 * :{nick}")
    if channel is not None:
        connection.send_lines(f"JOIN {channel}")
    connection.lines()
    return connection


def with_boss() -> tuple[IrcFactory, ChatService, IrcConnection]:
    """A core whose server operator is the account C{boss}, and boss logged in over IRC."""
    core, _ = make_core(operators=["boss"])
    factory, _, _ = make_irc_factory(core, rate=0)
    register_account(factory, "boss", 42100)
    return factory, core, account_user(factory, "boss", 41100)


# --- ISUPPORT, NAMES, WHO, WHOIS ----------------------------------------------------------


def test_isupport_and_004_advertise_the_channel_modes() -> None:
    """005 says PREFIX=(ov)@+, CHANMODES=b,,,imt and MODES=4 (channel types unchanged); 004 lists the same modes."""
    factory, _, _ = setup()
    burst = IrcConnection(factory).register("alice")
    tokens = isupport_tokens(burst)
    assert {key: tokens[key] for key in ("PREFIX", "CHANMODES", "CHANTYPES", "MODES")} == {
        "PREFIX": "(ov)@+", "CHANMODES": "b,,,imt", "CHANTYPES": "#", "MODES": "4"}
    assert "KICK:4" in tokens["TARGMAX"].split(",")
    assert burst[3].endswith(" i bimotv bov")


def test_the_first_to_enter_a_new_channel_is_its_operator() -> None:
    """The creator of a channel is shown with @ in NAMES on joining and after; later joiners are not."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice", 41000)
    alice.send_lines("JOIN #dev")
    assert alice.lines()[1:] == [f"{S} 353 alice = #dev :@alice", f"{S} 366 alice #dev :End of /NAMES list"]
    bob = irc_user(factory, "bob", 41001)
    bob.send_lines("JOIN #dev", "NAMES #dev")
    assert [text for text in bob.lines() if " 353 " in text] == [f"{S} 353 bob = #dev :@alice bob"] * 2


def test_names_shows_the_highest_prefix_or_all_with_multi_prefix() -> None:
    """An operator who is also voiced is @bob in NAMES, and @+bob to a client that negotiated multi-prefix."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    carol = with_caps(factory, "carol", "multi-prefix", 41005, channel="#dev")
    alice.send_lines("MODE #dev +ov bob bob", "NAMES #dev")
    assert alice.lines()[-2] == f"{S} 353 alice = #dev :@alice @bob carol"
    carol.lines()
    carol.send_lines("NAMES #dev")
    assert carol.lines()[0] == f"{S} 353 carol = #dev :@alice @+bob carol"


def test_who_flags_show_away_operator_and_voice() -> None:
    """WHO #chan flags each member H or G, then @ for an operator or + for a voiced user."""
    factory, _, _ = setup()
    alice, bob, carol = in_channel(factory, "alice", "bob", "carol", channel="#dev")
    alice.send_lines("MODE #dev +v bob", "AWAY :lunch")
    carol.lines()
    carol.send_lines("WHO #dev")
    assert carol.lines() == [
        f"{S} 352 carol #dev alice chat.twisted chat.twisted alice G@ :0 alice",
        f"{S} 352 carol #dev bob chat.twisted chat.twisted bob H+ :0 bob",
        f"{S} 352 carol #dev carol chat.twisted chat.twisted carol H :0 carol",
        f"{S} 315 carol #dev :End of /WHO list",
    ]


def test_whois_and_who_show_a_server_operator() -> None:
    """WHOIS of a server operator includes 313 RPL_WHOISOPERATOR; WHO nick flags them with *; others get neither."""
    factory, _, boss = with_boss()
    alice = irc_user(factory, "alice", 41000)
    alice.send_lines("WHOIS boss", "WHO boss", "WHOIS alice", "WHO alice")
    lines = alice.lines()
    assert f"{S} 313 alice boss :is an IRC operator" in lines
    assert f"{S} 352 alice * boss chat.twisted chat.twisted boss H* :0 boss" in lines
    assert f"{S} 352 alice * alice chat.twisted chat.twisted alice H :0 alice" in lines
    assert sum(" 313 " in text for text in lines) == 1


# --- MODE ------------------------------------------------------------------------------------


def test_mode_query_answers_324_with_the_room_modes() -> None:
    """MODE #chan answers RPL_CHANNELMODEIS: + alone, then the modes set (anyone may ask)."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    bob.send_lines("MODE #dev")
    assert bob.lines() == [f"{S} 324 bob #dev +"]
    alice.send_lines("MODE #dev +tm")
    bob.lines()
    bob.send_lines("MODE #dev", "MODE #nowhere")
    assert bob.lines() == [f"{S} 324 bob #dev +mt", f"{S} 403 bob #nowhere :No such channel"]


def test_several_room_modes_in_one_command_each_shown_to_the_channel() -> None:
    """+mt sets both, -m+i sets and unsets; each change reaches every member as a MODE from the operator."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    alice.send_lines("MODE #dev +mt", "MODE #dev -m+i", "MODE #dev +t")
    shown = [
        f":{mask('alice')} MODE #dev +m",
        f":{mask('alice')} MODE #dev +t",
        f":{mask('alice')} MODE #dev -m",
        f":{mask('alice')} MODE #dev +i",
    ]
    assert alice.lines() == shown  # +t again changes nothing and shows nothing
    assert bob.lines() == shown
    bob.send_lines("MODE #dev")
    assert bob.lines() == [f"{S} 324 bob #dev +it"]


def test_operator_and_voice_changes_in_one_command() -> None:
    """+o-v+v with three nicknames makes three changes in order; a change that changes nothing is not shown."""
    factory, _, _ = setup()
    alice, bob, carol = in_channel(factory, "alice", "bob", "carol", channel="#dev")
    alice.send_lines("MODE #dev +o-v+v bob carol carol")
    shown = [f":{mask('alice')} MODE #dev +o bob", f":{mask('alice')} MODE #dev +v carol"]
    assert alice.lines() == shown and bob.lines() == shown and carol.lines() == shown
    bob.send_lines("MODE #dev -o+v alice bob", "NAMES #dev")
    assert bob.lines() == [
        f":{mask('bob')} MODE #dev -o alice",
        f":{mask('bob')} MODE #dev +v bob",
        f"{S} 353 bob = #dev :alice @bob +carol",
        f"{S} 366 bob #dev :End of /NAMES list",
    ]


def test_only_four_changes_with_a_parameter_per_command() -> None:
    """As ISUPPORT MODES=4 says, a fifth change with a parameter in one MODE is ignored."""
    factory, _, _ = setup()
    alice, *others = in_channel(factory, "alice", "b1", "b2", "b3", "b4", "b5", channel="#dev")
    alice.send_lines("MODE #dev +vvvvv b1 b2 b3 b4 b5")
    assert alice.lines() == [f":{mask('alice')} MODE #dev +v b{n}" for n in range(1, 5)]


def test_user_modes_still_work() -> None:
    """MODE on one's own nickname is still the user mode +i, not a channel request."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice", channel="#dev")
    alice.send_lines("MODE alice +i", "MODE alice", "MODE bob +i", "MODE alice +o")
    assert alice.lines() == [
        ":alice MODE alice :+i",
        f"{S} 221 alice +i",
        f"{S} 502 alice :Can't change mode for other users",
        f"{S} 501 alice :Unknown MODE flag",
    ]


def test_unknown_mode_letters_472_and_the_known_ones_still_apply() -> None:
    """+nt answers ERR_UNKNOWNMODE for n and still sets t."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice", channel="#dev")
    alice.send_lines("MODE #dev +nt", "MODE #dev +k")
    assert alice.lines() == [
        f"{S} 472 alice n :is unknown mode char to me",
        f":{mask('alice')} MODE #dev +t",
        f"{S} 472 alice k :is unknown mode char to me",
    ]


def test_mode_changes_need_an_operator_482_once_per_command() -> None:
    """A member who is not an operator gets one ERR_CHANOPRIVSNEEDED for a MODE of several changes; nothing changes."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    bob.send_lines("MODE #dev +mt-o+b alice x!*@*")
    assert bob.lines() == [f"{S} 482 bob #dev :You're not channel operator"]
    assert alice.lines() == []
    bob.send_lines("MODE #other +m")
    assert bob.lines() == [f"{S} 442 bob #other :You're not on that channel"]


def test_mode_of_a_nickname_not_in_the_channel() -> None:
    """+o of a nickname not in the channel is ERR_USERNOTINCHANNEL; of nobody online, ERR_NOSUCHNICK."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice", channel="#dev")
    irc_user(factory, "bob", 41010)
    alice.send_lines("MODE #dev +o bob", "MODE #dev +v nobody")
    assert alice.lines() == [
        f"{S} 441 alice bob #dev :They aren't on that channel",
        f"{S} 401 alice nobody :No such nick/channel",
    ]


# --- bans ------------------------------------------------------------------------------------


def test_ban_list_367_and_368() -> None:
    """MODE #chan +b, or b, with no mask lists the bans (mask, setter, time), then RPL_ENDOFBANLIST."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    bob.send_lines("MODE #dev +b")
    assert bob.lines() == [f"{S} 368 bob #dev :End of channel ban list"]
    alice.send_lines("MODE #dev +bb spam* *!*@192.0.2.1", "MODE #dev +b account:Mallory")
    bob.lines()
    bob.send_lines("MODE #dev b")
    assert bob.lines() == [
        f"{S} 367 bob #dev *!*@192.0.2.1 alice {int(START)}",
        f"{S} 367 bob #dev account:mallory alice {int(START)}",
        f"{S} 367 bob #dev spam*!*@* alice {int(START)}",
        f"{S} 368 bob #dev :End of channel ban list",
    ]


def test_bans_are_shown_as_hostmasks_and_lifted_by_them() -> None:
    """+b of a nickname, an address, a network or an account is shown as a hostmask; -b of what was shown lifts it."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    alice.send_lines("MODE #dev +bbbb mallory 192.0.2.7 *!*@10.0.0.0/8 account:eve")
    shown = [
        f":{mask('alice')} MODE #dev +b mallory!*@*",
        f":{mask('alice')} MODE #dev +b *!*@192.0.2.7",
        f":{mask('alice')} MODE #dev +b *!*@10.0.0.0/8",
        f":{mask('alice')} MODE #dev +b account:eve",
    ]
    assert alice.lines() == shown and bob.lines() == shown
    alice.send_lines("MODE #dev -bbbb mallory!*@* *!*@192.0.2.7 *!*@10.0.0.0/8 account:eve", "MODE #dev b")
    assert alice.lines() == [text.replace("+b", "-b") for text in shown] + [
        f"{S} 368 alice #dev :End of channel ban list"]


def test_a_ban_on_the_shown_host_bans_by_nickname() -> None:
    """Every user's host is chat.twisted, so *!carol@chat.twisted (a client's /ban carol) bans the nickname carol."""
    factory, _, _ = setup()
    alice, carol = in_channel(factory, "alice", "carol", channel="#dev")
    alice.send_lines("MODE #dev +b *!carol@chat.twisted")
    assert alice.lines() == [f":{mask('alice')} MODE #dev +b carol!*@*"]
    carol.lines()
    carol.send_lines("PRIVMSG #dev :let me speak", "PART #dev", "JOIN #dev")
    assert carol.lines() == [
        f"{S} 404 carol #dev :Cannot send to channel (you are banned)",
        f":{mask('carol')} PART #dev",
        f"{S} 474 carol #dev :Cannot join channel (+b)",
    ]


def test_a_bad_ban_mask_696_and_lifting_a_missing_ban_698() -> None:
    """A mask the chat cannot read is ERR_INVALIDMODEPARAM; lifting a ban that is not there is ERR_LISTMODENOTSET."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice", channel="#dev")
    alice.send_lines("MODE #dev +b *!*@host.example.org", "MODE #dev -b nobody")
    assert alice.lines() == [
        f"{S} 696 alice #dev b *!*@host.example.org :Invalid ban mask *!*@host.example.org: "
        "use nick!*@*, *!*@address, *!*@network/bits or account:NAME",
        f"{S} 698 alice #dev nobody!*@* b :Channel #dev list does not contain nobody!*@*",
    ]


def test_banned_from_joining_474() -> None:
    """A user a channel's ban matches cannot join it: ERR_BANNEDFROMCHAN, and the channel sees nothing."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice", channel="#dev")
    alice.send_lines("MODE #dev +b mallory")
    alice.lines()
    mallory = irc_user(factory, "mallory", 41010)
    mallory.send_lines("JOIN #dev", "NAMES #dev")
    assert mallory.lines() == [
        f"{S} 474 mallory #dev :Cannot join channel (+b)",
        f"{S} 353 mallory = #dev :@alice",
        f"{S} 366 mallory #dev :End of /NAMES list",
    ]
    assert alice.lines() == []


# --- what the room modes do ------------------------------------------------------------------


def test_moderated_channel_404_until_voiced() -> None:
    """In a +m channel only operators and voiced users speak: others get 404 (+m), the channel hears nothing."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    alice.send_lines("MODE #dev +m")
    bob.lines()
    bob.send_lines("PRIVMSG #dev :hello?", "NOTICE #dev :quietly")
    assert bob.lines() == [f"{S} 404 bob #dev :Cannot send to channel (+m)"]  # never an answer to a NOTICE
    alice.send_lines("MODE #dev +v bob")
    bob.lines()
    bob.send_lines("PRIVMSG #dev :thanks")
    assert alice.lines()[-1] == f":{mask('bob')} PRIVMSG #dev :thanks"


def test_topic_locked_channel_482() -> None:
    """In a +t channel a member who is not an operator gets ERR_CHANOPRIVSNEEDED for TOPIC; an operator sets it."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    alice.send_lines("MODE #dev +t")
    bob.lines()
    bob.send_lines("TOPIC #dev :mine now")
    assert bob.lines() == [f"{S} 482 bob #dev :You're not channel operator"]
    alice.send_lines("TOPIC #dev :ours")
    assert bob.lines() == [f":{mask('alice')} TOPIC #dev :ours"]


def test_invite_only_channel_473_then_invite() -> None:
    """+i keeps out who is not invited (473); INVITE tells the inviter 341 and the invited an INVITE; they may join."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    carol = irc_user(factory, "carol", 41010)
    alice.send_lines("MODE #dev +i")
    alice.lines()
    bob.lines()
    carol.send_lines("JOIN #dev")
    assert carol.lines() == [f"{S} 473 carol #dev :Cannot join channel (+i)"]
    bob.send_lines("INVITE carol #dev")
    assert bob.lines() == [f"{S} 482 bob #dev :You're not channel operator"]  # +i: only operators invite
    alice.send_lines("INVITE carol #dev")
    assert alice.lines() == [f"{S} 341 alice carol #dev"]
    assert carol.lines() == [f":{mask('alice')} INVITE carol #dev"]
    carol.send_lines("JOIN #dev")
    assert carol.lines()[0] == f":{mask('carol')} JOIN #dev"


def test_invite_errors() -> None:
    """INVITE of a member is 443, of nobody 401, to a channel one is not in 442, to a non-channel 403."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    alice.send_lines("INVITE bob #dev", "INVITE nobody #dev", "INVITE bob #elsewhere", "INVITE bob dev")
    assert alice.lines() == [
        f"{S} 443 alice bob #dev :is already on channel",
        f"{S} 401 alice nobody :No such nick/channel",
        f"{S} 442 alice #elsewhere :You're not on that channel",
        f"{S} 403 alice dev :No such channel",
    ]
    alice.send_lines("INVITE bob")
    assert alice.lines() == [f"{S} 461 alice INVITE :Not enough parameters"]


# --- KICK ------------------------------------------------------------------------------------


def test_kick_is_shown_to_the_channel_and_takes_the_user_out() -> None:
    """KICK reaches every member, the kicked one too; they are then out of the channel (404, not in NAMES) and may rejoin."""
    factory, _, _ = setup()
    alice, bob, carol = in_channel(factory, "alice", "bob", "carol", channel="#dev")
    alice.send_lines("KICK #dev bob :behave")
    kick = f":{mask('alice')} KICK #dev bob :behave"
    assert alice.lines() == [kick] and bob.lines() == [kick] and carol.lines() == [kick]
    bob.send_lines("PRIVMSG #dev :hey", "NAMES #dev")
    assert bob.lines() == [
        f"{S} 404 bob #dev :Cannot send to channel",
        f"{S} 353 bob = #dev :@alice carol",
        f"{S} 366 bob #dev :End of /NAMES list",
    ]
    assert carol.lines() == []
    bob.send_lines("JOIN #dev")
    assert bob.lines()[0] == f":{mask('bob')} JOIN #dev"


def test_kick_reason_defaults_to_the_kickers_nickname_and_several_at_once() -> None:
    """Without a reason a KICK shows the kicker's nickname, as servers do; KICK #c a,b kicks each."""
    factory, _, _ = setup()
    alice, bob, carol = in_channel(factory, "alice", "bob", "carol", channel="#dev")
    alice.send_lines("KICK #dev bob,carol")
    assert alice.lines() == [f":{mask('alice')} KICK #dev bob :alice", f":{mask('alice')} KICK #dev carol :alice"]


def test_kick_errors() -> None:
    """KICK by a non-operator is 482, of someone not in the channel 441, of nobody 401, outside one's channels 442, of no channel 403."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    irc_user(factory, "carol", 41010)
    bob.send_lines("KICK #dev alice")
    assert bob.lines() == [f"{S} 482 bob #dev :You're not channel operator"]
    alice.send_lines("KICK #dev carol", "KICK #dev nobody", "KICK #elsewhere bob", "KICK dev bob", "KICK #dev")
    assert alice.lines() == [
        f"{S} 441 alice carol #dev :They aren't on that channel",
        f"{S} 401 alice nobody :No such nick/channel",
        f"{S} 442 alice #elsewhere :You're not on that channel",
        f"{S} 403 alice dev :No such channel",
        f"{S} 461 alice KICK :Not enough parameters",
    ]


def test_protected_users_482_with_a_clear_reason() -> None:
    """A channel operator cannot kick or deop a server operator: 482 says they are protected."""
    factory, _, boss = with_boss()
    (alice,) = in_channel(factory, "alice", channel="#dev")
    boss.send_lines("JOIN #dev", "MODE #dev +o boss")
    alice.lines()
    boss.lines()
    alice.send_lines("KICK #dev boss", "MODE #dev -o boss")
    protected = f"{S} 482 alice #dev :boss is protected: they own #dev or are a server operator"
    assert alice.lines() == [protected, protected]
    assert boss.lines() == []  # still in #dev, still its operator


# --- CLAIM -----------------------------------------------------------------------------------


def test_claim_keeps_the_channel_and_gives_its_owner_operator_back() -> None:
    """CLAIM by a registered operator is announced; after leaving and coming back the owner is made operator by the server."""
    factory, _, _ = setup()
    register_account(factory, "alice", 42000)
    alice = account_user(factory, "alice", 41000, "#dev")
    bob = irc_user(factory, "bob", 41001)
    bob.send_lines("JOIN #dev")
    alice.lines()
    bob.lines()
    alice.send_lines("CLAIM #dev")
    announced = (f":chat.twisted NOTICE #dev :alice claimed #dev for the account alice: "
                 "it keeps its operators, bans, modes and topic")
    assert alice.lines() == [announced] and bob.lines() == [announced]
    alice.send_lines("PART #dev", "JOIN #dev")
    assert bob.lines() == [f":{mask('alice')} PART #dev", f":{mask('alice')} JOIN #dev", f"{S} MODE #dev +o alice"]
    bob.send_lines("CLAIM #dev")
    assert bob.lines() == [f"{S} FAIL CLAIM ALREADY_CLAIMED #dev :#dev is already claimed by the account alice"]


def test_claim_errors() -> None:
    """A guest's CLAIM is FAIL CLAIM ACCOUNT_REQUIRED; the lobby is FAIL CLAIM CANNOT_CLAIM; a non-operator 482."""
    factory, _, _ = setup()
    register_account(factory, "dave", 42000)
    (alice,) = in_channel(factory, "alice", channel="#dev")
    dave = account_user(factory, "dave", 41001, "#lobby")
    alice.send_lines("CLAIM #dev", "CLAIM dev")
    assert alice.lines() == [
        f"{S} FAIL CLAIM ACCOUNT_REQUIRED :Only a registered user may do that: log in with SASL or PASS nick:password",
        f"{S} 403 alice dev :No such channel",
    ]
    dave.send_lines("CLAIM #lobby", "JOIN #dev", "CLAIM #dev")
    lines = dave.lines()
    assert lines[0] == f"{S} FAIL CLAIM CANNOT_CLAIM #lobby :#lobby belongs to the server; only a server operator may claim it"
    assert lines[-1] == f"{S} 482 dave #dev :You're not channel operator"


# --- server operators ------------------------------------------------------------------------


def test_kill_by_a_server_operator() -> None:
    """KILL sends its victim KILL and ERROR and closes them; their channels see a QUIT with the core's reason."""
    factory, _, boss = with_boss()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    boss.send_lines("KILL bob :spamming")
    assert bob.lines() == [
        f":{mask('boss')} KILL bob :spamming",
        "ERROR :Closing link: chat.twisted (Killed by boss: spamming)",
    ]
    assert not bob.transport.connected
    assert alice.lines() == [f":{mask('bob')} QUIT :killed by boss: spamming"]
    boss.send_lines("KILL nobody", "KILL alice")
    assert boss.lines() == [f"{S} 401 boss nobody :No such nick/channel"]
    assert alice.lines() == [f":{mask('boss')} KILL alice :Killed by boss", "ERROR :Closing link: chat.twisted (Killed by boss)"]


def test_wallops_reaches_everyone_online() -> None:
    """WALLOPS from a server operator reaches every user, on IRC (as WALLOPS, server-time tagged if asked) and on the line door."""
    factory, _, boss = with_boss()
    alice = irc_user(factory, "alice", 41000)
    timed = with_caps(factory, "tim", "server-time", 41001, channel=None)
    carol = line_user(with_line_users(factory), "carol", 42000)
    boss.send_lines("WALLOPS :restart at noon")
    assert boss.lines() == [f":{mask('boss')} WALLOPS :restart at noon"]
    assert alice.lines() == [f":{mask('boss')} WALLOPS :restart at noon"]
    assert timed.lines() == [f"@time=2026-01-02T03:04:05.000Z :{mask('boss')} WALLOPS :restart at noon"]
    assert any("restart at noon" in text for text in carol.lines())


def test_server_operator_commands_need_a_server_operator_481() -> None:
    """KILL, WALLOPS, GBAN, UNGBAN and GBANS from anyone else are ERR_NOPRIVILEGES and do nothing."""
    factory, _, boss = with_boss()
    alice = irc_user(factory, "alice", 41000)
    alice.send_lines("KILL boss :bye", "WALLOPS :hi", "GBAN 192.0.2.1", "UNGBAN 192.0.2.1", "GBANS")
    assert alice.lines() == [f"{S} 481 alice :Permission Denied- You're not an IRC operator"] * 5
    assert boss.lines() == [] and boss.transport.connected


def test_gban_gbans_and_ungban() -> None:
    """GBAN with a duration and reason, GBANS listing the bans, UNGBAN lifting one: each answered by a NOTICE."""
    factory, _, boss = with_boss()
    boss.send_lines("GBAN account:Mallory 1d :spam", "GBAN 10.0.0.0/8 :that network", "GBANS", "UNGBAN 10.0.0.0/8", "GBANS")
    assert boss.lines() == [
        f"{S} NOTICE boss :Server ban set on account:mallory (set by boss on 2026-01-02 03:04:05 UTC, until {TOMORROW}): spam",
        f"{S} NOTICE boss :Server ban set on 10.0.0.0/8 (set by boss on 2026-01-02 03:04:05 UTC, until lifted): that network",
        f"{S} NOTICE boss :2 server bans:",
        f"{S} NOTICE boss :10.0.0.0/8 (set by boss on 2026-01-02 03:04:05 UTC, until lifted): that network",
        f"{S} NOTICE boss :account:mallory (set by boss on 2026-01-02 03:04:05 UTC, until {TOMORROW}): spam",
        f"{S} NOTICE boss :End of server bans",
        f"{S} NOTICE boss :Server ban on 10.0.0.0/8 lifted",
        f"{S} NOTICE boss :1 server bans:",
        f"{S} NOTICE boss :account:mallory (set by boss on 2026-01-02 03:04:05 UTC, until {TOMORROW}): spam",
        f"{S} NOTICE boss :End of server bans",
    ]


def test_gban_errors_are_standard_replies() -> None:
    """A nickname mask, a bad duration and lifting a ban that is not there are FAIL replies of GBAN and UNGBAN."""
    factory, _, boss = with_boss()
    boss.send_lines("GBAN mallory", "GBAN 192.0.2.1 5x :why", "UNGBAN 192.0.2.1", "GBANS")
    assert boss.lines() == [
        f"{S} FAIL GBAN INVALID_MASK mallory :A ban mask is nick!*@*, *!*@address, *!*@network/bits or account:NAME "
        "(a server ban: no nickname)",
        f"{S} FAIL GBAN INVALID_DURATION 5x :A duration is a number of seconds, or one with s, m, h, d or w (30m, 7d), "
        "at most ten years",
        f"{S} FAIL UNGBAN NO_SUCH_BAN 192.0.2.1/32 :There is no server ban on 192.0.2.1/32",
        f"{S} NOTICE boss :No server bans",
    ]


def test_a_gbanned_account_is_refused_at_login() -> None:
    """An account under a server ban logging in with PASS (465, ERROR) or SASL (904, 465, ERROR) is refused and closed."""
    factory, _, boss = with_boss()
    register_account(factory, "mallory", 42001)
    boss.send_lines("GBAN account:mallory 1d :spam")
    boss.lines()
    refused = [
        f"{S} 465 * :You are banned from this server: spam (until {TOMORROW})",
        f"ERROR :Closing link: chat.twisted (banned: spam; until {TOMORROW})",
    ]
    by_pass = IrcConnection(factory, 41010)
    by_pass.send_lines(f"PASS mallory:{PASSWORD}", "NICK mallory", "USER mallory 0 * :M")
    assert by_pass.lines()[-2:] == refused and not by_pass.transport.connected
    by_sasl = IrcConnection(factory, 41011)
    by_sasl.send_lines("CAP REQ :sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("", "mallory", PASSWORD))
    lines = by_sasl.lines()
    assert lines[-3:] == [f"{S} 904 * :SASL authentication failed"] + refused  # the outcome the client waits for
    assert not by_sasl.transport.connected
    assert not any(" 903 " in text for text in lines)  # never "SASL authentication successful"


def test_a_gbanned_address_is_closed_and_refused_at_connect() -> None:
    """A server ban on an address closes its users already connected (465, ERROR) and refuses new connections from it."""
    factory, _, boss = with_boss()
    (alice,) = in_channel(factory, "alice", channel="#dev")
    boss.send_lines("GBAN *!*@127.0.0.1 :no")  # every test connection comes from 127.0.0.1; boss keeps his
    assert alice.lines() == [
        f"{S} 465 alice :You are banned from this server: no",
        "ERROR :Closing link: chat.twisted (banned: no)",
    ]
    assert not alice.transport.connected and boss.transport.connected
    newcomer = IrcConnection(factory, 41020)
    assert newcomer.lines() == [
        f"{S} 465 * :You are banned from this server: no",
        "ERROR :Closing link: chat.twisted (banned: no)",
    ]
    assert not newcomer.transport.connected


def test_a_server_operator_may_act_in_any_channel() -> None:
    """A server operator who is not a channel's operator may still change its modes and kick in it."""
    factory, _, boss = with_boss()
    alice, bob = in_channel(factory, "alice", "bob", channel="#dev")
    boss.send_lines("JOIN #dev", "MODE #dev +m", "KICK #dev alice :enough")
    assert bob.lines() == [
        f":{mask('boss')} JOIN #dev",
        f":{mask('boss')} MODE #dev +m",
        f":{mask('boss')} KICK #dev alice :enough",
    ]


# --- across doors, and every event --------------------------------------------------------------


def test_a_line_operator_s_changes_reach_irc_users() -> None:
    """What an operator does from the line door (/op, /mode) reaches IRC members as MODE lines."""
    factory, _, _ = setup()
    carol = line_user(with_line_users(factory), "carol", 42000)  # starts in the lobby
    carol.send("/join dev\n")
    carol.lines()
    bob = irc_user(factory, "bob", 41001)
    bob.send_lines("JOIN #dev")
    assert f"{S} 353 bob = #dev :bob @carol" in bob.lines()
    carol.send("/op bob\n/mode +m\n")
    assert bob.lines() == [f":{mask('carol')} MODE #dev +o bob", f":{mask('carol')} MODE #dev +m"]


def _events() -> list[type[Event]]:
    return [kind for kind in vars(model).values()
            if inspect.isclass(kind) and issubclass(kind, Event) and kind is not Event]


@pytest.mark.parametrize("kind", _events(), ids=lambda kind: kind.__name__)
def test_every_event_has_an_irc_rendering(kind: type[Event]) -> None:
    """Each event class of the model has its own IRC rendering, not the fallback that shows nothing."""
    dispatcher = vars(IrcView)["render"].dispatcher
    assert dispatcher.dispatch(kind) is not dispatcher.dispatch(Event), kind.__name__
    assert dataclasses.is_dataclass(kind)


def test_server_ban_list_search_results_and_cut_off_render_as_notices() -> None:
    """A server BanList (empty room), SearchResults (no IRC command asks for them) and RoomCutOff render as notices."""
    view = IrcView(timezone.utc)
    view.nick = "boss"
    assert view.render(BanList("", (Ban("192.0.2.0/24", "", START, None, ""),))) == [
        f"{S} NOTICE boss :1 server bans:",
        f"{S} NOTICE boss :192.0.2.0/24 (set by chat.twisted on 2026-01-02 03:04:05 UTC, until lifted)",
        f"{S} NOTICE boss :End of server bans",
    ]
    found = SearchResults("cake", (StoredMessage("dev", "say", "alice", "cake!", START),))
    assert view.render(found) == [
        f"{S} NOTICE boss :1 messages match 'cake', newest first:",
        f"{S} NOTICE boss :[2026-01-02 03:04:05 UTC] #dev alice: cake!",
        f"{S} NOTICE boss :End of search results",
    ]
    assert view.render(RoomCutOff("dev")) == [
        f"{S} NOTICE #dev :This server lost its link to the rest of the network for a while: #dev may have missed "
        "messages meanwhile (CHATHISTORY has them)"]


@pytest.mark.parametrize(("sent", "read"), [
    ("*!carol@chat.twisted", "carol"),
    ("carol!*@chat.twisted", "carol"),
    ("*!*carol@*.twisted", "*carol"),
    ("*!~abcdefghij@chat.twisted", "abcdefghij*"),
    ("*!*@chat.twisted", "*"),
    ("*!spam@*", "spam"),
    ("*!*@*", "*"),
    ("mallory!*@*", "mallory"),
    ("*!*@192.0.2.1", "*!*@192.0.2.1"),
    ("*!spam@10.0.0.0/8", "*!spam@10.0.0.0/8"),
    ("account:eve", "account:eve"),
])
def test_ban_mask_reads_the_shown_host_as_saying_nothing(sent: str, read: str) -> None:
    """A hostmask on the host every user is shown with, or on any host (*), becomes a nickname mask; the rest is the core's."""
    assert ban_mask(sent, "chat.twisted") == read


@pytest.mark.parametrize(("canonical", "shown"), [
    ("spam*", "spam*!*@*"),
    ("192.0.2.1/32", "*!*@192.0.2.1"),
    ("2001:db8::1/128", "*!*@2001:db8::1"),
    ("10.0.0.0/8", "*!*@10.0.0.0/8"),
    ("account:eve", "account:eve"),
])
def test_ban_hostmask_shows_a_canonical_mask_as_irc_clients_expect(canonical: str, shown: str) -> None:
    """Each canonical mask is shown as a hostmask (accounts as they are)."""
    assert ban_hostmask(canonical) == shown
