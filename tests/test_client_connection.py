"""
Unit tests for the client's connection life in interactive mode: L{Backoff}, L{Reconnector},
L{Identity} (logging in again as the same user) and L{ChatClient} reconnecting, with a L{Clock}
for the delays, a fake dialler for the connection attempts, and StringTransports for the
server and the terminal.
"""

from __future__ import annotations

import pytest
from OpenSSL import SSL
from twisted.internet import defer, error
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chat_twisted.client import ChatClient, ServerSide
from chat_twisted.client.identity import Identity, secret_start
from chat_twisted.client.reconnect import Backoff, Reconnector, describe
from chat_twisted.client.tls import CONNECT_TIMEOUT_SECONDS
from tests.helpers import CTRL_C, Dialler, ServerConnection, TerminalUnderTest, attach_terminal, make_session, result_of

WHERE = "127.0.0.1:5000"


def fixed_backoff() -> Backoff:
    """A back-off without jitter: 1, 2, 4, ... seconds, at most 30."""
    return Backoff(random=lambda: 0.0)


# --- Backoff -------------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_cap() -> None:
    """Without jitter the delays double from the initial one and stop growing at the maximum."""
    backoff = fixed_backoff()
    assert [backoff.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


def test_backoff_jitter_stays_within_range() -> None:
    """Jitter takes up to half off each delay: the draw scales between the ceiling and half of it."""
    assert Backoff(random=lambda: 0.5).next_delay() == 0.75
    almost_one = Backoff(random=lambda: 0.999999)
    delays = [almost_one.next_delay() for _ in range(7)]
    assert all(0.5 * ceiling <= delay <= ceiling for delay, ceiling in zip(delays, [1, 2, 4, 8, 16, 30, 30]))


def test_backoff_never_overflows() -> None:
    """After very many tries the delay is still the maximum (no overflow from the exponent)."""
    backoff = fixed_backoff()
    for _ in range(5000):
        delay = backoff.next_delay()
    assert delay == 30


def test_backoff_reset_starts_again() -> None:
    """After reset the next delay is the initial one."""
    backoff = fixed_backoff()
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1


# --- describe ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "text"),
    [
        (error.ConnectionDone(), "the server closed the connection"),
        (error.ConnectionRefusedError(), "connection refused"),
        (error.TCPTimedOutError(), "no answer"),
        (defer.TimeoutError(), "no answer"),
        (error.DNSLookupError(), "host name not found"),
        (error.ConnectionLost(), "the connection was lost"),
        (SSL.Error([("SSL routines", "", "certificate verify failed")]), "TLS handshake failed: certificate verify failed"),
        (ValueError("odd\nthing."), "odd thing"),
    ],
)
def test_describe_reasons(reason: Exception, text: str) -> None:
    """Why a connection ended is told in a few words on one line."""
    assert describe(Failure(reason)) == text


# --- Reconnector -----------------------------------------------------------------------------------------


def make_reconnector() -> tuple[Reconnector, Clock, Dialler, list[str]]:
    """A reconnector on a fake clock with a fake dialler and no jitter; returns it with the notices list."""
    clock, dialler, notices = Clock(), Dialler(), list[str]()
    return Reconnector(clock, dialler, notices.append, WHERE, fixed_backoff()), clock, dialler, notices


def test_reconnector_waits_then_tries() -> None:
    """After a loss it says so, waits the first delay, then makes one attempt."""
    reconnector, clock, dialler, notices = make_reconnector()
    reconnector.lost("the server closed the connection")
    assert notices == [f"lost the connection to {WHERE}: the server closed the connection; reconnecting in 1.0 s"]
    clock.advance(0.9)
    assert dialler.attempts == []
    clock.advance(0.1)
    assert len(dialler.attempts) == 1


def test_reconnector_failed_tries_wait_longer() -> None:
    """Each failed attempt is reported and the next waits twice as long."""
    reconnector, clock, dialler, notices = make_reconnector()
    reconnector.lost("gone")
    for delay in (1, 2, 4):
        clock.advance(delay)
        dialler.refuse()
    assert notices[1:] == [
        f"cannot reconnect to {WHERE}: connection refused; trying again in 2.0 s",
        f"cannot reconnect to {WHERE}: connection refused; trying again in 4.0 s",
        f"cannot reconnect to {WHERE}: connection refused; trying again in 8.0 s",
    ]
    assert len(clock.getDelayedCalls()) == 1


def test_reconnector_connected_says_so_once() -> None:
    """A connection made while reconnecting is announced once; one made otherwise is not."""
    reconnector, clock, dialler, notices = make_reconnector()
    reconnector.connected()
    assert notices == []
    reconnector.lost("gone")
    clock.advance(1)
    dialler.attempts[0].callback(object())
    reconnector.connected()
    reconnector.connected()
    assert notices[1:] == [f"reconnected to {WHERE}"]
    assert not reconnector.reconnecting


def test_reconnector_stop_cancels_timer() -> None:
    """Stopping while waiting cancels the timer: no attempt is ever made."""
    reconnector, clock, dialler, _ = make_reconnector()
    reconnector.lost("gone")
    reconnector.stop()
    assert clock.getDelayedCalls() == []
    clock.advance(100)
    assert dialler.attempts == []


def test_reconnector_stop_cancels_attempt_quietly() -> None:
    """Stopping during an attempt cancels it, with no notice and no further attempt."""
    reconnector, clock, dialler, notices = make_reconnector()
    reconnector.lost("gone")
    clock.advance(1)
    reconnector.stop()
    assert isinstance(result_of(dialler.attempts[0]), type(None))  # the cancellation was handled
    assert len(notices) == 1
    assert clock.getDelayedCalls() == []


# --- Identity --------------------------------------------------------------------------------------------


def test_identity_learns_nickname_from_welcome_and_rename() -> None:
    """The nickname comes from --nick, then from the server's welcome and from renames of ourselves only."""
    identity = Identity()
    assert identity.greeting() is None
    identity.received("* Welcome, zoe! 1 user online. You are in lobby; type /help for commands.")
    assert identity.greeting() == "zoe"
    identity.received("* bob is now known as bobby")
    assert identity.nick == "zoe"
    identity.received("* Zoe is now known as zed")
    assert identity.greeting() == "zed"


def test_identity_welcome_is_reported() -> None:
    """received() returns True for a welcome (logged in) and False otherwise."""
    identity = Identity("a")
    assert identity.received("* Welcome, a! 1 user online. You are in lobby; type /help for commands.")
    assert not identity.received("* you are logged in as a")
    assert not identity.received("[12:00:00] a: * Welcome, b! ")


def test_identity_keeps_login_accepted_by_server() -> None:
    """A /login the server accepts is what a new connection sends."""
    identity = Identity("alice")
    identity.typed("/login alice pw1")
    assert identity.greeting() == "alice"
    identity.received("* you are logged in as alice")
    assert identity.greeting() == "/login alice pw1"


def test_identity_forgets_login_refused_by_server() -> None:
    """A /login answered with an error is not kept."""
    identity = Identity("alice")
    identity.typed("/login alice wrong")
    identity.received("error: wrong password for alice")
    identity.received("* you are logged in as alice")
    assert identity.greeting() == "alice"


def test_identity_keeps_password_typed_at_prompt() -> None:
    """A password typed at the server's prompt, once welcomed, logs in again on a new connection."""
    identity = Identity()
    identity.typed("alice")
    identity.received("* alice is registered. Password (or /nick NAME for another nickname):")
    assert identity.password_prompt
    identity.typed("s3cret")
    assert not identity.password_prompt
    identity.received("* Welcome, alice! 2 users online. You are in lobby; type /help for commands.")
    assert identity.greeting() == "/login alice s3cret"


def test_identity_command_at_prompt_is_not_a_password() -> None:
    """At the password prompt, a command (/nick other) is not taken for the password."""
    identity = Identity()
    identity.received("* alice is registered. Password (or /nick NAME for another nickname):")
    identity.typed("/nick bob")
    identity.received("* Welcome, bob! 2 users online. You are in lobby; type /help for commands.")
    assert identity.greeting() == "bob"


def test_identity_register_and_password_change() -> None:
    """/register and /password, once confirmed, set the password used to log in again."""
    identity = Identity("alice")
    identity.typed("/register first")
    identity.received("* alice is now registered; next time log in with /login alice PASSWORD")
    assert identity.greeting() == "/login alice first"
    identity.typed("/password first second")
    identity.received("* password changed")
    assert identity.greeting() == "/login alice second"
    identity.received("* password changed")  # a stray confirmation changes nothing
    assert identity.greeting() == "/login alice second"


def test_identity_logout_forgets_everything() -> None:
    """After /logout there is neither nickname nor password to log in with."""
    identity = Identity("alice")
    identity.typed("/login alice pw")
    identity.received("* you are logged in as alice")
    identity.received("* you are logged out")
    assert identity.greeting() is None


def test_identity_login_dropped_for_another_nickname() -> None:
    """Welcomed under another nickname (say, a guest after /logout), the old password is dropped."""
    identity = Identity("alice")
    identity.typed("/login alice pw")
    identity.received("* you are logged in as alice")
    identity.received("* Welcome, bob! 1 user online. You are in lobby; type /help for commands.")
    assert identity.greeting() == "bob"


def test_identity_connection_lost_drops_pending() -> None:
    """Answers pending when the connection ended are not waited for."""
    identity = Identity("alice")
    identity.received("* alice is registered. Password (or /nick NAME for another nickname):")
    identity.typed("/login alice pw")
    identity.connection_lost()
    identity.received("* you are logged in as alice")
    assert identity.greeting() == "alice"
    assert not identity.password_prompt


@pytest.mark.parametrize(
    ("line", "prompt", "start"),
    [
        ("/login alice pw", False, 13),
        ("  /Login  alice  pw", False, 17),
        ("/login alice", False, None),
        ("/login alice ", False, None),
        ("/login", False, None),
        ("/register pw", False, 10),
        ("/password old new", False, 10),
        ("/password", False, None),
        ("hello", False, None),
        ("", False, None),
        ("s3cret", True, 0),
        ("/nick bob", True, None),
    ],
)
def test_secret_start(line: str, prompt: bool, start: int | None) -> None:
    """The secret part of a typed line starts at the password(s), or covers all of it at a password prompt."""
    assert secret_start(line, prompt) == start


# --- ChatClient reconnecting -----------------------------------------------------------------------------------


def reconnecting_session(nick: str | None = "alice", tls: bool = False) -> tuple[
    ChatClient, Clock, ServerConnection, TerminalUnderTest, Dialler
]:
    """An interactive session whose server connection can be lost and made again through a fake dialler."""
    client, clock, server, terminal = make_session(width=100, nick=nick)
    dialler = Dialler()
    client.enable_reconnect(dialler, WHERE, fixed_backoff())
    return client, clock, server, terminal, dialler


def reconnect(client: ChatClient, dialler: Dialler, tls: bool = False) -> ServerConnection:
    """Complete the pending attempt with a new server connection."""
    server = ServerConnection(client, tls=tls)
    dialler.attempts[-1].callback(server.protocol)
    return server


def test_server_gone_is_told_and_retried() -> None:
    """In interactive mode the server going away is told, the prompt says offline, and the client tries again."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    assert not client.done.called
    assert terminal.text() == [
        f"*** lost the connection to {WHERE}: the server closed the connection; reconnecting in 1.0 s",
        "(offline) alice>",
    ]
    clock.advance(1)
    assert len(dialler.attempts) == 1


def test_reconnect_sends_nick_and_says_reconnected() -> None:
    """On the new connection the nickname is sent again and the user is told they are back."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    clock.advance(1)
    new_server = reconnect(client, dialler)
    assert new_server.sent() == [b"alice"]
    assert terminal.text()[-2:] == [f"*** reconnected to {WHERE}", "alice>"]
    new_server.receive(b"* Welcome, alice! 1 user online. You are in lobby; type /help for commands.\r\n")
    terminal.type(b"hello again\r")
    assert new_server.sent() == [b"hello again"]


def test_reconnect_logs_in_again_with_password() -> None:
    """After a /login during the session, the new connection logs in with it."""
    client, clock, server, terminal, dialler = reconnecting_session()
    terminal.type(b"/login alice pw\r")
    server.receive(b"* you are logged in as alice\r\n")
    server.close()
    clock.advance(1)
    assert reconnect(client, dialler).sent() == [b"/login alice pw"]


def test_reconnect_without_nickname_sends_nothing() -> None:
    """Disconnected before choosing a nickname, the new connection sends nothing; the user answers the prompt."""
    client, clock, server, terminal, dialler = reconnecting_session(nick=None)
    server.close()
    clock.advance(1)
    assert reconnect(client, dialler).sent() == []


def test_failed_attempts_back_off_and_backoff_resets_on_welcome() -> None:
    """Refused attempts are told with growing delays; a welcome on the new connection resets the back-off."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    clock.advance(1)
    dialler.refuse()
    clock.advance(2)
    dialler.refuse()
    clock.advance(4)
    new_server = reconnect(client, dialler)
    assert "trying again in 4.0 s" in terminal.text()[-3]
    assert client.reconnector is not None and client.reconnector.backoff.attempts == 3
    new_server.receive(b"* Welcome, alice! 1 user online. You are in lobby; type /help for commands.\r\n")
    assert client.reconnector.backoff.attempts == 0


def test_line_typed_while_offline_kept_in_input() -> None:
    """A line entered while disconnected is not sent: the user is told, and it is back on the input line."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    terminal.type(b"are you there?\r")
    assert terminal.text()[-2:] == [
        "*** not connected, so that line was not sent; it is back on the input line",
        "(offline) alice> are you there?",
    ]
    clock.advance(1)
    new_server = reconnect(client, dialler)
    new_server.sent()
    terminal.type(b"\r")
    assert new_server.sent() == [b"are you there?"]


def test_help_while_offline_shows_client_help_only() -> None:
    """/help while disconnected shows the client's part and says the server's comes when it is back."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    terminal.type(b"/help\r")
    assert terminal.text()[-2] == "*** the server's commands are listed once it is back"


@pytest.mark.parametrize("keys", [b"/quit\r", CTRL_C])
def test_quit_while_offline_exits_0_at_once(keys: bytes) -> None:
    """/quit or Ctrl-C while waiting to reconnect ends at once with status 0 and no further attempts."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    terminal.type(keys)
    assert result_of(client.done) == 0
    assert clock.getDelayedCalls() == []
    clock.advance(100)
    assert dialler.attempts == []


def test_quit_during_attempt_cancels_it() -> None:
    """Ctrl-C while an attempt is under way cancels it and ends with status 0."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    clock.advance(1)
    terminal.type(CTRL_C)
    assert result_of(client.done) == 0
    assert dialler.attempts[0].called


def test_quit_then_server_close_does_not_reconnect() -> None:
    """After /quit, the server's close ends the program (status 0) instead of reconnecting."""
    client, clock, server, terminal, dialler = reconnecting_session()
    terminal.type(b"/quit\r")
    server.close()
    assert result_of(client.done) == 0
    clock.advance(100)
    assert dialler.attempts == []


def test_tls_reconnect_waits_for_handshake() -> None:
    """Over TLS, the nickname is sent and 'reconnected' said only once the handshake is done."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    clock.advance(1)
    new_server = reconnect(client, dialler, tls=True)
    assert new_server.sent() == []
    new_server.protocol.handshakeCompleted()
    assert new_server.sent() == [b"alice"]
    assert terminal.text()[-2] == f"*** reconnected to {WHERE}"
    assert clock.getDelayedCalls() == []


def test_tls_reconnect_handshake_timeout_drops_connection_and_retries() -> None:
    """A handshake that never finishes is given up after the time-out; the loss is told and retried later."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    clock.advance(1)
    new_server = reconnect(client, dialler, tls=True)
    clock.advance(CONNECT_TIMEOUT_SECONDS)
    assert new_server.transport.disconnected  # aborted
    assert "cannot reconnect to" in terminal.text()[-2]
    assert "trying again in 2.0 s" in terminal.text()[-2]


def test_piped_client_still_exits_1_when_server_goes() -> None:
    """Without reconnecting (piped mode), the server going away still ends with status 1."""
    client = ChatClient(Clock())
    ServerConnection(client).close()
    assert result_of(client.done) == 1
    assert client.error == "the server closed the connection"


def test_server_side_reports_reason() -> None:
    """ServerSide passes the reason for the loss on to the client."""
    reasons: list[object] = []

    class Recording(ChatClient):
        def server_gone(self, reason: Failure | None = None) -> None:
            reasons.append(reason)

    server = ServerConnection(Recording(Clock()))
    server.close()
    assert isinstance(reasons[0], Failure) and reasons[0].check(error.ConnectionDone)
    assert isinstance(server.protocol, ServerSide)


def test_leave_after_the_end_does_nothing() -> None:
    """Ctrl-C once the chat has ended sends nothing and starts no timer."""
    client, clock, server, terminal, _ = reconnecting_session()
    terminal.type(b"/quit\r")
    server.close()
    assert result_of(client.done) == 0
    server.sent()
    client.leave()
    assert server.sent() == []
    assert clock.getDelayedCalls() == []


def test_plain_terminal_shows_client_notices() -> None:
    """In plain mode a notice from the client itself is a line marked ***."""
    client = ChatClient(Clock())
    terminal = attach_terminal(client)
    client.notice("hello")
    assert terminal.shown() == ["*** hello"]


def test_tls_reconnect_handshake_failure_is_told_and_retried() -> None:
    """A new connection lost during its TLS handshake (a bad certificate, say) is told, and tried again later."""
    client, clock, server, terminal, dialler = reconnecting_session()
    server.close()
    clock.advance(1)
    new_server = reconnect(client, dialler, tls=True)
    new_server.protocol.connectionLost(Failure(SSL.Error([("SSL routines", "", "certificate verify failed")])))
    assert not new_server.transport.disconnected  # nothing left to abort
    assert new_server.sent() == []
    assert " ".join(row.strip() for row in terminal.text()[-3:-1]) == (
        f"*** cannot reconnect to {WHERE}: TLS handshake failed: certificate verify failed; trying again in 2.0 s"
    )
    assert len(clock.getDelayedCalls()) == 1
