"""The gateway's session machine alone, with a Clock and fake collaborators: the states
a connection goes through, the join deadline (fired, and cancelled on join, refusal and
loss), the unauthenticated place given back, and impossible inputs refused.  Then the
same deadline through the wiring, on a real protocol."""

from automat import NoTransition
from nacl.signing import SigningKey
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import BadMessage
from blockhub.gateway.admission import Admission
from blockhub.gateway.build import build_gateway
from blockhub.gateway.gateway import NotAdmitted
from blockhub.gateway.session import GatewaySession
from blockhub.hubinfo import make_hubinfo
from blockhub.identity import Identity
from blockhub.limits import Limits
from blockhub.net.opening import Openings
from blockhub.wire import messages
from blockhub.wire.framing import HEADER
from tests.flow import FlowStringTransport

TIMEOUT = 13.0
HUB = Identity(SigningKey(b"\x21" * 32))


def message(kind, **fields):
    return messages.Message(kind, fields)


class FakeConn:
    host, address, peer_id = "10.1.2.3", "10.1.2.3:4000", HUB.id

    def __init__(self):
        self.closed = []

    def close(self, reason, refuse=False, abort=False):
        self.closed.append((reason, refuse, abort))


class FakeGateway:
    """The decisions, answering as each test sets them, recording what it was asked."""

    def __init__(self):
        self.openings = Openings(per_address=1)
        self.door = self.key = self.join = None  # a reason to refuse, or None
        self.events = []

    def take_slot(self, conn):
        if self.door:
            raise NotAdmitted(self.door)
        return self.openings.enter(conn.host)

    def check_key(self, conn):
        if self.key:
            raise NotAdmitted(self.key)

    def hello(self, conn, challenge):
        self.events.append(("hello", challenge))

    def old_key(self, conn, hub_features):
        """No rotation here (tests/test_succession.py has them)."""

    def speaks(self, feature):
        return True

    def admitted(self, conn, hub_features):
        self.events.append(("admitted", hub_features))

    def judge_join(self, conn, message, challenge):
        self.events.append(("judge", challenge))
        if self.join:
            raise NotAdmitted(self.join)
        return message["hubinfo"]

    def checked_info(self, conn, value):
        return value

    def refuse(self, conn, reason):
        self.events.append(("refuse", reason))

    def missed_join(self, conn):
        self.events.append(("missed join",))


class Recorder:
    def __init__(self, events):
        self.events = events

    def __getattr__(self, name):
        return lambda *args: self.events.append((name,) + args[1:])


class SessionTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.conn = FakeConn()
        self.gateway = FakeGateway()
        self.done = []  # what reached presence and relay
        self.session = GatewaySession(self.conn, self.gateway, Recorder(self.done),
                                      Recorder(self.done), self.clock, TIMEOUT,
                                      lambda n: b"\x09" * n, circuits=Recorder(self.done))

    def greeted(self):
        self.session.connected()
        self.session.secured()
        self.assertEqual(self.session.state, "greeted")

    def test_a_hub_that_joins_updates_relays_and_leaves(self):
        states = [self.session.state]
        self.session.connected()
        states.append(self.session.state)
        self.assertEqual(len(self.gateway.openings), 1)
        self.session.secured()
        states.append(self.session.state)
        self.session.received(message("join", hubinfo="info-1", proof=None))
        states.append(self.session.state)
        self.session.received(message("update", hubinfo="info-2"))
        self.session.received(messages.Message("relay", {"to": "x", "kind": "request",
                                                         "sealed": "Ym94"}))
        self.session.lost("bye")
        states.append(self.session.state)
        self.assertEqual(states, ["new", "securing", "greeted", "admitted", "closed"])
        self.assertEqual([e[0] for e in self.gateway.events], ["hello", "judge", "admitted"])
        self.assertEqual(self.gateway.events[0][1], b"\x09" * 32)
        self.assertEqual([event[0] for event in self.done], ["join", "update", "relay_box",
                                                             "leave"])
        self.assertEqual(self.done[0][1], "info-1")
        self.assertEqual(len(self.gateway.openings), 0)  # given back at the join

    def test_the_join_deadline_fires_and_refuses(self):
        self.greeted()
        self.clock.advance(TIMEOUT - 0.5)
        self.assertEqual(self.gateway.events[1:], [])
        self.clock.advance(0.5)
        self.assertEqual(self.gateway.events[1:], [("missed join",)])
        self.assertEqual(self.session.state, "refused")
        self.assertEqual(len(self.gateway.openings), 1)  # held until the connection goes
        self.session.lost("closed")
        self.assertEqual((self.session.state, len(self.gateway.openings)), ("closed", 0))

    def test_a_join_cancels_the_deadline(self):
        self.greeted()
        self.session.received(message("join", hubinfo="info", proof=None))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(TIMEOUT * 2)
        self.assertNotIn(("missed join",), self.gateway.events)
        self.assertEqual(self.session.state, "admitted")

    def test_a_refused_join_cancels_the_deadline(self):
        self.gateway.join = "the gateway is full; try another gateway"
        self.greeted()
        self.session.received(message("join", hubinfo="info", proof=None))
        self.assertEqual(self.session.state, "refused")
        self.assertEqual(self.gateway.events[-1],
                         ("refuse", "the gateway is full; try another gateway"))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.done, [])

    def test_a_connection_lost_while_greeted_cancels_the_deadline(self):
        self.greeted()
        self.session.lost("reset")
        self.assertEqual(self.session.state, "closed")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(len(self.gateway.openings), 0)
        self.assertEqual(self.done, [])  # it never joined: nothing to leave

    def test_a_refused_key_gets_no_hello_and_no_deadline(self):
        self.gateway.key = "this hub is not on the gateway's allow list"
        self.session.connected()
        self.session.secured()
        self.assertEqual(self.session.state, "refused")
        self.assertEqual(self.gateway.events,
                         [("refuse", "this hub is not on the gateway's allow list")])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_dropped_at_the_door(self):
        self.gateway.door = "too many unauthenticated connections from this address"
        self.session.connected()
        self.assertEqual(self.session.state, "refused")
        self.assertEqual(self.conn.closed, [
            ("too many unauthenticated connections from this address", False, True)])
        self.assertEqual(len(self.gateway.openings), 0)
        self.assertRaises(NoTransition, self.session.secured)  # TLS never finishes
        self.session.lost("aborted")
        self.assertEqual(self.session.state, "closed")

    def test_messages_out_of_turn_are_protocol_errors(self):
        self.session.connected()
        error = self.assertRaises(BadMessage, self.session.received,
                                  message("join", hubinfo="info", proof=None))
        self.assertEqual(str(error), "join before the TLS handshake completed")
        self.session.secured()
        for kind in ("update", "relay"):
            error = self.assertRaises(BadMessage, self.session.received, message(kind))
            self.assertEqual(str(error), f"{kind!r} is not allowed in state greeted")
        self.session.received(message("join", hubinfo="info", proof=None))
        error = self.assertRaises(BadMessage, self.session.received,
                                  message("join", hubinfo="info", proof=None))
        self.assertEqual(str(error), "'join' is not allowed in state admitted")
        error = self.assertRaises(BadMessage, self.session.received, message("ack", seq=1))
        self.assertEqual(str(error), "a hub may not send 'ack' to a gateway")
        self.assertEqual(self.session.state, "admitted")
        self.assertEqual([event[0] for event in self.done], ["join"])

    def test_relays_and_circuit_frames_only_while_admitted(self):
        """They skip the machine's dispatch once admitted; before and after, they are
        refused as they always were."""
        self.greeted()
        kinds = ("relay", "relay-raw", "circuit-open", "circuit-data")
        for kind in kinds:
            self.assertRaises(BadMessage, self.session.received, message(kind, to="x"))
        self.session.received(message("join", hubinfo="info", proof=None))
        self.session.received(messages.Message("relay-raw", {"to": "x", "kind": "request",
                                                             "sealed": b"box"}))
        self.assertEqual(self.done[-1], ("relay_box", "x", "request", b"box"))
        # The framed layer hands an admitted hub's relay-raw bodies straight over.
        body = messages.encode_relay_raw(HUB.id, "punch", b"box")[HEADER.size:]
        self.conn.raw_frames[messages.RELAY_RAW](body)
        self.assertEqual(self.done[-1], ("relay_box", HUB.id, "punch", b"box"))
        self.session.lost("bye")
        self.assertEqual(self.conn.raw_frames, {})
        for kind in kinds:
            error = self.assertRaises(BadMessage, self.session.received,
                                      message(kind, to="x"))
            self.assertEqual(str(error), f"{kind!r} is not allowed in state closed")
        self.assertEqual([event[0] for event in self.done],
                         ["join", "relay_box", "relay_box", "leave"])

    def test_impossible_events_raise(self):
        self.assertRaises(NoTransition, self.session.secured)  # before connected
        self.session.connected()
        self.assertRaises(NoTransition, self.session.connected)
        self.session.secured()
        self.assertRaises(NoTransition, self.session.secured)
        self.session.lost("gone")
        self.assertRaises(NoTransition, self.session.lost, "gone again")
        self.assertRaises(BadMessage, self.session.received, message("update"))
        self.assertEqual(self.session.state, "closed")


class WiredDeadlineTests(SynchronousTestCase):
    """The join deadline on a real protocol built by the wiring.  Regression: the
    deadline was never cancelled, so every admitted hub left a pending call behind."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        limits = Limits(join_timeout=TIMEOUT, tls_timeout=30.0, idle_timeout=60.0)
        self.graph = build_gateway(Identity(SigningKey(b"\x22" * 32)), Admission(),
                                   self.clock, limits, random=lambda n: b"\x03" * n)
        self.proto = self.graph.factory.buildProtocol(None)
        self.proto.makeConnection(FlowStringTransport(
            peerAddress=IPv4Address("TCP", "10.0.0.5", 40000),
            hostAddress=IPv4Address("TCP", "127.0.0.1", 6610)))
        self.proto.peer_id = HUB.id
        self.proto.secured()  # what handshakeCompleted does, without a certificate
        self.deadline = self.clock.seconds() + TIMEOUT

    def pending_deadlines(self):
        return [call for call in self.clock.getDelayedCalls()
                if call.getTime() == self.deadline]

    def test_joined(self):
        self.assertEqual(len(self.pending_deadlines()), 1)
        info = make_hubinfo(HUB, "hub", 1).to_json()
        self.proto.dataReceived(messages.encode(messages.make("join", hubinfo=info,
                                                              proof=None)))
        self.assertIn(HUB.id, self.graph.presence.hubs)
        self.assertEqual(self.proto.session.state, "admitted")
        self.assertEqual(self.pending_deadlines(), [])
        self.assertEqual(len(self.graph.gateway.unauthenticated), 0)

    def test_gone(self):
        self.proto.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.pending_deadlines(), [])
        self.assertEqual(len(self.graph.gateway.unauthenticated), 0)

    def test_missed(self):
        self.clock.advance(TIMEOUT)
        self.assertEqual(self.graph.counters.refused, 1)
        self.assertEqual(self.proto.closing_reason, "no join within 13s")
        self.assertEqual(self.proto.session.state, "refused")
