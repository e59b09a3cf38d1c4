"""Tests for chat_twisted.model: text sanitising and the nickname / room name rules."""

from __future__ import annotations

import pytest

from chat_twisted.errors import ChatError, InvalidName
from chat_twisted.model import MAX_NAME_LENGTH, check_name, name_key, sanitise
from chat_twisted.wire.text import describe

NAME_RULES = "may only contain ASCII letters, digits and _-[]\\^{}|"


# --- sanitise ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello, world!",
        "naïve café – “quoted”",
        "日本語のテキスト",
        "مرحبا بالعالم",
        "👋🏽 🎉 🇫🇷",
        "a\u00a0b",
        "col1\tcol2",
    ],
)
def test_sanitise_keeps_plain_text(text: str) -> None:
    """Printable text in any script, emoji, a no-break space and tabs pass through unchanged."""
    assert sanitise(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b[2J\x1b[1;1Hhome", "home"),
        ("\x1b[?25lhidden cursor", "hidden cursor"),
        ("\x1b[1 qblock", "block"),
        ("\x1b]0;pwned\x07title", "title"),
        ("\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x1bPdevice control\x1b\\after", "after"),
        ("keep\x1b]0;unterminated title", "keep"),
        ("\x1bcreset", "reset"),
        ("trailing\x1b", "trailing"),
        ("trailing csi\x1b[", "trailing csi"),
    ],
)
def test_sanitise_removes_escape_sequences(text: str, expected: str) -> None:
    """CSI, OSC/DCS strings (BEL or ST ended, or unterminated) and two-character ESC escapes are removed whole."""
    assert sanitise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\x00b\x07c\x08d", "abcd"),
        ("line\rover\nwrite", "lineoverwrite"),
        ("tab\tkept\x0bvt\x0cff", "tab\tkeptvtff"),
        ("del\x7fete", "delete"),
        ("c1\x80\x85\x9b31m\x9f", "c131m"),
    ],
)
def test_sanitise_removes_control_characters(text: str, expected: str) -> None:
    """C0 controls except tab, DEL and C1 controls are removed."""
    assert sanitise(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("\u202a\u202b\u202c\u202dltr", "ltr"),
        ("\u2066a\u2067b\u2068c\u2069", "abc"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("one\u2028two\u2029three", "onetwothree"),
    ],
)
def test_sanitise_removes_format_and_separator_characters(text: str, expected: str) -> None:
    """Bidi overrides and isolates, zero-width characters and line/paragraph separators are removed."""
    assert sanitise(text) == expected


def test_sanitise_splits_zwj_emoji_sequence_into_its_parts() -> None:
    """Zero-width joiners go too, so an emoji ZWJ sequence arrives as its separate emoji, nothing else lost."""
    text = "\U0001f468\u200d\U0001f469\u200d\U0001f467 \U0001f3f3\ufe0f\u200d\U0001f308 \u200cx"
    assert sanitise(text) == "\U0001f468\U0001f469\U0001f467 \U0001f3f3\ufe0f\U0001f308 x"


# --- check_name and name_key -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a", "alice", "Alice_99", "_hidden", "[bot]", "x-y", "{}|^\\", "r" * MAX_NAME_LENGTH],
)
def test_check_name_accepts(name: str) -> None:
    """Names of 1 to 30 ASCII letters, digits and _-[]\\^{}| not starting with a digit or '-' are returned."""
    assert check_name(name, "nickname") == name


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "nickname must not be empty"),
        ("a" * 31, f"nickname {'a' * 30!r}... is longer than 30 characters"),
        ("9lives", "nickname '9lives' must not start with a digit or '-'"),
        ("-dash", "nickname '-dash' must not start with a digit or '-'"),
        ("two words", f"nickname 'two words' {NAME_RULES}"),
        ("dotted.name", f"nickname 'dotted.name' {NAME_RULES}"),
        ("#room", f"nickname '#room' {NAME_RULES}"),
        ("alicé", f"nickname 'alicé' {NAME_RULES}"),
        ("bad\u202ename", f"nickname 'badname' {NAME_RULES}"),
        ("trailing\n", f"nickname 'trailing' {NAME_RULES}"),
    ],
)
def test_check_name_rejects(name: str, error: str) -> None:
    """Invalid names raise InvalidName, a ChatError whose line-protocol words name the broken rule and show the name sanitised."""
    with pytest.raises(InvalidName) as raised:
        check_name(name, "nickname")
    assert isinstance(raised.value, ChatError)
    assert describe(raised.value) == error


def test_check_name_uses_what_in_error() -> None:
    """The C{what} argument names the kind of name in the error's words."""
    with pytest.raises(InvalidName) as raised:
        check_name("", "room name")
    assert describe(raised.value) == "room name must not be empty"


def test_name_key_ignores_case() -> None:
    """Names that differ only in case share a key; different names do not."""
    assert name_key("Alice") == name_key("ALICE") == name_key("alice") == "alice"
    assert name_key("[Bot]") == "[bot]"
    assert name_key("alice") != name_key("alicia")
