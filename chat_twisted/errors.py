"""
Expected problems, each carrying the text the user is shown after ``error:``.

The core raises these; whoever handles a user's line catches L{ChatError} and delivers its text
as an L{chat_twisted.model.ErrorReply}. Nothing here touches a transport.
"""


class ChatError(Exception):
    """A request that cannot be done, with a message fit to show the user who made it."""

    @property
    def text(self) -> str:
        """The user-facing message."""
        return str(self.args[0]) if self.args else "request failed"


class InvalidName(ChatError):
    """A nickname or room name breaks the naming rules."""


class NickInUse(ChatError):
    """Another connected user already has this nickname (compared without regard to case)."""


class UnknownCommand(ChatError):
    """The line starts with C{/} but names no command."""


class BadArguments(ChatError):
    """A command was given missing or malformed arguments."""


class NoSuchUser(ChatError):
    """A command names a user who is not online."""


class NotAllowed(ChatError):
    """The request is valid but not possible in the user's current state."""


class WrongPassword(ChatError):
    """A password did not match the account's."""


class TooManyAttempts(ChatError):
    """Too many recent failed logins for an account or an address; try again later."""


class StoreFailed(ChatError):
    """The store could not keep something; nothing was shown to anyone."""
