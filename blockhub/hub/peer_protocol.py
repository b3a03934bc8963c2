"""A direct hub-to-hub connection: frames in, calls on the peers manager out.

The dialer pins the peer's key in TLS and opens with ``peer-hello`` (an established or
accepted peering) or ``peer-request`` (open mode: a handshake on the direct
connection).  The acceptor answers ``peer-ready`` with connected, pending or rejected;
only a connected link carries ``message`` and ``ack``.
"""

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory

from blockhub.errors import BadMessage, Refused
from blockhub.net.framed import FramedProtocol


class PeerProtocol(FramedProtocol):
    def __init__(self, peers, first=None, **kw):
        super().__init__(**kw)
        self.peers = peers
        self.first = first  # (kind, fields) for the dialer; None when accepting
        self.ready = Deferred() if first is not None else None
        self.status = None  # connected / pending / rejected once decided
        self.attached = False
        self.sent_seq = 0  # the highest of our messages sent on this connection

    @property
    def dialer(self) -> bool:
        return self.first is not None

    def secured(self):
        if self.dialer:
            kind, fields = self.first
            self.send(kind, **fields)

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
            status, reason = self.peers.inbound(self, message)
            self.send("peer-ready", status=status, reason=reason)
            self._decided(status, reason)
        else:
            raise BadMessage(f"a peer must open with peer-hello or peer-request, not {kind!r}")

    def _decided(self, status, reason):
        self.status = status
        if status == "connected":
            self.attached = True
            self.peers.attach(self)
        if self.ready is not None:
            ready, self.ready = self.ready, None
            ready.callback((status, reason))
        if status != "connected":
            self.close(f"peer link {status}" + (f": {reason}" if reason else ""))

    def lost(self, reason):
        if self.ready is not None:
            ready, self.ready = self.ready, None
            ready.errback(Refused(reason))
        if self.attached:
            self.attached = False
            self.peers.detach(self, reason)


class PeerFactory(Factory):
    """Builds acceptor-side peer protocols for the hub's --listen endpoint."""

    noisy = False

    def __init__(self, peers, clock, limits):
        self.peers = peers
        self.kw = dict(clock=clock, limits=limits)

    def buildProtocol(self, addr):
        return PeerProtocol(self.peers, **self.kw)
