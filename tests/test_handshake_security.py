"""Regression tests for the security review's handshake findings (issue 11: 1, 2, 3, 7,
10), in memory over real TLS on one Clock."""

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import UserError
from blockhub.handshake_bodies import seal_request
from blockhub.hub.peer_protocol import PeerProtocol
from blockhub.hub.peers import Peers
from blockhub.hub.store import Store
from blockhub.limits import DEFAULT
from blockhub.wire import messages
from blockhub.wire.canonical import b64
from tests.helpers import NoCircuits
from tests.memory import FullHub, World, new_identity
from tests.test_handshake_memory import Captured, state

RANGE = "127.0.0.64/26"
CLAIMED = "127.0.0.99"  # inside RANGE; the attacker is really at 127.0.0.1


def claim_address(world, sender, receiver, address, port=7100, nonce=b"\x09" * 16):
    """Relay a request from ``sender`` that claims ``address`` and an endpoint there."""
    sealed = seal_request(sender.identity, receiver.id, f"{address}:{port}",
                          int(world.clock.seconds()), nonce, "let me in", address)
    sender.link.proto.send("relay", to=receiver.id, kind="request",
                                  sealed=b64(sealed))
    world.flush()


def hello(world, sender, receiver, host="127.0.0.1"):
    """``sender`` dials ``receiver``'s listener with peer-hello from ``host``."""
    proto = PeerProtocol(sender.peers, sender.graph.door,
                         first=sender.peers.hello_for(receiver.id),
                         clock=world.clock, limits=world.limits)
    outcome = []
    proto.ready.addBoth(outcome.append)
    server = world.listeners[f"127.0.0.1:{receiver.hub.listen_port}"]
    world.connect_peer(sender.identity, receiver.id, server, proto, host=host)
    world.flush()
    return outcome[0]


def relayed_kinds(captured):
    return [fields["kind"] for kind, fields in captured.frames if kind == "relay"]


class ApproveByRangeTests(SynchronousTestCase):
    """Finding 1: an acceptance by address range holds only for a connection that
    really comes from an address in the range."""

    def setUp(self):
        self.world = World()
        self.attacker = self.world.full_hub(self, "attacker")
        self.b = self.world.full_hub(self, "b")
        self.b.store.add_approved_range(RANGE, 0)

    def test_unconfirmed_range_acceptance_goes_to_the_operator_and_reveals_nothing(self):
        captured = Captured(self.b)
        claim_address(self.world, self.attacker, self.b, CLAIMED)
        # b dialed 127.0.0.99 to confirm, nobody answered: the operator decides.
        self.assertEqual(state(self.b, "in", self.attacker), "pending")
        self.assertIsNone(self.b.handshakes.book.incoming[self.attacker.id].how)
        self.assertEqual(relayed_kinds(captured), [])  # no acceptance, no endpoint
        [row] = self.b.operator.pending()
        self.assertEqual((row["address"], row["address_source"]), (CLAIMED, "claimed"))

    def test_hello_from_outside_the_range_is_refused_and_stores_nothing(self):
        claim_address(self.world, self.attacker, self.b, CLAIMED)
        status, _reason = hello(self.world, self.attacker, self.b)
        self.assertEqual(status, "rejected")
        self.assertIsNone(self.b.store.peer(self.attacker.id))
        self.assertNotIn(self.attacker.id, self.b.peers.connections)
        self.assertEqual(self.b.store.messages(), [])

    def test_hello_while_confirming_must_come_from_the_range(self):
        self.b.peers.connector = lambda hub_id, address, proto: Deferred()  # dial hangs
        claim_address(self.world, self.attacker, self.b, CLAIMED)
        self.assertEqual(state(self.b, "in", self.attacker), "confirming")
        status, reason = hello(self.world, self.attacker, self.b, host="127.0.0.1")
        self.assertEqual((status, reason), ("rejected", "not from an approved address"))
        self.assertEqual(self.b.handshakes.refusals["OutOfRange"], 1)
        self.assertEqual(state(self.b, "in", self.attacker), "confirming")
        status, _ = hello(self.world, self.attacker, self.b, host=CLAIMED)
        self.assertEqual(status, "connected")
        self.assertEqual(state(self.b, "in", self.attacker), "connected")

    def test_confirmed_by_dialing_the_claimed_address(self):
        # A requester that really is at an address in the range (the gateway sees it
        # there, and it listens there) is confirmed by the dial and connected.
        honest = self.attacker
        port = honest.hub.listen_port
        honest.hub.observed = f"{CLAIMED}:40001"
        self.world.listeners[f"{CLAIMED}:{port}"] = self.world.listeners[f"127.0.0.1:{port}"]
        honest.operator.connect(self.b.id)
        self.world.flush()
        self.assertEqual(state(self.b, "in", honest), "connected")
        self.assertEqual(state(honest, "out", self.b), "connected")
        self.assertEqual(self.b.handshakes.book.incoming[honest.id].how, "auto-range")


class RestartKeepsTheAcceptanceTests(SynchronousTestCase):
    """Finding 2: a restored request keeps exactly what it was accepted on."""

    def setUp(self):
        self.world = World()
        self.a = self.world.full_hub(self, "a")
        self.b = self.world.full_hub(self, "b")
        self.b.store.add_approved_range(RANGE, 0)

    def restart_b(self):
        self.b.stop()
        self.b = FullHub(self.world, "b", self.b.path, self.b.hub.listen_port,
                         identity=self.b.identity)
        self.world.flush()
        return self.b

    def test_a_confirming_request_is_confirmed_again_never_accepted_blindly(self):
        self.b.peers.connector = lambda hub_id, address, proto: Deferred()
        claim_address(self.world, self.a, self.b, CLAIMED)
        self.assertEqual(self.b.store.requests("in")[0]["how"], "auto-range")
        b = self.restart_b().start()
        captured = Captured(b)
        self.world.flush()
        self.assertEqual(state(b, "in", self.a), "pending")
        self.assertEqual(relayed_kinds(captured), [])

    def test_an_accepted_request_of_unknown_basis_goes_to_the_operator(self):
        # A database from before schema 3: awaiting, and nothing says on what basis.
        claim_address(self.world, self.a, self.b, CLAIMED)
        self.b.store.set_request_state("in", self.a.id, "awaiting", 0, None)
        b = self.restart_b().start()
        self.assertEqual(state(b, "in", self.a), "pending")

    def test_an_operator_approval_survives_a_restart(self):
        self.a.operator.connect(self.b.id)
        self.world.flush()
        self.b.peers.connector = lambda hub_id, address, proto: Deferred()
        self.b.operator.approve(self.a.id)
        self.world.flush()
        self.assertEqual(self.b.store.requests("in")[0]["how"], "operator")
        b = self.restart_b().start()
        self.world.flush()
        self.assertEqual(state(b, "in", self.a), "connected")


class BlockAndUnpeerTests(SynchronousTestCase):
    """Finding 3: a block ends a peering for good; a peering can be ended."""

    def setUp(self):
        self.world = World()
        self.a = self.world.full_hub(self, "a")
        self.b = self.world.full_hub(self, "b")
        self.b.store.add_approved_key(self.a.id, 0)
        self.a.operator.connect(self.b.id)
        self.world.flush()
        self.assertIn(self.a.id, self.b.peers.connections)

    def test_block_closes_the_link_stops_redials_and_refuses_hellos(self):
        result = self.b.operator.reject(self.a.id, block=True)
        self.assertTrue(result["removed"])
        self.world.flush()
        self.assertNotIn(self.a.id, self.b.peers.connections)
        self.assertIsNone(self.b.store.peer(self.a.id))
        self.assertEqual(self.b.peers.snapshot(), [])
        self.world.clock.advance(300)  # b was the dialer: it must not come back
        self.world.flush()
        self.assertNotIn(self.b.id, self.a.peers.connections)
        self.assertEqual(hello(self.world, self.a, self.b), ("rejected", "blocked"))
        self.a.peers.send(self.b.id, "still there?")
        self.world.clock.advance(120)
        self.world.flush()
        self.assertEqual(self.b.store.messages(), [])

    def test_a_blocked_key_asking_again_is_refused(self):
        self.b.operator.reject(self.a.id, block=True)
        self.world.flush()
        self.world.clock.advance(1)
        self.a.operator.connect(self.b.id)
        self.world.flush()
        self.assertEqual(self.b.handshakes.refusals["Blocked"], 1)
        self.assertNotIn(self.a.id, self.b.peers.connections)

    def test_unpeer_ends_the_peering_and_its_redials(self):
        result = self.b.operator.unpeer(self.a.id)
        self.assertEqual(result, {"peer": self.a.id, "removed": True, "blocked": False})
        self.world.clock.advance(300)
        self.world.flush()
        self.assertNotIn(self.a.id, self.b.peers.connections)
        self.assertEqual(hello(self.world, self.a, self.b), ("rejected", "unsolicited"))
        self.assertRaises(UserError, self.b.operator.unpeer, self.a.id)
        # Not blocked: a fresh request is heard again.
        self.world.clock.advance(1)
        self.a.operator.connect(self.b.id)
        self.world.flush()
        self.assertIn(self.a.id, self.b.peers.connections)

    def test_connect_to_a_blocked_hub_is_a_clear_error(self):
        self.b.operator.unpeer(self.a.id, block=True)
        error = self.assertRaises(UserError, self.b.operator.connect, self.a.id)
        self.assertIn("blocked", str(error))


class RejectAnyOpenRequestTests(SynchronousTestCase):
    """Finding 3: reject acts on requests in any state short of connected."""

    def test_reject_while_dialing_and_the_late_link_is_closed(self):
        world = World()
        a, b = world.full_hub(self, "a"), world.full_hub(self, "b")
        dials = []
        real = b.peers.connector

        def held(*args):
            dials.append((args, Deferred()))
            return dials[-1][1]

        b.peers.connector = held
        a.operator.connect(b.id)
        world.flush()
        b.operator.approve(a.id)
        world.flush()
        self.assertEqual(state(b, "in", a), "dialing")
        b.operator.reject(a.id)
        self.assertEqual(state(b, "in", a), "rejected")
        # The dial that was under way connects after all: the link is closed again.
        args, d = dials[0]
        real(*args).addCallback(d.callback)
        world.flush()
        self.assertNotIn(a.id, b.peers.connections)
        self.assertIsNone(b.store.peer(a.id))

    def test_reject_while_awaiting(self):
        world = World()
        a = world.full_hub(self, "a")
        b = world.full_hub(self, "b")
        b.peers.connector = lambda *args: Deferred()
        a.peers.connector = lambda *args: Deferred()
        a.operator.connect(b.id)
        world.flush()
        b.operator.approve(a.id)
        b.handshakes.book.incoming[a.id].dial_failed("unreachable")
        self.assertEqual(state(b, "in", a), "awaiting")
        b.operator.reject(a.id)
        self.assertEqual(state(b, "in", a), "rejected")


class FullPendingListTests(SynchronousTestCase):
    """Finding 7: throwaway ids cannot crowd a real request out of a full list."""

    def setUp(self):
        self.world = World(limits=attrs.evolve(DEFAULT, max_pending=3))
        self.b = self.world.full_hub(self, "b")

    def ask(self, name):
        hub = self.world.full_hub(self, name, listen=False)
        hub.operator.connect(self.b.id, name)
        self.world.flush()
        self.world.clock.advance(1)
        return hub

    def test_the_oldest_stranger_is_dropped_and_told(self):
        junk = [self.ask(f"junk{n}") for n in range(3)]
        real = self.ask("real")
        notes = sorted(p["note"] for p in self.b.operator.pending())
        self.assertEqual(notes, ["junk1", "junk2", "real"])
        self.assertEqual(state(self.b, "in", junk[0]), "dropped")
        self.assertEqual(state(junk[0], "out", self.b), "rejected")
        self.assertIn("not kept", junk[0].handshakes.book.outgoing[self.b.id].reason)
        self.assertEqual(state(real, "out", self.b), "sent")
        self.assertEqual(self.b.handshakes.refusals["Dropped"], 1)

    def test_a_request_from_a_hub_we_asked_is_kept(self):
        first = self.ask("first")
        self.b.operator.connect(first.id)  # b asked it: not a stranger
        self.world.flush()
        for n in range(3):
            self.ask(f"junk{n}")
        self.assertIn("first", [p["note"] for p in self.b.operator.pending()])
        self.assertEqual(len(self.b.operator.pending()), 3)


class _FakePeerConnection:
    def __init__(self, peer_id):
        self.peer_id = peer_id
        self.sent, self.closed = [], None

    def send(self, kind, **fields):
        self.sent.append((kind, fields))

    def close(self, reason, **kw):
        self.closed = reason


class OneBadMessageTests(SynchronousTestCase):
    """Finding 10: a message the database cannot store costs only its own sender."""

    def test_other_peers_messages_are_committed_and_acknowledged(self):
        clock = Clock()
        store = Store(self.mktemp())
        self.addCleanup(store.close)
        peers = Peers(new_identity(), store, clock, None, None, None, NoCircuits())
        good, bad = _FakePeerConnection(new_identity().id), _FakePeerConnection(
            new_identity().id)
        peers.message_received(good, messages.Message("message", {"seq": 1, "text": "fine",
                                                                  "at": 1}))
        peers.message_received(bad, messages.Message("message", {"seq": 1, "text": "\ud800",
                                                                 "at": 1}))
        clock.advance(0)
        self.assertEqual([m["text"] for m in store.messages()], ["fine"])
        self.assertEqual(good.sent, [("ack", {"seq": 1})])
        self.assertIsNone(good.closed)
        self.assertEqual(bad.sent, [])
        self.assertIn("storage error", bad.closed)


class AddressSourceTests(SynchronousTestCase):
    """Finding 16: pending says whether an address was seen or only claimed."""

    def test_a_direct_request_shows_the_address_seen(self):
        from blockhub.gateway.admission import Admission

        key = b"n" * 32
        world = World(Admission(mode="open", network_key=key))
        a = world.full_hub(self, "a", network_key=key)
        b = world.full_hub(self, "b", network_key=key)
        a.operator.connect(b.id)
        world.flush()
        [row] = b.operator.pending()
        self.assertEqual((row["address"], row["address_source"]), ("127.0.0.1", "seen"))
