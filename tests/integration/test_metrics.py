"""``--metrics``, end to end: a real ``twistd`` gateway and hubs, each serving
``GET /metrics`` over real HTTP on 127.0.0.1; after joins, a refusal, a relayed
handshake, a peering over a relay circuit and messages, every series equals what
``status --json`` (or ``pending``, ``messages``) says, and no scrape carries an address,
a note, a message's text or, unless ``--metrics-per-peer``, a hub id."""

import re
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from twisted.trial.unittest import SynchronousTestCase

from tests.integration.harness import (
    LISTEN_ANY_PORT,
    Daemon,
    Network,
    wait_for,
    wait_lists,
    wait_online,
)

METRICS = ("--metrics", LISTEN_ANY_PORT)
NOTE = "a note for the operator only"
TEXT = "a message for the peer only"
ADDRESS = re.compile(r"\b\d{1,3}(\.\d{1,3}){3}\b")


def scrape(daemon: Daemon) -> str:
    url = f"http://{daemon.status()['metrics']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/plain; version=")
        return response.read().decode()


def values(text: str) -> dict:
    """(name, sorted labels) -> value, for every sample of a scrape."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(daemon: Daemon, name: str, **labels) -> float:
    return values(scrape(daemon))[name, tuple(sorted(labels.items()))]


class MetricsTests(SynchronousTestCase):
    def setUp(self):
        self.net = Network(self)

    def bh(self, *args):
        return self.net.blockhub(*args)

    def agree(self, daemon, name, expected, what, **labels):
        """Until the series equals ``expected()`` (both read afresh each time)."""
        wait_for(lambda: value(daemon, name, **labels) == expected(), what=what,
                 logs=[daemon])

    def test_scrapes_agree_with_status_and_carry_no_address_or_text(self):
        g, a, b, stranger = self.net.identities("gw", "alpha", "bravo", "stranger")
        allow = self.net.write("allow.txt", f"{a.id}\n{b.id}\n")
        gw = self.net.gateway(g, "--allow-keys", allow, *METRICS)
        relay_only = ("--peer-path", "relay", *METRICS)
        alpha = self.net.hub(a, *relay_only, gateways=[gw])
        bravo = self.net.hub(b, *relay_only, "--metrics-per-peer", gateways=[gw])
        outsider = self.net.hub(stranger, gateways=[gw])
        for hub in (alpha, bravo):
            wait_online(hub, gw)
        wait_lists(alpha, {b.id}, logs=[gw])

        # A refusal, by its reason (then the stranger stops asking, so counts hold).
        wait_for(lambda: value(gw, "blockhub_gateway_refusals_total",
                               reason="not_allowed") >= 1,
                 what="the stranger's refusal counted as not_allowed", logs=[gw])
        outsider.stop()
        # The handshake: pending at bravo until approved, then a peering over a circuit.
        self.bh("connect", "--data-dir", alpha.data_dir, b.id, "--note", NOTE)
        self.agree(bravo, "blockhub_hub_pending", lambda: len(bravo.ctl("pending")),
                   "bravo's pending request")
        self.assertEqual(value(bravo, "blockhub_hub_pending"), 1)
        self.bh("approve", "--data-dir", bravo.data_dir, a.id)
        wait_for(lambda: alpha.status()["connected_peers"] == 1 and
                 bravo.status()["connected_peers"] == 1, what="the peering", logs=[gw])
        self.bh("send", "--data-dir", alpha.data_dir, b.id, TEXT)
        wait_for(lambda: len(bravo.ctl("messages")) == 1 and
                 alpha.status()["messages"]["unacked"] == 0, what="the message acked")

        self.check_gateway(gw)
        self.check_hub(alpha, sent=1, received=0)
        self.check_hub(bravo, sent=0, received=1)
        seen = values(scrape(alpha))
        self.assertEqual(seen["blockhub_hub_handshake_seconds_count", ()], 1)
        self.assertGreater(seen["blockhub_hub_store_commit_seconds_count", ()], 0)
        self.assertEqual(value(bravo, "blockhub_hub_handshake_seconds_count"), 0)

        # The scan: no address, note, text or id, except bravo's per-peer series.
        for daemon in (gw, alpha, bravo):
            text = scrape(daemon)
            self.assertIsNone(ADDRESS.search(text), text)
            for secret in (NOTE, TEXT, "note", "message for", g.id, stranger.id):
                self.assertNotIn(secret, text)
        self.assertNotIn(b.id, scrape(alpha) + scrape(gw))
        self.assertNotIn(a.id, scrape(gw))
        bravo_text = scrape(bravo)
        self.assertEqual(values(bravo_text)["blockhub_hub_peer_connected",
                                            (("peer", a.id),)], 1)
        ids = set(re.findall(r"bh[a-z2-7]{58}", bravo_text))
        self.assertEqual(ids, {a.id})
        self.assertEqual(set(re.findall(r'peer="(bh[a-z2-7]{58})"', bravo_text)), {a.id})

    def check_gateway(self, gw: Daemon):
        status = gw.status()
        seen = values(scrape(gw))
        counters, circuits = status["counters"], status["circuits"]
        self.assertEqual((status["online"], seen["blockhub_gateway_hubs", ()]), (2, 2))
        self.assertEqual(seen["blockhub_gateway_joins_total", ()], counters["joined"])
        self.assertGreater(counters["relayed"], 0)
        self.assertEqual(seen["blockhub_gateway_relayed_total", ()], counters["relayed"])
        self.assertEqual((circuits["count"], seen["blockhub_gateway_circuits", ()]), (1, 1))
        self.assertGreater(circuits["bytes"], 0)
        self.assertEqual(seen["blockhub_gateway_circuit_bytes_total", ()],
                         gw.status()["circuits"]["bytes"])  # no traffic: it stays put
        self.assertGreater(seen["blockhub_gateway_presence_fanout_seconds_count", ()], 0)
        refused = sum(v for (name, _), v in seen.items()
                      if name == "blockhub_gateway_refusals_total")
        self.assertEqual(refused, counters["refused"])
        self.assertNotIn(("blockhub_gateway_cluster_nodes", ()), seen)

    def check_hub(self, hub: Daemon, sent: int, received: int):
        status = hub.status()
        seen = values(scrape(hub))
        self.assertIsNotNone(status["gateway"])
        self.assertEqual(seen["blockhub_hub_gateway_online", ()], 1)
        self.assertEqual(seen["blockhub_hub_peers", (("path", "relayed"),)],
                         status["connected_peers"])
        self.assertEqual(seen["blockhub_hub_peers", (("path", "direct"),)], 0)
        self.assertEqual(seen["blockhub_hub_pending", ()], len(hub.ctl("pending")))
        messages = status["messages"]
        self.assertEqual((messages["sent"], messages["received"]), (sent, received))
        self.assertEqual(seen["blockhub_hub_messages_sent_total", ()], messages["sent"])
        self.assertEqual(seen["blockhub_hub_messages_received_total", ()],
                         len(hub.ctl("messages")))
        self.assertEqual(seen["blockhub_hub_unacked", ()], messages["unacked"])

    def test_only_metrics_is_served(self):
        (g,) = self.net.identities("gw")
        gw = self.net.gateway(g, *METRICS)
        base = f"http://{gw.status()['metrics']}"
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{base}/gateways", timeout=10)
        self.assertEqual(caught.exception.code, 404)
        self.assertIn("blockhub_gateway_hubs 0.0", scrape(gw))

    def test_per_peer_needs_metrics(self):
        (h,) = self.net.identities("hub")
        hub = self.net.hub(h, "--metrics-per-peer", gateways=["bh" + "a" * 58 +
                                                              "@127.0.0.1:1"], ready=False)
        wait_for(lambda: not hub.running, what="the hub to refuse its options")
        with open(hub.log) as f:
            self.assertIn("--metrics-per-peer needs --metrics ENDPOINT", f.read())
