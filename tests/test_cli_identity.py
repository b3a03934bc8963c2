import io
import os
import stat
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from blockhub.cli import main
from blockhub.ids import decode_id, is_id
from tests.helpers import isolate_keyring, run_cli

PHRASE = ("legal winner thank year wave sausage worth useful legal winner thank yellow")


class InitTests(SynchronousTestCase):
    def setUp(self):
        self.ring = isolate_keyring(self)
        self.dir = Path(self.mktemp())

    def test_init_prints_id_and_phrase_once(self):
        code, out, err = run_cli("init", "--data-dir", self.dir, "--name", "alpha")
        self.assertEqual((code, err), (0, ""))
        first = out.splitlines()[0]
        self.assertTrue(first.startswith("id: "))
        phrase = [ln.strip() for ln in out.splitlines() if len(ln.split()) == 12][0]
        self.assertIn("Write these words down", out)
        code, out, _ = run_cli("id", "--data-dir", self.dir)
        self.assertEqual(out.strip(), first[4:])
        self.assertTrue(is_id(out.strip()))
        code, shown, _ = run_cli("phrase", "--data-dir", self.dir, "--yes")
        self.assertEqual(shown.strip(), phrase)

    def test_24_words(self):
        code, out, _ = run_cli("init", "--data-dir", self.dir, "--words", "24")
        self.assertEqual(code, 0)
        self.assertTrue([ln for ln in out.splitlines() if len(ln.split()) == 24])

    def test_recover_reproduces_id(self):
        run_cli("init", "--data-dir", self.dir, "--recover", stdin=PHRASE + "\n")
        other = Path(self.mktemp())
        code, out, _ = run_cli("init", "--data-dir", other, "--recover", stdin=PHRASE.upper())
        self.assertEqual(code, 0)
        self.assertNotIn(PHRASE, out)
        a = run_cli("id", "--data-dir", self.dir)[1]
        self.assertEqual(a, run_cli("id", "--data-dir", other)[1])
        hexed = run_cli("id", "--data-dir", self.dir, "--hex")[1].strip()
        self.assertEqual(bytes.fromhex(hexed), decode_id(a.strip()))
        self.assertEqual(hexed, hexed.lower())

    def test_recover_bad_checksum(self):
        code, out, err = run_cli("init", "--data-dir", self.dir, "--recover",
                                 stdin=PHRASE.replace("yellow", "winner"))
        self.assertEqual(code, 1)
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn("checksum", err)
        self.assertFalse(self.dir.exists())

    def test_recover_unknown_word(self):
        code, _, err = run_cli("init", "--data-dir", self.dir, "--recover",
                               stdin=PHRASE.replace("legal", "legol", 1))
        self.assertEqual(code, 1)
        self.assertIn("legol", err)

    def test_never_overwrites(self):
        run_cli("init", "--data-dir", self.dir)
        before = run_cli("id", "--data-dir", self.dir)[1]
        code, _, err = run_cli("init", "--data-dir", self.dir)
        self.assertEqual(code, 1)
        self.assertIn("refusing to overwrite", err)
        self.assertEqual(run_cli("id", "--data-dir", self.dir)[1], before)

    def test_phrase_needs_yes(self):
        run_cli("init", "--data-dir", self.dir)
        code, out, err = run_cli("phrase", "--data-dir", self.dir)
        self.assertEqual((code, out), (1, ""))
        self.assertIn("--yes", err)

    def test_errors_are_one_line(self):
        for argv in (["id", "--data-dir", self.dir], ["bogus"], ["init"],
                     ["init", "--data-dir", self.dir, "--words", "13"]):
            code, out, err = run_cli(*argv)
            self.assertNotEqual(code, 0, argv)
            self.assertEqual(len(err.strip().splitlines()), 1, (argv, err))
            self.assertNotIn("Traceback", err)

    def test_network_key(self):
        key = Path(self.mktemp())
        code, _, _ = run_cli("network-key", "--out", key)
        self.assertEqual(code, 0)
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(len(bytes.fromhex(key.read_text().strip())), 32)
        self.assertEqual(run_cli("network-key", "--out", key)[0], 1)

    def test_name_without_a_utf8_form_is_refused(self):
        # Undecodable bytes in argv arrive as lone surrogates; the daemon could not sign
        # a HubInfo with such a name.
        code, out, err = run_cli("init", "--data-dir", self.dir, "--name", "caf\udce9")
        self.assertEqual((code, out), (1, ""))
        self.assertIn("--name is not valid UTF-8", err)
        self.assertFalse(self.dir.exists())

    def test_undecodable_phrase_is_one_line(self):
        class Undecodable:
            def isatty(self):
                return False

            def readline(self):
                raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

        out, err = io.StringIO(), io.StringIO()
        code = main(["init", "--data-dir", str(self.dir), "--recover"], stdin=Undecodable(),
                    stdout=out, stderr=err)
        self.assertEqual(code, 1)
        self.assertEqual(err.getvalue(),
                         "blockhub: error: the recovery phrase is not valid UTF-8 text\n")

    def test_passphrase_from_a_closed_stdin_is_one_line(self):
        import getpass

        def closed(prompt=""):
            raise EOFError()

        self.patch(getpass, "getpass", closed)
        old = os.environ.pop("BLOCKHUB_PASSPHRASE", None)
        if old is not None:
            self.addCleanup(os.environ.__setitem__, "BLOCKHUB_PASSPHRASE", old)
        code, out, err = run_cli("init", "--data-dir", self.dir, "--passphrase")
        self.assertEqual(code, 1)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("no passphrase given", err)
