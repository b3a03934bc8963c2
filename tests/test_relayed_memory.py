"""Peerings over relay circuits in memory: real gateway, real TLS inside the circuit,
hubs that cannot reach each other directly (neither listens, or one is relay-only)."""

from twisted.trial.unittest import SynchronousTestCase

from tests.memory import World
from tests.test_handshake_memory import state


def peer_row(hub, other):
    [row] = [r for r in hub.peers.snapshot() if r["id"] == other.id]
    return row


class RelayedTests(SynchronousTestCase):
    def setUp(self):
        self.world = World()
        self.a = self.world.full_hub(self, "a", listen=False)
        self.b = self.world.full_hub(self, "b", listen=False)
        self.b.store.add_approved_key(self.a.id, 0)

    def peer(self):
        self.a.operator.connect(self.b.id, "hi")
        self.world.flush()

    def test_unreachable_hubs_peer_over_a_circuit(self):
        self.peer()
        self.assertEqual(state(self.a, "out", self.b), "connected")
        self.assertEqual(state(self.b, "in", self.a), "connected")
        for hub, other in ((self.a, self.b), (self.b, self.a)):
            row = peer_row(hub, other)
            self.assertEqual((row["path"], row["via"], row["address"], row["connected"]),
                             ("relayed", self.world.identity.id, None, True))
        self.assertEqual(self.a.store.peer(self.b.id)["dialer"], 1)  # the requester
        self.assertEqual(self.a.graph.circuits.status()["count"], 1)

    def test_messages_cross_the_circuit_exactly_once_in_order(self):
        self.peer()
        for n in range(100):
            self.a.peers.send(self.b.id, f"a{n}")
            self.b.peers.send(self.a.id, f"b{n}")
        self.world.flush()
        self.assertEqual([m["text"] for m in self.b.store.messages()],
                         [f"a{n}" for n in range(100)])
        self.assertEqual([m["text"] for m in self.a.store.messages()],
                         [f"b{n}" for n in range(100)])
        self.assertEqual(self.a.store.unacked(self.b.id), [])
        self.assertGreater(self.a.graph.circuits.status()["bytes"], 100 * 2)

    def test_large_messages_pass_the_window(self):
        self.peer()
        big = "x" * (60 * 1024)
        for _ in range(12):  # far more than one 256 KiB window, and the burst
            self.a.peers.send(self.b.id, big)
        for _ in range(10):  # the gateway paces the credit it hands back
            self.world.clock.advance(0.25)
            self.world.flush()
        self.assertEqual(len(self.b.store.messages()), 12)
        self.assertEqual(self.a.store.unacked(self.b.id), [])

    def test_a_dropped_circuit_comes_back_and_nothing_is_lost(self):
        self.peer()
        [number] = list(self.a.graph.circuits.open)
        self.a.graph.circuits.open[number].loseConnection()
        self.world.flush()
        self.assertNotIn(self.b.id, self.a.peers.connections)
        self.a.peers.send(self.b.id, "after the drop")
        self.world.clock.advance(2)  # a, the dialer, redials: over a new circuit
        self.world.flush()
        self.assertIn(self.b.id, self.a.peers.connections)
        self.assertEqual(peer_row(self.b, self.a)["path"], "relayed")
        self.assertEqual([m["text"] for m in self.b.store.messages()], ["after the drop"])

    def test_the_gateway_sees_only_ciphertext(self):
        self.peer()
        carried = []
        for transport in self.a.graph.circuits.open.values():
            original = transport._send_data

            def spy(circuit, data, original=original):
                carried.append(data)
                original(circuit, data)

            transport._send_data = spy
        self.a.peers.send(self.b.id, "a secret the gateway must not read")
        self.world.flush()
        self.assertTrue(carried)
        self.assertNotIn(b"secret", b"".join(carried))


class RelayOnlyTests(SynchronousTestCase):
    """``--peer-path relay``: the hub never dials, never listens, never tells an address,
    and peers with a public hub in both directions over circuits."""

    def setUp(self):
        self.world = World()
        self.public = self.world.full_hub(self, "public")
        self.quiet = self.world.full_hub(self, "quiet", listen=False, peer_path="relay")
        self.public.store.add_approved_key(self.quiet.id, 0)
        self.quiet.store.add_approved_key(self.public.id, 0)

    def check_relayed_and_addressless(self):
        for hub, other in ((self.public, self.quiet), (self.quiet, self.public)):
            row = peer_row(hub, other)
            self.assertEqual((row["path"], row["address"], row["connected"]),
                             ("relayed", None, True))
        self.assertIsNone(self.public.store.peer(self.quiet.id)["address"])
        incoming = self.public.handshakes.book.incoming.get(self.quiet.id)
        if incoming is not None:
            self.assertEqual((incoming.observed, incoming.request.endpoint), (None, None))

    def test_the_relay_only_hub_asks(self):
        self.quiet.operator.connect(self.public.id, "hi")
        self.world.flush()
        self.assertEqual(state(self.quiet, "out", self.public), "connected")
        self.check_relayed_and_addressless()

    def test_the_public_hub_asks(self):
        self.public.operator.connect(self.quiet.id, "hi")
        self.world.flush()
        self.assertEqual(state(self.public, "out", self.quiet), "connected")
        self.check_relayed_and_addressless()
        self.public.peers.send(self.quiet.id, "over the circuit")
        self.world.flush()
        self.assertEqual([m["text"] for m in self.quiet.store.messages()],
                         ["over the circuit"])


class OlderGatewayTests(SynchronousTestCase):
    def test_a_gateway_without_circuits_leaves_unreachable_hubs_unpeered(self):
        from blockhub.wire.features import REJECTION
        world = World(spoken=(REJECTION,))
        a = world.full_hub(self, "a", listen=False)
        b = world.full_hub(self, "b", listen=False)
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id, "hi")
        world.flush()
        self.assertEqual(state(a, "out", b), "failed")
        [row] = [r for r in a.operator.status() if r["peer"] == b.id]
        self.assertIn("no relay circuit", row["reason"])
        self.assertEqual(a.graph.circuits.status(), {"count": 0, "bytes": 0})


class GatewayLossTests(SynchronousTestCase):
    """A gateway connection that drops takes every circuit with it; the peering comes
    back over a new circuit once both hubs are online again, nothing lost."""

    def test_both_hubs_lose_the_gateway_and_the_peering_returns(self):
        world = World()
        a = world.full_hub(self, "a", listen=False)
        b = world.full_hub(self, "b", listen=False)
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id, "hi")
        world.flush()
        self.assertIn(b.id, a.peers.connections)
        for hub in (a, b):
            hub.link.proto.close("the gateway went away")
        world.flush()
        self.assertEqual((a.peers.connections, b.peers.connections), ({}, {}))
        a.peers.send(b.id, "while the gateway was gone")
        b.peers.send(a.id, "and back")
        for _ in range(40):  # the gateway links back off and rejoin; a redials
            world.clock.advance(1)
            world.flush()
        self.assertIn(b.id, a.peers.connections)
        self.assertEqual(peer_row(a, b)["path"], "relayed")
        self.assertEqual([m["text"] for m in b.store.messages()],
                         ["while the gateway was gone"])
        self.assertEqual([m["text"] for m in a.store.messages()], ["and back"])
