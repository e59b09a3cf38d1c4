"""
Ban masks and ban durations: what a mask may say, its one canonical text, and whom it matches.

A mask is one of: C{account:NAME} (everyone identified to that registered account), an IP
address or a CIDR network (everyone connecting from it), or a nickname pattern where C{*}
stands for any run of characters and C{?} for one (C{spam*}). IRC clients send hostmasks
(C{nick!user@host}); those are read too: a host that is an address or network makes an address
mask, a host of C{*} a nickname mask. Pure functions, shared by the core and every door; no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

from chat_twisted.errors import InvalidDuration, InvalidMask
from chat_twisted.model import MAX_NAME_LENGTH, name_key, sanitise

ACCOUNT_PREFIX = "account:"

_NICK_PATTERN = re.compile(r"[A-Za-z0-9_\-\[\]\\^{}|*?]{1,%d}\Z" % MAX_NAME_LENGTH)
_DURATION = re.compile(r"([0-9]+)([smhdw]?)\Z")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The longest ban duration that is taken: ten years.
MAX_DURATION = 10 * 365 * 86400


@dataclass(frozen=True, slots=True)
class Who:
    """What a mask is matched against: a user's nickname, account key (None: a guest) and address."""

    nick: str
    account: str | None
    address: str


def parse_mask(text: str, server: bool = False) -> str:
    """
    Return the canonical text of the mask C{text}: C{account:KEY}, a network (C{10.0.0.0/8},
    an address alone as C{192.0.2.1/32}), or a nickname pattern in lower case. A server-wide
    mask (C{server}) must name an account or an address: nicknames change too easily. Raise
    L{InvalidMask} for anything else.
    """
    text = text.strip()
    if "!" in text or "@" in text:
        text = _from_hostmask(text)
    if text.lower().startswith(ACCOUNT_PREFIX):
        account = text[len(ACCOUNT_PREFIX):]
        if not account or not _NICK_PATTERN.match(account) or "*" in account or "?" in account:
            raise InvalidMask(sanitise(text))
        return ACCOUNT_PREFIX + name_key(account)
    network = _network(text)
    if network is not None:
        if server and network.prefixlen == 0:
            raise InvalidMask(sanitise(text))  # every address: surely a slip
        return str(network)
    if server or not _NICK_PATTERN.match(text):
        raise InvalidMask(sanitise(text))
    return name_key(text)


def _from_hostmask(text: str) -> str:
    """The mask a C{nick!user@host} hostmask means here (its user part is not known here)."""
    nick, bang, rest = text.partition("!")
    user, _, host = rest.rpartition("@")
    if not bang:  # user@host: only its host can be matched here
        nick, user, host = "", "", text.rpartition("@")[2]
        if host in ("", "*"):
            raise InvalidMask(sanitise(text))
    if (not nick and not host) or (nick in ("", "*") and host in ("", "*") and user not in ("", "*")):
        raise InvalidMask(sanitise(text))  # it says who only by the user part, which is not known here
    if host and host != "*":
        if _network(host) is None:
            raise InvalidMask(sanitise(text))
        return host
    return nick or "*"


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """C{text} as a network (an address alone: a network of one), IPv4-mapped IPv6 as IPv4; or None."""
    try:
        network = ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        return None
    mapped = network.network_address.ipv4_mapped if isinstance(network, ipaddress.IPv6Network) else None
    if mapped is not None and network.prefixlen >= 96:
        return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
    return network


def matches(mask: str, who: Who) -> bool:
    """Whether the canonical mask C{mask} matches the user C{who}."""
    if mask.startswith(ACCOUNT_PREFIX):
        return who.account is not None and who.account == mask[len(ACCOUNT_PREFIX):]
    if "/" in mask:
        try:
            address = ipaddress.ip_address(who.address.strip("[]"))
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        network = ipaddress.ip_network(mask)
        return address.version == network.version and address in network
    return _nick_pattern(mask).match(name_key(who.nick)) is not None


@lru_cache(maxsize=1024)
def _nick_pattern(mask: str) -> re.Pattern[str]:
    """A nickname mask as a regular expression: C{*} any run of characters, C{?} one, the rest as it is."""
    return re.compile("".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in mask)
                      + r"\Z", re.DOTALL)


def parse_duration(text: str) -> float:
    """
    Return the seconds that C{text} means: a whole number with an optional unit, C{s}, C{m},
    C{h}, C{d} or C{w} (C{90}, C{30m}, C{7d}), from one second to L{MAX_DURATION}. Raise
    L{InvalidDuration} for anything else.
    """
    found = _DURATION.match(text.strip().lower())
    if found is None:
        raise InvalidDuration(sanitise(text))
    seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if not 0 < seconds <= MAX_DURATION:
        raise InvalidDuration(sanitise(text))
    return float(seconds)
