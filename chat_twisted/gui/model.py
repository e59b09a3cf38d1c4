"""
The desktop window's logic, without a display: L{WindowPresenter} decides which tab and style
each server line goes to, keeps the room, its topic and its members, the private conversations,
the input history and the status line, and tells a L{WindowView} what to show.

It is the window's face for L{ChatClient} (the same place the terminal's sides take): server
lines come in through L{WindowPresenter.show}, typed lines go out through L{ChatClient.enter}.
It never touches Tk nor a transport; time comes from an injected clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from chat_twisted.client.history import InputHistory
from chat_twisted.client.reconnect import ConnectionStatus, Link
from chat_twisted.client.session import ChatClient, Entered
from chat_twisted.client.styles import Style, classify, split_stamp

log = Logger()

#: The tab of the room the user is in; private conversations have their peer's nickname.
ROOM_TAB = ""

#: The window's own commands and keys, shown by C{/help} before the server's list.
WINDOW_HELP = (
    "window commands: /clear clears this tab; /quit [REASON] leaves (so does closing the window)",
    "keys: Enter sends; Up/Down recall earlier lines; in a private tab, what you type goes to that user "
    "only; the field beside the room name joins another room",
)

_PRIVATE = re.compile(r"\[[^\]]*\] \(private(?: to (\S+)|, while you were away)?\) ([^\s:]+): ")
_WELCOME = re.compile(r"\* Welcome, (\S+)! .* You are in (\S+); ")
_JOINED = re.compile(r"\* (\S+) joined (\S+)\Z")
_LEFT = re.compile(r"\* (\S+) left (\S+) \(")
_RENAMED = re.compile(r"\* (\S+) is now known as (\S+)\Z")
_WHO = re.compile(r"\* \d+ users? in (\S+): (.*)\Z")
_TOPIC = re.compile(r"\* topic of (\S+): (.*)\Z")
_TOPIC_SET = re.compile(r"\* \S+ set the topic of (\S+) to: (.*)\Z")
_NO_TOPIC = re.compile(r"\* (\S+) has no topic\Z")
_OFFLINE = re.compile(r"\* (\S+) is offline; your message will be delivered")


@dataclass(frozen=True)
class Shown:
    """One line for the window: the C{tab} it goes to, its time C{stamp} (or C{""}), the rest, its L{Style}."""

    tab: str
    stamp: str
    text: str
    style: Style


class WindowView(Protocol):
    """What L{WindowPresenter} needs from the window (the Tk view, or a recording fake in tests)."""

    def add(self, shown: Shown) -> None:
        """Show one line at the end of its tab (opening the tab if needed)."""

    def clear(self, tab: str) -> None:
        """Remove the lines shown in C{tab}."""

    def set_room(self, room: str | None, topic: str | None) -> None:
        """Show the room's name and topic at the top."""

    def set_members(self, members: Sequence[str]) -> None:
        """Show the members of the room."""

    def set_status(self, text: str) -> None:
        """Show C{text} in the status line."""

    def set_input(self, text: str) -> None:
        """Replace the input line with C{text}."""

    def set_secret(self, secret: bool) -> None:
        """Show what is typed in the input line as C{*} (at the server's password prompt) or not."""

    def close(self) -> None:
        """Close the window."""


def _key(nick: str) -> str:
    return nick.lower()


class WindowPresenter:
    """
    The window's state and decisions. Owns: the room, its topic and members (from the welcome,
    C{/who} answers and the join, leave, nick and topic lines), the private tabs and which tab
    is selected, the input history and the status line's countdown timer. Asks the server for
    C{/who} on entering a room and hides that answer. Writes to no transport: lines go out
    through the L{ChatClient}.
    """

    def __init__(self, client: ChatClient, view: WindowView, clock: IReactorTime) -> None:
        self.client = client
        self.view = view
        self.clock = clock
        self.history = InputHistory()
        self.room: str | None = None
        self.topic: str | None = None
        self._members: dict[str, str] = {}
        self.tabs: list[str] = []
        self.current_tab = ROOM_TAB
        self.status_text = ""
        self._hidden_who = 0
        self._secret = False
        self._status: ConnectionStatus | None = None
        self._tick: IDelayedCall | None = None

    @property
    def members(self) -> list[str]:
        """The members of the room, sorted without regard to case."""
        return sorted(self._members.values(), key=str.lower)

    # --- ChatClient's face: what the client shows ------------------------------------------------

    def show(self, text: str) -> None:
        """Route one server line: learn from it, then show it (unless it is a hidden C{/who} answer)."""
        if self._learn(text):
            self.view.add(self._shown(text))
        self._sync_secret()

    def notice(self, text: str) -> None:
        """Show one line from the client itself (marked C{***}) in the selected tab."""
        self.view.add(Shown(self.current_tab, "", f"*** {text}", Style.CLIENT))

    def close(self) -> Deferred[None]:
        """The chat is over: stop the status timer and close the window; fires at once."""
        self._stop_tick()
        self.view.close()
        return succeed(None)

    # --- what the user does ---------------------------------------------------------------------

    def entered(self, text: str) -> None:
        """
        The user pressed Enter on C{text} in the selected tab. In a private tab a line that is
        not a command goes to that user only (C{/msg}); commands work as in the terminal.
        """
        line = text.encode("utf-8")
        prompt = self.client.identity.password_prompt
        self.history.entered(line, prompt)
        outcome = self.client.enter(self._to_send(text).encode("utf-8"), WINDOW_HELP)
        if outcome is Entered.CLEAR:
            self.view.clear(self.current_tab)
        self.view.set_input(text if outcome is Entered.KEEP else "")
        self._sync_secret()

    def up(self, current: str) -> None:
        """Up: recall the line sent before the one shown."""
        line = self.history.up(current.encode("utf-8"), self.client.identity.password_prompt)
        if line is not None:
            self.view.set_input(line.decode("utf-8", errors="replace"))

    def down(self) -> None:
        """Down: recall the line sent after the one shown; past the newest, an empty line."""
        self.view.set_input(self.history.down().decode("utf-8", errors="replace"))

    def join(self, room: str) -> None:
        """The user asked, in the join field, to enter C{room}."""
        if room.strip():
            self.client.enter(b"/join " + room.strip().encode("utf-8"))

    def tab_selected(self, tab: str) -> None:
        """The user selected C{tab} (L{ROOM_TAB} or a private conversation)."""
        self.current_tab = tab

    def close_requested(self) -> None:
        """The user closed the window: leave with C{/quit} (the window closes once that is done)."""
        self.client.leave()

    def _sync_secret(self) -> None:
        """Mask the input line while the server waits for a password, and only then."""
        secret = self.client.identity.password_prompt
        if secret != self._secret:
            self._secret = secret
            self.view.set_secret(secret)

    # --- the connection -------------------------------------------------------------------------

    def status(self, status: ConnectionStatus) -> None:
        """Show where the connection stands; while waiting to try again, count the seconds down."""
        self._status = status
        self._stop_tick()
        if status.link is not Link.CONNECTED:
            self._hidden_who = 0
            self._members.clear()
            self.view.set_members([])
        self._show_status()

    def _show_status(self) -> None:
        status = self._status
        if status is None:
            return
        if status.link is Link.CONNECTED:
            text = f"connected to {status.where}"
        elif status.link is Link.CONNECTING:
            text = f"connecting to {status.where}..."
        else:
            left = max(math.ceil((status.retry_at or 0) - self.clock.seconds()), 0)
            text = f"lost {status.where}: {status.reason}; retrying in {left} s"
            if left > 1:
                self._tick = self.clock.callLater(1, self._ticked)
        self.status_text = text
        self.view.set_status(text)

    def _ticked(self) -> None:
        self._tick = None
        self._show_status()

    def _stop_tick(self) -> None:
        if self._tick is not None and self._tick.active():
            self._tick.cancel()
        self._tick = None

    # --- deciding -------------------------------------------------------------------------------

    def _to_send(self, text: str) -> str:
        """What to send for C{text} typed in the selected tab."""
        if self.current_tab == ROOM_TAB or self.client.identity.password_prompt:
            return text
        if text.startswith("//"):
            return f"/msg {self.current_tab} {text[1:]}"
        if text.startswith("/") or not text.strip():
            return text
        return f"/msg {self.current_tab} {text}"

    def _shown(self, text: str) -> Shown:
        """Which tab and style server line C{text} gets."""
        nick = self.client.identity.nick
        style = classify(text, nick)
        tab = self.current_tab if style is Style.ERROR else ROOM_TAB
        if style is Style.PRIVATE and (match := _PRIVATE.match(text)):
            tab = match.group(1) or match.group(2)
        elif match := _OFFLINE.match(text):
            tab = match.group(1)
        if tab != ROOM_TAB:
            self._open(tab)
        stamp, rest = split_stamp(text) if style is not Style.HISTORY else ("", text)
        return Shown(tab, stamp, rest, style)

    def _open(self, peer: str) -> str:
        for tab in self.tabs:
            if _key(tab) == _key(peer):
                return tab
        self.tabs.append(peer)
        return peer

    def _learn(self, text: str) -> bool:
        """Update the room, topic and members from server line C{text}; False to hide the line."""
        nick = self.client.identity.nick
        if match := _WELCOME.match(text):
            self._enter_room(match.group(2))
        elif match := _JOINED.match(text):
            who, room = match.groups()
            if nick is not None and _key(who) == _key(nick):
                if self.room is None or _key(room) != _key(self.room):
                    self._enter_room(room)
                self._members[_key(who)] = who
                self._ask_who()
            elif self.room is not None and _key(room) == _key(self.room):
                self._members[_key(who)] = who
            self.view.set_members(self.members)
        elif match := _LEFT.match(text):
            if self._members.pop(_key(match.group(1)), None) is not None:
                self.view.set_members(self.members)
        elif match := _RENAMED.match(text):
            old, new = match.groups()
            if self._members.pop(_key(old), None) is not None:
                self._members[_key(new)] = new
                self.view.set_members(self.members)
        elif match := _WHO.match(text):
            if self.room is None or _key(match.group(1)) == _key(self.room):
                self._members = {_key(name): name for name in match.group(2).split(", ") if name}
                self.view.set_members(self.members)
            if self._hidden_who:
                self._hidden_who -= 1
                return False
        elif match := _TOPIC.match(text) or _TOPIC_SET.match(text):
            self._set_topic(match.group(1), match.group(2))
        elif match := _NO_TOPIC.match(text):
            self._set_topic(match.group(1), None)
        elif text == "* you are logged out":
            self.room, self.topic = None, None
            self._members.clear()
            self.view.set_room(None, None)
            self.view.set_members([])
        return True

    def _enter_room(self, room: str) -> None:
        self.room, self.topic = room, None
        self._members.clear()
        self.view.set_room(room, None)

    def _set_topic(self, room: str, topic: str | None) -> None:
        if self.room is not None and _key(room) == _key(self.room):
            self.topic = topic
            self.view.set_room(self.room, topic)

    def _ask_who(self) -> None:
        """Ask the server who is in the room just entered; its answer is not shown."""
        if self.client.typed(b"/who"):
            self._hidden_who += 1
