"""The cluster's shared store in Redis: the ``Backend`` contract (``backend.py``) over
txredisapi's protocols, each connection kept up by a ``ClientService``.

One connection carries the commands; each subscription group has a subscriber
connection of its own.  txredisapi neither authenticates a subscriber nor subscribes
again after a reconnect, so every connection is set up here, each time it is made:
AUTH when there is a password, then SELECT (commands) or SUBSCRIBE and every
confirmation (a group).  Only then does the connection count as up; the backend is
up while all of them are.  Nothing queues while it is not: a command then fails at
once with ``ClusterUnavailable``, as does one that Redis takes too long to answer
(whose connection is dropped, to be made anew).

Keys and channels all start with the cluster's name (``NAME:node:ID``, ``NAME:nodes``,
``NAME:hubs:ID``, ``NAME:rate:KEY``, ``NAME:CHANNEL``), so networks can share a Redis.
"""

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import txredisapi  # type: ignore[import-untyped]
from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred, DeferredList, fail, maybeDeferred, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from blockhub.backoff import backoff_delay
from blockhub.gateway.cluster.backend import ClusterUnavailable
from blockhub.gateway.cluster.redis_url import RedisURL

log = Logger()


class RedisRefused(ClusterUnavailable):
    """Redis answered a command with an error; ``reply`` is its message."""

    def __init__(self, command: str, reply: str):
        super().__init__(f"Redis refused {command}: {reply}")
        self.reply = reply


# -- scripts: each runs atomically in Redis --------------------------------------------

_SET_NODE = b"""
local ms = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ms)
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ms)
return 1
"""

# KEYS[1] the set of nodes, ARGV[1] the prefix of a node's record key.
_NODES = b"""
local found = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local record = redis.call('GET', ARGV[1] .. node)
  if record then
    found[#found + 1] = node
    found[#found + 1] = record
  end
end
return found
"""

# ARGV[1] the ttl in ms, then hub, entry, hub, entry...
_REPLACE_HUBS = b"""
redis.call('DEL', KEYS[1])
if #ARGV > 1 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 2))
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
end
return 1
"""

# A token bucket on Redis's clock: ARGV[1] tokens a minute, ARGV[2] the burst.
_TAKE = b"""
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate = tonumber(ARGV[1]) / 60
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens),
           'at', string.format('%.6f', now))
local ttl = 86400000
if rate > 0 then ttl = math.ceil((burst / rate + 1) * 1000) end
redis.call('PEXPIRE', KEYS[1], ttl)
return allowed
"""


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _ms(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


# -- the protocols: thin, they tell their link and nothing else -------------------------

class _CommandsProtocol(txredisapi.BaseRedisProtocol):  # type: ignore[misc]
    """Commands and their replies, as bytes (no decoding, no number guessing)."""

    def __init__(self, link: "_Link"):
        super().__init__(charset=None, convertNumbers=False)
        self.link = link

    def connectionMade(self) -> None:
        super().connectionMade()
        self.link.made(self)

    def connectionLost(self, why: Failure) -> None:  # type: ignore[override]
        super().connectionLost(why)
        self.link.lost(self, why)


class _SubscriberProtocol(txredisapi.SubscriberProtocol):  # type: ignore[misc]
    """One group's subscriber: messages go to ``on_message``; the confirmations of
    SUBSCRIBE fire ``subscribed`` once every channel has one."""

    def __init__(self, link: "_Link", on_message: Callable[[bytes, bytes], None]):
        super().__init__(charset=None, convertNumbers=False)
        self.link = link
        self.on_message = on_message
        self.subscribed: Deferred[None] | None = None  # once SUBSCRIBE is sent
        self.awaited: set[str] = set()

    def connectionMade(self) -> None:
        super().connectionMade()
        self.link.made(self)

    def connectionLost(self, why: Failure) -> None:  # type: ignore[override]
        super().connectionLost(why)
        if self.subscribed is not None and not self.subscribed.called:
            self.subscribed.errback(txredisapi.ConnectionError("Lost connection"))
        self.link.lost(self, why)

    def subscribe(self, channels: Sequence[str]) -> Deferred[None]:
        """SUBSCRIBE all of ``channels``; fires once Redis confirmed each."""
        self.awaited = set(channels)
        self.subscribed = Deferred()
        self.transport.write(self._build_command("SUBSCRIBE", *channels))
        return self.subscribed

    def replyReceived(self, reply: Any) -> None:
        if isinstance(reply, list) and len(reply) == 3:
            kind = _text(reply[0])
            if kind == "message":
                self.on_message(reply[1], reply[2])
                return
            if kind == "subscribe":
                self.awaited.discard(_text(reply[1]))
                if not self.awaited and self.subscribed is not None and not self.subscribed.called:
                    self.subscribed.callback(None)
                return
        waiting = self.subscribed
        if (waiting is not None and not waiting.called and isinstance(reply, Exception)
                and not self.replyQueue.waiting):
            waiting.errback(reply)  # SUBSCRIBE refused (NOAUTH, say)
            return
        self.replyQueue.put(reply)  # AUTH's answer, or an error


class _LinkFactory(Factory):
    noisy = False  # a reconnecting link would log "Starting factory" at every attempt

    def __init__(self, build: Callable[[], Any]):
        self.build = build

    def buildProtocol(self, addr: Any) -> Any:
        return self.build()


class _Link:
    """One connection kept up by its ``ClientService``, and counted as up only once
    ``setup`` (AUTH, SELECT or SUBSCRIBE) has finished on it."""

    def __init__(self, backend: "RedisBackend", label: str,
                 build: Callable[["_Link"], Any], setup: Callable[[Any], Deferred[Any]]):
        self.backend = backend
        self.label = label
        self.setup = setup
        self.proto: Any = None  # the protocol while it is up
        self.failures = 0  # attempts in a row that did not come up
        reactor = backend.reactor
        endpoint = clientFromString(reactor, backend.endpoint_description)
        self.service = ClientService(endpoint, _LinkFactory(lambda: build(self)),
                                     retryPolicy=self._delay, clock=reactor)

    def _delay(self, _attempts: int) -> float:
        # Counted here, not by ClientService (which starts again at every TCP
        # connection), so that a refused AUTH backs off too.
        self.failures += 1
        b = self.backend
        return backoff_delay(self.failures, b.base_delay, b.max_delay, b.rand)

    @property
    def up(self) -> bool:
        return self.proto is not None

    def made(self, proto: Any) -> None:
        timeout = self.backend.command_timeout
        timer = self.backend.reactor.callLater(timeout, proto.transport.abortConnection)
        d = maybeDeferred(self.setup, proto)

        def ready(_: object) -> None:
            if timer.active():
                timer.cancel()
            if proto.connected:
                self.proto = proto
                self.failures = 0
                log.info("cluster store {link} up at {url}", link=self.label,
                         url=self.backend.url.shown)
                self.backend._changed()

        def failed(why: Failure) -> None:
            late = not timer.active()
            if not late:
                timer.cancel()
            if self.backend.stopping:
                pass
            elif why.check(txredisapi.ResponseError):
                log.error("cluster store {link} at {url} refused to set up: {error}",
                          link=self.label, url=self.backend.url.shown,
                          error=_text(why.value))
            else:
                log.warn("cluster store {link} at {url} could not be set up: {error}",
                         link=self.label, url=self.backend.url.shown,
                         error="timed out" if late else _text(why.value))
            if proto.connected:
                proto.transport.abortConnection()

        d.addCallbacks(ready, failed)

    def lost(self, proto: Any, why: Failure) -> None:
        if proto is self.proto:
            self.proto = None
            if not self.backend.stopping:
                log.warn("cluster store {link} lost: {reason}", link=self.label,
                         reason=_text(why.value))
            self.backend._changed()


class RedisBackend:
    """The ``Backend`` on a Redis server.  ``url`` comes from ``parse_redis_url``;
    ``password`` (or None) from ``--cluster-password-file``; ``name`` is the cluster's
    name, before every key and channel."""

    def __init__(self, reactor: Any, url: RedisURL, password: bytes | None, name: str,
                 command_timeout: float = 5.0, max_pending: int = 1000,
                 base_delay: float = 1.0, max_delay: float = 30.0,
                 rand: Callable[[], float] = random.random):
        self.reactor = reactor
        self.url = url
        self._password = password
        self.name = name
        self.command_timeout = command_timeout
        self.max_pending = max_pending
        self.base_delay, self.max_delay, self.rand = base_delay, max_delay, rand
        # Connecting gives up after the command timeout too (at least a second).
        self.endpoint_description = f"{url.endpoint}:timeout={max(1, round(command_timeout))}"
        self.connected = False
        self.stopping = False
        self.pending = 0
        self._links: list[_Link] = []
        self._commands: _Link | None = None
        self._short: dict[str, str] = {}  # full channel -> short
        self._on_message: Callable[[str, bytes], None] = lambda channel, payload: None
        self._on_state: Callable[[bool], None] = lambda up: None
        self._shas: dict[bytes, str] = {}

    def __repr__(self) -> str:
        return f"<RedisBackend {self.name!r} at {self.url.shown}>"

    def _key(self, short: str) -> str:
        return f"{self.name}:{short}"

    # -- connections ------------------------------------------------------------------
    def start(self, subscriptions: Mapping[str, Sequence[str]],
              on_message: Callable[[str, bytes], None],
              on_state: Callable[[bool], None]) -> None:
        self._on_message, self._on_state = on_message, on_state
        self.stopping = False
        self._commands = _Link(self, "commands", _CommandsProtocol, self._setup_commands)
        self._links = [self._commands]
        for group, channels in subscriptions.items():
            full = [self._key(channel) for channel in channels]
            if not full:
                continue
            self._short.update(zip(full, channels, strict=True))
            self._links.append(_Link(self, f"group {group}", self._subscriber,
                                     partial(self._setup_group, channels=full)))
        for link in self._links:
            link.service.startService()

    def stop(self) -> Deferred[Any]:
        self.stopping = True
        stopped = [link.service.stopService() for link in self._links
                   if link.service.running]
        return DeferredList(stopped, consumeErrors=True).addCallback(lambda _: None)

    def _auth(self, proto: Any) -> Deferred[Any]:
        if self._password is None:
            return succeed(None)
        return proto.execute_command("AUTH", self._password)

    def _setup_commands(self, proto: Any) -> Deferred[Any]:
        return self._auth(proto).addCallback(
            lambda _: proto.execute_command("SELECT", self.url.db))

    def _subscriber(self, link: _Link) -> _SubscriberProtocol:
        return _SubscriberProtocol(link, self._message)

    def _setup_group(self, proto: Any, channels: list[str]) -> Deferred[Any]:
        return self._auth(proto).addCallback(lambda _: proto.subscribe(channels))

    def _changed(self) -> None:
        up = all(link.up for link in self._links) and not self.stopping
        if up != self.connected:
            self.connected = up
            self._on_state(up)

    def _message(self, channel: bytes, payload: bytes) -> None:
        # Only while the whole backend is up, as the fake does: a node that was told
        # on_state(False) hears nothing until it is told on_state(True).
        short = self._short.get(_text(channel))
        if short is not None and self.connected:
            self._on_message(short, payload)

    # -- commands ---------------------------------------------------------------------
    def _command(self, *args: Any) -> Deferred[Any]:
        """Send one command; its reply, or ``ClusterUnavailable``."""
        proto = self._commands.proto if self._commands is not None else None
        if proto is None or not self.connected:
            return fail(ClusterUnavailable("the cluster store is not connected"))
        if self.pending >= self.max_pending:
            return fail(ClusterUnavailable(
                f"{self.pending} cluster store commands are already waiting"))
        name = _text(args[0])
        try:
            sent = proto.execute_command(*args)
        except txredisapi.RedisError as e:
            return fail(ClusterUnavailable(f"the cluster store is not connected ({e})"))
        self.pending += 1
        result: Deferred[Any] = Deferred()

        def timed_out() -> None:
            log.warn("cluster store took over {timeout} s to answer {command}; "
                     "reconnecting", timeout=self.command_timeout, command=name)
            result.errback(ClusterUnavailable(
                f"the cluster store did not answer {name} in {self.command_timeout} s"))
            proto.transport.abortConnection()

        timer: IDelayedCall = self.reactor.callLater(self.command_timeout, timed_out)

        def answered(reply: Any) -> None:
            self.pending -= 1
            if timer.active():
                timer.cancel()
            if result.called:
                return
            if isinstance(reply, Failure):
                if reply.check(txredisapi.ResponseError):
                    result.errback(RedisRefused(name, _text(reply.value)))
                elif reply.check(txredisapi.RedisError):
                    result.errback(ClusterUnavailable(
                        f"the cluster store connection was lost ({reply.value})"))
                else:
                    result.errback(reply)
            else:
                result.callback(reply)

        sent.addBoth(answered)
        return result

    def _script(self, script: bytes, keys: Sequence[str], args: Sequence[Any]) -> Deferred[Any]:
        """EVALSHA, and EVAL when Redis does not have the script yet."""
        sha = self._shas.get(script)
        if sha is None:
            sha = self._shas[script] = hashlib.sha1(script).hexdigest()

        def again(why: Failure) -> Any:
            if why.check(RedisRefused) and why.value.reply.startswith("NOSCRIPT"):
                return self._command("EVAL", script, len(keys), *keys, *args)
            return why

        return self._command("EVALSHA", sha, len(keys), *keys, *args).addErrback(again)

    def set_node(self, node: str, record: bytes, ttl: float) -> Deferred[Any]:
        keys = [self._key(f"node:{node}"), self._key("nodes"), self._key(f"hubs:{node}")]
        return self._script(_SET_NODE, keys, [record, _ms(ttl), node]).addCallback(
            lambda _: None)

    def nodes(self) -> Deferred[Any]:
        def table(flat: list[bytes]) -> dict[str, bytes]:
            return {_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
        return self._script(_NODES, [self._key("nodes")], [self._key("node:")]).addCallback(
            table)

    def put_hubs(self, node: str, entries: Mapping[str, bytes]) -> Deferred[Any]:
        if not entries:
            return self._nothing()
        flat = [item for pair in entries.items() for item in pair]
        return self._command("HSET", self._key(f"hubs:{node}"), *flat).addCallback(
            lambda _: None)

    def drop_hubs(self, node: str, hubs: Sequence[str]) -> Deferred[Any]:
        if not hubs:
            return self._nothing()
        return self._command("HDEL", self._key(f"hubs:{node}"), *hubs).addCallback(
            lambda _: None)

    def replace_hubs(self, node: str, entries: Mapping[str, bytes], ttl: float) -> Deferred[Any]:
        flat = [item for pair in entries.items() for item in pair]
        return self._script(_REPLACE_HUBS, [self._key(f"hubs:{node}")],
                            [_ms(ttl), *flat]).addCallback(lambda _: None)

    def hubs(self, node: str) -> Deferred[Any]:
        def table(flat: list[bytes]) -> dict[str, bytes]:
            return {_text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
        return self._command("HGETALL", self._key(f"hubs:{node}")).addCallback(table)

    def publish(self, channel: str, payload: bytes) -> Deferred[Any]:
        return self._command("PUBLISH", self._key(channel), payload)

    def take(self, key: str, per_minute: float, burst: int) -> Deferred[Any]:
        return self._script(_TAKE, [self._key(f"rate:{key}")],
                            [repr(float(per_minute)), int(burst)]).addCallback(
            lambda allowed: allowed == 1)

    def _nothing(self) -> Deferred[Any]:
        """A command with nothing to do: still fails while not connected."""
        if not self.connected:
            return fail(ClusterUnavailable("the cluster store is not connected"))
        return succeed(None)
