"""
Property tests (Hypothesis) for the places untrusted input enters: the line door, sanitise,
parse_line and check_name.

The door is driven as in test_wire_line: StringTransports over one shared core on a fake clock
that only the tests move (so timestamps are reproducible); no sockets, no reactor, no sleeps.
Examples are derandomized so that CI sees the same inputs on every run.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogEvent, globalLogPublisher
from zope.interface import provider

from chat_twisted.wire.slash import Command, Message, parse_line
from chat_twisted.errors import InvalidName
from chat_twisted.model import MAX_NAME_LENGTH, check_name, sanitise
from chat_twisted.wire.line import LineChatFactory
from chat_twisted.wire.text import describe
from tests.helpers import LineConnection, line_user, make_line_factory

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: The line limit of the door under test: small, so that long lines are cheap to make.
SMALL = 64

#: How far past the longest line and its CR the protocol's input buffer may grow.
SLACK = 2

#: Characters that must never reach another user: C0 controls except tab, DEL, C1 controls
#: (ESC among the C0s), bidi embeddings, overrides and isolates, zero-width space, BOM/ZWNBSP,
#: and the line and paragraph separators.
UNSAFE = frozenset(
    [chr(code) for code in range(0x20) if code != 0x09]
    + [chr(code) for code in range(0x7F, 0xA0)]
    + [chr(code) for code in range(0x202A, 0x202F)]
    + [chr(code) for code in range(0x2066, 0x206A)]
    + ["\u200b", "\ufeff", "\u2028", "\u2029"]
)

#: Characters a valid name may use, and those it may start with (the documented rules).
NAME_CHARS = string.ascii_letters + string.digits + "_-[]\\^{}|"
NAME_START = string.ascii_letters + "_[]\\^{}|"


def unsafe_in(text: str) -> set[str]:
    """Return the characters of C{text} that must never reach another user."""
    return {char for char in text if char in UNSAFE}


# --- strategies ----------------------------------------------------------------------------------

#: Pieces that make random input interesting: line endings, controls, escape sequences, bidi and
#: zero-width characters, invalid UTF-8 (lone continuation, truncated, overlong, surrogate, too
#: high), and text in several scripts.
FRAGMENTS = [
    b"\n", b"\r", b"\r\n", b"\n\r", b"\x00", b"\t", b" ", b"\x1b", b"\x07", b"\x08", b"\x7f",
    b"\x1b[2J", b"\x1b[31m", b"\x1b]0;owned\x07", b"\x1b]8;;http://x\x1b\\", b"\x1bP1$r\x1b\\",
    "\x85\x9b31m".encode(), "\u202e\u2066\u2069\u200b\ufeff\u2028\u2029\u200e".encode(),
    "\U0001f469\u200d\U0001f4bb é ü 漢".encode(),
    b"\xff", b"\x80", b"\xc3", b"\xe2\x80", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
    b"/", b"//", b"hello",
]

#: Starts of lines that make alice do something bob sees (or that end her session).
COMMANDS = [
    b"/me ", b"/msg bob ", b"/topic ", b"/nick ", b"/nick carol", b"/join ", b"/join room", b"/part",
    b"/who", b"/rooms", b"/history", b"/time", b"/help", b"/logout", b"/register ", b"/login bob x",
    b"/quit ", b"/QUIT", b"/ ", b"//", b"alice", b" /quit",
]

#: Runs long enough to cross the line limit, of bytes that matter to framing and decoding.
LONG_RUNS = st.builds(
    lambda unit, count: unit * count,
    st.sampled_from([b"A", b"\r", b"\x1b", b"\xff", b"\xe2\x80\xae", "é".encode(), b" ", b"\n"]),
    st.integers(min_value=1, max_value=3 * SMALL),
)

PIECES = st.one_of(
    st.binary(max_size=12),
    st.sampled_from(FRAGMENTS),
    st.text(max_size=12).map(lambda text: text.encode("utf-8", "surrogatepass")),
)

#: One line's worth of input (which may itself hold line endings, or be far too long).
INPUT_LINES = st.one_of(
    st.lists(PIECES, max_size=6).map(b"".join),
    st.tuples(
        st.sampled_from(COMMANDS),
        st.one_of(st.text(max_size=12).map(str.encode), st.lists(PIECES, max_size=3).map(b"".join)),
    ).map(b"".join),
    LONG_RUNS,
    st.binary(max_size=2 * SMALL),
)

#: What a hostile or broken client may send in one session: lines with assorted endings.
JUNK = st.lists(
    st.tuples(INPUT_LINES, st.sampled_from([b"\n", b"\r\n", b"\r\r\n", b""])).map(b"".join), max_size=12
).map(b"".join)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """Return C{data} cut at the positions C{cuts} (sorted, repeats giving empty reads)."""
    bounds = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in pairwise(bounds)]


def splits_of(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """Ways to deliver C{data} in several reads, empty ones included."""
    return st.lists(st.integers(min_value=0, max_value=len(data)), max_size=15).map(lambda cuts: split(data, cuts))


# --- the door under test ---------------------------------------------------------------------


def door(**settings: Any) -> tuple[LineChatFactory, Clock]:
    """
    Return a line factory with the small line limit from tests.helpers.make_line_factory, then
    apply each of C{settings} (such as a smaller input bound) only where the factory has such a
    setting, so that these tests hold with or without flood control and its bounds.
    """
    factory, _, clock = make_line_factory(max_line=SMALL)
    for name, value in settings.items():
        if hasattr(factory, name):
            setattr(factory, name, value)
    return factory, clock


def buffer_bound(factory: LineChatFactory) -> int:
    """The most input a protocol may hold: one over-long line, or the flood-control input bound."""
    return max(SMALL + 1 + SLACK, getattr(factory, "max_input", 0))


class Pair:
    """alice and bob logged in to one core's lobby; records how much each had been sent on close."""

    def __init__(self, built: tuple[LineChatFactory, Clock]) -> None:
        self.factory, self.clock = built
        self.alice = line_user(self.factory, "alice", 40001)
        self.bob = line_user(self.factory, "bob", 40002)
        self.alice.lines()  # "bob joined lobby"
        self.closed_at: dict[str, int] = {}
        for name, connection in (("alice", self.alice), ("bob", self.bob)):
            connection.transport.loseConnection = self._recording_close(name, connection)  # type: ignore[method-assign]

    def _recording_close(self, name: str, connection: LineConnection) -> Callable[[], None]:
        close = connection.transport.loseConnection

        def record() -> None:
            self.closed_at.setdefault(name, len(connection.transport.value()))
            close()

        return record

    def feed_alice(
        self, chunks: list[bytes], pauses: Iterable[float] = (), check: Callable[[], None] = lambda: None
    ) -> None:
        """
        Feed C{chunks} to alice one read at a time until her connection is closed, advancing the
        clock by the next of C{pauses} (if any) after each read, and calling C{check} after each.
        """
        pause = iter(pauses)
        for chunk in chunks:
            if "alice" in self.closed_at:
                return  # a real transport stops reading once it is closing
            self.alice.send(chunk)
            check()
            self.clock.advance(next(pause, 0.0))
            check()

    def drain(self, check: Callable[[], None] = lambda: None) -> None:
        """Let the clock run, a second at a time, until alice has no line waiting for flood control."""
        for _ in range(600):
            if not self.alice.protocol.paused or "alice" in self.closed_at:
                return
            self.clock.advance(1)
            check()

    def written(self, name: str) -> bytes:
        """Return everything written to C{name} up to her close (all of it if still open)."""
        raw = getattr(self, name).transport.value()
        return raw[: self.closed_at[name]] if name in self.closed_at else raw


def server_lines(raw: bytes) -> list[str]:
    """Check that C{raw} is CRLF-terminated UTF-8 lines with no other CR or LF; return the lines."""
    assert raw == b"" or raw.endswith(b"\r\n"), raw[-80:]
    lines = raw.decode("utf-8").split("\r\n")[:-1]
    for line in lines:
        assert "\r" not in line and "\n" not in line, line
    return lines


def has_quit_line(data: bytes) -> bool:
    """Whether a complete line of C{data} could be a C{/quit} (erring towards yes)."""
    for raw in data.split(b"\n")[:-1]:
        try:
            text = raw.removesuffix(b"\r").decode("utf-8")
        except UnicodeDecodeError:
            continue
        request = parse_line(text.strip())
        if isinstance(request, Command) and request.name == "quit":
            return True
    return False


@contextmanager
def logged_failures() -> Iterator[list[LogEvent]]:
    """Collect the events logged with a failure (unexpected exceptions) while the block runs."""
    failures: list[LogEvent] = []

    @provider(ILogObserver)
    def observe(event: LogEvent) -> None:
        if "log_failure" in event:
            failures.append(event)

    globalLogPublisher.addObserver(observe)
    try:
        yield failures
    finally:
        globalLogPublisher.removeObserver(observe)


# --- the line door -------------------------------------------------------------------------------


@FUZZ
@given(junk=JUNK, data=st.data())
def test_random_bytes_in_random_reads_never_harm_the_door_or_the_other_user(junk: bytes, data: st.DataObject) -> None:
    """
    Random bytes from alice, in random reads at random times, raise nothing and log no failure,
    get only CRLF-terminated UTF-8 lines back, show bob no unsafe character, keep alice's input
    buffer bounded, and close nobody but alice, and her only right after a Goodbye for a /quit
    or an error line.
    """
    chunks = data.draw(splits_of(junk), label="reads")
    pauses = data.draw(st.lists(st.sampled_from([0.0, 0.0, 0.1, 1.0, 7.0])), label="pauses")
    pair = Pair(door(max_input=4 * SMALL))
    bound = buffer_bound(pair.factory)

    def buffer_is_bounded() -> None:
        if "alice" not in pair.closed_at:  # once closing, what is left of the last read is dropped with her
            assert len(pair.alice.protocol._buffer) <= bound

    with logged_failures() as failures:
        pair.feed_alice(chunks, pauses, buffer_is_bounded)
        pair.drain(buffer_is_bounded)

    assert failures == []
    alice_lines = server_lines(pair.written("alice"))
    bob_lines = server_lines(pair.bob.transport.value())
    assert not any(line.startswith("error: internal error") for line in alice_lines + bob_lines)
    for line in bob_lines:
        assert not unsafe_in(line), line
    assert "bob" not in pair.closed_at and pair.bob.transport.connected
    if "alice" in pair.closed_at:  # the last line before the close says why
        last = alice_lines[-1] if alice_lines else ""
        assert last.startswith("error:") or (has_quit_line(junk) and last.startswith("* Goodbye!")), alice_lines[-5:]
    else:
        assert pair.alice.transport.connected


@FUZZ
@given(junk=JUNK, data=st.data())
def test_output_does_not_depend_on_how_the_input_is_split_into_reads(junk: bytes, data: st.DataObject) -> None:
    """Bytes delivered in one read or in any random split give both users the same lines, timestamps included."""
    chunks = data.draw(splits_of(junk), label="reads")
    whole, pieces = Pair(door()), Pair(door())
    whole.feed_alice([junk])
    pieces.feed_alice(chunks)
    whole.drain()
    pieces.drain()

    assert server_lines(pieces.bob.transport.value()) == server_lines(whole.bob.transport.value())
    assert server_lines(pieces.written("alice")) == server_lines(whole.written("alice"))
    assert ("alice" in pieces.closed_at) == ("alice" in whole.closed_at)


@FUZZ
@given(
    junk=st.lists(st.one_of(PIECES, st.binary(max_size=3 * SMALL), LONG_RUNS), max_size=12).map(
        lambda pieces: b"x" + b"".join(pieces).replace(b"\n", b"")
    ),
    data=st.data(),
)
def test_unterminated_junk_keeps_the_buffer_bounded_and_the_door_usable(junk: bytes, data: st.DataObject) -> None:
    """
    Input without a newline never grows the buffer past the line limit and earns one error once
    it is longer than a line (its CR included) may be, none before; the next line is read as usual.
    """
    chunks = data.draw(splits_of(junk), label="reads")
    pair = Pair(door())

    def buffer_is_bounded() -> None:
        assert len(pair.alice.protocol._buffer) <= SMALL + 1 + SLACK

    pair.feed_alice(chunks, check=buffer_is_bounded)

    errors = pair.alice.lines()
    too_long = len(junk) > SMALL + 1  # a line may be SMALL bytes and its CR
    assert errors == ([f"error: line longer than {SMALL} bytes; it was dropped"] if too_long else []), errors
    assert pair.bob.lines() == []
    pair.alice.send(b"\nhello\n")
    assert pair.bob.lines()[-1].endswith(" alice: hello")


# --- sanitise ------------------------------------------------------------------------------------

#: Text with plenty of what sanitise must remove: controls, escape sequences, format characters,
#: separators, lone surrogates, mixed with ordinary text in any script.
HOSTILE_TEXT = st.lists(
    st.one_of(
        st.text(max_size=8),
        st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Cs", "Co", "Cn"]),
        st.sampled_from(sorted(UNSAFE)),
        st.sampled_from(["\x1b[31m", "\x1b[2J", "\x1b]0;title\x07", "\x1b]8;;http://x\x1b\\", "\x1b\x1b[", "\x9b31m"]),
        st.sampled_from(["\u200c", "\u200d", "\U0001f469\u200d\U0001f4bb", "\t"]),
    ),
    max_size=20,
).map("".join)

#: Text with nothing unsafe in it: no controls (tab aside), format or separator characters.
SAFE_TEXT = st.text(
    st.characters(exclude_categories=["Cc", "Cf", "Zl", "Zp", "Cs"], include_characters="\t\u200c\u200d")
)


@FUZZ
@given(HOSTILE_TEXT)
def test_sanitise_is_idempotent(text: str) -> None:
    """Sanitising sanitised text changes nothing."""
    once = sanitise(text)
    assert sanitise(once) == once


@FUZZ
@given(HOSTILE_TEXT)
def test_sanitise_leaves_no_unsafe_character(text: str) -> None:
    """Sanitised text has no control, ESC, bidi, zero-width-space, BOM or separator character."""
    assert not unsafe_in(sanitise(text))


@FUZZ
@given(st.one_of(SAFE_TEXT, st.text().filter(str.isprintable)))
def test_sanitise_keeps_printable_text_as_it_is(text: str) -> None:
    """Printable text (any script, emoji with joiners, tabs) comes out of sanitise unchanged."""
    assert sanitise(text) == text


@FUZZ
@given(st.one_of(HOSTILE_TEXT, st.text()))
def test_sanitise_never_makes_text_longer(text: str) -> None:
    """Sanitised text is never longer than the text it came from."""
    assert len(sanitise(text)) <= len(text)


# --- parse_line ----------------------------------------------------------------------------------

LINES = st.one_of(
    st.text(),
    st.tuples(
        st.sampled_from(["/", "//", "///", "/ ", "/\t", "/\x1c", "/\u3000", "/ME", "/Quit\u00a0"]), st.text()
    ).map("".join),
)


@FUZZ
@given(LINES)
def test_parse_line_classifies_every_line_without_raising(line: str) -> None:
    """Any line parses to a Message or a Command, and one without a leading '/' is a Message of itself."""
    request = parse_line(line)
    assert isinstance(request, (Message, Command))
    if not line.startswith("/"):
        assert request == Message(line)


@FUZZ
@given(st.text().map(lambda text: "//" + text))
def test_a_double_slash_line_is_a_message_of_the_rest(line: str) -> None:
    """A line starting with '//' is the Message of the line without its first slash."""
    assert parse_line(line) == Message(line[1:])


@FUZZ
@given(LINES)
def test_a_command_name_is_lower_case_without_whitespace(line: str) -> None:
    """A Command has a non-empty lower-case name without whitespace, and arguments with none around them."""
    request = parse_line(line)
    if isinstance(request, Command):
        assert request.name and request.name == request.name.lower()
        assert not any(char.isspace() for char in request.name)
        assert request.args == request.args.strip()


# --- check_name ----------------------------------------------------------------------------------

NAME_LIKE = st.one_of(
    st.text(max_size=MAX_NAME_LENGTH + 5),
    st.text(NAME_CHARS + " \t\n\x00\x1b.:@!é\u0130\u212a\u0661\u00b2\uff21", max_size=MAX_NAME_LENGTH + 5),
)

VALID_NAMES = st.builds(
    str.__add__, st.sampled_from(NAME_START), st.text(NAME_CHARS, max_size=MAX_NAME_LENGTH - 1)
)


def follows_the_rules(name: str) -> bool:
    """The documented rules, written out independently of model.py's regular expression."""
    return (
        1 <= len(name) <= MAX_NAME_LENGTH
        and all(char in NAME_CHARS for char in name)
        and not (name[0] in string.digits or name[0] == "-")
    )


@FUZZ
@given(NAME_LIKE)
def test_check_name_accepts_only_names_that_follow_the_rules(name: str) -> None:
    """check_name returns a name only if it follows the documented rules, else raises InvalidName with safe text."""
    try:
        accepted = check_name(name, "nickname")
    except InvalidName as error:
        assert not follows_the_rules(name)
        assert not unsafe_in(describe(error))
    else:
        assert accepted == name
        assert follows_the_rules(name)


@FUZZ
@given(VALID_NAMES)
def test_check_name_accepts_every_name_that_follows_the_rules(name: str) -> None:
    """Every name built from the documented rules is accepted as it is."""
    assert check_name(name, "room name") == name
