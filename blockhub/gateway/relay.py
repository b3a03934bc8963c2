"""Relaying sealed handshakes from one admitted hub to another.

The gateway cannot read what it relays (it is sealed to the receiver); it delivers it
to the addressed hub alone, stamped with the sender's authenticated id (never an
address: in private mode no hub address leaves the gateway), and limits how many
requests each sender may make (a token bucket per sender: a burst, then a steady rate
per minute).  A ``rejection`` reaches only a hub that listed the feature.  A box comes
in a ``relay`` (its base64, as checked) or a ``relay-raw`` frame (its bytes) and leaves
in the frame its receiver reads: ``deliver-raw`` to a hub that listed ``raw-relay/1``,
so that between two such hubs it is never turned into text.

In a cluster (docs/cluster.md) a hub online at another node is reached through that
node (``forward``), and the sender's budget is also the cluster's (``take``), so
moving between nodes is no way around it.  A relay the local budget allows goes at
once; the cluster's budget is asked beside it, and when that one is spent the
sender's local budget is emptied, so the cluster's limit holds within one round trip
to Redis without every relay waiting for one.  While the cluster is away the local
budget alone applies, and only hubs of this node can be reached.
"""

from twisted.logger import Logger

from blockhub.errors import BadMessage
from blockhub.gateway.counters import Counters
from blockhub.limits import Limits
from blockhub.ratelimit import RateLimiter
from blockhub.wire import features, messages
from blockhub.wire.canonical import b64, unb64

log = Logger()


class Relay:
    def __init__(self, presence, counters: Counters, clock, limits: Limits, cluster=None,
                 speaks=None):
        self.presence = presence
        self.counters = counters
        self.clock = clock
        self.limit = RateLimiter(limits.relay_per_minute, limits.relay_burst)
        # The cluster's side of relaying (``take``, ``forward``), or None alone.
        self.cluster = cluster
        # What this gateway listed (``Gateway.speaks``; tests play gateways without
        # raw-relay/1 or punch/1); a hub may relay only the kinds of those.
        self.speaks = speaks or (lambda feature: True)
        self.raw = self.speaks(features.RAW_RELAY)

    def relay_box(self, conn, target: str, kind: str, sealed: str | bytes) -> None:
        """A box from our hub ``conn`` for ``target`` (its fields checked already)."""
        needs = features.RELAYED_KIND.get(kind)
        if needs is not None and not self.speaks(needs):
            raise BadMessage(f"relay kind {kind!r} needs {needs}, which this gateway did "
                             "not list")
        sender = conn.peer_id
        if not self.limit.allow(sender, self.clock.seconds()):
            self._limited(conn, target)
            return
        receiver = self.presence.connection_for(target)
        node = self.presence.node_of(target) if receiver is None else None
        if target == sender or (receiver is None and node is None):
            self._refuse(conn, target, "that hub is not online here")
            return
        if self.cluster is not None and self.cluster.connected:
            self.cluster.take(sender).addCallback(self._cluster_budget, sender)
        if receiver is not None:
            self._hand(receiver, sender, kind, sealed)
        elif self.cluster is not None and self.cluster.forward(node, sender, target, kind,
                                                               _text(sealed)):
            self.counters.relayed += 1
        else:
            self._refuse(conn, target, "that hub is not online here")

    def _cluster_budget(self, allowed: bool, sender: str) -> None:
        if not allowed:
            self.counters.relay_cluster_limited += 1
            self.limit.drain(sender, self.clock.seconds())

    def _limited(self, conn, target: str) -> None:
        log.warn("relay limit reached for {hub}", hub=conn.peer_id)
        self._refuse(conn, target, "too many requests; slow down")

    def _refuse(self, conn, target: str, reason: str) -> None:
        self.counters.relay_refused += 1
        conn.send("relay-refused", to=target, reason=reason)

    def deliver(self, sender: str, target: str, kind: str, sealed: str | bytes) -> bool:
        """Hand a relayed box (``sealed``: its base64 as checked on arrival, or its bytes)
        to ``target`` if it is one of our hubs (the sender is ours or, in a cluster,
        another node's); False when it is not here."""
        receiver = self.presence.connection_for(target)
        if receiver is None:
            return False
        self._hand(receiver, sender, kind, sealed)
        return True

    def _hand(self, receiver, sender: str, kind: str, sealed: str | bytes) -> None:
        needs = features.RELAYED_KIND.get(kind)
        if needs is not None and not receiver.session.features.peer_has(needs):
            # A hub that did not list the feature would refuse the kind and lose its
            # link; a rejection is advice, so the requester's request just expires, and
            # a punch goes unanswered, so the sender soon tries a relay circuit.
            self.counters.relay_dropped += 1
            return
        self.counters.relayed += 1
        # Every field was checked when the relay frame (or the cluster's delivery) was
        # decoded; the sender's id comes from its TLS certificate (or its node).
        if self.raw and receiver.session.features.peer_has(features.RAW_RELAY):
            raw = sealed if isinstance(sealed, bytes) else unb64(sealed)
            receiver.send_frame(messages.encode_deliver_raw(sender, kind, raw))
        else:
            receiver.send_frame(messages.encode_deliver(sender, kind, _text(sealed)))


def _text(sealed: str | bytes) -> str:
    """A box as the JSON frames and the cluster's records carry it: base64."""
    return sealed if isinstance(sealed, str) else b64(sealed)
