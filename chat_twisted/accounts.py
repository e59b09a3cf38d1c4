"""
Account rules: registering a nickname, checking and changing its password, slowing down guessing.

L{Accounts} owns the password policy and the failure back-off; it keeps accounts in the store and
hashes through the L{PasswordHasher} (off the reactor thread). It knows nothing of sessions or
connections: the core decides what a successful check lets a user do. No I/O of its own.
"""

from __future__ import annotations

import math

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chat_twisted.errors import AlreadyRegistered, NotRegistered, PasswordRule, TooManyAttempts, WrongPassword
from chat_twisted.interfaces import IChatStore
from chat_twisted.limits import FailureBackoff
from chat_twisted.model import Account
from chat_twisted.passwords import PasswordHasher

log = Logger()

MIN_PASSWORD_LENGTH = 4
MAX_PASSWORD_LENGTH = 256


def check_password_rules(password: str) -> str:
    """Return C{password} if it is acceptable for a new account or password, else raise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordRule("too_short", MIN_PASSWORD_LENGTH)
    if len(password) > MAX_PASSWORD_LENGTH:
        raise PasswordRule("too_long", MAX_PASSWORD_LENGTH)
    if any(char.isspace() for char in password):
        raise PasswordRule("spaces")
    return password


class Accounts:
    """
    Registers accounts and checks passwords, refusing attempts while the account or the address
    they come from is in back-off after repeated failures.
    """

    def __init__(self, store: IChatStore, hasher: PasswordHasher, clock: IReactorTime) -> None:
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._backoff = FailureBackoff(clock)

    async def lookup(self, nick_key: str) -> Account | None:
        """Return the account registered under C{nick_key}, if any."""
        return await self._store.get_account(nick_key)

    async def register(self, nick_key: str, nick: str, password: str) -> None:
        """Register C{nick} with C{password}; raise if the password is unfit or the nick is taken."""
        check_password_rules(password)
        password_hash = await self._hasher.hash(password)
        created = await self._store.create_account(nick_key, Account(nick, password_hash, self._clock.seconds()))
        if not created:
            raise AlreadyRegistered(nick)

    async def check(self, nick_key: str, nick: str, password: str, address: str) -> Account:
        """
        Return C{nick_key}'s account if C{password} is right.

        Raise L{TooManyAttempts} during back-off (without checking), L{NotRegistered} if the nick
        is not registered, L{WrongPassword} (and lengthen the back-off) if the password is wrong.
        """
        keys = ("account:" + nick_key, "address:" + address)
        wait = max(self._backoff.wait_for(key) for key in keys)
        if wait > 0:
            raise TooManyAttempts(math.ceil(wait))
        account = await self._store.get_account(nick_key)
        if account is None:
            raise NotRegistered(nick)
        if not await self._hasher.verify(account.password_hash, password):
            for key in keys:
                self._backoff.failed(key)
            log.info("wrong password for {nick} from {address}", nick=account.nick, address=address)
            raise WrongPassword(nick)
        for key in keys:
            self._backoff.succeeded(key)
        return account

    async def change_password(self, nick_key: str, old: str, new: str, address: str) -> None:
        """Replace the password after checking the old one (with the same back-off as a login)."""
        check_password_rules(new)
        account = await self._store.get_account(nick_key)
        await self.check(nick_key, account.nick if account else nick_key, old, address)
        await self._store.set_password_hash(nick_key, await self._hasher.hash(new))
