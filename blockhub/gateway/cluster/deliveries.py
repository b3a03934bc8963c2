"""Relayed handshakes that other nodes send us for our hubs: each delivered at most
once, though Redis (or whoever holds it) may say one again.  Freshness is checked
where the value is read (``records.Reader``); the ids of the last minutes are kept
here, so a copy inside the freshness window is dropped too."""

from twisted.logger import Logger

from blockhub.gateway.cluster.records import FRESH_MS, Refused

log = Logger()

SEEN = 4096  # ids kept before the old ones are swept


class Deliveries:
    def __init__(self, own: str, name: str, deliver):
        self.own = own
        self.name = name
        self.deliver = deliver  # (sender, target, kind, sealed) -> delivered to our hub?
        self.seen: dict[str, float] = {}  # delivery id -> when we took it

    def received(self, said, now: float) -> None:
        body = said.body
        if body["to_node"] != self.own or said.node == self.own:
            raise Refused("a delivery for another node")
        if body["id"] in self.seen:
            return
        self.seen[body["id"]] = now
        if len(self.seen) > SEEN:
            oldest = now - 2 * FRESH_MS / 1000
            self.seen = {k: t for k, t in self.seen.items() if t >= oldest}
        if not self.deliver(body["from"], body["to"], body["kind"], body["sealed"]):
            log.info("cluster {name}: a relay from node {node} for a hub no longer here",
                     name=self.name, node=said.node)
