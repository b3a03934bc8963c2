"""An SSH manhole: a Python prompt inside a running daemon, for live inspection.

``manhole_service`` returns a service that listens on a Twisted endpoint and speaks SSH.
Only public-key logins are accepted, against an OpenSSH ``authorized_keys`` file; no
password or keyboard-interactive checker is registered, so the server never offers
those methods.  Any user name is accepted: the key is what authenticates.  A login gets
Twisted's colored Python prompt whose globals are a copy of the namespace the daemon
passed in (one copy per session, so names set in one session do not leak into another).

Choices worth knowing:

- The keys file is parsed when the service is made (a missing, unreadable or unusable
  file is a ``UserError``, reported as a startup error) and again at every login, so a
  key added to or removed from the file takes effect without a restart.  If the file
  becomes unusable while the daemon runs, every login is refused until it is fixed.
- A key line that carries options (``from=``, ``command=``, ``restrict``...) is skipped
  with a warning: the manhole cannot enforce those options, and ignoring them would
  give the key more access than its owner wrote down.  Key types Twisted cannot use
  (security keys, certificates) are skipped the same way.  A line that is not a public
  key at all (a private key, garbage) is an error naming the line, never its content.
- The SSH host key is an Ed25519 key made on first start and kept in
  ``DATA_DIR/manhole_host_key`` (0600), so clients see the same host key after a
  restart.  Its SHA256 fingerprint (public, as ``ssh`` shows it) is logged at start.
- An exception in the session prints its traceback there.  ``exit()`` or any other
  ``SystemExit`` ends that session only; the daemon keeps running.
- Stopping the service drops open sessions (politely, then by force after a grace
  period), so a stopped manhole leaves nothing behind.

Nothing here logs key material: only user names, peer addresses and fingerprints.
"""

import ipaddress
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.checkers import IAuthorizedKeysDB, SSHPublicKeyChecker
from twisted.conch.error import ValidPublicKey
from twisted.conch.insults import insults
from twisted.conch.interfaces import IConchUser
from twisted.conch.manhole import ColoredManhole
from twisted.conch.manhole_ssh import ConchFactory, TerminalRealm, TerminalSession
from twisted.conch.ssh import connection, keys, transport, userauth
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import ISSHPrivateKey
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.logger import Logger
from zope.interface import implementer

from blockhub import keystore
from blockhub.errors import UserError
from blockhub.net.framed import format_address
from blockhub.net.listening import ListeningService

HOST_KEY_FILE = "manhole_host_key"
LOGIN_GRACE = 120  # seconds an unauthenticated connection may take to log in
STOP_GRACE = 5.0  # seconds open sessions get to close when the service stops

# Signature algorithms Twisted verifies for user keys (SHA-1 "ssh-rsa" left out, as
# OpenSSH does since 8.8), advertised to clients as "server-sig-algs".
USER_KEY_SIGNATURES = b",".join([
    b"ssh-ed25519", b"ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp384", b"ecdsa-sha2-nistp521",
    b"rsa-sha2-512", b"rsa-sha2-256",
])
# The first field of an authorized_keys line, when the line has no options.
_KEY_TYPE = re.compile(rb"^(ssh-|ecdsa-sha2-|sk-)[A-Za-z0-9@.+-]+$")
log = Logger()


def ssh_fingerprint(key: keys.Key) -> str:
    """The fingerprint ``ssh`` and ``ssh-keygen -l`` show: ``SHA256:`` + unpadded base64."""
    return "SHA256:" + key.fingerprint(keys.FingerprintFormats.SHA256_BASE64).rstrip("=")


# --- the authorized keys file ---------------------------------------------------------


def parse_authorized_keys(data: bytes, where: str) -> tuple[list[keys.Key], list[str]]:
    """Read OpenSSH ``authorized_keys`` text: ``(usable keys, reasons lines were skipped)``.

    Blank lines and ``#`` comments are ignored.  Raises ``UserError`` for a line that is
    not a public key at all; the message names the line, never its content.
    """
    found, skipped = [], []
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        fields = line.split()
        if not _KEY_TYPE.match(fields[0]):
            if any(_KEY_TYPE.match(field) for field in fields[1:]):
                skipped.append(f"line {number}: key options (from=, command=, restrict...) "
                               f"cannot be enforced by the manhole")
                continue
            hint = (" (it looks like a private key; give the public half or an "
                    "authorized_keys file)" if line.startswith(b"-----BEGIN") else "")
            raise UserError(f"{where}, line {number}: not an OpenSSH public key{hint}")
        kind = fields[0].decode("ascii")
        try:
            key = keys.Key.fromString(line, type="public_openssh")
        except Exception:  # BadKeyError, or a decoding error from a damaged line
            skipped.append(f"line {number}: cannot use this {kind} key")
            continue
        if not key.isPublic():
            raise UserError(f"{where}, line {number}: not an OpenSSH public key")
        if key.sshType() != fields[0]:  # OpenSSH refuses such a line too
            skipped.append(f"line {number}: the key is not of the type the line names")
            continue
        found.append(key)
    return found, skipped


def read_authorized_keys(path) -> tuple[list[keys.Key], list[str]]:
    """Parse the file at ``path``; ``UserError`` if it is missing, unreadable or bad."""
    path = Path(path).expanduser()
    where = f"manhole keys file {path}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{where} does not exist")
    except OSError as e:
        raise UserError(f"cannot read {where}: {e.strerror or e}")
    found, skipped = parse_authorized_keys(data, where)
    if not found:
        why = f" ({'; '.join(skipped)})" if skipped else ""
        raise UserError(f"{where} holds no usable public key{why}")
    return found, skipped


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """The keys allowed in, read afresh from the file at every login, for any user name.

    A file that has become unusable refuses everyone (and says why in the log).
    """

    def __init__(self, path):
        self.path = Path(path).expanduser()

    def getAuthorizedKeys(self, avatarId):
        try:
            found, _ = read_authorized_keys(self.path)
        except UserError as e:
            log.error("manhole login refused for everyone: {problem}", problem=str(e))
            return ()
        return found


@implementer(ICredentialsChecker)
class _LoggedKeyChecker:
    """``SSHPublicKeyChecker`` plus one log line per accepted or refused login."""

    credentialInterfaces = (ISSHPrivateKey,)

    def __init__(self, keydb):
        self._checker = SSHPublicKeyChecker(keydb)

    def requestAvatarId(self, credentials):
        user = credentials.username.decode("utf-8", "replace")
        d = self._checker.requestAvatarId(credentials)
        d.addCallbacks(self._accepted, self._refused,
                       callbackArgs=(user, credentials), errbackArgs=(user, credentials))
        return d

    def _accepted(self, avatar_id, user, credentials):
        log.info("manhole login accepted: user {user!r}, key {fingerprint}",
                 user=user, fingerprint=_offered_fingerprint(credentials))
        return avatar_id

    def _refused(self, failure, user, credentials):
        # ValidPublicKey answers the signature-less probe ("would this key do?"): it is
        # how the login goes on, not a refusal.
        if failure.check(UnauthorizedLogin) and not failure.check(ValidPublicKey):
            log.warn("manhole login refused: user {user!r}, key {fingerprint} not authorized",
                     user=user, fingerprint=_offered_fingerprint(credentials))
        return failure


def _offered_fingerprint(credentials) -> str:
    try:
        return ssh_fingerprint(keys.Key.fromString(credentials.blob))
    except Exception:
        return "(unreadable key)"


# --- the SSH server ---------------------------------------------------------------------


class _Manhole(ColoredManhole):
    """The prompt; ``SystemExit`` (``exit()``) ends this session, not the daemon."""

    def lineReceived(self, line):
        try:
            super().lineReceived(line)
        except SystemExit:
            self.interpreter.resetBuffer()
            self.terminal.nextLine()
            self.terminal.write(b"SystemExit: closing this session; the daemon keeps running.")
            self.terminal.nextLine()
            self.terminal.loseConnection()


class _Session(TerminalSession):
    """Twisted's terminal session, completed: a default size when the client asks for no
    pty (``ssh -T``), window changes recorded, and the client's EOF ending the session
    (both raise ``NotImplementedError`` in Twisted's class)."""

    width, height = 80, 24
    _terminal = None

    def openShell(self, proto):
        self._terminal = self.chainedProtocolFactory()
        self.transportFactory(proto, self._terminal, IConchUser(self.original),
                              self.width, self.height)

    def windowChanged(self, newWindowSize):
        self.height, self.width = newWindowSize[:2]
        shell = getattr(self._terminal, "terminalProtocol", None)
        if shell is not None:
            # Only record the size: RecvLine.terminalSize would also wipe the screen.
            shell.width, shell.height = self.width, self.height

    def eofReceived(self):
        if self._terminal is not None:
            self._terminal.loseConnection()


@implementer(IRealm)  # as Twisted's TerminalRealm does not say it
class _Realm(TerminalRealm):
    sessionFactory = _Session

    def __init__(self, namespace: dict):
        super().__init__()
        def chained() -> insults.ServerProtocol:
            return insults.ServerProtocol(_Manhole, namespace)

        # Twisted types this as the class, though it only ever calls it.
        self.chainedProtocolFactory = chained  # type: ignore[assignment]


class _UserAuth(userauth.SSHUserAuthServer):
    """Twisted's server side of user authentication, with a short login grace period
    (Twisted's default is ten hours) timed on the service's own reactor."""

    loginTimeout = LOGIN_GRACE

    def serviceStarted(self):
        self.clock = self.transport.factory.reactor
        super().serviceStarted()


class _Transport(transport.SSHServerTransport):
    """One connection: logged, and tracked so a stopping service can close it."""

    def sendExtInfo(self, extensions):
        # Twisted advertises its host key's algorithms as "server-sig-algs" (the ones
        # accepted for *user* keys); with an Ed25519 host key, OpenSSH then refuses to
        # sign with an RSA user key.  Advertise what the checker can verify instead.
        super().sendExtInfo([(name, USER_KEY_SIGNATURES if name == b"server-sig-algs"
                              else value) for name, value in extensions])

    def connectionMade(self):
        super().connectionMade()
        self._peer = _format_peer(self.transport.getPeer())
        self._gone = []
        self.factory.connections.add(self)
        log.info("manhole connection from {peer}", peer=self._peer)

    def connectionLost(self, reason=None):
        super().connectionLost(reason)
        self.factory.connections.discard(self)
        log.info("manhole connection from {peer} closed", peer=self._peer)
        waiting, self._gone = self._gone, []
        for d in waiting:
            d.callback(None)

    def when_gone(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self._gone.append(d)
        return d

    def receiveError(self, reasonCode, description):
        # A client leaving sends a disconnect message: that is news, not an error.
        log.info("manhole client {peer} disconnected (code {code}): {description!r}",
                 peer=self._peer, code=reasonCode, description=description)


class _Factory(ConchFactory):
    protocol = _Transport
    noisy = False
    services = {
        b"ssh-userauth": _UserAuth,
        b"ssh-connection": connection.SSHConnection,
    }

    def __init__(self, reactor, portal, host_key: keys.Key):
        super().__init__(portal)
        self.reactor = reactor
        # Instance attributes: ConchFactory's are class-level dicts shared by everyone.
        self.publicKeys = {host_key.sshType(): host_key.public()}
        # ConchFactory types its keys as bytes, but SSHFactory uses them as Key objects.
        self.privateKeys = {host_key.sshType(): host_key}  # type: ignore[dict-item]
        self.connections: set[_Transport] = set()

    def close_all(self, grace: float) -> Deferred:
        """Disconnect every open connection; abort those still open after ``grace``."""
        open_now = list(self.connections)
        gone = DeferredList([conn.when_gone() for conn in open_now])
        for conn in open_now:
            conn.sendDisconnect(transport.DISCONNECT_BY_APPLICATION, b"manhole stopping")

        def abort():
            for conn in list(self.connections):
                conn.transport.abortConnection()

        timer = self.reactor.callLater(grace, abort)

        def done(result):
            if timer.active():
                timer.cancel()
            return None

        return gone.addBoth(done)


class ManholeService(ListeningService):
    """The listening SSH service; ``.port`` and ``.address`` are set once started."""

    def stopService(self):
        listening = maybeDeferred(super().stopService)
        closing = self.factory.close_all(STOP_GRACE)
        return DeferredList([listening, closing], fireOnOneErrback=True,
                            consumeErrors=True).addCallback(lambda _: None)


def _format_peer(address) -> str:
    if hasattr(address, "host"):
        return format_address(address)
    name = getattr(address, "name", address)  # a UNIX socket, say
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)


# --- the host key -----------------------------------------------------------------------


def load_or_create_host_key(data_dir) -> keys.Key:
    """The manhole's SSH host key from ``DATA_DIR/manhole_host_key``, made (0600) if absent."""
    path = Path(data_dir) / HOST_KEY_FILE
    if path.exists():
        keystore.check_private(path)
        try:
            key = keys.Key.fromString(path.read_bytes())
        except OSError as e:
            raise UserError(f"cannot read the manhole host key {path}: {e.strerror or e}")
        except Exception:
            raise UserError(f"{path} is not a private key the manhole can read; "
                            f"move it aside and a new host key will be made")
        if key.isPublic():
            raise UserError(f"{path} holds a public key; the manhole needs its private key")
        log.info("manhole host key {kind} {fingerprint}", kind=key.sshType().decode(),
                 fingerprint=ssh_fingerprint(key))
        return key
    key = keys.Key(ed25519.Ed25519PrivateKey.generate())
    try:
        keystore.write_private(path, key.toString("openssh"))
    except OSError as e:
        raise UserError(f"cannot write the manhole host key {path}: {e.strerror or e}")
    log.info("manhole host key {kind} {fingerprint} (new, in {path})",
             kind=key.sshType().decode(), fingerprint=ssh_fingerprint(key), path=str(path))
    return key


# --- the service -------------------------------------------------------------------------


def manhole_service(reactor, endpoint: str, keys_file, data_dir, namespace: dict,
                    on_listening=None) -> ManholeService:
    """An SSH manhole on ``endpoint`` (a Twisted server endpoint string), not yet started.

    Logins: public keys listed in ``keys_file`` (OpenSSH authorized_keys format), any
    user name; passwords and keyboard-interactive are never offered.  The session is a
    Python prompt whose globals are a copy of ``namespace``.  The host key lives in
    ``DATA_DIR/manhole_host_key`` (made on first start, reused afterwards).

    Raises ``UserError`` (one line) when the keys file is missing, unreadable or holds no
    usable key, or when the host key cannot be read or written.

    The bound address: after ``startService`` the returned service's ``.port`` is the
    listening port (``service.port.getHost().port`` is the TCP port number when the
    endpoint asked for port 0) and ``.address`` is ``"HOST:PORT"``; ``on_listening``, if
    given, is called once with ``port.getHost()``.  A failure to listen raises
    ``SystemExit`` with one line, as the daemons' other listeners do.  ``stopService``
    stops listening and closes open sessions; its Deferred fires when all are gone.
    """
    _, skipped = read_authorized_keys(keys_file)
    for reason in skipped:
        log.warn("manhole keys file {path}: {reason}; skipped", path=str(keys_file),
                 reason=reason)
    host_key = load_or_create_host_key(data_dir)
    portal = Portal(_Realm(namespace), [_LoggedKeyChecker(AuthorizedKeysFile(keys_file))])
    factory = _Factory(reactor, portal, host_key)

    def listening(address):
        _warn_if_public(address)
        if on_listening is not None:
            on_listening(address)

    return ManholeService(reactor, endpoint, factory, on_listening=listening, what="manhole")


def _warn_if_public(address) -> None:
    host = getattr(address, "host", None)
    try:
        loopback = ipaddress.ip_address(host).is_loopback if host else True
    except ValueError:
        loopback = True  # not an IP address (a UNIX socket, say): nothing to say
    if not loopback:
        log.warn("the manhole listens on {address}, reachable from other hosts; "
                 "anyone holding an authorized key there can run code in this daemon",
                 address=_format_peer(address))
    log.info("manhole listening on {address}", address=_format_peer(address))


__all__ = ["HOST_KEY_FILE", "AuthorizedKeysFile", "ManholeService", "manhole_service",
           "parse_authorized_keys", "read_authorized_keys", "ssh_fingerprint"]
