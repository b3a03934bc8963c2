"""Lab scenario for invites (docs/invites.md): two hubs on two networks behind NATs,
approving nobody, peer with one invite code; with a symmetric NAT on one side the
invited peering runs over a relay circuit.  The code crosses no network: it is what
bob's operator pastes to alice's."""

from tests.netlab.case import LabCase, suite_of
from tests.netlab.daemons import exchange, nat_pair, paths, wait_peered
from tests.netlab.test_punch import DIRECT_TIMEOUT, RELAYED_TIMEOUT


class InviteAcrossNATs(LabCase):

    def invite_and_use(self, kind_b: str, timeout: float):
        net, gw, alice, bob = nat_pair(self, self.lab, "cone", kind_b, approve=False)
        made = net.json_on(bob, "invite", "create", "--note", "for alice")
        net.blockhub_on(alice, "connect", "--invite", made["code"])
        wait_peered(alice, bob, timeout, logs=[gw, alice, bob])
        self.assertEqual(net.json_on(bob, "pending"), [])
        [row] = [r for r in bob.status()["requests"] if r["peer"] == alice.id]
        self.assertEqual(row["how"], "invite")
        [invite] = net.json_on(bob, "invite", "list")
        self.assertEqual((invite["id"], invite["uses"], invite["state"]),
                         (made["id"], 0, "used"))
        exchange(alice, bob, count=10, logs=[gw])
        return gw, alice, bob

    def test_cone_nats_peer_on_the_code_alone(self):
        gw, alice, bob = self.invite_and_use("cone", DIRECT_TIMEOUT)
        self.assertEqual({r["path"] for r in paths(alice, bob)}, {"direct"})

    def test_a_symmetric_nat_peers_on_the_code_over_a_circuit(self):
        gw, alice, bob = self.invite_and_use("symmetric", RELAYED_TIMEOUT)
        self.assertEqual({r["path"] for r in paths(alice, bob)}, {"relayed"})


testSuite = suite_of(__name__)
