"""Proofs of work (blockhub/proof_of_work.py) at low difficulty: a solved proof checks,
and it is good for its own request only."""

from nacl.signing import SigningKey
from twisted.trial.unittest import SynchronousTestCase

from blockhub.identity import Identity
from blockhub.proof_of_work import MAX_BITS, check, solve, zero_bits

ALICE, BOB, CAROL = (Identity(SigningKey(bytes([60 + n]) * 32)).id for n in range(3))
NONCE, AT = bytes(range(16)), 1_700_000_000


class ProofOfWorkTests(SynchronousTestCase):

    def test_zero_bits(self):
        self.assertEqual(zero_bits(b"\xff" + bytes(31)), 0)
        self.assertEqual(zero_bits(b"\x01" + bytes(31)), 7)
        self.assertEqual(zero_bits(bytes(1) + b"\x80" + bytes(30)), 8)
        self.assertEqual(zero_bits(bytes(32)), 256)

    def test_a_solved_proof_checks_for_its_request_only(self):
        counter = solve(ALICE, BOB, NONCE, AT, 12)
        self.assertTrue(check(ALICE, BOB, NONCE, AT, counter, 12))
        self.assertTrue(check(ALICE, BOB, NONCE, AT, counter, 1))
        others = [(CAROL, BOB, NONCE, AT), (ALICE, CAROL, NONCE, AT),
                  (ALICE, BOB, bytes(16), AT), (ALICE, BOB, NONCE, AT + 1)]
        # Each other request is its own 1-in-4096 lottery: all four passing by chance
        # would take a 2^-48 coincidence.
        self.assertFalse(all(check(*other, counter, 12) for other in others))
        self.assertFalse(check(ALICE, BOB, NONCE, AT, -1, 12))
        self.assertFalse(check(ALICE, BOB, NONCE, AT, 2**64, 12))

    def test_a_proof_of_more_bits_is_rarer(self):
        weak = [c for c in range(2000) if check(ALICE, BOB, NONCE, AT, c, 4)]
        strong = [c for c in weak if check(ALICE, BOB, NONCE, AT, c, 8)]
        self.assertTrue(40 < len(weak) < 250, len(weak))  # about 2000 / 16
        self.assertLess(len(strong), len(weak))

    def test_solving_is_bounded_and_resumable(self):
        full = solve(ALICE, BOB, NONCE, AT, 10)
        self.assertIsNone(solve(ALICE, BOB, NONCE, AT, 10, start=0, limit=full))
        self.assertEqual(solve(ALICE, BOB, NONCE, AT, 10, start=full, limit=1), full)
        self.assertEqual(solve(ALICE, BOB, NONCE, AT, 0), 0)
        self.assertTrue(check(ALICE, BOB, NONCE, AT, 12345, 0))
        for bits in (-1, MAX_BITS + 1):
            with self.assertRaises(ValueError):
                solve(ALICE, BOB, NONCE, AT, bits)
        with self.assertRaises(ValueError):
            solve(ALICE, BOB, b"short", AT, 4)
