"""Lab scenario (c), what worked before relay circuits: a hub behind a NAT and public hubs
become direct peers in both directions, through a cone NAT and through a symmetric one
at once, and still go direct (``path`` ``direct`` on both sides, no gateway ``via``)
now that a circuit is there to fall back on.

alice (behind a cone NAT) and bob (behind a symmetric one) each ask pub1: pub1 dials
the endpoint the request claims (the router's public address and the hub's listen
port), the router drops the dial, and pub1 answers with an acceptance carrying its own
endpoint, which the NAT'd hub dials: the reverse dial.  pub2 asks alice and bob: they
dial pub2 directly.  Messages then flow on all four links.
"""

from tests.netlab.case import LabCase, suite_of
from tests.netlab.daemons import LabNetwork, exchange, wait_peered

# pub1's dial to a NAT'd hub waits for the peer connect timeout (5 s) before it answers
# with its own endpoint; the dial back then takes a moment.
PEERING_TIMEOUT = 30.0


class DirectPeeringThroughNAT(LabCase):

    def test_cone_and_symmetric_nat_both_directions(self):
        lab = self.lab
        lab.add_nat("home1", kind="cone")
        lab.add_nat("home2", kind="symmetric")
        for name in ("gw", "pub1", "pub2"):
            lab.add_host(name)
        lab.add_host("alice", behind="home1")
        lab.add_host("bob", behind="home2")
        net = LabNetwork(self, lab)
        g, p1, p2, a, b = net.identities("gw", "pub1", "pub2", "alice", "bob")
        gw = net.lab_gateway(g)
        pub1, pub2, alice, bob = net.lab_hubs(gw, [
            (p1, ["--approve-key", a.id, "--approve-key", b.id]), (p2, []),
            (a, ["--approve-key", p2.id]), (b, ["--approve-key", p2.id])])
        natted = (alice, bob)

        for hub in natted:
            net.blockhub_on(hub, "connect", p1.id, "--note", "from behind a NAT")
            net.blockhub_on(pub2, "connect", hub.id, "--note", "to behind a NAT")
        for hub in natted:
            wait_peered(hub, pub2, PEERING_TIMEOUT, logs=[gw])
            wait_peered(hub, pub1, PEERING_TIMEOUT, logs=[gw])

        # What each side's `blockhub peers --json` says, run on its own host.
        peers = net.json_on_each([(hub, ["peers"]) for hub in (alice, bob, pub1, pub2)])
        for hub in natted:
            mine = {row["id"]: row for row in peers[hub.name]}
            self.assertEqual(set(mine), {pub1.id, pub2.id}, hub.name)
            for pub in (pub1, pub2):
                row = mine[pub.id]
                self.assertIs(row["connected"], True, (hub.name, row))
                self.assertEqual((row["path"], row["via"]), ("direct", None), (hub.name, row))
                self.assertEqual(row["address"], pub.status()["listen"], (hub.name, row))
                # The NAT'd hub dialed both: pub1 back (reverse dial), pub2 on acceptance.
                self.assertIs(row["dialer"], True, (hub.name, row))
        for pub in (pub1, pub2):
            theirs = {row["id"]: row for row in peers[pub.name]}
            self.assertEqual(set(theirs), {alice.id, bob.id}, pub.name)
            for hub in natted:
                row = theirs[hub.id]
                self.assertIs(row["connected"], True, (pub.name, row))
                self.assertEqual((row["path"], row["via"]), ("direct", None), (pub.name, row))
                self.assertIs(row["dialer"], False, (pub.name, row))
                # A public hub sees a NAT'd hub at its router's public address.
                self.assertEqual(row["address"].rpartition(":")[0],
                                 lab.public_address(hub.name), (pub.name, row))

        for hub in natted:
            for pub in (pub1, pub2):
                exchange(hub, pub, count=10, logs=[gw])
        # No circuit was needed, nor made.
        self.assertEqual(gw.status()["counters"]["circuits_opened"], 0)


testSuite = suite_of(__name__)
