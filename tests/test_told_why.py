"""A peer that breaks the protocol is told why before it is disconnected: ``refused``
from a gateway, a fatal ``error`` on a peer link, the reason bounded in size, and one
such frame per connection however much more the peer sends."""

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import Refused
from blockhub.gateway.admission import Admission
from blockhub.gateway.build import build_gateway
from blockhub.hub.peer_protocol import PeerProtocol
from blockhub.limits import DEFAULT
from blockhub.wire import canonical, envelope, messages
from blockhub.wire.framing import FrameDecoder, encode_frame
from tests.memory import World, new_identity

GW, HUB = new_identity(), new_identity()
OPENING = ("peer-hello", {"hello": envelope.sign(HUB, "peer-hello", {
    "from": HUB.id, "to": GW.id, "at": 0}).to_json()})


def frames(transport) -> list[messages.Message]:
    return [messages.decode(code, body)
            for code, body in FrameDecoder().feed(transport.value())]


def connect(proto, peer_id):
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000))
    proto.makeConnection(transport)
    proto.peer_id = peer_id
    proto.secured()  # what handshakeCompleted does, without a certificate
    return transport


class GatewayTellsTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.graph = build_gateway(GW, Admission(), self.clock, DEFAULT,
                                   random=lambda n: b"\x01" * n)
        self.proto = self.graph.factory.buildProtocol(None)
        self.transport = connect(self.proto, HUB.id)
        [hello] = frames(self.transport)
        self.assertEqual(hello.kind, "hello")
        self.transport.clear()

    def test_a_schema_break_is_refused_with_the_reason_then_closed(self):
        junk = encode_frame(2, b'{"hubinfo":5}') + encode_frame(99, b"{}") * 50
        self.proto.dataReceived(junk)
        self.proto.dataReceived(encode_frame(2, b"[") * 50)  # and more, after it
        [told] = frames(self.transport)
        self.assertEqual(told.kind, "refused")
        self.assertIn("protocol error", told["reason"])
        self.assertIn("hubinfo", told["reason"])
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.graph.counters.protocol_errors, 1)

    def test_the_reason_is_bounded(self):
        body = canonical.dumps({"x" * 100_000: 1})
        self.proto.dataReceived(encode_frame(2, body))
        [told] = frames(self.transport)
        self.assertLessEqual(len(told["reason"]), messages.MAX_REASON)
        self.assertLess(len(self.transport.value()), 1000)

    def test_an_oversized_frame_is_refused_before_its_body(self):
        self.proto.dataReceived(b"\xff\xff\xff\xff\x01\x02")
        [told] = frames(self.transport)
        self.assertIn("announced a frame of 4294967295 bytes", told["reason"])

    def test_a_hub_may_say_refused_too(self):
        self.proto.dataReceived(messages.encode(messages.make("refused", reason="bad hello")))
        self.assertEqual(frames(self.transport), [])
        self.assertEqual(self.proto.closing_reason, "the hub refused: bad hello")
        self.assertEqual(self.graph.counters.protocol_errors, 0)


class FakeOpener:
    def inbound(self, conn, message):
        raise AssertionError("not reached")


class PeerTellsTests(SynchronousTestCase):
    def test_a_bad_opening_is_answered_with_one_fatal_error(self):
        proto = PeerProtocol(None, FakeOpener(), clock=Clock())
        transport = connect(proto, HUB.id)
        ack = messages.encode(messages.make("ack", seq=1))
        proto.dataReceived(ack * 20)
        proto.dataReceived(ack)
        [told] = frames(transport)
        self.assertEqual((told.kind, told["fatal"]), ("error", True))
        self.assertIn("a peer must open with peer-hello or peer-request", told["reason"])
        self.assertTrue(transport.disconnecting)

    def test_a_dialer_told_a_fatal_error_closes_with_it(self):
        proto = PeerProtocol(None, FakeOpener(), first=OPENING,
                             clock=Clock())
        answers = []
        proto.ready.addBoth(answers.append)
        transport = connect(proto, HUB.id)
        transport.clear()
        proto.dataReceived(messages.encode(messages.make("error", reason="stale", fatal=True)))
        self.assertEqual(proto.closing_reason, "peer error: stale")
        self.assertEqual(transport.value(), b"")  # no error answers an error
        proto.connectionLost(None)
        [failure] = answers
        failure.trap(Refused)

    def test_a_non_fatal_error_is_news_and_the_link_stays(self):
        proto = PeerProtocol(None, FakeOpener(), first=OPENING,
                             clock=Clock())
        connect(proto, HUB.id)
        proto.dataReceived(messages.encode(messages.make("error", reason="fyi",
                                                         fatal=False)))
        self.assertIsNone(proto.closing_reason)
        self.assertEqual(proto.session.state, "opening")


class InMemoryTests(SynchronousTestCase):
    def test_a_linked_peer_that_breaks_the_protocol_hears_why(self):
        world = World()
        a, b = world.full_hub(self, "a"), world.full_hub(self, "b")
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id, "hi")
        world.flush()
        offender = a.peers.connections[b.id]
        offender.send("peer-request", sealed=canonical.b64(b"x"))
        world.flush()
        self.assertEqual(offender.closing_reason,
                         "peer error: protocol error: unexpected 'peer-request' on an "
                         "established peer link")

    def test_a_hub_whose_join_is_refused_sees_the_reason(self):
        world = World()
        hub = world.add_hub("a", start=False)
        # A join whose HubInfo is another hub's: a protocol error at the gateway.
        other = World().add_hub("other", start=False)
        hub.send_join = lambda proto, entry, hello: proto.send(
            "join", hubinfo=other.hubinfo().to_json(), proof=None)
        hub.link.start()
        world.flush()
        self.assertIn("hubinfo is signed by another hub than the connected one",
                      hub.link.last_error[world.identity.id])
