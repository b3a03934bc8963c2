"""The gateway's metrics (docs/operations.md, "Monitoring"): read at scrape time from
the objects ``status`` reads, so the two agree at the same moment, except the presence
fan-out histogram, which is observed as each fan-out happens.

No series carries an address, a note or free text; hub ids appear as labels only with
``--metrics-per-peer``.  A refusal's ``reason`` is one of ``REASONS``, a fixed set.
"""

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from blockhub.gateway.counters import Counters
from blockhub.net.metrics import SECONDS_BUCKETS, GraphCollector, gauge

# reason label -> the ``Counters`` field it reads (None: not counted by this gateway
# yet).  ``other`` is what ``refused`` holds beyond the named ones, so a new kind of
# refusal is still counted before it is given a name here.
REASONS: dict[str, str | None] = {
    "not_allowed": "refused_key",            # not on --allow-keys
    "bad_proof": "refused_proof",            # missing or wrong network-key proof
    "full": "refused_full",                  # --max-hubs reached
    "address_limit": "refused_per_address",  # --max-hubs-per-ip reached
    "rate": "joins_refused",                 # joins too often for the key's budget
    "join_timeout": "join_timeouts",         # TLS done, no join in --join-timeout
    "tls_timeout": "tls_timeouts",           # no TLS handshake in time
    "protocol": "protocol_errors",           # a frame that breaks the protocol
    "unauthenticated_limit": "refused_unauthenticated",  # --max-unauthenticated-per-ip
    "banned": "refused_banned",              # banned by the operator (kick --ban)
    "old_key": "refused_old_key",            # pins the key this gateway succeeded
    "other": None,
}
# The named reasons that pass through ``Gateway.refuse``/``missed_join`` (``refused``).
_IN_REFUSED = ("refused_key", "refused_proof", "refused_full", "refused_per_address",
               "joins_refused", "join_timeouts", "refused_banned", "refused_old_key")


def refusals(counters: Counters) -> dict[str, int]:
    """Every reason with its count, in ``REASONS`` order."""
    counts = {reason: getattr(counters, field, 0) if field else 0
              for reason, field in REASONS.items()}
    named = sum(getattr(counters, field) for field in _IN_REFUSED)
    counts["other"] = max(0, counters.refused - named)
    return counts


class GatewayMetrics:
    """One gateway's registry and the histogram observed at its events; ``watch``
    adds the series read from its graph once the graph is built."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.fanout = Histogram(
            "blockhub_gateway_presence_fanout_seconds",
            "Time to hand one presence frame to every receiving hub's connection",
            registry=self.registry, buckets=SECONDS_BUCKETS)

    def watch(self, graph, per_peer: bool = False) -> None:
        self.registry.register(GatewayCollector(graph, per_peer))


class GatewayCollector(GraphCollector):
    def collect(self):
        graph = self.graph
        counters, circuits = graph.counters, graph.circuits.status()
        yield gauge("blockhub_gateway_hubs", "Hubs admitted at this node now",
                     len(graph.presence.hubs))
        yield _counter("blockhub_gateway_joins", "Hubs admitted (joins) since start",
                       counters.joined)
        refused = CounterMetricFamily("blockhub_gateway_refusals",
                                      "Hub connections refused, by reason",
                                      labels=["reason"])
        for reason, count in refusals(counters).items():
            refused.add_metric([reason], count)
        yield refused
        yield _counter("blockhub_gateway_relayed",
                       "Sealed handshake boxes relayed between hubs", counters.relayed)
        yield gauge("blockhub_gateway_circuits", "Relay circuits open now",
                     circuits["count"])
        yield _counter("blockhub_gateway_circuit_bytes",
                       "Payload bytes carried by relay circuits", circuits["bytes"])
        if graph.cluster is not None:
            yield from _cluster(graph.cluster.status())
        if self.per_peer:
            yield self._per_hub()

    def _per_hub(self):
        joined = GaugeMetricFamily("blockhub_gateway_hub_joined_timestamp_seconds",
                                   "When each hub admitted here joined (Unix time)",
                                   labels=["hub"])
        for hub_id, since in sorted(self.graph.presence.since.items()):
            joined.add_metric([hub_id], since)
        return joined


def _cluster(status: dict):
    yield gauge("blockhub_gateway_cluster_nodes", "Live nodes of the cluster, this one "
                 "included", len(status["nodes"]))
    yield gauge("blockhub_gateway_cluster_connected", "1 while this node is connected "
                 "to the cluster's Redis and in step with it, else 0",
                 1 if status["state"] == "connected" else 0)



def _counter(name: str, text: str, value) -> CounterMetricFamily:
    return CounterMetricFamily(name, text, value=value)
