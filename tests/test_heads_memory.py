"""Signed presence heads between a gateway and hubs in memory (real TLS, one Clock):
heads reach the hubs and their peers; a gateway that shows one hub another list is
caught by that hub; a head that forks the chain, from a peer, is a proof."""

import json
import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import UserError
from blockhub.gateway.head_chain import HeadChain
from blockhub.gateway.head_file import HeadFile
from blockhub.heads import check_proof, make_head, set_commitment
from blockhub.hubinfo import make_hubinfo
from blockhub.wire.canonical import b64
from tests.memory import FullHub, World, new_identity
from tests.test_invites_memory import later


class HeadsTests(SynchronousTestCase):
    def setUp(self):
        self.world = World()
        self.a = self.world.full_hub(self, "a")
        self.b = self.world.full_hub(self, "b")
        self.gw = self.world.identity.id
        later(self.world, 11)

    def heads_of(self, hub, gateway=None):
        return hub.graph.heads.heads.get(gateway or self.gw, {})

    def peer(self):
        self.b.store.add_approved_key(self.a.id, 0)
        self.a.operator.connect(self.b.id, "")
        self.world.flush()
        self.assertIn(self.b.id, self.a.peers.connections)

    def test_each_hub_gets_the_chain_and_churn_raises_no_alarm(self):
        chain = self.world.graph.heads
        self.assertEqual(chain.latest.count, 2)
        for hub in (self.a, self.b):
            self.assertIn(chain.latest.seq, self.heads_of(hub))
        c = self.world.full_hub(self, "c")
        later(self.world, 11)
        c.stop()
        later(self.world, 11)
        self.a.hub.publish(meta={"x": 1})
        later(self.world, 11)
        self.assertEqual(chain.latest.count, 2)
        self.assertIn(chain.latest.seq, self.heads_of(self.a))
        for hub in (self.a, self.b):
            self.assertEqual(hub.graph.heads.alarms, [])

    def test_updates_over_the_rate_limit_raise_no_alarm(self):
        for n in range(12):  # the burst is 5: most are dropped, and never kept
            self.a.hub.publish(meta={"n": n})
            self.world.flush()
        later(self.world, 11)
        self.assertEqual(self.a.graph.heads.alarms, [])
        self.assertGreater(self.world.gateway.counters.updates_refused, 0)

    def test_a_gateway_showing_one_hub_another_list_is_caught_by_it(self):
        self.world.expect_alarms = True
        conn = self.world.gateway.presence.connection_for(self.b.id)
        conn.send("presence", event="left", hub=self.a.id, hubinfo=None)  # a lie to b
        self.world.graph.presence.version += 1  # as if it had changed: sign again
        self.world.flush()
        c = self.world.full_hub(self, "c")  # a real change makes the next head
        later(self.world, 11)
        [alarm] = self.b.graph.heads.alarms
        self.assertEqual((alarm["kind"], alarm["gateway"]), ("mismatch", self.gw))
        with open(alarm["proof"]) as f:
            proof = json.load(f)
        self.assertEqual(proof["kind"], "mismatch")
        self.assertEqual(len(proof["hubinfos"]), 2)  # b and c: a was hidden from b
        self.assertEqual((self.a.graph.heads.alarms, c.graph.heads.alarms), ([], []))

    def test_heads_are_gossiped_to_peers_and_a_fork_from_a_peer_is_a_proof(self):
        self.world.expect_alarms = True
        self.peer()
        later(self.world, 11)
        chain = self.world.graph.heads
        latest = chain.latest
        # A thief holding the gateway's key signs another head with the same seq
        # (another set), and a peer relays it.
        forged = make_head(self.world.identity, latest.seq, latest.at, 0,
                           set_commitment([]), bytes.fromhex("00" * 32))
        self.b.peers.connections[self.a.id].send("peer-head", head=forged.to_json())
        self.world.flush()
        [alarm] = self.a.graph.heads.alarms
        self.assertEqual((alarm["kind"], alarm["gateway"]), ("equivocation", self.gw))
        self.assertTrue(alarm["proof"].endswith(f"equivocation-{self.gw}.json"))
        with open(alarm["proof"]) as f:
            self.assertIn("equivocated", check_proof(json.load(f)))
        self.assertEqual(os.stat(alarm["proof"]).st_mode & 0o777, 0o600)
        # The same fork told again is not a second alarm.
        self.b.peers.connections[self.a.id].send("peer-head", head=forged.to_json())
        self.world.flush()
        self.assertEqual(len(self.a.graph.heads.alarms), 1)

    def test_heads_and_alarms_are_kept_across_a_restart_of_the_hub(self):
        self.world.expect_alarms = True
        path = self.mktemp()
        hub = FullHub(self.world, "e", path, None).start()
        later(self.world, 11)
        seen = self.world.graph.heads.latest
        self.assertIn(seen.seq, self.heads_of(hub))
        hub.stop()
        self.world.flush()
        self.world.graph.presence.version += 1  # nothing changes while it is away
        back = FullHub(self.world, "e", path, None, identity=hub.identity).start()
        self.assertIn(seen.seq, self.heads_of(back))  # before any head arrives
        # A fork of a head seen before the restart is still caught.
        forged = make_head(self.world.identity, seen.seq, seen.at, 0,
                           set_commitment([]), bytes.fromhex("00" * 32))
        back.graph.heads.from_peer(self.a.id, forged.to_json())
        self.world.flush()
        [alarm] = back.graph.heads.alarms
        self.assertEqual(alarm["kind"], "equivocation")
        back.stop()
        self.world.flush()
        again = FullHub(self.world, "e", path, None, identity=hub.identity).start()
        self.assertEqual(again.graph.heads.alarms, [alarm])
        again.stop()

    def test_disconnect_drops_the_lying_gateway_and_fails_over(self):
        self.world.expect_alarms = True
        other = new_identity()
        self.world.add_gateway(other)
        hub = FullHub(self.world, "d", self.mktemp(), None,
                      gateways=[self.gw, other.id]).start()
        hub.graph.heads.on_equivocation = "disconnect"
        later(self.world, 11)
        latest = self.world.graph.heads.latest
        forged = make_head(self.world.identity, latest.seq, latest.at, 0,
                           set_commitment([]), bytes.fromhex("00" * 32))
        hub.graph.heads.from_peer(self.a.id, forged.to_json())
        later(self.world, 5)
        self.assertEqual(hub.hub.gateway.id, other.id)
        self.assertIn(self.gw, hub.link.distrusted)


class HeadChainTests(SynchronousTestCase):
    """The gateway's chain alone: a fake presence, a Clock, a file."""

    def setUp(self):
        self.clock = Clock()
        self.identity = new_identity()
        self.presence = FakePresence()
        self.path = self.mktemp()

    def chain(self):
        return HeadChain(self.identity, self.clock, self.presence, HeadFile(self.path), 10)

    def test_a_head_per_change_at_most_one_per_interval_and_none_for_no_change(self):
        chain = self.chain()
        chain.start()
        self.assertEqual(chain.latest.seq, 1)  # the empty set, at start
        self.presence.add()
        self.presence.add()
        self.clock.advance(10)
        self.assertEqual((chain.latest.seq, chain.latest.count), (2, 2))
        self.clock.advance(10)
        self.assertEqual(chain.latest.seq, 2)
        self.presence.version += 1  # came and went: the set is the same
        self.clock.advance(10)
        self.assertEqual(chain.latest.seq, 2)
        self.assertEqual(self.presence.flushed, 3)  # before each look at a changed set

    def test_a_restart_goes_on_from_the_stored_head(self):
        chain = self.chain()
        chain.start()
        self.presence.add()
        self.clock.advance(10)
        chain.stop()
        again = self.chain()
        self.assertEqual(again.latest, chain.latest)
        again.start()
        self.presence.add()
        self.clock.advance(10)
        self.assertEqual(again.latest.seq, 3)
        self.assertEqual(again.latest.prev, b64(chain.latest.hash))

    def test_a_file_that_is_broken_or_another_keys_stops_the_gateway(self):
        with open(self.path, "w") as f:
            f.write("{broken")
        self.assertRaises(UserError, self.chain)
        other = make_head(new_identity(), 1, 0, 0, set_commitment([]), None)
        HeadFile(self.path).save(other)
        self.assertRaises(UserError, self.chain)

    def test_a_head_that_cannot_be_stored_is_not_sent_and_is_tried_again(self):
        chain = HeadChain(self.identity, self.clock, self.presence, BrokenFile(), 10)
        chain.start()
        self.assertIsNone(chain.latest)
        chain.file = None  # the disk is back
        self.clock.advance(10)
        self.assertEqual(chain.latest.seq, 1)


class FakePresence:
    def __init__(self):
        self.version, self.flushed, self.hubs, self.infos = 0, 0, {}, []

    def add(self):
        self.infos.append(make_hubinfo(new_identity(), "x", 1))
        self.version += 1

    def flush_remote(self):
        self.flushed += 1

    def online_infos(self):
        return list(self.infos)


class BrokenFile:
    path = "/nowhere/heads.json"

    def load(self, gateway_id):
        return None

    def save(self, head):
        raise OSError("disk full")
