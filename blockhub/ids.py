"""The text form of hub and gateway ids.

An id names a 32-byte Ed25519 public key.  Its text form is ``bh`` followed by
lowercase RFC 4648 base32 (no padding) of the key and a 4-byte BLAKE2b checksum, so
a mistyped id is rejected instead of silently naming a different hub.  Parsing is
case-insensitive and ignores surrounding white space.
"""

import base64
import functools
import hashlib

from blockhub.errors import BadId

PREFIX = "bh"
KEY_SIZE = 32
CHECKSUM_SIZE = 4
TEXT_LENGTH = len(PREFIX) + 58


def _checksum(key: bytes) -> bytes:
    return hashlib.blake2b(key, digest_size=CHECKSUM_SIZE, person=b"blockhub-id").digest()


def encode_id(key: bytes) -> str:
    """Return the text id of a raw 32-byte Ed25519 public key."""
    if len(key) != KEY_SIZE:
        raise ValueError("an Ed25519 public key is 32 bytes")
    # Every relay-raw frame names its receiver so: no copy of a key that is bytes.
    return _encode(key if type(key) is bytes else bytes(key))


@functools.lru_cache(maxsize=65536)
def _encode(key: bytes) -> str:
    # Every TLS connection names its peer by encoding the key of its certificate.
    body = base64.b32encode(key + _checksum(key)).decode("ascii").rstrip("=").lower()
    return PREFIX + body


def decode_id(text: str) -> bytes:
    """Return the raw public key named by ``text``, or raise ``BadId``."""
    if not isinstance(text, str):
        raise BadId("an id must be text")
    return _decode(text)


@functools.lru_cache(maxsize=65536)
def _decode(text: str) -> bytes:
    # Ids recur in every presence and relay frame; base32 and BLAKE2b are pure cost
    # after the first time.  Errors are not cached (lru_cache does not keep them).
    cleaned = text.strip().lower()
    if not cleaned.startswith(PREFIX) or len(cleaned) != TEXT_LENGTH:
        raise BadId(f"not a blockhub id: {text.strip()[:80]!r} (expected {TEXT_LENGTH} "
                    f"characters starting with {PREFIX!r})")
    body = cleaned[len(PREFIX):].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise BadId(f"not a blockhub id: {text.strip()[:80]!r} (bad characters)")
    key, check = raw[:KEY_SIZE], raw[KEY_SIZE:]
    if len(key) != KEY_SIZE or _checksum(key) != check:
        raise BadId(f"id checksum does not match: {text.strip()[:80]!r} (mistyped?)")
    if encode_id(key) != cleaned:
        # 58 characters carry 290 bits for 288: the last one's low 2 bits must be zero,
        # or four spellings would name one key.
        raise BadId(f"not a blockhub id: {text.strip()[:80]!r} (mistyped last character?)")
    return key


def normalise_id(text: str) -> str:
    """The one spelling of an id: checked (``BadId`` otherwise), stripped, lower case."""
    return encode_id(decode_id(text))


def is_id(text: object) -> bool:
    """True when ``text`` is a well-formed id with a valid checksum."""
    try:
        decode_id(text)  # type: ignore[arg-type]
    except BadId:
        return False
    return True


def short_id(text: str) -> str:
    """A short form for logs and tables; never used to look anything up."""
    return text[:12] + "…"
