"""Punch bodies (``blockhub.punch_bodies``): sealed and opened like handshake requests,
each check refusing with the project's error types, and the addresses a punch offers
to dial (``outside``, ``candidates``)."""

from nacl.signing import SigningKey
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import BadMessage, BadSeal, BadSignature, StaleMessage
from blockhub.handshake_bodies import DEFAULT_WINDOW, seal_request
from blockhub.identity import Identity
from blockhub.punch_bodies import Punch, open_punch, seal_punch
from blockhub.wire import canonical, envelope

ALICE, BOB, CAROL = (Identity(SigningKey(bytes([70 + n]) * 32)) for n in range(3))
NUMBER = b"\x5a" * 16
NOW = 1_700_000_000
PUBLIC, LOCAL = "203.0.113.10:40001", "192.168.1.10:7001"


def body(**changes):
    """A punch body from ALICE to BOB, as seal_punch would write it, then ``changes``."""
    b = {"from": ALICE.id, "to": BOB.id, "at": NOW, "attempt": canonical.b64(NUMBER),
         "step": "offer", "public": PUBLIC, "local": LOCAL}
    b.update(changes)
    return {k: v for k, v in b.items() if v is not None}


def box(b, signer=ALICE, to=BOB, kind="punch"):
    return envelope.seal(to.id, envelope.sign(signer, kind, b))


class RoundTripTests(SynchronousTestCase):
    def test_an_offer_opens_as_it_was_sealed(self):
        sealed = seal_punch(ALICE, BOB.id, "offer", NUMBER, NOW, PUBLIC, LOCAL)
        self.assertEqual(open_punch(BOB, sealed, ALICE.id, NOW),
                         Punch(ALICE.id, "offer", canonical.b64(NUMBER), PUBLIC, LOCAL))

    def test_a_go_carries_no_address(self):
        sealed = seal_punch(ALICE, BOB.id, "go", NUMBER, NOW)
        punch = open_punch(BOB, sealed, ALICE.id, NOW)
        self.assertEqual((punch.step, punch.public, punch.local), ("go", None, None))
        self.assertEqual(punch.candidates, ())

    def test_any_sender_may_be_left_unchecked(self):
        sealed = seal_punch(BOB, ALICE.id, "answer", NUMBER, NOW, PUBLIC)
        self.assertEqual(open_punch(ALICE, sealed, None, NOW).sender, BOB.id)

    def test_the_box_is_sealed(self):
        sealed = seal_punch(ALICE, BOB.id, "offer", NUMBER, NOW, PUBLIC, LOCAL)
        self.assertNotIn(PUBLIC.encode(), sealed)
        self.assertNotIn(LOCAL.encode(), sealed)

    def test_our_own_bad_address_is_a_bug_caught_at_once(self):
        with self.assertRaises(BadMessage):
            seal_punch(ALICE, BOB.id, "offer", NUMBER, NOW, "example.org:7001")


class RefusalTests(SynchronousTestCase):
    def test_a_box_sealed_for_another_hub_does_not_open(self):
        sealed = seal_punch(ALICE, CAROL.id, "offer", NUMBER, NOW, PUBLIC, LOCAL)
        with self.assertRaises(BadSeal):
            open_punch(BOB, sealed, ALICE.id, NOW)

    def test_a_body_addressed_to_another_hub_is_refused(self):
        with self.assertRaises(BadMessage):
            open_punch(BOB, box(body(to=CAROL.id)), ALICE.id, NOW)

    def test_a_box_from_another_sender_than_its_signer_is_refused(self):
        sealed = seal_punch(ALICE, BOB.id, "offer", NUMBER, NOW, PUBLIC, LOCAL)
        with self.assertRaises(BadMessage):
            open_punch(BOB, sealed, CAROL.id, NOW)

    def test_a_body_signed_by_another_hub_than_its_from_is_refused(self):
        with self.assertRaises(BadMessage):
            open_punch(BOB, box(body(), signer=CAROL), None, NOW)

    def test_a_tampered_box_does_not_open(self):
        sealed = bytearray(seal_punch(ALICE, BOB.id, "offer", NUMBER, NOW))
        sealed[-1] ^= 1
        with self.assertRaises(BadSeal):
            open_punch(BOB, bytes(sealed), ALICE.id, NOW)

    def test_another_kind_of_signed_box_is_not_a_punch(self):
        request = seal_request(ALICE, BOB.id, None, NOW, NUMBER)
        with self.assertRaises(BadSignature):
            open_punch(BOB, request, ALICE.id, NOW)
        with self.assertRaises(BadSignature):
            open_punch(BOB, box(body(), kind="handshake"), ALICE.id, NOW)

    def test_freshness_window_holds_both_ways(self):
        sealed = seal_punch(ALICE, BOB.id, "offer", NUMBER, NOW, PUBLIC, LOCAL)
        for now in (NOW - DEFAULT_WINDOW, NOW + DEFAULT_WINDOW):
            self.assertEqual(open_punch(BOB, sealed, ALICE.id, now).step, "offer")
        for now in (NOW - DEFAULT_WINDOW - 1, NOW + DEFAULT_WINDOW + 1):
            with self.assertRaises(StaleMessage):
                open_punch(BOB, sealed, ALICE.id, now)
        with self.assertRaises(StaleMessage):
            open_punch(BOB, sealed, ALICE.id, NOW + 11, window=10)

    def test_an_address_that_is_not_ip_and_port_is_refused(self):
        bad = ("example.org:7001", "203.0.113.10", "203.0.113.10:0", "203.0.113.10:65536",
               "203.0.113.10:port", "[2001:db8::1]7001", "")
        for name in ("public", "local"):
            for address in bad:
                with self.assertRaises(BadMessage, msg=f"{name}={address!r}"):
                    open_punch(BOB, box(body(**{name: address})), ALICE.id, NOW)

    def test_an_unknown_step_or_short_attempt_is_refused(self):
        for changes in ({"step": "hello"}, {"attempt": canonical.b64(b"\x01" * 15)},
                        {"at": -1}):
            with self.assertRaises(BadMessage, msg=repr(changes)):
                open_punch(BOB, box(body(**changes)), ALICE.id, NOW)

    def test_an_ipv6_address_opens(self):
        punch = open_punch(BOB, box(body(public="[2001:db8::1]:7001")), ALICE.id, NOW)
        self.assertEqual(punch.public, "[2001:db8::1]:7001")


class AddressTests(SynchronousTestCase):
    def punch(self, public=None, local=None):
        return Punch(ALICE.id, "offer", canonical.b64(NUMBER), public, local)

    def test_outside_is_public_then_its_host_with_the_listen_port(self):
        self.assertEqual(self.punch(PUBLIC, LOCAL).outside,
                         ("203.0.113.10:40001", "203.0.113.10:7001"))

    def test_outside_has_no_duplicate_when_the_router_kept_the_port(self):
        self.assertEqual(self.punch("203.0.113.10:7001", LOCAL).outside,
                         ("203.0.113.10:7001",))

    def test_outside_without_local_is_public_alone(self):
        self.assertEqual(self.punch(PUBLIC).outside, (PUBLIC,))

    def test_outside_without_public_is_empty(self):
        self.assertEqual(self.punch(None, LOCAL).outside, ())
        self.assertEqual(self.punch().outside, ())

    def test_an_ipv6_guess_keeps_its_brackets(self):
        self.assertEqual(self.punch("[2001:db8::1]:40001", "[fd00::5]:7001").outside,
                         ("[2001:db8::1]:40001", "[2001:db8::1]:7001"))

    def test_candidates_put_local_first(self):
        self.assertEqual(self.punch(PUBLIC, LOCAL).candidates,
                         (LOCAL, "203.0.113.10:40001", "203.0.113.10:7001"))

    def test_candidates_are_each_dialed_once(self):
        same = "203.0.113.10:7001"
        self.assertEqual(self.punch(same, same).candidates, (same,))
        self.assertEqual(self.punch(None, LOCAL).candidates, (LOCAL,))
        self.assertEqual(self.punch(PUBLIC).candidates, (PUBLIC,))
        self.assertEqual(self.punch().candidates, ())
