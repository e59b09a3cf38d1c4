"""
The client's command line, with defaults from C{CHAT_*} environment variables and from a small
config file (C{~/.config/chat_twisted/client.ini}, or C{$XDG_CONFIG_HOME/chat_twisted/client.ini}).

Each setting is taken from the first of: the command line, the environment, the config file,
the built-in default. The file has one section, C{[client]}::

    [client]
    host = chat.example.org
    port = 5001
    nick = alice
    tls = yes
    ca = ~/chat-ca.pem
    color = no
"""

from __future__ import annotations

import argparse
import configparser
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from chat_twisted.client.tls import load_trust_root

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000

#: Environment variables and the setting each gives a default for.
ENVIRONMENT = {"CHAT_HOST": "host", "CHAT_PORT": "port", "CHAT_NICK": "nick", "CHAT_TLS": "tls", "CHAT_CA": "ca"}

#: The settings a config file may hold.
CONFIG_KEYS = ("host", "port", "nick", "tls", "ca", "color")


def default_config_path(environ: Mapping[str, str]) -> Path:
    """Return where the config file is looked for when C{--config} is not given."""
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(environ.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base) / "chat_twisted" / "client.ini"


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Defaults may also come from CHAT_HOST, CHAT_PORT, CHAT_NICK, CHAT_TLS and CHAT_CA, "
               "or from a [client] section in ~/.config/chat_twisted/client.ini; command-line "
               "options win. NO_COLOR turns colour off.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"server host name or address [{DEFAULT_HOST}]")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"server port [{DEFAULT_PORT}]")
    parser.add_argument("--nick", help="nickname to send on connecting (else the first line typed)")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=False,
                        help="connect with TLS; the server's certificate must match --host and be "
                             "trusted by the system")
    trust = parser.add_mutually_exclusive_group()
    trust.add_argument("--ca", metavar="FILE", type=load_trust_root,
                       help="with TLS, trust only the PEM certificates in FILE (a CA or the "
                            "server's self-signed certificate); implies --tls")
    trust.add_argument("--insecure", action="store_true",
                       help="connect with TLS but do not check the server's certificate at all "
                            "(for testing only); implies --tls")
    parser.add_argument("--no-color", "--no-colour", dest="no_color", action="store_true",
                        help="do not colour the interactive display")
    parser.add_argument("--config", metavar="FILE",
                        help="read defaults from FILE [~/.config/chat_twisted/client.ini]")
    return parser


def _read_config(parser: argparse.ArgumentParser, path: Path, required: bool) -> dict[str, tuple[str, str]]:
    """Return the [client] settings in C{path}, each with where it came from."""
    config = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as file:
            config.read_file(file)
    except FileNotFoundError:
        if required:
            parser.error(f"config file {str(path)!r} not found")
        return {}
    except (OSError, UnicodeDecodeError, configparser.Error) as error:
        parser.error(f"cannot read config file {str(path)!r}: {' '.join(str(error).split())}")
    if not config.has_section("client"):
        return {}
    found = {}
    for key, value in config.items("client"):
        if key not in CONFIG_KEYS:
            parser.error(f"{path}: unknown setting {key!r} (known: {', '.join(CONFIG_KEYS)})")
        found[key] = (value, f"{path}: {key}")
    return found


def _converted(parser: argparse.ArgumentParser, settings: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """Turn setting texts into option values; a bad one is a usage error naming its source."""
    defaults: dict[str, Any] = {}
    for key, (value, source) in settings.items():
        value = value.strip()
        try:
            if key == "port":
                defaults["port"] = int(value)
            elif key in ("tls", "color"):
                flag = configparser.ConfigParser.BOOLEAN_STATES[value.lower()]
                defaults["tls" if key == "tls" else "no_color"] = flag if key == "tls" else not flag
            elif key == "ca":
                defaults["ca"] = load_trust_root(os.path.expanduser(value))
            elif value:
                defaults[key] = value
        except (ValueError, KeyError, argparse.ArgumentTypeError) as error:
            detail = f": {error}" if isinstance(error, argparse.ArgumentTypeError) else f": invalid value {value!r}"
            parser.error(f"{source}{detail}")
    return defaults


def parse_args(
    argv: Sequence[str],
    environ: Mapping[str, str] | None = None,
    prog: str = "python -m chat_twisted.client",
    description: str = "Chat on a chat_twisted server from this terminal (or a pipe).",
) -> argparse.Namespace:
    """
    Parse the client's command line, with defaults from C{environ} and the config file; C{prog}
    and C{description} are what C{--help} says (the desktop window gives its own).
    """
    environ = os.environ if environ is None else environ
    parser = _parser(prog, description)
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--config")
    config_option = first.parse_known_args(list(argv))[0].config
    if config_option is not None:
        settings = _read_config(parser, Path(config_option), required=True)
    else:
        settings = _read_config(parser, default_config_path(environ), required=False)
    settings.update({key: (environ[name], name) for name, key in ENVIRONMENT.items() if name in environ})
    parser.set_defaults(**_converted(parser, settings))
    options = parser.parse_args(argv)
    options.tls = options.tls or options.ca is not None or options.insecure
    return options
