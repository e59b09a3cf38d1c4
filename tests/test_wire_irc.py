"""
Tests for the IRC door (chat_twisted.wire.irc, chat_twisted.wire.irc_render): registration, every
command, its numerics and errors, the connection's protections, and IRC users chatting with
line users on the same core.

Every connection is a StringTransportWithDisconnection on one core with a fake clock set to
03:04:05 UTC (tests.helpers.START); no sockets, no reactor, no sleeps. Flood control is off
(C{rate=0}) unless a test is about it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock

from chat_twisted import __version__
from chat_twisted.model import StoredMessage
from chat_twisted.limits import ConnectionLimits
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.irc import IrcFactory
from tests.helpers import (
    START,
    IrcConnection,
    LineConnection,
    S,
    SwitchedHasher,
    in_channel,
    irc_user,
    isupport_tokens,
    line_user,
    make_core,
    make_irc_factory,
    mask,
    setup,
    with_line_users,
)

#: The time prefix of a line-door message sent at helpers.START.
AT = "[03:04:05]"


def burst_tail(nick: str, online: int) -> list[str]:
    """The end of the registration burst, after the 005 lines: LUSERS and the missing MOTD."""
    return [
        f"{S} 251 {nick} :There are {online} users and 0 invisible on 1 servers",
        f"{S} 255 {nick} :I have {online} clients and 0 servers",
        f"{S} 422 {nick} :MOTD File is missing",
    ]


def burst_head(nick: str) -> list[str]:
    """The start of the registration burst: 001 to 004."""
    version = f"chat_twisted-{__version__}"
    return [
        f"{S} 001 {nick} :Welcome to the chat_twisted IRC network, {mask(nick)}",
        f"{S} 002 {nick} :Your host is chat.twisted, running {version}",
        f"{S} 003 {nick} :This server was created 2026-01-02 03:04:05",
        f"{S} 004 {nick} chat.twisted {version} i bimotv bov",
    ]


def received_text(lines: list[str], sender: str, target: str = "#lobby") -> str:
    """The text of C{sender}'s PRIVMSG C{lines} to C{target}, joined (a long message arrives split)."""
    head = f":{mask(sender)} PRIVMSG {target} :"
    assert lines and all(text.startswith(head) and len(text.encode("utf-8")) + 2 <= 512 for text in lines), lines
    return "".join(text[len(head):] for text in lines)


# --- registration ----------------------------------------------------------------------------


def test_nothing_is_said_before_the_client_speaks() -> None:
    """An IRC server waits for the client: connecting writes nothing."""
    factory, _, _ = setup()
    assert IrcConnection(factory).lines() == []


def test_nick_then_user_registers_with_the_full_burst() -> None:
    """NICK then USER completes registration: 001-004, 005 lines, LUSERS and 422, in that order."""
    factory, _, _ = setup()
    burst = IrcConnection(factory).register("alice")
    assert burst[:4] == burst_head("alice")
    assert all(" 005 alice " in text for text in burst[4:-3])
    assert len(burst) > 7
    assert burst[-3:] == burst_tail("alice", 1)


def test_user_then_nick_registers_too() -> None:
    """USER before NICK registers as well, once the NICK arrives."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("USER bob 0 * :Bob Builder")
    assert connection.lines() == []
    connection.send_lines("NICK bob")
    burst = connection.lines()
    assert burst[:4] == burst_head("bob")
    assert burst[-3:] == burst_tail("bob", 1)


def test_nick_alone_does_not_register() -> None:
    """NICK without USER leaves the client unregistered (commands get 451)."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("NICK alice", "JOIN #lobby")
    assert connection.lines() == [f"{S} 451 * :You have not registered"]


def test_isupport_tokens() -> None:
    """RPL_ISUPPORT advertises what the door honours: names, lengths, prefixes, modes, network, UTF-8."""
    factory, _, _ = setup()
    burst = IrcConnection(factory).register("alice")
    tokens = isupport_tokens(burst)
    assert {key: tokens.get(key) for key in (
        "CASEMAPPING", "CHANTYPES", "NICKLEN", "CHANNELLEN", "TOPICLEN", "PREFIX", "CHANMODES", "NETWORK", "UTF8ONLY",
    )} == {
        "CASEMAPPING": "ascii", "CHANTYPES": "#", "NICKLEN": "30", "CHANNELLEN": "31", "TOPICLEN": "390",
        "PREFIX": "(ov)@+", "CHANMODES": "b,,,imt", "NETWORK": "chat_twisted", "UTF8ONLY": "",
    }


def test_isupport_lines_fit_irc_limits() -> None:
    """Each 005 line holds at most 13 tokens and fits in 512 bytes."""
    factory, _, _ = setup()
    isupport = [text for text in IrcConnection(factory).register("alice") if " 005 " in text]
    assert isupport  # the burst has 005 lines to check
    for text in isupport:
        assert len(text.encode("utf-8")) + 2 <= 512
        assert len(text.partition(" :")[0].split()[3:]) <= 13


def test_lusers_counts_users_online() -> None:
    """LUSERS answers 251 and 255 with the number of users logged in, from either door."""
    factory, _, _ = setup()
    line_user(with_line_users(factory), "carol", 42000)
    alice = irc_user(factory, "alice", 41001)
    alice.send_lines("LUSERS")
    assert alice.lines() == burst_tail("alice", 2)[:2]


def test_motd_is_missing() -> None:
    """MOTD answers ERR_NOMOTD (422)."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("MOTD")
    assert alice.lines() == [f"{S} 422 alice :MOTD File is missing"]


def test_registration_times_out_with_error() -> None:
    """A connection that does not register within the core's nick_timeout gets ERROR and is closed."""
    core, clock = make_core(nick_timeout=5)
    factory, _, _ = make_irc_factory(core, rate=0)
    connection = IrcConnection(factory)
    connection.send_lines("NICK alice")
    clock.advance(4.9)
    assert connection.lines() == [] and connection.transport.connected
    clock.advance(0.1)
    assert connection.lines() == ["ERROR :Closing link: chat.twisted (registration timed out)"]
    assert not connection.transport.connected


def test_registered_client_does_not_time_out() -> None:
    """Registering in time stops the registration timer."""
    core, clock = make_core(nick_timeout=5)
    factory, _, _ = make_irc_factory(core, rate=0)
    alice = irc_user(factory, "alice")
    clock.advance(10)
    assert alice.lines() == [] and alice.transport.connected


def test_commands_before_registration_get_451() -> None:
    """Commands that need registration are answered ERR_NOTREGISTERED, addressed to C{*}."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("PRIVMSG bob :hi", "WHOIS bob")
    assert connection.lines() == [f"{S} 451 * :You have not registered"] * 2


def test_unknown_command_421() -> None:
    """An unknown command is answered ERR_UNKNOWNCOMMAND with its name, before and after registration."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("FROB x")
    assert connection.lines() == [f"{S} 421 * FROB :Unknown command"]
    connection.register("alice")
    connection.send_lines("knock #lobby")
    assert connection.lines() == [f"{S} 421 alice KNOCK :Unknown command"]


def test_missing_parameters_461() -> None:
    """A command short of parameters is answered ERR_NEEDMOREPARAMS naming it."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("USER alice 0 *")
    assert connection.lines() == [f"{S} 461 * USER :Not enough parameters"]
    connection.register("alice")
    connection.send_lines("JOIN", "WHOIS", "TOPIC")
    assert connection.lines() == [
        f"{S} 461 alice JOIN :Not enough parameters",
        f"{S} 461 alice WHOIS :Not enough parameters",
        f"{S} 461 alice TOPIC :Not enough parameters",
    ]


def test_nick_without_a_name_431() -> None:
    """NICK with no nickname is answered ERR_NONICKNAMEGIVEN."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("NICK")
    assert connection.lines() == [f"{S} 431 * :No nickname given"]


def test_user_and_pass_after_registration_462() -> None:
    """USER and PASS once registered are answered ERR_ALREADYREGISTERED."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("USER alice 0 * :Alice", "PASS secret")
    assert alice.lines() == [f"{S} 462 alice :You may not reregister"] * 2


def test_erroneous_nick_at_registration_432_then_another() -> None:
    """An invalid nickname at registration gets 432; the client may then register with another."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("NICK 9lives", "USER x 0 * :x")
    assert connection.lines() == [f"{S} 432 * 9lives :Erroneous nickname"]
    connection.send_lines("NICK lives")
    assert connection.lines()[:1] == burst_head("lives")[:1]


def test_nick_in_use_at_registration_433_then_another() -> None:
    """A nickname in use at registration gets 433 addressed to C{*}; NICK with a free one registers."""
    factory, _, _ = setup()
    irc_user(factory, "alice", 41001)
    connection = IrcConnection(factory, 41002)
    connection.send_lines("NICK ALICE", "USER x 0 * :x")
    assert connection.lines() == [f"{S} 433 * ALICE :Nickname is already in use"]
    connection.send_lines("NICK alice2")
    assert connection.lines()[-3:] == burst_tail("alice2", 2)


# --- PING and liveness -----------------------------------------------------------------------


def test_ping_is_answered_with_pong() -> None:
    """PING is answered PONG with the same token, before registration too."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("PING :abc def")
    assert connection.lines() == [f"{S} PONG chat.twisted :abc def"]
    connection.register("alice")
    connection.send_lines("PING 12345")
    assert connection.lines() == [f"{S} PONG chat.twisted :12345"]


def test_ping_without_token_461() -> None:
    """PING needs a token."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("PING")
    assert alice.lines() == [f"{S} 461 alice PING :Not enough parameters"]


def test_server_pings_a_silent_client_then_drops_it() -> None:
    """After 90 s of silence the server sends PING; 60 s more without an answer close the link."""
    factory, core, clock = setup()
    alice = irc_user(factory, "alice", 41001)
    bob = irc_user(factory, "bob", 41002)
    alice.send_lines("JOIN #lobby")
    bob.send_lines("JOIN #lobby")
    alice.lines(), bob.lines()
    clock.advance(89.9)
    assert alice.lines() == []
    clock.advance(0.1)
    assert alice.lines() == ["PING :chat.twisted"]
    assert bob.lines() == ["PING :chat.twisted"]
    bob.send_lines("PONG :chat.twisted")
    clock.advance(59.9)
    assert alice.lines() == [] and alice.transport.connected
    clock.advance(0.1)
    assert alice.lines() == ["ERROR :Closing link: chat.twisted (Ping timeout)"]
    assert not alice.transport.connected
    assert bob.lines() == [f":{mask('alice')} QUIT :ping timeout"]


def test_answering_the_ping_keeps_the_link() -> None:
    """A PONG (any line) after the server's PING keeps the client, and the cycle starts again."""
    factory, _, clock = setup()
    alice = irc_user(factory, "alice")
    clock.advance(90)
    assert alice.lines() == ["PING :chat.twisted"]
    clock.advance(30)
    alice.send_lines("PONG :chat.twisted")
    clock.advance(89.9)
    assert alice.lines() == [] and alice.transport.connected
    clock.advance(0.1)
    assert alice.lines() == ["PING :chat.twisted"]


def test_any_input_resets_the_ping_timer() -> None:
    """Whatever the client sends counts as life: the server's PING comes 90 s after its last line."""
    factory, _, clock = setup()
    alice = irc_user(factory, "alice")
    clock.advance(80)
    alice.send_lines("LUSERS")
    alice.lines()
    clock.advance(89.9)
    assert alice.lines() == []
    clock.advance(0.1)
    assert alice.lines() == ["PING :chat.twisted"]


# --- JOIN ------------------------------------------------------------------------------------


def test_join_echoes_and_lists_names() -> None:
    """JOIN is echoed to the joiner, followed by RPL_NAMREPLY and RPL_ENDOFNAMES; members see the JOIN."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")
    bob = irc_user(factory, "bob", 41002)
    bob.send_lines("JOIN #lobby")
    assert bob.lines() == [
        f":{mask('bob')} JOIN #lobby",
        f"{S} 353 bob = #lobby :alice bob",
        f"{S} 366 bob #lobby :End of /NAMES list",
    ]
    assert alice.lines() == [f":{mask('bob')} JOIN #lobby"]


def test_join_shows_the_topic_with_332_and_333() -> None:
    """Joining a channel with a topic shows RPL_TOPIC and RPL_TOPICWHOTIME before the names."""
    core, _ = make_core(join_history=0)  # no replay of the topic change on joining
    factory, _, _ = make_irc_factory(core, rate=0)
    (alice,) = in_channel(factory, "alice", channel="#dev")
    alice.send_lines("TOPIC #dev :all about dev")
    bob = irc_user(factory, "bob", 41002)
    bob.send_lines("JOIN #dev")
    assert bob.lines() == [
        f":{mask('bob')} JOIN #dev",
        f"{S} 332 bob #dev :all about dev",
        f"{S} 333 bob #dev {mask('alice')} {int(START)}",
        f"{S} 353 bob = #dev :@alice bob",
        f"{S} 366 bob #dev :End of /NAMES list",
    ]


def test_join_several_channels_at_once() -> None:
    """JOIN #a,#b joins each in turn, each with its own names."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("JOIN #a,#b")
    assert alice.lines() == [
        f":{mask('alice')} JOIN #a",
        f"{S} 353 alice = #a :@alice",
        f"{S} 366 alice #a :End of /NAMES list",
        f":{mask('alice')} JOIN #b",
        f"{S} 353 alice = #b :@alice",
        f"{S} 366 alice #b :End of /NAMES list",
    ]


def test_join_0_parts_every_channel() -> None:
    """C{JOIN 0} parts every channel the user is in."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.send_lines("JOIN #dev", "JOIN 0")
    assert alice.lines()[-2:] == [f":{mask('alice')} PART #lobby", f":{mask('alice')} PART #dev"]
    assert bob.lines() == [f":{mask('alice')} PART #lobby"]


def test_join_without_hash_403() -> None:
    """A channel name without C{#} is answered ERR_NOSUCHCHANNEL; the other channels are still joined."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("JOIN lobby,#dev")
    assert alice.lines()[:2] == [f"{S} 403 alice lobby :No such channel", f":{mask('alice')} JOIN #dev"]


def test_join_invalid_name_479() -> None:
    """A channel name the core refuses is answered 479 (illegal channel name)."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("JOIN #9lives", "JOIN #a.b")
    assert alice.lines() == [
        f"{S} 479 alice #9lives :Illegal channel name",
        f"{S} 479 alice #a.b :Illegal channel name",
    ]


def test_join_twice_is_silent() -> None:
    """Joining a channel one is already on does nothing and says nothing."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.send_lines("JOIN #lobby", "JOIN #LOBBY")
    assert alice.lines() == [] and bob.lines() == []


# --- PART ------------------------------------------------------------------------------------


def test_part_is_seen_by_members_with_its_reason() -> None:
    """PART with a reason is shown to the parter and the remaining members."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    bob.send_lines("PART #lobby :time for tea")
    assert bob.lines() == [f":{mask('bob')} PART #lobby :time for tea"]
    assert alice.lines() == [f":{mask('bob')} PART #lobby :time for tea"]


def test_part_without_reason() -> None:
    """PART without a reason has no trailing parameter."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    bob.send_lines("PART #lobby")
    assert alice.lines() == [f":{mask('bob')} PART #lobby"]


def test_part_a_channel_one_is_not_on_442() -> None:
    """PART of a channel one is not on is answered ERR_NOTONCHANNEL."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("PART #lobby", "PART nohash")
    assert alice.lines() == [
        f"{S} 442 alice #lobby :You're not on that channel",
        f"{S} 403 alice nohash :No such channel",
    ]


# --- PRIVMSG and NOTICE ----------------------------------------------------------------------


def test_privmsg_to_a_channel_reaches_the_other_members() -> None:
    """A channel PRIVMSG reaches every other member and (without echo-message) not the sender."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.send_lines("PRIVMSG #lobby :hello, world")
    assert bob.lines() == [f":{mask('alice')} PRIVMSG #lobby :hello, world"]
    assert alice.lines() == []


def test_notice_to_a_channel() -> None:
    """A channel NOTICE reaches the members as a NOTICE."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.send_lines("NOTICE #lobby :heads up")
    assert bob.lines() == [f":{mask('alice')} NOTICE #lobby :heads up"]


def test_privmsg_and_notice_to_a_nick() -> None:
    """A PRIVMSG or NOTICE to a nickname reaches only that user."""
    factory, _, _ = setup()
    alice, bob, carol = in_channel(factory, "alice", "bob", "carol")
    alice.send_lines("PRIVMSG BOB :psst", "NOTICE bob :fyi")
    assert bob.lines() == [f":{mask('alice')} PRIVMSG bob :psst", f":{mask('alice')} NOTICE bob :fyi"]
    assert alice.lines() == [] and carol.lines() == []


def test_privmsg_to_several_targets() -> None:
    """A comma-separated target list sends to each channel and nickname."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    carol = irc_user(factory, "carol", 41005)
    alice.send_lines("PRIVMSG #lobby,carol :both")
    assert bob.lines() == [f":{mask('alice')} PRIVMSG #lobby :both"]
    assert carol.lines() == [f":{mask('alice')} PRIVMSG carol :both"]


def test_privmsg_to_an_unknown_nick_401() -> None:
    """A PRIVMSG to nobody online (and not registered) is answered ERR_NOSUCHNICK."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("PRIVMSG nobody :hi")
    assert alice.lines() == [f"{S} 401 alice nobody :No such nick/channel"]


def test_privmsg_to_a_channel_one_is_not_on_404() -> None:
    """A PRIVMSG to a channel one has not joined is answered ERR_CANNOTSENDTOCHAN, and nobody sees it."""
    factory, _, _ = setup()
    (bob,) = in_channel(factory, "bob")
    alice = irc_user(factory, "alice", 41005)
    alice.send_lines("PRIVMSG #lobby :let me in")
    assert alice.lines() == [f"{S} 404 alice #lobby :Cannot send to channel"]
    assert bob.lines() == []


def test_privmsg_without_recipient_411_or_text_412() -> None:
    """PRIVMSG with no target is answered ERR_NORECIPIENT; with no text, ERR_NOTEXTTOSEND."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("PRIVMSG", "PRIVMSG :", "PRIVMSG bob", "PRIVMSG bob :")
    assert alice.lines() == [
        f"{S} 411 alice :No recipient given (PRIVMSG)",
        f"{S} 411 alice :No recipient given (PRIVMSG)",
        f"{S} 412 alice :No text to send",
        f"{S} 412 alice :No text to send",
    ]


def test_notice_errors_are_never_answered() -> None:
    """A NOTICE that cannot be delivered gets no error back (no automatic replies to a NOTICE)."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("NOTICE", "NOTICE bob", "NOTICE nobody :hi", "NOTICE #lobby :hi", "PING :done")
    assert alice.lines() == [f"{S} PONG chat.twisted :done"]


def test_ctcp_action_between_irc_users() -> None:
    """A CTCP ACTION to a channel or a nick reaches IRC users as the same CTCP ACTION."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.send_lines("PRIVMSG #lobby :\x01ACTION waves\x01", "PRIVMSG bob :\x01ACTION pokes bob\x01")
    assert bob.lines() == [
        f":{mask('alice')} PRIVMSG #lobby :\x01ACTION waves\x01",
        f":{mask('alice')} PRIVMSG bob :\x01ACTION pokes bob\x01",
    ]


def test_ctcp_action_from_irc_to_a_line_user() -> None:
    """A line user sees an IRC user's channel ACTION as C{* nick text}, and a private one marked private."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")
    carol = line_user(with_line_users(factory), "carol", 42000)
    alice.lines()
    alice.send_lines("PRIVMSG #lobby :\x01ACTION waves\x01", "PRIVMSG carol :\x01ACTION pokes carol\x01")
    assert carol.lines() == [f"{AT} * alice waves", f"{AT} (private) * alice pokes carol"]


def test_ctcp_action_from_a_line_user_to_irc() -> None:
    """A line user's C{/me} reaches IRC users as a CTCP ACTION."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")
    carol = line_user(with_line_users(factory), "carol", 42000)
    alice.lines()
    carol.send("/me dances\n")
    assert alice.lines() == [f":{mask('carol')} PRIVMSG #lobby :\x01ACTION dances\x01"]


def test_other_ctcp_is_dropped() -> None:
    """CTCP other than ACTION (VERSION, PING, replies) is dropped without a word: nobody here answers it."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    carol = line_user(with_line_users(factory), "carol", 42000)
    alice.lines(), bob.lines()
    alice.send_lines("PRIVMSG bob :\x01VERSION\x01", "PRIVMSG #lobby :\x01PING 1\x01", "NOTICE carol :\x01VERSION x\x01",
                     "PING :done")
    assert alice.lines() == [f"{S} PONG chat.twisted :done"]
    assert bob.lines() == [] and carol.lines() == []


# --- TOPIC -----------------------------------------------------------------------------------


def test_topic_query_without_topic_331() -> None:
    """TOPIC on a channel without one is answered RPL_NOTOPIC."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")
    alice.send_lines("TOPIC #lobby")
    assert alice.lines() == [f"{S} 331 alice #lobby :No topic is set"]


def test_topic_set_is_broadcast_then_queried() -> None:
    """Setting a topic broadcasts TOPIC to the channel; a query answers 332 and 333 (who and when)."""
    factory, _, clock = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.send_lines("TOPIC #lobby :Tea at five")
    assert alice.lines() == [f":{mask('alice')} TOPIC #lobby :Tea at five"]
    assert bob.lines() == [f":{mask('alice')} TOPIC #lobby :Tea at five"]
    clock.advance(60)
    bob.send_lines("TOPIC #lobby")
    assert bob.lines() == [
        f"{S} 332 bob #lobby :Tea at five",
        f"{S} 333 bob #lobby {mask('alice')} {int(START)}",
    ]


def test_topic_set_on_a_channel_one_is_not_on_442() -> None:
    """Only members may set a topic."""
    factory, _, _ = setup()
    in_channel(factory, "bob")
    alice = irc_user(factory, "alice", 41005)
    alice.send_lines("TOPIC #lobby :mine")
    assert alice.lines() == [f"{S} 442 alice #lobby :You're not on that channel"]


def test_topic_of_a_channel_that_does_not_exist_403() -> None:
    """Asking for the topic of a channel nobody is in is answered ERR_NOSUCHCHANNEL."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("TOPIC #nowhere", "TOPIC nohash")
    assert alice.lines() == [
        f"{S} 403 alice #nowhere :No such channel",
        f"{S} 403 alice nohash :No such channel",
    ]


# --- NAMES, WHO, WHOIS, LIST -----------------------------------------------------------------


def test_names_lists_members_of_either_door() -> None:
    """NAMES lists every member of the channel, line users included, sorted without regard to case."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "Bob")
    line_user(with_line_users(factory), "carol", 42000)
    alice.lines()
    alice.send_lines("NAMES #lobby")
    assert alice.lines() == [f"{S} 353 alice = #lobby :alice Bob carol", f"{S} 366 alice #lobby :End of /NAMES list"]


def test_names_without_a_live_channel_ends_the_list() -> None:
    """NAMES without a channel, or of a channel that does not exist, is answered RPL_ENDOFNAMES alone."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("NAMES", "NAMES #nowhere", "NAMES nohash")
    assert alice.lines() == [
        f"{S} 366 alice * :End of /NAMES list",
        f"{S} 366 alice #nowhere :End of /NAMES list",
        f"{S} 366 alice nohash :End of /NAMES list",
    ]


def test_who_on_a_channel() -> None:
    """WHO #channel answers one RPL_WHOREPLY per member (H here, G away), then RPL_ENDOFWHO."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    bob.send_lines("AWAY :lunch")
    alice.send_lines("WHO #lobby")
    assert alice.lines() == [
        f"{S} 352 alice #lobby alice chat.twisted chat.twisted alice H :0 alice",
        f"{S} 352 alice #lobby bob chat.twisted chat.twisted bob G :0 bob",
        f"{S} 315 alice #lobby :End of /WHO list",
    ]


def test_who_on_a_nick() -> None:
    """WHO nick answers that user's RPL_WHOREPLY; WHO of nobody only RPL_ENDOFWHO."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice", 41001)
    irc_user(factory, "bob", 41002)
    alice.send_lines("WHO bob", "WHO nobody")
    assert alice.lines() == [
        f"{S} 352 alice * bob chat.twisted chat.twisted bob H :0 bob",
        f"{S} 315 alice bob :End of /WHO list",
        f"{S} 315 alice nobody :End of /WHO list",
    ]


def test_who_on_a_channel_that_does_not_exist() -> None:
    """WHO of a channel nobody is in is answered RPL_ENDOFWHO alone."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("WHO #nowhere")
    assert alice.lines() == [f"{S} 315 alice #nowhere :End of /WHO list"]


def test_whois_a_guest() -> None:
    """WHOIS answers 311, 319 (channels), 312, 317 (idle, signon) and 318."""
    factory, _, clock = setup()
    alice = irc_user(factory, "alice", 41001)
    bob = irc_user(factory, "bob", 41002)
    bob.send_lines("JOIN #lobby,#dev")
    clock.advance(42)
    alice.send_lines("WHOIS BOB")
    assert alice.lines() == [
        f"{S} 311 alice bob bob chat.twisted * :bob",
        f"{S} 319 alice bob :#lobby #dev",
        f"{S} 312 alice bob chat.twisted :chat_twisted",
        f"{S} 317 alice bob 42 {int(START)} :seconds idle, signon time",
        f"{S} 318 alice BOB :End of /WHOIS list",
    ]


def test_whois_a_registered_away_user() -> None:
    """WHOIS of a registered, away user adds RPL_AWAY (301) and RPL_WHOISACCOUNT (330)."""
    factory, _, _ = setup()
    carol = line_user(with_line_users(factory), "carol", 42000)
    carol.send("/register sekrit99\n")
    alice = irc_user(factory, "alice", 41001)
    alice.send_lines("JOIN #lobby", "WHOIS carol")
    alice.lines()
    bob = irc_user(factory, "bob", 41002)
    bob.send_lines("AWAY :gone fishing", "WHOIS bob", "WHOIS carol")
    assert bob.lines() == [
        f"{S} 306 bob :You have been marked as being away",
        f"{S} 311 bob bob bob chat.twisted * :bob",
        f"{S} 312 bob bob chat.twisted :chat_twisted",
        f"{S} 301 bob bob :gone fishing",
        f"{S} 317 bob bob 0 {int(START)} :seconds idle, signon time",
        f"{S} 318 bob bob :End of /WHOIS list",
        f"{S} 311 bob carol carol chat.twisted * :carol",
        f"{S} 319 bob carol :#lobby",
        f"{S} 312 bob carol chat.twisted :chat_twisted",
        f"{S} 330 bob carol carol :is logged in as",
        f"{S} 317 bob carol 0 {int(START)} :seconds idle, signon time",
        f"{S} 318 bob carol :End of /WHOIS list",
    ]


def test_whois_unknown_401() -> None:
    """WHOIS of nobody online is answered ERR_NOSUCHNICK, then RPL_ENDOFWHOIS."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("WHOIS nobody")
    assert alice.lines() == [
        f"{S} 401 alice nobody :No such nick/channel",
        f"{S} 318 alice nobody :End of /WHOIS list",
    ]


def test_list_channels() -> None:
    """LIST answers RPL_LISTSTART, one RPL_LIST per channel (members, topic), RPL_LISTEND."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.send_lines("JOIN #dev", "TOPIC #dev :all about dev")
    alice.lines()
    bob.send_lines("LIST")
    assert bob.lines() == [
        f"{S} 321 bob Channel :Users  Name",
        f"{S} 322 bob #dev 1 :all about dev",
        f"{S} 322 bob #lobby 2 :",
        f"{S} 323 bob :End of /LIST",
    ]


def test_time() -> None:
    """TIME answers RPL_TIME with the server's date and time."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("TIME")
    assert alice.lines() == [f"{S} 391 alice chat.twisted :2026-01-02T03:04:05+00:00"]


# --- NICK ------------------------------------------------------------------------------------


def test_nick_change_is_seen_by_channel_members() -> None:
    """A NICK change is shown to the user and everyone sharing a channel, and replies use the new nick."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    dave = irc_user(factory, "dave", 41009)
    alice.send_lines("NICK alicia", "MOTD")
    assert alice.lines() == [f":{mask('alice')} NICK :alicia", f"{S} 422 alicia :MOTD File is missing"]
    assert bob.lines() == [f":{mask('alice')} NICK :alicia"]
    assert dave.lines() == []


def test_nick_to_the_same_name_is_silent() -> None:
    """NICK to the nickname one already has does nothing."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("NICK alice")
    assert alice.lines() == []


def test_nick_erroneous_432_and_in_use_433() -> None:
    """NICK to an invalid name gets 432; to a name someone has, 433."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice", 41001)
    irc_user(factory, "bob", 41002)
    alice.send_lines("NICK bad!name", "NICK Bob")
    assert alice.lines() == [
        f"{S} 432 alice bad!name :Erroneous nickname",
        f"{S} 433 alice Bob :Nickname is already in use",
    ]


def test_nick_to_a_registered_name_433() -> None:
    """NICK to a registered nickname, without its password, gets 433."""
    factory, _, _ = setup()
    carol = line_user(with_line_users(factory), "carol", 42000)
    carol.send("/register sekrit99\n/quit\n")
    alice = irc_user(factory, "alice")
    alice.send_lines("NICK carol")
    assert alice.lines() == [f"{S} 433 alice carol :Nickname is registered; log in with SASL or PASS nick:password"]


# --- QUIT ------------------------------------------------------------------------------------


def test_quit_closes_with_error_and_others_see_quit() -> None:
    """QUIT gets an ERROR line and closes; IRC members see QUIT, a line user sees C{* nick left lobby (reason)}."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    carol = line_user(with_line_users(factory), "carol", 42000)
    alice.lines(), bob.lines()
    alice.send_lines("QUIT :off to bed")
    assert alice.lines() == ["ERROR :Closing link: chat.twisted (off to bed)"]
    assert not alice.transport.connected
    assert bob.lines() == [f":{mask('alice')} QUIT :off to bed"]
    assert carol.lines() == ["* alice left lobby (off to bed)"]


def test_quit_without_reason() -> None:
    """QUIT without a reason is shown as C{quit}."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.send_lines("QUIT")
    assert bob.lines() == [f":{mask('alice')} QUIT :quit"]


def test_quit_before_registration() -> None:
    """QUIT works before registration."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("QUIT :never mind")
    assert connection.lines() == ["ERROR :Closing link: chat.twisted (never mind)"]
    assert not connection.transport.connected


def test_dropped_connection_is_seen_as_quit() -> None:
    """A connection that drops is shown to its channels as QUIT with C{connection lost}."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.transport.loseConnection()
    assert bob.lines() == [f":{mask('alice')} QUIT :connection lost"]


# --- AWAY, ISON, USERHOST --------------------------------------------------------------------


def test_away_and_back_305_306() -> None:
    """AWAY with a message answers RPL_NOWAWAY; AWAY without one answers RPL_UNAWAY."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("AWAY :lunch", "AWAY")
    assert alice.lines() == [
        f"{S} 306 alice :You have been marked as being away",
        f"{S} 305 alice :You are no longer marked as being away",
    ]


def test_privmsg_to_an_away_user_gets_301() -> None:
    """A PRIVMSG to an away user is delivered and answered RPL_AWAY; a NOTICE is not."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice", 41001)
    bob = irc_user(factory, "bob", 41002)
    bob.send_lines("AWAY :lunch")
    bob.lines()
    alice.send_lines("PRIVMSG bob :are you there?", "NOTICE bob :fyi")
    assert alice.lines() == [f"{S} 301 alice bob :lunch"]
    assert bob.lines() == [f":{mask('alice')} PRIVMSG bob :are you there?", f":{mask('alice')} NOTICE bob :fyi"]


def test_ison() -> None:
    """ISON answers RPL_ISON with those of the nicknames online, as they are spelled."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice", 41001)
    irc_user(factory, "Bob", 41002)
    line_user(with_line_users(factory), "carol", 42000)
    alice.send_lines("ISON bob nobody carol", "ISON :nobody")
    assert alice.lines() == [f"{S} 303 alice :Bob carol", f"{S} 303 alice :"]


def test_userhost() -> None:
    """USERHOST answers RPL_USERHOST with nick=+user@host, C{-} for an away user."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice", 41001)
    bob = irc_user(factory, "bob", 41002)
    bob.send_lines("AWAY :out")
    alice.send_lines("USERHOST alice bob nobody")
    assert alice.lines() == [f"{S} 302 alice :alice=+alice@chat.twisted bob=-bob@chat.twisted"]


# --- MODE ------------------------------------------------------------------------------------


def test_user_mode_query_and_set_221() -> None:
    """MODE on oneself queries (221) and sets +i, echoing the change."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("MODE alice", "MODE alice +i", "MODE Alice", "MODE alice -i", "MODE alice")
    assert alice.lines() == [
        f"{S} 221 alice +",
        ":alice MODE alice :+i",
        f"{S} 221 alice +i",
        ":alice MODE alice :-i",
        f"{S} 221 alice +",
    ]


def test_user_mode_unknown_flag_501() -> None:
    """An unknown user mode flag is answered ERR_UMODEUNKNOWNFLAG."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("MODE alice +x")
    assert alice.lines() == [f"{S} 501 alice :Unknown MODE flag"]


def test_user_mode_of_another_user_502() -> None:
    """MODE on another user is answered ERR_USERSDONTMATCH."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("MODE bob", "MODE bob +i")
    assert alice.lines() == [f"{S} 502 alice :Can't change mode for other users"] * 2


def test_channel_modes() -> None:
    """MODE #chan answers 324 (no modes: +); the ban list is empty (368); setting a mode needs an operator (482)."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")  # nobody operates the lobby
    alice.send_lines("MODE #lobby", "MODE #lobby +b", "MODE #lobby b", "MODE #lobby +m", "MODE #lobby +o alice")
    assert alice.lines() == [
        f"{S} 324 alice #lobby +",
        f"{S} 368 alice #lobby :End of channel ban list",
        f"{S} 368 alice #lobby :End of channel ban list",
        f"{S} 482 alice #lobby :You're not channel operator",
        f"{S} 482 alice #lobby :You're not channel operator",
    ]


# --- protections -----------------------------------------------------------------------------


def test_input_over_510_bytes_417() -> None:
    """A line whose non-tag part is over 510 bytes is answered ERR_INPUTTOOLONG and not acted on."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    head = "PRIVMSG #lobby :"
    alice.send_lines(head + "x" * (510 - len(head)))
    assert alice.lines() == []
    assert received_text(bob.lines(), "alice") == "x" * (510 - len(head))
    alice.send_lines(head + "y" * (511 - len(head)))
    assert alice.lines() == [f"{S} 417 alice :Input line was too long"]
    assert bob.lines() == []


def test_tags_do_not_count_towards_the_510_bytes() -> None:
    """Client tags have their own budget: a 510-byte message after 3000 bytes of tags is taken."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    head = "PRIVMSG #lobby :"
    alice.send_lines("@+draft/x=" + "t" * 3000 + " " + head + "x" * (510 - len(head)))
    assert alice.lines() == []
    assert received_text(bob.lines(), "alice") == "x" * (510 - len(head))


def test_a_line_past_the_framing_limit_417_and_the_next_line_works() -> None:
    """A line longer than tags plus a message can be is answered 417 and skipped; what follows is read."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send("PRIVMSG bob :" + "z" * 5000 + "\r\nPING :after\r\n")
    assert alice.lines() == [f"{S} 417 alice :Input line was too long", f"{S} PONG chat.twisted :after"]


def test_invalid_utf8_fail() -> None:
    """A line that is not UTF-8 is answered C{FAIL * INVALID_UTF8} and dropped; the connection stays."""
    factory, _, _ = setup()
    alice, bob = in_channel(factory, "alice", "bob")
    alice.send(b"PRIVMSG #lobby :caf\xe9\r\nPING :ok\r\n")
    assert alice.lines() == [
        f"{S} FAIL * INVALID_UTF8 :Message rejected: it was not valid UTF-8",
        f"{S} PONG chat.twisted :ok",
    ]
    assert bob.lines() == []


def test_flood_control_delays_lines_in_order() -> None:
    """After the burst, lines wait for the clock (fake lag); replies keep their order, so PING is a barrier."""
    factory, _, clock = setup(rate=5.0, burst=10)
    alice, bob = in_channel(factory, "alice", "bob")  # alice has spent NICK 2 + USER 1 + JOIN 2
    clock.advance(10)  # the bucket is full again: 10 tokens
    alice.send_lines(*[f"PRIVMSG #lobby :{n}" for n in range(12)], "PING :barrier")
    assert bob.lines() == [f":{mask('alice')} PRIVMSG #lobby :{n}" for n in range(10)]
    assert alice.lines() == []
    clock.advance(0.2)
    assert bob.lines() == [f":{mask('alice')} PRIVMSG #lobby :10"]
    clock.advance(0.2)
    assert bob.lines() == [f":{mask('alice')} PRIVMSG #lobby :11"]
    assert alice.lines() == []
    clock.advance(0.1)
    assert alice.lines() == [f"{S} PONG chat.twisted :barrier"]


def test_flood_past_the_input_bound_is_disconnected() -> None:
    """Input piling up past max_input while lagged closes the connection with ERROR (Excess Flood)."""
    factory, _, clock = setup(rate=1.0, burst=5, max_input=4096)
    alice = irc_user(factory, "alice")
    clock.advance(100)
    alice.lines()
    alice.send_lines(*["PRIVMSG alice :" + "f" * 100] * 50)  # the bound is at least one longest line
    assert alice.lines()[-1] == "ERROR :Closing link: chat.twisted (Excess Flood)"
    assert not alice.transport.connected


def test_a_client_that_stops_reading_is_dropped() -> None:
    """While the transport has the door's producer paused, output past max_output drops the connection."""
    factory, _, _ = setup(max_output=2000)
    alice, bob = in_channel(factory, "alice", "bob")
    alice.transport.producer.pauseProducing()
    for _ in range(4):
        bob.send_lines("PRIVMSG #lobby :" + "x" * 400)
    assert alice.transport.connected
    bob.send_lines("PRIVMSG #lobby :" + "x" * 400)
    assert not alice.transport.connected
    assert bob.lines() == [f":{mask('alice')} QUIT :too slow"]


def test_a_reader_that_resumes_is_kept() -> None:
    """Output written while paused is forgotten once the transport resumes the producer."""
    factory, _, _ = setup(max_output=2000)
    alice, bob = in_channel(factory, "alice", "bob")
    producer = alice.transport.producer
    producer.pauseProducing()
    for _ in range(4):
        bob.send_lines("PRIVMSG #lobby :" + "x" * 400)
    producer.resumeProducing()
    producer.pauseProducing()
    for _ in range(4):
        bob.send_lines("PRIVMSG #lobby :" + "x" * 400)
    assert alice.transport.connected


def test_http_request_gets_error_and_close() -> None:
    """An HTTP request on the IRC port is answered with one ERROR line and the connection is closed."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send(b"GET / HTTP/1.1\r\nHost: chat.example\r\n\r\n")
    assert connection.lines() == ["ERROR :Closing link: chat.twisted (this is an IRC server, not a web server)"]
    assert not connection.transport.connected


def test_tls_handshake_is_closed() -> None:
    """A TLS ClientHello on the plain IRC port closes the connection."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    assert not connection.transport.connected


def test_lines_may_end_with_lf_and_arrive_in_pieces() -> None:
    """A line split over reads, or ending in a bare LF, is read as one line."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send("PI")
    alice.send("NG :one\nPING")
    alice.send(" :two\r")
    alice.send("\n")
    assert alice.lines() == [f"{S} PONG chat.twisted :one", f"{S} PONG chat.twisted :two"]


def test_empty_lines_are_ignored() -> None:
    """Empty lines (which some clients send) get no reply."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send("\r\n\r\n   \r\n")
    assert alice.lines() == []


def test_topic_cannot_be_cleared() -> None:
    """C{TOPIC #chan :} (clearing) is refused with 461: the chat has no way to clear a topic."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")
    alice.send_lines("TOPIC #lobby :")
    assert alice.lines() == [f"{S} 461 alice TOPIC :Clearing a topic is not supported"]


# --- offline messages, failing logins, a failing store, shutdown ----------------------------


def register_offline(factory: IrcFactory, nick: str) -> None:
    """Register C{nick} with password C{sekrit99} through a line user, who then quits."""
    user = line_user(with_line_users(factory), nick, 42009)
    user.send("/register sekrit99\n/quit\n")


def test_privmsg_to_an_offline_registered_user_waits_for_them() -> None:
    """A PRIVMSG to a registered user who is offline is kept (NOTICE to the sender) and delivered, dated, at login."""
    factory, _, clock = setup()
    register_offline(factory, "dave")
    alice = irc_user(factory, "alice", 41001)
    alice.send_lines("PRIVMSG dave :call me")
    assert alice.lines() == [f"{S} NOTICE alice :dave is offline; your message will be delivered when they log in"]
    clock.advance(3600)
    dave = IrcConnection(factory, 41002)
    dave.send_lines("PASS dave:sekrit99", "NICK dave", "USER dave 0 * :Dave")
    assert dave.lines()[-1] == f":{mask('alice')} PRIVMSG dave :[2026-01-02 03:04:05] call me"


def test_a_full_mailbox_fails() -> None:
    """Past 100 messages waiting for an offline user, a PRIVMSG is answered C{FAIL PRIVMSG MAILBOX_FULL}."""
    factory, _, _ = setup()
    register_offline(factory, "dave")
    alice = irc_user(factory, "alice")
    alice.send_lines(*["PRIVMSG dave :ping?"] * 100)
    alice.lines()
    alice.send_lines("PRIVMSG dave :one more")
    assert alice.lines() == [f"{S} FAIL PRIVMSG MAILBOX_FULL dave :dave has too many messages waiting"]


def test_repeated_wrong_passwords_are_slowed_down() -> None:
    """After three wrong PASS attempts the next is refused without checking: 464 with the wait."""
    factory, _, _ = setup()
    register_offline(factory, "dave")
    connection = IrcConnection(factory)
    for _ in range(3):
        connection.send_lines("PASS dave:wrong", "NICK dave", "USER dave 0 * :Dave")
        assert connection.lines() == [f"{S} 464 * :Password incorrect"]
    connection.send_lines("PASS dave:sekrit99", "NICK dave")
    assert connection.lines() == [f"{S} 464 * :Too many failed logins; try again in 2 seconds"]


def test_a_busy_password_check_is_a_fail() -> None:
    """A PASS login refused because too many passwords are being checked gets C{FAIL * TEMPORARILY_UNAVAILABLE}."""
    hasher = SwitchedHasher()
    factory, _, _ = make_irc_factory(make_core(hasher=hasher)[0], rate=0.0)
    register_offline(factory, "dave")
    hasher.busy = True
    connection = IrcConnection(factory)
    connection.send_lines("PASS dave:sekrit99", "NICK dave", "USER dave 0 * :Dave")
    assert connection.lines() == [f"{S} FAIL * TEMPORARILY_UNAVAILABLE :Server busy; try again in a moment"]
    assert connection.transport.connected


def test_too_many_new_connections_is_a_closing_error() -> None:
    """A connection past the per-address connection rate gets one ERROR line saying so and is closed."""
    clock = Clock()
    limits = ConnectionLimits(100, 100, limit_loopback=True, clock=clock, per_window=1, window=600)
    factory, _, _ = make_irc_factory(make_core(limits=limits)[0], rate=0.0)
    IrcConnection(factory, 41001)
    refused = IrcConnection(factory, 41002)
    assert refused.lines() == ["ERROR :Closing link: chat.twisted (too many new connections from your address"
                               " (at most 1 in 600 seconds))"]
    assert not refused.transport.connected


class BrokenStore(MemoryStore):
    """A MemoryStore whose room history can be neither written nor read."""

    def append_message(self, room_key: str, message: StoredMessage) -> Deferred[int]:
        return fail(RuntimeError("the disk is full"))

    def find_messages(self, room_key: str, limit: int, *args: Any, **kwargs: Any) -> Deferred[list[StoredMessage]]:
        return fail(RuntimeError("the disk is on fire"))


def test_a_failing_store_is_reported_with_fail() -> None:
    """History that cannot be read, or a message that cannot be stored, is reported with a FAIL line."""
    core, _ = make_core(store=BrokenStore())
    factory, _, _ = make_irc_factory(core, rate=0)
    alice = irc_user(factory, "alice", 41001)
    bob = irc_user(factory, "bob", 41002)
    bob.send_lines("JOIN #lobby")
    bob.lines()
    alice.send_lines("JOIN #lobby")
    assert alice.lines()[3] == f"{S} FAIL CHATHISTORY MESSAGE_ERROR #lobby :history unavailable; try again later"
    alice.send_lines("PRIVMSG #lobby :hello?")
    assert alice.lines() == [f"{S} FAIL PRIVMSG MESSAGE_ERROR :your message could not be saved, so it was not sent"]
    assert bob.lines() == [f":{mask('alice')} JOIN #lobby"]


def test_server_shutdown_sends_error_and_closes() -> None:
    """Stopping the server tells each IRC client with ERROR and closes it."""
    factory, core, _ = setup()
    core.startService()
    alice = irc_user(factory, "alice")
    core.stopService()
    assert alice.lines() == ["ERROR :Closing link: server shutting down"]
    assert not alice.transport.connected


# --- with the line door ----------------------------------------------------------------------


def test_a_long_line_message_is_split_for_irc() -> None:
    """A 4000-byte message from a line user reaches IRC as several PRIVMSG lines of at most 512 bytes."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")
    carol = line_user(with_line_users(factory), "carol", 42000)
    alice.lines()
    text = " ".join(f"word{n:04d}" for n in range(445))[:4000]
    carol.send(text + "\n")
    lines = alice.lines()
    head = f":{mask('carol')} PRIVMSG #lobby :"
    assert len(lines) == 9
    assert all(text.startswith(head) for text in lines)
    assert all(len(text.encode("utf-8")) + 2 <= 512 for text in lines)
    assert "".join(text[len(head):] for text in lines) == text


def test_a_long_line_action_stays_an_action_in_every_piece() -> None:
    """A long C{/me} from a line user reaches IRC as several lines, each a whole CTCP ACTION within 512 bytes."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")
    carol = line_user(with_line_users(factory), "carol", 42000)
    alice.lines()
    text = "ab " * 400
    carol.send(f"/me {text}\n")
    lines = alice.lines()
    head = f":{mask('carol')} PRIVMSG #lobby :\x01ACTION "
    assert len(lines) == 3
    assert all(text.startswith(head) and text.endswith("\x01") for text in lines)
    assert all(len(text.encode("utf-8")) + 2 <= 512 for text in lines)
    assert "".join(text[len(head):-1] for text in lines) == text.strip()


def test_line_and_irc_users_see_each_others_joins_parts_nicks_and_topics() -> None:
    """Joins, parts, nick changes and topics cross the doors, each shown in the viewer's own form."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")
    line_factory = with_line_users(factory)
    carol = line_user(line_factory, "carol", 42000)
    assert alice.lines() == [f":{mask('carol')} JOIN #lobby"]

    alice.send_lines("NICK alicia")
    assert carol.lines() == ["* alice is now known as alicia"]
    carol.send("/nick caroline\n")
    assert alice.lines() == [f":{mask('alice')} NICK :alicia", f":{mask('carol')} NICK :caroline"]
    carol.lines()

    alice.send_lines("TOPIC #lobby :from irc")
    assert carol.lines() == ["* alicia set the topic of lobby to: from irc"]
    carol.send("/topic from the line\n")
    assert alice.lines() == [
        f":{mask('alicia')} TOPIC #lobby :from irc",
        f":{mask('caroline')} TOPIC #lobby :from the line",
    ]
    carol.lines()

    carol.send("/join dev\n")
    assert alice.lines() == [f":{mask('caroline')} PART #lobby :moved to dev"]
    carol.lines()
    alice.send_lines("JOIN #dev")
    alice.lines()
    assert carol.lines() == ["* alicia joined dev"]
    alice.send_lines("PART #dev :bye")
    assert carol.lines() == ["* alicia left dev (bye)"]


def test_messages_cross_the_doors() -> None:
    """An IRC user's channel and private messages reach a line user, and the line user's reach IRC."""
    factory, _, _ = setup()
    (alice,) = in_channel(factory, "alice")
    carol: LineConnection = line_user(with_line_users(factory), "carol", 42000)
    alice.lines()
    alice.send_lines("PRIVMSG #lobby :hi carol", "PRIVMSG carol :secret")
    assert carol.lines() == [f"{AT} alice: hi carol", f"{AT} (private) alice: secret"]
    carol.send("hi alice\n/msg alice psst\n")
    assert alice.lines() == [
        f":{mask('carol')} PRIVMSG #lobby :hi alice",
        f":{mask('carol')} PRIVMSG alice :psst",
    ]


def test_a_long_names_list_is_split_into_lines_that_fit() -> None:
    """NAMES of a big room comes in several 353 lines of at most 510 bytes, every nickname once, in order."""
    from datetime import timezone

    from chat_twisted.model import WhoList
    from chat_twisted.wire.irc_render import IrcView

    view = IrcView(timezone.utc)
    view.nick = "me"
    nicks = tuple(f"user{number:04d}_{'x' * 20}" for number in range(300))
    lines = view.render(WhoList("big", nicks))
    names = [line for line in lines if " 353 " in line]
    assert len(names) > 1 and all(len(line.encode()) <= 510 for line in names)
    assert [nick for line in names for nick in line.split(" :", 1)[1].split()] == list(nicks)
    assert lines[-1].endswith("366 me #big :End of /NAMES list")
