"""Faults with real processes: a hub killed in the middle of a handshake, a gateway
killed and restarted under established peers.  After each, the system recovers by
itself, nothing approved is lost and no request is duplicated."""

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.harness import LISTEN_ANY_PORT, Network, wait_for, wait_lists

LISTEN = ("--listen", LISTEN_ANY_PORT)


def state(hub, direction, peer_id):
    rows = [r for r in hub.status()["requests"]
            if r["direction"] == direction and r["peer"] == peer_id]
    assert len(rows) <= 1, rows  # never a duplicated request
    return rows[0]["state"] if rows else None


def connected(hub, peer_id):
    return any(p["id"] == peer_id and p["connected"] for p in hub.ctl("peers"))


class FaultTests(SynchronousTestCase):
    def setUp(self):
        self.net = Network(self)

    def test_requester_killed_mid_handshake_then_approved(self):
        g, a, b = self.net.identities("gw", "alpha", "bravo")
        gw = self.net.gateway(g)
        alpha, bravo = self.net.hubs_each([(a, LISTEN), (b, LISTEN)], gateways=[gw])
        wait_lists(gw, {a.id, b.id})
        self.net.blockhub("connect", "--data-dir", alpha.data_dir, b.id, "--note", "hi")
        wait_for(lambda: bravo.ctl("pending"), what="bravo's pending request",
                 logs=[alpha, bravo])
        alpha.kill()  # kill -9 while the request waits for bravo's operator
        alpha = self.net.restart(alpha)
        wait_for(lambda: state(alpha, "out", b.id) == "sent",
                 what="alpha's restored request to be sent again", logs=[alpha])
        pending = bravo.ctl("pending")
        self.assertEqual([p["id"] for p in pending], [a.id])  # renewed, not duplicated
        self.net.blockhub("approve", "--data-dir", bravo.data_dir, a.id)
        wait_for(lambda: connected(alpha, b.id) and connected(bravo, a.id),
                 what="the peer link after alpha's restart", logs=[alpha, bravo])
        self.assertEqual(state(alpha, "out", b.id), "connected")

    def test_gateway_killed_peers_keep_talking_and_hubs_rejoin(self):
        g, a, b = self.net.identities("gw", "alpha", "bravo")
        gw = self.net.gateway(g)
        alpha, bravo = self.net.hubs_each([(a, LISTEN), (b, [*LISTEN, "--approve-key", a.id])],
                                          gateways=[gw])
        wait_lists(gw, {a.id, b.id})
        self.net.blockhub("connect", "--data-dir", alpha.data_dir, b.id)
        wait_for(lambda: connected(alpha, b.id), what="the peer link", logs=[alpha, bravo])
        port = gw.port
        gw.kill()
        # The direct link does not need the gateway.
        self.net.blockhub("send", "--data-dir", alpha.data_dir, b.id, "while the gateway is down")
        wait_for(lambda: [m["text"] for m in bravo.ctl("messages")]
                 == ["while the gateway is down"], what="the message", logs=[alpha, bravo])
        gw = self.net.restart(gw, listen=f"tcp:{port}:interface=127.0.0.1")
        wait_lists(gw, {a.id, b.id}, timeout=60)
        self.assertEqual(state(bravo, "in", a.id), "connected")
        self.assertTrue(connected(alpha, b.id))
