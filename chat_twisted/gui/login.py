"""
What the login dialog asks for and remembers: L{Login} (server, port, nickname, password),
L{check} for the dialog's fields, and the last server, port and nickname kept in a small file
under the user's config directory (C{$XDG_CONFIG_HOME/chat_twisted/gui-last.ini}, by default
C{~/.config/...}). The password is never written anywhere. No Tk here.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from twisted.logger import Logger

from chat_twisted.client.options import DEFAULT_HOST, DEFAULT_PORT, default_config_path

log = Logger()


@dataclass(frozen=True)
class Login:
    """Where to connect and as whom; C{password} is None for a guest nickname."""

    host: str
    port: int
    nick: str
    password: str | None = None


def last_login_path(environ: Mapping[str, str]) -> Path:
    """Return the file that keeps the last server, port and nickname (beside the client's config)."""
    return default_config_path(environ).parent / "gui-last.ini"


def check(host: str, port: str, nick: str, password: str) -> Login | str:
    """Return the L{Login} the dialog's fields give, or what is wrong with them (one line)."""
    host, port, nick = host.strip(), port.strip(), nick.strip()
    if not host:
        return "the server's name or address is missing"
    try:
        number = int(port)
    except ValueError:
        return f"the port must be a number, not {port!r}"
    if not 0 < number < 65536:
        return "the port must be between 1 and 65535"
    if not nick or len(nick.split()) != 1:
        return "the nickname must be one word"
    return Login(host, number, nick, password.strip() or None)


def login_defaults(host: str, port: int, last: Login | None) -> Login:
    """
    What the login dialog starts with: the last server, port and nickname used, unless the
    options (command line, C{CHAT_*}, config file) name another server than the default.
    """
    if last is not None and (host, port) == (DEFAULT_HOST, DEFAULT_PORT):
        return last
    return Login(host, port, last.nick if last is not None else "")


def load_last(path: Path) -> Login | None:
    """Return the server, port and nickname last used (no password), or None if none are kept."""
    config = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as file:
            config.read_file(file)
        section = config["last"]
        return Login(section["host"], int(section["port"]), section["nick"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, configparser.Error):
        log.warn("ignoring unreadable {path}", path=str(path))
        return None


def save_last(path: Path, login: Login) -> None:
    """Keep C{login}'s server, port and nickname (never its password) for the next start."""
    config = configparser.ConfigParser()
    config["last"] = {"host": login.host, "port": str(login.port), "nick": login.nick}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as file:
            config.write(file)
        os.chmod(path, 0o600)
    except OSError:
        log.failure("could not keep the last login in {path}", path=str(path))
