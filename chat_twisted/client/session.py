"""
L{ChatClient}: joins one terminal (plain or interactive, or the desktop window) and one server
connection at a time, says what an entered line means, and decides when the program ends and
with which exit status.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted.client.identity import Identity
from chat_twisted.client.reconnect import Backoff, ConnectionStatus, Reconnector, describe
from chat_twisted.client.tls import CONNECT_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from chat_twisted.client.server import ServerSide

log = Logger()

#: How long to wait for the server to close after our C{/quit} before closing ourselves.
QUIT_GRACE_SECONDS = 5.0

#: Told when an entered line could not be sent for want of a connection.
NOT_SENT = "not connected, so that line was not sent; it is back on the input line"


class Entered(enum.Enum):
    """What the face that took an entered line should do next (see L{ChatClient.enter})."""

    DONE = "done"  # sent, or acted on: clear the input line
    CLEAR = "clear"  # /clear: clear the messages shown, and the input line
    KEEP = "keep"  # not sent for want of a connection: put the line back on the input line


class Terminal(Protocol):
    """What L{ChatClient} needs from a terminal side (L{TerminalSide} or the interactive one)."""

    def show(self, text: str) -> None:
        """Show one (sanitised) line from the server."""

    def notice(self, text: str) -> None:
        """Show one line from the client itself."""

    def close(self) -> Deferred[None]:
        """Finish showing and close; the Deferred fires once closed."""


def is_quit(line: bytes) -> bool:
    """Return True if typed C{line} is a C{/quit} command (any case, with or without a reason)."""
    return line.strip().lower().split(b" ", 1)[0] == b"/quit"


class ChatClient:
    """
    Joins one terminal and one server connection; writes to neither transport itself.

    Owns the exit status: C{done} fires with 0 when the server closes after our C{/quit}, and
    with 1 (after C{error} names the reason) when the server goes away on its own. After
    L{enable_reconnect} (interactive mode) the server going away is told to the user instead,
    and the client connects again and logs in again as the same user (see L{Identity}).
    """

    def __init__(self, clock: IReactorTime, nick: str | None = None, password: str | None = None) -> None:
        self.clock = clock
        self.nick = nick
        self.identity = Identity(nick, password)
        self.done: Deferred[int] = Deferred()
        self.error: str | None = None
        self.server: ServerSide | None = None
        self.terminal: Terminal | None = None
        self.reconnector: Reconnector | None = None
        self._unshown: list[tuple[bool, str]] = []
        self._quit_sent = False
        self._quit_timer: IDelayedCall | None = None

    def enable_reconnect(
        self,
        connect: Callable[[], Deferred[Any]],
        where: str,
        backoff: Backoff | None = None,
        status: Callable[[ConnectionStatus], None] | None = None,
    ) -> Reconnector:
        """
        When the server goes away, call C{connect} again (after a back-off) instead of ending;
        report each change of the connection to C{status}, if given. Return the L{Reconnector}.
        """
        self.reconnector = Reconnector(self.clock, connect, self.notice, where, backoff, status)
        return self.reconnector

    @property
    def connected(self) -> bool:
        """True while there is a connection to the server."""
        return self.server is not None

    # --- the server side ---------------------------------------------------------------------

    def server_connected(self, server: ServerSide) -> None:
        """The connection is up: once it is ready (TLS checked), log in (nickname or /login)."""
        self.server = server
        server.ready.addBoth(self._server_ready, server)
        if self.reconnector is not None and self.reconnector.reconnecting:
            server.ready.addTimeout(CONNECT_TIMEOUT_SECONDS, self.clock)
            server.ready.addErrback(self._not_ready, server)

    def _server_ready(self, result: object, server: ServerSide) -> object:
        if not isinstance(result, Failure) and server is self.server:
            greeting = self.identity.greeting()
            if greeting:
                server.send_line(greeting.encode("utf-8"))
            if self.reconnector is not None:
                self.reconnector.connected()
        return result

    def _not_ready(self, reason: Failure, server: ServerSide) -> None:
        """
        A new connection's TLS handshake failed (the loss is being reported) or timed out: then
        drop the connection, which reports the loss.
        """
        if reason.check(defer.TimeoutError) and server is self.server:
            server.abort()

    def server_line(self, text: str) -> None:
        """Show one line from the server (held back until the terminal is attached)."""
        if self.identity.received(text) and self.reconnector is not None:
            self.reconnector.backoff.reset()
        self._show(False, text)

    def server_gone(self, reason: Failure | None = None) -> None:
        """
        The server closed the connection: finish, successfully only if we had said /quit; or,
        with reconnecting enabled, tell the user and try again.
        """
        if self._quit_timer is not None and self._quit_timer.active():
            self._quit_timer.cancel()
        if self._quit_sent:
            self._finish(0)
        elif self.reconnector is not None and not self.done.called:
            self.server = None
            self.identity.connection_lost()
            self.reconnector.lost(describe(reason or Failure(ConnectionAborted())))
        else:
            self._finish(1, "the server closed the connection")

    # --- the terminal side -------------------------------------------------------------------

    def terminal_attached(self, terminal: Terminal) -> None:
        """Start showing server lines on C{terminal}, those that arrived before it first."""
        self.terminal = terminal
        for is_notice, text in self._unshown:
            terminal.notice(text) if is_notice else terminal.show(text)
        self._unshown = []

    def notice(self, text: str) -> None:
        """Show one line from the client itself (connection lost, reconnected...)."""
        self._show(True, text)

    def typed(self, line: bytes) -> bool:
        """
        Send one line the user typed; note a C{/quit} so the server's close counts as success.
        Return False if it could not be sent for want of a connection (else True, even when
        it was dropped because the user already said C{/quit}).
        """
        if self._quit_sent or self.done.called:
            return True
        if self.server is None:
            return False
        if is_quit(line):
            self._quit_sent = True
        self.identity.typed(line.decode("utf-8", errors="replace"))
        self.server.send_line(line)
        return True

    def enter(self, line: bytes, client_help: Sequence[str] = ()) -> Entered:
        """
        Act on one line the user entered in an interactive face: C{/clear} is left to the face;
        C{/help} shows C{client_help} (the face's own commands and keys) before asking the
        server for its list; C{/quit [REASON]} leaves; any other non-blank line is sent, or, for
        want of a connection, kept (and the user told).
        """
        command = line.strip().split(b" ", 1)[0].lower()
        if command == b"/clear":
            return Entered.CLEAR
        if command == b"/help":
            for text in client_help:
                self.notice(text)
            if not self.connected:
                self.notice("the server's commands are listed once it is back")
                return Entered.DONE
        if is_quit(line):
            self.leave(line.strip())
        elif line.strip() and not self.typed(line):
            self.notice(NOT_SENT)
            return Entered.KEEP
        return Entered.DONE

    def leave(self, line: bytes = b"/quit") -> None:
        """
        Leave: send C{line} (once) and wait, for a bounded time, for the server to close; with
        no connection (while reconnecting), stop trying and finish at once.
        """
        if self.done.called:
            return
        if self.server is None:
            if self.reconnector is not None:
                self.reconnector.stop()
            self._finish(0)
            return
        if not self._quit_sent:
            self._quit_sent = True
            self.server.send_line(line)
        if self._quit_timer is None or not self._quit_timer.active():
            self._quit_timer = self.clock.callLater(QUIT_GRACE_SECONDS, self.server.close)

    def input_ended(self) -> None:
        """End of input: say C{/quit} (once) and wait, for a bounded time, for the server to close."""
        if self.done.called or (self.server is None and self.reconnector is None):
            return
        self.leave()

    # --- the end -----------------------------------------------------------------------------

    def _show(self, is_notice: bool, text: str) -> None:
        if self.terminal is None:
            self._unshown.append((is_notice, text))
        elif is_notice:
            self.terminal.notice(text)
        else:
            self.terminal.show(text)

    def _finish(self, status: int, error: str | None = None) -> None:
        if self.done.called:
            return
        log.info("finished with status {status}", status=status)
        self.error = error
        if self.terminal is None:
            self.done.callback(status)
        else:
            self.terminal.close().addCallback(lambda _: self.done.callback(status))
