"""Lab scenarios for punching through NAT (docs/nat.md): two hubs behind two cone NATs
peer directly within 15 s; with a symmetric NAT on one side they peer over a circuit
(the punch fails); two hubs behind one NAT peer directly over their LAN; and a relayed
peering whose NAT turns from symmetric to cone while messages flow moves onto a direct
path, every message arriving exactly once and in order.

Each hub listens on a port of its own and connects to the gateway from that port, so
the gateway's ``observed`` is where its router maps the port.  The requester's and the
receiver's plain dials are dropped by the routers (5 s each); then the requester offers
a punch through the gateway, and the two dial each other at once.
"""

import time

from tests.integration.harness import tail, wait_for
from tests.netlab.case import LabCase, suite_of
from tests.netlab.daemons import Ledger, exchange, nat_pair, paths, wait_peered

DIRECT_TIMEOUT = 15.0  # issue 17, 6: cone NAT on both sides
RELAYED_TIMEOUT = 30.0  # two dropped dials, a failed punch, then the circuit
UPGRADE_TIMEOUT = 60.0  # the next background try comes within about 10 s


class PunchCase(LabCase):

    def pair(self, kind_a: str, kind_b: str | None):
        return nat_pair(self, self.lab, kind_a, kind_b)

    def connect(self, net, gw, alice, bob, timeout: float) -> float:
        started = time.monotonic()
        net.blockhub_on(alice, "connect", bob.id, "--note", "hole punching")
        wait_peered(alice, bob, timeout, logs=[gw, alice, bob])
        return time.monotonic() - started

    def assert_path(self, x, y, path: str, gw):
        for hub, row in zip((x, y), paths(x, y), strict=True):
            self.assertEqual(row["path"], path, (hub.name, row))
            self.assertEqual(row["via"], gw.id if path == "relayed" else None,
                             (hub.name, row))


class PunchThroughNAT(PunchCase):

    def test_cone_nats_on_both_sides_go_direct(self):
        net, gw, alice, bob = self.pair("cone", "cone")
        took = self.connect(net, gw, alice, bob, DIRECT_TIMEOUT)
        self.assert_path(alice, bob, "direct", gw)
        self.assertLess(took, DIRECT_TIMEOUT)
        self.assertEqual(gw.status()["circuits"]["count"], 0)
        exchange(alice, bob, count=20, logs=[gw])

    def test_a_symmetric_nat_on_one_side_stays_relayed(self):
        net, gw, alice, bob = self.pair("cone", "symmetric")
        self.connect(net, gw, alice, bob, RELAYED_TIMEOUT)
        self.assert_path(alice, bob, "relayed", gw)
        exchange(alice, bob, count=20, logs=[gw])

    def test_two_hubs_behind_one_nat_go_direct_over_the_lan(self):
        net, gw, alice, bob = self.pair("cone", None)
        for hub in (alice, bob):  # both seen from the router's one public address
            endpoint = hub.status()["endpoint"]
            self.assertEqual(endpoint.rpartition(":")[0], self.lab.address("home1"))
        # Each plain dial goes to the router, which has no hairpin and refuses it; the
        # punch's local address is what gets through.
        self.connect(net, gw, alice, bob, DIRECT_TIMEOUT)
        self.assert_path(alice, bob, "direct", gw)
        row = paths(alice, bob)[0]  # alice dialed bob's own address on their network
        self.assertEqual(row["address"].rpartition(":")[0], self.lab.address("bob"))
        exchange(alice, bob, count=20, logs=[gw])


class RelayedPeeringMovesOntoDirectPath(PunchCase):

    def test_a_nat_that_turns_cone_lets_the_peering_go_direct(self):
        net, gw, alice, bob = self.pair("cone", "symmetric")
        self.connect(net, gw, alice, bob, RELAYED_TIMEOUT)
        self.assert_path(alice, bob, "relayed", gw)
        ledger = Ledger()
        ledger.send(alice, bob, 30, "relayed")
        ledger.send(bob, alice, 30, "relayed")
        self.lab.set_nat_kind("home2", "cone")  # bob's router now keeps ports
        deadline = time.monotonic() + UPGRADE_TIMEOUT
        while not all(r["path"] == "direct" and r["connected"] for r in paths(alice, bob)):
            if time.monotonic() > deadline:
                raise AssertionError(f"no direct path within {UPGRADE_TIMEOUT}s: "
                                     f"{paths(alice, bob)}\n{tail(alice.log, 40)}")
            ledger.send(alice, bob, 2, "moving")  # messages flow while it moves
            ledger.send(bob, alice, 2, "moving")
        ledger.send(alice, bob, 30, "direct")
        ledger.send(bob, alice, 30, "direct")
        ledger.check(logs=[gw, alice, bob])
        self.assert_path(alice, bob, "direct", gw)
        wait_for(lambda: all(d.status()["circuits"]["count"] == 0 for d in (gw, alice, bob)),
                 10, "the gateway and both hubs to close the circuit", logs=[gw])


testSuite = suite_of(__name__)
