"""Handshake requests and acceptances: build them, seal them, open and check them.

A request is signed by the asking hub A and sealed to the receiver B: A's id, B's id,
A's address as its gateway sees it, the endpoint where A accepts peers (that address
and A's listen port, when A listens), a timestamp, a random nonce and a note.  B checks
the seal, the signature, that it is the addressee, that the sender is who the
gateway (or the TLS connection) says, and the freshness window.  Replays are caught
by the caller, which remembers nonces.  An acceptance is B's answer through the gateway
when B cannot reach A: it carries B's endpoint and the nonce of the request it answers.
A rejection tells A that B did not keep its request (B's pending list was full),
naming the request's nonce and why (and, for a request whose proof of work was short,
the difficulty it needs).  A request may carry an invite: the invite's public key and
its signature over the rest of the request (the invited hub holds the invite's secret;
see ``invites``), and a proof of work (``proof_of_work``) when the receiver asks one.
A peer-hello opens a direct link between hubs that already agreed to peer: signed, not
sealed (TLS already hides it).
Pure code: the time is passed in.
"""

import ipaddress
from typing import Any

import attrs
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from blockhub.errors import BadMessage, BadSignature, StaleMessage
from blockhub.hubinfo import parse_endpoint
from blockhub.identity import Identity
from blockhub.proof_of_work import MAX_BITS
from blockhub.wire import canonical, envelope
from blockhub.wire.canonical import MAX_INT
from blockhub.wire.schema import MAX_TIME, Bytes, Field, Id, Int, Optional, Str, check_fields

DEFAULT_WINDOW = 300
MAX_NOTE = 500
MAX_REASON = 200

_REQUEST = {"from": Id(), "to": Id(), "address": Optional(Str(64)),
            "endpoint": Optional(Str(64)), "at": Int(0, MAX_TIME), "nonce": Bytes(16, 16),
            "note": Str(MAX_NOTE), "invite": Optional(Bytes(32, 32)),
            "invite_sig": Optional(Bytes(64, 64)), "pow": Optional(Int(0, MAX_INT))}
_ACCEPTANCE = {"from": Id(), "to": Id(), "endpoint": Optional(Str(64)), "at": Int(0, MAX_TIME),
               "nonce": Bytes(16, 16), "request": Bytes(16, 16)}
_REJECTION = {"from": Id(), "to": Id(), "at": Int(0, MAX_TIME), "nonce": Bytes(16, 16),
              "request": Bytes(16, 16), "reason": Str(MAX_REASON),
              "difficulty": Optional(Int(1, MAX_BITS))}
_PEER_HELLO = {"from": Id(), "to": Id(), "at": Int(0, MAX_TIME)}


@attrs.frozen
class Request:
    sender: str
    receiver: str
    endpoint: str | None
    at: int
    nonce: str
    note: str
    address: str | None = None
    invite: str | None = None  # base64 of the invite's public key, its signature checked
    pow: int | None = None  # the proof of work's counter, unchecked (the receiver knows
    # the difficulty)


@attrs.frozen
class Acceptance:
    sender: str
    receiver: str
    endpoint: str | None
    at: int
    nonce: str
    request: str


def seal_request(identity: Identity, to_id: str, endpoint: str | None, now: int,
                 nonce: bytes, note: str = "", address: str | None = None,
                 invite_key: SigningKey | None = None, pow: int | None = None) -> bytes:
    """``invite_key`` signs the request for an invite; ``pow`` is a proof's counter."""
    if len(note) > MAX_NOTE:
        raise BadMessage(f"the note is longer than {MAX_NOTE} characters")
    body = {"from": identity.id, "to": to_id, "at": now, "nonce": canonical.b64(nonce),
            "note": note}
    if endpoint:
        body["endpoint"] = endpoint
    if address:
        body["address"] = address
    if pow is not None:
        body["pow"] = pow
    if invite_key is not None:
        public = bytes(invite_key.verify_key)
        body["invite"] = canonical.b64(public)
        signed = envelope.signed_bytes("invite", public, body)
        body["invite_sig"] = canonical.b64(invite_key.sign(signed).signature)
    return envelope.seal(to_id, envelope.sign(identity, "handshake", body))


def _check_invite(body: dict[str, Any]) -> None:
    """The invite key's signature covers the whole request but itself."""
    if (body["invite"] is None) != (body["invite_sig"] is None):
        raise BadMessage("handshake has one of invite and invite_sig without the other")
    if body["invite"] is None:
        return
    public = canonical.unb64(body["invite"])
    rest = {k: v for k, v in body.items() if k != "invite_sig" and v is not None}
    try:
        VerifyKey(public).verify(envelope.signed_bytes("invite", public, rest),
                                 canonical.unb64(body["invite_sig"]))
    except (BadSignatureError, ValueError):
        raise BadSignature("the invite signature does not verify")


def seal_acceptance(identity: Identity, to_id: str, endpoint: str | None, now: int,
                    nonce: bytes, request_nonce: str) -> bytes:
    body = {"from": identity.id, "to": to_id, "at": now, "nonce": canonical.b64(nonce),
            "request": request_nonce}
    if endpoint:
        body["endpoint"] = endpoint
    return envelope.seal(to_id, envelope.sign(identity, "acceptance", body))


@attrs.frozen
class Rejection:
    sender: str
    receiver: str
    at: int
    nonce: str
    request: str
    reason: str
    difficulty: int | None = None  # the bits a request needs, when its work was short


def seal_rejection(identity: Identity, to_id: str, now: int, nonce: bytes,
                   request_nonce: str, reason: str, difficulty: int | None = None) -> bytes:
    body = {"from": identity.id, "to": to_id, "at": now, "nonce": canonical.b64(nonce),
            "request": request_nonce, "reason": reason[:MAX_REASON]}
    if difficulty is not None:
        body["difficulty"] = difficulty
    return envelope.seal(to_id, envelope.sign(identity, "rejection", body))


def open_body(identity: Identity, sealed: bytes, kind: str, fields: dict[str, Field],
              sender: str | None, now: int, window: int) -> dict[str, Any]:
    """A sealed, signed body for ``identity`` from ``sender``, checked: its fields,
    signer, addressee, freshness and any endpoint (an IP and a port)."""
    env = envelope.open_sealed(identity, sealed, kind)
    body = check_fields(kind, fields, env.body)
    if body["from"] != env.signer:
        raise BadMessage(f"{kind} is signed by another hub than its sender")
    if sender is not None and env.signer != sender:
        raise BadMessage(f"{kind} came from another hub than its signer")
    if body["to"] != identity.id:
        raise BadMessage(f"{kind} is addressed to another hub")
    if abs(now - body["at"]) > window:
        raise StaleMessage(f"{kind} timestamp is {now - body['at']}s away from our clock "
                           f"(window {window}s)")
    if body.get("endpoint") is not None:
        host, _port = parse_endpoint(body["endpoint"])
        if body.get("address") not in (None, host):
            raise BadMessage(f"{kind} endpoint is not at its address")
    if body.get("address") is not None:
        try:
            ipaddress.ip_address(body["address"])
        except ValueError:
            raise BadMessage(f"{kind} address is not an IP address")
    return body


def open_request(identity: Identity, sealed: bytes, sender: str | None, now: int,
                 window: int = DEFAULT_WINDOW) -> Request:
    """Open and check a request addressed to ``identity`` from ``sender``."""
    b = open_body(identity, sealed, "handshake", _REQUEST, sender, now, window)
    _check_invite(b)
    return Request(b["from"], b["to"], b["endpoint"], b["at"], b["nonce"], b["note"],
                   b["address"], b["invite"], b["pow"])


def open_acceptance(identity: Identity, sealed: bytes, sender: str | None, now: int,
                    window: int = DEFAULT_WINDOW) -> Acceptance:
    b = open_body(identity, sealed, "acceptance", _ACCEPTANCE, sender, now, window)
    return Acceptance(b["from"], b["to"], b["endpoint"], b["at"], b["nonce"], b["request"])


def open_rejection(identity: Identity, sealed: bytes, sender: str | None, now: int,
                   window: int = DEFAULT_WINDOW) -> Rejection:
    b = open_body(identity, sealed, "rejection", _REJECTION, sender, now, window)
    return Rejection(b["from"], b["to"], b["at"], b["nonce"], b["request"], b["reason"],
                     b["difficulty"])


def sign_peer_hello(identity: Identity, to_id: str, now: int) -> envelope.Envelope:
    return envelope.sign(identity, "peer-hello", {"from": identity.id, "to": to_id,
                                                  "at": now})


def check_peer_hello(identity: Identity, value: Any, sender: str | None, now: int,
                     window: int = DEFAULT_WINDOW) -> None:
    """Check a peer-hello envelope for ``identity`` from the hub ``sender`` that the TLS
    connection proved; ``StaleMessage`` when its time is outside the window."""
    env = envelope.verify(value, "peer-hello")
    body = check_fields("peer-hello", _PEER_HELLO, env.body)
    if env.signer != sender or body["from"] != sender:
        raise BadMessage("peer-hello is not signed by the connected hub")
    if body["to"] != identity.id:
        raise BadMessage("peer-hello is addressed to another hub")
    if abs(now - body["at"]) > window:
        raise StaleMessage(f"peer-hello timestamp is {now - body['at']}s away from our "
                           f"clock (window {window}s)")
