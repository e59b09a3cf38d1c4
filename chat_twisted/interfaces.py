"""
The boundaries of the chat core: what it calls on a connection.

A door (line protocol, IRC, WebSocket) provides L{IChatClient} for each of its connections and
hands it to L{chat_twisted.core.ChatService.connect}. Storage and the event bus join here later.
"""

from zope.interface import Attribute, Interface


class IChatClient(Interface):
    """
    One connection as the core sees it. Its methods are the only way the core reaches a user:
    the provider alone may write to its own transport.
    """

    peer = Attribute("A short text naming the remote end, for logs and per-address limits.")

    def deliver(event):  # type: ignore[no-untyped-def]
        """
        Show one L{chat_twisted.model.Event} to this user. Must not raise for a closed or slow
        connection; the core catches and logs anything it does raise and goes on delivering.
        """

    def close():  # type: ignore[no-untyped-def]
        """Close the connection once what was delivered before has been written."""
