"""The manhole's SSH server: its factory, the connection transport and the user
authentication service.

Each connection is logged (peer address, and the client's own disconnect as news, not
an error) and tracked, so a stopping service can close every open session: politely
first, then by force after a grace period.  An unauthenticated connection has
``LOGIN_GRACE`` seconds to log in, timed on the service's reactor.
"""

from twisted.conch.manhole_ssh import ConchFactory
from twisted.conch.ssh import connection, keys, transport, userauth
from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger

from blockhub.hubinfo import format_address
from blockhub.timers import cancel

LOGIN_GRACE = 120  # seconds an unauthenticated connection may take to log in

# Signature algorithms Twisted verifies for user keys (SHA-1 "ssh-rsa" left out, as
# OpenSSH does since 8.8), advertised to clients as "server-sig-algs".
USER_KEY_SIGNATURES = b",".join([
    b"ssh-ed25519", b"ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp384", b"ecdsa-sha2-nistp521",
    b"rsa-sha2-512", b"rsa-sha2-256",
])
log = Logger(namespace="blockhub.manhole")


class UserAuth(userauth.SSHUserAuthServer):
    """Twisted's server side of user authentication, with a short login grace period
    (Twisted's default is ten hours) timed on the service's own reactor."""

    loginTimeout = LOGIN_GRACE

    def serviceStarted(self):
        self.clock = self.transport.factory.reactor
        super().serviceStarted()


class Transport(transport.SSHServerTransport):
    """One connection: logged, and tracked so a stopping service can close it."""

    def sendExtInfo(self, extensions):
        # Twisted advertises its host key's algorithms as "server-sig-algs" (the ones
        # accepted for *user* keys); with an Ed25519 host key, OpenSSH then refuses to
        # sign with an RSA user key.  Advertise what the checker can verify instead.
        super().sendExtInfo([(name, USER_KEY_SIGNATURES if name == b"server-sig-algs"
                              else value) for name, value in extensions])

    def connectionMade(self):
        super().connectionMade()
        self._peer = format_peer(self.transport.getPeer())
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


class Factory(ConchFactory):
    """The SSH server for one manhole: its host key, its portal, its open connections."""

    protocol = Transport
    noisy = False
    services = {
        b"ssh-userauth": UserAuth,
        b"ssh-connection": connection.SSHConnection,
    }

    def __init__(self, reactor, portal, host_key: keys.Key):
        super().__init__(portal)
        self.reactor = reactor
        # Instance attributes: ConchFactory's are class-level dicts shared by everyone.
        self.publicKeys = {host_key.sshType(): host_key.public()}
        # ConchFactory types its keys as bytes, but SSHFactory uses them as Key objects.
        self.privateKeys = {host_key.sshType(): host_key}  # type: ignore[dict-item]
        self.connections: set[Transport] = set()

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
            cancel(timer)
            return None

        return gone.addBoth(done)


def format_peer(address) -> str:
    """``HOST:PORT`` for an IP address; the path (or whatever it is) for anything else."""
    if hasattr(address, "host"):
        return format_address(address)
    name = getattr(address, "name", address)  # a UNIX socket, say
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
