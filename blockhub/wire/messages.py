"""Every message type that crosses a socket, with its type code and body schema.

A message is a kind and a dict of checked fields.  ``encode`` gives a frame;
``decode`` turns a (type code, body) pair from ``FrameDecoder`` into a ``Message``
or raises a ``ProtocolError``.  Adding a message means adding one line here and a
paragraph in docs/protocol.md.
"""

import re
import struct
from typing import Any

import attrs

from blockhub.errors import BadFrame
from blockhub.ids import KEY_SIZE, decode_id, encode_id
from blockhub.wire import canonical
from blockhub.wire.envelope import EnvelopeField
from blockhub.wire.features import FeatureList
from blockhub.wire.framing import DEFAULT_MAX_FRAME, HEADER, LENGTH, VERSION, encode_frame
from blockhub.wire.schema import (
    MAX_TIME,
    Bool,
    Bytes,
    Dict,
    Field,
    Id,
    Int,
    Optional,
    Str,
    check_fields,
)

ADDRESS = Str(300)
MAX_REASON = 500  # characters of a refusal or error reason
MAX_TEXT = 60 * 1024  # characters of a peer message's text
REASON = Str(MAX_REASON)
TIME = Int(0, MAX_TIME)  # seconds since 1970, never past what datetime can show
# rejection and punch: features rejection/1 and punch/1 (features.RELAYED_KIND)
RELAYED = Str(16, ("request", "acceptance", "rejection", "punch"))
FEATURES = Optional(FeatureList())  # what the sender speaks (wire/features.py)
CIRCUIT = Int(1, 2**31 - 1)  # a circuit's number, the same at both of its hubs
MAX_CHUNK = 32 * 1024  # bytes of one circuit-data frame's payload
CIRCUIT_DATA = 15  # the one binary frame: circuit number (4 bytes), then the payload
_CIRCUIT_NUMBER = struct.Struct(">I")
# raw-relay/1: ``relay`` and ``deliver`` as binary frames, whose body is a hub's raw
# 32-byte key (the receiver of a relay, the sender of a delivery), one byte of kind (its
# index in RAW_KINDS) and the sealed box itself: routed without JSON or base64.
RELAY_RAW, DELIVER_RAW = 29, 31
RAW_KINDS = ("request", "acceptance", "rejection", "punch")
_RAW_KIND = {kind: bytes([i]) for i, kind in enumerate(RAW_KINDS)}
MAX_SEALED = 16 * 1024  # bytes of a relayed box, raw or in base64

# name: (type code, body schema)
SCHEMAS: dict[str, tuple[int, dict[str, Field]]] = {
    # gateway <-> hub
    "hello": (1, {"gateway": Id(), "observed": ADDRESS, "challenge": Bytes(32, 32),
                  "mode": Str(16, ("private", "open")), "time": TIME, "features": FEATURES}),
    "join": (2, {"hubinfo": EnvelopeField(), "proof": Optional(Bytes(32, 32)),
                 "features": FEATURES}),
    "welcome": (3, {"online": Int(0, 10**7)}),
    "refused": (4, {"reason": REASON}),
    "presence": (5, {"event": Str(16, ("joined", "updated", "left")), "hub": Id(),
                     "hubinfo": Optional(EnvelopeField())}),
    "update": (6, {"hubinfo": EnvelopeField()}),
    "ping": (7, {"n": Int()}),
    "pong": (8, {"n": Int()}),
    "shutdown": (9, {"reason": REASON}),
    "relay": (10, {"to": Id(), "kind": RELAYED, "sealed": Bytes(MAX_SEALED)}),
    "deliver": (11, {"from": Id(), "kind": RELAYED, "sealed": Bytes(MAX_SEALED)}),
    "relay-refused": (12, {"to": Id(), "reason": REASON}),
    "circuit-open": (13, {"to": Id()}),
    "circuit-ready": (14, {"circuit": CIRCUIT, "peer": Id()}),
    # 15: circuit-data, binary (encode_circuit_data, decode); 29 relay-raw and 31
    # deliver-raw too (raw-relay/1: encode_relay_raw, encode_deliver_raw, decode)
    "circuit-credit": (16, {"circuit": CIRCUIT, "bytes": Int(1, 2**31 - 1)}),
    "circuit-close": (17, {"circuit": CIRCUIT, "reason": REASON}),
    "circuit-refused": (18, {"to": Id(), "reason": REASON}),
    # heads/1: the gateway's signed head, and the HubInfo seq it keeps of ours
    "head": (19, {"head": EnvelopeField()}),
    "kept": (26, {"seq": Int()}),
    # succession/1: the gateway's commitment to its next key, and its move to it
    "next-key": (27, {"commitment": EnvelopeField()}),
    "succession": (28, {"succession": Dict()}),
    # hub <-> hub
    "peer-hello": (20, {"hello": EnvelopeField(), "features": FEATURES}),
    "peer-request": (21, {"sealed": Bytes(16 * 1024), "features": FEATURES}),
    "peer-ready": (22, {"status": Str(16, ("connected", "pending", "rejected")),
                        "reason": Optional(REASON), "features": FEATURES}),
    "message": (23, {"seq": Int(1), "text": Str(MAX_TEXT), "at": TIME}),
    "ack": (24, {"seq": Int(1)}),
    "peer-head": (25, {"head": EnvelopeField()}),  # heads/1: a gateway's, gossiped
    "error": (30, {"reason": REASON, "fatal": Bool()}),
}
_BY_CODE = {code: (name, spec) for name, (code, spec) in SCHEMAS.items()}
assert len(_BY_CODE) == len(SCHEMAS), "type codes must be unique"
assert set(RAW_KINDS) == set(RELAYED.choices), "a raw kind byte for every relayed kind"


@attrs.frozen
class Message:
    kind: str
    fields: dict[str, Any] = attrs.field(factory=dict)

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]


def make(kind: str, /, **fields: Any) -> Message:
    """Build a message, checking its fields as the receiver will."""
    _code, spec = SCHEMAS[kind]
    return Message(kind, check_fields(kind, spec, fields))


def encode(message: Message, max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    code, _spec = SCHEMAS[message.kind]
    body = {k: v for k, v in message.fields.items() if v is not None}
    return encode_frame(code, canonical.dumps(body), max_frame)


_DELIVER = SCHEMAS["deliver"][0]


def encode_deliver(sender: str, kind: str, sealed: str) -> bytes:
    """The ``deliver`` frame of a relay, made without the general encoder: it is the
    gateway's most frequent frame, and its canonical form is known in advance.  The
    three fields were checked where they came from (an id, a relayed kind, base64),
    none holds a character JSON escapes, and the keys are in JCS order already; a test
    holds it to ``encode``'s bytes."""
    body = f'{{"from":"{sender}","kind":"{kind}","sealed":"{sealed}"}}'.encode("ascii")
    return encode_frame(_DELIVER, body)


PING, PONG = SCHEMAS["ping"][0], SCHEMAS["pong"][0]
_PING_BODY = re.compile(rb'\{"n":(0|[1-9][0-9]{0,15})\}')


def ping_number(body: bytes) -> int:
    """The ``n`` of a ping's body.  Every connection answers a ping a period, and 10,000
    idle hubs make that most of a gateway's work at rest: the canonical body is read by
    a pattern, and anything else by ``decode`` (which refuses what is not a ping)."""
    match = _PING_BODY.fullmatch(body)
    if match is not None and (n := int(match[1])) <= canonical.MAX_INT:
        return n
    checked: int = decode(PING, body)["n"]
    return checked


def encode_pong(n: int) -> bytes:
    """The pong of ping ``n``, from its known canonical form (a test holds it to
    ``encode``'s bytes)."""
    return encode_frame(PONG, b'{"n":%d}' % n)


def encode_circuit_data(circuit: int, data: bytes) -> bytes:
    """A circuit-data frame: raw bytes, never JSON (the hubs' TLS records ride in it)."""
    if not 0 < len(data) <= MAX_CHUNK:
        raise ValueError(f"circuit data of {len(data)} bytes (1 to {MAX_CHUNK})")
    return encode_frame(CIRCUIT_DATA, _CIRCUIT_NUMBER.pack(circuit) + data)


def encode_relay_raw(to: str, kind: str, sealed: bytes) -> bytes:
    """A relay-raw frame: the box ``sealed`` for hub ``to``, in binary (raw-relay/1)."""
    return _raw_frame(RELAY_RAW, decode_id(to), kind, sealed)


def encode_deliver_raw(sender: str, kind: str, sealed: bytes) -> bytes:
    """A deliver-raw frame: the box ``sealed`` from hub ``sender``, in binary."""
    return _raw_frame(DELIVER_RAW, decode_id(sender), kind, sealed)


def _raw_frame(code: int, key: bytes, kind: str, sealed: bytes) -> bytes:
    if not 0 < len(sealed) <= MAX_SEALED:
        raise ValueError(f"a relayed box of {len(sealed)} bytes (1 to {MAX_SEALED})")
    return b"".join((HEADER.pack(2 + KEY_SIZE + 1 + len(sealed), VERSION, code), key,
                     _RAW_KIND[kind], sealed))


def decode(type_code: int, body: bytes) -> Message:
    if type_code == CIRCUIT_DATA:
        return _circuit_data(body)
    if type_code == RELAY_RAW:
        return _raw("relay-raw", "to", body)
    if type_code == DELIVER_RAW:
        return _raw("deliver-raw", "from", body)
    if type_code not in _BY_CODE:
        raise BadFrame(f"unknown message type {type_code}")
    kind, spec = _BY_CODE[type_code]
    return Message(kind, check_fields(kind, spec, canonical.loads(body)))


def _circuit_data(body: bytes) -> Message:
    size = len(body) - _CIRCUIT_NUMBER.size
    if not 0 < size <= MAX_CHUNK:
        raise BadFrame(f"circuit-data carries {size} bytes (1 to {MAX_CHUNK})")
    (circuit,) = _CIRCUIT_NUMBER.unpack_from(body)
    return Message("circuit-data", {"circuit": CIRCUIT.check("circuit", circuit),
                                    "data": body[_CIRCUIT_NUMBER.size:]})


def _raw(kind: str, hub: str, body: bytes) -> Message:
    key, relayed, sealed = raw_parts(kind, body)
    return Message(kind, {hub: encode_id(key), "kind": relayed, "sealed": sealed})


def raw_parts(kind: str, body: bytes) -> tuple[bytes, str, bytes]:
    """A relay-raw or deliver-raw body checked: the hub's key, the relayed kind, the
    box.  Any 32 bytes name a key, so the id made of them is valid (perhaps of no hub
    online).  The gateway routes relay-raw with it alone (no ``Message``)."""
    size = len(body) - KEY_SIZE - 1
    if not 0 < size <= MAX_SEALED:
        raise BadFrame(f"{kind} carries a box of {size} bytes (1 to {MAX_SEALED})")
    if body[KEY_SIZE] >= len(RAW_KINDS):
        raise BadFrame(f"{kind}: unknown kind {body[KEY_SIZE]}")
    return body[:KEY_SIZE], RAW_KINDS[body[KEY_SIZE]], body[KEY_SIZE + 1:]


_DATA_HEAD = HEADER.size + _CIRCUIT_NUMBER.size  # a circuit-data frame before its payload


def join_circuit_data(frame: bytearray, more: bytes) -> bool:
    """Append circuit-data frame ``more``'s payload to ``frame`` when both carry the
    same circuit and the sum fits one frame; False (``frame`` unchanged) otherwise.
    A circuit is a byte stream, so frames waiting for a slow reader may travel as one,
    and a flood of tiny frames waits at the cost of its bytes."""
    if (len(frame) <= _DATA_HEAD or len(more) <= _DATA_HEAD or frame[5] != CIRCUIT_DATA
            or more[5] != CIRCUIT_DATA or frame[6:_DATA_HEAD] != more[6:_DATA_HEAD]
            or len(frame) + len(more) - 2 * _DATA_HEAD > MAX_CHUNK):
        return False
    frame += memoryview(more)[_DATA_HEAD:]
    frame[:LENGTH.size] = LENGTH.pack(len(frame) - LENGTH.size)
    return True
