"""Test doubles for the chat core's boundaries."""

from __future__ import annotations

from zope.interface import implementer

from chat_twisted.interfaces import IChatClient
from chat_twisted.model import Event


@implementer(IChatClient)
class RecordingClient:
    """An IChatClient that records every event delivered to it and whether it was closed."""

    def __init__(self, peer: str = "127.0.0.1:40000") -> None:
        self.peer = peer
        self.events: list[Event] = []
        self.closed = False

    def deliver(self, event: Event) -> None:
        self.events.append(event)

    def flush(self) -> None:
        """Nothing is held back: deliver records at once."""

    def close(self) -> None:
        self.closed = True

    def take(self) -> list[Event]:
        """Return the events recorded so far and forget them."""
        events, self.events = self.events, []
        return events

    def of_type(self, kind: type) -> list[Event]:
        """Return the recorded events of class C{kind}."""
        return [event for event in self.events if isinstance(event, kind)]
