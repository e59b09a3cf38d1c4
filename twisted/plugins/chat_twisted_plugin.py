"""Registers the chat server with twistd: ``twistd -n chat --port 5000``."""

from twisted.application.service import ServiceMaker

chat = ServiceMaker(
    "chat_twisted",
    "chat_twisted.tap",
    "A multi-user chat server that works from nc, its own client and more",
    "chat",
)
