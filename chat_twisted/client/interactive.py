"""
L{InteractiveTerminal}: the client on a real terminal. Messages scroll up above the line being
typed, which stays whole at the bottom however many arrive; the line can be edited (arrows,
Home/End, Ctrl-A/E/U/K/W, Alt-B/F) and earlier lines recalled with Up and Down. Lines are
coloured by kind (see L{Style}), long ones wrap with a hanging indent, and a new window size
repaints the screen.

It runs under C{twisted.conch.insults.insults.ServerProtocol}, which turns the raw bytes typed
into keystrokes and is the only thing it writes to (C{self.terminal}). Passwords being typed are
shown as C{*} and never kept in the input history.
"""

from __future__ import annotations

import codecs
from collections import deque
from typing import TYPE_CHECKING, Any

from twisted.conch.recvline import HistoricRecvLine
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from chat_twisted.client.identity import secret_start
from chat_twisted.client.layout import InputLayout, layout_input, wrap
from chat_twisted.client.history import HISTORY, InputHistory
from chat_twisted.client.session import Entered
from chat_twisted.client.styles import Style, classify, coloured

if TYPE_CHECKING:
    from chat_twisted.client.session import ChatClient

log = Logger()

#: How many earlier messages are kept to repaint the screen (L{HISTORY} typed lines are kept for Up/Down).
SCROLLBACK = 500

#: The client's own commands and keys, shown by C{/help} before the server's list.
CLIENT_HELP = (
    "client commands: /clear clears the screen; /quit [REASON] leaves (so do Ctrl-C and Ctrl-D)",
    "keys: Up/Down recall earlier lines; Left/Right, Home/End or Ctrl-A/Ctrl-E move; "
    "Ctrl-U, Ctrl-K and Ctrl-W delete; Ctrl-L redraws",
)

_ERASE_DOWN = b"\x1b[J"
_CLEAR_SCREEN = b"\x1b[H\x1b[2J"
_RESET_COLOUR = b"\x1b[0m"


def _up(rows: int) -> bytes:
    return b"\x1b[%dA" % rows if rows > 0 else b""


def _forward(columns: int) -> bytes:
    return b"\x1b[%dC" % columns if columns > 0 else b""


class InteractiveTerminal(HistoricRecvLine):  # type: ignore[misc]
    """
    The interactive terminal side of L{ChatClient}: keystrokes in, coloured lines out.

    Owns the line being typed (C{lineBuffer}, one UTF-8 encoded character per item, and
    C{lineBufferIndex}), the input history, the recent messages kept for repainting, and where
    on screen the input line is (C{_cursor_row}: the cursor's row counted from the input's
    first row). Every message is written over the input line, which is then drawn again below it.
    """

    def __init__(self, client: ChatClient, colour: bool = True, size: tuple[int, int] = (80, 24)) -> None:
        self.client = client
        self.colour = colour
        self.width, self.height = size
        self._messages: deque[tuple[str, Style]] = deque(maxlen=SCROLLBACK)
        self._cursor_row = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._closed: Deferred[None] = Deferred()
        self._closing = False
        self._lost = False
        self._history = InputHistory(HISTORY)

    # HistoricRecvLine's history attributes, kept in the shared L{InputHistory}.

    @property
    def historyLines(self) -> list[bytes]:
        """The lines sent, oldest first (those with a password left out)."""
        return self._history.lines

    @historyLines.setter
    def historyLines(self, lines: list[bytes]) -> None:
        self._history.lines = lines

    @property
    def historyPosition(self) -> int:
        """Where Up and Down have got to in L{historyLines}."""
        return self._history.position

    @historyPosition.setter
    def historyPosition(self, position: int) -> None:
        self._history.position = position

    # --- setting up ------------------------------------------------------------------------------

    def connectionMade(self) -> None:
        """Set up editing and history, bind the extra keys, draw the input line, attach to the client."""
        super().connectionMade()
        handlers = {
            b"\x01": self.handle_HOME,  # Ctrl-A
            b"\x02": self.handle_LEFT,  # Ctrl-B
            b"\x03": self.handle_INTERRUPT,  # Ctrl-C
            b"\x04": self.handle_EOF,  # Ctrl-D
            b"\x05": self.handle_END,  # Ctrl-E
            b"\x06": self.handle_RIGHT,  # Ctrl-F
            b"\x08": self.handle_BACKSPACE,  # Ctrl-H
            b"\x0b": self.handle_KILL_TO_END,  # Ctrl-K
            b"\x0c": self.repaint,  # Ctrl-L
            b"\x0e": self.handle_DOWN,  # Ctrl-N
            b"\x10": self.handle_UP,  # Ctrl-P
            b"\x15": self.handle_KILL_TO_START,  # Ctrl-U
            b"\x17": self.handle_KILL_WORD,  # Ctrl-W
        }
        self.keyHandlers.update(handlers)
        self.client.terminal_attached(self)

    def initializeScreen(self) -> None:
        """Draw the prompt where the cursor is; unlike RecvLine, leave the screen and modes alone."""
        self.mode = "insert"
        self._write(self._draw_input())

    # --- what the client shows -------------------------------------------------------------------

    def show(self, text: str) -> None:
        """Show one server line above the input line, coloured by its kind."""
        self._add(text, classify(text, self.client.identity.nick))

    def notice(self, text: str) -> None:
        """Show one line from the client itself (marked C{***})."""
        self._add(f"*** {text}", Style.CLIENT)

    def _add(self, text: str, style: Style) -> None:
        self._messages.append((text, style))
        self._write(self._clear_input() + self._render(text, style) + self._draw_input())

    def clear(self) -> None:
        """Clear the screen and forget the messages kept for repainting (C{/clear})."""
        self._messages.clear()
        self._write(_CLEAR_SCREEN + self._draw_input())

    def repaint(self) -> None:
        """Redraw the whole screen: the latest messages that fit, then the input line (Ctrl-L)."""
        layout = self._layout()
        room = max(self.height - len(layout.rows), 0)
        rendered: list[bytes] = []
        for text, style in reversed(self._messages):
            if room <= 0:
                break
            rows = wrap(text, self.width)[-room:]
            rendered.insert(0, b"".join(self._row(row, style) for row in rows))
            room -= len(rows)
        self._write(_CLEAR_SCREEN + b"".join(rendered) + self._draw_input(layout))

    def terminalSize(self, width: int, height: int) -> None:
        """The window changed size: repaint for the new one."""
        self.width, self.height = max(width, 1), max(height, 1)
        self.repaint()

    # --- the line being typed --------------------------------------------------------------------

    def keystrokeReceived(self, keyID: Any, modifier: Any) -> None:
        """Act on one key: an editing key, a typed character (UTF-8 decoded), or Alt-B/F/Backspace."""
        if modifier is not None:
            alt = {b"b": self.handle_WORD_LEFT, b"f": self.handle_WORD_RIGHT, b"\x7f": self.handle_KILL_WORD}
            handler = alt.get(keyID) if modifier == self.terminal.ALT else None
        else:
            handler = self.keyHandlers.get(keyID)
        if handler is not None:
            handler()
        elif modifier is not None or not isinstance(keyID, bytes) or len(keyID) != 1:
            log.debug("ignored key {key!r}", key=keyID)
        elif keyID[0] >= 0x80:
            char = self._decoder.decode(keyID)
            if char:
                self.characterReceived(char.encode("utf-8"), False)
        elif 0x20 <= keyID[0] < 0x7f:
            self._decoder.reset()
            self.characterReceived(keyID, False)

    def characterReceived(self, ch: bytes, moreCharactersComing: bool) -> None:
        """Insert (or, in typeover mode, overwrite with) one character at the cursor."""
        if self.mode == "insert":
            self.lineBuffer.insert(self.lineBufferIndex, ch)
        else:
            self.lineBuffer[self.lineBufferIndex:self.lineBufferIndex + 1] = [ch]
        self.lineBufferIndex += 1
        if not moreCharactersComing:
            self._redraw_input()

    def handle_TAB(self) -> None:
        """Insert spaces up to the next tab stop."""
        for _ in range(self.TABSTOP - self.lineBufferIndex % self.TABSTOP):
            self.characterReceived(b" ", True)
        self._redraw_input()

    def handle_LEFT(self) -> None:
        """Move the cursor one character left."""
        self._move_to(self.lineBufferIndex - 1)

    def handle_RIGHT(self) -> None:
        """Move the cursor one character right."""
        self._move_to(self.lineBufferIndex + 1)

    def handle_HOME(self) -> None:
        """Move the cursor to the start of the line."""
        self._move_to(0)

    def handle_END(self) -> None:
        """Move the cursor to the end of the line."""
        self._move_to(len(self.lineBuffer))

    def handle_WORD_LEFT(self) -> None:
        """Move the cursor to the start of the word before it."""
        self._move_to(self._word_start())

    def handle_WORD_RIGHT(self) -> None:
        """Move the cursor past the end of the word after it."""
        index = self.lineBufferIndex
        while index < len(self.lineBuffer) and self.lineBuffer[index] == b" ":
            index += 1
        while index < len(self.lineBuffer) and self.lineBuffer[index] != b" ":
            index += 1
        self._move_to(index)

    def handle_BACKSPACE(self) -> None:
        """Delete the character before the cursor."""
        if self.lineBufferIndex > 0:
            self.lineBufferIndex -= 1
            del self.lineBuffer[self.lineBufferIndex]
            self._redraw_input()

    def handle_DELETE(self) -> None:
        """Delete the character under the cursor."""
        if self.lineBufferIndex < len(self.lineBuffer):
            del self.lineBuffer[self.lineBufferIndex]
            self._redraw_input()

    def handle_INSERT(self) -> None:
        """Switch between inserting and typing over (the terminal's own insert mode is not used)."""
        self.mode = "typeover" if self.mode == "insert" else "insert"

    def handle_KILL_TO_END(self) -> None:
        """Delete from the cursor to the end of the line."""
        del self.lineBuffer[self.lineBufferIndex:]
        self._redraw_input()

    def handle_KILL_TO_START(self) -> None:
        """Delete from the start of the line to the cursor."""
        del self.lineBuffer[:self.lineBufferIndex]
        self.lineBufferIndex = 0
        self._redraw_input()

    def handle_KILL_WORD(self) -> None:
        """Delete the word before the cursor."""
        start = self._word_start()
        del self.lineBuffer[start:self.lineBufferIndex]
        self.lineBufferIndex = start
        self._redraw_input()

    def handle_UP(self) -> None:
        """Recall the line typed before the one shown (the line being typed is kept in the history)."""
        line = self._history.up(b"".join(self.lineBuffer), self.client.identity.password_prompt)
        if line is not None:
            self._set_line(line)

    def handle_DOWN(self) -> None:
        """Recall the line typed after the one shown; past the last, an empty line."""
        self._set_line(self._history.down())

    def handle_RETURN(self) -> None:
        """Take the line: remember it (unless it holds a password), clear the input, act on it."""
        line = b"".join(self.lineBuffer)
        self._history.entered(line, self.client.identity.password_prompt)
        self.lineBuffer, self.lineBufferIndex = [], 0
        self.lineReceived(line)

    def handle_INTERRUPT(self) -> None:
        """Ctrl-C: leave."""
        self.client.leave()

    def handle_EOF(self) -> None:
        """Ctrl-D: leave on an empty line, else delete the character under the cursor."""
        if self.lineBuffer:
            self.handle_DELETE()
        else:
            self.client.leave()

    def lineReceived(self, line: bytes) -> None:
        """Act on one entered line: a client command (C{/clear}, C{/help}, C{/quit}) or a line to send."""
        entered = self.client.enter(line, CLIENT_HELP)
        if entered is Entered.CLEAR:
            self.clear()
        elif entered is Entered.KEEP:
            self._set_line(line)
        else:
            self._redraw_input()

    # --- closing ---------------------------------------------------------------------------------

    def close(self) -> Deferred[None]:
        """Erase the input line, leave the messages on screen, and close; fires once closed."""
        if self._lost:
            return succeed(None)
        if not self._closing:
            self._closing = True
            self._write(self._clear_input() + _RESET_COLOUR)
            # Not ServerProtocol.loseConnection: that resets the terminal, wiping the screen.
            self.terminal.transport.loseConnection()
        return self._closed

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The terminal is gone: if we did not close it, that means leaving."""
        self._lost = True
        if not self._closing:
            self.client.input_ended()
        if not self._closed.called:
            self._closed.callback(None)

    # --- drawing ---------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write to the terminal (ServerProtocol turns each LF into CRLF)."""
        if not self._lost and data:
            self.terminal.write(data)

    def _row(self, row: str, style: Style) -> bytes:
        return coloured(row, style, self.colour).encode("utf-8") + b"\n"

    def _render(self, text: str, style: Style) -> bytes:
        return b"".join(self._row(row, style) for row in wrap(text, self.width))

    def _prompt(self) -> str:
        if self.client.identity.password_prompt:
            return "password: "
        nick = self.client.identity.nick
        prompt = f"{nick}> " if nick else "> "
        return prompt if self.client.connected else "(offline) " + prompt

    def _layout(self) -> InputLayout:
        chars = [item.decode("utf-8", errors="replace") for item in self.lineBuffer]
        secret = secret_start("".join(chars), self.client.identity.password_prompt)
        shown = chars if secret is None else chars[:secret] + ["*"] * len(chars[secret:])
        return layout_input(self._prompt(), "".join(shown), self.lineBufferIndex, self.width, self.height - 1)

    def _draw_input(self, layout: InputLayout | None = None) -> bytes:
        """Draw the input line from the cursor's place (column 0 of an erased row); note the cursor's row."""
        layout = self._layout() if layout is None else layout
        self._cursor_row = layout.cursor_row
        text = "\n".join(layout.rows).encode("utf-8")
        return text + b"\r" + _up(len(layout.rows) - 1 - layout.cursor_row) + _forward(layout.cursor_column)

    def _clear_input(self) -> bytes:
        """Move to the input line's first row and erase from there down."""
        return b"\r" + _up(self._cursor_row) + _ERASE_DOWN

    def _redraw_input(self) -> None:
        self._write(self._clear_input() + self._draw_input())

    def _move_to(self, index: int) -> None:
        index = min(max(index, 0), len(self.lineBuffer))
        if index != self.lineBufferIndex:
            self.lineBufferIndex = index
            self._redraw_input()

    def _word_start(self) -> int:
        index = self.lineBufferIndex
        while index > 0 and self.lineBuffer[index - 1] == b" ":
            index -= 1
        while index > 0 and self.lineBuffer[index - 1] != b" ":
            index -= 1
        return index

    def _set_line(self, line: bytes) -> None:
        self.lineBuffer = [char.encode("utf-8") for char in line.decode("utf-8", errors="replace")]
        self.lineBufferIndex = len(self.lineBuffer)
        self._redraw_input()
