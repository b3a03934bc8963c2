"""Key succession end to end in memory (real TLS, SNI included, on a Clock): hubs that
saw the gateway's commitment follow its rotation, online or back from offline within
the grace; a succession to a key not committed to is refused; after the grace the old
key is no longer served."""

from twisted.trial.unittest import TestCase

from blockhub.gateway.keys import GatewayKeys
from blockhub.hub.gateway_keys_file import GatewayKeysFile
from blockhub.succession import make_commitment, make_succession
from tests.memory import World, new_identity
from tests.test_invites_memory import later

GRACE = 3600.0


def commit(world, next_id):
    """The gateway commits to ``next_id`` (what blockhub commit-next makes it do)."""
    old = world.gateway.keys
    world.gateway.rekeyed(GatewayKeys(old.identity, make_commitment(
        old.identity, next_id, int(world.clock.seconds()))))
    world.flush()


def rotate(world, new, committed=True):
    """The gateway moves to ``new`` (what blockhub rotate-key makes it do)."""
    old = world.gateway.identity
    now = world.clock.seconds()
    world.graph.heads.rekey(new)
    world.graphs[new.id] = world.graph  # hubs that pin the new key dial the same gateway
    world.gateway.rekeyed(GatewayKeys(new, None, make_succession(old, new, int(now)), old,
                                      now + GRACE))
    world.flush()


class SuccessionTests(TestCase):
    def setUp(self):
        self.world = World()
        self.old = self.world.identity
        self.new = new_identity()

    def online_at(self, hub, gateway_id):
        self.assertEqual(hub.link.current.id, gateway_id)
        self.assertEqual(hub.link.state, "online")
        self.assertIn(hub.identity.id, self.world.gateway.presence.hubs)

    def test_an_online_hub_follows_the_rotation(self):
        hub = self.world.add_hub("alice")
        commit(self.world, self.new.id)
        self.assertTrue(hub.keys.commitments[self.old.id].names(self.new.id))
        rotate(self.world, self.new)
        later(self.world, 3)
        self.online_at(hub, self.new.id)
        self.assertEqual(hub.keys.successor(self.old.id), self.new.id)
        self.assertEqual(self.world.gateway.counters.refused_old_key, 1)
        # The new key signs its own chain, and the hub checks it without alarm.
        later(self.world, 11)
        self.assertEqual(self.world.graph.heads.latest.gateway, self.new.id)
        self.assertEqual(hub.heads.alarms, [])

    def test_a_hub_back_within_the_grace_follows_it_too(self):
        path = self.mktemp()
        hub = self.world.add_hub("bob", keys_file=GatewayKeysFile(path))
        commit(self.world, self.new.id)
        hub.link.stop()  # bob's hub stops, holding the commitment on disk
        self.world.flush()
        rotate(self.world, self.new)
        later(self.world, 60)
        back = self.world.add_hub("bob", identity=hub.identity, start=False,
                                  keys_file=GatewayKeysFile(path))
        self.assertEqual(back.link.current.id, self.old.id)  # it still pins the old key
        back.link.start()
        later(self.world, 5)
        self.online_at(back, self.new.id)
        # Once followed, a restart goes straight to the new key.
        back.link.stop()
        again = self.world.add_hub("bob", identity=hub.identity,
                                   keys_file=GatewayKeysFile(path))
        self.assertEqual(again.link.current.id, self.new.id)

    def test_a_hub_that_never_saw_a_commitment_does_not_follow(self):
        rotate(self.world, self.new)
        hub = self.world.add_hub("carol")
        later(self.world, 3)
        self.assertEqual(hub.link.current.id, self.old.id)
        self.assertNotEqual(hub.link.state, "online")
        refused = hub.keys.status()[self.old.id]["refused"]
        self.assertIn("never committed", refused["reason"])
        self.assertIn(self.new.id, hub.link.last_error[self.old.id])

    def test_a_succession_to_another_key_than_committed_is_refused(self):
        hub = self.world.add_hub("dave")
        commit(self.world, self.new.id)
        thief = new_identity()  # what someone holding only the gateway's key can do
        rotate(self.world, thief)
        later(self.world, 3)
        self.assertEqual(hub.link.current.id, self.old.id)
        self.assertIn("another next key", hub.keys.status()[self.old.id]["refused"]["reason"])

    def test_a_second_commitment_is_refused(self):
        hub = self.world.add_hub("erin")
        commit(self.world, self.new.id)
        commit(self.world, new_identity().id)
        self.assertTrue(hub.keys.commitments[self.old.id].names(self.new.id))
        self.assertEqual(hub.keys.status()[self.old.id]["refused"]["what"], "commitment")

    def test_after_the_grace_the_old_key_is_not_served(self):
        hub = self.world.add_hub("frank")
        commit(self.world, self.new.id)
        hub.link.stop()
        rotate(self.world, self.new)
        self.world.clock.advance(GRACE + 1)
        late = self.world.add_hub("frank", identity=hub.identity)
        later(self.world, 3)
        self.assertNotEqual(late.link.state, "online")
        self.assertIn("does not hold the pinned key", late.link.last_error[self.old.id])

    def test_a_hub_of_before_is_told_in_one_line(self):
        hub = self.world.add_hub("grace")
        commit(self.world, self.new.id)
        hub.link.stop()
        rotate(self.world, self.new)
        old_hub = self.world.add_hub("grace", identity=hub.identity, spoken=())
        later(self.world, 3)
        self.assertIn(f"this gateway's key is now {self.new.id}",
                      old_hub.link.last_error[self.old.id])
