"""Key succession alone: commitments and successions (pure), the gateway's key files
and its choice of certificate, the hub's book and config, and the two commands."""

import copy
import json
import os
import random
from pathlib import Path

from mnemonic import Mnemonic
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub import keystore
from blockhub.errors import ProtocolError, UserError
from blockhub.gateway import key_files
from blockhub.gateway.keys import GatewayKeys
from blockhub.gateway_records import check_record, commitment_of, make_record
from blockhub.hub.config import GatewayEntry, record_succession
from blockhub.hub.gateway_keys import GatewayKeyBook
from blockhub.hub.gateway_keys_file import GatewayKeysFile
from blockhub.identity import Identity
from blockhub.succession import (
    check_succession,
    make_commitment,
    make_succession,
    refusal,
    verify_commitment,
)
from tests.helpers import isolate_keyring, run_cli
from tests.memory import new_identity

NOW = 1_700_000_000


def new_phrase():
    return Mnemonic("english").generate(128)


class PureTests(SynchronousTestCase):
    def setUp(self):
        self.old, self.new = new_identity(), new_identity()
        self.commitment = make_commitment(self.old, self.new.id, NOW)

    def test_a_commitment_names_one_key_and_hides_it(self):
        self.assertTrue(self.commitment.names(self.new.id))
        self.assertFalse(self.commitment.names(new_identity().id))
        self.assertNotIn(self.new.id, json.dumps(self.commitment.to_json()))
        self.assertEqual(verify_commitment(self.commitment.to_json()), self.commitment)
        self.assertRaises(ValueError, make_commitment, self.old, self.old.id, NOW)

    def test_a_tampered_commitment_does_not_verify(self):
        value = self.commitment.to_json()
        value["body"] = dict(value["body"], at=NOW + 1)
        self.assertRaises(ProtocolError, verify_commitment, value)

    def test_a_succession_needs_both_signatures(self):
        moved = make_succession(self.old, self.new, NOW)
        self.assertEqual((moved.old, moved.new), (self.old.id, self.new.id))
        self.assertEqual(check_succession(moved.to_json()), moved)
        for role in ("old_sig", "new_sig"):
            forged = dict(moved.to_json(), **{role: make_succession(
                self.old, new_identity(), NOW).to_json()[role]})
            with self.assertRaises(ProtocolError):
                check_succession(forged)
        self.assertRaises(ProtocolError, check_succession, {"body": {}})

    def test_a_hub_follows_only_the_committed_key_from_its_pin(self):
        moved = make_succession(self.old, self.new, NOW)
        self.assertIsNone(refusal(moved, self.old.id, self.commitment))
        self.assertIn("not the key we pin", refusal(moved, self.new.id, self.commitment))
        self.assertIn("never committed", refusal(moved, self.old.id, None))
        thief = make_succession(self.old, new_identity(), NOW)
        self.assertIn("another next key", refusal(thief, self.old.id, self.commitment))

    def test_random_damage_is_refused_with_protocol_error_only(self):
        """Bounded fuzz: a succession or commitment with a field changed or dropped is
        refused with a ProtocolError (never another exception) unless it is unchanged."""
        rng = random.Random(19)
        junk = [None, 0, -1, 2**60, "", "x" * 90, [], {}, True, "AAAA", self.new.id]
        moved = make_succession(self.old, self.new, NOW).to_json()
        commitment = self.commitment.to_json()
        paths = [["body"], ["old_sig"], ["new_sig"], ["body", "old"], ["body", "new"],
                 ["body", "at"], ["body", "extra"]]
        for n in range(3000):
            original, check = (moved, check_succession) if n % 2 else \
                (commitment, verify_commitment)
            doc = copy.deepcopy(original)
            path = rng.choice(paths if n % 2 else
                              [["sig"], ["signer"], ["kind"], ["body", "next"],
                               ["body", "gateway"], ["body", "at"], ["body"]])
            target = doc
            for key in path[:-1]:
                target = target[key]
            if rng.random() < 0.3:
                target.pop(path[-1], None)
            else:
                target[path[-1]] = rng.choice(junk)
            try:
                check(doc)
            except ProtocolError:
                continue
            self.assertEqual(doc, original)

    def test_a_record_carries_the_commitment(self):
        record = make_record(self.old, "192.0.2.1", 6610, NOW, 7, self.commitment)
        self.assertIsNone(check_record(record, NOW))
        self.assertEqual(commitment_of(record), self.commitment)
        record["next"] = make_commitment(self.new, self.old.id, NOW).to_json()
        self.assertEqual(check_record(record, NOW), "next: another key's commitment")
        record["next"] = {"kind": "key-commitment"}
        self.assertTrue(check_record(record, NOW).startswith("next: "))


class GatewayKeysTests(SynchronousTestCase):
    def setUp(self):
        self.old, self.new = new_identity(), new_identity()
        moved = make_succession(self.old, self.new, NOW)
        self.keys = GatewayKeys(self.new, None, moved, self.old, NOW + 100)

    def test_the_old_key_is_served_by_name_during_the_grace(self):
        self.assertIs(self.keys.for_server_name(self.old.id, NOW + 99), self.old)
        self.assertIs(self.keys.for_server_name(self.old.id, NOW + 100), self.new)
        self.assertIs(self.keys.for_server_name(None, NOW), self.new)
        self.assertIs(self.keys.for_server_name(self.new.id, NOW), self.new)
        self.assertIs(self.keys.for_server_name("anything", NOW), self.new)
        self.assertTrue(self.keys.is_old(self.old.id))
        self.assertFalse(self.keys.is_old(self.new.id) or self.keys.is_old(None))
        self.assertEqual(self.keys.status(NOW)["succeeded"]["old"], self.old.id)


class KeyFilesTests(SynchronousTestCase):
    def setUp(self):
        isolate_keyring(self)
        self.dir = Path(self.mktemp())
        self.old = keystore.create_identity(self.dir, new_phrase(), "gw")
        self.phrase = new_phrase()
        self.new = Identity.from_phrase(self.phrase)

    def test_rotation_needs_a_commitment_to_that_key(self):
        with self.assertRaises(UserError) as e:
            key_files.rotate(self.dir, self.old, self.new, self.phrase, NOW, None)
        self.assertIn("no commitment", str(e.exception))
        key_files.commit_next(self.dir, self.old, new_identity().id, NOW)
        with self.assertRaises(UserError) as e:
            key_files.rotate(self.dir, self.old, self.new, self.phrase, NOW, None)
        self.assertIn("another next key", str(e.exception))
        self.assertEqual(keystore.load_identity(self.dir).id, self.old.id)

    def test_a_second_commitment_needs_replace(self):
        key_files.commit_next(self.dir, self.old, self.new.id, NOW)
        key_files.commit_next(self.dir, self.old, self.new.id, NOW + 1)  # the same: fine
        self.assertRaises(UserError, key_files.commit_next, self.dir, self.old,
                          new_identity().id, NOW)
        other = new_identity().id
        key_files.commit_next(self.dir, self.old, other, NOW, replace=True)
        self.assertTrue(key_files.load_keys(self.dir, 10, NOW).commitment.names(other))

    def test_a_rotation_keeps_the_old_key_for_the_grace(self):
        key_files.commit_next(self.dir, self.old, self.new.id, NOW)
        moved = key_files.rotate(self.dir, self.old, self.new, self.phrase, NOW, None)
        self.assertEqual((moved.old, moved.new), (self.old.id, self.new.id))
        keys = key_files.load_keys(self.dir, 100, NOW + 50)
        self.assertEqual((keys.identity.id, keys.old.id), (self.new.id, self.old.id))
        self.assertIsNone(keys.commitment)
        self.assertFalse((self.dir / key_files.NEXT_FILE).exists())
        self.assertIsNone(key_files.load_keys(self.dir, 100, NOW + 100).old)
        for path in (self.dir / key_files.SUCCESSION_FILE,
                     key_files.retired_dir(self.dir, self.old.id) / keystore.IDENTITY_FILE):
            self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)

    def test_a_rotation_cut_short_is_reported(self):
        key_files.commit_next(self.dir, self.old, self.new.id, NOW)
        moved = make_succession(self.old, self.new, NOW)
        (self.dir / key_files.SUCCESSION_FILE).write_text(
            json.dumps({"succession": moved.to_json()}))
        with self.assertRaises(UserError) as e:
            key_files.load_keys(self.dir, 100, NOW)
        self.assertIn("run blockhub rotate-key again", str(e.exception))


class BookTests(SynchronousTestCase):
    def setUp(self):
        self.old, self.new = new_identity(), new_identity()
        self.path = Path(self.mktemp())
        self.moves = []
        self.book = self.make()

    def make(self):
        return GatewayKeyBook(Clock(), GatewayKeysFile(self.path),
                              lambda o, n: self.moves.append(("follow", o, n)),
                              lambda o, n: self.moves.append(("record", o, n)))

    def test_a_followed_succession_is_kept_and_applied_at_start(self):
        self.book.heard_commitment(self.old.id, make_commitment(
            self.old, self.new.id, NOW).to_json())
        moved = make_succession(self.old, self.new, NOW)
        self.assertEqual(self.book.heard_succession(self.old.id, moved.to_json()),
                         self.new.id)
        self.assertEqual(self.moves, [("follow", self.old.id, self.new.id),
                                      ("record", self.old.id, self.new.id)])
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
        later = self.make()
        entries = later.pinned([GatewayEntry(self.old.id, "192.0.2.1", 6610)])
        self.assertEqual(entries[0].id, self.new.id)
        self.assertEqual(entries[0].host, "192.0.2.1")

    def test_what_does_not_check_is_refused_and_reported(self):
        self.book.heard_commitment(self.old.id, {"kind": "key-commitment"})
        self.assertIn("refused", self.book.status()[self.old.id])
        self.book.heard_commitment(self.new.id, make_commitment(
            self.old, self.new.id, NOW).to_json())
        self.assertEqual(self.book.status()[self.new.id]["refused"]["reason"],
                         "it is another key's")
        self.assertIsNone(self.book.heard_succession(self.old.id, {"body": {}}))
        self.assertEqual(self.moves, [])
        self.assertFalse(self.path.exists())


class ConfigTests(SynchronousTestCase):
    def test_the_new_key_is_pinned_in_place_of_the_old(self):
        path = Path(self.mktemp())
        path.write_text(json.dumps({"Hub": {"Gateways": [
            {"name": "home", "pubKey": "old", "lastKnownIP": "192.0.2.1", "port": 6610},
            {"name": "other", "pubKey": "x"}]}, "Extra": 1}))
        os.chmod(path, 0o640)
        self.assertTrue(record_succession(path, "old", "new"))
        data = json.loads(path.read_text())
        self.assertEqual(data["Hub"]["Gateways"][0], {
            "name": "home", "pubKey": "new", "lastKnownIP": "192.0.2.1", "port": 6610,
            "formerKeys": ["old"]})
        self.assertEqual(data["Extra"], 1)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)
        self.assertFalse(record_succession(path, "old", "new"))


class CommandTests(SynchronousTestCase):
    def setUp(self):
        isolate_keyring(self)
        self.gw, self.next = Path(self.mktemp()), Path(self.mktemp())
        run_cli("init", "--data-dir", self.gw)
        run_cli("init", "--data-dir", self.next)
        self.old_id = run_cli("id", "--data-dir", self.gw)[1].strip()
        self.next_id = run_cli("id", "--data-dir", self.next)[1].strip()

    def test_commit_then_rotate_a_stopped_gateway(self):
        code, out, err = run_cli("commit-next", "--data-dir", self.gw, "--next", self.next_id)
        self.assertEqual((code, err), (0, ""))
        self.assertIn("when it starts", out)
        code, out, err = run_cli("rotate-key", "--data-dir", self.gw, "--next", self.next,
                                 "--json")
        self.assertEqual((code, err), (0, ""))
        result = json.loads(out)
        self.assertEqual((result["old"], result["new"], result["running"]),
                         (self.old_id, self.next_id, False))
        self.assertEqual(run_cli("id", "--data-dir", self.gw)[1].strip(), self.next_id)
        # Neither phrase is printed, nor kept in the clear in the gateway's directory.
        phrases = [run_cli("phrase", "--data-dir", d, "--yes")[1].strip()
                   for d in (self.gw, key_files.retired_dir(self.gw, self.old_id))]
        self.assertEqual(len(set(phrases)), 2)
        kept = b"".join(p.read_bytes() for p in self.gw.rglob("*") if p.is_file())
        for phrase in phrases:
            self.assertNotIn(phrase, out)
            self.assertNotIn(phrase.split()[0].encode() + b" " + phrase.split()[1].encode(),
                             kept)
        # Run again (as after a crash): it says what was done, and changes nothing.
        code, out, _ = run_cli("rotate-key", "--data-dir", self.gw, "--next", self.next)
        self.assertEqual(code, 0)
        self.assertIn(f"rotated to {self.next_id}", out)

    def test_a_next_identity_sealed_under_a_passphrase_travels(self):
        """NEXT_DIR made on another machine: its key ring is not ours, its passphrase is."""
        travelled = Path(self.mktemp())
        os.environ["BLOCKHUB_PASSPHRASE"] = "correct horse"
        self.addCleanup(os.environ.pop, "BLOCKHUB_PASSPHRASE", None)
        run_cli("init", "--data-dir", travelled, "--passphrase")
        del os.environ["BLOCKHUB_PASSPHRASE"]
        next_id = run_cli("id", "--data-dir", travelled)[1].strip()
        run_cli("commit-next", "--data-dir", self.gw, "--next", next_id)
        code, _, err = run_cli("rotate-key", "--data-dir", self.gw, "--next", travelled)
        self.assertEqual(code, 1)
        self.assertIn("passphrase", err)
        os.environ["BLOCKHUB_NEXT_PASSPHRASE"] = "correct horse"
        self.addCleanup(os.environ.pop, "BLOCKHUB_NEXT_PASSPHRASE", None)
        code, _, err = run_cli("rotate-key", "--data-dir", self.gw, "--next", travelled)
        self.assertEqual((code, err), (0, ""))
        # The gateway's new identity is sealed as its old one was: in our key ring.
        self.assertEqual(keystore.load_identity(self.gw).id, next_id)
        self.assertEqual(keystore.read_record(self.gw)["protection"]["kind"], "keyring")

    def test_the_gateway_record_carries_the_commitment(self):
        done = run_cli("gateway-record", "--data-dir", self.gw, "--ip", "192.0.2.1",
                       "--port", "6610")
        self.assertNotIn("next", json.loads(done[1]))
        run_cli("commit-next", "--data-dir", self.gw, "--next", self.next_id)
        record = json.loads(run_cli("gateway-record", "--data-dir", self.gw, "--ip",
                                    "192.0.2.1", "--port", "6610")[1])
        self.assertTrue(commitment_of(record).names(self.next_id))
        code, out, _ = run_cli("verify-gateways", self.write(record))
        self.assertEqual(code, 0, out)

    def write(self, value):
        path = self.mktemp()
        Path(path).write_text(json.dumps(value))
        return path

    def test_an_uncommitted_rotation_is_one_line(self):
        code, out, err = run_cli("rotate-key", "--data-dir", self.gw, "--next", self.next)
        self.assertEqual(code, 1)
        self.assertEqual(len(err.strip().splitlines()), 1)
        self.assertIn("no commitment to a next key", err)
        self.assertEqual(run_cli("id", "--data-dir", self.gw)[1].strip(), self.old_id)
        code, _, err = run_cli("commit-next", "--data-dir", self.gw, "--next", "bhnope")
        self.assertEqual(code, 1)
        self.assertIn("--next", err)
