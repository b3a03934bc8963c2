"""Keeping an established peering up, from the side that dials: Twisted's
``ClientService`` with a backoff policy, over an endpoint of ours (``PeerPath``).

Only the hub that dialed first reconnects, so the two sides never race each other.
``PeerPath`` chooses the way to the peer at each attempt (its stored address today;
relay circuits and punched paths come here later) and opens the link (TLS, peer-hello,
peer-ready); only an opened link counts as connected, so a refused opening is a failed
attempt that the service backs off from, and a connection the service never saw
connected never reports a loss to it.  While a connection the service did not make
carries the peering (the peer dialed us, or the handshake's own dial), the service is
stopped; when that connection goes, it starts again after one backoff delay, as after
the loss of a link of its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from twisted.application.internet import ClientService
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from blockhub.backoff import backoff_delay
from blockhub.timers import cancel

# (hub id) -> (the protocol dialed or None, a Deferred that fires with it once the
# link is open, or fails with why not)
Attempt = Callable[[str], tuple[Any, Deferred]]


@implementer(IStreamClientEndpoint)
class PeerPath:
    """An endpoint to one peer.  ``connect`` fires with the factory's protocol, made
    on the opened link's transport and told of its loss, or fails; cancelling it (the
    service stopping) closes the attempt's connection."""

    def __init__(self, peer: str, attempt: Attempt):
        self.peer = peer
        self.attempt = attempt
        self.current: Any = None  # the connection of the latest attempt

    def __repr__(self) -> str:
        return f"<PeerPath to {self.peer[:14]}…>"

    def connect(self, factory) -> Deferred:
        proto, opened = self.attempt(self.peer)
        self.current = proto

        def cancel(_: Deferred) -> None:
            opened.cancel()
            if proto is not None:
                proto.close("the peering is no longer kept up")

        result: Deferred = Deferred(cancel)
        opened.addCallback(self._adopt, factory).chainDeferred(result)
        return result

    def _adopt(self, proto, factory):
        watcher = factory.buildProtocol(proto.transport.getPeer())
        watcher.makeConnection(proto.transport)
        proto.when_lost(lambda reason: watcher.connectionLost(
            Failure(ConnectionDone(reason))))
        return watcher


class PeerLink:
    """One peering's reconnection: the service, its path, and the connection of
    another origin that carries the peering while the service rests."""

    def __init__(self, peer: str, attempt: Attempt, clock, base_delay: float = 1.0,
                 max_delay: float = 60.0, rand: Callable[[], float] = random.random):
        self.peer = peer
        self.path = PeerPath(peer, attempt)
        # Our policy rather than backoffPolicy's: half to all of the doubled delay, so
        # hubs that lost the same peer at once do not redial it in step.
        self.service = ClientService(
            self.path, Factory.forProtocol(Protocol),
            retryPolicy=lambda failures: backoff_delay(failures, base_delay, max_delay,
                                                       rand),
            clock=clock)
        self.clock = clock
        self.first_delay = lambda: backoff_delay(1, base_delay, max_delay, rand)
        self.other = None
        self.stopped = False
        self._restart: IDelayedCall | None = None

    def start(self) -> None:
        """Keep the peering up from now on (unless another connection carries it)."""
        if not (self.stopped or self.other is not None or self.service.running):
            self.service.startService()

    def up(self, proto) -> None:
        """A connection with the peer is attached; one the service did not dial
        carries the peering while it lasts."""
        if proto is not self.path.current:
            self.other = proto
            self._restart = cancel(self._restart)
            if self.service.running:
                self.service.stopService()

    def lost(self, proto) -> None:
        if proto is self.other:
            self.other = None
            if not self.stopped:
                self._restart = self.clock.callLater(self.first_delay(), self.start)

    def stop(self) -> Deferred | None:
        """No more attempts; what the service had in flight is closed."""
        self.stopped = True
        self._restart = cancel(self._restart)
        return self.service.stopService() if self.service.running else None
