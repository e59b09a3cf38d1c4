"""chat_twisted: a multi-user chat server and client built on Twisted."""

__version__ = "0.1.0"
