"""Lab scenario (a): two hubs behind two different home routers, one of them
symmetric, become peers within 20 s, both listing the peering's ``path`` as
``relayed``, and exchange 100 messages each way, each exactly once and in order; and
the relayed peering comes back after ``kill -9`` and a restart of either hub, and of
the gateway that carries it, with nothing lost or doubled.

Each direct dial goes to the other router's public address and is dropped there; once
both dials have failed, both hubs ask the gateway for a circuit to the other.  alice
asks, so she is the TLS client inside the circuit and the side that keeps the peering
up (she redials over a circuit after a loss); bob, the receiver, listens for a circuit
from her whenever the link is down.
"""

from tests.integration.harness import wait_for
from tests.netlab.case import LabCase, suite_of
from tests.netlab.daemons import LabNetwork, Ledger, connected, exchange, paths, wait_peered

PEERING_TIMEOUT = 20.0  # issue 14, 5 (a)
# After a restart: twistd starts (a few seconds), the dialer's stored address is tried
# first (dropped by the NAT: 5 s), then the circuit; when the receiver was the one
# killed, the dialer's backoff between attempts adds up to a few seconds more.
RECOVERY_TIMEOUT = 45.0
LOSS_TIMEOUT = 15.0  # the gateway ends the circuit as soon as the killed hub's TCP goes


class RelayedCase(LabCase):

    def relayed_pair(self):
        """alice behind a cone NAT, bob behind a symmetric one, approving each other;
        alice asks bob; returns (net, gw, alice, bob) once they peer over a circuit."""
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
        self.assert_relayed(alice, bob, gw)
        return net, gw, alice, bob

    def assert_relayed(self, x, y, gw):
        for hub, row in zip((x, y), paths(x, y), strict=True):
            self.assertEqual((row["path"], row["via"], row["address"]),
                             ("relayed", gw.id, None), (hub.name, row))


class RelayedPeeringBetweenNATs(RelayedCase):

    def test_two_hubs_behind_different_nats_peer_and_exchange_messages(self):
        _net, gw, alice, bob = self.relayed_pair()
        exchange(alice, bob, count=100, logs=[gw])
        self.assertEqual(paths(alice, bob)[0]["dialer"], True)  # the requester keeps it up
        for hub in (alice, bob):
            circuits = hub.status()["circuits"]
            self.assertEqual(circuits["count"], 1, (hub.name, circuits))
            self.assertGreater(circuits["bytes"], 200 * 20, (hub.name, circuits))


class RelayedPeeringAcrossRestarts(RelayedCase):

    def test_kill_9_of_the_requester_then_of_the_receiver_then_of_the_gateway(self):
        """Each hub in turn is killed with messages of its own just committed (some
        still on their way), the other sends while it is down, and the restarted one
        sends before its link is back: once the relayed peering is up again, each side
        holds every message of the other, once each and in order.  Then the gateway is
        killed, both send, and it restarts: the peering comes back over a new circuit
        and nothing is lost there either."""
        net, gw, alice, bob = self.relayed_pair()
        ledger = Ledger()
        ledger.send(alice, bob, 5, "before ")
        ledger.send(bob, alice, 5, "before ")
        ledger.check(logs=[gw])
        for killed, other in ((alice, bob), (bob, alice)):
            self.kill_and_restart(net, gw, killed, other, ledger)
            ledger.check(logs=[gw])
        exchange(alice, bob, count=10, logs=[gw])  # and the link carries new messages

        # The gateway carries the circuit: killing it is a loss like any other.
        gw.kill()
        for hub, other in ((alice, bob), (bob, alice)):
            wait_for(lambda hub=hub, other=other: not connected(hub, other), LOSS_TIMEOUT,
                     f"{hub.name} to see its link to {other.name} go", logs=[alice, bob])
            ledger.send(hub, other, 10, "gateway down ")
        net.restart(gw)
        wait_peered(alice, bob, RECOVERY_TIMEOUT, logs=[gw])
        self.assert_relayed(alice, bob, gw)
        ledger.check(logs=[gw])

    def kill_and_restart(self, net, gw, killed, other, ledger):
        ledger.send(killed, other, 20, f"{killed.name} dies ")
        killed.kill()
        wait_for(lambda: not connected(other, killed), LOSS_TIMEOUT,
                 f"{other.name} to see its link to {killed.name} go", logs=[other, gw])
        ledger.send(other, killed, 20, f"{killed.name} down ")
        net.restart(killed)
        ledger.send(killed, other, 10, f"{killed.name} back ")
        wait_peered(killed, other, RECOVERY_TIMEOUT, logs=[gw])
        self.assert_relayed(killed, other, gw)


testSuite = suite_of(__name__)
