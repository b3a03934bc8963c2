"""``raw-relay/1``: relay and deliver as binary frames.  The frames alone, then hubs of
this version beside hubs and gateways without the feature, over real TLS in memory:
every pairing completes its handshake, and each side gets the frame it reads."""

from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import BadFrame
from blockhub.wire import features, messages
from blockhub.wire.features import SPOKEN
from tests.memory import World
from tests.test_handshake_memory import state

BOB = "bh7qzmhz5w5yjgl5qs2t53bd6hvewwmztfr6as3im5r6bxg6zqg75c2hubmi"
WITHOUT = tuple(f for f in SPOKEN if f != features.RAW_RELAY)


class FrameTests(SynchronousTestCase):
    def test_round_trip(self):
        for kind in messages.RAW_KINDS:
            frame = messages.encode_relay_raw(BOB, kind, b"\x00box")
            self.assertEqual(len(frame), 4 + 2 + 32 + 1 + 4)
            message = messages.decode(frame[5], frame[6:])
            self.assertEqual((message.kind, message.fields),
                             ("relay-raw", {"to": BOB, "kind": kind, "sealed": b"\x00box"}))
        frame = messages.encode_deliver_raw(BOB, "punch", b"x" * messages.MAX_SEALED)
        message = messages.decode(frame[5], frame[6:])
        self.assertEqual((message.kind, message["from"], message["kind"]),
                         ("deliver-raw", BOB, "punch"))

    def test_bad_bodies_are_protocol_errors(self):
        good = messages.encode_relay_raw(BOB, "request", b"box")[6:]
        for code in (messages.RELAY_RAW, messages.DELIVER_RAW):
            for body in (b"", good[:32], good[:33], good[:32] + b"\x04box",
                         good[:33] + b"x" * (messages.MAX_SEALED + 1)):
                self.assertRaises(BadFrame, messages.decode, code, body)

    def test_what_cannot_be_sent_is_not_encoded(self):
        self.assertRaises(ValueError, messages.encode_relay_raw, BOB, "request", b"")
        self.assertRaises(ValueError, messages.encode_relay_raw, BOB, "request",
                          b"x" * (messages.MAX_SEALED + 1))


def received_kinds(hub):
    """The kinds of frame ``hub`` gets from its gateway, from now on."""
    kinds = []
    proto = hub.link.proto
    original = proto.messageReceived

    def received(message):
        kinds.append(message.kind)
        original(message)

    proto.messageReceived = received
    return kinds


class PairingTests(SynchronousTestCase):
    def pair(self, world, a_spoken=SPOKEN, b_spoken=SPOKEN):
        """a asks b, which approved it in advance and dials it: the frame the request
        reached b in, once the two are connected."""
        a = world.full_hub(self, "a", spoken=a_spoken)
        b = world.full_hub(self, "b", spoken=b_spoken)
        b.store.add_approved_key(a.id, 0)
        got = received_kinds(b)
        a.operator.connect(b.id, "hi")
        world.flush()
        self.assertEqual(state(a, "out", b), "connected")
        self.assertEqual(world.gateway.counters.protocol_errors, 0)
        self.assertEqual(world.gateway.counters.relayed, 1)
        [delivered] = [kind for kind in got if kind in ("deliver", "deliver-raw")]
        return delivered

    def test_both_speak_it(self):
        self.assertEqual(self.pair(World()), "deliver-raw")

    def test_a_receiver_without_it_gets_json(self):
        self.assertEqual(self.pair(World(), b_spoken=WITHOUT), "deliver")

    def test_a_sender_without_it_is_delivered_in_binary(self):
        self.assertEqual(self.pair(World(), a_spoken=WITHOUT), "deliver-raw")

    def test_a_gateway_without_it_is_sent_json_and_refuses_the_frame(self):
        world = World(spoken=WITHOUT)
        self.assertEqual(self.pair(world), "deliver")
        c = world.full_hub(self, "c")
        c.link.proto.send_frame(messages.encode_relay_raw(BOB, "request", b"box"))
        world.flush()
        self.assertEqual(world.gateway.counters.protocol_errors, 1)
        self.assertNotEqual(c.link.state, "online")

    def test_a_hub_that_did_not_list_it_refuses_the_frame(self):
        world = World()
        a = world.full_hub(self, "a", spoken=WITHOUT)
        a.link.proto.dataReceived(messages.encode_deliver_raw(BOB, "request", b"box"))
        self.assertIn("raw-relay/1", a.link.proto.closing_reason)
