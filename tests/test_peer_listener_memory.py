"""The hub's peer listener under connections that complete TLS and never open: each
has a deadline, and only a few may wait at once, per address and in total, while an
established peer keeps exchanging messages (security review #4)."""

from twisted.trial.unittest import SynchronousTestCase

from blockhub.limits import Limits
from blockhub.net.framed import FramedProtocol
from tests.memory import World, new_identity


class Silent(FramedProtocol):
    """Completes TLS, answers pings, never says peer-hello."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.received = []
        self.gone = None

    def messageReceived(self, message):
        self.received.append(message)

    def lost(self, reason):
        self.gone = reason


def listener_of(world, hub):
    """The PeerFactory behind ``hub``'s listening port in ``world``."""
    return world.listeners[f"127.0.0.1:{hub.hub.listen_port}"].wrappedFactory


class PeerListenerTests(SynchronousTestCase):
    def flood(self, world, hub, hosts):
        who = new_identity()
        server = world.listeners[f"127.0.0.1:{hub.hub.listen_port}"]
        silent = [Silent(clock=world.clock, limits=world.limits) for _ in hosts]
        for host, proto in zip(hosts, silent, strict=True):
            world.connect_peer(who, hub.id, server, proto, host=host)
        world.flush()
        return silent

    def test_a_connection_that_only_pings_is_dropped_with_a_reason(self):
        """Regression: it was held forever, its pings keeping the idle timer happy."""
        world = World(idle_timeout=30, limits=Limits(first_frame_timeout=10))
        b = world.full_hub(self, "b")
        self.addCleanup(b.stop)
        factory = listener_of(world, b)
        [silent] = self.flood(world, b, ["10.0.0.1"])
        self.assertIsNotNone(silent.peer_id)  # TLS is done
        for _ in range(9):
            world.clock.advance(1)
            world.flush()
        self.assertIsNone(silent.gone)
        self.assertEqual(len(factory.openings), 1)
        world.clock.advance(1)
        world.flush()
        self.assertIsNotNone(silent.gone, "still connected after the first-frame deadline")
        errors = [m["reason"] for m in silent.received if m.kind == "error"]
        self.assertEqual(errors, ["no peer-hello or peer-request within 10s of TLS"])
        self.assertEqual(factory.refusals["FirstFrameTimeout"], 1)
        self.assertEqual(len(factory.openings), 0)

    def test_flood_is_capped_and_an_established_peer_keeps_talking(self):
        world = World(limits=Limits(unopened_per_ip=8, max_unopened=64))
        a, b = world.full_hub(self, "a"), world.full_hub(self, "b")
        self.addCleanup(a.stop)
        self.addCleanup(b.stop)
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id)
        world.flush()
        self.assertIn(b.id, a.peers.connections)
        factory = listener_of(world, b)

        one_address = self.flood(world, b, ["10.0.0.1"] * 20)
        many = self.flood(world, b, [f"10.1.{n // 200}.{n % 200 + 1}" for n in range(100)])
        self.assertEqual(sum(s.gone is None for s in one_address), 8)
        self.assertEqual(sum(s.gone is None for s in many), 56)
        self.assertEqual(len(factory.openings), 64)  # the open link is not counted
        self.assertEqual(factory.refusals["TooManyFromAddress"], 12)
        self.assertEqual(factory.refusals["TooManyUnopened"], 44)
        self.assertEqual(factory.openings.by_address["10.0.0.1"], 8)
        self.assertEqual(factory.status(), {"unopened": 64, "addresses": 57, "refusals": {
            "TooManyFromAddress": 12, "TooManyUnopened": 44}})

        a.peers.send(b.id, "during the flood")
        b.peers.send(a.id, "and back")
        world.flush()
        self.assertEqual([m["text"] for m in b.store.messages()], ["during the flood"])
        self.assertEqual([m["text"] for m in a.store.messages()], ["and back"])

        world.clock.advance(world.limits.first_frame_timeout)
        world.flush()
        self.assertTrue(all(s.gone is not None for s in one_address + many))
        self.assertEqual(len(factory.openings), 0)
        self.assertEqual(dict(factory.openings.by_address), {})
        self.assertEqual(factory.refusals["FirstFrameTimeout"], 64)
        self.assertIn(b.id, a.peers.connections)  # the established link stayed up
        [late] = self.flood(world, b, ["10.0.0.1"])
        self.assertIsNone(late.gone)  # room again
