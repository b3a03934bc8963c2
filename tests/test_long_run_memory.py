"""A long normal run raises no alarm (issue 19): in memory, on one Clock, two gateways
and six hubs peered across them for twenty simulated minutes of churn, updates over the
rate limit, hubs restarting, a gateway killed and restarted three times (its hubs
failing over), and a key rotation of the other gateway, followed by every hub (online,
or when it next comes to that gateway).  Every head
reaches the hubs, is gossiped between peers and checked, and none is an alarm."""

import random

from twisted.trial.unittest import TestCase

from blockhub.gateway.keys import GatewayKeys
from blockhub.succession import make_commitment, make_succession
from tests.memory import FullHub, World, new_identity
from tests.test_invites_memory import later

ROUNDS = 120  # of 10 s each
PAIRS = [(0, 1), (2, 3), (4, 5), (0, 3), (1, 4)]


class LongRunTests(TestCase):
    def setUp(self):
        self.world = World()
        self.a = self.world.identity
        self.b = new_identity()
        self.b_heads = self.mktemp()
        self.world.add_gateway(self.b, heads_path=self.b_heads)
        self.rng = random.Random(19)
        self.hubs = []
        for n in range(6):
            order = [self.a.id, self.b.id] if n % 2 else [self.b.id, self.a.id]
            self.hubs.append(self.start(n, self.mktemp(), None, order))
        for x, y in PAIRS:
            self.hubs[y].store.add_approved_key(self.hubs[x].id, 0)
            self.hubs[x].operator.connect(self.hubs[y].id, "long run")
        later(self.world, 5)

    def start(self, n, path, identity, gateways):
        hub = FullHub(self.world, f"hub{n}", path, 7100 + n, identity=identity,
                      gateways=gateways).start()
        hub.gateways = gateways
        return hub

    def restart(self, n):
        old = self.hubs[n]
        old.stop()
        later(self.world, self.rng.randint(1, 30))
        self.hubs[n] = self.start(n, old.path, old.identity, old.gateways)

    def revive_b(self):
        self.world.down.discard(self.b.id)
        self.world.add_gateway(self.b, heads_path=self.b_heads)  # goes on from its file

    def rotate_a(self, new):
        world, now = self.world, int(self.world.clock.seconds())
        world.graph.heads.rekey(new)
        world.graphs[new.id] = world.graph
        world.gateway.rekeyed(GatewayKeys(new, None, make_succession(self.a, new, now),
                                          self.a, now + 7 * 86400))

    def test_twenty_minutes_of_normal_operation_raise_no_alarm(self):
        new_a = new_identity()
        for round_ in range(ROUNDS):
            if round_ in (20, 39, 70):  # its hubs fail over to the other gateway
                self.world.kill_gateway(self.b.id)
            if round_ in (23, 42, 73):
                self.revive_b()
            if round_ == 40:  # while b is down, so that every hub hears it (a hub
                # hears a gateway's commitment only from it, or from its record)
                self.world.gateway.rekeyed(GatewayKeys(self.a, make_commitment(
                    self.a, new_a.id, int(self.world.clock.seconds()))))
            if round_ == 60:
                self.rotate_a(new_a)
            event = self.rng.random()
            n = self.rng.randrange(len(self.hubs))
            if event < 0.15:
                self.restart(n)
            elif event < 0.5:
                for k in range(self.rng.randint(1, 8)):  # often over the rate limit
                    self.hubs[n].hub.publish(meta={"round": round_, "k": k})
            later(self.world, 10)
        later(self.world, 60)
        heads = self.world.graphs[self.b.id].heads.latest
        self.assertGreater(heads.seq, 20)  # the chain went on across both restarts
        for hub in self.hubs:
            self.assertEqual(hub.graph.heads.alarms, [], hub.hub.name)
            self.assertEqual(hub.graph.keys.refused, {}, hub.hub.name)
            self.assertIn(new_a.id, [e.id for e in hub.link.gateways], hub.hub.name)
            self.assertNotIn(self.a.id, [e.id for e in hub.link.gateways], hub.hub.name)
            self.assertEqual(hub.link.state, "online", hub.hub.name)
            seen = hub.graph.heads.heads
            self.assertTrue(seen.get(self.b.id) and seen.get(new_a.id), hub.hub.name)
        self.assertGreater(self.world.gateway.counters.updates_refused, 0)
        self.assertGreater(self.world.gateway.counters.refused_old_key, 0)
        connected = sum(len(h.peers.connections) for h in self.hubs)
        self.assertEqual(connected, 2 * len(PAIRS))

    def tearDown(self):
        for hub in self.hubs:
            hub.stop()

