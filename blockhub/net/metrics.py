"""``--metrics ENDPOINT``: ``GET /metrics`` in the Prometheus text format, from one
daemon's own registry.

The text is made by prometheus-client (the reference implementation of the format)
on the reactor thread, while the request is served: the collectors read the daemon's
live objects, which are not safe to touch from another thread (so not through the
library's own Twisted resource, which renders in the reactor's thread pool).  Each
daemon has a registry of its own, never the library's global one, so that one process
can hold many daemons (the tests do).  Nothing here knows any metric's name.
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import Site

from blockhub.net.listening import ListeningService

log = Logger()

# Gauges and counters are read at scrape time, so the histograms are what carries a
# fixed set of buckets: seconds, from a tenth of a millisecond to ten seconds.
SECONDS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                   0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GraphCollector:
    """Reads a daemon's object graph at each scrape (``collect``, in subclasses);
    ``per_peer`` adds the series labelled with hub ids (``--metrics-per-peer``)."""

    def __init__(self, graph, per_peer: bool = False):
        self.graph = graph
        self.per_peer = per_peer

    def describe(self):
        return []  # the names are read at scrape time; none is registered twice


def gauge(name: str, text: str, value) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


class MetricsResource(Resource):
    isLeaf = True

    def __init__(self, registry: CollectorRegistry):
        super().__init__()
        self.registry = registry

    def render_GET(self, request):
        try:
            body = generate_latest(self.registry)
        except Exception:
            # A collector that fails (the database, say) costs this scrape, not the daemon.
            log.failure("cannot render the metrics")
            request.setResponseCode(500)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"error: cannot render the metrics; see the daemon's log\n"
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        request.setHeader(b"cache-control", b"no-cache")
        return body


def metrics_site(registry: CollectorRegistry) -> Site:
    """A site serving ``registry`` at ``/metrics`` and nothing else."""
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry))
    site = Site(root)
    site.noisy = False  # a scrape every few seconds is not news for the log
    return site


def metrics_service(reactor, description: str,
                    registry: CollectorRegistry) -> ListeningService:
    """The listener of ``--metrics``; its ``address`` is what ``status`` shows."""
    return ListeningService(reactor, description, metrics_site(registry), what="metrics")
