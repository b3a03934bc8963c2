"""What the CLI prints: peer-controlled text escaped on one line, every failure one line
(never a traceback), the pending list's addresses for what they are, and ``unpeer``.

The daemon is replaced by a fake ``call`` (or a fake socket under the real control
client), so these run in-process with no daemon."""

import errno
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import types
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from blockhub.cli import control_cmds, main
from blockhub.cli.output import printable
from blockhub.control import client
from blockhub.control.server import socket_path
from blockhub.gateway_records import make_record
from blockhub.wire import canonical, envelope
from blockhub.wire.schema import MAX_TIME
from tests.helpers import run_cli
from tests.memory import new_identity

A, B = new_identity(), new_identity()
HOSTILE = "evil\nhub_fakeid  forged row\x1b[2J\x1b]0;title\x07\x9b31m\u202eoll\ud800\\n"


def assert_safe(case, text: str, lines: int):
    """``text`` is ``lines`` lines with nothing a terminal would act on."""
    case.assertEqual(len(text.splitlines()), lines, text)
    for line in text.splitlines():
        case.assertTrue(line.isprintable(), repr(line))
    case.assertNotIn("\x1b", text)
    case.assertNotIn("Traceback", text)


class PrintableTests(SynchronousTestCase):
    def test_controls_are_escaped(self):
        self.assertEqual(printable("a\nb\r\tc\x1b[0m\x7f\x9b"),
                         "a\\nb\\r\\tc\\x1b[0m\\x7f\\x9b")
        self.assertEqual(printable("\u202e\u2028\ud800\U000e0001"),
                         "\\u202e\\u2028\\ud800\\U000e0001")

    def test_plain_text_is_unchanged(self):
        for text in ("hello", "héllo wörld", "日本語", "\U0001f600", "a 'quoted' \"x\""):
            self.assertEqual(printable(text), text)

    def test_backslash_is_escaped_so_an_escape_is_never_ambiguous(self):
        self.assertNotEqual(printable("\\n"), printable("\n"))
        self.assertEqual(printable("C:\\x"), "C:\\\\x")

    def test_non_text(self):
        self.assertEqual(printable(5), "5")
        self.assertEqual(printable(None), "None")

    @given(st.text())
    def test_always_one_printable_line(self, text):
        shown = printable(text)
        self.assertTrue(shown.isprintable())
        shown.encode("utf-8")  # no surrogate left to fail the write


class FakeDaemon:
    """Answers ``call(data_dir, op, **args)`` from a table, and records the calls."""

    def __init__(self, case, answers):
        self.answers, self.calls = answers, []
        case.patch(control_cmds, "call", self)

    def __call__(self, data_dir, op, **args):
        self.calls.append((op, args))
        answer = self.answers[op]
        return answer(**args) if callable(answer) else answer


class HostileTextTests(SynchronousTestCase):
    """Finding 11: text from other hubs and gateways is escaped in every listing."""

    def cli(self, *argv):
        return run_cli(*argv[:1], "--data-dir", "/nonexistent", *argv[1:])

    def test_hubs(self):
        hubs = [{"id": A.id, "name": HOSTILE, "endpoint": "1.2.3.4:5\n" + B.id},
                {"id": B.id, "name": "bravo", "endpoint": None}]
        FakeDaemon(self, {"hubs": hubs})
        code, out, err = self.cli("hubs")
        self.assertEqual((code, err), (0, ""))
        assert_safe(self, out, 2)
        self.assertIn("evil\\nhub_fakeid", out)
        self.assertTrue(out.splitlines()[1].startswith(f"{B.id}  bravo"))

    def test_json_stays_json(self):
        hubs = [{"id": A.id, "name": HOSTILE, "endpoint": None}]
        FakeDaemon(self, {"hubs": hubs})
        code, out, _ = self.cli("hubs", "--json")
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out), hubs)
        self.assertNotIn("\x1b", out)

    def test_pending_notes(self):
        FakeDaemon(self, {"pending": [{"id": A.id, "note": HOSTILE, "address": "10.0.0.1"}]})
        code, out, _ = self.cli("pending")
        self.assertEqual(code, 0)
        assert_safe(self, out, 1)

    def test_messages(self):
        rows = [{"from": A.id, "seq": 1, "text": HOSTILE, "at": 1_700_000_000},
                {"from": B.id, "seq": 2, "text": "hi", "at": MAX_TIME}]
        FakeDaemon(self, {"messages": rows})
        code, out, err = self.cli("messages")
        self.assertEqual((code, err), (0, ""))
        assert_safe(self, out, 2)
        self.assertIn("[9999-12-31 23:59:59Z]", out)

    def test_messages_stored_before_times_were_bounded(self):
        rows = [{"from": A.id, "seq": 1, "text": "from the future", "at": 2**48},
                {"from": A.id, "seq": 2, "text": "fine", "at": 0}]
        FakeDaemon(self, {"messages": rows})
        code, out, err = self.cli("messages")
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines(), [f"[at {2**48}] {A.id}: from the future",
                                            f"[1970-01-01 00:00:00Z] {A.id}: fine"])

    def test_peers(self):
        FakeDaemon(self, {"peers": [{"id": A.id, "address": HOSTILE, "connected": True}]})
        code, out, _ = self.cli("peers")
        assert_safe(self, out, 1)

    def test_status(self):
        status = {"role": "hub", "id": A.id, "name": HOSTILE, "observed": HOSTILE,
                  "gateways": [{"id": B.id, "address": "1.2.3.4:5", "state": "backing_off",
                                "last_error": HOSTILE}],
                  "gateway_lists": {"https://x.example/": "error: " + HOSTILE},
                  "counters": {}, "requests": [{"direction": "in", "peer": B.id,
                                                "state": "rejected", "reason": HOSTILE}],
                  "refusals": {HOSTILE: 2}}
        FakeDaemon(self, {"status": status})
        code, out, err = self.cli("status")
        self.assertEqual((code, err), (0, ""))
        assert_safe(self, out, 7)

    def test_status_alarms_and_keys(self):
        status = {"role": "hub", "id": A.id,
                  "alarms": [{"kind": "equivocation", "gateway": B.id, "at": 0,
                              "proof": HOSTILE}],
                  "gateway_keys": {B.id: {"next_committed": "x", "refused": {
                      "what": "succession", "reason": HOSTILE, "at": 0}},
                      A.id: {"succeeded_by": B.id}}}
        FakeDaemon(self, {"status": status})
        code, out, err = self.cli("status")
        self.assertEqual((code, err), (0, ""))
        assert_safe(self, out, 5)
        self.assertIn(f"ALARM equivocation by gateway {B.id} at 1970-01-01 00:00:00Z", out)
        self.assertIn(f"gateway {A.id} moved to {B.id} (followed)", out)

    def test_daemon_errors_are_escaped(self):
        def refuse(**args):
            from blockhub.errors import UserError
            raise UserError("no such hub: " + HOSTILE)

        FakeDaemon(self, {"approve": refuse})
        code, out, err = self.cli("approve", A.id)
        self.assertEqual((code, out), (1, ""))
        assert_safe(self, err, 1)


class PendingAddressTests(SynchronousTestCase):
    """Finding 16: a relayed request's address is only the requester's claim."""

    ROWS = [{"id": A.id, "note": "hi", "address": "192.0.2.7", "address_source": "claimed"},
            {"id": B.id, "note": "", "address": "198.51.100.2", "address_source": "seen"},
            {"id": A.id, "note": "old daemon", "address": "192.0.2.8"},
            {"id": B.id, "note": "", "address": None, "address_source": "claimed"}]

    def test_text_says_what_the_address_is(self):
        FakeDaemon(self, {"pending": self.ROWS})
        code, out, _ = run_cli("pending", "--data-dir", "/x")
        self.assertEqual(code, 0)
        self.assertEqual(out.splitlines(), [
            f"{A.id}  claims address 192.0.2.7 (unverified)  note: 'hi'",
            f"{B.id}  from 198.51.100.2  note: ''",
            f"{A.id}  claims address 192.0.2.8 (unverified)  note: 'old daemon'",
            f"{B.id}  no address  note: ''"])

    def test_json_keeps_address(self):
        FakeDaemon(self, {"pending": self.ROWS})
        code, out, _ = run_cli("pending", "--data-dir", "/x", "--json")
        self.assertEqual(json.loads(out), self.ROWS)


class UnpeerTests(SynchronousTestCase):
    def test_unpeer(self):
        daemon = FakeDaemon(self, {"unpeer": lambda hub, block: {
            "peer": hub, "removed": hub == A.id, "blocked": block}})
        self.assertEqual(run_cli("unpeer", "--data-dir", "/x", A.id)[1],
                         f"removed peer {A.id}\n")
        self.assertEqual(run_cli("unpeer", "--data-dir", "/x", A.id, "--block")[1],
                         f"removed peer {A.id} and blocked it\n")
        self.assertEqual(run_cli("unpeer", "--data-dir", "/x", B.id, "--block")[1],
                         f"{B.id} was not a peer and blocked it\n")
        self.assertEqual(daemon.calls, [("unpeer", {"hub": A.id, "block": False}),
                                        ("unpeer", {"hub": A.id, "block": True}),
                                        ("unpeer", {"hub": B.id, "block": True})])

    def test_help(self):
        parser = __import__("blockhub.cli", fromlist=["build_parser"]).build_parser()
        sub = next(a for a in parser._actions if a.dest == "command")
        helps = {c.dest: c.help for c in sub._choices_actions}
        self.assertIn("not yet connected", helps["reject"])
        self.assertIn("dialing", helps["reject"])
        self.assertIn("unpeer", helps)
        reject = sub.choices["reject"].format_help()
        self.assertIn("existing peering", " ".join(reject.split()))


class OneLineFailureTests(SynchronousTestCase):
    """Finding 13: whatever goes wrong, one line on stderr and a non-zero exit."""

    def assert_one_line(self, argv, stdin="", contains=None):
        code, out, err = run_cli(*argv, stdin=stdin)
        self.assertNotEqual(code, 0)
        assert_safe(self, err, 1)
        if contains:
            self.assertIn(contains, err)
        return err

    def test_text_that_has_no_utf8_form_is_refused_before_the_daemon(self):
        daemon = FakeDaemon(self, {})
        self.assert_one_line(["send", "--data-dir", "/x", A.id, "caf\udce9"], contains="TEXT")
        self.assert_one_line(["connect", "--data-dir", "/x", A.id, "--note", "\udce9"],
                             contains="--note")
        self.assertEqual(daemon.calls, [])

    def test_an_answer_of_an_unexpected_shape(self):
        FakeDaemon(self, {"peers": [{"id": A.id}]})
        self.assert_one_line(["peers", "--data-dir", "/x"], contains="internal error")

    def test_os_errors(self):
        blocker = Path(self.mktemp())
        blocker.write_text("a file, not a directory")
        self.assert_one_line(["init", "--data-dir", blocker / "sub"])
        self.assert_one_line(["network-key", "--out", blocker / "sub" / "key"])

    def test_stdout_closed_by_the_reader(self):
        class Closed:
            def write(self, text):
                raise BrokenPipeError(errno.EPIPE, "Broken pipe")

            def flush(self):
                raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        FakeDaemon(self, {"hubs": [{"id": A.id, "name": "a"}]})
        import io
        err = io.StringIO()
        code = main(["hubs", "--data-dir", "/x"], stdout=Closed(), stderr=err)
        self.assertEqual((code, err.getvalue()), (1, ""))

    def test_verify_gateways_judges_each_record_alone(self):
        """Finding 12: wrong types in any field, and hostile text, one line each."""
        gw = new_identity()
        good = make_record(gw, "192.0.2.1", 6610, 1_900_000_000 - 10**6)
        body = {k: good[k] for k in ("pubKey", "IP", "Port", "issued")}
        body["expires"] = 10**400  # correctly signed, but no date can show it
        # Signed over a lax encoder's bytes: the canonical form has no such integer.
        data = (envelope.DOMAIN + b"gateway-record\x00" + gw.public_key
                + json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
        huge = dict(body, signature=canonical.b64(gw.sign(data)))
        records = [dict(good, signature=5), dict(good, IP=5), dict(good, Port=True),
                   dict(good, pubKey=HOSTILE), dict(good, IP=HOSTILE), huge, [1], "x",
                   {"pubKey": {"nested": [1, 2]}}, good]
        path = Path(self.mktemp())
        path.write_text(json.dumps({"gateways": records}))
        code, out, err = run_cli("verify-gateways", path)
        self.assertEqual((code, err), (1, ""))
        assert_safe(self, out, len(records))
        lines = out.splitlines()
        self.assertTrue(all(" BAD " in line for line in lines[:-1]), out)

    def test_verify_gateways_deeply_nested_file(self):
        path = Path(self.mktemp())
        path.write_text("[" * 100000 + "]" * 100000)
        self.assert_one_line(["verify-gateways", path], contains="not JSON")


REPO = Path(__file__).resolve().parent.parent


class FetchFromTheCommandLineTests(SynchronousTestCase):
    """``verify-gateways URL`` runs a reactor of its own, so it runs in a process here."""

    def verify(self, url):
        done = subprocess.run(
            [sys.executable, "-c", "from blockhub.cli import run; run()", "verify-gateways",
             url], env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True,
            text=True, timeout=60, stdin=subprocess.DEVNULL)
        self.assertEqual((done.returncode, done.stdout), (1, ""))
        assert_safe(self, done.stderr, 1)
        self.assertIn(f"cannot fetch {url}: ", done.stderr)

    def test_a_url_that_fails_at_once(self):
        # Failing before the reactor ran used to leave it running for ever.
        self.verify("http://")

    def test_a_url_treq_cannot_parse(self):
        self.verify("https://[bad/gateways")


class FakeSocket:
    """A control socket whose step ``fail_at`` raises ``error`` (or answers ``reply``)."""

    def __init__(self, fail_at=None, error=None, reply=b""):
        self.fail_at, self.error, self.reply = fail_at, error, reply

    def _step(self, name):
        if name == self.fail_at:
            raise self.error

    def settimeout(self, timeout):
        pass

    def connect(self, path):
        self._step("connect")

    def sendall(self, data):
        self._step("sendall")

    def recv(self, n):
        self._step("recv")
        data, self.reply = self.reply[:n], self.reply[n:]
        return data

    def close(self):
        pass


class ControlSocketTests(SynchronousTestCase):
    """The real control client, over a fake or a real socket that fails."""

    def setUp(self):
        # A short path: a UNIX socket's name has a length limit.
        self.dir = Path(tempfile.mkdtemp(prefix="bh-cli-"))
        self.addCleanup(shutil.rmtree, self.dir)

    def fake(self, sock):
        self.patch(client, "socket", types.SimpleNamespace(
            socket=lambda *a: sock, AF_UNIX=socket.AF_UNIX, SOCK_STREAM=socket.SOCK_STREAM))
        socket_path(self.dir).touch()

    def status(self):
        code, out, err = run_cli("status", "--data-dir", self.dir)
        self.assertEqual((code, out), (1, ""))
        assert_safe(self, err, 1)
        return err

    def test_reset_broken_and_other_os_errors(self):
        for step, error in [("recv", ConnectionResetError(errno.ECONNRESET, "reset")),
                            ("sendall", BrokenPipeError(errno.EPIPE, "Broken pipe")),
                            ("recv", ConnectionAbortedError(errno.ECONNABORTED, "aborted")),
                            ("connect", OSError("AF_UNIX path too long")),
                            ("sendall", OSError(errno.ENOBUFS, "No buffer space"))]:
            self.fake(FakeSocket(step, error))
            self.status()

    def test_an_answer_that_does_not_parse(self):
        # A well-framed box that is not a Call answer.
        self.fake(FakeSocket(reply=b"\x00\x01x\x00\x01y\x00\x00"))
        self.assertIn("could not be read", self.status())
        self.fake(FakeSocket(reply=b"\x00\x06result\x00\x011\x00\x08result.0\x00\x01{"
                             b"\x00\x00"))
        self.assertIn("could not be read", self.status())

    def test_a_daemon_that_closes_without_answering(self):
        """A real socket: the far end accepts and closes without reading."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(socket_path(self.dir)))
        server.listen(1)
        self.addCleanup(server.close)

        def accept_and_close():
            conn, _ = server.accept()
            conn.close()

        thread = threading.Thread(target=accept_and_close)
        thread.start()
        self.addCleanup(thread.join)
        self.status()
