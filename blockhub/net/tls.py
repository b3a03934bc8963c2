"""Key-pinned TLS 1.3 for every blockhub connection.

Each side presents a certificate self-signed by its own Ed25519 identity key.  No
certificate authority is involved: a dialer pins the id it expects and the handshake
fails, before any application byte is sent, when the server's key differs (the
spoofed-gateway case of docs/design.md).  The accepting side takes any Ed25519 client
certificate and learns the peer's id from it (``peer_id``); TLS 1.3's
CertificateVerify proves that the peer holds the matching private key.
"""

import datetime
import weakref

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory
from zope.interface import implementer

from blockhub.identity import Identity
from blockhub.ids import decode_id, encode_id

log = Logger()


_certificates: dict[str, tuple[crypto.X509, crypto.PKey]] = {}


def certificate_for(identity: Identity) -> tuple[crypto.X509, crypto.PKey]:
    """A self-signed certificate whose key is the identity key itself; made once per
    identity and process, since every dial needs it."""
    if identity.id not in _certificates:
        _certificates[identity.id] = _make_certificate(identity)
    return _certificates[identity.id]


def _make_certificate(identity: Identity) -> tuple[crypto.X509, crypto.PKey]:
    key = Ed25519PrivateKey.from_private_bytes(identity.private_seed)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.id)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, None))
    return crypto.X509.from_cryptography(cert), crypto.PKey.from_cryptography_key(key)


def key_of(cert: crypto.X509) -> bytes | None:
    """The raw Ed25519 public key in ``cert``, or None for any other kind of key."""
    public = cert.to_cryptography().public_key()
    if not isinstance(public, Ed25519PublicKey):
        return None
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def served_id(transport) -> str | None:
    """The id whose certificate we presented on a TLS transport (a gateway that
    rotated serves its old key to hubs that name it); None without TLS."""
    handle = getattr(transport, "getHandle", None)
    cert = handle().get_certificate() if handle is not None else None
    key = key_of(cert) if cert is not None else None
    return encode_id(key) if key else None


def peer_id(transport) -> str | None:
    """The id of the peer on a TLS transport whose handshake is complete."""
    cert = transport.getPeerCertificate()
    if cert is None:
        return None
    key = key_of(cert)
    return encode_id(key) if key else None


def _context(identity: Identity, verify) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    cert, key = certificate_for(identity)
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)
    ctx.check_privatekey()
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, verify)
    ctx.set_options(SSL.OP_NO_TICKET)
    # Idle connections are the common case on a gateway: give their buffers back.
    ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    return ctx


def _any_ed25519(conn, cert, errno, depth, ok) -> bool:
    # Self-signed is expected; only the leaf's key matters, and it must be Ed25519.
    return depth > 0 or key_of(cert) is not None


@implementer(IOpenSSLServerConnectionCreator)
class ServerCreator:
    """TLS for the accepting side: any Ed25519 client certificate; id read afterwards.

    ``choose(server_name)`` (a gateway after a key rotation) says whose certificate a
    connection gets, from the TLS server name the dialer sent (None: it sent none);
    without it, always ``identity``'s."""

    def __init__(self, identity: Identity, choose=None):
        self._choose = choose or (lambda name: identity)
        self._contexts: dict[str, SSL.Context] = {}

    def _context_of(self, identity: Identity) -> SSL.Context:
        ctx = self._contexts.get(identity.id)
        if ctx is None:
            ctx = self._contexts[identity.id] = _context(identity, _any_ed25519)
            ctx.set_tlsext_servername_callback(self._named)
        return ctx

    def _named(self, conn: SSL.Connection) -> None:
        raw = conn.get_servername()
        name = raw.decode("ascii", "replace") if raw else None
        ctx = self._context_of(self._choose(name))
        if ctx is not conn.get_context():
            conn.set_context(ctx)

    def serverConnectionForTLS(self, tlsProtocol):
        return SSL.Connection(self._context_of(self._choose(None)), None)


@implementer(IOpenSSLClientConnectionCreator)
class PinnedClientCreator:
    """TLS for the dialing side: the server must present exactly ``expected_id``'s key."""

    def __init__(self, identity: Identity, expected_id: str):
        self.expected_id = expected_id
        self._expected = decode_id(expected_id)
        self.mismatch: str | None = None  # the id the server presented instead, if any
        self._ctx = _client_context(identity)

    def _verify(self, conn, cert, errno, depth, ok) -> bool:
        if depth > 0:
            return True
        key = key_of(cert)
        if key == self._expected:
            return True
        self.mismatch = encode_id(key) if key else "a non-Ed25519 key"
        log.warn("refusing server: it presented {presented}, not the pinned {expected}",
                 presented=self.mismatch, expected=self.expected_id)
        return False

    def clientConnectionForTLS(self, tlsProtocol):
        # The server name names the key we pin: a gateway that rotated its key answers
        # a hub that still pins the old one with the old key's certificate and the
        # succession, during its grace (docs/accountability.md).
        conn = SSL.Connection(self._ctx, None)
        _pins[conn] = self  # whose pin the shared context's check applies
        conn.set_tlsext_host_name(self.expected_id.encode("ascii"))
        return conn


_client_contexts: dict[str, SSL.Context] = {}
_pins: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # connection -> creator


def _client_context(identity: Identity) -> SSL.Context:
    """One client context per identity and process, shared by its dials (making one
    costs more than a dial's own work); each connection carries its pin."""
    ctx = _client_contexts.get(identity.id)
    if ctx is None:
        ctx = _client_contexts[identity.id] = _context(identity, _pinned)
    return ctx


def _pinned(conn, cert, errno, depth, ok) -> bool:
    return _pins[conn]._verify(conn, cert, errno, depth, ok)


def client_over(identity: Identity, expected_id: str, protocol, clock):
    """``protocol`` under key-pinned client TLS, for a transport of our own (a relay
    circuit): connect the result to it."""
    return TLSMemoryBIOFactory(PinnedClientCreator(identity, expected_id), True,
                               _One(protocol), clock=clock).buildProtocol(None)


class _One(Factory):
    """A factory for one protocol made already."""

    def __init__(self, protocol):
        self.one = protocol

    def buildProtocol(self, addr):
        return self.one


# Bytes of application data handed to OpenSSL at a time.  A connection's outgoing
# memory BIO keeps, for the connection's life, the size of the largest run of records
# it ever held; Twisted hands TLS 16 KiB at a time, so every idle hub of a gateway
# that once took a welcome list kept about 22 KiB of it (issue 20).
SLICE = 4 * 1024


class SlicedTLSTransport(BufferingTLSTransport):
    """Twisted's TLS transport, writing through OpenSSL ``SLICE`` bytes at a time and
    reading its records out in reads of twice that (each read allocates and clears a
    buffer of the size asked for: Twisted asks for 32 KiB)."""

    def _write(self, data):
        for start in range(0, len(data), SLICE):
            if start and self._appSendBuffer:  # TLS could not take a slice: the rest
                self._bufferedWrite(data[start:])  # waits behind it, in order
                return
            super()._write(data[start:start + SLICE])

    def _flushSendBIO(self):
        while True:
            try:
                out = self._tlsConnection.bio_read(2 * SLICE)
            except SSL.WantReadError:
                return
            self.transport.write(out)
            if len(out) < 2 * SLICE:
                return


class SlicedTLSFactory(TLSMemoryBIOFactory):
    """TLS around a factory's protocols, with ``SlicedTLSTransport``."""

    protocol = SlicedTLSTransport
