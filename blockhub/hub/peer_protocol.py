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

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from blockhub.errors import BadMessage, Refused
from blockhub.net import opening
from blockhub.net.framed import FramedProtocol
from blockhub.net.opening import Openings
from blockhub.timers import cancel

log = Logger()

FIRST_FRAME_TIMEOUT = "FirstFrameTimeout"
SEND_QUEUE_FULL = "SendQueueFull"
CLOSE_TIMEOUT = "CloseTimeout"


class PeerProtocol(FramedProtocol):
    """``peers`` carries messages on a connected link; ``opener`` decides whether an
    accepted connection's peer-hello or peer-request makes one (the handshakes)."""

    def __init__(self, peers, opener, first=None, listener=None, **kw):
        super().__init__(**kw)
        self.peers = peers
        self.opener = opener
        self.first = first  # (kind, fields) for the dialer; None when accepting
        self.listener = listener  # the PeerFactory that accepted us, for its counts
        self.opening = None  # our slot among the listener's unopened connections
        self._first_deadline = None
        self.ready = Deferred() if first is not None else None
        self.status = None  # connected / pending / rejected once decided
        self.attached = False
        self.sent_seq = 0  # the highest of our messages sent on this connection

    @property
    def dialer(self) -> bool:
        return self.first is not None

    def connectionMade(self):
        super().connectionMade()
        if self.listener is not None:
            self.listener.accepted(self)

    def secured(self):
        if self.status is None and not self.closing_reason:
            # The opening has a deadline: pings would keep the idle timer happy forever.
            self._first_deadline = self.clock.callLater(self.limits.first_frame_timeout,
                                                        self._first_frame_expired)
        if self.dialer:
            kind, fields = self.first
            self.send(kind, **fields)

    def _first_frame_expired(self):
        self._first_deadline = None
        if self.status is not None or not self.connected:
            return
        expected = "peer-ready" if self.dialer else "peer-hello or peer-request"
        reason = f"no {expected} within {self.limits.first_frame_timeout:g}s of TLS"
        self.count(FIRST_FRAME_TIMEOUT)
        log.warn("peer connection from {address} ({peer}): {reason}", address=self.address,
                 peer=self.peer_id, reason=reason)
        self.send("error", reason=reason, fatal=True)
        self.close(reason)

    def _opened(self):
        """The opening is over (decided or gone): give back the place it held."""
        self._first_deadline = cancel(self._first_deadline)
        if self.opening is not None:
            self.opening.release()
            self.opening = None

    def count(self, kind: str):
        if self.listener is not None:
            self.listener.refusals[kind] += 1

    def send_queue_full(self):
        self.count(SEND_QUEUE_FULL)

    def close_timed_out(self):
        self.count(CLOSE_TIMEOUT)

    def drained(self):
        if self.attached:
            self.peers.drained(self)

    def messageReceived(self, message):
        kind = message.kind
        if self.status == "connected":
            if kind == "message":
                self.peers.message_received(self, message)
            elif kind == "ack":
                self.peers.acked(self, message["seq"])
            elif kind == "error":
                self.close(f"peer error: {message['reason']}")
            else:
                raise BadMessage(f"unexpected {kind!r} on an established peer link")
        elif self.status is not None:
            raise BadMessage(f"{kind!r} after the link was refused")
        elif self.dialer:
            if kind != "peer-ready":
                raise BadMessage(f"expected peer-ready, got {kind!r}")
            self._decided(message["status"], message["reason"])
        elif kind in ("peer-hello", "peer-request"):
            status, reason = self.opener.inbound(self, message)
            self.send("peer-ready", status=status, reason=reason)
            self._decided(status, reason)
        else:
            raise BadMessage(f"a peer must open with peer-hello or peer-request, not {kind!r}")

    def _decided(self, status, reason):
        self.status = status
        self._opened()
        if status == "connected":
            self.attached = True
            self.peers.attach(self)
        if self.ready is not None:
            ready, self.ready = self.ready, None
            ready.callback((status, reason))
        if status != "connected":
            self.close(f"peer link {status}" + (f": {reason}" if reason else ""))

    def lost(self, reason):
        self._opened()
        if self.ready is not None:
            ready, self.ready = self.ready, None
            ready.errback(Refused(reason))
        if self.attached:
            self.attached = False
            self.peers.detach(self, reason)


class PeerFactory(Factory):
    """Builds acceptor-side peer protocols for the hub's --listen endpoint, and holds
    what the listener counts: ``openings`` (connections not yet open, per address and
    in total; ``openings.status()`` for the hub's status) and ``refusals`` (kind ->
    count: TooManyFromAddress, TooManyUnopened, FirstFrameTimeout, SendQueueFull,
    CloseTimeout)."""

    noisy = False

    def __init__(self, peers, opener, clock, limits):
        self.peers = peers
        self.opener = opener
        self.kw = dict(clock=clock, limits=limits)
        self.openings = Openings(limits.unopened_per_ip, limits.max_unopened)
        self.refusals: collections.Counter = collections.Counter()

    def buildProtocol(self, addr):
        return PeerProtocol(self.peers, self.opener, listener=self, **self.kw)

    def status(self) -> dict:
        """For the hub's status: {"unopened": N, "addresses": N, "refusals": {...}}."""
        return dict(self.openings.status(), refusals=dict(self.refusals))

    def accepted(self, proto):
        """Give a new connection a place among the unopened, or abort it now."""
        kind = self.openings.refuse(proto.host)
        if kind is None:
            proto.opening = self.openings.enter(proto.host)
            return
        self.refusals[kind] += 1
        log.warn("too many unopened peer connections ({kind}); dropping one from "
                 "{address}", kind=kind, address=proto.address)
        proto.close("too many peer connections that have not opened"
                    + (" from this address" if kind == opening.PER_ADDRESS else ""),
                    abort=True)
