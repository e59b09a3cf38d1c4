"""Tests for chat_twisted.masks: ban masks (their canonical text and whom they match) and ban durations."""

from __future__ import annotations

import pytest

from chat_twisted.errors import InvalidDuration, InvalidMask
from chat_twisted.masks import MAX_DURATION, Who, matches, parse_duration, parse_mask

# --- parse_mask: the canonical text --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        # accounts: the prefix in any case, the name as its key
        ("account:Name", "account:name"),
        ("ACCOUNT:Bob", "account:bob"),
        ("  account:alice  ", "account:alice"),
        # addresses and networks
        ("192.0.2.1", "192.0.2.1/32"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("198.51.100.0/24", "198.51.100.0/24"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:DB8::1", "2001:db8::1/128"),
        ("[2001:db8::1]", "2001:db8::1/128"),
        ("2001:db8:1:2::/32", "2001:db8::/32"),
        # hostmasks, as IRC clients send them
        ("*!*@192.0.2.1", "192.0.2.1/32"),
        ("nick!user@10.9.8.7/16", "10.9.0.0/16"),
        ("*@10.1.0.0/16", "10.1.0.0/16"),
        ("bob!user@[2001:db8::5]", "2001:db8::5/128"),
        ("Bob!*@*", "bob"),
        ("Spam*!*@*", "spam*"),
        ("*!*@*", "*"),
        ("account:Bob!*@*", "account:bob"),
        # nickname patterns, in lower case
        ("Alice", "alice"),
        ("spam*", "spam*"),
        ("Sp?m", "sp?m"),
        ("*bot*", "*bot*"),
        ("*", "*"),
        ("9lives", "9lives"),
        ("x" * 30, "x" * 30),
    ],
)
def test_parse_mask_canonical(text: str, canonical: str) -> None:
    """Each kind of mask, however it is typed, comes back as its one canonical text."""
    assert parse_mask(text) == canonical


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("", ""),
        ("   ", ""),
        ("two words", "two words"),
        ("a.b", "a.b"),
        ("bob#", "bob#"),
        ("alicé", "alicé"),
        ("x" * 31, "x" * 31),
        ("account:", "account:"),
        ("account:bo*", "account:bo*"),
        ("account:b?b", "account:b?b"),
        ("account:two words", "account:two words"),
        ("256.1.1.1", "256.1.1.1"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("nick!user@host.example", "nick!user@host.example"),
        ("*!*@not an address", "*!*@not an address"),
        ("bob@*", "bob@*"),
        ("@", "@"),
        ("!@", "!@"),
    ],
)
def test_parse_mask_invalid(text: str, shown: str) -> None:
    """Anything that is not an account, an address or network, or a nickname pattern is InvalidMask, naming it."""
    with pytest.raises(InvalidMask) as raised:
        parse_mask(text)
    assert raised.value == InvalidMask(shown)


@pytest.mark.parametrize(
    ("text", "shown"),
    [("bob", "bob"), ("spam*", "spam*"), ("*", "*"), ("Bob!*@*", "Bob"), ("0.0.0.0/0", "0.0.0.0/0"),
     ("::/0", "::/0"), ("*!*@0.0.0.0/0", "0.0.0.0/0")],
)
def test_parse_mask_server_refuses_nick_masks(text: str, shown: str) -> None:
    """
    A server-wide mask may not be a nickname pattern (a hostmask with host * is one), nor every
    address (a /0 network, surely a slip): InvalidMask.
    """
    with pytest.raises(InvalidMask) as raised:
        parse_mask(text, server=True)
    assert raised.value == InvalidMask(shown)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("account:Mallory", "account:mallory"),
        ("192.0.2.7", "192.0.2.7/32"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("*!*@198.51.100.9", "198.51.100.9/32"),
    ],
)
def test_parse_mask_server_takes_accounts_and_addresses(text: str, canonical: str) -> None:
    """A server-wide mask of an account, address or network has the same canonical text as a room's."""
    assert parse_mask(text, server=True) == canonical


# --- matches -------------------------------------------------------------------------------------

BOB = Who("Bob", "bob", "192.0.2.7")
GUEST_BOB = Who("Bob", None, "192.0.2.7")


@pytest.mark.parametrize(
    ("mask", "who", "expected"),
    [
        ("account:bob", BOB, True),
        ("account:bob", Who("robert", "bob", "10.0.0.1"), True),  # whatever the nickname
        ("account:bob", GUEST_BOB, False),  # a guest has no account
        ("account:bob", Who("bob", "bobby", "192.0.2.7"), False),
        ("account:bobby", BOB, False),
    ],
)
def test_matches_account(mask: str, who: Who, expected: bool) -> None:
    """An account mask matches users identified to exactly that account, under any nickname, never a guest."""
    assert matches(mask, who) is expected


@pytest.mark.parametrize(
    ("mask", "address", "expected"),
    [
        ("192.0.2.7/32", "192.0.2.7", True),
        ("192.0.2.7/32", "192.0.2.8", False),
        ("10.0.0.0/8", "10.200.3.4", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("0.0.0.0/0", "203.0.113.5", True),
        ("2001:db8::/32", "2001:db8:1::5", True),
        ("2001:db8::/32", "2001:db9::1", False),
        ("2001:db8::5/128", "[2001:db8::5]", True),
        ("2001:db8::/32", "192.0.2.7", False),  # another IP version never matches
        ("::/0", "192.0.2.7", False),
        ("0.0.0.0/0", "::1", False),
        # an IPv4-mapped IPv6 address (a dual-stack listener) matches as the IPv4 address it is
        ("192.0.2.0/24", "::ffff:192.0.2.7", True),
        ("192.0.2.0/24", "::ffff:198.51.100.7", False),
        # an address that is not IP (a UNIX socket's path, a door's own name) never matches a network
        ("0.0.0.0/0", "/run/chat.sock", False),
        ("::/0", "/run/chat.sock", False),
        ("0.0.0.0/0", "unknown", False),
        ("0.0.0.0/0", "", False),
    ],
)
def test_matches_network(mask: str, address: str, expected: bool) -> None:
    """An address or network mask matches users connecting from inside it, of the same IP version."""
    assert matches(mask, Who("bob", None, address)) is expected


@pytest.mark.parametrize(
    ("mask", "nick", "expected"),
    [
        ("bob", "Bob", True),
        ("bob", "BOB", True),
        ("bob", "bobby", False),
        ("bob", "rob", False),
        ("spam*", "SpamBot", True),
        ("spam*", "spam", True),
        ("spam*", "nospam", False),
        ("*bot*", "HelpBot2", True),
        ("sp?m", "SPAM", True),
        ("sp?m", "spm", False),
        ("sp?m", "spaam", False),
        ("*", "anyone", True),
    ],
)
def test_matches_nick_glob(mask: str, nick: str, expected: bool) -> None:
    """A nickname mask is a glob (* any run, ? one character) matched without regard to case."""
    assert matches(mask, Who(nick, None, "192.0.2.7")) is expected


def test_nick_mask_ignores_account_and_address() -> None:
    """A nickname mask looks at the nickname only: not the account of that name, nor the address."""
    assert matches("bob", Who("robert", "bob", "192.0.2.7")) is False
    assert matches("192", Who("robert", None, "192.0.2.7")) is False


def test_nick_mask_with_brackets_matches_literally() -> None:
    """A mask of a nickname with brackets, like [bot], matches that nickname, and not a one-letter nickname."""
    assert matches(parse_mask("[bot]"), Who("[bot]", None, "192.0.2.7")) is True
    assert matches(parse_mask("[bot]"), Who("b", None, "192.0.2.7")) is False


def test_ipv4_mapped_mask_matches_that_ipv4_user() -> None:
    """A mask typed as an IPv4-mapped IPv6 address bans that IPv4 address (it is what matches() compares)."""
    mask = parse_mask("::ffff:192.0.2.1")
    assert matches(mask, Who("bob", None, "192.0.2.1")) is True
    assert matches(mask, Who("bob", None, "::ffff:192.0.2.1")) is True


# --- parse_duration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1", 1.0),
        ("90", 90.0),
        ("45s", 45.0),
        ("30m", 1800.0),
        ("2h", 7200.0),
        (" 2H ", 7200.0),
        ("7d", 604800.0),
        ("1w", 604800.0),
        ("3650d", 315360000.0),
        ("521w", 315100800.0),
        ("315360000", 315360000.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    """A whole number, alone or with a unit s, m, h, d or w in either case, is that many seconds."""
    assert parse_duration(text) == seconds


def test_parse_duration_upper_bound_is_ten_years() -> None:
    """The longest duration taken is ten years of 365 days."""
    assert MAX_DURATION == 10 * 365 * 86400
    assert parse_duration(f"{MAX_DURATION}s") == MAX_DURATION


@pytest.mark.parametrize(
    "text",
    [
        "0", "0s", "0w",  # at least one second
        "3651d", "522w", "315360001", "9" * 30 + "w",  # at most ten years
        "", "   ", "m", "five", "1.5h", "-5", "+5", "5 m", "5mm", "1y", "5s5", "1h30m", "0x10",
    ],
)
def test_parse_duration_invalid(text: str) -> None:
    """Zero, more than ten years, and anything but a whole number with one known unit is InvalidDuration, naming it."""
    with pytest.raises(InvalidDuration) as raised:
        parse_duration(text)
    assert raised.value == InvalidDuration(text)


@pytest.mark.parametrize("text", ["٣m", "３０m"])
def test_parse_duration_refuses_non_ascii_digits(text: str) -> None:
    """Digits of other scripts (Arabic-Indic, full-width) are not a whole number: InvalidDuration."""
    with pytest.raises(InvalidDuration):
        parse_duration(text)
