"""Open mode (Scenario 1 in docs/design.md) with real processes: endpoints are shared among
hubs admitted by the network key, requests go straight to the receiver, and the
gateway relays nothing."""

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.harness import LISTEN_ANY_PORT, Network, wait_for, wait_lists

LISTEN = ("--listen", LISTEN_ANY_PORT)


def connected(hub, peer_id):
    return any(p["id"] == peer_id and p["connected"] for p in hub.ctl("peers"))


class OpenModeTests(SynchronousTestCase):
    def test_direct_requests_pending_and_auto_accepted(self):
        net = Network(self)
        key = net.network_key("network.key")
        g, a, b, c = net.identities("gw", "alpha", "bravo", "charlie")
        gw = net.gateway(g, "--mode", "open", "--network-key", key)
        alpha, bravo, charlie = net.hubs_each(
            [(a, [*LISTEN, "--network-key", key]), (b, [*LISTEN, "--network-key", key]),
             (c, [*LISTEN, "--network-key", key, "--approve-key", a.id])], gateways=[gw])
        wait_lists(gw, {a.id, b.id, c.id})
        wait_for(lambda: all(h["endpoint"] for h in alpha.hubs()) and len(alpha.hubs()) == 2,
                 what="alpha to see the others' endpoints", logs=[gw, alpha])
        ports = {h["id"]: int(h["endpoint"].rpartition(":")[2]) for h in alpha.hubs()}
        self.assertEqual(ports[b.id], int(bravo.status()["listen"].rpartition(":")[2]))

        # bravo has not approved alpha: the direct request waits for its operator.
        net.blockhub("connect", "--data-dir", alpha.data_dir, b.id, "--note", "direct")
        wait_for(lambda: bravo.ctl("pending"), what="bravo's pending request",
                 logs=[alpha, bravo])
        self.assertEqual(bravo.ctl("pending")[0]["note"], "direct")
        net.blockhub("approve", "--data-dir", bravo.data_dir, a.id)
        wait_for(lambda: connected(alpha, b.id), what="bravo dialing alpha",
                 logs=[alpha, bravo])

        # charlie approves alpha's key: the request's own connection becomes the link.
        net.blockhub("connect", "--data-dir", alpha.data_dir, c.id)
        wait_for(lambda: connected(alpha, c.id), what="the auto-accepted link",
                 logs=[alpha, charlie])
        self.assertEqual(gw.status()["counters"]["relayed"], 0)
