"""Relay circuits across two nodes, alone: each node's ``Circuits`` with fake hub
connections, the real ``CircuitBridge`` between them on the in-memory store, on one
Clock.  Who joins when both hubs ask at once, data and credit both ways, and what a
node refuses from the store."""

from nacl.signing import SigningKey
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.gateway.circuits import Circuits
from blockhub.gateway.cluster.bridge import CircuitBridge, circuit_channel
from blockhub.gateway.counters import Counters
from blockhub.identity import Identity
from blockhub.limits import DEFAULT
from tests.fake_cluster import FakeBackend, FakeRedis
from tests.test_gateway_circuits import IDS, FakeConn, msg

NODES = [Identity(SigningKey(bytes([90 + n]) * 32)) for n in range(2)]
KEYS = frozenset(n.id for n in NODES)


class Presence:
    def __init__(self):
        self.online = {}     # our hubs
        self.elsewhere = {}  # hub -> node

    def connection_for(self, hub_id):
        return self.online.get(hub_id)

    def node_of(self, hub_id):
        return self.elsewhere.get(hub_id)


class Node:
    def __init__(self, identity, redis, clock):
        self.presence = Presence()
        self.counters = Counters()
        self.circuits = Circuits(self.presence, self.counters, clock, DEFAULT,
                                 bridge=lambda: self.bridge)
        self.backend = FakeBackend(redis)
        self.bridge = CircuitBridge(identity, KEYS, self.backend, clock, self.circuits,
                                    self.presence)
        self.backend.start({"circuits": [circuit_channel(identity.id)]},
                           lambda channel, payload: self.bridge.received(payload),
                           self.bridge.state)


class Base(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.redis = FakeRedis(self.clock)
        self.nodes = [Node(identity, self.redis, self.clock) for identity in NODES]
        self.flush()
        # the hub with the smaller id is at node 0 unless a test says otherwise
        self.small, self.big = sorted(IDS[:2])

    def place(self, hub, node):
        conn = FakeConn(hub)
        self.nodes[node].presence.online[hub] = conn
        self.nodes[1 - node].presence.elsewhere[hub] = NODES[node].id
        return conn

    def flush(self):
        for _ in range(20):
            self.clock.advance(0)

    def ask(self, conn, node, target):
        self.nodes[node].circuits.received(conn, msg("circuit-open", to=target))

    def ready(self, conn):
        return [f for kind, f in conn.sent if kind == "circuit-ready"]


class JoinTests(Base):
    def check_one_circuit(self, x, y):
        [rx], [ry] = self.ready(x), self.ready(y)
        self.assertEqual((rx["peer"], ry["peer"]), (y.peer_id, x.peer_id))
        self.assertEqual([n.circuits.status()["count"] for n in self.nodes], [1, 1])
        return rx["circuit"], ry["circuit"]

    def test_both_ask_at_once_and_exactly_one_node_joins_either_way(self):
        for small_at in (0, 1):
            self.setUp()
            x = self.place(self.small, small_at)
            y = self.place(self.big, 1 - small_at)
            self.ask(x, small_at, y.peer_id)
            self.ask(y, 1 - small_at, x.peer_id)  # before either open crossed
            self.flush()
            self.check_one_circuit(x, y)

    def test_one_asks_then_the_other(self):
        x, y = self.place(self.big, 0), self.place(self.small, 1)
        self.ask(x, 0, y.peer_id)
        self.flush()
        self.assertEqual(self.ready(x) + self.ready(y), [])  # nothing until y asks
        self.ask(y, 1, x.peer_id)
        self.flush()
        self.check_one_circuit(x, y)

    def test_data_and_credit_cross_both_ways(self):
        x, y = self.place(self.small, 0), self.place(self.big, 1)
        self.ask(x, 0, y.peer_id)
        self.ask(y, 1, x.peer_id)
        self.flush()
        nx, ny = self.check_one_circuit(x, y)
        self.nodes[0].circuits.received(x, msg("circuit-data", circuit=nx, data=b"hello"))
        self.nodes[1].circuits.received(y, msg("circuit-data", circuit=ny, data=b"back"))
        self.flush()
        self.assertEqual(y.data, [(ny, b"hello")])
        self.assertEqual(x.data, [(nx, b"back")])
        self.nodes[1].circuits.received(y, msg("circuit-credit", circuit=ny, bytes=5))
        self.flush()
        self.assertIn(("circuit-credit", {"circuit": nx, "bytes": 5}), x.sent)

    def test_a_hub_that_leaves_closes_the_other_half(self):
        x, y = self.place(self.small, 0), self.place(self.big, 1)
        self.ask(x, 0, y.peer_id)
        self.ask(y, 1, x.peer_id)
        self.flush()
        _nx, ny = self.check_one_circuit(x, y)
        self.nodes[0].circuits.leave(x)
        self.flush()
        self.assertIn(("circuit-close", {"circuit": ny, "reason": "the other hub left"}),
                      y.sent)
        self.assertEqual([n.circuits.status()["count"] for n in self.nodes], [0, 0])

    def test_the_store_going_away_ends_circuits_to_other_nodes(self):
        x, y = self.place(self.small, 0), self.place(self.big, 1)
        self.ask(x, 0, y.peer_id)
        self.ask(y, 1, x.peer_id)
        self.flush()
        self.redis.stop()
        self.flush()
        self.assertEqual([n.circuits.status()["count"] for n in self.nodes], [0, 0])
        self.assertIn("circuit-close", [kind for kind, _ in x.sent])


class RefusedTests(Base):
    def test_a_message_from_a_key_outside_the_cluster_is_refused(self):
        stranger = Identity(SigningKey(b"\x07" * 32))
        bridge = CircuitBridge(stranger, KEYS | {stranger.id}, self.nodes[0].backend,
                               self.clock, self.nodes[0].circuits, Presence())
        bridge.state(True)
        x = self.place(self.small, 1)
        from blockhub.gateway.cluster.bridge import RemoteEnd
        end = RemoteEnd(bridge, NODES[1].id, x.peer_id, self.big)
        bridge.send(end, 1, 0)  # an open, sealed to node 1 by the stranger
        self.flush()
        self.assertEqual(self.nodes[1].bridge.refused, 1)
        self.assertEqual(x.sent, [])

    def test_garbage_on_the_channel_is_refused(self):
        for junk in (b"", b"x" * 100, NODES[0].id.encode() + b"\x00" * 200):
            self.redis.publish(f"blockhub:{circuit_channel(NODES[1].id)}", junk)
        self.flush()
        self.assertEqual(self.nodes[1].bridge.refused, 3)
