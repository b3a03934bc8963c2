"""Who may open a peer link with this hub: the decision behind the listener.

A connection that finished TLS opens with ``peer-hello`` (a hub we peer with, asked, or
accepted) or ``peer-request`` (open mode: a handshake on the direct connection, which
the handshakes judge).  A hello is checked (signed by the connected hub, addressed to
us, fresh) and then allowed only when this hub expects it; a request accepted for an
address range holds only for a connection that really comes from an address in the
range.  Everything refused is counted with the handshakes' refusals.
"""

from twisted.logger import Logger

from blockhub import policy
from blockhub.errors import StaleMessage
from blockhub.handshake_bodies import check_peer_hello
from blockhub.hub.peers import NOT_RECORDED
from blockhub.wire.canonical import unb64

log = Logger()

class PeerDoor:
    def __init__(self, identity, store, clock, window: int, handshakes, peers):
        self.identity = identity
        self.store = store
        self.clock = clock
        self.window = window
        self.handshakes = handshakes  # judges a peer-request; keeps the refusal counts
        self.peers = peers

    def inbound(self, proto, message):
        """(status, reason) for a connection that opened with ``message``, or a
        Deferred of it (a peering recorded first)."""
        if message.kind == "peer-request":
            return self.handshakes.inbound_request(proto, unb64(message["sealed"]))
        try:
            check_peer_hello(self.identity, message["hello"], proto.peer_id,
                             int(self.clock.seconds()), self.window)
        except StaleMessage:
            return "rejected", "stale peer-hello (check the clocks)"
        return self._hello(proto)

    def expects(self, hub_id: str) -> bool:
        """Whether we agreed to peer with ``hub_id``: a peer, a hub whose request we
        accepted, or one we asked that accepted us (and that is not blocked)."""
        if hub_id in self.store.blocked_keys():
            return False
        if self.store.peer(hub_id) is not None:
            return True
        book = self.handshakes.book
        inc, out = book.incoming.get(hub_id), book.outgoing.get(hub_id)
        return ((inc is not None and inc.expects_hello())
                or (out is not None and out.state == "connecting"))

    def _hello(self, proto):
        hub_id = proto.peer_id
        if hub_id in self.store.blocked_keys():
            return self._refuse(hub_id, "Blocked", "blocked")
        if self.store.peer(hub_id) is not None:
            return "connected", None
        book = self.handshakes.book
        out = book.open_outgoing(hub_id)  # our request, which this dial answers
        if out is not None:
            return self._connected(hub_id, out)
        inc = book.incoming.get(hub_id)
        if inc is not None and inc.needs_range_check():
            host = proto.transport.getPeer().host
            if policy.decide(hub_id, host, (), self.store.approved_ranges(),
                             ()) != policy.AUTO_RANGE:
                return self._refuse(hub_id, "OutOfRange", "not from an approved address")
        if inc is not None and inc.expects_hello():
            return self._connected(hub_id, inc)
        return self._refuse(hub_id, "unsolicited", "unsolicited")

    def _connected(self, hub_id: str, machine):
        """A Deferred verdict: connected once the peering is durable, and only then."""
        def recorded(ok: bool):
            if not ok:
                return "rejected", NOT_RECORDED
            machine.peer_connected()
            return "connected", None

        return self.peers.established(hub_id, None, dialer=False).addCallback(recorded)

    def _refuse(self, hub_id: str, kind: str, reason: str):
        self.handshakes.refusals[kind] += 1
        log.info("refusing a peer connection from {peer}: {reason}", peer=hub_id,
                 reason=reason)
        return "rejected", reason
