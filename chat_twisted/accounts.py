"""
Account rules: registering a nickname, checking and changing its password, slowing down guessing.

L{Accounts} owns the password policy and the failure back-offs; it keeps accounts in the store and
hashes through the L{PasswordHasher} (off the reactor thread, a few at a time). It knows nothing
of sessions or connections: the core decides what a successful check lets a user do. No I/O of
its own.
"""

from __future__ import annotations

import math

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chat_twisted.errors import (
    AlreadyRegistered,
    Busy,
    ChatError,
    NotRegistered,
    PasswordRule,
    TooManyAttempts,
    Unavailable,
    WrongPassword,
)
from chat_twisted.interfaces import IChatStore
from chat_twisted.limits import FailureBackoff, address_group
from chat_twisted.model import Account
from chat_twisted.passwords import PasswordHasher

log = Logger()

MIN_PASSWORD_LENGTH = 4
MAX_PASSWORD_LENGTH = 256

#: The back-off of an address, and of an account from one address: failures that cost nothing,
#: the first wait after them, the longest wait (seconds; each further failure doubles the wait).
FREE_FAILURES, FIRST_WAIT, LONGEST_WAIT = 3, 2.0, 300.0
#: The back-off of an account from every address together starts after this many failures, and
#: holds back only addresses that have failed for that account themselves.
ACCOUNT_FREE_FAILURES = 10


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
    Registers accounts and checks passwords, refusing attempts while they are in back-off after
    repeated failures. Three back-offs count failures: of an address (IPv4, or IPv6 /64), of
    an account from one address, and of an account from every address together; the last one
    only ever holds back an address that has failed for that account itself, so that nobody
    can lock an owner out of their account from elsewhere.
    """

    def __init__(self, store: IChatStore, hasher: PasswordHasher, clock: IReactorTime) -> None:
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._backoff = FailureBackoff(clock, FREE_FAILURES, FIRST_WAIT, LONGEST_WAIT)  # addresses, account+address
        self._account_backoff = FailureBackoff(clock, ACCOUNT_FREE_FAILURES, FIRST_WAIT, LONGEST_WAIT)

    @staticmethod
    def _keys(nick_key: str, address: str) -> tuple[str, str]:
        """The back-off keys of C{address}, and of account C{nick_key} from C{address}."""
        group = address_group(address) or address
        return "address:" + group, f"account:{nick_key} {group}"

    def _refuse_in_backoff(self, address_key: str, pair_key: str | None = None, nick_key: str = "") -> None:
        """Raise L{TooManyAttempts} if the address, or the account from it, must wait."""
        waits = [self._backoff.wait_for(address_key)]
        if pair_key is not None:
            waits.append(self._backoff.wait_for(pair_key))
            if self._backoff.failures(pair_key):
                waits.append(self._account_backoff.wait_for(nick_key))
        wait = max(waits)
        if wait > 0:
            raise TooManyAttempts(math.ceil(wait))

    @staticmethod
    async def _read(reading: Deferred[Account | None]) -> Account | None:
        """The account C{reading} fires with; a store that cannot be read is L{Unavailable}."""
        try:
            return await reading
        except Exception:
            log.failure("reading an account from the store failed")
            raise Unavailable("accounts") from None

    async def lookup(self, nick_key: str) -> Account | None:
        """Return the account registered under C{nick_key}, if any."""
        return await self._read(self._store.get_account(nick_key))

    async def register(self, nick_key: str, nick: str, password: str, address: str) -> None:
        """
        Register C{nick} with C{password}; raise if the password is unfit or the nick is taken.
        Refused while C{address} is in back-off; a failure (L{Busy} included) counts against it.
        """
        address_key, _ = self._keys(nick_key, address)
        self._refuse_in_backoff(address_key)
        try:
            check_password_rules(password)
            password_hash = await self._hasher.hash(password)
            created = await self._store.create_account(nick_key, Account(nick, password_hash, self._clock.seconds()))
            if not created:
                raise AlreadyRegistered(nick)
        except ChatError:
            self._backoff.failed(address_key)
            raise

    async def check(self, nick_key: str, nick: str, password: str, address: str) -> Account:
        """
        Return C{nick_key}'s account if C{password} is right.

        Raise L{TooManyAttempts} during back-off (without checking), L{NotRegistered} if the nick
        is not registered, L{WrongPassword} (and lengthen the back-offs) if the password is wrong,
        L{Busy} (lengthening the address's back-off) if too many passwords are being checked.
        """
        address_key, pair_key = self._keys(nick_key, address)
        self._refuse_in_backoff(address_key, pair_key, nick_key)
        account = await self._read(self._store.get_account(nick_key))
        if account is None:
            raise NotRegistered(nick)
        return await self._verify(account, nick_key, nick, password, address)

    async def _verify(self, account: Account, nick_key: str, nick: str, password: str, address: str) -> Account:
        """Check C{password} against C{account} (its back-offs already passed), counting the outcome."""
        address_key, pair_key = self._keys(nick_key, address)
        try:
            right = await self._hasher.verify(account.password_hash, password)
        except Busy:
            self._backoff.failed(address_key)
            raise
        if not right:
            self._backoff.failed(address_key)
            self._backoff.failed(pair_key)
            self._account_backoff.failed(nick_key)
            log.info("wrong password for {nick} from {address}", nick=account.nick, address=address)
            raise WrongPassword(nick)
        self._backoff.succeeded(address_key)
        self._backoff.succeeded(pair_key)
        return account

    async def change_password(self, nick_key: str, old: str, new: str, address: str) -> None:
        """
        Replace the password after checking the old one, with the same back-offs as a login; a
        new password that breaks the rules, or L{Busy}, counts as a failure of the address.
        """
        address_key, pair_key = self._keys(nick_key, address)
        self._refuse_in_backoff(address_key, pair_key, nick_key)
        try:
            check_password_rules(new)
        except PasswordRule:
            self._backoff.failed(address_key)
            raise
        account = await self._read(self._store.get_account(nick_key))
        if account is None:
            raise NotRegistered(nick_key)
        await self._verify(account, nick_key, account.nick, old, address)
        try:
            password_hash = await self._hasher.hash(new)
        except Busy:
            self._backoff.failed(address_key)
            raise
        await self._store.set_password_hash(nick_key, password_hash)
