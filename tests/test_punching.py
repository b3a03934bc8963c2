"""Punching (``Punching``, ``PunchAttempt``) alone on one Clock: two hubs, alice asking
and bob answering, whose gateway channels hand each other the sealed boxes after a
fixed latency, and whose TCP dials are fakes fired by hand."""

import itertools
from types import SimpleNamespace

from nacl.signing import SigningKey
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import BadMessage, Refused
from blockhub.hub.punch_attempt import ANSWER_WAIT, DIAL_WAIT
from blockhub.hub.punching import GO_WAIT, Punching
from blockhub.hubinfo import parse_endpoint
from blockhub.identity import Identity
from blockhub.punch_bodies import open_punch, seal_punch
from blockhub.wire.features import PUNCH

ALICE, BOB = (Identity(SigningKey(bytes([80 + n]) * 32)) for n in range(2))
LATENCY = 0.25  # each way through the gateway: alice dials 0.25 s after her go
EPSILON = 1 / 1024  # exact in binary, so Clock times add up exactly
BOB_CANDIDATES = ("10.0.0.20:7002", "198.51.100.20:50002", "198.51.100.20:7002")
ALICE_OUTSIDE = ("203.0.113.10:40001", "203.0.113.10:7001")


ALICE_AT = {"listen_port": 7001, "observed": ALICE_OUTSIDE[0], "local": "192.168.1.10:7001",
            "listen_host": None}
BOB_AT = {"listen_port": 7002, "observed": "198.51.100.20:50002", "local": "10.0.0.20:7002",
          "listen_host": None}


class Channel:
    def __init__(self, clock, owner):
        self.clock, self.owner, self.other = clock, owner, None
        self.gateway, self.features, self.ok = "bh-gateway", {PUNCH}, True
        self.sent = []  # (to, kind, sealed)

    def speaks(self, feature):
        return feature in self.features

    def relay(self, to, kind, sealed):
        self.sent.append((to, kind, sealed))
        if self.ok and self.other is not None:
            self.clock.callLater(LATENCY, self.other.delivered, self.owner, sealed)
        return self.ok


class PeerProto:
    """What dialer_protocol makes: ``ready`` fires once the peer answered."""

    def __init__(self, hello):
        self.peer_id, self.ready, self.closed = hello[1], Deferred(), []
        self.close = self.closed.append


class TLS(Protocol):
    def __init__(self, side, what):
        self.side, self.what = side, what


class Wire(StringTransport):
    aborted = False

    def abortConnection(self):
        self.aborted = self.disconnecting = True


class Side:
    """One hub's Punching with everything it was handed, recording what it asks."""

    def __init__(self, clock, identity, at, relay_only=False, **changes):
        self.dials, self.tls, self.protos, self.expected = [], [], [], set()
        self.channel = Channel(clock, identity.id)
        counter = itertools.count(1)
        self.punching = Punching(
            identity, clock, self.channel, SimpleNamespace(**{**at, **changes}), self.connect,
            lambda peer, proto: self.made("client", (peer, proto)),
            lambda addr: self.made("server", addr), self.dialer_protocol,
            lambda peer: ("peer-hello", peer), self.expected.__contains__, relay_only,
            lambda n: bytes([next(counter)]) * n)

    def connect(self, address, bind, factory):
        dial = SimpleNamespace(address=address, bind=bind, factory=factory, cancelled=False)
        dial.deferred = Deferred(lambda d: setattr(dial, "cancelled", True))
        self.dials.append(dial)
        return dial.deferred

    def made(self, side, what):
        self.tls.append(TLS(side, what))
        return self.tls[-1]

    def dialer_protocol(self, hello):
        self.protos.append(PeerProto(hello))
        return self.protos[-1]

    def come_up(self, address):
        """The dial to ``address`` connects: the protocol its factory built, its wire."""
        dial = next(d for d in self.dials if d.address == address)
        proto = dial.factory.buildProtocol(IPv4Address("TCP", *parse_endpoint(address)))
        proto.makeConnection(Wire())
        dial.deferred.callback(proto)
        return proto, proto.transport

    def steps(self):
        return [open_punch(BOB if to == BOB.id else ALICE, sealed, None, 0).step
                for to, _kind, sealed in self.channel.sent]


class PunchCase(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.alice = Side(self.clock, ALICE, ALICE_AT)
        self.bob = Side(self.clock, BOB, BOB_AT)

    def wire_up(self):
        self.alice.channel.other, self.bob.channel.other = self.bob.punching, self.alice.punching
        self.alice.expected.add(BOB.id)
        self.bob.expected.add(ALICE.id)

    def step(self, times):
        """One gateway latency at a time: what one advance makes due runs after it."""
        for _ in range(times):
            self.clock.advance(LATENCY)

    def dialing(self):
        """alice's attempt, up to the moment both sides dial."""
        self.wire_up()
        d = self.alice.punching.punch(BOB.id)
        self.step(3)
        self.assertEqual([dial.address for dial in self.alice.dials], list(BOB_CANDIDATES))
        return d

    def refused(self, d, text):
        failure = self.failureResultOf(d, Refused)
        self.assertIn(text, failure.getErrorMessage())
        self.assertEqual(self.alice.punching.attempts, {})
        self.assertEqual(self.alice.punching.counts["failed"], 1)


class HappyPathTests(PunchCase):
    def test_alice_dials_half_the_round_trip_after_her_go(self):
        self.wire_up()
        self.alice.punching.punch(BOB.id)
        self.assertEqual(self.alice.steps(), ["offer"])
        self.step(2)
        self.assertEqual((self.alice.steps(), self.bob.steps()), (["offer", "go"], ["answer"]))
        self.clock.advance(LATENCY - EPSILON)
        self.assertEqual((self.alice.dials, self.bob.dials), ([], []))
        self.clock.advance(EPSILON)
        self.assertEqual([(d.address, d.bind) for d in self.alice.dials],
                         [(a, ("0.0.0.0", 7001)) for a in BOB_CANDIDATES])
        self.assertEqual([(d.address, d.bind) for d in self.bob.dials],
                         [(a, ("0.0.0.0", 7002)) for a in ALICE_OUTSIDE])
        server, _wire = self.bob.come_up(ALICE_OUTSIDE[0])  # bob's dials: the TLS server
        self.assertEqual((server, server.side, server.what.host, server.what.port),
                         (self.bob.tls[0], "server", "203.0.113.10", 40001))

    def test_an_outside_win_records_no_address_and_counts_as_punched(self):
        d = self.dialing()
        proto, wire = self.alice.come_up(BOB_CANDIDATES[1])
        self.assertEqual((proto.side, proto.what), ("client", (BOB.id, self.alice.protos[0])))
        self.assertNoResult(d)
        self.alice.protos[0].ready.callback(("connected", ""))
        self.assertEqual(self.successResultOf(d), (self.alice.protos[0], None))
        self.assertEqual(self.alice.punching.punched, {BOB.id})
        self.assertEqual(dict(self.alice.punching.counts), {"tried": 1, "direct": 1})
        self.assertFalse(wire.aborted)
        self.assertEqual(self.alice.protos[0].closed, [])

    def test_a_local_win_records_the_address_and_is_not_punched(self):
        self.alice.punching.punched.add(BOB.id)
        d = self.dialing()
        self.alice.come_up(BOB_CANDIDATES[0])
        self.alice.protos[0].ready.callback(("connected", ""))
        self.assertEqual(self.successResultOf(d), (self.alice.protos[0], BOB_CANDIDATES[0]))
        self.assertEqual(self.alice.punching.punched, set())

    def test_the_first_connection_wins_and_the_others_are_aborted(self):
        d = self.dialing()
        _first, first_wire = self.alice.come_up(BOB_CANDIDATES[2])
        _second, second_wire = self.alice.come_up(BOB_CANDIDATES[1])
        self.assertEqual((first_wire.aborted, second_wire.aborted), (False, True))
        self.assertEqual(second_wire.value(), b"")
        self.assertEqual((len(self.alice.tls), len(self.alice.protos)), (1, 1))
        self.alice.protos[0].ready.callback(("connected", ""))
        self.successResultOf(d)
        self.assertEqual([dial.cancelled for dial in self.alice.dials], [True, False, False])
        late = self.alice.dials[0].factory.buildProtocol(IPv4Address("TCP", "10.0.0.20", 7002))
        late.makeConnection(Wire())
        self.assertTrue(late.transport.aborted)
        self.assertEqual(len(self.alice.tls), 1)


class FailureTests(PunchCase):
    def test_no_answer_within_answer_wait_fails(self):
        d = self.alice.punching.punch(BOB.id)
        self.clock.advance(ANSWER_WAIT - EPSILON)
        self.assertNoResult(d)
        self.clock.advance(EPSILON)
        self.refused(d, "did not answer")
        self.assertEqual(self.alice.steps(), ["offer"])

    def test_an_answer_with_no_address_fails_at_once(self):
        self.bob = Side(self.clock, BOB, BOB_AT, relay_only=True)
        self.wire_up()
        d = self.alice.punching.punch(BOB.id)
        self.step(2)
        self.refused(d, "offers no address")
        self.assertEqual(self.alice.steps(), ["offer"])
        self.clock.advance(GO_WAIT)
        self.assertEqual((self.alice.dials, self.bob.dials), ([], []))

    def test_all_dials_failing_fails(self):
        d = self.dialing()
        for dial in self.alice.dials[:-1]:
            dial.deferred.errback(ConnectionRefusedError())
        self.assertNoResult(d)
        self.alice.dials[-1].deferred.errback(ConnectionRefusedError())
        self.refused(d, "no dial came up")

    def test_a_dial_that_fails_at_once_leaves_the_others_dialing(self):
        connect = self.alice.connect
        self.alice.punching.connect = lambda address, bind, factory: (
            fail(ConnectionRefusedError()) if address == BOB_CANDIDATES[0]
            else connect(address, bind, factory))
        self.wire_up()
        d = self.alice.punching.punch(BOB.id)
        self.addCleanup(d.addErrback, lambda failure: None)
        self.step(3)
        self.assertEqual([dial.cancelled for dial in self.alice.dials], [False, False])
        self.assertNoResult(d)

    def test_dial_wait_expiry_fails_and_closes_the_chosen_link(self):
        d = self.dialing()
        self.alice.come_up(BOB_CANDIDATES[1])
        self.clock.advance(DIAL_WAIT - EPSILON)
        self.assertNoResult(d)
        self.clock.advance(EPSILON)
        self.refused(d, "in time")
        chosen = self.alice.protos[0]
        self.assertEqual(chosen.closed, ["no direct path came up in time"])
        self.assertEqual([dial.cancelled for dial in self.alice.dials], [True, False, True])
        chosen.ready.callback(("connected", ""))  # too late: hung up, not kept
        self.assertEqual(len(chosen.closed), 2)

    def test_the_peer_turning_the_link_down_fails(self):
        d = self.dialing()
        self.alice.come_up(BOB_CANDIDATES[1])
        self.alice.protos[0].ready.callback(("rejected", "not approved"))
        self.refused(d, "rejected: not approved")

    def test_a_relay_the_gateway_refuses_fails_the_attempt(self):
        self.wire_up()
        d = self.alice.punching.punch(BOB.id)
        self.assertFalse(self.alice.punching.refused("bh-someone-else", "offline"))
        self.assertTrue(self.alice.punching.refused(BOB.id, "the hub is not online"))
        self.refused(d, "the gateway did not deliver it: the hub is not online")
        self.assertFalse(self.alice.punching.refused(BOB.id, "again"))

    def test_a_gateway_that_does_not_carry_punches_fails_at_once(self):
        self.alice.channel.ok = False
        self.refused(self.alice.punching.punch(BOB.id), "does not carry punches")

    def test_a_newer_attempt_replaces_the_older(self):
        first = self.alice.punching.punch(BOB.id)
        second = self.alice.punching.punch(BOB.id)
        self.assertIn("replaced", self.failureResultOf(first, Refused).getErrorMessage())
        self.assertNoResult(second)
        self.assertEqual(self.alice.punching.attempts[BOB.id].result, second)


class AnsweringTests(PunchCase):
    def offer(self, number=b"\x07" * 16):
        sealed = seal_punch(ALICE, BOB.id, "offer", number, 0, ALICE_OUTSIDE[0],
                            "192.168.1.10:7001")
        self.bob.punching.delivered(ALICE.id, sealed)

    def go(self, number=b"\x07" * 16):
        self.bob.punching.delivered(ALICE.id, seal_punch(ALICE, BOB.id, "go", number, 0))

    def test_a_punch_from_a_hub_we_did_not_agree_to_peer_with_is_refused(self):
        self.assertRaises(BadMessage, self.offer)
        self.assertEqual(self.bob.channel.sent, [])
        self.assertRaises(BadMessage, self.go)
        self.assertEqual(self.bob.dials, [])

    def test_relay_only_answers_with_no_address_and_never_dials(self):
        self.bob = Side(self.clock, BOB, BOB_AT, relay_only=True)
        self.bob.expected.add(ALICE.id)
        self.offer()
        answer = open_punch(ALICE, self.bob.channel.sent[0][2], BOB.id, 0)
        self.assertEqual((answer.step, answer.public, answer.local), ("answer", None, None))
        self.go()
        self.assertEqual(self.bob.dials, [])

    def test_a_go_for_another_attempt_or_too_late_is_ignored(self):
        self.bob.expected.add(ALICE.id)
        self.offer()
        self.go(b"\x08" * 16)
        self.assertEqual(self.bob.dials, [])
        self.clock.advance(GO_WAIT)
        self.go()
        self.assertEqual((self.bob.dials, self.clock.getDelayedCalls()), ([], []))

    def test_bob_binds_the_interface_he_listens_on(self):
        self.bob.punching.hub.listen_host = "10.0.0.20"
        self.bob.expected.add(ALICE.id)
        self.offer()
        self.go()
        self.assertEqual({d.bind for d in self.bob.dials}, {("10.0.0.20", 7002)})


class AddressesTests(PunchCase):
    def test_a_listening_hub_behind_its_gateway_link_takes_part(self):
        self.assertEqual(self.alice.punching.addresses(), (ALICE_OUTSIDE[0], "192.168.1.10:7001"))
        self.assertTrue(self.alice.punching.possible())
        self.alice.channel.features = set()  # a gateway that does not carry punches
        self.assertFalse(self.alice.punching.possible())
        self.alice.channel.features, self.alice.channel.gateway = {PUNCH}, None
        self.assertFalse(self.alice.punching.possible())

    def test_none_when_it_cannot_say_where_it_is_or_keeps_it_to_itself(self):
        for changes in ({"local": "192.168.1.10:51234"}, {"listen_port": None},
                        {"observed": None}, {"local": "[fd00::5]:7001"}, {"relay_only": True}):
            punching = Side(self.clock, ALICE, ALICE_AT, **changes).punching
            self.assertEqual(punching.addresses(), (None, None), changes)
            self.assertFalse(punching.possible())
