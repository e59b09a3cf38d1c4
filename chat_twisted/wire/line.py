"""
The line door: a plain-text protocol over TCP (or TLS, or a UNIX socket) that works from ``nc``.

L{LineChatProtocol} is a L{GuardedLineReceiver} (framing, UTF-8, flood control, input and
output bounds) that hands each line to its L{SlashSession} (the slash dialect) and writes each
core event as CRLF-terminated UTF-8 lines to its own transport. L{LineChatFactory} holds the core
and per-listener settings and builds the protocols; no chat state lives in either.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory

from chat_twisted.core import ChatService
from chat_twisted.guard import (
    DEFAULT_BURST,
    DEFAULT_MAX_INPUT,
    DEFAULT_MAX_OUTPUT,
    DEFAULT_RATE,
    GuardedLineReceiver,
    describe_peer,
)
from chat_twisted.model import LOBBY, Event, Kicked, Left, NickChanged, Welcome, name_key
from chat_twisted.requests import Join
from chat_twisted.sessions import Session
from chat_twisted.wire.slash import NickPrompt, SlashSession, line_cost
from chat_twisted.wire.text import render

__all__ = [
    "DEFAULT_BURST", "DEFAULT_MAX_INPUT", "DEFAULT_MAX_LINE", "DEFAULT_MAX_OUTPUT", "DEFAULT_RATE",
    "LineChatFactory", "LineChatProtocol", "describe_peer",
]

#: The longest line a client may send, in bytes, without its line ending.
DEFAULT_MAX_LINE = 4096


class LineChatFactory(Factory):
    """
    Builds a L{LineChatProtocol} per connection, all sharing one L{ChatService}.

    Holds only per-listener settings (line length, flood rate and burst, input and output
    bounds) and a one-entry cache of the last event's bytes, so that an event fanned out to a
    whole room is encoded once.
    """

    def __init__(
        self,
        service: ChatService,
        max_line: int = DEFAULT_MAX_LINE,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        max_input: int = DEFAULT_MAX_INPUT,
        max_output: int = DEFAULT_MAX_OUTPUT,
    ) -> None:
        self.service = service
        self.max_line = max_line
        self.rate = rate
        self.burst = burst
        self.max_input = max(max_input, max_line + 2)
        self.max_output = max_output
        self._last_event: Event | None = None
        self._last_bytes = b""

    def buildProtocol(self, addr: IAddress | None) -> LineChatProtocol:
        """Return a protocol for a new connection from C{addr}."""
        protocol = LineChatProtocol(self)
        protocol.factory = self
        return protocol

    def encode(self, event: Event) -> bytes:
        """Return C{event} as CRLF-terminated UTF-8 lines, reusing the bytes of a repeated event."""
        if event is not self._last_event:
            text = "".join(line + "\r\n" for line in render(event, self.service.timezone))
            self._last_event, self._last_bytes = event, text.encode("utf-8")
        return self._last_bytes


class LineChatProtocol(GuardedLineReceiver):
    """
    One line-protocol connection: the guard's framing and limits, the slash dialect, and the
    line form of every event, written to its own transport only.

    It keeps track of its user's nickname from the events it is shown, so as not to show the
    user their own leaving of a room (the dialect's move from one room to the next).
    """

    def __init__(self, factory: LineChatFactory) -> None:
        self.factory = factory
        super().__init__(factory.service.clock, factory.max_line, factory.rate, factory.burst,
                         factory.max_input, factory.max_output)
        self.dialect: SlashSession | None = None
        self._nick: str | None = None
        self._queue = self.output.pending.append

    def start_session(self) -> Session:
        """Start the core session; the dialect speaks for it."""
        session = self.factory.service.connect(self, self.peer, door="line")
        self.dialect = SlashSession(session)
        return session

    def greet(self) -> None:
        """Ask for a nickname."""
        self.show(NickPrompt(first=True))

    def line_cost(self, text: str) -> float:
        """A message costs 1 token, heavier commands more (the slash table says)."""
        return line_cost(text)

    def handle_text(self, text: str) -> Deferred[Any] | None:
        """Hand one line to the slash dialect."""
        assert self.dialect is not None
        return self.dialect.handle_line(text)

    def deliver(self, event: Event) -> None:
        """
        Queue C{event}'s lines for this connection (nothing for the user's own leaving): the
        fan-out path, so the bytes of an event shown to a whole room are made once.
        """
        kind = type(event)
        if kind in _TRACKED:
            if kind is Welcome:
                self._nick = event.nick  # type: ignore[attr-defined]
            elif kind is NickChanged:
                if event.old == self._nick:  # type: ignore[attr-defined]
                    self._nick = event.new  # type: ignore[attr-defined]
            elif kind is Kicked:
                if event.target == self._nick and name_key(event.room) != LOBBY:  # type: ignore[attr-defined]
                    self.factory.service.clock.callLater(0, self.in_turn, self._back_to_lobby)
            elif event.nick == self._nick:  # type: ignore[attr-defined]
                return  # Left: this door's user moved to another room
        factory = self.factory
        self._queue(factory._last_bytes if event is factory._last_event else self.encode(event))

    def encode(self, event: Event) -> bytes:
        """Return C{event} in the line protocol's form."""
        return self.factory.encode(event)

    def _back_to_lobby(self) -> Deferred[Any] | None:
        """After a kick from a room, keep this door's habit of one room: back to the lobby."""
        session = self.session
        if self.dialect is None or session is None or session.closed or session.rooms:
            return None
        return self.dialect.submit(Join(LOBBY))


# Events whose delivery this door looks at: to know its user's nickname, and its user's kicks.
_TRACKED = frozenset({Welcome, NickChanged, Left, Kicked})
