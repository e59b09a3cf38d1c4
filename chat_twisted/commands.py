"""
Turn one line a user typed into what it asks for, and describe every command for ``/help``.

Pure functions over ``str``; no state, no I/O. The core decides what each request means.
"""

from __future__ import annotations

from dataclasses import dataclass

from chat_twisted.model import HelpEntry


@dataclass(frozen=True, slots=True)
class Message:
    """A plain line of chat for the user's room (a leading C{//} already turned into C{/})."""

    text: str


@dataclass(frozen=True, slots=True)
class Command:
    """
    A C{/name args} line: C{name} in lower case without the slash, C{args} the rest of the line
    with the whitespace around it removed.
    """

    name: str
    args: str


Request = Message | Command


def parse_line(line: str) -> Request:
    """
    Classify one line: a command if it starts with a single C{/}, otherwise a message.

    C{//text} is the message C{/text}; a lone C{/} or C{/ text} is a message as typed.
    """
    if line.startswith("//"):
        return Message(line[1:])
    if line.startswith("/") and len(line) > 1 and not line[1].isspace():
        name, *rest = line[1:].split(None, 1)
        return Command(name.lower(), rest[0].strip() if rest else "")
    return Message(line)


#: Flood-control tokens a command costs; a message and any command not listed cost 1.
_COSTS = {"history": 5.0, "join": 3.0, "part": 2.0, "nick": 3.0, "rooms": 2.0, "who": 2.0,
          "register": 3.0, "login": 3.0, "password": 3.0, "msg": 1.0}


def line_cost(line: str) -> float:
    """Return how many flood-control tokens C{line} costs: 1 for a message, more for heavier commands."""
    request = parse_line(line)
    return _COSTS.get(request.name, 1.0) if isinstance(request, Command) else 1.0


#: Every command a logged-in user can give, in the order C{/help} lists them.
HELP: tuple[HelpEntry, ...] = (
    HelpEntry("/nick NEW", "change your nickname"),
    HelpEntry("/who", "list the users in your room"),
    HelpEntry("/msg NICK TEXT", "send a private message that only NICK sees"),
    HelpEntry("/me TEXT", "describe an action to your room"),
    HelpEntry("/join ROOM", "leave your room and enter ROOM (created if new)"),
    HelpEntry("/part", "leave your room and go back to the lobby"),
    HelpEntry("/rooms", "list every room with its member count and topic"),
    HelpEntry("/topic [TEXT]", "show your room's topic, or set it to TEXT"),
    HelpEntry("/history [N]", "replay the last N messages of your room (default 20, at most 500)"),
    HelpEntry("/time", "show the server's date and time"),
    HelpEntry("/register PASSWORD", "register your nickname so that only you can use it"),
    HelpEntry("/login NICK PASSWORD", "log in to a registered nickname"),
    HelpEntry("/password OLD NEW", "change your password"),
    HelpEntry("/logout", "log out and choose a nickname anew"),
    HelpEntry("/help", "show this list"),
    HelpEntry("/quit [REASON]", "leave the chat"),
    HelpEntry("//TEXT", "send a message that starts with /"),
)
