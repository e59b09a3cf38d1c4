"""
L{Identity}: who the client is on the server, learnt from the lines it types and the server's
answers, so that a new connection can log in again as the same user.

A password is kept only in memory, and only after the server accepted it: a C{/login NICK
PASSWORD}, a password typed at the server's password prompt, C{/register PASSWORD} or C{/password
OLD NEW}. Also says which typed lines hold a secret, so they are neither kept in the input
history nor shown on screen as typed.
"""

from __future__ import annotations

import re

_WELCOME = re.compile(r"\* Welcome, (\S+)! ")
_LOGGED_IN = re.compile(r"\* you are logged in as (\S+)\Z")
_RENAMED = re.compile(r"\* (\S+) is now known as (\S+)\Z")
_PASSWORD_PROMPT = re.compile(r"\* (\S+) is registered\. Password")
_REGISTERED = re.compile(r"\* (\S+) is now registered;")

#: Commands that take a password, and which of their arguments (from 1) is the first secret one.
_FIRST_SECRET = {"/login": 2, "/register": 1, "/password": 1}


def secret_start(line: str, password_prompt: bool = False) -> int | None:
    """
    Return where the secret part of typed C{line} begins, or None if it has none: the whole line
    at a password prompt (unless it is a command), the password of C{/login NICK PASSWORD}, the
    arguments of C{/register} and C{/password}.
    """
    if password_prompt and not line.lstrip().startswith("/"):
        return 0
    words = list(re.finditer(r"\S+", line))
    position = _FIRST_SECRET.get(words[0].group().lower(), 0) if words else 0
    if position == 0 or len(words) <= position:
        return None
    return words[position].start()


class Identity:
    """
    The nickname the server knows us by and, once the server accepted one, the password that
    logs it in again. State only; no I/O.
    """

    def __init__(self, nick: str | None = None, password: str | None = None) -> None:
        #: The nickname to send on (re)connecting: given with --nick or confirmed by the server.
        self.nick = nick or None
        # A password given with the nickname (the desktop window's login dialog), tried with
        # /login until the server welcomes us or refuses it.
        self._given_login = (nick, password) if nick and password else None
        #: True while the server waits for the password of a registered nickname.
        self.password_prompt = False
        self._prompt_nick: str | None = None
        self._login: tuple[str, str] | None = None
        self._pending_login: tuple[str, str] | None = None
        self._pending_password: str | None = None

    def greeting(self) -> str | None:
        """Return the line that logs in again on a new connection (C{/login N P}, or the nickname)."""
        if self._login is not None and self.nick is not None and self._login[0].lower() == self.nick.lower():
            return f"/login {self.nick} {self._login[1]}"
        if self._given_login is not None:
            self._pending_login = self._given_login
            return f"/login {self._given_login[0]} {self._given_login[1]}"
        return self.nick

    def connection_lost(self) -> None:
        """The connection ended: answers still awaited will not come."""
        self.password_prompt = False
        self._pending_login = None
        self._pending_password = None

    def typed(self, line: str) -> None:
        """Note a line the user sent: a password, C{/login}, C{/register} or C{/password}."""
        words = line.split()
        command = words[0].lower() if words else ""
        if self.password_prompt and self._prompt_nick and not command.startswith("/"):
            self._pending_login = (self._prompt_nick, line.strip())
        elif command == "/login" and len(words) == 3:
            self._pending_login = (words[1], words[2])
        elif command == "/register" and len(words) == 2:
            self._pending_password = words[1]
        elif command == "/password" and len(words) == 3:
            self._pending_password = words[2]
        self.password_prompt = False

    def received(self, line: str) -> bool:
        """Learn from one server line; return True if it says we are now logged in (a welcome)."""
        if line.startswith("error:"):
            self._pending_login = self._pending_password = self._given_login = None
        elif match := _WELCOME.match(line) or _LOGGED_IN.match(line):
            self._logged_in(match.group(1))
            return match.re is _WELCOME
        elif match := _RENAMED.match(line):
            if self.nick is not None and match.group(1).lower() == self.nick.lower():
                self.nick = match.group(2)
        elif match := _PASSWORD_PROMPT.match(line):
            self.password_prompt, self._prompt_nick = True, match.group(1)
        elif match := _REGISTERED.match(line):
            if self._pending_password is not None:
                self._login, self._pending_password = (match.group(1), self._pending_password), None
        elif line == "* password changed":
            if self._pending_password is not None and self._login is not None:
                self._login, self._pending_password = (self._login[0], self._pending_password), None
        elif line == "* you are logged out":
            self.nick = self._login = None
        return False

    def _logged_in(self, nick: str) -> None:
        self.nick = nick
        self._given_login = None
        if self._pending_login is not None and self._pending_login[0].lower() == nick.lower():
            self._login = (nick, self._pending_login[1])
        elif self._login is not None and self._login[0].lower() != nick.lower():
            self._login = None
        self._pending_login = None
        self.password_prompt = False
