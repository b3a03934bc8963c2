"""The Redis backend's connections (``redis_backend.py``): each kept up by a
``ClientService`` and set up by hand every time it is made, since txredisapi's
subscriber neither authenticates nor subscribes again after a reconnect.

A ``Link`` counts as up only once its setup (AUTH, then SELECT or SUBSCRIBE and every
confirmation) has finished, and tells its owner of each change; the protocols are thin
and tell their link and nothing else.
"""

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import txredisapi  # type: ignore[import-untyped]
from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from blockhub.backoff import backoff_delay

log = Logger()


def text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@attrs.frozen
class LinkSettings:
    """What every link of one backend shares."""

    reactor: Any
    endpoint: str  # a clientFromString description
    shown: str  # the URL, for logs (it holds no password)
    setup_timeout: float
    base_delay: float
    max_delay: float
    rand: Callable[[], float]


class CommandsProtocol(txredisapi.BaseRedisProtocol):  # type: ignore[misc]
    """Commands and their replies, as bytes (no decoding, no number guessing)."""

    def __init__(self, link: "Link"):
        super().__init__(charset=None, convertNumbers=False)
        self.link = link

    def connectionMade(self) -> None:
        super().connectionMade()
        self.link.made(self)

    def connectionLost(self, why: Failure) -> None:  # type: ignore[override]
        super().connectionLost(why)
        self.link.lost(self, why)


class SubscriberProtocol(txredisapi.SubscriberProtocol):  # type: ignore[misc]
    """One group's subscriber: messages go to ``on_message``; the confirmations of
    SUBSCRIBE fire ``subscribed`` once every channel has one."""

    def __init__(self, link: "Link", on_message: Callable[[bytes, bytes], None]):
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
            kind = text(reply[0])
            if kind == "message":
                self.on_message(reply[1], reply[2])
                return
            if kind == "subscribe":
                self.awaited.discard(text(reply[1]))
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


class Link:
    """One connection kept up by its ``ClientService``: ``build(link)`` makes its
    protocol, ``setup(protocol)`` readies it, ``changed()`` hears it go up or down."""

    def __init__(self, settings: LinkSettings, label: str, build: Callable[["Link"], Any],
                 setup: Callable[[Any], Deferred[Any]], changed: Callable[[], None]):
        self.settings = settings
        self.label = label
        self.setup = setup
        self.changed = changed
        self.proto: Any = None  # the protocol while it is up
        self.failures = 0  # attempts in a row that did not come up
        self.stopping = False
        endpoint = clientFromString(settings.reactor, settings.endpoint)
        self.service = ClientService(endpoint, _LinkFactory(lambda: build(self)),
                                     retryPolicy=self._delay, clock=settings.reactor)

    @property
    def up(self) -> bool:
        return self.proto is not None

    def start(self) -> None:
        self.stopping = False
        self.service.startService()

    def stop(self) -> Deferred[None]:
        self.stopping = True
        if not self.service.running:
            return succeed(None)
        return self.service.stopService()

    def _delay(self, _attempts: int) -> float:
        # Counted here, not by ClientService (which starts again at every TCP
        # connection), so that a refused AUTH backs off too.
        self.failures += 1
        s = self.settings
        return backoff_delay(self.failures, s.base_delay, s.max_delay, s.rand)

    def made(self, proto: Any) -> None:
        timer = self.settings.reactor.callLater(self.settings.setup_timeout,
                                                proto.transport.abortConnection)

        def ready(_: object) -> None:
            if timer.active():
                timer.cancel()
            if proto.connected:
                self.proto = proto
                self.failures = 0
                log.info("cluster store {link} up at {url}", link=self.label,
                         url=self.settings.shown)
                self.changed()

        def failed(why: Failure) -> None:
            late = not timer.active()
            if not late:
                timer.cancel()
            if not self.stopping:
                self._log_failure(why, late)
            if proto.connected:
                proto.transport.abortConnection()

        maybeDeferred(self.setup, proto).addCallbacks(ready, failed)

    def _log_failure(self, why: Failure, late: bool) -> None:
        if why.check(txredisapi.ResponseError):
            log.error("cluster store {link} at {url} refused to set up: {error}",
                      link=self.label, url=self.settings.shown, error=text(why.value))
        else:
            log.warn("cluster store {link} at {url} could not be set up: {error}",
                     link=self.label, url=self.settings.shown,
                     error="timed out" if late else text(why.value))

    def lost(self, proto: Any, why: Failure) -> None:
        if proto is self.proto:
            self.proto = None
            if not self.stopping:
                log.warn("cluster store {link} lost: {reason}", link=self.label,
                         reason=text(why.value))
            self.changed()

