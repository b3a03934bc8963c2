"""The SSH manhole over real TCP on 127.0.0.1: who gets in, what the prompt does, the host
key across restarts, and the start-up errors.

The client is Twisted's own SSH client classes, driven step by step: a transport that
records the host key it was shown, a user-auth client offering exactly the credentials a
test chooses, and a session channel that asks for a pty and a shell as ``ssh`` does.
Every wait has a timeout; every test stops its services and closes its connections.
"""

import re
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from twisted.conch.ssh import channel, common, connection, keys, session, transport, userauth
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.trial import unittest

from blockhub import manhole
from blockhub.errors import UserError

TIMEOUT = 10
LOOPBACK = "127.0.0.1"


def new_key() -> keys.Key:
    return keys.Key(ed25519.Ed25519PrivateKey.generate())


def public_line(key: keys.Key, comment: str = "test@example") -> bytes:
    return key.public().toString("openssh") + b" " + comment.encode() + b"\n"


class AuthFailed(Exception):
    """The server did not let this client in."""


class Waiter:
    """Deferreds for "this has happened", each fired once, each bounded by TIMEOUT."""

    def __init__(self):
        self._fired = {}
        self._waiting = {}

    def fire(self, name, value=None):
        if name in self._fired:
            return
        self._fired[name] = value
        for d in self._waiting.pop(name, []):
            d.callback(value)

    def fail(self, name, error):
        if name in self._fired:
            return
        self._fired[name] = error
        for d in self._waiting.pop(name, []):
            d.errback(error)

    def fired(self, name) -> bool:
        return name in self._fired

    def wait(self, name) -> Deferred:
        if name in self._fired:
            value = self._fired[name]
            d = Deferred()
            if isinstance(value, Exception):
                d.errback(value)
            else:
                d.callback(value)
            return d
        d = Deferred()
        self._waiting.setdefault(name, []).append(d)
        return d.addTimeout(TIMEOUT, reactor)


class ShellChannel(channel.SSHChannel):
    """A session channel that asks for a pty and a shell, and collects what comes back."""

    name = b"session"

    def __init__(self, client, **kw):
        super().__init__(**kw)
        self.client = client
        self.received = b""
        self._patterns = []

    @inlineCallbacks
    def channelOpen(self, specificData):
        pty = session.packRequest_pty_req(b"xterm", (24, 80, 0, 0), b"")
        try:
            yield self.conn.sendRequest(self, b"pty-req", pty, wantReply=True)
            yield self.conn.sendRequest(self, b"shell", b"", wantReply=True)
        except Exception as e:
            self.client.events.fail("shell", e)
        else:
            self.client.events.fire("shell", self)

    def dataReceived(self, data):
        self.received += data
        waiting, self._patterns = self._patterns, []
        matched = []
        for start, pattern, d in waiting:
            if re.search(pattern, self.received[start:]):
                matched.append((d, self.received[start:]))
            else:
                self._patterns.append((start, pattern, d))
        for d, output in matched:
            d.callback(output)

    def closed(self):
        self.client.events.fire("shell closed")
        waiting, self._patterns = self._patterns, []
        for _, pattern, d in waiting:
            d.errback(AssertionError(f"the session closed before {pattern!r} arrived; "
                                     f"got {self.received!r}"))

    def send_line(self, text: str) -> int:
        """Type ``text`` and Return; the offset where the answer's output starts."""
        mark = len(self.received)
        self.write(text.encode() + b"\r")
        return mark

    def expect(self, pattern: bytes, start: int) -> Deferred:
        """Fire with the output since ``start`` once it matches ``pattern`` (a regex)."""
        d = Deferred()
        self._patterns.append((start, pattern, d))
        self.dataReceived(b"")
        return d.addTimeout(TIMEOUT, reactor)

    def ask(self, text: str, pattern: bytes) -> Deferred:
        return self.expect(pattern, self.send_line(text))


class ShellConnection(connection.SSHConnection):
    def __init__(self, client):
        super().__init__()
        self.client = client

    def serviceStarted(self):
        super().serviceStarted()
        self.client.events.fire("authenticated")
        if self.client.want_shell:
            self.openChannel(ShellChannel(self.client, conn=self))


class KeyAuth(userauth.SSHUserAuthClient):
    """Offers one key, once."""

    def __init__(self, user, instance, key):
        super().__init__(user, instance)
        self.key = key
        self.offered = False

    def getPublicKey(self):
        if self.key is None or self.offered:
            return None
        self.offered = True
        return self.key.public()

    def getPrivateKey(self):
        return succeed(self.key)

    def getPassword(self, prompt=None):
        return None


class InsistentPasswordAuth(userauth.SSHUserAuthClient):
    """Tries a password and then keyboard-interactive whatever the server advertises,
    recording every method list the server answers with."""

    def __init__(self, user, instance, client):
        super().__init__(user, instance)
        self.client = client
        self.to_try = [
            (b"password", b"\x00" + common.NS(b"hunter2")),
            (b"keyboard-interactive", common.NS(b"") + common.NS(b"")),
        ]

    def ssh_USERAUTH_FAILURE(self, packet):
        methods, partial = common.getNS(packet)
        self.client.refusals.append((methods.split(b","), partial))
        if self.to_try:
            kind, data = self.to_try.pop(0)
            self.lastAuth = kind
            self.askForAuth(kind, data)
        else:
            self.transport.sendDisconnect(
                transport.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, b"giving up")


class ClientTransport(transport.SSHClientTransport):
    def __init__(self, client):
        super().__init__()
        self.client = client

    def ssh_EXT_INFO(self, packet):
        super().ssh_EXT_INFO(packet)
        self.client.server_extensions = dict(self.peerExtensions)

    def verifyHostKey(self, hostKey, fingerprint):
        self.client.host_key = keys.Key.fromString(hostKey)
        return succeed(True)

    def connectionSecure(self):
        self.requestService(self.client.make_auth(ShellConnection(self.client)))

    def receiveError(self, reasonCode, description):
        self.client.disconnect_reason = (reasonCode, description)

    def connectionLost(self, reason=None):
        super().connectionLost(reason)
        self.client.events.fail("authenticated", AuthFailed(self.client.disconnect_reason))
        self.client.events.fail("shell", AuthFailed("connection lost before a shell"))
        self.client.events.fire("lost")


class Client:
    """One SSH client connection to the manhole, with the credentials a test chooses."""

    def __init__(self, port, key=None, insist_on_password=False, want_shell=True):
        self.port = port
        self.key = key
        self.insist_on_password = insist_on_password
        self.want_shell = want_shell
        self.events = Waiter()
        self.host_key = None
        self.server_extensions = {}
        self.refusals = []
        self.disconnect_reason = None
        self.transport = None

    def make_auth(self, conn):
        if self.insist_on_password:
            return InsistentPasswordAuth(b"admin", conn, self)
        return KeyAuth(b"admin", conn, self.key)

    @inlineCallbacks
    def connect(self):
        endpoint = TCP4ClientEndpoint(reactor, LOOPBACK, self.port, timeout=TIMEOUT)
        self.transport = yield connectProtocol(endpoint, ClientTransport(self)).addTimeout(
            TIMEOUT, reactor)
        return self

    def close(self) -> Deferred:
        if self.transport is None:
            return succeed(None)
        if not self.events.fired("lost"):
            self.transport.transport.loseConnection()
        return self.events.wait("lost")


class ManholeTests(unittest.TestCase):
    def setUp(self):
        self.dir = Path(self.mktemp())
        self.data_dir = self.dir / "data"
        self.data_dir.mkdir(parents=True, mode=0o700)
        self.key = new_key()
        self.keys_file = self.dir / "authorized_keys"
        self.keys_file.write_bytes(b"# the operator\n\n" + public_line(self.key))
        self.namespace = {"answer": 42, "name": "hub1"}

    def start(self):
        service = manhole.manhole_service(
            reactor, f"tcp:0:interface={LOOPBACK}", str(self.keys_file), self.data_dir,
            self.namespace)
        service.startService()
        self.addCleanup(self.stop, service)
        return service

    def stop(self, service):
        if service.running:
            return service.stopService()

    @inlineCallbacks
    def connect(self, service, **kw):
        client = Client(service.port.getHost().port, **kw)
        self.addCleanup(client.close)
        yield client.connect()
        return client

    @inlineCallbacks
    def shell(self, service, key=None):
        client = yield self.connect(service, key=key or self.key)
        shell = yield client.events.wait("shell")
        yield shell.expect(rb">>> ", 0)
        return client, shell

    @inlineCallbacks
    def test_authorized_key_gets_a_prompt(self):
        service = self.start()
        client, shell = yield self.shell(service)
        yield shell.ask("answer * 2", rb"\r\n84\r\n")
        yield shell.ask("name.upper()", rb"'HUB1'")
        self.assertIsNotNone(client.host_key)

    @inlineCallbacks
    def test_rsa_key_gets_a_prompt(self):
        rsa_key = keys.Key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        with self.keys_file.open("ab") as f:
            f.write(public_line(rsa_key))
        service = self.start()
        client, shell = yield self.shell(service, key=rsa_key)
        yield shell.ask("answer", rb"\r\n42\r\n")
        # What OpenSSH needs to sign with an RSA key, and what Twisted gets wrong alone.
        advertised = client.server_extensions[b"server-sig-algs"].split(b",")
        self.assertIn(b"rsa-sha2-512", advertised)
        self.assertIn(b"ssh-ed25519", advertised)

    @inlineCallbacks
    def test_unknown_key_is_refused(self):
        service = self.start()
        client = yield self.connect(service, key=new_key())
        yield self.assertFailure(client.events.wait("authenticated"), AuthFailed)
        yield client.events.wait("lost")
        yield self.assertFailure(client.events.wait("shell"), AuthFailed)

    @inlineCallbacks
    def test_password_and_keyboard_interactive_are_refused(self):
        service = self.start()
        client = yield self.connect(service, insist_on_password=True)
        yield self.assertFailure(client.events.wait("authenticated"), AuthFailed)
        # "none", then the password, then keyboard-interactive: each refused, and the
        # only method ever offered is publickey.
        self.assertEqual(client.refusals, [([b"publickey"], b"\x00")] * 3)

    @inlineCallbacks
    def test_host_key_survives_a_restart(self):
        first = self.start()
        client = yield self.connect(first, key=self.key)
        yield client.events.wait("authenticated")
        seen_first = client.host_key
        yield client.close()
        yield first.stopService()

        path = self.data_dir / manhole.HOST_KEY_FILE
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        on_disk = keys.Key.fromString(path.read_bytes()).public()
        self.assertEqual(seen_first, on_disk)

        second = self.start()
        self.assertNotEqual(second.port.getHost().port, 0)
        client = yield self.connect(second, key=self.key)
        yield client.events.wait("authenticated")
        self.assertEqual(client.host_key, seen_first)

    @inlineCallbacks
    def test_failing_expression_prints_a_traceback(self):
        service = self.start()
        client, shell = yield self.shell(service)
        out = yield shell.ask("1/0", rb"ZeroDivisionError.*\n.*>>> ")
        self.assertIn(b"Traceback", out)
        yield shell.ask("answer + 1", rb"\r\n43\r\n")
        self.assertTrue(service.running)

    def test_missing_keys_file(self):
        missing = self.dir / "nope"
        e = self.assertRaises(UserError, manhole.manhole_service, reactor, "tcp:0",
                              str(missing), self.data_dir, {})
        self.assertIn(str(missing), str(e))
        self.assertIn("does not exist", str(e))
        self.assertNotIn("\n", str(e))
        self.assertFalse((self.data_dir / manhole.HOST_KEY_FILE).exists())

    def test_unreadable_keys_file(self):
        self.keys_file.unlink()
        self.keys_file.mkdir()  # unreadable as a file, even for root
        e = self.assertRaises(UserError, manhole.manhole_service, reactor, "tcp:0",
                              str(self.keys_file), self.data_dir, {})
        self.assertIn(f"cannot read manhole keys file {self.keys_file}", str(e))

    def test_keys_file_without_a_usable_key(self):
        self.keys_file.write_bytes(
            b"# only comments\n\n"
            b'from="10.0.0.1",no-pty ' + public_line(self.key))
        e = self.assertRaises(UserError, manhole.manhole_service, reactor, "tcp:0",
                              str(self.keys_file), self.data_dir, {})
        self.assertIn("no usable public key", str(e))
        self.assertIn("line 3: key options", str(e))

    def test_keys_file_with_a_line_that_is_not_a_key(self):
        private = self.key.toString("openssh")
        self.keys_file.write_bytes(public_line(self.key) + private)
        e = self.assertRaises(UserError, manhole.manhole_service, reactor, "tcp:0",
                              str(self.keys_file), self.data_dir, {})
        self.assertIn("line 2: not an OpenSSH public key", str(e))
        self.assertIn("private key", str(e))
        for line in private.splitlines()[1:-1]:  # no key material in the message
            self.assertNotIn(line.decode(), str(e))

    def test_skipped_lines_leave_the_good_keys(self):
        other = new_key()
        self.keys_file.write_bytes(
            b'command="true" ' + public_line(other)
            + b"sk-ssh-ed25519@openssh.com AAAAbroken comment\n"
            + b"ssh-rsa " + public_line(other).split(b" ", 1)[1]
            + public_line(self.key))
        found, skipped = manhole.read_authorized_keys(self.keys_file)
        self.assertEqual(found, [self.key.public()])
        self.assertEqual([reason.split(":")[0] for reason in skipped],
                         ["line 1", "line 2", "line 3"])

    def test_insecure_host_key_file_is_refused(self):
        path = self.data_dir / manhole.HOST_KEY_FILE
        path.write_bytes(new_key().toString("openssh"))
        path.chmod(0o644)
        e = self.assertRaises(UserError, manhole.manhole_service, reactor, "tcp:0",
                              str(self.keys_file), self.data_dir, {})
        self.assertIn("chmod 600", str(e))

    @inlineCallbacks
    def test_exit_ends_the_session_not_the_daemon(self):
        service = self.start()
        client, shell = yield self.shell(service)
        shell.send_line("exit()")
        yield client.events.wait("shell closed")
        self.assertIn(b"the daemon keeps running", shell.received)
        yield client.close()
        client, shell = yield self.shell(service)
        yield shell.ask("answer", rb"\r\n42\r\n")

    @inlineCallbacks
    def test_window_change_and_eof(self):
        service = self.start()
        client, shell = yield self.shell(service)
        size = session.packRequest_window_change((40, 120, 0, 0))
        shell.conn.sendRequest(shell, b"window-change", size)
        yield shell.ask("answer", rb"\r\n42\r\n")  # still there, and nothing logged
        shell.conn.sendEOF(shell)
        yield client.events.wait("shell closed")

    @inlineCallbacks
    def test_keys_file_is_reread_at_each_login(self):
        service = self.start()
        newcomer = new_key()
        self.keys_file.write_bytes(public_line(newcomer))
        client = yield self.connect(service, key=newcomer)
        yield client.events.wait("authenticated")
        client = yield self.connect(service, key=self.key)  # removed: refused now
        yield self.assertFailure(client.events.wait("authenticated"), AuthFailed)

    @inlineCallbacks
    def test_sessions_get_their_own_copy_of_the_namespace(self):
        service = self.start()
        _, first = yield self.shell(service)
        yield first.ask("answer = 7; answer", rb"\r\n7\r\n")
        _, second = yield self.shell(service)
        yield second.ask("answer", rb"\r\n42\r\n")
        self.assertEqual(self.namespace["answer"], 42)

    @inlineCallbacks
    def test_stopping_the_service_closes_open_sessions(self):
        service = self.start()
        client, shell = yield self.shell(service)
        yield service.stopService()
        yield client.events.wait("lost")
