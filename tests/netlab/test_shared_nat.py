"""Lab scenario: two hubs behind one home router, which has no hairpin, peer over a
relay circuit.

carol and dave share a cone NAT.  Each knows the other only by the endpoint the
gateway sees (the router's public address and a listen port); a dial there from inside
reaches the router itself, which refuses it (nothing listens there, and it does not
loop the connection back to the other host).  So
dave's dial to carol and carol's dial back both fail, and the two meet through the
gateway: ``path`` is ``relayed`` on both sides.  (Finding each other on their home
network directly is issue 17's.)
"""

from tests.integration.harness import wait_for
from tests.netlab.case import LabCase, suite_of
from tests.netlab.daemons import LabNetwork, exchange, paths, wait_peered

PEERING_TIMEOUT = 20.0


class TwoHubsBehindOneNAT(LabCase):

    def test_two_hubs_behind_one_nat_peer_over_a_circuit(self):
        lab = self.lab
        lab.add_nat("home", kind="cone")
        lab.add_host("gw")
        lab.add_host("carol", behind="home")
        lab.add_host("dave", behind="home")
        net = LabNetwork(self, lab)
        g, c, d = net.identities("gw", "carol", "dave")
        gw = net.lab_gateway(g)
        carol, dave = net.lab_hubs(gw, [(c, []), (d, ["--approve-key", c.id])])
        for hub in (carol, dave):  # both seen from the router's one public address
            endpoint = wait_for(lambda hub=hub: hub.status()["endpoint"], 10,
                                f"{hub.name} to be online", logs=[hub, gw])
            self.assertEqual(endpoint.rpartition(":")[0], lab.address("home"), hub.name)

        net.blockhub_on(carol, "connect", d.id, "--note", "from next door")
        wait_peered(carol, dave, PEERING_TIMEOUT, logs=[gw])
        for hub, row in zip((carol, dave), paths(carol, dave), strict=True):
            self.assertEqual((row["path"], row["via"], row["address"]),
                             ("relayed", gw.id, None), (hub.name, row))
        self.assertEqual(gw.status()["circuits"]["count"], 1)
        exchange(carol, dave, count=20, logs=[gw])


testSuite = suite_of(__name__)
