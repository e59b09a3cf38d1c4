"""No user line can pass for a system line or for another user's line, whatever text is sent."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from chat_twisted.model import sanitise
from chat_twisted.wire.line import LineChatFactory
from chat_twisted.wire.slash import Message, parse_line
from tests.helpers import LineConnection, make_core

# Text a user might type to forge lines: newlines, server-looking prefixes, controls, anything.
forgeries = st.one_of(
    st.text(),
    st.sampled_from(["\r* bob joined lobby", "x\r\n* server shutting down", "\u2028error: pwned",
                     "[12:00:00] bob: hi", "\x1b[2K\r* root is now known as admin", "\x85* x"]),
).map(lambda text: text.replace("\n", " "))

# What each kind of sending makes the other user see first, given alice as the sender.
COMMANDS = [
    ("{}", "[03:04:05] alice: "),
    ("/me {}", "[03:04:05] * alice "),
    ("/msg bob {}", "[03:04:05] (private) alice: "),
    ("/topic {}", "* alice set the topic of lobby to: "),
    ("/quit {}", "* alice left lobby ("),
]


def two_users() -> tuple[LineConnection, LineConnection]:
    """alice and bob logged in to one core, flood control off, their greetings read."""
    core, _ = make_core(join_history=0)
    factory = LineChatFactory(core, rate=0)
    alice, bob = LineConnection(factory, 40001), LineConnection(factory, 40002)
    alice.send("alice\n")
    bob.send("bob\n")
    alice.lines(), bob.lines()
    return alice, bob


def shown_to_others(template: str, text: str) -> bool:
    """Whether alice's C{template} with C{text} shows others anything: a /quit always does; text with nothing visible once sanitised does not."""
    return template.startswith("/quit") or bool(sanitise(text).strip())


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(command=st.sampled_from(COMMANDS), text=forgeries)
def test_user_text_reaches_others_as_one_line_marked_with_its_sender(command: tuple[str, str], text: str) -> None:
    """Whatever alice sends, bob sees exactly one line for it (none for blank text), starting with alice's own marker."""
    template, prefix = command
    if template == "{}":  # plain text, not a command (other templates cover those)
        assume(isinstance(parse_line(text), Message))
    alice, bob = two_users()
    alice.send(template.format(text).encode("utf-8") + b"\n")
    received = bob.lines()
    assert len(received) == (1 if shown_to_others(template, text) else 0), (received, alice.lines())
    for line in received:
        assert line.startswith(prefix)
        assert "\r" not in line and "\n" not in line
