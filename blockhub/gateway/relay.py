"""Relaying sealed handshakes from one admitted hub to another.

The gateway cannot read what it relays (it is sealed to the receiver); it delivers it
to the addressed hub alone, stamped with the sender's authenticated id (never an
address: in private mode no hub address leaves the gateway), and limits how many
requests each sender may make (a token bucket per sender: a burst, then a steady rate
per minute).  A ``rejection`` reaches only a hub that listed the feature.
"""

from twisted.logger import Logger

from blockhub.gateway.counters import Counters
from blockhub.limits import Limits
from blockhub.ratelimit import RateLimiter
from blockhub.wire import features, messages

log = Logger()


class Relay:
    def __init__(self, presence, counters: Counters, clock, limits: Limits):
        self.presence = presence
        self.counters = counters
        self.clock = clock
        self.limit = RateLimiter(limits.relay_per_minute, limits.relay_burst)

    def relay(self, conn, message) -> None:
        sender, target = conn.peer_id, message["to"]
        counters = self.counters
        if not self.limit.allow(sender, self.clock.seconds()):
            counters.relay_refused += 1
            log.warn("relay limit reached for {hub}", hub=sender)
            conn.send("relay-refused", to=target, reason="too many requests; slow down")
            return
        receiver = self.presence.connection_for(target)
        if receiver is None or target == sender:
            counters.relay_refused += 1
            conn.send("relay-refused", to=target, reason="that hub is not online here")
            return
        if message["kind"] == "rejection" and not receiver.session.features.peer_has(
                features.REJECTION):
            # A hub that did not list the feature would refuse the kind and lose its
            # link; the rejection is advice, so the requester's request just expires.
            counters.relay_dropped += 1
            return
        counters.relayed += 1
        # Every field was checked when the relay frame was decoded; the sender's id
        # comes from its TLS certificate.
        receiver.send_message(messages.Message("deliver", {
            "from": sender, "kind": message["kind"], "sealed": message["sealed"]}))
