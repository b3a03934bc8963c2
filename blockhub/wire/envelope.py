"""Signed envelopes and sealed boxes.

An envelope is ``{"kind", "signer", "body", "sig"}``.  The Ed25519 signature covers
``b"blockhub/v1/" + kind + b"\\x00" + signer key + canonical(body)``, so a signature
made for one kind of message never verifies as another, nor for another signer.
A sealed box (NaCl ``SealedBox``, the recipient's Ed25519 key converted to X25519)
carries an envelope to one hub; only that hub can open it.
"""

from typing import Any

import attrs
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import SealedBox

from blockhub.errors import BadId, BadMessage, BadSeal, BadSignature
from blockhub.identity import Identity, box_public_key_for, verify_key_for
from blockhub.ids import decode_id
from blockhub.wire import canonical
from blockhub.wire.schema import Bytes, Dict, Field, Id, Str, check_fields

DOMAIN = b"blockhub/v1/"

# The kinds of signed object; each is its own signature domain.
KINDS = ("hubinfo", "handshake", "acceptance", "rejection", "gateway-record", "peer-hello",
         "cluster", "punch", "invite", "head", "key-commitment", "succession")


def signed_bytes(kind: str, signer_key: bytes, body: dict[str, Any]) -> bytes:
    if kind not in KINDS:
        raise ValueError(f"unknown envelope kind {kind!r}")
    return DOMAIN + kind.encode("ascii") + b"\x00" + signer_key + canonical.dumps(body)


_ENVELOPE_FIELDS = {"kind": Str(32, KINDS), "signer": Id(), "body": Dict(),
                    "sig": Bytes(64, 64)}


@attrs.frozen
class Envelope:
    kind: str
    signer: str
    body: dict[str, Any]
    sig: bytes

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "signer": self.signer, "body": self.body,
                "sig": canonical.b64(self.sig)}


def sign(identity: Identity, kind: str, body: dict[str, Any]) -> Envelope:
    data = signed_bytes(kind, identity.public_key, body)
    return Envelope(kind, identity.id, body, identity.sign(data))


def verify(value: Any, kind: str) -> Envelope:
    """Parse and verify an envelope of ``kind``; raise a ``ProtocolError`` otherwise."""
    checked = check_fields("envelope", _ENVELOPE_FIELDS, value)
    if checked["kind"] != kind:
        raise BadSignature(f"expected a {kind} envelope, got {checked['kind']!r}")
    try:
        signer_key = decode_id(checked["signer"])
        sig = canonical.unb64(checked["sig"])
    except (BadId, ValueError) as e:
        raise BadMessage(f"envelope: {e}")
    try:
        verify_key_for(checked["signer"]).verify(
            signed_bytes(kind, signer_key, checked["body"]), sig)
    except (BadSignatureError, ValueError, TypeError):
        raise BadSignature(f"{kind} signature does not verify for {checked['signer'][:14]}…")
    return Envelope(kind, checked["signer"], checked["body"], sig)


def seal(recipient_id: str, envelope: Envelope) -> bytes:
    """Encrypt an envelope so only ``recipient_id`` can read it."""
    return SealedBox(box_public_key_for(recipient_id)).encrypt(
        canonical.dumps(envelope.to_json()))


def open_sealed(identity: Identity, sealed: bytes, kind: str) -> Envelope:
    """Open a box addressed to ``identity`` and verify the envelope inside."""
    try:
        plain = SealedBox(identity.box_key()).decrypt(sealed)
    except (CryptoError, ValueError, TypeError):
        raise BadSeal("sealed box does not open with our key")
    return verify(canonical.loads(plain), kind)


class EnvelopeField(Field):
    """An envelope inside a message: shape only; ``verify`` checks the signature."""

    def check(self, name: str, value: Any) -> Any:
        check_fields(name, _ENVELOPE_FIELDS, value)
        return value

