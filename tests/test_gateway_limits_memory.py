"""The gateway's new limits over real TLS in memory, with transports that fill up like
TCP's: a stalled hub's replaced connections are freed, a large welcome list goes out
at the newcomer's pace, rejoins draw on the update budget, and one address may hold
only so many admitted hubs."""

from nacl.signing import SigningKey
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from blockhub.gateway.admission import Admission
from blockhub.gateway.presence import Presence
from blockhub.hubinfo import make_hubinfo
from blockhub.identity import Identity
from blockhub.limits import Limits
from tests.flow import FlowFakeTransport
from tests.memory import World, new_identity


def gateway_side(world, hub_id):
    return world.gateway.presence.connection_for(hub_id)


def settle(world, seconds, step=1.0):
    for _ in range(int(seconds / step)):
        world.clock.advance(step)
        world.flush()


class Listed:
    """A hub of a large presence table that only receives."""

    host = "10.0.0.1"
    address = "10.0.0.1:1"

    def __init__(self, hub_id):
        self.peer_id = hub_id

    def send_frame(self, frame):
        pass

    def close(self, reason):
        pass


class FlowTests(SynchronousTestCase):
    def setUp(self):
        # Every in-memory connection gets a bounded buffer that pauses its producer.
        self.patch(iosim, "FakeTransport", FlowFakeTransport)

    def test_replaced_connections_of_a_stalled_hub_are_freed(self):
        """Regression (security review #5): a replaced connection whose hub stopped
        reading waited for a drain that never came, forever."""
        world = World(limits=Limits(updates_burst=100, close_timeout=10.0))
        stalled = new_identity()
        old = []
        for n in range(20):
            world.add_hub(f"x{n}", identity=stalled)
            conn = gateway_side(world, stalled.id)
            if old:
                self.assertIsNot(conn, old[-1])
            old.append(conn)
            world.pumps[-1].serverIO.stalled = True  # this hub stops reading now
        newest = old.pop()
        world.flush()
        self.assertEqual(world.gateway.counters.replaced, 19)
        self.assertEqual(sum(conn.connected for conn in old), 19)  # all still closing
        world.clock.advance(10.0)
        world.flush()
        self.assertEqual([conn.connected for conn in old], [False] * 19)
        self.assertEqual(world.gateway.counters.close_timeouts, 19)
        self.assertTrue(newest.connected)
        self.assertIs(gateway_side(world, stalled.id), newest)

    def test_a_large_welcome_list_is_paced_not_refused(self):
        world = World(limits=Limits(max_send_queue=64 * 1024))
        presence: Presence = world.gateway.presence
        for n in range(2000):
            ident = Identity(SigningKey(n.to_bytes(32, "big")))
            info = make_hubinfo(ident, f"listed hub number {n}", 1, {})
            presence.hubs[ident.id] = (Listed(ident.id), info)
            presence.joined_frames[ident.id] = presence._joined_frame(info)
        newcomer = world.add_hub("newcomer")
        self.assertEqual(newcomer.link.state, "online")
        self.assertEqual(len(newcomer.hubs()), 2000)
        self.assertEqual(world.gateway.counters.send_queue_full, 0)
        self.assertGreater(world.pumps[-1].serverIO.pauses, 5)  # it was paced


class RejoinTests(SynchronousTestCase):
    def test_rejoins_draw_on_the_update_budget_across_leaves(self):
        """Regression (security review #6): a leave forgot the hub's budget and joins
        were free, so rejoining was an unlimited stream of presence frames."""
        world = World(limits=Limits(updates_per_minute=12, updates_burst=5))
        observer = world.add_hub("observer")
        ident = new_identity()
        hubs, states = [], []
        for n in range(10):
            if hubs and hubs[-1].link.state == "online":
                hubs[-1].link.stop()  # a leave, then a join again
                world.flush()
            hubs.append(world.add_hub(f"r{n}", identity=ident))
            states.append(hubs[-1].link.state)
        # The first join is free; five more take the burst; the rest are refused.
        self.assertEqual(states[:6], ["online"] * 6)
        self.assertTrue(all(state != "online" for state in states[6:]), states)
        self.assertEqual(world.gateway.counters.joins_refused, 4)
        self.assertIn("too often", hubs[-1].link.last_error[world.identity.id])
        self.assertEqual(world.gateway.counters.joined, 1 + 6)  # the observer, and r0..r5
        self.assertEqual(observer.link.state, "online")
        # The budget refills: the last one gets in by itself, backing off and retrying.
        for hub in hubs[6:-1]:
            hub.link.stop()
        settle(world, 120, step=5.0)
        self.assertEqual(hubs[-1].link.state, "online")


class PerAddressTests(SynchronousTestCase):
    def test_admitted_hubs_per_address(self):
        """Regression (security review #14): one address could fill --max-hubs."""
        world = World(limits=Limits(hubs_per_ip=2))
        a_ident = new_identity()
        a, b, c = world.add_hub("a", identity=a_ident), world.add_hub("b"), world.add_hub("c")
        self.assertEqual([a.link.state, b.link.state], ["online", "online"])
        self.assertNotEqual(c.link.state, "online")
        self.assertIn("too many hubs from this address",
                      c.link.last_error[world.identity.id])
        self.assertEqual(world.gateway.counters.refused_per_address, 1)
        again = world.add_hub("a again", identity=a_ident)  # replacing itself is fine
        self.assertEqual(again.link.state, "online")
        self.assertEqual(len(world.gateway.presence.hubs), 2)
        b.link.stop()  # a place frees up
        world.flush()
        settle(world, 120, step=5.0)
        self.assertEqual(c.link.state, "online")

    def test_allow_listed_hubs_are_not_capped(self):
        idents = [new_identity() for _ in range(3)]
        world = World(Admission(allow_keys=frozenset(i.id for i in idents)),
                      limits=Limits(hubs_per_ip=1))
        hubs = [world.add_hub(f"h{n}", identity=i) for n, i in enumerate(idents)]
        self.assertEqual([h.link.state for h in hubs], ["online"] * 3)
        self.assertEqual(world.gateway.counters.refused_per_address, 0)

    def test_off_by_default(self):
        world = World()
        hubs = [world.add_hub(f"h{n}") for n in range(5)]
        self.assertEqual([h.link.state for h in hubs], ["online"] * 5)
