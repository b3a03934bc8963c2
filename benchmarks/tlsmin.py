"""The ceiling's TLS: mutual TLS 1.3 with self-signed Ed25519 certificates, as blockhub
uses, and nothing else (no pinning logic beyond accepting the certificate, no ids).

Written for the benchmarks only, on pyOpenSSL and ``cryptography`` directly, so the
ceiling does not share code with the system it is compared to.
"""

import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from zope.interface import implementer


def _self_signed():
    key = Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ceiling")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, None))
    return crypto.X509.from_cryptography(cert), crypto.PKey.from_cryptography_key(key)


def _accept(conn, cert, errno, depth, ok):
    return True


def context() -> SSL.Context:
    """A TLS 1.3-only context with a fresh Ed25519 certificate; asks for the peer's."""
    ctx = SSL.Context(SSL.TLS_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
    cert, key = _self_signed()
    ctx.use_certificate(cert)
    ctx.use_privatekey(key)
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, _accept)
    ctx.set_options(SSL.OP_NO_TICKET)
    if os.environ.get("BENCH_RELEASE_BUFFERS"):  # an experiment, off by default
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
    return ctx


@implementer(IOpenSSLServerConnectionCreator)
class Server:
    def __init__(self):
        self._ctx = context()

    def serverConnectionForTLS(self, tlsProtocol):
        return SSL.Connection(self._ctx, None)


@implementer(IOpenSSLClientConnectionCreator)
class Client:
    """One context (one certificate) shared by every connection of a load process."""

    def __init__(self):
        self._ctx = context()

    def clientConnectionForTLS(self, tlsProtocol):
        return SSL.Connection(self._ctx, None)
