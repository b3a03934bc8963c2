"""The hub's side of a relay circuit alone: the transport's credit and pacing, and what
the circuits object does with frames from a gateway that misbehaves."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.circuit_flow import WINDOW
from blockhub.hub.circuit_transport import CREDIT_STEP, CircuitTransport
from blockhub.hub.circuits import Circuits
from blockhub.wire.messages import MAX_CHUNK, Message


class Recorder:
    """The protocol above the transport (TLS, in the hub), and a producer."""

    def __init__(self):
        self.received = b""
        self.lost = None
        self.pauses = self.resumes = 0

    def makeConnection(self, transport):
        self.transport = transport

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.lost = reason.getErrorMessage()

    def pauseProducing(self):
        self.pauses += 1

    def resumeProducing(self):
        self.resumes += 1


class TransportTests(SynchronousTestCase):
    def setUp(self):
        self.sent, self.credits, self.closes = [], [], []
        self.transport = CircuitTransport(
            7, "bhgateway", lambda n, data: self.sent.append(data),
            lambda n, amount: self.credits.append(amount),
            lambda n, reason: self.closes.append(reason))
        self.above = Recorder()
        self.transport.connect(self.above)
        self.transport.registerProducer(self.above, True)

    def test_writes_stop_at_the_credit_and_pause_the_writer_until_more_comes(self):
        self.transport.write(b"x" * (WINDOW + 1000))
        self.assertEqual(sum(map(len, self.sent)), WINDOW)
        self.assertTrue(all(len(chunk) <= MAX_CHUNK for chunk in self.sent))
        self.assertEqual((self.above.pauses, self.above.resumes), (1, 0))
        self.assertTrue(self.transport.credited(5000))
        self.assertEqual(sum(map(len, self.sent)), WINDOW + 1000)
        self.assertEqual(self.above.resumes, 1)

    def test_credit_beyond_what_was_sent_is_refused(self):
        self.assertFalse(self.transport.credited(1))

    def test_what_is_taken_is_credited_back_in_steps_unless_reading_is_paused(self):
        self.transport.data(b"y" * (CREDIT_STEP - 1))
        self.assertEqual(self.credits, [])
        self.transport.pauseProducing()  # the reader above is full
        self.transport.data(b"y")
        self.assertEqual(self.credits, [])
        self.transport.resumeProducing()
        self.assertEqual(self.credits, [CREDIT_STEP])
        self.assertEqual(len(self.above.received), CREDIT_STEP)

    def test_a_close_waits_for_what_is_held_then_tells_the_gateway(self):
        self.transport.write(b"z" * (WINDOW + 10))
        self.transport.loseConnection()
        self.assertEqual(self.closes, [])
        self.transport.credited(10)
        self.assertEqual(self.closes, ["closed by the hub"])
        self.assertIn("closed by this hub", self.above.lost)
        self.transport.write(b"late")
        self.transport.data(b"late")
        self.assertEqual(sum(map(len, self.sent)), WINDOW + 10)

    def test_the_address_is_no_ip(self):
        peer = self.transport.getPeer()
        self.assertEqual((peer.type, peer.gateway, peer.port), ("CIRCUIT", "bhgateway", 7))
        other = CircuitTransport(8, "bhgateway", None, None, None).getPeer()
        self.assertNotEqual(peer.host, other.host)  # no shared per-address cap
        self.assertNotIn(".", peer.host + other.host)


class FakeChannel:
    online = True
    carries_circuits = True
    gateway = None

    def __init__(self):
        self.frames = []

    def circuit_open(self, to):
        self.frames.append(("open", to))
        return True

    def circuit_close(self, circuit, reason):
        self.frames.append(("close", circuit, reason))
        return True

    def circuit_data(self, circuit, data):
        return True

    def circuit_credit(self, circuit, amount):
        return True


class MisbehavingGatewayTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.channel = FakeChannel()
        self.built = []
        self.circuits = Circuits(self.channel, self.clock, lambda peer, proto: Recorder(),
                                 self.server, lambda first: None)

    def server(self, address):
        self.built.append(address)
        return Recorder()

    def test_a_circuit_nobody_asked_for_is_closed_and_nothing_is_built(self):
        self.circuits.ready(Message("circuit-ready", {"circuit": 3, "peer": "bhstranger"}))
        self.assertEqual(self.channel.frames, [("close", 3, "not asked for")])
        self.assertEqual((self.built, self.circuits.open), ([], {}))

    def test_data_and_credit_for_unknown_circuits_are_counted_and_dropped(self):
        self.circuits.data(Message("circuit-data", {"circuit": 9, "data": b"x"}))
        self.circuits.credit(Message("circuit-credit", {"circuit": 9, "bytes": 1}))
        self.assertEqual(self.circuits.refusals["unknown circuit"], 2)

    def test_credit_beyond_the_window_closes_that_circuit(self):
        self.circuits.listen("bhpeer")
        self.circuits.ready(Message("circuit-ready", {"circuit": 4, "peer": "bhpeer"}))
        self.circuits.credit(Message("circuit-credit", {"circuit": 4, "bytes": 10}))
        self.assertIn(("close", 4, "flow control violated"), self.channel.frames)
        self.assertEqual(self.circuits.open, {})

    def test_a_listener_asks_again_after_a_lapse_and_when_the_peer_comes_online(self):
        self.circuits.listen("bhpeer")
        self.circuits.refused(Message("circuit-refused", {
            "to": "bhpeer", "reason": "that hub did not ask for this circuit within 30s"}))
        self.clock.advance(1)
        self.circuits.refused(Message("circuit-refused", {
            "to": "bhpeer", "reason": "that hub is not online here"}))
        self.clock.advance(60)
        self.assertEqual(self.channel.frames, [("open", "bhpeer")] * 2)
        self.assertEqual(dict(self.circuits.refusals), {"refused by the gateway": 2})
        self.circuits.hub_appeared("bhpeer")
        self.assertEqual(len(self.channel.frames), 3)
        self.circuits.unlisten("bhpeer")
        self.circuits.hub_appeared("bhpeer")
        self.assertEqual(len(self.channel.frames), 3)

    def test_a_listener_whose_circuit_ends_before_its_link_asks_again(self):
        self.circuits.listen("bhpeer")
        self.circuits.ready(Message("circuit-ready", {"circuit": 5, "peer": "bhpeer"}))
        self.circuits.closed(Message("circuit-close", {"circuit": 5, "reason": "idle"}))
        self.assertEqual(self.channel.frames, [("open", "bhpeer")])
        self.clock.advance(1)
        self.assertEqual(self.channel.frames, [("open", "bhpeer")] * 2)
