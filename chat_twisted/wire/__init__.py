"""Doors: adapters that turn one network protocol's bytes into calls on the chat core and back."""
