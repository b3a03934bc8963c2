from twisted.trial.unittest import SynchronousTestCase

from blockhub import slip10
from blockhub.identity import BadPhrase, Identity, new_phrase, normalize_phrase

# SLIP-0010 test vector 1 for ed25519.
SEED = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
PHRASE = ("abandon abandon abandon abandon abandon abandon abandon abandon abandon "
          "abandon abandon about")


class Slip10Tests(SynchronousTestCase):
    def test_master_vector(self):
        key, chain = slip10.master_key(SEED)
        self.assertEqual(key.hex(),
                         "2b4be7f19ee27bbf30c667b642d5f4aa69fd169872f8fc3059c08ebae2eb19e7")
        self.assertEqual(chain.hex(),
                         "90046a93de5380a72b5e45010748567d5ea02bbf6522f979e05c0d8d8ca9fffb")

    def test_child_vector(self):
        key, chain = slip10.derive(SEED, "m/0'")
        self.assertEqual(key.hex(),
                         "68e0fe46dfb67e368c75379acec591dad19df3cde26e63b93a8e704f1dade7a3")
        self.assertEqual(chain.hex(),
                         "8b59aa11380b624e81507a27fedda59fea6d0b779a778918a2fd3590e16e9c69")

    def test_unhardened_refused(self):
        self.assertRaises(ValueError, slip10.parse_path, "m/302/0'")
        self.assertRaises(ValueError, slip10.parse_path, "302'/0'")


class IdentityTests(SynchronousTestCase):
    def test_same_phrase_same_id(self):
        a = Identity.from_phrase(PHRASE)
        b = Identity.from_phrase("  " + PHRASE.upper().replace(" ", "   ") + "\n")
        self.assertEqual(a.id, b.id)
        self.assertEqual(a.public_key, b.public_key)

    def test_path_is_302_0(self):
        from mnemonic import Mnemonic
        from nacl.signing import SigningKey
        key, _ = slip10.derive(Mnemonic.to_seed(PHRASE, ""), "m/302'/0'")
        self.assertEqual(Identity.from_phrase(PHRASE).public_key,
                         bytes(SigningKey(key).verify_key))

    def test_new_phrases(self):
        self.assertEqual(len(new_phrase().split()), 12)
        self.assertEqual(len(new_phrase(24).split()), 24)
        self.assertNotEqual(new_phrase(), new_phrase())

    def test_bad_checksum(self):
        wrong = PHRASE.replace("about", "abandon")
        e = self.assertRaises(BadPhrase, normalize_phrase, wrong)
        self.assertIn("checksum", str(e))

    def test_unknown_word(self):
        e = self.assertRaises(BadPhrase, normalize_phrase, PHRASE.replace("about", "zzzq"))
        self.assertIn("zzzq", str(e))

    def test_repr_hides_secret(self):
        ident = Identity.from_phrase(PHRASE)
        self.assertNotIn(ident.private_seed.hex(), repr(ident))
        self.assertIn(ident.id, repr(ident))
