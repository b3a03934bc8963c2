import json
import os
import stat
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from blockhub import keystore
from blockhub.errors import UserError
from blockhub.identity import new_phrase


class KeystoreTests(SynchronousTestCase):
    def setUp(self):
        base = Path(self.mktemp())
        base.mkdir()
        self.ring = base / "ring"
        self.data = base / "data"

    def test_create_and_load(self):
        phrase = new_phrase()
        ident = keystore.create_identity(self.data, phrase, "alpha", keyring=self.ring)
        self.assertEqual(keystore.load_identity(self.data, keyring=self.ring).id, ident.id)
        self.assertEqual(keystore.load_phrase(self.data, keyring=self.ring), phrase)
        raw = (self.data / keystore.IDENTITY_FILE).read_text()
        self.assertNotIn(phrase.split()[0] + " " + phrase.split()[1], raw)
        self.assertEqual(json.loads(raw)["name"], "alpha")

    def test_modes(self):
        keystore.create_identity(self.data, new_phrase(), keyring=self.ring)
        for d in (self.data, self.ring):
            self.assertEqual(stat.S_IMODE(d.stat().st_mode), 0o700)
            for f in d.iterdir():
                self.assertEqual(stat.S_IMODE(f.stat().st_mode), 0o600)

    def test_never_overwrite(self):
        first = keystore.create_identity(self.data, new_phrase(), keyring=self.ring)
        self.assertRaises(UserError, keystore.create_identity, self.data, new_phrase(),
                          keyring=self.ring)
        self.assertEqual(keystore.load_identity(self.data, keyring=self.ring).id, first.id)

    def test_loose_permissions_refused(self):
        keystore.create_identity(self.data, new_phrase(), keyring=self.ring)
        os.chmod(self.data / keystore.IDENTITY_FILE, 0o644)
        e = self.assertRaises(keystore.InsecurePermissions, keystore.load_identity,
                              self.data, keyring=self.ring)
        self.assertIn("chmod 600", str(e))
        os.chmod(self.data / keystore.IDENTITY_FILE, 0o600)
        os.chmod(self.ring, 0o755)
        self.assertRaises(keystore.InsecurePermissions, keystore.load_identity,
                          self.data, keyring=self.ring)

    def test_missing_keyring_entry(self):
        keystore.create_identity(self.data, new_phrase(), keyring=self.ring)
        other = Path(self.mktemp())
        e = self.assertRaises(UserError, keystore.load_identity, self.data, keyring=other)
        self.assertIn("key ring", str(e))

    def test_passphrase(self):
        phrase = new_phrase()
        ident = keystore.create_identity(self.data, phrase, passphrase="correct horse")
        self.assertEqual(
            keystore.load_identity(self.data, passphrase="correct horse").id, ident.id)
        self.assertRaises(UserError, keystore.load_identity, self.data, passphrase="wrong")
