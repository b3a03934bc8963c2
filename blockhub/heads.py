"""Signed presence heads (issue 19): a gateway's signed statement of whom it shows
online, chained, so that a gateway that shows two hubs two different pasts can be
caught with two of its own signatures.

A head (kind ``head``) is the body

    {"gateway": ID, "seq": N, "at": MS, "count": HUBS, "set": B64(32), "prev": B64(32)}

signed by the gateway's key: ``seq`` grows by one per head, ``at`` is Unix time in
milliseconds, ``set`` commits to the online set (``set_commitment``: every online hub's
signed HubInfo, in the order of their ids) and ``prev`` is the ``head_hash`` of the
head before (absent from the first).  Two heads of one key that cannot both be on one
chain (the same ``seq`` with different bodies, or a head whose ``prev`` is not the hash
of the head one ``seq`` before it) are a proof of equivocation (``conflict``); a
proof file holds the two (``proof_document``, ``check_proof``).  Pure code.
"""

import hashlib
import struct
from collections.abc import Iterable
from typing import Any

import attrs

from blockhub.errors import ProtocolError
from blockhub.identity import Identity
from blockhub.wire import canonical, envelope
from blockhub.wire.canonical import MAX_INT
from blockhub.wire.schema import Bytes, Id, Int, Optional, check_fields

_HEAD = {"gateway": Id(), "seq": Int(1, MAX_INT), "at": Int(0, MAX_INT),
         "count": Int(0, MAX_INT), "set": Bytes(32, 32), "prev": Optional(Bytes(32, 32))}
_LENGTH = struct.Struct(">I")
PROOF_KIND = "equivocation"


@attrs.frozen
class Head:
    gateway: str
    seq: int
    at: int  # milliseconds
    count: int
    set: str  # base64 of the commitment
    prev: str | None
    signed: envelope.Envelope = attrs.field(eq=False, repr=False)

    @property
    def hash(self) -> bytes:
        return head_hash(self.signed.body)

    def to_json(self) -> dict[str, Any]:
        return self.signed.to_json()


def set_commitment(hubinfos: Iterable[dict[str, Any]]) -> bytes:
    """BLAKE2b-256 (personal ``blockhub-hset``) over each online hub's signed HubInfo
    envelope, in the order of the hubs' ids: a 4-byte length, then its JCS bytes."""
    return commit_encoded((info["signer"], canonical.dumps(info)) for info in hubinfos)


def commit_encoded(encoded: Iterable[tuple[str, bytes]]) -> bytes:
    """``set_commitment`` of (signer, JCS bytes) pairs, for a gateway that keeps each
    HubInfo's bytes from one head to the next instead of encoding it again."""
    digest = hashlib.blake2b(digest_size=32, person=b"blockhub-hset")
    for _signer, data in sorted(encoded, key=lambda pair: pair[0]):
        digest.update(_LENGTH.pack(len(data)) + data)
    return digest.digest()


class SetEncoder:
    """``set_commitment`` of HubInfo objects (``hubinfo.HubInfo``), each encoded once
    while it stays in the set: encoding them all again at every head costs six times
    what hashing the kept bytes does (2,000 hubs: 12.5 ms against 2.1 ms)."""

    def __init__(self) -> None:
        self._bytes: dict[str, tuple[Any, bytes]] = {}  # id -> (its HubInfo, JCS)

    def commitment(self, infos: Iterable[Any]) -> bytes:
        cache, self._bytes = self._bytes, {}
        for info in infos:
            known = cache.get(info.id)
            data = known[1] if known is not None and known[0] is info else \
                canonical.dumps(info.signed.to_json())
            self._bytes[info.id] = (info, data)
        return commit_encoded((hub_id, data) for hub_id, (_i, data) in self._bytes.items())


def head_hash(body: dict[str, Any]) -> bytes:
    """What the next head's ``prev`` names: BLAKE2b-256 (``blockhub-head``) of JCS(body)."""
    return hashlib.blake2b(canonical.dumps(body), digest_size=32,
                           person=b"blockhub-head").digest()


def make_head(identity: Identity, seq: int, at_ms: int, count: int, commitment: bytes,
              prev: bytes | None) -> Head:
    body: dict[str, Any] = {"gateway": identity.id, "seq": seq, "at": at_ms, "count": count,
                            "set": canonical.b64(commitment)}
    if prev is not None:
        body["prev"] = canonical.b64(prev)
    return _head(envelope.sign(identity, "head", body))


def verify_head(value: Any) -> Head:
    """A head envelope, its signature and body checked; ``ProtocolError`` otherwise."""
    return _head(envelope.verify(value, "head"))


def _head(env: envelope.Envelope) -> Head:
    body = check_fields("head", _HEAD, env.body)
    if body["gateway"] != env.signer:
        raise ProtocolError("a head is signed by another key than its gateway's")
    if (body["seq"] == 1) != (body["prev"] is None):
        raise ProtocolError("a head names a previous head exactly when its seq is above 1")
    return Head(body["gateway"], body["seq"], body["at"], body["count"], body["set"],
                body["prev"], env)


def conflict(a: Head, b: Head) -> str | None:
    """Why heads ``a`` and ``b`` of one gateway cannot both be on one chain, or None."""
    if a.gateway != b.gateway:
        return None
    if a.seq == b.seq:
        return f"two different heads {a.seq}" if a.hash != b.hash else None
    low, high = (a, b) if a.seq < b.seq else (b, a)
    if high.seq == low.seq + 1 and high.prev != canonical.b64(low.hash):
        return f"head {high.seq} does not follow head {low.seq}"
    return None


def proof_document(a: Head, b: Head, reason: str) -> dict[str, Any]:
    """The proof file's content: the gateway, why, and both signed heads."""
    return {"kind": PROOF_KIND, "gateway": a.gateway, "reason": reason,
            "heads": [a.to_json(), b.to_json()]}


def check_proof(document: Any) -> str:
    """Why ``document`` proves its gateway equivocated; ``ProtocolError`` saying why
    not (a signature, a shape, or two heads that can be on one chain)."""
    if not isinstance(document, dict) or document.get("kind") != PROOF_KIND:
        raise ProtocolError(f"not a proof of equivocation (kind {PROOF_KIND!r})")
    heads = document.get("heads")
    if not isinstance(heads, list) or len(heads) != 2:
        raise ProtocolError("a proof of equivocation holds exactly two heads")
    a, b = (verify_head(h) for h in heads)
    if a.gateway != b.gateway:
        raise ProtocolError("the two heads are signed by two gateways")
    reason = conflict(a, b)
    if reason is None:
        raise ProtocolError("the two heads can be on one chain")
    return f"gateway {a.gateway} equivocated: {reason}"
