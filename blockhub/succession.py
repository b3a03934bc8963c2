"""Key succession (issue 19): a gateway names its next key in advance, then moves to it
with a statement both keys sign, so its hubs follow without editing their configs, and
a thief holding only the gateway's current key cannot lead them to a key of its own.

A **commitment** (kind ``key-commitment``) is the body

    {"gateway": ID, "next": B64(BLAKE2b-256 of the next key), "at": SECONDS}

signed by the gateway's key.  Its digest hides the next key until the rotation.  A
**succession** is ``{"body": {"old": ID, "new": ID, "at": SECONDS}, "old_sig", "new_sig"}``,
each signature over the body in the ``succession`` domain by the key it names.  A hub
follows a succession only from the key it pins, only when both signatures hold, and only
to the key that key committed to before (``refusal``).  Pure code: time is passed in.
"""

import binascii
import hashlib
from typing import Any

import attrs
from nacl.exceptions import BadSignatureError

from blockhub.errors import BadId, BadMessage, ProtocolError
from blockhub.identity import Identity, verify_key_for
from blockhub.ids import decode_id
from blockhub.wire import canonical, envelope
from blockhub.wire.schema import MAX_TIME, Bytes, Dict, Id, Int, check_fields

_COMMITMENT = {"gateway": Id(), "next": Bytes(32, 32), "at": Int(0, MAX_TIME)}
_SUCCESSION = {"body": Dict(), "old_sig": Bytes(64, 64), "new_sig": Bytes(64, 64)}
_BODY = {"old": Id(), "new": Id(), "at": Int(0, MAX_TIME)}


def next_digest(next_id: str) -> bytes:
    """BLAKE2b-256 (personal ``blockhub-next``) of the next key's 32 bytes."""
    return hashlib.blake2b(decode_id(next_id), digest_size=32,
                           person=b"blockhub-next").digest()


@attrs.frozen
class Commitment:
    gateway: str
    next: str  # base64 of next_digest
    at: int
    signed: envelope.Envelope = attrs.field(eq=False, repr=False)

    def names(self, key_id: str) -> bool:
        return self.next == canonical.b64(next_digest(key_id))

    def to_json(self) -> dict[str, Any]:
        return self.signed.to_json()


def make_commitment(identity: Identity, next_id: str, now: int) -> Commitment:
    if next_id == identity.id:
        raise ValueError("the next key must be another key than the gateway's own")
    body = {"gateway": identity.id, "next": canonical.b64(next_digest(next_id)),
            "at": int(now)}
    return verify_commitment(envelope.sign(identity, "key-commitment", body).to_json())


def verify_commitment(value: Any) -> Commitment:
    """A commitment envelope, its signature and body checked; ``ProtocolError`` else."""
    env = envelope.verify(value, "key-commitment")
    body = check_fields("key-commitment", _COMMITMENT, env.body)
    if body["gateway"] != env.signer:
        raise ProtocolError("a commitment is signed by another key than its gateway's")
    return Commitment(body["gateway"], body["next"], body["at"], env)


@attrs.frozen
class Succession:
    old: str
    new: str
    at: int
    document: dict[str, Any] = attrs.field(eq=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return self.document


def _sig(identity: Identity, body: dict[str, Any]) -> str:
    return canonical.b64(identity.sign(
        envelope.signed_bytes("succession", identity.public_key, body)))


def make_succession(old: Identity, new: Identity, now: int) -> Succession:
    body = {"old": old.id, "new": new.id, "at": int(now)}
    return check_succession({"body": body, "old_sig": _sig(old, body),
                             "new_sig": _sig(new, body)})


def check_succession(value: Any) -> Succession:
    """A succession statement with both signatures checked; ``ProtocolError`` else."""
    document = check_fields("succession", _SUCCESSION, value)
    body = check_fields("succession body", _BODY, document["body"])
    if body["old"] == body["new"]:
        raise BadMessage("a succession names one key twice")
    for role in ("old", "new"):
        try:
            verify_key_for(body[role]).verify(
                envelope.signed_bytes("succession", decode_id(body[role]), body),
                canonical.unb64(document[f"{role}_sig"]))
        except (BadId, ValueError, binascii.Error):
            raise BadMessage(f"succession: a malformed {role} key or signature")
        except BadSignatureError:
            raise ProtocolError(f"the succession's {role} key did not sign it")
    return Succession(body["old"], body["new"], body["at"], dict(value))


def refusal(succession: Succession, pinned: str, commitment: Commitment | None) -> str | None:
    """Why a hub that pins ``pinned`` and saw ``commitment`` from it must not follow
    ``succession`` (both signatures already checked); None when it must."""
    if succession.old != pinned:
        return f"it moves {succession.old}, not the key we pin"
    if commitment is None:
        return f"{pinned} never committed to a next key before"
    if commitment.gateway != pinned:
        return "the commitment we hold is another gateway's"
    if not commitment.names(succession.new):
        return f"{pinned} committed to another next key than {succession.new}"
    return None
