"""The daemons' metrics in memory (real gateway and hubs over TLS, one Clock): each
series after known events equals what ``status`` says at the same moment; the
histograms are observed at their events; the ``reason`` label is a fixed set; no
series carries an address, a note, a message's text or (unless asked) a hub id."""

import re

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.test.requesthelper import DummyRequest

from blockhub.gateway.admission import Admission
from blockhub.gateway.counters import Counters
from blockhub.gateway.metrics import REASONS, GatewayMetrics, refusals
from blockhub.hub.metrics import HandshakeTimes, HubMetrics
from blockhub.hub.outgoing import Outgoing
from blockhub.net.metrics import MetricsResource
from tests.memory import World, new_identity
from tests.test_cluster_memory import Cluster

IP = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b|\[?[0-9a-f]*:[0-9a-f:]+\]?:\d+")


def render(registry) -> str:
    request = DummyRequest([b"metrics"])
    body = MetricsResource(registry).render_GET(request)
    assert request.responseHeaders.getRawHeaders(b"content-type")[0].startswith(
        b"text/plain; version=")
    return body.decode()


def values(text: str) -> dict:
    """Every sample: (name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def gateway_metrics(world, per_peer=False):
    metrics = world.metrics
    metrics.watch(world.graph, per_peer)
    return metrics


class GatewayWorld(World):
    def __init__(self, **kw):
        self.metrics = GatewayMetrics()
        super().__init__(observe_fanout=self.metrics.fanout.observe, **kw)


class GatewayMetricsTests(SynchronousTestCase):
    def test_joins_hubs_and_fanout_agree_with_status(self):
        world = GatewayWorld()
        metrics = gateway_metrics(world)
        for name in ("a", "b", "c"):
            world.add_hub(name)
        seen, status = values(render(metrics.registry)), world.gateway.status()
        self.assertEqual(seen["blockhub_gateway_hubs", ()], status["online"])
        self.assertEqual(status["online"], 3)
        self.assertEqual(seen["blockhub_gateway_joins_total", ()],
                         status["counters"]["joined"])
        self.assertEqual(seen["blockhub_gateway_relayed_total", ()], 0)
        self.assertEqual(seen["blockhub_gateway_circuits", ()], 0)
        self.assertEqual(seen["blockhub_gateway_presence_fanout_seconds_count", ()], 3)
        for reason in REASONS:
            self.assertEqual(seen["blockhub_gateway_refusals_total",
                                  (("reason", reason),)], 0)
        self.assertNotIn(("blockhub_gateway_cluster_nodes", ()), seen)

    def test_refusals_by_reason(self):
        allowed = new_identity()
        world = GatewayWorld(admission=Admission(mode="private",
                                                 allow_keys=frozenset({allowed.id})))
        metrics = gateway_metrics(world)
        world.add_hub("stranger")
        world.add_hub("friend", identity=allowed)
        seen, status = values(render(metrics.registry)), world.gateway.status()
        self.assertEqual(status["counters"]["refused"], 1)
        self.assertEqual(seen["blockhub_gateway_refusals_total",
                              (("reason", "not_allowed"),)], 1)
        self.assertEqual(seen["blockhub_gateway_hubs", ()], 1)
        total = sum(v for (name, _), v in seen.items()
                    if name == "blockhub_gateway_refusals_total")
        self.assertEqual(total, 1)

    def test_every_counter_maps_to_one_reason(self):
        counters = Counters(refused=9, refused_key=1, refused_proof=2, refused_full=1,
                            refused_per_address=1, joins_refused=1, join_timeouts=1,
                            tls_timeouts=4, protocol_errors=5, refused_unauthenticated=6)
        self.assertEqual(refusals(counters), {
            "not_allowed": 1, "bad_proof": 2, "full": 1, "address_limit": 1, "rate": 1,
            "join_timeout": 1, "tls_timeout": 4, "protocol": 5,
            "unauthenticated_limit": 6, "banned": 0, "old_key": 0, "other": 2})
        self.assertEqual(list(refusals(Counters())), list(REASONS))

    def test_relays_and_circuits_agree_with_status(self):
        world = GatewayWorld()
        metrics = gateway_metrics(world)
        a = world.full_hub(self, "a", listen=False)
        b = world.full_hub(self, "b", listen=False)
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id, "a note nobody may scrape")
        world.flush()
        a.peers.send(b.id, "a message nobody may scrape")
        world.flush()
        text = render(metrics.registry)
        seen, status = values(text), world.gateway.status()
        self.assertGreater(status["counters"]["relayed"], 0)
        self.assertEqual(seen["blockhub_gateway_relayed_total", ()],
                         status["counters"]["relayed"])
        self.assertEqual(status["circuits"]["count"], 1)
        self.assertEqual(seen["blockhub_gateway_circuits", ()], 1)
        self.assertGreater(status["circuits"]["bytes"], 0)
        self.assertEqual(seen["blockhub_gateway_circuit_bytes_total", ()],
                         status["circuits"]["bytes"])
        for secret in ("nobody may scrape", a.id, b.id):
            self.assertNotIn(secret, text)
        self.assertIsNone(IP.search(text), text)

    def test_per_peer_series_only_when_asked(self):
        world = GatewayWorld()
        metrics = gateway_metrics(world, per_peer=True)
        hub = world.add_hub("a")
        seen = values(render(metrics.registry))
        self.assertEqual(seen["blockhub_gateway_hub_joined_timestamp_seconds",
                              (("hub", hub.identity.id),)], world.clock.seconds())

    def test_cluster_nodes_and_connection(self):
        cluster = Cluster(2)
        metrics = GatewayMetrics()
        metrics.watch(cluster.world.graphs[cluster.gw(0)])
        cluster.hub("a", 0)
        cluster.hub("b", 1)
        seen = values(render(metrics.registry))
        status = cluster.nodes[0].status()
        self.assertEqual(seen["blockhub_gateway_cluster_nodes", ()], len(status["nodes"]))
        self.assertEqual(len(status["nodes"]), 2)
        self.assertEqual(seen["blockhub_gateway_cluster_connected", ()], 1)
        self.assertEqual(seen["blockhub_gateway_hubs", ()], 1)  # this node's own
        cluster.redis.stop()
        cluster.flush()
        seen = values(render(metrics.registry))
        self.assertEqual(cluster.nodes[0].status()["state"], "disconnected")
        self.assertEqual(seen["blockhub_gateway_cluster_connected", ()], 0)


class HubMetricsTests(SynchronousTestCase):
    def setUp(self):
        self.world = World()
        self.am, self.bm = HubMetrics(self.world.clock), HubMetrics(self.world.clock)
        self.a = self.full_hub("a", self.am)
        self.b = self.full_hub("b", self.bm)

    def full_hub(self, name, metrics, **kw):
        hub = self.world.full_hub(self, name, observe_commit=metrics.commit.observe,
                                  watch_requests=metrics.requests.changed, **kw)
        metrics.watch(hub.graph)
        return hub

    def seen(self, metrics):
        return values(render(metrics.registry))

    def test_a_handshake_and_messages(self):
        a, b = self.a, self.b
        self.assertEqual(self.seen(self.am)["blockhub_hub_gateway_online", ()], 1)
        a.operator.connect(b.id, "a note nobody may scrape")
        self.world.flush()
        self.assertEqual(self.seen(self.bm)["blockhub_hub_pending", ()], 1)
        self.assertEqual(len(b.operator.pending()), 1)
        self.world.clock.advance(7)
        b.operator.approve(a.id)
        self.world.flush()
        seen = self.seen(self.am)
        self.assertEqual(seen["blockhub_hub_handshake_seconds_count", ()], 1)
        self.assertEqual(seen["blockhub_hub_handshake_seconds_sum", ()], 7)
        self.assertEqual(self.seen(self.bm)["blockhub_hub_handshake_seconds_count", ()], 0)
        self.assertEqual(self.seen(self.bm)["blockhub_hub_pending", ()], 0)
        for hub, metrics in ((a, self.am), (b, self.bm)):
            seen = self.seen(metrics)
            self.assertEqual(seen["blockhub_hub_peers", (("path", "direct"),)], 1)
            self.assertEqual(seen["blockhub_hub_peers", (("path", "relayed"),)], 0)
            self.assertEqual(len(hub.peers.connections), 1)
        a.peers.send(b.id, "one message nobody may scrape")
        a.peers.send(b.id, "two")
        self.world.flush()
        sent, got = self.seen(self.am), self.seen(self.bm)
        self.assertEqual(sent["blockhub_hub_messages_sent_total", ()], 2)
        self.assertEqual(sent["blockhub_hub_unacked", ()], 0)
        self.assertEqual(got["blockhub_hub_messages_received_total", ()],
                         len(b.store.messages()))
        self.assertEqual(got["blockhub_hub_messages_received_total", ()], 2)
        self.assertGreater(got["blockhub_hub_store_commit_seconds_count", ()], 0)
        for metrics in (self.am, self.bm):
            text = render(metrics.registry)
            for secret in ("nobody may scrape", a.id, b.id):
                self.assertNotIn(secret, text)
            self.assertIsNone(IP.search(text), text)

    def test_unacked_while_the_link_is_down_and_per_peer(self):
        a, b = self.a, self.b
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id, "hi")
        self.world.flush()
        a.peers.connections[b.id].close("test cut")
        self.world.flush()
        a.peers.send(b.id, "later")
        self.world.clock.advance(0)
        self.assertEqual(self.seen(self.am)["blockhub_hub_unacked", ()], 1)
        self.assertEqual(self.seen(self.am)["blockhub_hub_peers", (("path", "direct"),)], 0)
        per_peer = HubMetrics(self.world.clock)
        per_peer.watch(a.graph, per_peer=True)
        seen = self.seen(per_peer)
        self.assertEqual(seen["blockhub_hub_peer_unacked", (("peer", b.id),)], 1)
        self.assertEqual(seen["blockhub_hub_peer_connected", (("peer", b.id),)], 0)

    def test_relayed_peering(self):
        c = self.full_hub("c", HubMetrics(self.world.clock), listen=False)
        d_metrics = HubMetrics(self.world.clock)
        d = self.full_hub("d", d_metrics, listen=False)
        d.store.add_approved_key(c.id, 0)
        c.operator.connect(d.id, "hi")
        self.world.flush()
        seen = self.seen(d_metrics)
        self.assertEqual(seen["blockhub_hub_peers", (("path", "relayed"),)], 1)
        self.assertEqual(seen["blockhub_hub_peers", (("path", "direct"),)], 0)

    def test_gateway_offline(self):
        self.a.link.stop()
        self.world.flush()
        self.assertEqual(self.seen(self.am)["blockhub_hub_gateway_online", ()], 0)


class HandshakeTimesTests(SynchronousTestCase):
    def test_timed_from_the_first_send_and_forgotten_when_refused(self):
        now, seen = [100.0], []

        class Clock:
            def seconds(self):
                return now[0]

        times = HandshakeTimes(Clock(), seen.append)
        out = Outgoing.__new__(Outgoing)
        out.peer = "bob"
        times.changed(out, "requested", "sent")
        now[0] = 103.0
        times.changed(out, "sent", "requested")  # not delivered: sent again later
        times.changed(out, "requested", "sent")
        now[0] = 110.0
        times.changed(out, "sent", "connected")
        self.assertEqual(seen, [10.0])
        times.changed(out, "requested", "sent")
        times.changed(out, "sent", "rejected")
        times.changed(out, "rejected", "connected")  # cannot happen; nothing is timed
        self.assertEqual((seen, times.started), ([10.0], {}))


class ResourceTests(SynchronousTestCase):
    def test_a_failing_collector_costs_the_scrape_only(self):
        metrics = GatewayMetrics()

        class Broken:
            def describe(self):
                return []

            def collect(self):
                raise RuntimeError("the database is gone")

        metrics.registry.register(Broken())
        request = DummyRequest([b"metrics"])
        body = MetricsResource(metrics.registry).render_GET(request)
        self.assertEqual(request.responseCode, 500)
        self.assertEqual(body, b"error: cannot render the metrics; see the daemon's log\n")
        self.flushLoggedErrors(RuntimeError)
