"""Lab check of private mode: behind real NATs, no hub's address reaches an archive hub.

A private-mode gateway on the internet; an ``--archive`` hub and another public hub;
hubs behind a cone NAT, behind a symmetric one, and two behind one more NAT.  The public
hub asks three of them and they peer (requests and acceptances carry endpoints, sealed).
The archive hub then holds every hub's signed HubInfo and presence changes, and none of
the lab's addresses (private, router, public) nor any port a hub listens on or was seen
from; no hub's list of online hubs gives an endpoint.
"""

import json

from tests.integration.harness import wait_lists
from tests.integration.test_handshake import has_number, port_of
from tests.netlab.case import LabCase, suite_of
from tests.netlab.daemons import LabNetwork, wait_peered

PEERING_TIMEOUT = 20.0


class PrivateModeBehindNATs(LabCase):

    def test_no_hub_address_reaches_an_archive_hub(self):
        lab = self.lab
        lab.add_nat("home1", kind="cone")
        lab.add_nat("home2", kind="symmetric")
        lab.add_nat("home3", kind="cone")
        for name in ("gw", "arch", "pub"):
            lab.add_host(name)
        for name, nat in (("alice", "home1"), ("bob", "home2"), ("carol", "home3"),
                          ("dave", "home3")):
            lab.add_host(name, behind=nat)
        net = LabNetwork(self, lab)
        ids = net.identities("gw", "arch", "pub", "alice", "bob", "carol", "dave")
        g, ar, p, *natted_ids = ids
        gw = net.lab_gateway(g)  # private mode: the default
        hubs = net.lab_hubs(gw, [(ar, ["--archive"]), (p, []),
                                 *[(i, ["--approve-key", p.id]) for i in natted_ids]])
        arch, pub, alice, bob, carol, dave = hubs
        wait_lists(gw, {i.id for i in ids[1:]}, timeout=20)
        wait_lists(arch, {i.id for i in ids[2:]}, timeout=20, logs=[gw])  # not itself

        for hub in (alice, bob, carol):
            net.blockhub_on(pub, "connect", hub.id, "--note", "private mode")
        for hub in (alice, bob, carol):
            wait_peered(pub, hub, PEERING_TIMEOUT, logs=[gw])

        # Everything that would give a hub's whereabouts away.
        addresses = [node.address for node in lab.nodes.values() if node.address]
        listening = [hub.status()["listen"] for hub in hubs]
        seen_by_gateway = [row["address"] for row in gw.hubs()]
        seen_by_pub = [row["address"] for row in pub.ctl("peers")]
        self.assertEqual((len(seen_by_gateway), len(seen_by_pub)), (len(hubs), 3))
        ports = {port_of(a) for a in listening + seen_by_gateway + seen_by_pub}

        rows = net.json_on(arch, "archive")
        recorded = {row["hub"] for row in rows if row.get("hubinfo")}
        self.assertTrue({i.id for i in ids[2:]} <= recorded, rows)
        for row in rows:
            text = json.dumps(row)
            for address in addresses:
                self.assertNotIn(address, text, f"{address} in archive row {row}")
            for port in ports:
                self.assertFalse(has_number(port, text), f"port {port} in archive row {row}")
            if row.get("hubinfo"):
                self.assertNotIn("endpoint", json.loads(row["hubinfo"])["body"], row)
        for hub in hubs:
            for listed in hub.hubs():
                self.assertIsNone(listed.get("endpoint"), (hub.name, listed))


testSuite = suite_of(__name__)
