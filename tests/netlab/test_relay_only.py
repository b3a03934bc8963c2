"""Lab scenario (b): a ``--peer-path relay`` hub behind a home router peers with public
hubs, asking and asked, and no packet of its ever reaches them.

rel sits behind a cone NAT and runs ``--peer-path relay`` (no ``--listen``).  It asks
pub1; pub2 asks it.  Both peerings run over circuits through the gateway.  nftables
counters in each public hub's namespace count every packet arriving from rel's router
(the only address rel's packets could come from) or from rel's own address, and every
packet sent to either: all stay at 0, while the same counters on the gateway's address
climb (the counters work).  On rel's host, nothing is sent to a public hub either.

The gateway runs in open mode, where a hub that listens publishes its endpoint in its
HubInfo: the archive hub then records pub1's and pub2's endpoints, which shows that it
would record an address if one were told, and none of rel's addresses nor the port the
gateway sees it from.  Each side's ``peers --json`` gives no address for rel.
"""

import json

from tests.integration.harness import wait_lists
from tests.integration.test_handshake import has_number, port_of
from tests.netlab.case import LabCase, suite_of
from tests.netlab.counters import count_packets, packets
from tests.netlab.daemons import LabNetwork, exchange, paths, wait_peered

PEERING_TIMEOUT = 20.0


class RelayOnlyHub(LabCase):

    def test_relay_only_hub_peers_both_ways_and_reveals_no_address(self):
        lab = self.lab
        lab.add_nat("home1", kind="cone")
        for name in ("gw", "arch", "pub1", "pub2"):
            lab.add_host(name)
        lab.add_host("rel", behind="home1")
        rel_addresses = {"rel_router": lab.public_address("rel"), "rel": lab.address("rel")}
        gw_address = lab.address("gw")
        for pub in ("pub1", "pub2"):
            count_packets(lab, pub,
                          incoming={f"from_{k}": a for k, a in rel_addresses.items()}
                          | {"from_gw": gw_address},
                          outgoing={f"to_{k}": a for k, a in rel_addresses.items()})
        count_packets(lab, "rel", outgoing={"to_pub1": lab.address("pub1"),
                                            "to_pub2": lab.address("pub2"),
                                            "to_gw": gw_address})

        net = LabNetwork(self, lab)
        key = net.network_key("network.key")
        ids = net.identities("gw", "arch", "pub1", "pub2", "rel")
        g, ar, p1, p2, r = ids
        gw = net.lab_gateway(g, "--mode", "open", "--network-key", key)
        netkey = ["--network-key", key]
        rel = net.hub(r, *netkey, "--peer-path", "relay", "--approve-key", p2.id,
                      gateways=[net.spec(gw)], ready=False)  # no --listen: it may not
        arch, pub1, pub2 = net.lab_hubs(gw, [(ar, [*netkey, "--archive"]),
                                             (p1, [*netkey, "--approve-key", r.id]),
                                             (p2, netkey)])
        rel.wait_ready()
        wait_lists(gw, {i.id for i in ids[1:]}, timeout=20, logs=[rel])
        wait_lists(arch, {i.id for i in ids[2:]}, timeout=20, logs=[gw])

        net.blockhub_on(rel, "connect", p1.id, "--note", "relay only, asking")
        net.blockhub_on(pub2, "connect", r.id, "--note", "asking a relay-only hub")
        for pub in (pub1, pub2):
            wait_peered(rel, pub, PEERING_TIMEOUT, logs=[gw])
            for hub, row in zip((rel, pub), paths(rel, pub), strict=True):
                self.assertEqual((row["path"], row["via"], row["address"]),
                                 ("relayed", gw.id, None), (hub.name, row))
            exchange(rel, pub, count=10, logs=[gw])
        self.assertEqual(rel.status()["circuits"]["count"], 2)

        # Nothing of rel's reached a public hub, nor went from them to it.
        for pub in ("pub1", "pub2"):
            counted = packets(lab, pub)
            self.assertGreater(counted.pop("from_gw"), 0, (pub, counted))  # they count
            self.assertEqual(counted, dict.fromkeys(counted, 0), pub)
        counted = packets(lab, "rel")
        self.assertGreater(counted.pop("to_gw"), 0, counted)
        self.assertEqual(counted, {"to_pub1": 0, "to_pub2": 0})

        # What the public hubs know of rel: its id, no endpoint, no address.
        for pub in (pub1, pub2):
            theirs = {row["id"]: row for row in net.json_on(pub, "peers")}
            self.assertIsNone(theirs[r.id]["address"], (pub.name, theirs[r.id]))
            listed = {row["id"]: row for row in pub.hubs()}
            self.assertIsNone(listed[r.id]["endpoint"], (pub.name, listed[r.id]))
            self.assertIsNotNone(listed[ar.id]["endpoint"], (pub.name, listed[ar.id]))
        self.assertIsNone(rel.status()["endpoint"])

        # The archive holds the public hubs' endpoints (it would keep an address it was
        # told) and nothing of rel's whereabouts.
        seen_by_gateway = {row["id"]: row["address"] for row in gw.hubs()}
        self.assertEqual(seen_by_gateway[r.id].rpartition(":")[0],
                         rel_addresses["rel_router"])
        rows = net.json_on(arch, "archive")
        text = json.dumps(rows)
        for pub in (pub1, pub2):
            self.assertIn(pub.status()["endpoint"], text)
        recorded = {row["hub"] for row in rows if row.get("hubinfo")}
        self.assertTrue({i.id for i in ids[2:]} <= recorded, rows)
        rel_port = port_of(seen_by_gateway[r.id])
        for row in rows:
            row_text = json.dumps(row)
            for address in rel_addresses.values():
                self.assertNotIn(address, row_text, row)
            self.assertFalse(has_number(rel_port, row_text), (rel_port, row))
            if row["hub"] == r.id and row.get("hubinfo"):
                self.assertNotIn("endpoint", json.loads(row["hubinfo"])["body"], row)


testSuite = suite_of(__name__)
