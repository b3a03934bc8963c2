"""Relay circuits through real gateway sessions over TLS in memory, with raw hub
connections (``tests/raw_hub.py``): a circuit carries bytes both ways with its credit;
abuse (circuit frames before joining, broken and oversized frames, too many circuits,
a circuit to a hub that leaves, frames for circuits not the sender's) costs the abuser
only; a hub flooding its circuit does not hold back other hubs' presence; and nothing
a circuit carries reaches the gateway's log."""

import attrs
from twisted.logger import formatEvent, globalLogPublisher
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from blockhub.circuit_flow import WINDOW
from blockhub.limits import DEFAULT
from blockhub.wire import messages
from blockhub.wire.framing import HEADER
from tests.flow import BUFFER, FlowFakeTransport
from tests.memory import World
from tests.raw_hub import raw_hub


def circuit_between(world, one, two) -> int:
    one.send("circuit-open", to=two.id)
    two.send("circuit-open", to=one.id)
    world.flush()
    number = one.last("circuit-ready")["circuit"]
    assert two.last("circuit-ready")["circuit"] == number
    return number


def payload(of):
    return b"".join(m["data"] for m in of.of("circuit-data"))


class CarryTests(SynchronousTestCase):
    def test_bytes_both_ways_with_credit(self):
        world = World()
        alice, bob = raw_hub(world, "alice"), raw_hub(world, "bob")
        self.assertEqual(alice.kinds()[:2], ["hello", "welcome"])
        number = circuit_between(world, alice, bob)
        self.assertEqual(alice.last("circuit-ready")["peer"], bob.id)
        alice.send_data(number, b"\x16\x03\x01" * 40000)  # 120000 bytes of "TLS"
        bob.send_data(number, b"pong")
        world.flush()
        self.assertEqual(payload(bob), b"\x16\x03\x01" * 40000)
        self.assertEqual(payload(alice), b"pong")
        bob.send("circuit-credit", circuit=number, bytes=120000)
        world.flush()
        self.assertEqual(alice.last("circuit-credit")["bytes"], 120000)
        self.assertEqual(world.gateway.status()["circuits"],
                         {"count": 1, "pending": 0, "bytes": 120004})
        alice.send("circuit-close", circuit=number, reason="done")
        world.flush()
        self.assertEqual(bob.last("circuit-close")["reason"], "done")
        self.assertEqual(world.gateway.status()["circuits"]["count"], 0)
        self.assertEqual((alice.closed, bob.closed), (None, None))

    def test_data_beyond_the_credit_ends_the_circuit_not_the_sessions(self):
        world = World()
        alice, bob = raw_hub(world, "alice"), raw_hub(world, "bob")
        number = circuit_between(world, alice, bob)
        alice.send_data(number, b"x" * (WINDOW + 1))
        world.flush()
        for hub in alice, bob:
            self.assertEqual(hub.last("circuit-close")["reason"], "flow control violated")
            self.assertIsNone(hub.closed)
        self.assertEqual(len(payload(bob)), WINDOW)
        self.assertEqual(world.gateway.counters.circuit_violations, 1)
        alice.send_data(number, b"late")  # the circuit is gone: dropped and counted
        world.flush()
        self.assertEqual(world.gateway.counters.circuit_unknown, 1)
        self.assertEqual(len(world.gateway.presence.hubs), 2)


class AbuseTests(SynchronousTestCase):
    def test_circuit_frames_before_joining_are_protocol_errors(self):
        world = World()
        bob = raw_hub(world, "bob")
        for frame in (messages.encode(messages.make("circuit-open", to=bob.id)),
                      messages.encode_circuit_data(1, b"x")):
            early = raw_hub(world, "early", join=False)
            side = early.gateway_side()
            early.send_frame(frame)
            world.flush()
            self.assertIn("is not allowed in state greeted", side.closing_reason)
            self.assertIsNotNone(early.closed)
        self.assertEqual(world.gateway.counters.protocol_errors, 2)
        self.assertEqual(bob.of("circuit-ready", "circuit-data"), [])

    def test_broken_and_oversized_circuit_frames(self):
        world = World()
        bob = raw_hub(world, "bob")
        too_big = HEADER.pack(2 + 4 + messages.MAX_CHUNK + 1, 1, 15) + b"\x00\x00\x00\x01" \
            + b"x" * (messages.MAX_CHUNK + 1)
        broken = [
            too_big,
            HEADER.pack(2 + 4, 1, 15) + b"\x00\x00\x00\x01",          # no payload
            HEADER.pack(2 + 5, 1, 15) + b"\x00\x00\x00\x00x",         # circuit 0
            HEADER.pack(2 + 3, 1, 15) + b"\x00\x00\x01",              # no number
            messages.encode(messages.Message("circuit-credit", {"circuit": 1, "bytes": 0})),
            messages.encode(messages.Message("circuit-open", {"to": "nobody"})),
            messages.encode(messages.Message("circuit-close", {"circuit": 1,
                                                              "reason": "x" * 501})),
            messages.encode(messages.make("circuit-ready", circuit=1, peer=bob.id)),
            messages.encode(messages.make("circuit-refused", to=bob.id, reason="no")),
        ]
        for frame in broken:
            hub = raw_hub(world, "mallory")
            side = hub.gateway_side()
            hub.send_raw(frame)
            world.flush()
            self.assertIn("protocol error", side.closing_reason, frame[:12])
            self.assertIsNotNone(hub.closed)
        self.assertEqual(world.gateway.counters.protocol_errors, len(broken))
        self.assertIsNone(bob.closed)
        self.assertEqual(bob.of("circuit-ready", "circuit-data", "circuit-close"), [])

    def test_too_many_circuits(self):
        world = World(limits=attrs.evolve(DEFAULT, max_circuits_per_hub=2))
        greedy = raw_hub(world, "greedy")
        others = [raw_hub(world, f"o{n}") for n in range(3)]
        for other in others:
            greedy.send("circuit-open", to=other.id)
        world.flush()
        refused = greedy.last("circuit-refused")
        self.assertEqual((refused["to"], refused["reason"]), (
            others[2].id, "too many circuits: at most 2 per hub, open or asked for"))
        for other in others:  # they were never told a thing
            self.assertEqual(other.of("circuit-ready", "circuit-refused"), [])
        self.assertEqual(world.gateway.status()["circuits"]["pending"], 2)

    def test_a_circuit_to_a_hub_that_leaves(self):
        world = World()
        alice, bob, carol = (raw_hub(world, n) for n in ("alice", "bob", "carol"))
        number = circuit_between(world, alice, bob)
        carol.send("circuit-open", to=bob.id)
        world.flush()
        bob.close("going away")
        world.flush()
        self.assertEqual(alice.last("circuit-close")["circuit"], number)
        self.assertEqual(alice.last("circuit-close")["reason"], "the other hub left")
        self.assertEqual(carol.last("circuit-refused")["reason"], "that hub left")
        alice.send("circuit-open", to=bob.id)
        world.flush()
        self.assertEqual(alice.last("circuit-refused")["reason"],
                         "that hub is not online here")
        self.assertEqual(world.gateway.status()["circuits"],
                         {"count": 0, "pending": 0, "bytes": 0})

    def test_frames_for_circuits_not_the_senders_are_dropped(self):
        world = World()
        alice, bob, mallory = (raw_hub(world, n) for n in ("alice", "bob", "mallory"))
        number = circuit_between(world, alice, bob)
        mallory.send_data(number, b"injected")
        mallory.send("circuit-credit", circuit=number, bytes=1000)
        mallory.send("circuit-close", circuit=number, reason="hijack")
        world.flush()
        self.assertEqual(world.gateway.counters.circuit_unknown, 2)
        for hub in alice, bob:
            self.assertEqual(hub.of("circuit-data", "circuit-credit", "circuit-close"), [])
        self.assertIsNone(mallory.closed)


class PriorityTests(SynchronousTestCase):
    def setUp(self):
        self.patch(iosim, "FakeTransport", FlowFakeTransport)

    def test_a_flooded_circuit_does_not_hold_back_presence(self):
        world = World()
        flooder, reader = raw_hub(world, "flooder"), raw_hub(world, "reader")
        number = circuit_between(world, flooder, reader)
        reader_pump = world.pumps[1]
        reader_pump.serverIO.stalled = True  # the reader stops reading for a while
        flooder.send_data(number, b"f" * WINDOW)  # all its credit, at once
        world.flush()
        gateway_side = reader.gateway_side()
        self.assertTrue(gateway_side.paused)
        self.assertGreater(gateway_side.queue.low_bytes, WINDOW - 2 * BUFFER)
        newcomer = raw_hub(world, "newcomer")  # joins while the flood waits
        self.assertEqual(newcomer.kinds()[:2], ["hello", "welcome"])
        self.assertGreater(gateway_side.queue.bytes, 0)  # its presence frame, queued
        reader_pump.serverIO.stalled = False
        world.flush()
        arrived = reader.of("presence", "circuit-data")
        at = [m.kind == "presence" and m["hub"] == newcomer.id for m in arrived].index(True)
        before = sum(len(m["data"]) for m in arrived[:at] if m.kind == "circuit-data")
        # Only what the transport took before it paused went first (its buffer and
        # the frame that filled it); the rest of the flood waited behind presence.
        self.assertLessEqual(before, BUFFER + messages.MAX_CHUNK)
        self.assertEqual(len(payload(reader)), WINDOW)
        self.assertEqual(world.gateway.counters.send_queue_full, 0)


class LogTests(SynchronousTestCase):
    def test_nothing_a_circuit_carries_is_logged(self):
        world = World(limits=attrs.evolve(DEFAULT, circuit_idle_timeout=5.0))
        alice, bob = raw_hub(world, "alice"), raw_hub(world, "bob")
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        number = circuit_between(world, alice, bob)
        alice.send_data(number, b"SECRET-PAYLOAD" * 100)
        bob.send("circuit-credit", circuit=number, bytes=1400)
        bob.send("circuit-close", circuit=number, reason="SECRET-REASON")
        world.flush()
        number = circuit_between(world, alice, bob)
        alice.send_data(number, b"SECRET-PAYLOAD" * 20000)  # beyond its credit
        world.flush()
        number = circuit_between(world, alice, bob)
        world.clock.advance(5.0)  # idle
        world.flush()
        texts = [formatEvent(e) + repr(sorted(e.items(), key=str)) for e in events]
        self.assertTrue(any("circuit" in text for text in texts))
        for text in texts:
            self.assertNotIn("SECRET", text)
            self.assertNotIn("127.0.0.1", text)
