"""Lab scenario (a), the test relay circuits will have to pass: two hubs behind two
different home routers, one of them symmetric, become peers within 20 s, both listing
the peering's ``path`` as ``relayed``, and exchange 100 messages each way, each exactly
once and in order.

Each direct dial goes to the other router's public address and is dropped there; once
both dials have failed, both hubs ask the gateway for a circuit to the other.
"""

from tests.integration.test_handshake import peer_row
from tests.netlab.case import LabCase, suite_of
from tests.netlab.daemons import LabNetwork, exchange, wait_peered

PEERING_TIMEOUT = 20.0  # issue 14, 5 (a)


class RelayedPeeringBetweenNATs(LabCase):

    def test_two_hubs_behind_different_nats_peer_and_exchange_messages(self):
        lab = self.lab
        lab.add_nat("home1", kind="cone")
        lab.add_nat("home2", kind="symmetric")
        lab.add_host("gw")
        lab.add_host("alice", behind="home1")
        lab.add_host("bob", behind="home2")
        net = LabNetwork(self, lab)
        g, a, b = net.identities("gw", "alice", "bob")
        gw = net.lab_gateway(g)
        alice, bob = net.lab_hubs(gw, [(a, ["--approve-key", b.id]),
                                       (b, ["--approve-key", a.id])])

        net.blockhub_on(alice, "connect", b.id, "--note", "from one home to another")
        wait_peered(alice, bob, PEERING_TIMEOUT, logs=[gw])
        for hub, other in ((alice, bob), (bob, alice)):
            row = peer_row(hub, other.id)
            self.assertEqual(row.get("path"), "relayed", (hub.name, row))
        exchange(alice, bob, count=100, logs=[gw])


testSuite = suite_of(__name__)
