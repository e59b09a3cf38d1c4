"""Implementations of L{chat_twisted.interfaces.IChatStore}."""
