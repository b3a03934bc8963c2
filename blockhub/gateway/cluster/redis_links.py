"""The connections under the cluster's Redis backend (``redis_backend.py``): thin
txredisapi protocols, and a ``Link`` for each connection, kept up by its
``ClientService`` and counted as up only once it is set up (AUTH, then SELECT or
SUBSCRIBE), every time it is made: txredisapi does neither for a subscriber."""

from collections.abc import Callable, Sequence
from typing import Any

import txredisapi  # type: ignore[import-untyped]
from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure

from blockhub.backoff import backoff_delay

log = Logger()


def text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# -- the protocols: thin, they tell their link and nothing else -------------------------

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


class LinkFactory(Factory):
    noisy = False  # a reconnecting link would log "Starting factory" at every attempt

    def __init__(self, build: Callable[[], Any]):
        self.build = build

    def buildProtocol(self, addr: Any) -> Any:
        return self.build()


class Link:
    """One connection kept up by its ``ClientService``, and counted as up only once
    ``setup`` (AUTH, SELECT or SUBSCRIBE) has finished on it."""

    def __init__(self, backend: Any, label: str,
                 build: Callable[["Link"], Any], setup: Callable[[Any], Deferred[Any]]):
        self.backend = backend
        self.label = label
        self.setup = setup
        self.proto: Any = None  # the protocol while it is up
        self.failures = 0  # attempts in a row that did not come up
        reactor = backend.reactor
        endpoint = clientFromString(reactor, backend.endpoint_description)
        self.service = ClientService(endpoint, LinkFactory(lambda: build(self)),
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
                          error=text(why.value))
            else:
                log.warn("cluster store {link} at {url} could not be set up: {error}",
                         link=self.label, url=self.backend.url.shown,
                         error="timed out" if late else text(why.value))
            if proto.connected:
                proto.transport.abortConnection()

        d.addCallbacks(ready, failed)

    def lost(self, proto: Any, why: Failure) -> None:
        if proto is self.proto:
            self.proto = None
            if not self.backend.stopping:
                log.warn("cluster store {link} lost: {reason}", link=self.label,
                         reason=text(why.value))
            self.backend._changed()
