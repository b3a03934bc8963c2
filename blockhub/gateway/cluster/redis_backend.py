"""The cluster's shared store in Redis: the ``Backend`` contract (``backend.py``) over
txredisapi's protocols.

One connection carries the commands; each subscription group has a subscriber
connection of its own (``redis_links.py`` keeps each up and sets it up on every
connect).  The backend is up while all of them are.  Nothing queues while it is not: a
command then fails at once with ``ClusterUnavailable``, as does one that Redis takes
too long to answer (whose connection is dropped, to be made anew) and one beyond
``max_pending`` in flight.  A Redis error reply is a ``RedisRefused``, a kind of
``ClusterUnavailable``.

Keys and channels all start with the cluster's name (``NAME:node:ID``, ``NAME:nodes``,
``NAME:hubs:ID``, ``NAME:rate:KEY``, ``NAME:CHANNEL``), so networks can share a Redis;
the steps that must be atomic are Lua scripts (``redis_scripts.py``).
"""

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import txredisapi  # type: ignore[import-untyped]
from twisted.internet.defer import Deferred, DeferredList, fail, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from blockhub.gateway.cluster import redis_scripts as scripts
from blockhub.gateway.cluster.backend import ClusterUnavailable
from blockhub.gateway.cluster.redis_links import (
    CommandsProtocol,
    Link,
    LinkSettings,
    SubscriberProtocol,
    text,
)
from blockhub.gateway.cluster.redis_url import RedisURL

log = Logger()


class RedisRefused(ClusterUnavailable):
    """Redis answered a command with an error; ``reply`` is its message."""

    def __init__(self, command: str, reply: str):
        super().__init__(f"Redis refused {command}: {reply}")
        self.reply = reply


def _ms(seconds: float) -> int:
    return max(1, int(round(seconds * 1000)))


def _table(flat: list[bytes]) -> dict[str, bytes]:
    """``[key, value, key, value...]`` as a dict."""
    return {text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


# Commands sent and not answered yet, beyond which more are refused (memory, if Redis
# stalls).  A burst of relays to another node costs two each (the budget, the
# publish): at 1,000 a gateway that read a burst of 1,250 relays in one go dropped
# some; each waiting command holds a few hundred bytes.
MAX_PENDING = 10_000


class RedisBackend:
    """The ``Backend`` on a Redis server.  ``url`` comes from ``parse_redis_url``;
    ``password`` (or None) from ``--cluster-password-file``; ``name`` is the cluster's
    name, before every key and channel."""

    def __init__(self, reactor: Any, url: RedisURL, password: bytes | None, name: str,
                 command_timeout: float = 5.0, max_pending: int = MAX_PENDING,
                 base_delay: float = 1.0, max_delay: float = 30.0,
                 rand: Callable[[], float] = random.random):
        self.reactor = reactor
        self.url = url
        self._password = password
        self.name = name
        self.command_timeout = command_timeout
        self.max_pending = max_pending
        # Connecting gives up after the command timeout too (at least a second).
        endpoint = f"{url.endpoint}:timeout={max(1, round(command_timeout))}"
        self._settings = LinkSettings(reactor, endpoint, url.shown, command_timeout,
                                      base_delay, max_delay, rand)
        self.connected = False
        self.stopping = False
        self.pending = 0
        self._links: list[Link] = []
        self._commands: Link | None = None
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
        self._commands = Link(self._settings, "commands", CommandsProtocol,
                              self._setup_commands, self._changed)
        self._links = [self._commands]
        for group, channels in subscriptions.items():
            full = [self._key(channel) for channel in channels]
            if not full:
                continue
            self._short.update(zip(full, channels, strict=True))
            self._links.append(Link(self._settings, f"group {group}", self._subscriber,
                                    partial(self._setup_group, channels=full),
                                    self._changed))
        for link in self._links:
            link.start()

    def stop(self) -> Deferred[Any]:
        self.stopping = True
        stopped = [link.stop() for link in self._links]
        return DeferredList(stopped, consumeErrors=True).addCallback(lambda _: None)

    def _auth(self, proto: Any) -> Deferred[Any]:
        if self._password is None:
            return succeed(None)
        return proto.execute_command("AUTH", self._password)

    def _setup_commands(self, proto: Any) -> Deferred[Any]:
        d: Deferred[Any] = self._auth(proto).addCallback(
            lambda _: proto.execute_command("SELECT", self.url.db))
        for script in scripts.ALL:  # loaded now, so no burst meets NOSCRIPT at first
            d.addCallback(self._load, proto, script)
        return d

    @staticmethod
    def _load(_: object, proto: Any, script: bytes) -> Deferred[Any]:
        loaded: Deferred[Any] = proto.execute_command("SCRIPT", "LOAD", script)
        return loaded

    def _subscriber(self, link: Link) -> SubscriberProtocol:
        return SubscriberProtocol(link, self._message)

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
        short = self._short.get(text(channel))
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
        name = text(args[0])
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
                    result.errback(RedisRefused(name, text(reply.value)))
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
        return self._script(scripts.SET_NODE, keys, [record, _ms(ttl), node]).addCallback(
            lambda _: None)

    def nodes(self) -> Deferred[Any]:
        return self._script(scripts.NODES, [self._key("nodes")],
                            [self._key("node:")]).addCallback(_table)

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
        return self._script(scripts.REPLACE_HUBS, [self._key(f"hubs:{node}")],
                            [_ms(ttl), *flat]).addCallback(lambda _: None)

    def hubs(self, node: str) -> Deferred[Any]:
        return self._command("HGETALL", self._key(f"hubs:{node}")).addCallback(_table)

    def publish(self, channel: str, payload: bytes) -> Deferred[Any]:
        return self._command("PUBLISH", self._key(channel), payload)

    def take(self, key: str, per_minute: float, burst: int) -> Deferred[Any]:
        return self._script(scripts.TAKE, [self._key(f"rate:{key}")],
                            [repr(float(per_minute)), int(burst)]).addCallback(
            lambda allowed: allowed == 1)

    def _nothing(self) -> Deferred[Any]:
        """A command with nothing to do: still fails while not connected."""
        if not self.connected:
            return fail(ClusterUnavailable("the cluster store is not connected"))
        return succeed(None)
