"""
L{InputHistory}: the lines the user sent, for Up and Down, shared by the terminal and the desktop
window. State only; nothing here writes anywhere.

Lines are kept as the UTF-8 bytes sent. Empty lines, a line equal to the one before, and any
line that holds a password (see L{secret_start}) are never kept.
"""

from __future__ import annotations

from chat_twisted.client.identity import secret_start

#: How many sent lines are kept for Up and Down.
HISTORY = 500


class InputHistory:
    """
    The lines sent (oldest first, at most C{limit}) and the position Up and Down have reached:
    C{position == len(lines)} means "past the newest", the line being typed.
    """

    def __init__(self, limit: int = HISTORY) -> None:
        self.limit = limit
        self.lines: list[bytes] = []
        self.position = 0

    def remember(self, line: bytes, password_prompt: bool = False) -> None:
        """Add C{line}, unless it is empty, the same as the newest, or holds a password."""
        text = line.decode("utf-8", errors="replace")
        if not text.strip() or secret_start(text, password_prompt) is not None:
            return
        if not self.lines or self.lines[-1] != line:
            self.lines.append(line)
            del self.lines[:-self.limit]

    def entered(self, line: bytes, password_prompt: bool = False) -> None:
        """The user entered C{line}: remember it and go back past the newest."""
        self.remember(line, password_prompt)
        self.position = len(self.lines)

    def up(self, current: bytes, password_prompt: bool = False) -> bytes | None:
        """
        Return the line before the one shown, or None at the oldest. A half-typed C{current}
        line (being typed, not recalled) is remembered first, so that Down brings it back.
        """
        if current and self.position == len(self.lines):
            self.remember(current, password_prompt)
        if self.position <= 0:
            return None
        self.position -= 1
        return self.lines[self.position]

    def down(self) -> bytes:
        """Return the line after the one shown; past the newest, an empty line."""
        if self.position < len(self.lines) - 1:
            self.position += 1
            return self.lines[self.position]
        self.position = len(self.lines)
        return b""
