"""
Delivery, the core's bottom layer: every event reaches its users through here, in one order.

L{Delivery} owns the L{Outbox} (so that nothing overtakes a room message still being stored) and
the list of clients written to since the last flush; at the end of each run of deliveries it has
each of them send what it got in one go. It calls only L{IChatClient} methods and never touches a
transport itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted.model import Event
from chat_twisted.outbox import Outbox

if TYPE_CHECKING:
    from chat_twisted.sessions import Session

log = Logger()


class Delivery:
    """
    Hands events to sessions' clients in the order they were asked for, and flushes them.
    C{delivered} counts the events handed to clients (each recipient once), for metrics.
    """

    def __init__(self) -> None:
        self.outbox = Outbox(on_idle=self._flush)
        self._unflushed: list[Session] = []
        self.delivered = 0

    def to(self, session: Session, event: Event) -> None:
        """Deliver C{event} to C{session}, in its turn."""
        self.outbox.now(self.fan_out, (session,), event)

    def to_all(self, sessions: Iterable[Session], event: Event) -> None:
        """Deliver C{event} to each of C{sessions} (taken now), in its turn."""
        self.outbox.now(self.fan_out, tuple(sessions), event)

    def close(self, session: Session) -> None:
        """Close C{session}'s connection once everything asked for before has been delivered."""
        self.outbox.now(session.client.close)

    def after(self, waiting: Deferred[Any], action: Callable[[Any], None], failed: Callable[[Failure], None],
              sequenced: bool = False) -> None:
        """Run C{action} with C{waiting}'s result (or C{failed}) in this call's turn; see L{Outbox.after}."""
        self.outbox.after(waiting, action, failed, sequenced)

    def in_sequence(self, sessions: Iterable[Session], event: Event) -> None:
        """Deliver C{event}, which another process announced, to C{sessions} in its place in the one order."""
        self.outbox.in_sequence(self.fan_out, tuple(sessions), event)

    def fan_out(self, recipients: tuple[Session, ...], event: Event) -> None:
        """
        Hand C{event} to each recipient's client now (this loop is the server's hottest); one
        failing client never stops delivery to the others. Call only from an outbox step.
        """
        unflushed = self._unflushed
        self.delivered += len(recipients)
        for session in recipients:
            try:
                session.client.deliver(event)
            except Exception:
                log.failure("delivering {event} to {peer} failed", event=type(event).__name__, peer=session.peer)
            if not session.unflushed:
                session.unflushed = True
                unflushed.append(session)

    def write(self, session: Session, event: Event) -> None:
        """Hand C{event} to one client now (see L{fan_out})."""
        self.fan_out((session,), event)

    def _flush(self) -> None:
        """At the end of a run of deliveries, have each client that got some send them in one go."""
        unflushed, self._unflushed = self._unflushed, []
        for session in unflushed:
            session.unflushed = False
            try:
                session.client.flush()
            except Exception:
                log.failure("flushing to {peer} failed", peer=session.peer)
