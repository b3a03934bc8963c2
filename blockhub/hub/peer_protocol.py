"""A direct hub-to-hub connection: frames in, calls on the peers manager out.

The dialer pins the peer's key in TLS and opens with ``peer-hello`` (an established or
accepted peering) or ``peer-request`` (open mode: a handshake on the direct
connection).  The acceptor answers ``peer-ready`` with connected, pending or rejected;
only a connected link carries ``message`` and ``ack``.

Anyone who can reach the listener completes TLS with any Ed25519 key, so until a
connection has opened (its first frame decided) it holds one of a few places, per
source address and in total (``PeerFactory.openings``), and it must open within
``first_frame_timeout`` of TLS; over a cap a new connection is aborted at once.
Established links are never counted, so a flood of silent connections cannot touch
them.  What the listener refused is counted in ``PeerFactory.refusals``.
"""

import collections

from twisted.internet.protocol import Factory
from twisted.logger import Logger

from blockhub.hub.peer_session import PeerSession
from blockhub.net import opening
from blockhub.net.framed import FramedProtocol
from blockhub.net.opening import Openings
from blockhub.wire import features
from blockhub.wire.messages import MAX_REASON

log = Logger()

SEND_QUEUE_FULL = "SendQueueFull"
CLOSE_TIMEOUT = "CloseTimeout"


class PeerProtocol(FramedProtocol):
    """Frames in and out; the connection's life is its ``session`` (``peer_session``):
    ``peers`` carries messages on a linked connection, ``opener`` (the handshakes)
    decides whether an accepted connection's peer-hello or peer-request makes one, and
    ``first`` is the dialer's opening frame."""

    def __init__(self, peers, opener, first=None, listener=None,
                 spoken: tuple[str, ...] | None = features.SPOKEN, **kw):
        super().__init__(**kw)
        self.listener = listener  # the PeerFactory that accepted us, for its counts
        self.session = PeerSession(self, peers, opener, first, self.clock,
                                   self.limits.first_frame_timeout, self.count,
                                   spoken=spoken)
        self.sent_seq = 0  # the highest of our messages sent on this connection
        self.acked_seq = 0  # the highest of them the peer acknowledged on it
        self._loss_listeners: list = []

    @property
    def ready(self):
        """The dialer's answer: fires with (status, reason), or fails with Refused."""
        return self.session.ready

    def connectionMade(self):
        super().connectionMade()
        if self.listener is not None and not self.closing_reason:
            self.session.slot = self.listener.accepted(self)

    def secured(self):
        if not self.closing_reason:
            self.session.secured()

    def count(self, kind: str):
        if self.listener is not None:
            self.listener.refusals[kind] += 1

    def send_queue_full(self):
        self.count(SEND_QUEUE_FULL)

    def close_timed_out(self):
        self.count(CLOSE_TIMEOUT)

    def drained(self):
        self.session.drained()

    def tell(self, reason: str):
        """A peer is told why in a fatal ``error`` (a gateway says ``refused``)."""
        self.send("error", reason=reason[:MAX_REASON], fatal=True)

    def messageReceived(self, message):
        self.session.frame(message)

    def when_lost(self, listener) -> None:
        """Call ``listener(reason)`` once the connection is gone (how the service that
        keeps a peering up hears of its link's end)."""
        self._loss_listeners.append(listener)

    def lost(self, reason):
        self.session.lost(reason)
        for listener in self._loss_listeners:
            listener(reason)


class PeerFactory(Factory):
    """Builds acceptor-side peer protocols for the hub's --listen endpoint, and holds
    what the listener counts: ``openings`` (connections not yet open, per address and
    in total; ``openings.status()`` for the hub's status) and ``refusals`` (kind ->
    count: TooManyFromAddress, TooManyUnopened, FirstFrameTimeout, SendQueueFull,
    CloseTimeout)."""

    noisy = False

    def __init__(self, peers, opener, clock, limits,
                 spoken: tuple[str, ...] | None = features.SPOKEN):
        self.peers = peers
        self.opener = opener
        self.kw = dict(clock=clock, limits=limits, spoken=spoken)
        self.openings = Openings(limits.unopened_per_ip, limits.max_unopened)
        self.refusals: collections.Counter = collections.Counter()

    def buildProtocol(self, addr):
        return PeerProtocol(self.peers, self.opener, listener=self, **self.kw)

    def status(self) -> dict:
        """For the hub's status: {"unopened": N, "addresses": N, "refusals": {...}}."""
        return dict(self.openings.status(), refusals=dict(self.refusals))

    def accepted(self, proto):
        """A place among the unopened for a new connection, or None: it is aborted."""
        kind = self.openings.refuse(proto.host)
        if kind is None:
            return self.openings.enter(proto.host)
        self.refusals[kind] += 1
        log.warn("too many unopened peer connections ({kind}); dropping one from "
                 "{address}", kind=kind, address=proto.address)
        proto.close("too many peer connections that have not opened"
                    + (" from this address" if kind == opening.PER_ADDRESS else ""),
                    abort=True)
        return None
