"""Tests for registered nicknames in ChatService: /register, passwords, /login, /logout, back-off, offline messages."""

from __future__ import annotations

import pytest
from twisted.logger import capturedLogs, formatEvent

from chat_twisted.accounts import ACCOUNT_FREE_FAILURES
from chat_twisted.core import ChatService
from chat_twisted.errors import TooManyAttempts
from chat_twisted.publishing import OFFLINE_LIMIT
from chat_twisted.model import (
    LOBBY,
    Account,
    AccountChanged,
    ErrorReply,
    Goodbye,
    Joined,
    LoggedIn,
    LoggedOut,
    Left,
    NickChanged,
    OfflineQueued,
    PasswordChanged,
    PrivateMessage,
    Registered,
    UserQuit,
    Welcome,
)
from chat_twisted.store.memory import MemoryStore
from chat_twisted.wire.slash import NickPrompt, PasswordPrompt
from tests.helpers import (
    PASSWORD,
    START,
    CountingHasher,
    ErrorText,
    SwitchedHasher,
    User,
    clear,
    connect,
    line_user,
    login,
    make_core,
    make_line_factory,
)

REGISTERED = "alice is now registered; next time log in with /login alice PASSWORD"
OFFLINE = "alice is offline; your message will be delivered when they log in"


def register(core: ChatService, nick: str, password: str = PASSWORD) -> None:
    """Register C{nick} with C{password} through a guest session that then quits, leaving it offline."""
    user = connect(core, "192.0.2.1:1")
    user.send(nick)
    assert user.send(f"/register {password}")[-1] == Registered(nick)
    user.send("/quit")


def log_in(core: ChatService, nick: str, password: str = PASSWORD, peer: str = "127.0.0.1:50000") -> User:
    """Connect a user and log it in to registered C{nick} with /login, forgetting what that produced."""
    user = connect(core, peer)
    assert user.send(f"/login {nick} {password}")[0] == Welcome(nick, core.online, nick.lower())
    return user


def attempt(core: ChatService, address: str, nick: str, password: str) -> ErrorReply | Welcome:
    """Try /login as the first line of a new connection from C{address}; return the first reply."""
    user = connect(core, f"{address}:4000")
    first = user.send(f"/login {nick} {password}")[0]
    assert isinstance(first, (ErrorReply, Welcome))
    return first


def too_many(seconds: int) -> ErrorText:
    """The refusal during back-off."""
    return ErrorText(f"too many failed logins; try again in {seconds} seconds")


WRONG = ErrorText("wrong password for alice")
BUSY = ErrorText("server busy; try again in a moment")


# --- /register ---------------------------------------------------------------------------------


def test_register() -> None:
    """/register registers the guest's own nickname, and a second /register says it is already theirs."""
    core, _ = make_core()
    (alice,) = login(core, "alice")
    assert alice.send(f"/register {PASSWORD}") == [Registered("alice")]
    assert alice.send("/register another-pw") == [ErrorText("alice is already registered to you")]


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/register", "usage: /register PASSWORD"),
        ("/register abc", "a password needs at least 4 characters"),
        ("/register two words", "a password may not contain spaces"),
        ("/register tab\there", "a password may not contain spaces"),
        ("/register " + "x" * 257, "a password may have at most 256 characters"),
    ],
)
def test_register_password_rules(line: str, error: str) -> None:
    """A missing, too short, too long or spaced password is refused and registers nothing."""
    core, _ = make_core()
    (alice,) = login(core, "alice")
    assert alice.send(line) == [ErrorText(error)]
    alice.send("/quit")
    assert connect(core).send("alice")[0] == Welcome("alice", 1, None)


def test_register_longest_password() -> None:
    """A password of exactly 256 characters is accepted and logs in."""
    core, _ = make_core()
    register(core, "alice", "x" * 256)
    assert log_in(core, "alice", "x" * 256).session.nick == "alice"


def test_register_nick_registered_meanwhile() -> None:
    """A guest cannot register its nickname once the store holds an account for it (another process made it)."""
    store = MemoryStore()
    core, _ = make_core(store=store)
    (alice,) = login(core, "alice")
    store.create_account("alice", Account("alice", "$argon2id$elsewhere", START))
    assert alice.send(f"/register {PASSWORD}") == [ErrorText("alice is already registered")]


def test_registered_nick_asks_for_password() -> None:
    """Choosing a registered nickname (in any case) asks for its password; the right one logs in."""
    core, _ = make_core()
    register(core, "alice")
    user = connect(core)
    assert user.send("Alice") == [PasswordPrompt("Alice")]
    assert core.online == 0
    assert user.send(f"  {PASSWORD} ") == [Welcome("Alice", 1, "alice"), Joined(LOBBY, "Alice")]


def test_wrong_password_asks_again() -> None:
    """A wrong password at the prompt gets an error and the prompt again; an empty line only the prompt."""
    core, _ = make_core()
    register(core, "alice")
    user = connect(core)
    user.send("alice")
    assert user.send("guess") == [WRONG, PasswordPrompt("alice")]
    assert user.send("") == [PasswordPrompt("alice")]
    assert user.send(PASSWORD) == [Welcome("alice", 1, "alice"), Joined(LOBBY, "alice")]


def test_nick_at_password_prompt_escapes() -> None:
    """/nick at the password prompt abandons the registered nickname and logs in as the new one."""
    core, _ = make_core()
    register(core, "alice")
    user = connect(core)
    user.send("alice")
    assert user.send("/nick bob") == [Welcome("bob", 1, None), Joined(LOBBY, "bob")]


def test_quit_at_password_prompt() -> None:
    """/quit at the password prompt says Goodbye and closes the connection."""
    core, _ = make_core()
    register(core, "alice")
    user = connect(core)
    user.send("alice")
    assert user.send("/quit") == [Goodbye("quit")]
    assert user.client.closed
    assert user.send(PASSWORD) == []
    assert core.online == 0


def test_registered_nick_in_use_asks_for_password() -> None:
    """Typing a registered nickname that is online still asks for its password; the right one takes it over."""
    core, _ = make_core()
    register(core, "alice")
    old = log_in(core, "alice", peer="10.0.0.1:1")
    new = connect(core, "10.0.0.2:2")
    assert new.send("alice") == [PasswordPrompt("alice")]
    assert old.take() == []
    assert new.send(PASSWORD) == [Welcome("alice", 1, "alice"), Joined(LOBBY, "alice")]
    assert old.take() == [Goodbye("logged in from elsewhere")]


def test_guest_nick_in_use_is_refused() -> None:
    """A guest nickname that is online is still refused at login (only registered ones can be taken over)."""
    core, _ = make_core()
    login(core, "bob")
    assert connect(core).send("bob") == [ErrorText("nickname 'bob' is already in use; choose another"), NickPrompt()]


# --- /login ------------------------------------------------------------------------------------


def test_login_as_first_line() -> None:
    """/login NICK PASSWORD as the first line logs straight in, announced to the lobby."""
    core, _ = make_core()
    register(core, "alice")
    (bob,) = login(core, "bob")
    user = connect(core)
    assert user.send(f"/login alice {PASSWORD}") == [Welcome("alice", 2, "alice"), Joined(LOBBY, "alice")]
    assert bob.take() == [Joined(LOBBY, "alice")]


@pytest.mark.parametrize("line", ["/login", "/login alice", f"/login alice {PASSWORD} extra"])
def test_login_usage(line: str) -> None:
    """/login without exactly a nickname and a password shows its usage, before and after logging in."""
    core, _ = make_core()
    register(core, "alice")
    assert connect(core).send(line) == [ErrorText("usage: /login NICK PASSWORD"), NickPrompt()]
    (bob,) = login(core, "bob")
    assert bob.send(line) == [ErrorText("usage: /login NICK PASSWORD")]


def test_login_after_guest_renames() -> None:
    """A guest's /login renames it for its room (who also see its account) and confirms with LoggedIn; it then owns the account."""
    core, _ = make_core()
    register(core, "alice")
    guest, carol = login(core, "guest", "carol")
    assert guest.send(f"/login alice {PASSWORD}") == [
        NickChanged("guest", "alice"),
        LoggedIn("alice"),
    ]
    assert carol.take() == [NickChanged("guest", "alice"), AccountChanged("alice", "alice")]
    assert guest.send("/register again-pw") == [ErrorText("alice is already registered to you")]
    assert connect(core).send("guest")[0] == Welcome("guest", 3, None)


def test_login_wrong_password_after_guest() -> None:
    """A guest's /login with a wrong password leaves it the guest it was."""
    core, _ = make_core()
    register(core, "alice")
    guest, carol = login(core, "guest", "carol")
    assert guest.send("/login alice nope") == [WRONG]
    assert carol.take() == []
    assert guest.session.nick == "guest"


def test_login_unregistered_nick() -> None:
    """/login of a nickname nobody registered is refused, before and after logging in."""
    core, _ = make_core()
    assert connect(core).send("/login nobody pass") == [ErrorText("nobody is not registered"), NickPrompt()]
    (bob,) = login(core, "bob")
    assert bob.send("/login nobody pass") == [ErrorText("nobody is not registered")]
    assert connect(core).send("/login 9lives pass") == [
        ErrorText("nickname '9lives' must not start with a digit or '-'"),
        NickPrompt(),
    ]


@pytest.mark.parametrize("line", ["/nick alice", "/nick ALICE"])
def test_guest_cannot_nick_to_registered(line: str) -> None:
    """A guest's /nick to a registered nickname (in any case) is refused with a hint to /login."""
    core, _ = make_core()
    register(core, "alice")
    bob, carol = login(core, "bob", "carol")
    new = line.split()[1]
    assert bob.send(line) == [ErrorText(f"{new} is registered; use /login {new} PASSWORD")]
    assert carol.take() == []
    assert bob.session.nick == "bob"


def test_registered_user_may_change_case() -> None:
    """A user logged in to a registered nickname may change its case without a password."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice")
    assert alice.send("/nick ALICE") == [NickChanged("alice", "ALICE")]


def test_login_evicts_older_session() -> None:
    """Logging in while another session holds the nickname closes that one; its room sees it leave."""
    core, _ = make_core()
    register(core, "alice")
    old = log_in(core, "alice", peer="10.0.0.1:1")
    (bob,) = login(core, "bob")
    clear(old)
    new = connect(core, "10.0.0.2:2")
    assert new.send(f"/login alice {PASSWORD}") == [Welcome("alice", 2, "alice"), Joined(LOBBY, "alice")]
    assert old.take() == [Goodbye("logged in from elsewhere")]
    assert old.client.closed
    assert bob.take() == [UserQuit("alice", "logged in from elsewhere", (LOBBY,)), Joined(LOBBY, "alice")]
    assert core.online == 2
    assert old.send("still here?") == []
    assert bob.take() == []


def test_login_from_guest_evicts_older_session() -> None:
    """A guest's /login to a nickname held elsewhere evicts the holder, then renames the guest."""
    core, _ = make_core()
    register(core, "alice")
    old = log_in(core, "alice", peer="10.0.0.1:1")
    bob, guest = login(core, "bob", "guest")
    clear(old)
    assert guest.send(f"/login alice {PASSWORD}") == [
        UserQuit("alice", "logged in from elsewhere", (LOBBY,)),
        NickChanged("guest", "alice"),
        LoggedIn("alice"),
    ]
    assert old.take() == [Goodbye("logged in from elsewhere")]
    assert old.client.closed
    assert bob.take() == [
        UserQuit("alice", "logged in from elsewhere", (LOBBY,)),
        NickChanged("guest", "alice"),
        AccountChanged("alice", "alice"),
    ]


def test_password_prompt_evicts_who_logged_in_meanwhile() -> None:
    """A password typed at the prompt still evicts whoever logged in to that nickname since it was asked for."""
    core, _ = make_core()
    register(core, "alice")
    waiting = connect(core, "10.0.0.2:2")
    assert waiting.send("alice") == [PasswordPrompt("alice")]
    meanwhile = log_in(core, "alice", peer="10.0.0.1:1")
    assert waiting.send(PASSWORD) == [Welcome("alice", 1, "alice"), Joined(LOBBY, "alice")]
    assert meanwhile.take() == [Goodbye("logged in from elsewhere")]
    assert meanwhile.client.closed


def test_login_again_as_self() -> None:
    """/login to the account the session already holds just confirms it."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice")
    assert alice.send(f"/login alice {PASSWORD}") == [LoggedIn("alice")]
    assert not alice.client.closed


# --- /password ---------------------------------------------------------------------------------


def test_password_change() -> None:
    """/password OLD NEW replaces the password: the new one logs in, the old one no longer does."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice")
    assert alice.send(f"/password {PASSWORD} n3w-pass") == [PasswordChanged()]
    alice.send("/quit")
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == WRONG
    assert attempt(core, "10.0.0.1", "alice", "n3w-pass") == Welcome("alice", 1, "alice")


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("/password", "usage: /password OLD NEW"),
        (f"/password {PASSWORD}", "usage: /password OLD NEW"),
        (f"/password {PASSWORD} a b", "usage: /password OLD NEW"),
        ("/password wrong-pw n3w-pass", "wrong password for alice"),
        (f"/password {PASSWORD} abc", "a password needs at least 4 characters"),
    ],
)
def test_password_errors(line: str, error: str) -> None:
    """A malformed /password, a wrong old password or an unfit new one leaves the password unchanged."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice")
    assert alice.send(line) == [ErrorText(error)]
    alice.send("/quit")
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == Welcome("alice", 1, "alice")


def test_password_needs_an_account() -> None:
    """A guest's /password is refused."""
    core, _ = make_core()
    (bob,) = login(core, "bob")
    assert bob.send("/password old-pw new-pw") == [ErrorText("you are not logged in to a registered nickname")]


# --- /logout -----------------------------------------------------------------------------------


def test_logout() -> None:
    """/logout leaves the room ('logged out'), frees the nickname and asks for a new one."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice")
    (bob,) = login(core, "bob")
    clear(alice)
    assert alice.send("/logout") == [LoggedOut()]
    assert bob.take() == [UserQuit("alice", "logged out", (LOBBY,))]
    assert core.online == 1
    assert connect(core).send("alice") == [PasswordPrompt("alice")]
    assert alice.send("carol") == [Welcome("carol", 2, None), Joined(LOBBY, "carol")]
    assert bob.take() == [Joined(LOBBY, "carol")]


def test_logout_then_login_again() -> None:
    """After /logout the same connection can log back in with the password."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice")
    alice.send("/logout")
    assert alice.send(f"/login alice {PASSWORD}") == [Welcome("alice", 1, "alice"), Joined(LOBBY, "alice")]


def test_logout_guest() -> None:
    """A guest's /logout is refused and it stays logged in."""
    core, _ = make_core()
    (bob,) = login(core, "bob")
    assert bob.send("/logout") == [ErrorText("you are not logged in to a registered nickname")]
    assert core.online == 1


# --- back-off after wrong passwords ------------------------------------------------------------


def test_backoff_per_account_and_address_refuses_without_checking() -> None:
    """After 3 wrong passwords for an account from one address, that address's logins to it are refused unchecked until the delay passes."""
    hasher = CountingHasher()
    core, clock = make_core(hasher=hasher)
    register(core, "alice")
    for _ in range(3):
        assert attempt(core, "10.0.0.1", "alice", "guess") == WRONG
    assert hasher.verified == 3
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == too_many(2)
    clock.advance(1)
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == too_many(1)
    assert hasher.verified == 3
    clock.advance(1)
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == Welcome("alice", 1, "alice")


def test_attacker_elsewhere_never_locks_the_owner_out() -> None:
    """However often other addresses fail for an account, its owner logs in at once from an address that has not failed."""
    hasher = CountingHasher()
    core, clock = make_core(hasher=hasher)
    register(core, "alice")
    for _ in range(15):
        for address in ("10.0.0.66", "10.0.0.67", "2001:db8::66"):
            attempt(core, address, "alice", "guess")
        clock.advance(60)
    assert hasher.verified > ACCOUNT_FREE_FAILURES  # the account itself is in back-off
    refused = attempt(core, "10.0.0.66", "alice", PASSWORD)
    assert isinstance(refused, ErrorReply) and isinstance(refused.error, TooManyAttempts)
    assert attempt(core, "10.0.0.4", "alice", PASSWORD) == Welcome("alice", 1, "alice")


def test_account_backoff_across_addresses_holds_only_addresses_that_failed_for_it() -> None:
    """Past 10 failures for an account from all addresses together, each address that failed for it waits; clean ones do not."""
    core, clock = make_core()
    register(core, "alice")
    for number in range(1, 10):
        assert attempt(core, f"10.0.1.{number}", "alice", "guess") == WRONG
    assert attempt(core, "10.0.1.1", "alice", PASSWORD) == Welcome("alice", 1, "alice")
    assert attempt(core, "10.0.1.10", "alice", "guess") == WRONG  # the 10th failure for alice
    assert attempt(core, "10.0.1.10", "alice", PASSWORD) == too_many(2)
    assert attempt(core, "10.0.1.2", "alice", PASSWORD) == too_many(2)
    assert attempt(core, "10.0.1.11", "alice", PASSWORD) == Welcome("alice", 1, "alice")
    clock.advance(2)
    assert attempt(core, "10.0.1.2", "alice", PASSWORD) == Welcome("alice", 1, "alice")


def test_own_account_success_does_not_reset_anothers_backoff() -> None:
    """Logging in to one's own account clears the address's count, not its count for another account it guessed at."""
    core, clock = make_core()
    register(core, "alice")
    register(core, "mallory")
    for _ in range(3):
        assert attempt(core, "10.0.0.9", "alice", "guess") == WRONG
    assert attempt(core, "10.0.0.9", "mallory", PASSWORD) == too_many(2)
    clock.advance(2)
    assert attempt(core, "10.0.0.9", "mallory", PASSWORD) == Welcome("mallory", 1, "mallory")
    assert attempt(core, "10.0.0.9", "alice", "guess") == WRONG
    assert attempt(core, "10.0.0.9", "alice", PASSWORD) == too_many(4)


def test_ipv6_addresses_of_one_64_share_a_backoff() -> None:
    """Wrong passwords from different addresses of one IPv6 /64 count as one address."""
    core, _ = make_core()
    register(core, "alice")
    for host in ("1", "2", "3"):
        assert attempt(core, f"[2001:db8::{host}]", "alice", "guess") == WRONG
    assert attempt(core, "[2001:db8::4]", "alice", PASSWORD) == too_many(2)
    assert attempt(core, "[2001:db8:0:1::4]", "alice", PASSWORD) == Welcome("alice", 1, "alice")


def test_backoff_at_password_prompt() -> None:
    """During back-off the password prompt answers with the refusal and asks for the password again."""
    core, _ = make_core()
    register(core, "alice")
    user = connect(core, "10.0.0.1:1")
    user.send("alice")
    for _ in range(3):
        assert user.send("guess") == [WRONG, PasswordPrompt("alice")]
    assert user.send(PASSWORD) == [too_many(2), PasswordPrompt("alice")]


def test_backoff_grows() -> None:
    """Each further wrong password after the delay doubles it."""
    core, clock = make_core()
    register(core, "alice")
    for _ in range(3):
        attempt(core, "10.0.0.1", "alice", "guess")
    assert attempt(core, "10.0.0.1", "alice", "guess") == too_many(2)
    clock.advance(2)
    assert attempt(core, "10.0.0.1", "alice", "guess") == WRONG
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == too_many(4)
    clock.advance(4)
    assert attempt(core, "10.0.0.1", "alice", "guess") == WRONG
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == too_many(8)
    clock.advance(8)
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == Welcome("alice", 1, "alice")


def test_backoff_per_address_across_accounts() -> None:
    """Three wrong passwords from one address, each for another account, hold back that address only."""
    core, clock = make_core()
    for nick in ("alice", "bob", "carol", "dave"):
        register(core, nick)
    for nick in ("alice", "bob", "carol"):
        assert attempt(core, "10.0.0.9", nick, "guess") == ErrorText(f"wrong password for {nick}")
    assert attempt(core, "10.0.0.9", "dave", PASSWORD) == too_many(2)
    assert attempt(core, "10.0.0.10", "dave", PASSWORD) == Welcome("dave", 1, "dave")
    clock.advance(2)
    assert attempt(core, "10.0.0.9", "alice", PASSWORD) == Welcome("alice", 2, "alice")


def test_backoff_applies_to_password_change() -> None:
    """Wrong old passwords given to /password count as failures and are held back the same way."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice", peer="10.0.0.1:1")
    for _ in range(3):
        assert alice.send("/password guess n3w-pass") == [WRONG]
    assert alice.send(f"/password {PASSWORD} n3w-pass") == [too_many(2)]


def test_success_clears_backoff() -> None:
    """A right password forgets the earlier failures of the account and the address."""
    core, clock = make_core()
    register(core, "alice")
    for _ in range(3):
        attempt(core, "10.0.0.1", "alice", "guess")
    clock.advance(2)
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == Welcome("alice", 1, "alice")
    for _ in range(2):
        assert attempt(core, "10.0.0.1", "alice", "guess") == WRONG
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == Welcome("alice", 1, "alice")


def test_unregistered_nick_is_not_a_failure() -> None:
    """/login of an unregistered nickname does not count towards the back-off."""
    core, _ = make_core()
    register(core, "alice")
    for _ in range(5):
        attempt(core, "10.0.0.1", "nobody", "guess")
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == Welcome("alice", 1, "alice")


def test_register_failures_count_towards_the_address_backoff() -> None:
    """/register attempts that fail count against the address: after 3, it is refused for /register and logins alike."""
    core, clock = make_core()
    register(core, "alice")
    bob = connect(core, "10.0.0.1:1")
    bob.send("bob")
    for _ in range(3):
        assert bob.send("/register ab") == [ErrorText("a password needs at least 4 characters")]
    assert bob.send(f"/register {PASSWORD}") == [too_many(2)]
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == too_many(2)
    assert attempt(core, "10.0.0.2", "alice", PASSWORD) == Welcome("alice", 2, "alice")
    clock.advance(2)
    assert bob.send(f"/register {PASSWORD}")[-1] == Registered("bob")


def test_password_change_with_a_bad_new_password_counts() -> None:
    """/password with a new password that breaks the rules counts as a failure of the address, like a wrong old one."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice", peer="10.0.0.1:1")
    assert alice.send("/password guess n3w-pass") == [WRONG]
    assert alice.send(f"/password {PASSWORD} ab") == [ErrorText("a password needs at least 4 characters")]
    assert alice.send(f"/password {PASSWORD} ab") == [ErrorText("a password needs at least 4 characters")]
    assert alice.send(f"/password {PASSWORD} n3w-pass") == [too_many(2)]


def test_busy_hasher_refusals_count_for_the_address_only() -> None:
    """A login or /register refused as busy is told so and counts against its address, never against the account."""
    hasher = SwitchedHasher()
    core, _ = make_core(hasher=hasher)
    register(core, "alice")
    hasher.busy = True
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == BUSY
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == BUSY
    bob = connect(core, "10.0.0.1:2")
    bob.send("bob")
    assert bob.send(f"/register {PASSWORD}") == [BUSY]
    hasher.busy = False
    assert attempt(core, "10.0.0.1", "alice", PASSWORD) == too_many(2)
    assert attempt(core, "10.0.0.2", "alice", PASSWORD) == Welcome("alice", 2, "alice")


# --- identified under another nickname ---------------------------------------------------------


@pytest.mark.parametrize("how", ["login", "login-as-guest-first", "register"])
def test_msg_to_account_name_reaches_its_user_under_another_nick_live(how: str) -> None:
    """A /msg to an account's name, when nobody has that nickname, goes live to the user identified to it under their nickname."""
    core, _ = make_core()
    if how == "register":
        alice = connect(core, "10.0.0.1:1")
        alice.send("alice")
        alice.send(f"/register {PASSWORD}")
    elif how == "login":
        register(core, "alice")
        alice = log_in(core, "alice")
    else:
        register(core, "alice")
        alice = connect(core, "10.0.0.1:1")
        alice.send("zed")
        alice.send(f"/login alice {PASSWORD}")
    alice.send("/nick ally")
    (bob,) = login(core, "bob")
    alice.take()
    assert bob.send("/msg Alice are you there?") == [PrivateMessage("bob", "ally", "are you there?", START, echo=True)]
    assert alice.take() == [PrivateMessage("bob", "ally", "are you there?", START)]


def test_msg_to_account_name_goes_offline_once_its_user_is_not_identified() -> None:
    """Once the user identified to an account logs out, a /msg to the account's name is kept for later again."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice")
    alice.send("/nick ally")
    alice.send("/logout")
    (bob,) = login(core, "bob")
    assert bob.send("/msg alice later") == [OfflineQueued("alice")]


def test_msg_to_nick_wins_over_account_name() -> None:
    """A user online under a nickname gets messages to it, though another user is identified to an account of that name."""
    core, _ = make_core()
    register(core, "alice")
    alice = log_in(core, "alice")
    alice.send("/nick ally")
    (bob, carol) = login(core, "bob", "carol")
    assert bob.send("/msg ally hi")[0] == PrivateMessage("bob", "ally", "hi", START, echo=True)
    assert bob.send("/msg carol hi")[0] == PrivateMessage("bob", "carol", "hi", START, echo=True)


def test_whois_shows_the_account_a_nickname_uses() -> None:
    """/whois in the line door says where a user is and which account they are logged in as, or that nobody has that name."""
    factory, core, clock = make_line_factory()
    register(core, "alice")
    alice = line_user(factory, "zed", port=40001)
    alice.send(f"/login alice {PASSWORD}\n/nick ally\n")
    bob = line_user(factory, "bob", port=40002)
    bob.send("/whois ALLY\n")
    assert bob.lines() == ["* ally is online in lobby", "* ally is logged in as alice"]
    bob.send("/whois bob\n/whois nobody\n/whois\n/whois a b\n")
    clock.advance(1)  # past flood control's short wait
    assert bob.lines() == ["* bob is online in lobby", "* no user named 'nobody' is online",
                           "error: usage: /whois NICK", "error: usage: /whois NICK"]


# --- offline private messages ------------------------------------------------------------------


def test_offline_message_delivered_on_login() -> None:
    """A /msg to an offline registered user is kept and delivered, marked stored, once they log in; then it is gone."""
    core, clock = make_core()
    register(core, "alice")
    (bob,) = login(core, "bob")
    assert bob.send("/msg ALICE see you \x1b[1mlater") == [OfflineQueued("alice")]
    clock.advance(60)
    alice = connect(core)
    alice.send("alice")
    assert alice.send(PASSWORD) == [
        Welcome("alice", 2, "alice"),
        Joined(LOBBY, "alice"),
        PrivateMessage("bob", "alice", "see you later", START, stored=True),
    ]
    alice.send("/logout")
    assert alice.send(f"/login alice {PASSWORD}") == [Welcome("alice", 2, "alice"), Joined(LOBBY, "alice")]


def test_offline_messages_delivered_on_login_command_in_order() -> None:
    """A guest's /login receives every kept message, oldest first, after its LoggedIn."""
    core, clock = make_core()
    register(core, "alice")
    bob, guest = login(core, "bob", "guest")
    bob.send("/msg alice one")
    clock.advance(1)
    bob.send("/msg alice two")
    assert guest.send(f"/login alice {PASSWORD}") == [
        NickChanged("guest", "alice"),
        LoggedIn("alice"),
        PrivateMessage("bob", "alice", "one", START, stored=True),
        PrivateMessage("bob", "alice", "two", START + 1, stored=True),
    ]


def test_offline_message_not_delivered_without_password() -> None:
    """A connection that only reaches the password prompt, or gives a wrong password, gets no kept messages."""
    core, _ = make_core()
    register(core, "alice")
    (bob,) = login(core, "bob")
    bob.send("/msg alice private")
    user = connect(core)
    assert user.send("alice") == [PasswordPrompt("alice")]
    assert user.send("guess") == [WRONG, PasswordPrompt("alice")]
    assert user.send("/nick notalice")[:2] == [Welcome("notalice", 2, None), Joined(LOBBY, "notalice")]
    assert user.client.of_type(PrivateMessage) == []


@pytest.mark.parametrize("target", ["nobody", "9lives"])
def test_msg_to_unknown_offline_nick(target: str) -> None:
    """A /msg to a nickname that is neither online nor registered is refused and kept nowhere."""
    core, _ = make_core()
    (bob,) = login(core, "bob")
    assert bob.send(f"/msg {target} hi") == [ErrorText(f"no user named {target!r} is online")]


def test_offline_mailbox_limit() -> None:
    """At most OFFLINE_LIMIT messages wait for one user; more are refused until they log in and take them."""
    core, _ = make_core()
    register(core, "alice")
    (bob,) = login(core, "bob")
    for number in range(OFFLINE_LIMIT):
        assert bob.send(f"/msg alice note {number}") == [OfflineQueued("alice")]
    assert bob.send("/msg alice one too many") == [ErrorText("alice has too many messages waiting; try again later")]
    alice = log_in(core, "alice")
    alice.send("/logout")
    clear(bob)
    assert bob.send("/msg alice fits again") == [OfflineQueued("alice")]


def test_offline_mailbox_limit_counts_delivered() -> None:
    """Logging in delivers exactly the OFFLINE_LIMIT kept messages, in order."""
    core, _ = make_core()
    register(core, "alice")
    (bob,) = login(core, "bob")
    for number in range(OFFLINE_LIMIT + 1):
        bob.send(f"/msg alice note {number}")
    events = connect(core).send(f"/login alice {PASSWORD}")
    texts = [event.text for event in events if isinstance(event, PrivateMessage)]
    assert texts == [f"note {number}" for number in range(OFFLINE_LIMIT)]


# --- logging -----------------------------------------------------------------------------------


def test_passwords_never_logged() -> None:
    """No log event, formatted or raw, contains a password used to register, log in or change passwords."""
    first, second, wrong = "Pw-first-4417", "Pw-second-8821", "Pw-wrong-3390"
    with capturedLogs() as events:
        core, _ = make_core()
        (alice,) = login(core, "alice")
        alice.send("/register short")
        alice.send(f"/register {first}")
        alice.send("/quit")
        user = connect(core, "10.0.0.1:1")
        user.send("alice")
        user.send(wrong)
        user.send(first)
        user.send(f"/password {wrong} {second}")
        user.send(f"/password {first} {second}")
        user.send("/logout")
        user.send(f"/login alice {wrong}")
        user.send(f"/login alice {wrong}")
        user.send(f"/login alice {second}")
        user.send(f"/login nobody {wrong}")
        user.send("/quit")
    assert events
    for event in events:
        text = formatEvent(event) + repr(event)
        for password in (first, second, wrong):
            assert password not in text


def test_other_commands_at_password_prompt_do_not_count_as_tries() -> None:
    """A command other than /nick, /login or /quit at the password prompt is refused without a password check."""
    core, _ = make_core()
    register(core, "alice")
    user = connect(core)
    user.send("alice")
    refusal = ErrorText("enter the password for alice, /nick NAME for another nickname, or /quit")
    for _ in range(5):
        assert user.send("/help") == [refusal, PasswordPrompt("alice")]
    assert user.send(PASSWORD) == [Welcome("alice", 1, "alice"), Joined(LOBBY, "alice")]
