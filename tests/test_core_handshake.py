"""Pure pieces of the handshake: sealing and checking requests, the policy, the store."""

from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from blockhub import policy
from blockhub.errors import BadMessage, BadSeal, StaleMessage, UserError
from blockhub.handshake_bodies import open_acceptance, open_request, seal_acceptance, seal_request
from blockhub.hub.db_schemas import SCHEMA_VERSION
from blockhub.hub.store import Store
from tests.memory import new_identity

A, B, C = new_identity(), new_identity(), new_identity()
NOW = 1_800_000_000


class RequestTests(SynchronousTestCase):
    def test_round_trip(self):
        sealed = seal_request(A, B.id, "127.0.0.1:7000", NOW, b"\x01" * 16, "hi")
        req = open_request(B, sealed, A.id, NOW + 10)
        self.assertEqual((req.sender, req.receiver, req.endpoint, req.note),
                         (A.id, B.id, "127.0.0.1:7000", "hi"))

    def test_only_the_receiver_opens_it(self):
        sealed = seal_request(A, B.id, None, NOW, b"\x01" * 16)
        self.assertRaises(BadSeal, open_request, C, sealed, A.id, NOW)

    def test_sender_must_be_the_signer(self):
        sealed = seal_request(A, B.id, None, NOW, b"\x01" * 16)
        self.assertRaises(BadMessage, open_request, B, sealed, C.id, NOW)

    def test_freshness_window_both_ways(self):
        sealed = seal_request(A, B.id, None, NOW, b"\x01" * 16)
        self.assertRaises(StaleMessage, open_request, B, sealed, A.id, NOW + 301)
        self.assertRaises(StaleMessage, open_request, B, sealed, A.id, NOW - 301)
        open_request(B, sealed, A.id, NOW + 300)

    def test_address_must_match_endpoint(self):
        sealed = seal_request(A, B.id, "127.0.0.1:7000", NOW, b"\x01" * 16, address="10.0.0.1")
        self.assertRaises(BadMessage, open_request, B, sealed, A.id, NOW)
        sealed = seal_request(A, B.id, None, NOW, b"\x01" * 16, address="not-an-ip")
        self.assertRaises(BadMessage, open_request, B, sealed, A.id, NOW)
        sealed = seal_request(A, B.id, None, NOW, b"\x01" * 16, address="10.0.0.1")
        self.assertEqual(open_request(B, sealed, A.id, NOW).address, "10.0.0.1")

    def test_bad_endpoint_and_long_note(self):
        sealed = seal_request(A, B.id, "nowhere", NOW, b"\x01" * 16)
        self.assertRaises(BadMessage, open_request, B, sealed, A.id, NOW)
        self.assertRaises(BadMessage, seal_request, A, B.id, None, NOW, b"\x01" * 16, "x" * 501)

    def test_acceptance_is_not_a_request(self):
        sealed = seal_acceptance(B, A.id, "127.0.0.1:1", NOW, b"\x02" * 16, "AAAA" * 5 + "AA==")
        acc = open_acceptance(A, sealed, B.id, NOW)
        self.assertEqual(acc.endpoint, "127.0.0.1:1")
        from blockhub.errors import BadSignature
        self.assertRaises(BadSignature, open_request, A, sealed, B.id, NOW)


class PolicyTests(SynchronousTestCase):
    def test_decisions(self):
        decide = policy.decide
        self.assertEqual(decide(A.id, "10.1.2.3", set(), ["10.0.0.0/8"], set()),
                         policy.AUTO_RANGE)
        self.assertEqual(decide(A.id, "11.1.2.3", set(), ["10.0.0.0/8"], set()), policy.PENDING)
        self.assertEqual(decide(A.id, None, {A.id}, [], set()), policy.AUTO)
        self.assertEqual(decide(A.id, "10.1.2.3", {A.id}, ["10.0.0.0/8"], {A.id}),
                         policy.BLOCKED)
        self.assertEqual(decide(A.id, "::1", set(), ["10.0.0.0/8", "::1/128"], set()),
                         policy.AUTO_RANGE)
        self.assertEqual(decide(A.id, "10.1.2.3", {A.id}, ["10.0.0.0/8"], set()), policy.AUTO)

    def test_parse_cidr(self):
        self.assertEqual(policy.parse_cidr("10.1.2.3/8"), "10.0.0.0/8")
        self.assertEqual(policy.parse_cidr("127.0.0.1"), "127.0.0.1/32")
        self.assertRaises(UserError, policy.parse_cidr, "ten/8")


class StoreTests(SynchronousTestCase):
    def setUp(self):
        self.path = Path(self.mktemp())
        self.store = Store(self.path)
        self.addCleanup(lambda: self.store.close())

    def test_file_mode_and_version(self):
        self.assertEqual(self.path.stat().st_mode & 0o777, 0o600)
        (v,) = self.store.execute("SELECT version FROM version").fetchone()
        self.assertEqual(v, SCHEMA_VERSION)

    def test_reopen_keeps_data(self):
        self.store.add_approved_key(A.id, 1)
        self.store.queue_messages([(B.id, "x")], 1)
        self.store.close()
        self.store = Store(self.path)
        self.assertEqual(self.store.approved_keys(), {A.id})
        self.assertEqual([m["text"] for m in self.store.unacked(B.id)], ["x"])

    def test_nonces(self):
        self.assertTrue(self.store.remember_nonce("n1", 100, 0))
        self.assertFalse(self.store.remember_nonce("n1", 101, 0))
        self.assertTrue(self.store.remember_nonce("n2", 1000, 500))  # forgets n1
        self.assertTrue(self.store.remember_nonce("n1", 1001, 500))

    def test_messages_seq_ack_and_duplicates(self):
        self.assertEqual(self.store.queue_messages([(B.id, "a"), (B.id, "b")], 1), [1, 2])
        self.assertEqual(self.store.queue_messages([(B.id, "c")], 1), [3])
        self.store.ack(B.id, 1)
        self.assertEqual([m["seq"] for m in self.store.unacked(B.id)], [2, 3])
        self.assertEqual(self.store.store_received_many([(A.id, 1, "hi", 1)], 2), 1)
        self.assertEqual(self.store.store_received_many(
            [(A.id, 1, "hi", 1), (A.id, 2, "ho", 1), (A.id, 2, "ho", 1)], 3), 1)
        self.assertEqual([m["text"] for m in self.store.messages()], ["hi", "ho"])

    def test_block_removes_approval(self):
        self.store.add_approved_key(A.id, 1)
        self.store.block(A.id, 2)
        self.assertEqual(self.store.approved_keys(), set())
        self.assertEqual(self.store.blocked_keys(), {A.id})

    def _as_version_2(self):
        """Turn this database back into what schema 2 made."""
        self.store.write("DROP TABLE invites")
        self.store.write("DROP TABLE invite_uses")
        self.store.write("ALTER TABLE requests DROP COLUMN invite")
        self.store.write("DROP TABLE gateway_issued")
        self.store.write("ALTER TABLE requests DROP COLUMN how")
        self.store.write("ALTER TABLE peers DROP COLUMN path")
        self.store.write("UPDATE version SET version = 2")

    def test_upgrade_from_version_1(self):
        self.store.queue_messages([(B.id, "kept")], 1)
        self._as_version_2()
        self.store.write("DROP INDEX outbox_unacked")
        self.store.write("UPDATE version SET version = 1")
        self.store.close()
        self.store = Store(self.path)
        (v,) = self.store.execute("SELECT version FROM version").fetchone()
        self.assertEqual(v, SCHEMA_VERSION)
        names = {r[0] for r in self.store.execute("SELECT name FROM sqlite_master")}
        self.assertIn("outbox_unacked", names)
        self.assertEqual([m["text"] for m in self.store.unacked(B.id)], ["kept"])

    def test_upgrade_from_version_2_keeps_requests_of_unknown_basis(self):
        self.store.save_request("in", A.id, "awaiting", 1, 100, note="old")
        self._as_version_2()
        self.store.close()
        self.store = Store(self.path)
        (v,) = self.store.execute("SELECT version FROM version").fetchone()
        self.assertEqual(v, SCHEMA_VERSION)
        [row] = self.store.requests("in")
        self.assertEqual((row["state"], row["note"], row["how"]), ("awaiting", "old", None))
        self.store.set_gateway_issued(B.id, 5)
        self.store.set_gateway_issued(B.id, 3)  # never goes back
        self.assertEqual(self.store.gateway_issued(), {B.id: 5})

    def test_newer_schema_refused(self):
        self.store.write("UPDATE version SET version = 99")
        self.store.close()
        self.assertRaises(UserError, Store, self.path)
        self.store = Store.__new__(Store)
        self.store.close = lambda: None
