"""The operator's bans alone (a Clock, a temporary file), and a banned hub at a real
gateway in memory."""

import json
import os
import stat

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import UserError
from blockhub.gateway import bans as bans_module
from blockhub.gateway.bans import Bans
from tests.memory import World, new_identity

HUB = new_identity().id


class BansTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.path = self.mktemp()
        self.told = []
        self.bans = Bans(self.path, self.clock, lambda *r: self.told.append(r))

    def test_a_ban_holds_until_it_ends(self):
        until = self.bans.ban(HUB, 60)
        self.assertEqual(self.bans.until(HUB), until / 1000)
        self.assertEqual(self.bans.active(), [{"id": HUB, "until": until // 1000}])
        self.clock.advance(60)
        self.assertIsNone(self.bans.until(HUB))
        self.assertEqual(self.bans.active(), [])

    def test_bans_survive_a_restart_in_a_private_file(self):
        self.bans.ban(HUB, 3600)
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        again = Bans(self.path, self.clock)
        self.assertIsNotNone(again.until(HUB))

    def test_a_corrupt_file_is_one_clear_error(self):
        with open(self.path, "w") as f:
            f.write("{not json")
        error = self.assertRaises(UserError, Bans, self.path, self.clock)
        self.assertIn("cannot read the bans in", str(error))

    def test_unban_and_the_cluster_hears_each_change(self):
        self.bans.ban(HUB, 60)
        self.assertTrue(self.bans.unban(HUB))
        self.assertFalse(self.bans.unban(HUB))
        self.assertIsNone(self.bans.until(HUB))
        self.assertEqual([until > 0 for _hub, until, _set in self.told], [True, False, False])
        sets = [set_ms for _hub, _until, set_ms in self.told]
        self.assertEqual(sets, sorted(set(sets)))  # each newer than the last

    def test_the_record_set_last_wins_in_any_order(self):
        now = int(self.clock.seconds() * 1000)
        ban, unban = (HUB, now + 60_000, now), (HUB, 0, now + 1)
        other = Bans(None, self.clock)
        self.assertTrue(self.bans.merge(*ban))
        self.assertFalse(self.bans.merge(*unban))
        self.assertFalse(other.merge(*unban))
        self.assertFalse(other.merge(*ban))   # older than the unban it already has
        self.assertFalse(self.bans.merge(*ban))  # heard again
        self.assertEqual((self.bans.until(HUB), other.until(HUB)), (None, None))

    def test_old_records_are_forgotten_and_the_table_is_bounded(self):
        self.patch(bans_module, "MOST", 3)
        hubs = [new_identity().id for _ in range(3)]
        for hub in hubs:
            self.bans.ban(hub, 10)
        self.assertRaises(UserError, self.bans.ban, new_identity().id, 10)
        self.clock.advance(bans_module.KEEP_UNBAN_MS / 1000 + 11)
        self.bans.ban(new_identity().id, 10)  # the ended ones made room
        self.assertEqual(len(json.load(open(self.path))), 1)


class BannedAtTheGatewayTests(SynchronousTestCase):
    def test_a_kicked_and_banned_hub_is_told_why_and_refused_until_the_ban_ends(self):
        world = World()
        a = world.add_hub("a")
        self.assertEqual(a.link.state, "online")
        graph = world.graph
        until = graph.bans.ban(a.identity.id, 120) / 1000
        self.assertTrue(graph.presence.kick(a.identity.id, "banned for a test"))
        world.flush()
        self.assertNotEqual(a.link.state, "online")
        for _ in range(5):
            world.clock.advance(20)
            world.flush()
        self.assertNotEqual(a.link.state, "online")
        self.assertGreater(graph.counters.refused_banned, 0)
        self.assertIn("banned by this gateway's operator",
                      a.link.last_error[world.identity.id])
        world.clock.advance(until - world.clock.seconds() + 1)
        for _ in range(10):
            world.clock.advance(30)
            world.flush()
        self.assertEqual(a.link.state, "online")
