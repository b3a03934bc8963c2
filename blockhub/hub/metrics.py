"""The hub's metrics (docs/operations.md, "Monitoring"): gauges and counters read at
scrape time from what ``status`` reads (the gateway link, the peer links, the request
book, the database), so the two agree at the same moment; the handshake and commit
histograms are observed as those happen.

No series carries an address, a note or a message's text; peer ids appear as labels
only with ``--metrics-per-peer``.
"""

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from blockhub.hub.outgoing import FINAL, Outgoing
from blockhub.hub.peer_paths import DIRECT, RELAYED, path_of
from blockhub.net.metrics import SECONDS_BUCKETS, GraphCollector, gauge


def message_counts(store) -> dict[str, int]:
    """What ``status`` shows as ``messages``: every message queued to send (the
    outbox), every one received (the inbox, duplicates dropped), and those sent and not
    yet acknowledged.  Both boxes keep their rows, so the counts survive a restart."""
    (sent, unacked), = store.execute(
        "SELECT COUNT(*), COALESCE(SUM(acked = 0), 0) FROM outbox").fetchall()
    (received,), = store.execute("SELECT COUNT(*) FROM inbox").fetchall()
    return {"sent": sent, "received": received, "unacked": unacked}


class HandshakeTimes:
    """How long each request of ours takes from going out to a live peer link.  Fed
    every request's change (``Handshakes``' ``watch``): timed from the first time it
    goes out (a resend does not restart it); one that ends any other way is forgotten."""

    def __init__(self, clock, observe):
        self.clock = clock
        self.observe = observe  # observe(seconds)
        self.started: dict[str, float] = {}  # receiver's id -> when the request went out

    def changed(self, machine, old: str, new: str) -> None:
        if not isinstance(machine, Outgoing):
            return
        peer = machine.peer
        if new == "connected" and peer in self.started:
            self.observe(self.clock.seconds() - self.started.pop(peer))
        elif new in FINAL:
            self.started.pop(peer, None)
        elif new in ("sent", "connecting"):
            self.started.setdefault(peer, self.clock.seconds())


class HubMetrics:
    """One hub's registry and the histograms observed at its events; ``watch`` adds
    the series read from its graph once the graph is built."""

    def __init__(self, clock):
        self.registry = CollectorRegistry()
        self.handshake = Histogram(
            "blockhub_hub_handshake_seconds",
            "Time from our handshake request going out to the peer link being up",
            registry=self.registry, buckets=SECONDS_BUCKETS + (30.0, 60.0, 300.0, 3600.0))
        self.commit = Histogram(
            "blockhub_hub_store_commit_seconds",
            "Time of one database commit (its fsync)",
            registry=self.registry, buckets=SECONDS_BUCKETS)
        self.requests = HandshakeTimes(clock, self.handshake.observe)

    def watch(self, graph, per_peer: bool = False) -> None:
        self.registry.register(HubCollector(graph, per_peer))


class HubCollector(GraphCollector):
    def collect(self):
        graph = self.graph
        yield gauge("blockhub_hub_gateway_online",
                     "1 while a gateway has admitted this hub, else 0",
                     1 if graph.hub.gateway is not None else 0)
        peers = GaugeMetricFamily("blockhub_hub_peers", "Peer links up now, by path",
                                  labels=["path"])
        paths = [path_of(proto) for proto in graph.peers.connections.values()]
        for path in (DIRECT, RELAYED):
            peers.add_metric([path], paths.count(path))
        yield peers
        yield gauge("blockhub_hub_pending",
                     "Handshake requests waiting for the operator's decision",
                     len(graph.handshakes.book.waiting()))
        counts = message_counts(graph.store)
        yield CounterMetricFamily("blockhub_hub_messages_sent",
                                  "Messages queued to peers (the outbox)",
                                  value=counts["sent"])
        yield CounterMetricFamily("blockhub_hub_messages_received",
                                  "Messages received from peers and stored",
                                  value=counts["received"])
        yield gauge("blockhub_hub_unacked",
                     "Messages sent and not yet acknowledged", counts["unacked"])
        if self.per_peer:
            yield from self._per_peer()

    def _per_peer(self):
        connected = GaugeMetricFamily("blockhub_hub_peer_connected",
                                      "1 while the link with this peer is up, else 0",
                                      labels=["peer"])
        unacked = GaugeMetricFamily("blockhub_hub_peer_unacked",
                                    "Messages to this peer not yet acknowledged",
                                    labels=["peer"])
        waiting = dict(self.graph.store.execute(
            "SELECT peer, COUNT(*) FROM outbox WHERE acked = 0 GROUP BY peer").fetchall())
        for peer in self.graph.store.peers():
            connected.add_metric([peer["id"]],
                                 1 if peer["id"] in self.graph.peers.connections else 0)
            unacked.add_metric([peer["id"]], waiting.get(peer["id"], 0))
        yield connected
        yield unacked

