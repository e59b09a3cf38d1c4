"""
L{RedisBus}: the L{IChatBus} over Redis, for several server processes.

Two connections per bus, each kept by a L{ClientService} (reconnecting with bounded,
jittered exponential back-off on the injected reactor) and spoken over with txredisapi's
protocol (the Twisted-native Redis client; its own pool is not used, because it queues
commands during an outage instead of failing them and does not subscribe again after one):

  - the command connection: every publish, claim, heartbeat and presence call, each one
    Lua script run with EVAL (EVALSHA once loaded) so that it is atomic;
  - the subscriber connection: SUBSCRIBE to every channel with a receiver, and to a sync
    channel of this bus's own.

Both read replies with L{ReplyReader} rather than txredisapi's reader (see there why).

Order and gaps. A publish is one script: INCR the channel's counter and PUBLISH
C{"<seq> <payload>"}, so that publish order is sequence order on every subscriber. When a
channel is subscribed (and again after every reconnection) the bus asks, over the command
connection, for a script that reads the channel's counter and PUBLISHes it on the bus's sync
channel. Redis sends a connection its messages in the order they were published, so when that
sync message arrives, every message of the channel up to the counter that this connection will
ever carry has arrived before it: a counter past the last delivered number means messages were
missed, and that is reported as a gap (L{BusStatus}). A sequence number that is not the last
plus one is reported as a gap too (published while the connection was being made again, or the
counter restarted because Redis lost its data). The same sync, with no channel, checks every
C{ping_interval} seconds that the subscriber connection still carries messages; one that stays
silent for two intervals is dropped and made again.

Keys, all under C{prefix}: C{seq:<channel>} (counters, kept), C{name:<name>} (claims, with
PX leases), C{alive:<process>} (heartbeats, with PX leases), C{presence:<process>} (a hash),
C{processes} (a set); pub/sub channels C{ch:<channel>} and C{sync:<bus id>}. The scripts build
some key names inside, so this is for one Redis server (or a replicated pair), not a Redis
Cluster. Nothing here logs a payload.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import txredisapi
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import protocol
from twisted.internet.defer import CancelledError, Deferred, fail, maybeDeferred, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.interfaces import IDelayedCall, ITCPTransport
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from chat_twisted.bus import BusStatus, BusUnavailable, IChatBus, ProcessPresence, Receiver
from chat_twisted.bus._subscriptions import Subscriptions, report

log = Logger()

#: Where C{--bus redis://} points when it names no host.
DEFAULT_URL = "redis://127.0.0.1:6379/0"

#: How many channels one sync script reads at most.
SYNC_CHUNK = 500

# --- the scripts ----------------------------------------------------------------------------

#: KEYS[1] the channel's counter; ARGV[1] the pub/sub channel, ARGV[2] the payload.
PUBLISH_SCRIPT = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], string.format('%d', seq) .. ' ' .. ARGV[2])
return seq
"""

#: KEYS the counters of some channels; ARGV[1] the bus's sync channel, ARGV[2] a token.
SYNC_SCRIPT = """
local parts = {ARGV[2]}
for _, key in ipairs(KEYS) do
  parts[#parts + 1] = redis.call('GET', key) or '0'
end
redis.call('PUBLISH', ARGV[1], table.concat(parts, ' '))
return #KEYS
"""

#: KEYS[1] the name's key; ARGV[1] the owner, ARGV[2] the lease in milliseconds.
CLAIM_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

#: KEYS the names' keys; ARGV[1] the owner, ARGV[2] the lease in milliseconds. Returns the
#: positions (from 1) of the keys renewed.
RENEW_SCRIPT = """
local held = {}
for position, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    held[#held + 1] = position
  end
end
return held
"""

#: KEYS[1] the name's key; ARGV[1] the owner.
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: KEYS[1] the process's heartbeat key, KEYS[2] the set of processes; ARGV[1] the process id,
#: ARGV[2] the lease in milliseconds. Returns 1 if the previous lease was still running.
HEARTBEAT_SCRIPT = """
local running = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
return running
"""

#: KEYS[1] the process's presence hash, KEYS[2] the set of processes; ARGV[1] the process id,
#: ARGV[2] how many entries to set, then that many field/value pairs, then fields to remove.
PRESENCE_UPDATE_SCRIPT = """
redis.call('SADD', KEYS[2], ARGV[1])
local count = tonumber(ARGV[2])
for i = 0, count - 1 do
  redis.call('HSET', KEYS[1], ARGV[3 + 2 * i], ARGV[4 + 2 * i])
end
for i = 3 + 2 * count, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
return count
"""

#: KEYS[1] the set of processes; ARGV[1] the key prefix. Returns process id, running (0/1),
#: presence fields and values, for each process.
PRESENCE_SCRIPT = """
local result = {}
for _, process in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  result[#result + 1] = process
  result[#result + 1] = redis.call('EXISTS', ARGV[1] .. 'alive:' .. process)
  result[#result + 1] = redis.call('HGETALL', ARGV[1] .. 'presence:' .. process)
end
return result
"""

#: KEYS[1] the heartbeat key, KEYS[2] the presence hash, KEYS[3] the set of processes;
#: ARGV[1] the process id. Returns nil, or the forgotten presence fields and values.
FORGET_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
if redis.call('SREM', KEYS[3], ARGV[1]) == 0 then
  return false
end
local entries = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
return entries
"""


# --- URLs -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where a Redis server is and how to log in to it, from a C{redis://} URL."""

    host: str
    port: int
    db: int
    username: str | None = None
    password: str | None = None


def is_redis_url(text: str) -> bool:
    """Whether C{text} is a C{redis://} URL."""
    return text.startswith("redis://")


def parse_redis_url(url: str) -> RedisAddress:
    """
    Read C{redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]} (defaults 127.0.0.1, 6379, 0); raise
    ValueError, naming the problem and never the password, for anything else.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis":
        raise ValueError(f"a Redis URL starts with redis://, not {parts.scheme or 'nothing'}://")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"bad port in {redacted(url)}") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the database in {redacted(url)} must be a number")
    return RedisAddress(
        host=parts.hostname or "127.0.0.1",
        port=port,
        db=int(path or 0),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def redacted(url: str) -> str:
    """Return C{url} with any password replaced by C{***}, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo.split(':', 1)[0]}:***@{host}"))


def encode_command(*words: bytes | str | int) -> bytes:
    """Return one Redis command in RESP, as written on a connection."""
    encoded = [word if isinstance(word, bytes) else str(word).encode("utf-8") for word in words]
    return b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(word), word) for word in encoded)


def _milliseconds(seconds: float) -> int:
    """A lease in whole milliseconds, at least one."""
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    """A Redis reply element as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _pairs(flat: list[Any]) -> dict[str, bytes]:
    """Turn an HGETALL reply (field, value, field, value...) into a dict."""
    return {_text(flat[i]): bytes(flat[i + 1]) for i in range(0, len(flat), 2)}


# --- reading replies ------------------------------------------------------------------------


class ReplyReader:
    """
    Reads RESP2 replies from bytes fed in pieces: simple strings as str, errors as
    txredisapi's ResponseError, integers, bulk strings as bytes (None for nil), arrays as
    lists (None for nil), nested as deep as Redis sends them.

    txredisapi's own pure-Python reader goes back to the reactor after every bulk string that
    is followed by more data (three reactor turns per pub/sub message), which made a busy
    subscriber connection the bottleneck; this one reads every complete reply at once.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Add C{data}; return the replies now complete, in order. Raise ValueError on bytes that are not RESP."""
        self._buffer += data
        replies = []
        position = 0
        while True:
            parsed = self._parse(position)
            if parsed is None:
                break
            reply, position = parsed
            replies.append(reply)
        del self._buffer[:position]
        return replies

    def _parse(self, start: int) -> tuple[Any, int] | None:
        """The reply beginning at C{start} and where the next begins, or None if it is not all here yet."""
        buffer = self._buffer
        end = buffer.find(b"\r\n", start)
        if end < 0:
            return None
        kind, line, after = buffer[start], bytes(buffer[start + 1:end]), end + 2
        if kind == 0x2B:  # +
            return line.decode("utf-8", "replace"), after
        if kind == 0x2D:  # -
            text = line.decode("utf-8", "replace")
            return txredisapi.ResponseError(text[4:] if text.startswith("ERR ") else text), after
        if kind == 0x3A:  # :
            return int(line), after
        if kind == 0x24:  # $
            length = int(line)
            if length < 0:
                return (None, after)
            if len(buffer) < after + length + 2:
                return None
            return bytes(buffer[after:after + length]), after + length + 2
        if kind == 0x2A:  # *
            count = int(line)
            if count < 0:
                return (None, after)
            items = []
            for _ in range(count):
                parsed = self._parse(after)
                if parsed is None:
                    return None
                item, after = parsed
                items.append(item)
            return items, after
        raise ValueError(f"not a RESP reply type: {kind!r}")


# --- the connections ------------------------------------------------------------------------


class _Factory(protocol.Factory):
    """
    Builds txredisapi protocols for one of a bus's connections, giving each the bus. It also
    answers the calls txredisapi makes on its factory when logging in fails.
    """

    noisy = False
    isLazy = False

    def __init__(self, bus: RedisBus, kind: type[_CommandProtocol] | type[_SubscriberProtocol]) -> None:
        self.bus = bus
        self.kind = kind

    def buildProtocol(self, addr: Any) -> Any:
        address = self.bus.address
        built = self.kind(
            charset=None,
            replyTimeout=self.bus.reply_timeout,
            password=address.password,
            dbid=address.db or None,
            convertNumbers=False,
            username=address.username,
        )
        built.factory = self
        built.bus = self.bus
        return built

    def stopTrying(self) -> None:
        """Logging in failed; the ClientService goes on trying with back-off."""

    def connectionError(self, why: str) -> None:
        """Logging in failed (AUTH or SELECT): log why (txredisapi's words, which hold no password); a start fails."""
        log.error("Redis at {address} refused the bus: {why}", address=self.bus.description, why=why)
        self.bus._reactor.callLater(0, self.bus._start_failed, why)


class _Protocol(txredisapi.RedisProtocol):
    """txredisapi's protocol (commands, reply queue, timeouts, AUTH, SELECT), reading replies with L{ReplyReader}."""

    bus: RedisBus

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reader = ReplyReader()

    def dataReceived(self, data: bytes, unpause: bool = False) -> None:
        try:
            replies = self._reader.feed(data)
        except ValueError:
            log.error("Redis at {address} sent something that is not RESP; reconnecting", address=self.bus.description)
            self.transport.abortConnection()
            return
        if replies:
            self.bus.batch_runner(lambda: self._handle(replies))

    def _handle(self, replies: list[Any]) -> None:
        for reply in replies:
            self.replyReceived(reply)


class _CommandProtocol(_Protocol):
    """The command connection: tells its bus when it is ready (logged in) and when it is lost."""

    def connectionMade(self) -> Any:
        result = super().connectionMade()
        self.whenConnected().addCallback(lambda _: self.bus._command_ready(self))
        return result

    def connectionLost(self, why: Failure) -> None:
        self.bus._command_lost(self, why)
        super().connectionLost(why)


class _SubscriberProtocol(_Protocol):
    """
    The subscriber connection. Pub/sub pushes (subscribe and unsubscribe confirmations,
    messages) go to its bus; any other reply (to CLIENT SETNAME) to txredisapi's reply queue.
    """

    _PUSHES = (b"message", b"subscribe", b"unsubscribe")

    def connectionMade(self) -> Any:
        result = super().connectionMade()
        self.whenConnected().addCallback(lambda _: self.bus._subscriber_ready(self))
        return result

    def replyReceived(self, reply: Any) -> None:
        if isinstance(reply, list) and len(reply) == 3 and reply[0] in self._PUSHES:
            self.bus._subscriber_push(self, reply)
        else:
            super().replyReceived(reply)

    def connectionLost(self, why: Failure) -> None:
        self.bus._subscriber_lost(self, why)
        super().connectionLost(why)


@dataclass(slots=True)
class _Batch:
    """
    One SUBSCRIBE written on the subscriber connection: its channels, how many confirmations
    are still due, and whether it is the first of its connection.
    """

    channels: list[str]
    due: int
    first: bool


@implementer(IChatBus)
class RedisBus:
    """
    An L{IChatBus} on one Redis server. It owns its two Redis connections, its subscriptions
    and the timers that keep them (on C{reactor}); it writes to no chat connection.

    C{url} is a C{redis://} URL; C{prefix} begins every key and channel name (processes of one
    cluster share it; tests use a random one). C{retry_initial} and C{retry_max} bound the
    back-off between reconnection attempts, C{connect_timeout} one attempt and L{start},
    C{reply_timeout} each command (then the connection is dropped and made again), and
    C{ping_interval} how often the subscriber connection is checked.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        prefix: str = "chat:",
        reactor: Any = None,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
        connect_timeout: float = 10.0,
        reply_timeout: float = 10.0,
        ping_interval: float = 5.0,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.address = parse_redis_url(url)
        self.description = redacted(url)
        self.prefix = prefix
        self.reply_timeout = reply_timeout
        self.id = secrets.token_hex(8)
        #: The names of this bus's connections in Redis's CLIENT LIST.
        self.command_name = f"chat_twisted-cmd-{self.id}"
        self.subscriber_name = f"chat_twisted-sub-{self.id}"
        self._reactor = reactor
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval
        self._channel_prefix = f"{prefix}ch:".encode("utf-8")
        self._sync_channel = f"{prefix}sync:{self.id}".encode("utf-8")

        def retry_policy() -> Callable[[int], float]:
            return backoffPolicy(retry_initial, retry_max, factor=2.0, jitter=lambda: random.uniform(0, retry_initial))

        endpoint = HostnameEndpoint(reactor, self.address.host, self.address.port, timeout=connect_timeout)
        self._command_service = ClientService(
            endpoint, _Factory(self, _CommandProtocol), retryPolicy=retry_policy(), clock=reactor
        )
        self._subscriber_service = ClientService(
            endpoint, _Factory(self, _SubscriberProtocol), retryPolicy=retry_policy(), clock=reactor
        )
        self._subscriptions = Subscriptions()
        self._callbacks: list[Callable[[BusStatus], object]] = []
        #: Called with a function that handles everything one read from Redis brought (several
        #: messages, maybe): the core sets it, so that their deliveries are flushed together.
        self.batch_runner: Callable[[Callable[[], None]], None] = lambda handle: handle()
        self._running = False
        self._connected = False  # as last reported: both connections up and every channel synced
        self._ever_connected = False
        self._starting: Deferred[None] | None = None
        self._start_timer: IDelayedCall | None = None
        self._command: Any = None  # the command protocol, once logged in
        self._subscriber: Any = None  # the subscriber protocol, once logged in
        self._confirmations: deque[tuple[bytes, bytes, _Batch | None]] = deque()
        self._first_batch_done = False
        self._run_id: str | None = None  # which run of the Redis server the command connection last reached
        self._server_checked = False
        self._unsynced: set[str] = set()  # channels not yet synced since the subscriber (re)connected
        self._sync_wanted: set[str] = set()
        self._syncs: dict[int, list[str]] = {}  # token -> channels, for syncs under way
        self._next_token = 0
        self._ping_token: int | None = None
        self._ping_sent = 0.0
        self._pinger = LoopingCall(self._ping)
        self._pinger.clock = reactor
        self._pending_gaps: set[str] = set()
        self._beating: set[str] = set()

    # --- keys -------------------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def _pubsub_channel(self, channel: str) -> bytes:
        return self._channel_prefix + channel.encode("utf-8")

    # --- lifetime ---------------------------------------------------------------------------

    def start(self) -> Deferred[None]:
        """
        Connect both connections and sync. Fires with None once the bus works; fails with
        L{BusUnavailable} (and stops) if the first attempt to connect fails or it is not
        working within C{connect_timeout}.
        """
        if self._running:
            return fail(BusUnavailable("the bus was started already"))
        self._running = True
        starting = self._starting = Deferred()
        self._start_timer = self._reactor.callLater(self._connect_timeout, self._start_timed_out)
        self._command_service.whenConnected(failAfterFailures=1).addErrback(self._first_attempt_failed)
        self._subscriber_service.whenConnected(failAfterFailures=1).addErrback(self._first_attempt_failed)
        self._command_service.startService()
        self._subscriber_service.startService()
        self._pinger.start(self._ping_interval, now=False)
        return starting

    def _start_timed_out(self) -> None:
        self._start_timer = None
        self._start_failed("no answer in time")

    def _first_attempt_failed(self, failure: Failure) -> None:
        # Called from inside a ClientService state change, which must end before it is stopped.
        if not failure.check(CancelledError):
            self._reactor.callLater(0, self._start_failed, failure.getErrorMessage())

    def _start_failed(self, why: str) -> None:
        """Fail a start under way (not one done already), and stop."""
        starting, self._starting = self._starting, None
        if starting is None:
            return
        log.error("Cannot reach Redis at {address}: {why}", address=self.description, why=why)
        self.stop()
        starting.errback(BusUnavailable(f"cannot reach Redis at {self.description}: {why}"))

    def stop(self) -> Deferred[None]:
        """
        Close both connections and stop reconnecting; pending subscribes fail with
        CancelledError, and a start not yet done with L{BusUnavailable}.
        """
        if not self._running:
            return succeed(None)
        self._running = False
        self._connected = False
        if self._start_timer is not None and self._start_timer.active():
            self._start_timer.cancel()
        self._start_timer = None
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.errback(BusUnavailable("the bus was stopped before it connected"))
        if self._pinger.running:
            self._pinger.stop()
        self._subscriptions.cancel_all()
        stopped = [self._command_service.stopService(), self._subscriber_service.stopService()]
        d: Deferred[Any] = stopped[0]
        return d.addCallback(lambda _: stopped[1]).addCallback(lambda _: None)

    def on_state(self, callback: Callable[[BusStatus], object]) -> None:
        """Call C{callback} with a L{BusStatus} when the link is lost, restored, or shows a gap."""
        self._callbacks.append(callback)

    # --- channels ---------------------------------------------------------------------------

    def publish(self, channel: str, payload: bytes) -> Deferred[int]:
        """INCR the channel's counter and PUBLISH C{"<seq> <payload>"}, in one script; fires with seq."""
        keys = [self._key("seq", channel)]
        return self._eval(PUBLISH_SCRIPT, keys, [self._pubsub_channel(channel), bytes(payload)]).addCallback(int)

    def subscribe(self, channel: str, receiver: Receiver) -> Deferred[int]:
        """Add C{receiver}; a new channel is subscribed to and synced before the Deferred fires."""
        if not self._running:
            return fail(BusUnavailable("the bus is not running"))
        waiter, new = self._subscriptions.add(channel, receiver)
        if new and self._subscriber is not None:
            self._write_subscribe([channel], first=False)
        return waiter

    def unsubscribe(self, channel: str, receiver: Receiver) -> None:
        """Remove C{receiver}; the last one of a channel unsubscribes from it."""
        if not self._subscriptions.remove(channel, receiver):
            return
        self._unsynced.discard(channel)
        self._sync_wanted.discard(channel)
        if self._subscriber is not None:
            name = self._pubsub_channel(channel)
            self._confirmations.append((b"unsubscribe", name, None))
            self._subscriber.transport.write(encode_command("UNSUBSCRIBE", name))
        self._check_connected()

    # --- names and processes ------------------------------------------------------------------

    def claim(self, name: str, owner: str, lease_seconds: float) -> Deferred[bool]:
        """Take C{name} for C{owner} (atomic: free, or already C{owner}'s) with a PX lease."""
        keys = [self._key("name", name)]
        return self._eval(CLAIM_SCRIPT, keys, [owner, _milliseconds(lease_seconds)]).addCallback(bool)

    def renew(self, names: Iterable[str], owner: str, lease_seconds: float) -> Deferred[frozenset[str]]:
        """Compare-and-renew each of C{names}; fires with those C{owner} still held."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return succeed(frozenset())
        keys = [self._key("name", name) for name in wanted]
        return self._eval(RENEW_SCRIPT, keys, [owner, _milliseconds(lease_seconds)]).addCallback(
            lambda positions: frozenset(wanted[int(position) - 1] for position in positions)
        )

    def release(self, name: str, owner: str) -> Deferred[bool]:
        """Compare-and-delete C{name}."""
        return self._eval(RELEASE_SCRIPT, [self._key("name", name)], [owner]).addCallback(bool)

    def owner_of(self, name: str) -> Deferred[str | None]:
        """GET the name's owner."""
        return self._command_call("GET", self._key("name", name)).addCallback(
            lambda owner: None if owner is None else _text(owner)
        )

    def heartbeat(self, process_id: str, lease_seconds: float) -> Deferred[bool]:
        """Set the process's heartbeat key with a PX lease; False if this bus's previous one had ended."""

        def running(was: int) -> bool:
            first = process_id not in self._beating
            self._beating.add(process_id)
            return bool(was) or first

        keys = [self._key("alive", process_id), f"{self.prefix}processes"]
        return self._eval(HEARTBEAT_SCRIPT, keys, [process_id, _milliseconds(lease_seconds)]).addCallback(running)

    def update_presence(self, process_id: str, changes: Mapping[str, bytes | None]) -> Deferred[None]:
        """HSET and HDEL the process's presence hash, in one script."""
        sets = [(key, value) for key, value in changes.items() if value is not None]
        removals = [key for key, value in changes.items() if value is None]
        arguments: list[Any] = [process_id, len(sets)]
        for key, value in sets:
            arguments += [key, bytes(value)]
        arguments += removals
        keys = [self._key("presence", process_id), f"{self.prefix}processes"]
        return self._eval(PRESENCE_UPDATE_SCRIPT, keys, arguments).addCallback(lambda _: None)

    def presence(self) -> Deferred[dict[str, ProcessPresence]]:
        """Read every known process's heartbeat and presence hash, in one script."""

        def parse(flat: list[Any]) -> dict[str, ProcessPresence]:
            found = {}
            for i in range(0, len(flat), 3):
                found[_text(flat[i])] = ProcessPresence(alive=bool(flat[i + 1]), entries=_pairs(flat[i + 2]))
            return dict(sorted(found.items()))

        return self._eval(PRESENCE_SCRIPT, [f"{self.prefix}processes"], [self.prefix]).addCallback(parse)

    def forget_process(self, process_id: str) -> Deferred[dict[str, bytes] | None]:
        """If its heartbeat key is gone, remove the process and its presence hash, in one script."""
        keys = [self._key("alive", process_id), self._key("presence", process_id), f"{self.prefix}processes"]
        return self._eval(FORGET_SCRIPT, keys, [process_id]).addCallback(
            lambda entries: None if entries is None else _pairs(entries)
        )

    # --- the command connection ---------------------------------------------------------------

    def _command_call(self, *words: Any) -> Deferred[Any]:
        """Run one command on the command connection, or fail with L{BusUnavailable} at once without one."""
        command = self._command
        if not self._running or command is None:
            return fail(BusUnavailable(f"no connection to Redis at {self.description}"))
        return self._guard(maybeDeferred(command.execute_command, *words))

    def _eval(self, script: str, keys: list[str], arguments: list[Any]) -> Deferred[Any]:
        """Run a Lua script on the command connection (see L{_command_call})."""
        command = self._command
        if not self._running or command is None:
            return fail(BusUnavailable(f"no connection to Redis at {self.description}"))
        return self._guard(maybeDeferred(command.eval, script, keys, arguments))

    def _guard(self, d: Deferred[Any]) -> Deferred[Any]:
        """Turn a lost connection or a timeout into L{BusUnavailable}."""

        def translate(failure: Failure) -> Failure:
            if failure.check(txredisapi.ConnectionError):
                raise BusUnavailable(f"lost the connection to Redis at {self.description}") from failure.value
            if failure.check(txredisapi.RedisError):
                # e.g. LOADING after a restart, or OOM: Redis's words, which hold no payload.
                why = failure.getErrorMessage()
                raise BusUnavailable(f"Redis at {self.description} refused: {why}") from failure.value
            return failure

        return d.addErrback(translate)

    def _command_ready(self, command: Any) -> None:
        if not self._running:
            command.transport.loseConnection()
            return
        _keepalive(command)
        command.execute_command("CLIENT", "SETNAME", self.command_name).addErrback(
            lambda failure: log.warn("CLIENT SETNAME failed: {why}", why=failure.getErrorMessage())
        )
        self._command = command
        log.info("Bus command connection to Redis at {address} is up", address=self.description)
        self._server_checked = False
        command.execute_command("INFO", "server").addCallbacks(self._server_seen, self._server_unseen)
        self._flush_syncs()
        self._check_connected()

    def _server_seen(self, info: Any) -> None:
        """
        Note which run of the Redis server this is: after a restart that lost its data the
        channels' counters start again, and may even come back to the very numbers this bus
        last saw, so every channel is reported as having missed messages.
        """
        text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
        run_id = next((line.partition(":")[2].strip() for line in text.splitlines() if line.startswith("run_id:")), None)
        if run_id is not None and self._run_id is not None and run_id != self._run_id:
            log.info("Redis at {address} restarted; every channel may have missed messages", address=self.description)
            self._pending_gaps.update(self._subscriptions)
        self._run_id = run_id or self._run_id
        self._server_unseen(None)

    def _server_unseen(self, failure: Failure | None) -> None:
        self._server_checked = True
        self._check_connected()

    def _command_lost(self, command: Any, why: Failure) -> None:
        if command is not self._command:
            return
        self._command = None
        self._ping_token = None
        self._lost("command", why)

    # --- the subscriber connection ------------------------------------------------------------

    def _subscriber_ready(self, subscriber: Any) -> None:
        if not self._running:
            subscriber.transport.loseConnection()
            return
        _keepalive(subscriber)
        self._subscriber = subscriber
        self._confirmations.clear()
        self._syncs.clear()
        self._sync_wanted.clear()
        self._ping_token = None
        self._first_batch_done = False
        channels = list(self._subscriptions)
        self._unsynced = set(channels)
        subscriber.execute_command("CLIENT", "SETNAME", self.subscriber_name).addErrback(
            lambda failure: log.warn("CLIENT SETNAME failed: {why}", why=failure.getErrorMessage())
        )
        self._write_subscribe(channels, first=True)
        log.info(
            "Bus subscriber connection to Redis at {address} is up; subscribing to {count} channels",
            address=self.description, count=len(channels),
        )

    def _write_subscribe(self, channels: list[str], first: bool) -> None:
        """SUBSCRIBE to C{channels} (the first batch of a connection also to the sync channel)."""
        names = [self._pubsub_channel(channel) for channel in channels]
        if first:
            names.insert(0, self._sync_channel)
        if not names:
            return
        batch = _Batch(channels=list(channels), due=len(names), first=first)
        for name in names:
            self._confirmations.append((b"subscribe", name, batch))
        self._subscriber.transport.write(encode_command("SUBSCRIBE", *names))

    def _subscriber_push(self, subscriber: Any, push: list[Any]) -> None:
        """One pub/sub push from the subscriber connection: a confirmation or a message."""
        if subscriber is not self._subscriber:
            return
        kind, name, body = push
        if kind == b"message":
            if name == self._sync_channel:
                self._sync_received(body)
            elif name.startswith(self._channel_prefix):
                self._message_received(name[len(self._channel_prefix):].decode("utf-8"), body)
            return
        expected = self._confirmations.popleft() if self._confirmations else None
        if expected is None or expected[:2] != (kind, name):
            log.error("Redis confirmed {kind} out of turn; making the subscriber connection again", kind=kind)
            subscriber.transport.abortConnection()
            return
        batch = expected[2]
        if batch is None:
            return
        batch.due -= 1
        if batch.due:
            return
        self._want_sync([channel for channel in batch.channels if channel in self._subscriptions])
        if batch.first:
            self._first_batch_done = True
            self._check_connected()

    def _message_received(self, channel: str, body: bytes) -> None:
        seq, _, payload = body.partition(b" ")
        try:
            number = int(seq)
        except ValueError:
            log.error("A message on bus channel {channel} has no sequence number; dropped", channel=channel)
            return
        if self._subscriptions.deliver(channel, number, payload):
            self._gap(channel)

    def _subscriber_lost(self, subscriber: Any, why: Failure) -> None:
        if subscriber is not self._subscriber:
            return
        self._subscriber = None
        self._first_batch_done = False
        self._confirmations.clear()
        self._syncs.clear()
        self._sync_wanted.clear()
        self._ping_token = None
        self._lost("subscriber", why)

    # --- syncs, pings and the reported state ---------------------------------------------------

    def _want_sync(self, channels: list[str]) -> None:
        self._sync_wanted.update(channels)
        self._flush_syncs()

    def _flush_syncs(self) -> None:
        """Send the syncs wanted, once both connections are there."""
        if self._command is None or self._subscriber is None or not self._sync_wanted:
            return
        wanted = sorted(self._sync_wanted)
        self._sync_wanted.clear()
        for start in range(0, len(wanted), SYNC_CHUNK):
            self._send_sync(wanted[start:start + SYNC_CHUNK])

    def _send_sync(self, channels: list[str]) -> int:
        """Ask for the counters of C{channels} on the sync channel; return the sync's token."""
        self._next_token += 1
        token = self._next_token
        self._syncs[token] = channels

        def failed(failure: Failure) -> None:
            # The command connection was lost: sync again once it is back.
            if token == self._ping_token:
                self._ping_token = None
            if self._syncs.pop(token, None) is not None:
                self._sync_wanted.update(channel for channel in channels if channel in self._subscriptions)
            log.warn("A bus sync failed: {why}", why=failure.getErrorMessage())

        keys = [self._key("seq", channel) for channel in channels]
        self._eval(SYNC_SCRIPT, keys, [self._sync_channel, token]).addErrback(failed)
        return token

    def _sync_received(self, body: bytes) -> None:
        words = body.split(b" ")
        channels = self._syncs.pop(int(words[0]), None)
        if channels is None:
            return
        if int(words[0]) == self._ping_token:
            self._ping_token = None
        for channel, counter in zip(channels, words[1:]):
            if channel in self._subscriptions and self._subscriptions.synced(channel, int(counter)):
                self._gap(channel)
            self._unsynced.discard(channel)
        self._check_connected()

    def _ping(self) -> None:
        """
        Every C{ping_interval}: send the syncs still wanted (one that failed is tried again),
        and an empty sync, or drop the subscriber connection if the last one never came back.
        """
        if self._subscriber is None or self._command is None or not self._first_batch_done:
            return
        self._flush_syncs()
        if self._ping_token is None:
            self._ping_token = self._send_sync([])
            self._ping_sent = self._reactor.seconds()
        elif self._reactor.seconds() - self._ping_sent >= 2 * self._ping_interval:
            log.warn(
                "The bus subscriber connection to Redis at {address} carries nothing; making it again",
                address=self.description,
            )
            self._subscriber.transport.abortConnection()

    def _gap(self, channel: str) -> None:
        log.debug("Bus channel {channel} missed messages", channel=channel)
        if self._connected:
            self._report(BusStatus(connected=True, gaps=frozenset([channel])))
        else:
            self._pending_gaps.add(channel)

    def _check_connected(self) -> None:
        """Report the link restored once both connections are up and every channel is synced."""
        if self._connected or not self._running:
            return
        if self._command is None or self._subscriber is None or not self._first_batch_done or self._unsynced:
            return
        if not self._server_checked:
            return
        self._connected = True
        gaps, self._pending_gaps = frozenset(self._pending_gaps), set()
        if self._ever_connected:
            log.info(
                "Bus link to Redis at {address} restored; {count} channels missed messages",
                address=self.description, count=len(gaps),
            )
            self._report(BusStatus(connected=True, gaps=gaps))
        self._ever_connected = True
        if self._start_timer is not None and self._start_timer.active():
            self._start_timer.cancel()
        self._start_timer = None
        starting, self._starting = self._starting, None
        if starting is not None:
            log.info(
                "Bus connected to Redis at {address} (prefix {prefix})", address=self.description, prefix=self.prefix
            )
            starting.callback(None)

    def _lost(self, which: str, why: Failure) -> None:
        if not self._running or not self._connected:
            return
        self._connected = False
        log.warn(
            "Bus lost its {which} connection to Redis at {address} ({why}); reconnecting with back-off",
            which=which, address=self.description, why=why.getErrorMessage(),
        )
        self._report(BusStatus(connected=False))

    def _report(self, status: BusStatus) -> None:
        report(self._callbacks, status)


def _keepalive(connection: Any) -> None:
    """Turn on TCP keepalive where the transport has it."""
    transport = connection.transport
    if ITCPTransport.providedBy(transport):
        transport.setTcpKeepAlive(True)
