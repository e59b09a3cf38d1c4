"""
Tests for connection limits, flood tokens, the login timer and clean shutdown.

Covers chat_twisted.limits (address_group, ConnectionLimits, TokenBucket) and how ChatService uses
them: refusing connections over the limits, closing connections that never choose a nickname, and
stopping with every session told and the store closed last. All on fake clocks and RecordingClients.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from chat_twisted.core import DEFAULT_NICK_TIMEOUT, SHUTDOWN_GRACE, ChatService, Session
from chat_twisted.errors import ServerFull, TooManyConnectionsRecently, TooManyFromAddress
from chat_twisted.limits import ConnectionLimits, TokenBucket, address_group
from chat_twisted.model import (
    ErrorReply,
    Event,
    Goodbye,
    LoggedOut,
    ServerShutdown,
)
from chat_twisted.store.memory import MemoryStore
from tests.fakes import RecordingClient
from chat_twisted.wire.slash import SlashSession
from tests.helpers import ErrorText, User, connect, login, make_core, success_result_of

FULL = "the server is full ({} connections); try again later"
TOO_MANY = "too many connections from your address (at most {})"
SHUTTING_DOWN = "the server is shutting down"
TIMED_OUT = "no nickname chosen within 60 seconds"
RECENTLY = "too many new connections from your address (at most {} in {} seconds); try again later"

#: What an OrderedClient notes when it is closed.
CLOSE = "close"


class OrderedClient(RecordingClient):
    """A RecordingClient that also notes, in one list, each event and the close in the order they came."""

    def __init__(self, peer: str = "127.0.0.1:40000") -> None:
        super().__init__(peer)
        self.order: list[Event | str] = []

    def deliver(self, event: Event) -> None:
        super().deliver(event)
        self.order.append(event)

    def close(self) -> None:
        super().close()
        self.order.append(CLOSE)


class StopRecordingStore(MemoryStore):
    """A MemoryStore that counts calls to stop(); with C{hold}, stop() returns a Deferred the test fires."""

    def __init__(self, hold: bool = False) -> None:
        super().__init__()
        self.stops = 0
        self._hold = hold
        self.stopping: Deferred[None] | None = None

    def stop(self) -> Deferred[None]:
        self.stops += 1
        if self._hold:
            self.stopping = Deferred()
            return self.stopping
        return succeed(None)


def limited_core(
    max_total: int = 100, max_per_address: int = 100, limit_loopback: bool = False
) -> tuple[ChatService, Clock]:
    """Return a core on a fake clock admitting C{max_total} connections, C{max_per_address} per group."""
    return make_core(limits=ConnectionLimits(max_total, max_per_address, limit_loopback))


def refused(core: ChatService, peer: str) -> tuple[OrderedClient, Session]:
    """Connect from C{peer}, expecting a refusal; return its client and session."""
    client = OrderedClient(peer)
    session = core.connect(client, peer)
    assert session.closed
    assert client.closed
    return client, session


def fired(d: Deferred[Any]) -> bool:
    """Return whether C{d} has a result yet (without consuming it); unlike C{d.called}, not while paused."""
    results: list[object] = []

    def note(result: object) -> object:
        results.append(result)
        return result

    d.addBoth(note)
    return bool(results)


# --- address_group ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("203.0.113.250", "203.0.113.250"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8::ffff:1:2:3", "2001:db8::/64"),
        ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
        ("2001:DB8::1", "2001:db8::/64"),
        ("[2001:db8::1]", "2001:db8::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("[::ffff:192.0.2.1]", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::/64"),
    ],
)
def test_address_group_of_ip_addresses(address: str, group: str) -> None:
    """IPv4 addresses group alone, IPv6 by /64, IPv4-mapped IPv6 as the IPv4 address, brackets ignored."""
    assert address_group(address) == group
    assert address_group(address, loopback=False) == group


@pytest.mark.parametrize(
    ("address", "group"),
    [("127.0.0.1", "127.0.0.1"), ("127.5.6.7", "127.5.6.7"), ("::1", "::/64"), ("::ffff:127.0.0.1", "127.0.0.1")],
)
def test_address_group_of_loopback(address: str, group: str) -> None:
    """Loopback addresses are grouped like others by default, and not at all with loopback=False."""
    assert address_group(address) == group
    assert address_group(address, loopback=True) == group
    assert address_group(address, loopback=False) is None


@pytest.mark.parametrize("address", ["/run/chat.sock", "UNIXAddress(None)", "localhost", "", "[]", "192.0.2", "1.2.3.4.5"])
def test_address_group_of_non_ip_is_none(address: str) -> None:
    """What is not an IP address (a UNIX socket path, a host name, garbage) belongs to no group."""
    assert address_group(address) is None
    assert address_group(address, loopback=False) is None


# --- ConnectionLimits ---------------------------------------------------------------------------


def test_limits_total_cap() -> None:
    """Connections past max_total are refused with a message naming the cap, and are not counted."""
    limits = ConnectionLimits(max_total=2, max_per_address=10)
    assert limits.admit("192.0.2.1") is None
    assert limits.admit("192.0.2.2") is None
    assert limits.admit("192.0.2.3") == ServerFull(2)
    assert limits.admit("/run/chat.sock") == ServerFull(2)
    assert limits.total == 2


def test_limits_per_group_cap() -> None:
    """Connections past max_per_address from one group are refused with the per-address message."""
    limits = ConnectionLimits(max_total=10, max_per_address=2)
    assert limits.admit("192.0.2.1") is None
    assert limits.admit("192.0.2.1") is None
    assert limits.admit("192.0.2.1") == TooManyFromAddress(2)
    assert limits.admit("192.0.2.2") is None
    assert limits.total == 3


def test_limits_ipv6_group_shares_the_cap() -> None:
    """Addresses in one IPv6 /64 share a count; another /64 has its own."""
    limits = ConnectionLimits(max_total=10, max_per_address=2)
    assert limits.admit("2001:db8::1") is None
    assert limits.admit("[2001:db8::2]") is None
    assert limits.admit("2001:db8::ffff:3") == TooManyFromAddress(2)
    assert limits.admit("2001:db8:0:1::1") is None


def test_limits_ipv4_mapped_counts_as_ipv4() -> None:
    """An IPv4-mapped IPv6 address counts against the same IPv4 address."""
    limits = ConnectionLimits(max_total=10, max_per_address=1)
    assert limits.admit("192.0.2.1") is None
    assert limits.admit("::ffff:192.0.2.1") == TooManyFromAddress(1)


def test_limits_release_frees_both_counts() -> None:
    """release() frees a slot in the total and in the address's group."""
    limits = ConnectionLimits(max_total=1, max_per_address=1)
    assert limits.admit("192.0.2.1") is None
    limits.release("192.0.2.1")
    assert limits.total == 0
    assert limits.admit("192.0.2.1") is None
    assert limits.admit("192.0.2.1") == ServerFull(1)


def test_limits_release_keeps_other_connections_of_the_group() -> None:
    """Releasing one of two connections from an address leaves the other counted."""
    limits = ConnectionLimits(max_total=10, max_per_address=2)
    limits.admit("192.0.2.1")
    limits.admit("192.0.2.1")
    limits.release("192.0.2.1")
    assert limits.admit("192.0.2.1") is None
    assert limits.admit("192.0.2.1") == TooManyFromAddress(2)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_limits_loopback_exempt_by_default(address: str) -> None:
    """By default loopback connections are not limited per address, only by the total."""
    limits = ConnectionLimits(max_total=3, max_per_address=1)
    assert [limits.admit(address) for _ in range(3)] == [None, None, None]
    assert limits.admit(address) == ServerFull(3)
    limits.release(address)
    assert limits.total == 2


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_limits_limit_loopback_counts_it(address: str) -> None:
    """With limit_loopback, loopback addresses are limited per address like any other."""
    limits = ConnectionLimits(max_total=10, max_per_address=1, limit_loopback=True)
    assert limits.admit(address) is None
    assert limits.admit(address) == TooManyFromAddress(1)
    limits.release(address)
    assert limits.admit(address) is None


@pytest.mark.parametrize("limit_loopback", [False, True])
def test_limits_unix_path_never_per_address_limited(limit_loopback: bool) -> None:
    """UNIX socket peers are never limited per address, only by the total."""
    limits = ConnectionLimits(max_total=3, max_per_address=1, limit_loopback=limit_loopback)
    assert [limits.admit("/run/chat.sock") for _ in range(3)] == [None, None, None]
    assert limits.admit("/run/chat.sock") == ServerFull(3)


# --- TokenBucket --------------------------------------------------------------------------------


def test_bucket_burst_is_free() -> None:
    """A new bucket lets C{burst} tokens go at once without waiting."""
    bucket = TokenBucket(Clock(), rate=2.0, burst=3)
    assert [bucket.take(1) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_bucket_returns_the_wait_and_waits_queue_up() -> None:
    """Past the burst, take() returns the seconds until the spending is covered, growing with each take."""
    bucket = TokenBucket(Clock(), rate=2.0, burst=3)
    for _ in range(3):
        bucket.take(1)
    assert bucket.take(1) == 0.5
    assert bucket.take(1) == 1.0
    assert bucket.take(2) == 2.0


def test_bucket_refills_at_rate() -> None:
    """Tokens come back at C{rate} per second of clock time."""
    clock = Clock()
    bucket = TokenBucket(clock, rate=2.0, burst=3)
    for _ in range(3):
        bucket.take(1)
    clock.advance(1)
    assert bucket.take(1) == 0.0
    assert bucket.take(1) == 0.0
    assert bucket.take(1) == 0.5


def test_bucket_refill_pays_off_debt_first() -> None:
    """After overspending, waiting exactly the returned time makes the next token cost one token's wait."""
    clock = Clock()
    bucket = TokenBucket(clock, rate=4.0, burst=1)
    bucket.take(1)
    wait = bucket.take(1)
    assert wait == 0.25
    clock.advance(wait)
    assert bucket.take(1) == 0.25


def test_bucket_refill_capped_at_burst() -> None:
    """A long quiet spell refills no more than C{burst} tokens."""
    clock = Clock()
    bucket = TokenBucket(clock, rate=2.0, burst=3)
    clock.advance(1000)
    assert [bucket.take(1) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(1) == 0.5


def test_bucket_rate_zero_never_waits() -> None:
    """A rate of 0 means unlimited: take() always returns 0, however much is spent."""
    clock = Clock()
    bucket = TokenBucket(clock, rate=0, burst=1)
    assert [bucket.take(1000) for _ in range(100)] == [0.0] * 100


# --- ChatService.connect: refusals --------------------------------------------------------------


def test_connect_over_total_refused_then_closed() -> None:
    """A connection over max_total gets one ErrorReply, then is closed, and its session is closed."""
    core, _ = limited_core(max_total=2)
    connect(core, "192.0.2.1:1")
    connect(core, "192.0.2.2:1")
    client, _ = refused(core, "192.0.2.3:1")
    assert client.order == [ErrorText(FULL.format(2)), CLOSE]
    assert core.limits.total == 2


def test_connect_over_per_ip_refused() -> None:
    """A connection over max_per_address from one IP gets the per-address error and is closed."""
    core, _ = limited_core(max_per_address=2)
    connect(core, "192.0.2.1:1")
    connect(core, "192.0.2.1:2")
    client, _ = refused(core, "192.0.2.1:3")
    assert client.order == [ErrorText(TOO_MANY.format(2)), CLOSE]
    connect(core, "192.0.2.2:1")


def test_refused_session_ignores_lines() -> None:
    """Lines that reach a refused session before the close are ignored."""
    core, _ = limited_core(max_total=1)
    connect(core, "192.0.2.1:1")
    client, session = refused(core, "192.0.2.2:1")
    client.take()
    SlashSession(session).handle_line("alice")
    assert client.take() == []
    assert core.online == 0


def test_refused_connection_does_not_use_a_slot() -> None:
    """A refused connection's disconnect frees nothing, so the admitted ones still hold their slots."""
    core, _ = limited_core(max_total=1)
    first = connect(core, "192.0.2.1:1")
    _, session = refused(core, "192.0.2.2:1")
    session.disconnected()
    assert core.limits.total == 1
    refused(core, "192.0.2.3:1")
    first.session.disconnected()
    connect(core, "192.0.2.3:1")


def test_refused_per_ip_does_not_use_a_slot() -> None:
    """A connection refused per address is not counted for that address."""
    core, _ = limited_core(max_per_address=1)
    first = connect(core, "192.0.2.1:1")
    _, session = refused(core, "192.0.2.1:2")
    session.disconnected()
    refused(core, "192.0.2.1:3")
    first.session.disconnected()
    connect(core, "192.0.2.1:4")


@pytest.mark.parametrize("logged_in", [False, True])
def test_slot_free_after_disconnect(logged_in: bool) -> None:
    """Once a connection ends, logged in or not, its slot in the total and its address group is free."""
    core, _ = limited_core(max_total=1, max_per_address=1)
    user = connect(core, "192.0.2.1:1")
    if logged_in:
        user.send("alice")
    user.session.disconnected()
    assert core.limits.total == 0
    connect(core, "192.0.2.1:2")


def test_slot_free_after_quit() -> None:
    """/quit frees the connection's slot."""
    core, _ = limited_core(max_total=1)
    user = connect(core, "192.0.2.1:1")
    assert user.send("/quit") == [Goodbye("quit")]
    connect(core, "192.0.2.2:1")


def test_ipv6_clients_in_one_64_share_the_count() -> None:
    """IPv6 clients in one /64 share the per-address count; a client in another /64 does not."""
    core, _ = limited_core(max_per_address=2)
    connect(core, "2001:db8::1:40000")
    connect(core, "2001:db8::abcd:ef:40001")
    client, _ = refused(core, "2001:db8::ffff:40002")
    assert client.order == [ErrorText(TOO_MANY.format(2)), CLOSE]
    connect(core, "2001:db8:0:1::1:40003")


def test_ipv4_mapped_peer_counts_as_ipv4() -> None:
    """A peer on an IPv4-mapped IPv6 address shares the count of the plain IPv4 address."""
    core, _ = limited_core(max_per_address=1)
    connect(core, "192.0.2.1:1")
    refused(core, "::ffff:192.0.2.1:2")


def test_loopback_peers_exempt_from_per_ip_limit_by_default() -> None:
    """Without limit_loopback, many connections from 127.0.0.1 and ::1 are admitted."""
    core, _ = limited_core(max_per_address=1)
    for port in range(5):
        connect(core, f"127.0.0.1:{port}")
        connect(core, f"::1:{port}")
    assert core.limits.total == 10


def test_loopback_peers_limited_with_limit_loopback() -> None:
    """With limit_loopback, loopback peers are held to the per-address limit."""
    core, _ = limited_core(max_per_address=1, limit_loopback=True)
    connect(core, "127.0.0.1:1")
    client, _ = refused(core, "127.0.0.1:2")
    assert client.order == [ErrorText(TOO_MANY.format(1)), CLOSE]


def test_unix_peers_only_limited_by_total() -> None:
    """UNIX socket peers are never limited per address, even with limit_loopback, only by the total."""
    core, _ = limited_core(max_total=3, max_per_address=1, limit_loopback=True)
    for _ in range(3):
        connect(core, "/run/chat.sock")
    client, _ = refused(core, "/run/chat.sock")
    assert client.order == [ErrorText(FULL.format(3)), CLOSE]


# --- new connections per address in a window ----------------------------------------------------


def rated(per_window: int = 32, window: float = 600.0, limit_loopback: bool = False) -> tuple[ConnectionLimits, Clock]:
    """Return generous ConnectionLimits with a connection rate on a fake clock."""
    clock = Clock()
    return ConnectionLimits(1000, 1000, limit_loopback, clock=clock, per_window=per_window, window=window), clock


def connect_and_leave(limits: ConnectionLimits, address: str, times: int) -> None:
    """Admit C{times} connections from C{address}, each gone before the next (so only the rate counts)."""
    for _ in range(times):
        assert limits.admit(address) is None
        limits.release(address)


def test_rate_refuses_past_32_in_the_window_and_admits_after_it() -> None:
    """An address group gets 32 new connections in 10 minutes, even if each closes at once; the 33rd is refused until the window ends."""
    limits, clock = rated()
    connect_and_leave(limits, "192.0.2.1", 32)
    assert limits.admit("192.0.2.1") == TooManyConnectionsRecently(32, 600.0)
    assert limits.total == 0
    clock.advance(599)
    assert limits.admit("192.0.2.1") == TooManyConnectionsRecently(32, 600.0)
    assert limits.admit("192.0.2.2") is None
    clock.advance(1)
    connect_and_leave(limits, "192.0.2.1", 32)
    assert limits.admit("192.0.2.1") == TooManyConnectionsRecently(32, 600.0)


def test_rate_refusals_do_not_count() -> None:
    """Refused attempts do not stretch the window: the group is admitted again when the window that filled ends."""
    limits, clock = rated(per_window=2, window=10)
    connect_and_leave(limits, "192.0.2.1", 2)
    for _ in range(5):
        clock.advance(1)
        assert limits.admit("192.0.2.1") == TooManyConnectionsRecently(2, 10)
    clock.advance(5)
    assert limits.admit("192.0.2.1") is None


def test_rate_counts_an_ipv6_64_as_one() -> None:
    """Addresses of one IPv6 /64 share one count; another /64 has its own."""
    limits, _ = rated(per_window=2)
    connect_and_leave(limits, "2001:db8::1", 1)
    connect_and_leave(limits, "2001:db8::2", 1)
    assert limits.admit("2001:db8::3") == TooManyConnectionsRecently(2, 600.0)
    assert limits.admit("2001:db8:0:1::3") is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "/run/chat.sock"])
def test_rate_exempts_loopback_and_unix_by_default(address: str) -> None:
    """Loopback and UNIX-socket connections are not rate limited without limit_loopback."""
    limits, _ = rated(per_window=2)
    connect_and_leave(limits, address, 10)


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_rate_applies_to_loopback_with_limit_loopback(address: str) -> None:
    """With limit_loopback, loopback connections are rate limited too."""
    limits, _ = rated(per_window=2, limit_loopback=True)
    connect_and_leave(limits, address, 2)
    assert limits.admit(address) == TooManyConnectionsRecently(2, 600.0)


def test_rate_zero_or_no_clock_turns_it_off() -> None:
    """A per_window of 0, or no clock, admits any number of new connections."""
    limits, _ = rated(per_window=0)
    connect_and_leave(limits, "192.0.2.1", 100)
    connect_and_leave(ConnectionLimits(1000, 1000, per_window=2), "192.0.2.1", 100)


def test_rate_forgets_old_windows_as_the_table_grows() -> None:
    """Past 10000 address groups, the windows that have ended are dropped; current ones stay."""
    limits, clock = rated(per_window=1)
    connect_and_leave(limits, "192.0.2.1", 1)
    clock.advance(600)
    connect_and_leave(limits, "198.51.100.1", 1)
    for number in range(10_000):
        connect_and_leave(limits, f"10.{number // 256}.{number % 256}.1", 1)
    assert "192.0.2.1" not in limits._windows and "198.51.100.1" in limits._windows
    assert limits.admit("198.51.100.1") == TooManyConnectionsRecently(1, 600.0)


def test_connect_past_the_rate_refused_with_its_error() -> None:
    """The core's default limits refuse the 33rd new connection from one address in 10 minutes with one error, then close it."""
    core, clock = make_core()
    for port in range(32):
        connect(core, f"192.0.2.1:{port}").session.disconnected()
    client, _ = refused(core, "192.0.2.1:99")
    assert client.order == [ErrorText(RECENTLY.format(32, 600)), CLOSE]
    for port in range(40):
        connect(core, f"127.0.0.1:{port}")
    clock.advance(600)
    connect(core, "192.0.2.1:100")


# --- the login timer ----------------------------------------------------------------------------


def test_nick_timeout_closes_connection_without_nickname() -> None:
    """After nick_timeout seconds without a nickname, the connection gets an error and is closed."""
    core, clock = limited_core()
    (alice,) = login(core, "alice")
    client = OrderedClient("192.0.2.1:1")
    session = core.connect(client, "192.0.2.1:1")
    clock.advance(DEFAULT_NICK_TIMEOUT - 1)
    assert client.order == []  # the line door greets; the core does not
    clock.advance(1)
    assert client.order == [ErrorText(TIMED_OUT), CLOSE]
    assert session.closed
    assert core.limits.total == 1
    assert alice.take() == []


def test_nick_timeout_message_uses_configured_seconds() -> None:
    """The timeout error names the configured number of seconds."""
    core, clock = make_core(nick_timeout=2.5)
    user = connect(core)
    clock.advance(2.5)
    assert user.take() == [ErrorText("no nickname chosen within 2.5 seconds")]
    assert user.client.closed


def test_nick_timeout_counts_from_connect_despite_bad_nicks() -> None:
    """Rejected nicknames do not restart the timer."""
    core, clock = make_core()
    user = connect(core)
    clock.advance(30)
    user.send("9lives")
    clock.advance(30)
    assert user.take() == [ErrorText(TIMED_OUT)]
    assert user.client.closed


def test_login_cancels_nick_timeout() -> None:
    """Logging in cancels the timer: no error or close however long the clock runs."""
    core, clock = make_core()
    user = connect(core)
    clock.advance(DEFAULT_NICK_TIMEOUT - 1)
    user.send("alice")
    assert clock.getDelayedCalls() == []
    clock.advance(10 * DEFAULT_NICK_TIMEOUT)
    assert user.take() == []
    assert not user.client.closed
    assert core.online == 1


def test_nick_timeout_applies_at_password_prompt() -> None:
    """A connection still at the password prompt of a registered nickname is timed out too."""
    core, clock = make_core()
    owner = connect(core, "192.0.2.1:1")
    owner.send("alice")
    owner.send("/register s3cret-pw")
    owner.send("/quit")
    user = connect(core)
    user.send("alice")
    clock.advance(DEFAULT_NICK_TIMEOUT)
    assert user.take() == [ErrorText(TIMED_OUT)]
    assert user.client.closed


def test_logout_restarts_nick_timeout() -> None:
    """After /logout the connection again has nick_timeout seconds, counted from the logout."""
    core, clock = make_core()
    user = connect(core)
    user.send("alice")
    user.send("/register s3cret-pw")
    clock.advance(1000)
    assert user.send("/logout") == [LoggedOut()]
    clock.advance(DEFAULT_NICK_TIMEOUT - 1)
    assert user.take() == []
    clock.advance(1)
    assert user.take() == [ErrorText(TIMED_OUT)]
    assert user.client.closed
    assert user.session.closed


def test_login_after_logout_cancels_restarted_timer() -> None:
    """Logging in again after /logout cancels the restarted timer."""
    core, clock = make_core()
    user = connect(core)
    user.send("alice")
    user.send("/register s3cret-pw")
    user.send("/logout")
    user.send("bob")
    user.take()
    clock.advance(10 * DEFAULT_NICK_TIMEOUT)
    assert user.take() == []
    assert not user.client.closed
    assert core.online == 1


def test_nick_timeout_zero_disables_it() -> None:
    """With nick_timeout=0 no timer is set and a connection may wait forever for a nickname."""
    core, clock = make_core(nick_timeout=0)
    user = connect(core)
    assert clock.getDelayedCalls() == []
    clock.advance(1e9)
    assert user.take() == []
    assert not user.client.closed


def test_nick_timer_of_disconnected_session_does_nothing() -> None:
    """A connection that ended before its timer is not sent anything, closed or released twice; others still time out."""
    core, clock = make_core()
    user = connect(core, "192.0.2.1:1")
    other = connect(core, "192.0.2.2:1")
    user.session.disconnected()
    assert core.limits.total == 1
    clock.advance(DEFAULT_NICK_TIMEOUT)
    assert user.take() == []
    assert not user.client.closed
    assert core.limits.total == 0
    assert other.client.closed


# --- shutdown -----------------------------------------------------------------------------------


def shutdown_core(hold: bool = False) -> tuple[ChatService, Clock, StopRecordingStore]:
    """Return a started core on a fake clock whose store records stop()."""
    store = StopRecordingStore(hold)
    core, clock = make_core(store=store)
    core.startService()
    return core, clock, store


def test_shutdown_tells_everyone_then_closes() -> None:
    """Every connection, logged in or not, gets ServerShutdown and is then closed."""
    core, _, _ = shutdown_core()
    alice, bob = login(core, "alice", "bob")
    waiting = OrderedClient("192.0.2.1:1")
    core.connect(waiting, "192.0.2.1:1")
    waiting.order.clear()
    core.stopService()
    assert alice.take() == [ServerShutdown()]
    assert bob.take() == [ServerShutdown()]
    assert alice.client.closed and bob.client.closed
    assert waiting.order == [ServerShutdown(), CLOSE]


def test_shutdown_broadcasts_no_left() -> None:
    """As connections close during shutdown, nobody is shown Left lines."""
    core, _, _ = shutdown_core()
    users = login(core, "alice", "bob", "carol")
    users[2].send("/join other")
    core.stopService()
    for user in users:
        user.take()
    for leaving in users:
        leaving.session.disconnected()
        assert [user.take() for user in users] == [[], [], []]
    assert core.online == 0


def test_shutdown_waits_for_every_session_then_stops_store() -> None:
    """stopService's Deferred fires only once every session has disconnected and the store has stopped."""
    core, clock, store = shutdown_core()
    alice, bob = login(core, "alice", "bob")
    waiting = connect(core)
    d = core.stopService()
    for user in (alice, waiting):
        user.session.disconnected()
        assert not fired(d)
        assert store.stops == 0
    bob.session.disconnected()
    assert store.stops == 1
    assert success_result_of(d) is None
    assert clock.getDelayedCalls() == []


def test_shutdown_waits_for_store_stop() -> None:
    """stopService's Deferred fires only when the store's stop() Deferred does."""
    core, _, store = shutdown_core(hold=True)
    (alice,) = login(core, "alice")
    d = core.stopService()
    alice.session.disconnected()
    assert store.stops == 1
    assert not fired(d)
    assert store.stopping is not None
    store.stopping.callback(None)
    assert success_result_of(d) is None


def test_shutdown_gives_up_waiting_after_grace() -> None:
    """If sessions never disconnect, the store is stopped and the Deferred fires after SHUTDOWN_GRACE seconds."""
    core, clock, store = shutdown_core()
    login(core, "alice", "bob")
    d = core.stopService()
    clock.advance(SHUTDOWN_GRACE - 0.5)
    assert not fired(d)
    assert store.stops == 0
    clock.advance(0.5)
    assert store.stops == 1
    assert success_result_of(d) is None


def test_late_disconnect_after_grace_is_harmless() -> None:
    """Sessions that disconnect after the grace period ran out cause no error, no Left and no second stop."""
    core, clock, store = shutdown_core()
    alice, bob = login(core, "alice", "bob")
    d = core.stopService()
    clock.advance(SHUTDOWN_GRACE)
    success_result_of(d)
    assert [alice.take(), bob.take()] == [[ServerShutdown()], [ServerShutdown()]]
    alice.session.disconnected()
    bob.session.disconnected()
    assert alice.take() == bob.take() == []
    assert store.stops == 1


def test_shutdown_with_nobody_connected_fires_at_once() -> None:
    """With no connections, stopService stops the store and its Deferred has fired on return."""
    core, clock, store = shutdown_core()
    d = core.stopService()
    assert store.stops == 1
    assert success_result_of(d) is None
    assert clock.getDelayedCalls() == []


def test_shutdown_after_everyone_left_fires_at_once() -> None:
    """Connections that ended before the shutdown are not waited for."""
    core, _, store = shutdown_core()
    (alice,) = login(core, "alice")
    alice.session.disconnected()
    success_result_of(core.stopService())
    assert store.stops == 1


@pytest.mark.parametrize("anyone_connected", [False, True])
def test_connect_during_shutdown_refused(anyone_connected: bool) -> None:
    """A connection arriving during shutdown gets 'the server is shutting down' and is closed, uncounted."""
    core, _, store = shutdown_core()
    users: list[User] = login(core, "alice") if anyone_connected else []
    d = core.stopService()
    client, session = refused(core, "192.0.2.1:1")
    assert client.order == [ErrorText(SHUTTING_DOWN), CLOSE]
    session.disconnected()
    for user in users:
        assert not fired(d)
        user.session.disconnected()
    assert store.stops == 1
    success_result_of(d)
    assert core.limits.total == 0

