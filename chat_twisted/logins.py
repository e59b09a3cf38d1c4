"""
Logins, on top of rooms and delivery: nicknames, accounts, and the time a connection has to log in.

L{Logins} decides who may take which nickname (guests take free ones, a registered nickname needs
its password and then closes the owner's older connection), registers accounts and changes
passwords through L{Accounts}, renames users, marks them away, and logs them out. It keeps the
L{Directory} of who is online. It touches no transport.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chat_twisted.accounts import Accounts
from chat_twisted.bus import BusUnavailable
from chat_twisted.delivery import Delivery
from chat_twisted.errors import (
    AlreadyLoggedIn,
    AlreadyNamed,
    AlreadyRegistered,
    LoginTimedOut,
    NickInUse,
    NickRegistered,
    NotIdentified,
    NotLoggedIn,
    Unavailable,
)
from chat_twisted.model import (
    AccountChanged,
    AwayChanged,
    AwaySet,
    ErrorReply,
    Event,
    Goodbye,
    LoggedIn,
    LoggedOut,
    PasswordChanged,
    Registered,
    Welcome,
    check_name,
    name_key,
    sanitise,
)
from chat_twisted.peers import Peers
from chat_twisted.rooms import Rooms
from chat_twisted.sessions import Directory, Session

log = Logger()


class Logins:
    """
    Nicknames and accounts of sessions. C{close} is how it ends a session (the core's: show it the
    event, it leaves with the reason, the connection closes), and C{nick_timeout} how many seconds
    a connection has to log in (0: forever). C{refuse_account} is called with a session and the
    account whose password it has just proven: it closes the session and returns True if that
    account may not log in (a server ban).
    """

    def __init__(
        self,
        clock: IReactorTime,
        accounts: Accounts,
        delivery: Delivery,
        rooms: Rooms,
        directory: Directory,
        nick_timeout: float,
        close: Callable[[Session, str, Event], None],
        refuse_account: Callable[[Session, str], bool] = lambda session, account: False,
        peers: Peers | None = None,
    ) -> None:
        self._peers = peers or Peers()
        self._clock = clock
        self._refuse_account = refuse_account
        self.accounts = accounts
        self._delivery = delivery
        self._rooms = rooms
        self.directory = directory
        self.nick_timeout = nick_timeout
        self._close = close

    # --- the login timer -------------------------------------------------------------------

    def start_timer(self, session: Session) -> None:
        """Give C{session} L{nick_timeout} seconds to log in."""
        if self.nick_timeout > 0:
            session.login_timer = self._clock.callLater(self.nick_timeout, self._timed_out, session)

    @staticmethod
    def cancel_timer(session: Session) -> None:
        """Stop C{session}'s login timer, if it runs."""
        if session.login_timer is not None and session.login_timer.active():
            session.login_timer.cancel()
        session.login_timer = None

    def _timed_out(self, session: Session) -> None:
        session.login_timer = None
        if session.nick is None and not session.closed:
            self._close(session, "login timed out", ErrorReply(LoginTimedOut(self.nick_timeout)))

    # --- logging in and out ----------------------------------------------------------------

    async def log_in(self, session: Session, nick: str, password: str | None) -> bool:
        """
        Make C{session} user C{nick}: a guest if the nickname is not registered, else (with the
        right C{password}) its registered user. Return whether the session is a new user now
        (False: a user already chatting proved an account, or the connection went away).
        """
        check_name(nick, "nickname")
        key = name_key(nick)
        if password is None:
            if session.nick is not None:
                raise AlreadyLoggedIn()
            account = await self.accounts.lookup(key)
            if session.closed:
                return False
            if account is not None and session.proven != key:
                raise NickRegistered(nick)
            if not await self._claim_name(session, nick, registered=account is not None):
                return False
            if account is None:
                self._take(session, nick, account_key=session.proven)
            else:
                self._take_registered(session, nick, key)
            return True
        await self.accounts.check(key, nick, password, session.address)
        if session.closed or self._refuse_account(session, key):
            return False
        if name_key(session.nick or "") != key and not await self._claim_name(session, nick, registered=True):
            return False
        if session.nick is None:
            self._take_registered(session, nick, key)
            return True
        self._evict_holder(session, nick)
        if session.nick != nick:
            self._rename(session, nick)
        self.directory.identify(session, key)
        self._delivery.to(session, LoggedIn(nick))
        self._identified(session)
        return False

    async def _claim_name(self, session: Session, nick: str, registered: bool) -> bool:
        """
        In a cluster, claim C{nick} for this process: taken from whoever holds it if C{registered}
        (its password was proven), else refused with L{NickInUse} if another process holds it.
        Return whether the session is still there to take it.
        """
        if not self._peers.shared:
            return True
        key = name_key(nick)
        if self.directory.find(nick) is None:
            taking = self._peers.take_over_name(key) if registered else self._peers.claim_name(key)
            try:
                free = await taking
            except BusUnavailable:
                raise Unavailable("servers") from None
            if not free:
                raise NickInUse(nick)
        if session.closed:
            if self.directory.find(nick) is None:
                self._peers.release_name(key)
            return False
        return True

    def _identified(self, session: Session) -> None:
        """Tell C{session}'s neighbours, here and elsewhere, which account it is identified to now."""
        assert session.nick is not None
        self._delivery.to_all(self._rooms.neighbours(session)[1:], AccountChanged(session.nick, session.account))
        self._peers.announce("account", session.nick, session.account)
        self._peers.present(session)

    async def authenticate(self, session: Session, account: str, password: str) -> None:
        """Before login, prove the password of registered C{account} (see L{requests.Authenticate})."""
        if session.nick is not None:
            raise AlreadyLoggedIn()
        check_name(account, "nickname")
        key = name_key(account)
        found = await self.accounts.check(key, account, password, session.address)
        if not session.closed and not self._refuse_account(session, key):
            session.proven = key
            self._delivery.to(session, LoggedIn(found.nick))

    def _evict_holder(self, session: Session, nick: str) -> None:
        """Close another connection that has C{nick}: its owner just proved the password here."""
        holder = self.directory.find(nick)
        if holder is not None and holder is not session:
            reason = "logged in from elsewhere"
            self._close(holder, reason, Goodbye(reason))

    def _take_registered(self, session: Session, nick: str, key: str) -> None:
        self._evict_holder(session, nick)
        self._take(session, nick, account_key=key)

    def _take(self, session: Session, nick: str, account_key: str | None) -> None:
        self._claim(session, nick)
        session.nick, session.account = nick, account_key
        self.cancel_timer(session)
        self.directory.add(session)
        self._peers.present(session)
        log.info("{nick} logged in from {peer}", nick=nick, peer=session.peer)
        self._delivery.to(session, Welcome(nick, self.directory.online, account_key))

    def _claim(self, session: Session, nick: str) -> None:
        """Raise unless C{nick} is valid and free for C{session}."""
        check_name(nick, "nickname")
        holder = self.directory.find(nick)
        if holder is not None and holder is not session:
            raise NickInUse(nick)

    def log_out(self, session: Session, reason: str) -> None:
        """Take C{session} out of its rooms (they see C{reason}) and free its nickname."""
        assert session.nick is not None
        self._rooms.leave_all(session, reason)
        self.directory.remove(session.nick)
        self._peers.release_name(name_key(session.nick))
        session.nick = session.account = None
        session.away = ""

    def give_up_account(self, session: Session) -> None:
        """C{/logout}: stop being a registered user, and log in anew within the time allowed."""
        if session.account is None:
            raise NotIdentified()
        log.info("{nick} logged out", nick=session.nick)
        self.log_out(session, "logged out")
        self._delivery.to(session, LoggedOut())
        self.start_timer(session)

    # --- accounts --------------------------------------------------------------------------

    async def register(self, session: Session, password: str) -> None:
        """Register the user's nickname with C{password}."""
        nick = session.nick
        if nick is None:
            raise NotLoggedIn()
        if session.account == name_key(nick):
            raise AlreadyRegistered(nick, yours=True)
        await self.accounts.register(name_key(nick), nick, password, session.address)
        if session.nick == nick and not session.closed:
            self.directory.identify(session, name_key(nick))
            self._identified(session)
        log.info("{nick} registered", nick=nick)
        self._delivery.to(session, Registered(nick))

    async def change_password(self, session: Session, old: str, new: str) -> None:
        """Change the password of the account C{session} is logged in to."""
        account = session.account
        if account is None:
            raise NotIdentified()
        await self.accounts.change_password(account, old, new, session.address)
        self._delivery.to(session, PasswordChanged())

    # --- nicknames and presence ------------------------------------------------------------

    async def rename(self, session: Session, new: str) -> None:
        """Rename C{session} to C{new}; registered nicknames need their password (L{log_in})."""
        old = session.nick
        if old is None:
            raise NotLoggedIn()
        if new == old:
            raise AlreadyNamed(old)
        self._claim(session, new)
        key = name_key(new)
        if key != session.account and key != name_key(old):
            if await self.accounts.lookup(key) is not None:
                raise NickRegistered(new)
            if session.closed or session.nick != old:
                return
            self._claim(session, new)
        if key != name_key(old):
            if not await self._claim_name(session, new, registered=key == session.account):
                return
            if session.nick != old:
                self._peers.release_name(key)
                return
            self._claim(session, new)
        self._rename(session, new)

    def _rename(self, session: Session, new: str) -> None:
        old = session.nick
        assert old is not None
        self.directory.remove(old)
        if name_key(old) != name_key(new):
            self._peers.release_name(name_key(old))
        session.nick = new
        self.directory.add(session)
        log.info("{old} is now known as {new}", old=old, new=new)
        self._rooms.renamed(session, old)

    def set_away(self, session: Session, message: str) -> None:
        """Mark C{session} away with C{message} (or back, if it has nothing visible); neighbours see it."""
        if session.nick is None:
            raise NotLoggedIn()
        message = sanitise(message).strip()
        session.away = message
        self._delivery.to(session, AwaySet(bool(message)))
        self._delivery.to_all(self._rooms.neighbours(session)[1:], AwayChanged(session.nick, message))
        self._peers.announce("away", session.nick, message)
        self._peers.present(session)
