"""Relaying sealed handshakes from one admitted hub to another.

The gateway cannot read what it relays (it is sealed to the receiver); it delivers it
to the addressed hub alone, stamped with the sender's authenticated id (never an
address: in private mode no hub address leaves the gateway), and limits how many
requests each sender may make (a token bucket per sender: a burst, then a steady rate
per minute).
"""

from twisted.logger import Logger

log = Logger()

DEFAULT_PER_MINUTE = 30
DEFAULT_BURST = 10


class Relay:
    def __init__(self, presence, clock, per_minute: int = DEFAULT_PER_MINUTE,
                 burst: int = DEFAULT_BURST):
        self.presence = presence
        self.clock = clock
        self.rate = per_minute / 60.0
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def _take(self, sender: str) -> bool:
        now = self.clock.seconds()
        tokens, last = self._buckets.get(sender, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[sender] = (tokens, now)
            return False
        self._buckets[sender] = (tokens - 1.0, now)
        if len(self._buckets) > 4 * max(len(self.presence.hubs), 1000):
            self._forget_full_buckets(now)
        return True

    def _forget_full_buckets(self, now):
        for sender, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[sender]

    def relay(self, conn, message) -> None:
        sender, target = conn.peer_id, message["to"]
        counters = self.presence.counters
        if not self._take(sender):
            counters.relay_refused += 1
            log.warn("relay limit reached for {hub}", hub=sender)
            conn.send("relay-refused", to=target, reason="too many requests; slow down")
            return
        receiver = self.presence.connection_for(target)
        if receiver is None or target == sender:
            counters.relay_refused += 1
            conn.send("relay-refused", to=target, reason="that hub is not online here")
            return
        counters.relayed += 1
        receiver.send("deliver", **{"from": sender, "kind": message["kind"],
                                    "sealed": message["sealed"]})
