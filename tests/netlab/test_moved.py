"""Lab scenario: a direct peering whose non-dialing side moves comes back over a
relay circuit (issue 14, 4: "the peering comes back, direct when possible, else a
new circuit as soon as both hubs are online at one gateway again").

pub (public) asks alice (behind a cone NAT), who dials pub at the request's endpoint:
a direct peering that alice, its dialer, keeps up at the address she stored.  pub is
then killed and comes back listening on another port, as a hub does whose address
changed: alice's stored address is refused, and nothing tells her the new one.  Only
a circuit can bring the peering back, and it takes both hubs asking the gateway: pub,
the side that does not redial, listens for a circuit whenever the link is down.
"""

from tests.integration.harness import wait_for
from tests.netlab.case import LabCase, suite_of
from tests.netlab.daemons import LabNetwork, Ledger, connected, paths, wait_peered

PEERING_TIMEOUT = 20.0
RECOVERY_TIMEOUT = 20.0  # with both hubs asking, the circuit opens within a second or two


class MovedPeer(LabCase):

    def test_direct_peering_comes_back_over_a_circuit_after_the_acceptor_moves(self):
        lab = self.lab
        lab.add_nat("home1", kind="cone")
        lab.add_host("gw")
        lab.add_host("pub")
        lab.add_host("alice", behind="home1")
        net = LabNetwork(self, lab)
        g, p, a = net.identities("gw", "pub", "alice")
        gw = net.lab_gateway(g)
        pub, alice = net.lab_hubs(gw, [(p, []), (a, ["--approve-key", p.id])])
        net.blockhub_on(pub, "connect", a.id, "--note", "to behind a NAT")
        wait_peered(alice, pub, PEERING_TIMEOUT, logs=[gw])
        mine, theirs = paths(alice, pub)
        self.assertEqual((mine["path"], mine["dialer"]), ("direct", True), mine)
        self.assertEqual((theirs["path"], theirs["dialer"]), ("direct", False), theirs)

        ledger = Ledger()
        ledger.send(alice, pub, 5, "before ")
        ledger.check(logs=[gw])
        old = pub.status()["listen"]
        pub.kill()
        wait_for(lambda: not connected(alice, pub), 15, "alice to see the link go",
                 logs=[alice, gw])
        ledger.send(alice, pub, 5, "pub down ")
        net.restart(pub, listen=net.listen("pub", 0))  # another port: pub moved
        self.assertNotEqual(pub.status()["listen"], old)
        ledger.send(pub, alice, 5, "pub moved ")
        wait_peered(alice, pub, RECOVERY_TIMEOUT, logs=[gw])
        for hub, row in zip((alice, pub), paths(alice, pub), strict=True):
            self.assertEqual((row["path"], row["via"]), ("relayed", gw.id), (hub.name, row))
        ledger.check(logs=[gw])


testSuite = suite_of(__name__)
