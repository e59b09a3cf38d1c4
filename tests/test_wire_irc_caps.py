"""
Tests for the IRC door's capability negotiation and IRCv3 features: CAP LS/REQ/LIST/END,
server-time, echo-message, message-tags, multi-prefix, away-notify, account-tag, account-notify,
SASL PLAIN and PASS, batch and draft/chathistory.

Every connection is a StringTransportWithDisconnection on one core with a fake clock set to
03:04:05 UTC (tests.helpers.START); accounts are registered through line users with the fast
inline hasher. No sockets, no reactor, no sleeps. Flood control is off (C{rate=0}).
"""

from __future__ import annotations

import base64

from twisted.internet.task import Clock

from chat_twisted.wire.irc import IrcFactory
from tests.helpers import (
    PASSWORD,
    IrcConnection,
    LineConnection,
    S,
    irc_user,
    line_user,
    mask,
    plain,
    register_account,
    setup,
    with_caps,
    with_line_users,
)

#: The server-time tag of everything that happens at helpers.START.
TIME = "time=2026-01-02T03:04:05.000Z"
#: How a message sent at helpers.START is stamped for a client without server-time.
STAMP = "[2026-01-02 03:04:05]"
EVERY_CAP = ("account-notify account-tag away-notify batch cap-notify draft/chathistory echo-message "
             "message-tags multi-prefix sasl=PLAIN server-time")


# --- CAP -------------------------------------------------------------------------------------


def test_cap_ls_302_lists_every_capability() -> None:
    """CAP LS 302 lists every capability, with sasl's mechanism as its value."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS 302")
    assert connection.lines() == [f"{S} CAP * LS :{EVERY_CAP}"]


def test_cap_ls_before_302_has_no_values() -> None:
    """A client without CAP 302 is shown bare capability names."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS")
    assert connection.lines() == [f"{S} CAP * LS :{EVERY_CAP.replace('sasl=PLAIN', 'sasl')}"]


def test_cap_ls_302_enables_cap_notify() -> None:
    """CAP LS 302 turns on cap-notify implicitly, as the spec says."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS 302", "CAP LIST")
    assert connection.lines()[1:] == [f"{S} CAP * LIST :cap-notify"]


def test_registration_waits_for_cap_end() -> None:
    """After CAP LS, NICK and USER do not register until CAP END."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS 302", "NICK alice", "USER alice 0 * :Alice")
    assert connection.lines() == [f"{S} CAP * LS :{EVERY_CAP}"]
    connection.send_lines("CAP END")
    burst = connection.lines()
    assert burst[0] == f"{S} 001 alice :Welcome to the chat_twisted IRC network, {mask('alice')}"
    assert burst[-1] == f"{S} 422 alice :MOTD File is missing"


def test_cap_req_alone_also_holds_registration() -> None:
    """A CAP REQ without LS starts negotiation too: registration waits for CAP END."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP REQ :server-time", "NICK alice", "USER alice 0 * :Alice")
    assert connection.lines() == [f"{S} CAP * ACK :server-time"]
    connection.send_lines("CAP END")
    assert connection.lines()[0].startswith(f"{S} 001 alice ")


def test_cap_end_without_nick_and_user_does_not_register() -> None:
    """CAP END alone registers nobody; NICK and USER afterwards do."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS", "CAP END")
    connection.lines()
    connection.send_lines("JOIN #lobby")
    assert connection.lines() == [f"{S} 451 * :You have not registered"]
    assert connection.register("alice")[0].startswith(f"{S} 001 alice ")


def test_cap_req_ack_and_list() -> None:
    """CAP REQ of known capabilities is ACKed with the request; CAP LIST shows what is enabled."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS", "CAP REQ :server-time echo-message", "CAP LIST")
    assert connection.lines()[1:] == [
        f"{S} CAP * ACK :server-time echo-message",
        f"{S} CAP * LIST :echo-message server-time",
    ]


def test_cap_req_with_an_unknown_capability_naks_the_whole_request() -> None:
    """A request naming any unknown capability is NAKed whole: none of it is enabled."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS", "CAP REQ :server-time frobnicate", "CAP LIST")
    assert connection.lines()[1:] == [f"{S} CAP * NAK :server-time frobnicate", f"{S} CAP * LIST :"]


def test_cap_req_minus_disables() -> None:
    """A capability prefixed with C{-} is disabled."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS", "CAP REQ :server-time batch", "CAP REQ :-batch", "CAP LIST")
    assert connection.lines()[1:] == [
        f"{S} CAP * ACK :server-time batch",
        f"{S} CAP * ACK :-batch",
        f"{S} CAP * LIST :server-time",
    ]


def test_cap_after_registration_uses_the_nick() -> None:
    """CAP works after registration too, addressed to the nickname, without holding anything."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("CAP REQ :echo-message", "CAP LIST", "PING :x")
    assert alice.lines() == [
        f"{S} CAP alice ACK :echo-message",
        f"{S} CAP alice LIST :echo-message",
        f"{S} PONG chat.twisted :x",
    ]


def test_cap_unknown_subcommand_410() -> None:
    """An unknown CAP subcommand is answered ERR_INVALIDCAPCMD."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP FROB")
    assert connection.lines() == [f"{S} 410 * FROB :Invalid CAP command"]


def test_multi_prefix_is_accepted() -> None:
    """multi-prefix is ACKed (there are no channel prefixes, so NAMES stays as it is)."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS 302", "CAP REQ :multi-prefix", "NICK alice", "USER a 0 * :a", "CAP END")
    assert connection.lines()[1] == f"{S} CAP * ACK :multi-prefix"
    connection.send_lines("JOIN #lobby")
    assert connection.lines()[1:] == [f"{S} 353 alice = #lobby :alice", f"{S} 366 alice #lobby :End of /NAMES list"]


# --- server-time, echo-message, message-tags -------------------------------------------------


def test_server_time_tags_messages() -> None:
    """With server-time, channel and private messages and topic changes carry an @time tag."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "server-time", 41001)
    bob = with_caps(factory, "bob", "", 41002)
    alice.lines()
    bob.send_lines("PRIVMSG #lobby :hi", "PRIVMSG alice :psst", "TOPIC #lobby :teatime")
    assert alice.lines() == [
        f"@{TIME} :{mask('bob')} PRIVMSG #lobby :hi",
        f"@{TIME} :{mask('bob')} PRIVMSG alice :psst",
        f"@{TIME} :{mask('bob')} TOPIC #lobby :teatime",
    ]


def test_without_server_time_there_are_no_tags() -> None:
    """A client that did not ask for tags gets none."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "", 41001)
    bob = with_caps(factory, "bob", "", 41002)
    alice.lines()
    bob.send_lines("PRIVMSG #lobby :hi")
    assert alice.lines() == [f":{mask('bob')} PRIVMSG #lobby :hi"]


def test_echo_message_echoes_own_messages() -> None:
    """With echo-message, the sender is shown its own channel, private and ACTION messages."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "echo-message", 41001)
    with_caps(factory, "bob", "", 41002)
    alice.lines()
    alice.send_lines("PRIVMSG #lobby :hi", "PRIVMSG bob :psst", "PRIVMSG #lobby :\x01ACTION waves\x01",
                     "NOTICE bob :fyi")
    assert alice.lines() == [
        f":{mask('alice')} PRIVMSG #lobby :hi",
        f":{mask('alice')} PRIVMSG bob :psst",
        f":{mask('alice')} PRIVMSG #lobby :\x01ACTION waves\x01",
        f":{mask('alice')} NOTICE bob :fyi",
    ]


def test_without_echo_message_own_messages_are_not_echoed() -> None:
    """Without echo-message, the sender is shown none of its own messages."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "server-time", 41001)
    with_caps(factory, "bob", "", 41002)
    alice.lines()
    alice.send_lines("PRIVMSG #lobby :hi", "PRIVMSG bob :psst", "PRIVMSG #lobby :\x01ACTION waves\x01")
    assert alice.lines() == []


def test_message_tags_adds_the_same_msgid_for_everyone() -> None:
    """With message-tags a channel message carries a msgid, the same for every recipient and the echo."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "message-tags echo-message", 41001)
    bob = with_caps(factory, "bob", "message-tags", 41002)
    carol = with_caps(factory, "carol", "", 41003)
    alice.lines(), bob.lines()
    alice.send_lines("PRIVMSG #lobby :one", "PRIVMSG #lobby :two")
    echoed, seen = alice.lines(), bob.lines()
    assert echoed == seen
    ids = [text.split(" ", 1)[0] for text in seen]
    assert ids[0].startswith("@msgid=") and ids[1].startswith("@msgid=") and ids[0] != ids[1]
    assert [text.split(" ", 1)[1] for text in seen] == [
        f":{mask('alice')} PRIVMSG #lobby :one", f":{mask('alice')} PRIVMSG #lobby :two"]
    assert carol.lines() == [f":{mask('alice')} PRIVMSG #lobby :one", f":{mask('alice')} PRIVMSG #lobby :two"]


# --- away-notify, account-tag, account-notify ------------------------------------------------


def test_away_notify_tells_channel_members_only_with_the_cap() -> None:
    """AWAY changes reach channel members with away-notify; not those without it, nor non-members."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "away-notify", 41001)
    bob = with_caps(factory, "bob", "", 41002)
    carol = with_caps(factory, "carol", "away-notify", 41003, channel="#elsewhere")
    dave = with_caps(factory, "dave", "", 41004)
    alice.lines()
    dave.send_lines("JOIN #lobby")
    alice.lines(), bob.lines()
    dave.send_lines("AWAY :lunch", "AWAY")
    assert alice.lines() == [f":{mask('dave')} AWAY :lunch", f":{mask('dave')} AWAY"]
    assert bob.lines() == [] and carol.lines() == []
    assert dave.lines() == [f"{S} 306 dave :You have been marked as being away",
                            f"{S} 305 dave :You are no longer marked as being away"]


def test_account_tag_marks_messages_from_registered_users() -> None:
    """With account-tag, messages from a registered user carry account=...; a guest's carry none."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "account-tag", 41001)
    bob = with_caps(factory, "bob", "", 41002)
    carol = register_account(factory, "carol", stay=True)
    alice.lines(), bob.lines()
    carol.send("hello\n")
    bob.send_lines("PRIVMSG #lobby :hi", "PRIVMSG alice :psst")
    carol.send("/msg alice private\n")
    assert alice.lines() == [
        f"@account=carol :{mask('carol')} PRIVMSG #lobby :hello",
        f":{mask('bob')} PRIVMSG #lobby :hi",
        f":{mask('bob')} PRIVMSG alice :psst",
        f"@account=carol :{mask('carol')} PRIVMSG alice :private",
    ]
    assert bob.lines() == [f":{mask('carol')} PRIVMSG #lobby :hello"]


def test_account_notify_when_a_member_registers() -> None:
    """With account-notify, a channel member who registers is announced with ACCOUNT."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "account-notify", 41001)
    bob = with_caps(factory, "bob", "", 41002)
    carol = line_user(with_line_users(factory), "carol", 42000)
    alice.lines(), bob.lines()
    carol.send(f"/register {PASSWORD}\n")
    assert alice.lines() == [f":{mask('carol')} ACCOUNT carol"]
    assert bob.lines() == []


def test_account_notify_when_a_member_logs_in() -> None:
    """A guest who logs in to an account while chatting is announced (renamed, then ACCOUNT)."""
    factory, _, _ = setup()
    register_account(factory, "carol")
    alice = with_caps(factory, "alice", "account-notify", 41001)
    guest = line_user(with_line_users(factory), "guest", 42001)
    alice.lines()
    guest.send(f"/login carol {PASSWORD}\n")
    assert alice.lines() == [f":{mask('guest')} NICK :carol", f":{mask('carol')} ACCOUNT carol"]


# --- SASL ------------------------------------------------------------------------------------


def test_sasl_plain_success() -> None:
    """AUTHENTICATE PLAIN, then the credentials: 900 and 903; NICK of the account then registers as its user."""
    factory, _, _ = setup()
    register_account(factory, "dave")
    connection = IrcConnection(factory)
    connection.send_lines("CAP LS 302", "CAP REQ :sasl", "AUTHENTICATE PLAIN")
    assert connection.lines()[1:] == [f"{S} CAP * ACK :sasl", "AUTHENTICATE +"]
    connection.send_lines("AUTHENTICATE " + plain("", "dave", PASSWORD))
    assert connection.lines() == [
        f"{S} 900 * *!*@chat.twisted dave :You are now logged in as dave",
        f"{S} 903 * :SASL authentication successful",
    ]
    connection.send_lines("NICK dave", "USER dave 0 * :Dave", "CAP END")
    burst = connection.lines()
    assert burst[0] == f"{S} 001 dave :Welcome to the chat_twisted IRC network, {mask('dave')}"
    connection.send_lines("WHOIS dave")
    assert f"{S} 330 dave dave dave :is logged in as" in connection.lines()


def test_sasl_account_is_tagged_on_messages() -> None:
    """A user who logged in with SASL is the registered user: account-tag shows it on their messages."""
    factory, _, _ = setup()
    register_account(factory, "dave")
    alice = with_caps(factory, "alice", "account-tag", 41001)
    dave = IrcConnection(factory, 41002)
    dave.send_lines("CAP REQ :sasl", "NICK dave", "USER dave 0 * :Dave", "AUTHENTICATE PLAIN",
                    "AUTHENTICATE " + plain("dave", "dave", PASSWORD), "CAP END", "JOIN #lobby",
                    "PRIVMSG #lobby :it is me")
    assert alice.lines()[-1] == f"@account=dave :{mask('dave')} PRIVMSG #lobby :it is me"


def test_sasl_wrong_password_904() -> None:
    """Wrong SASL credentials are answered ERR_SASLFAIL; registering the nick then still needs a password."""
    factory, _, _ = setup()
    register_account(factory, "dave")
    connection = IrcConnection(factory)
    connection.send_lines("CAP REQ :sasl", "AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("", "dave", "wrong"))
    assert connection.lines()[1:] == ["AUTHENTICATE +", f"{S} 904 * :SASL authentication failed"]
    connection.send_lines("NICK dave", "USER dave 0 * :Dave", "CAP END")
    assert connection.lines() == [
        f"{S} 433 * dave :Nickname is registered; log in with SASL or PASS nick:password"]


def test_sasl_unknown_account_904() -> None:
    """SASL for an account that does not exist fails like a wrong password."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("", "nobody", PASSWORD))
    assert connection.lines() == ["AUTHENTICATE +", f"{S} 904 * :SASL authentication failed"]


def test_sasl_garbage_904() -> None:
    """Credentials that are not base64 of three NUL-separated fields fail with 904."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("AUTHENTICATE PLAIN", "AUTHENTICATE !!!notbase64", "AUTHENTICATE PLAIN",
                          "AUTHENTICATE " + base64.b64encode(b"no separators").decode())
    assert connection.lines() == ["AUTHENTICATE +", f"{S} 904 * :SASL authentication failed"] * 2


def test_sasl_unknown_mechanism_908_904() -> None:
    """An unknown mechanism is answered RPL_SASLMECHS (PLAIN) and ERR_SASLFAIL."""
    factory, _, _ = setup()
    connection = IrcConnection(factory)
    connection.send_lines("AUTHENTICATE EXTERNAL")
    assert connection.lines() == [
        f"{S} 908 * PLAIN :are available SASL mechanisms",
        f"{S} 904 * :SASL authentication failed",
    ]


def test_sasl_abort_906() -> None:
    """AUTHENTICATE * aborts the exchange with ERR_SASLABORTED; a new one may start."""
    factory, _, _ = setup()
    register_account(factory, "dave")
    connection = IrcConnection(factory)
    connection.send_lines("AUTHENTICATE PLAIN", "AUTHENTICATE *")
    assert connection.lines() == ["AUTHENTICATE +", f"{S} 906 * :SASL authentication aborted"]
    connection.send_lines("AUTHENTICATE PLAIN", "AUTHENTICATE " + plain("", "dave", PASSWORD))
    assert connection.lines()[-1] == f"{S} 903 * :SASL authentication successful"


def test_sasl_credentials_in_400_byte_chunks() -> None:
    """Credentials of exactly 400 base64 bytes are completed by C{AUTHENTICATE +}."""
    factory, _, _ = setup()
    register_account(factory, "dave")
    authzid = "x" * (300 - len("\0dave\0" + PASSWORD))
    encoded = plain(authzid, "dave", PASSWORD)
    assert len(encoded) == 400
    connection = IrcConnection(factory)
    connection.send_lines("AUTHENTICATE PLAIN", "AUTHENTICATE " + encoded)
    assert connection.lines() == ["AUTHENTICATE +"]
    connection.send_lines("AUTHENTICATE +")
    assert connection.lines()[-1] == f"{S} 903 * :SASL authentication successful"


def test_sasl_after_registration_907() -> None:
    """AUTHENTICATE once registered is answered ERR_SASLALREADY."""
    factory, _, _ = setup()
    alice = irc_user(factory, "alice")
    alice.send_lines("AUTHENTICATE PLAIN")
    assert alice.lines() == [f"{S} 907 alice :You have already authenticated"]


# --- PASS ------------------------------------------------------------------------------------


def test_pass_nick_colon_password_logs_in_to_the_account() -> None:
    """PASS nick:password before NICK/USER proves the account; the registered nick then registers."""
    factory, _, _ = setup()
    register_account(factory, "dave")
    connection = IrcConnection(factory)
    connection.send_lines(f"PASS dave:{PASSWORD}", "NICK dave", "USER dave 0 * :Dave")
    burst = connection.lines()
    assert burst[:2] == [
        f"{S} 900 * *!*@chat.twisted dave :You are now logged in as dave",
        f"{S} 001 dave :Welcome to the chat_twisted IRC network, {mask('dave')}",
    ]
    connection.send_lines("WHOIS dave")
    assert f"{S} 330 dave dave dave :is logged in as" in connection.lines()


def test_pass_password_alone_is_for_the_nick() -> None:
    """PASS with only a password proves the account named by the NICK."""
    factory, _, _ = setup()
    register_account(factory, "dave")
    connection = IrcConnection(factory)
    connection.send_lines(f"PASS {PASSWORD}", "USER dave 0 * :Dave", "NICK dave")
    assert connection.lines()[1].startswith(f"{S} 001 dave ")


def test_registered_nick_without_pass_433_then_another_nick() -> None:
    """A registered nick without its password gets 433; choosing another nick then registers."""
    factory, _, _ = setup()
    register_account(factory, "dave")
    connection = IrcConnection(factory)
    connection.send_lines("NICK dave", "USER dave 0 * :Dave")
    assert connection.lines() == [
        f"{S} 433 * dave :Nickname is registered; log in with SASL or PASS nick:password"]
    connection.send_lines("NICK dave_")
    assert connection.lines()[0] == f"{S} 001 dave_ :Welcome to the chat_twisted IRC network, {mask('dave_')}"


def test_wrong_pass_464_then_another_nick() -> None:
    """A wrong PASS is answered ERR_PASSWDMISMATCH; the client may register as a guest with another nick."""
    factory, _, _ = setup()
    register_account(factory, "dave")
    connection = IrcConnection(factory)
    connection.send_lines("PASS dave:nope", "NICK dave", "USER dave 0 * :Dave")
    assert connection.lines() == [f"{S} 464 * :Password incorrect"]
    connection.send_lines("NICK visitor")
    assert connection.lines()[0].startswith(f"{S} 001 visitor ")


# --- batch and chathistory -------------------------------------------------------------------


def history_room(factory: IrcFactory) -> LineConnection:
    """A line user in the lobby who said something, acted and set the topic, all at helpers.START."""
    dave = line_user(with_line_users(factory), "dave", 42000)
    dave.send("say one\n/me waves\n/topic three\n")
    dave.lines()
    return dave


def test_history_on_join_in_a_batch() -> None:
    """With batch, the history replayed on joining comes in a chathistory batch, each line tagged with it."""
    factory, _, _ = setup()
    history_room(factory)
    alice = with_caps(factory, "alice", "batch server-time", channel=None)
    alice.send_lines("JOIN #lobby")
    assert alice.lines() == [
        f":{mask('alice')} JOIN #lobby",
        f"{S} 332 alice #lobby :three",
        f"{S} 333 alice #lobby {mask('dave')} 1767323045",
        f"{S} 353 alice = #lobby :alice dave",
        f"{S} 366 alice #lobby :End of /NAMES list",
        f"{S} BATCH +h1 chathistory #lobby",
        f"@batch=h1;{TIME} :{mask('dave')} PRIVMSG #lobby :say one",
        f"@batch=h1;{TIME} :{mask('dave')} PRIVMSG #lobby :\x01ACTION waves\x01",
        f"@batch=h1;{TIME} :{mask('dave')} TOPIC #lobby :three",
        f"{S} BATCH -h1",
    ]


def test_history_on_join_without_batch_or_server_time() -> None:
    """Without batch or server-time, replayed messages carry their time in the text (an ACTION stays one)."""
    factory, _, _ = setup()
    history_room(factory)
    alice = with_caps(factory, "alice", "", channel=None)
    alice.send_lines("JOIN #lobby")
    assert alice.lines()[5:8] == [
        f":{mask('dave')} PRIVMSG #lobby :{STAMP} say one",
        f":{mask('dave')} PRIVMSG #lobby :\x01ACTION {STAMP} waves\x01",
        f"{S} NOTICE #lobby :{STAMP} dave set the topic: three",
    ]


def test_chathistory_latest() -> None:
    """CHATHISTORY LATEST #chan * N returns the last N messages in a chathistory batch."""
    factory, _, _ = setup()
    history_room(factory)
    alice = with_caps(factory, "alice", "batch server-time draft/chathistory")
    alice.send_lines("CHATHISTORY LATEST #lobby * 2")
    assert alice.lines() == [
        f"{S} BATCH +h2 chathistory #lobby",
        f"@batch=h2;{TIME} :{mask('dave')} PRIVMSG #lobby :\x01ACTION waves\x01",
        f"@batch=h2;{TIME} :{mask('dave')} TOPIC #lobby :three",
        f"{S} BATCH -h2",
    ]


def test_chathistory_with_nothing_to_show_is_an_empty_batch() -> None:
    """CHATHISTORY of a channel without history still answers, with an empty batch."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "batch draft/chathistory", channel="#quiet")
    alice.send_lines("CHATHISTORY LATEST #quiet * 10")
    assert alice.lines() == [f"{S} BATCH +h1 chathistory #quiet", f"{S} BATCH -h1"]


def test_chathistory_of_a_channel_one_is_not_on_442() -> None:
    """Only members may read a channel's history."""
    factory, _, _ = setup()
    history_room(factory)
    alice = with_caps(factory, "alice", "batch draft/chathistory", channel=None)
    alice.send_lines("CHATHISTORY LATEST #lobby * 10")
    assert alice.lines() == [f"{S} 442 alice #lobby :You're not on that channel"]


def test_chathistory_invalid_requests_fail() -> None:
    """Unknown subcommands, a nick as target and a bad limit are answered with FAIL CHATHISTORY."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "batch draft/chathistory")
    alice.send_lines("CHATHISTORY TARGETS #lobby * 10", "CHATHISTORY LATEST bob * 10",
                     "CHATHISTORY LATEST #lobby * many")
    replies = alice.lines()
    assert [text.partition(" :")[0] for text in replies] == [
        f"{S} FAIL CHATHISTORY INVALID_PARAMS TARGETS",
        f"{S} FAIL CHATHISTORY INVALID_TARGET LATEST bob",
        f"{S} FAIL CHATHISTORY INVALID_PARAMS LATEST",
    ]


def said_every_ten_seconds(factory: IrcFactory, clock: Clock, count: int) -> None:
    """A line user says C{m0}, C{m1}, ... in the lobby, ten seconds apart (message ids 1, 2, ...)."""
    dave = line_user(with_line_users(factory), "dave", 42000)
    for n in range(count):
        dave.send(f"m{n}\n")
        clock.advance(10)


def history_lines(*numbers: int, batch: str) -> list[str]:
    """The batch lines of dave's messages C{m<n>} (id n+1, said at START + 10n), with time and msgid."""
    return [f"@batch={batch};time=2026-01-02T03:04:{5 + 10 * n:02d}.000Z;msgid={n + 1} :{mask('dave')} "
            f"PRIVMSG #lobby :m{n}" for n in numbers]


def test_chathistory_before_after_around_and_latest_after() -> None:
    """CHATHISTORY BEFORE, AFTER, AROUND and LATEST with a point take msgid= and timestamp= references."""
    factory, _, clock = setup()
    said_every_ten_seconds(factory, clock, 5)
    alice = with_caps(factory, "alice", "batch server-time message-tags draft/chathistory")
    alice.send_lines("CHATHISTORY BEFORE #lobby msgid=3 5",
                     "CHATHISTORY AFTER #lobby timestamp=2026-01-02T03:04:15.000Z 2",
                     "CHATHISTORY AROUND #lobby msgid=3 2",
                     "CHATHISTORY LATEST #lobby msgid=3 10")
    lines = alice.lines()
    assert lines == [
        f"{S} BATCH +h2 chathistory #lobby", *history_lines(0, 1, batch="h2"), f"{S} BATCH -h2",
        f"{S} BATCH +h3 chathistory #lobby", *history_lines(2, 3, batch="h3"), f"{S} BATCH -h3",
        f"{S} BATCH +h4 chathistory #lobby", *history_lines(1, 2, batch="h4"), f"{S} BATCH -h4",
        f"{S} BATCH +h5 chathistory #lobby", *history_lines(3, 4, batch="h5"), f"{S} BATCH -h5",
    ]


def test_chathistory_needs_a_point_except_for_latest() -> None:
    """C{*} is a point only for LATEST; a malformed reference fails too."""
    factory, _, _ = setup()
    alice = with_caps(factory, "alice", "batch draft/chathistory")
    alice.send_lines("CHATHISTORY BEFORE #lobby * 2", "CHATHISTORY BEFORE #lobby msgid=x 2")
    assert alice.lines() == [
        f"{S} FAIL CHATHISTORY INVALID_PARAMS BEFORE :invalid message reference or limit"] * 2


def test_offline_message_with_server_time_keeps_its_time_in_the_tag() -> None:
    """A private message kept while its recipient was offline is delivered with its original @time."""
    factory, _, clock = setup()
    register_account(factory, "dave")
    alice = irc_user(factory, "alice", 41001)
    alice.send_lines("PRIVMSG dave :call me")
    clock.advance(3600)
    dave = IrcConnection(factory, 41002)
    dave.send_lines("CAP REQ :server-time", f"PASS dave:{PASSWORD}", "NICK dave", "USER dave 0 * :Dave", "CAP END")
    assert dave.lines()[-1] == f"@{TIME} :{mask('alice')} PRIVMSG dave :call me"


def test_sasl_login_closes_the_older_connection_of_the_same_user() -> None:
    """A registered user who proves the password by SASL takes the nickname from their own older connection."""
    factory, _, _ = setup()
    old = register_account(factory, "dave", stay=True)
    old.lines()
    new = IrcConnection(factory, 41002)
    new.send_lines("CAP REQ :sasl", "NICK dave", "USER dave 0 * :Dave", "AUTHENTICATE PLAIN",
                   "AUTHENTICATE " + plain("", "dave", PASSWORD), "CAP END")
    assert f"{S} 001 dave :Welcome to the chat_twisted IRC network, {mask('dave')}" in new.lines()
    assert old.lines()[-1] == "* Goodbye! (logged in from elsewhere)"
    assert not old.transport.connected
