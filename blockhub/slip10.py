"""SLIP-0010 key derivation for Ed25519 (hardened children only).

The identity key is derived from the BIP39 seed along ``m/302'/0'`` so the same
recovery phrase always gives the same id, and other Blockcore tools that follow
SLIP-0010 reach the same key.
"""

import hashlib
import hmac
import struct

HARDENED = 0x80000000
CURVE_KEY = b"ed25519 seed"
IDENTITY_PATH = "m/302'/0'"


def master_key(seed: bytes) -> tuple[bytes, bytes]:
    """Return (private key, chain code) of the master node for ``seed``."""
    digest = hmac.new(CURVE_KEY, seed, hashlib.sha512).digest()
    return digest[:32], digest[32:]


def child_key(key: bytes, chain: bytes, index: int) -> tuple[bytes, bytes]:
    """Return the hardened child ``index`` (already including the hardened bit)."""
    if index < HARDENED:
        raise ValueError("Ed25519 SLIP-0010 supports hardened derivation only")
    data = b"\x00" + key + struct.pack(">I", index)
    digest = hmac.new(chain, data, hashlib.sha512).digest()
    return digest[:32], digest[32:]


def parse_path(path: str) -> list[int]:
    """Turn ``m/44'/0'`` into hardened indexes; unhardened steps are refused."""
    parts = path.split("/")
    if not parts or parts[0] != "m":
        raise ValueError(f"a derivation path starts with 'm': {path!r}")
    indexes = []
    for part in parts[1:]:
        if not part.endswith(("'", "h", "H")):
            raise ValueError(f"Ed25519 needs hardened steps only: {part!r} in {path!r}")
        number = int(part[:-1])
        if not 0 <= number < HARDENED:
            raise ValueError(f"index out of range: {part!r}")
        indexes.append(number | HARDENED)
    return indexes


def derive(seed: bytes, path: str = IDENTITY_PATH) -> tuple[bytes, bytes]:
    """Return (private key seed, chain code) at ``path`` for a BIP39 ``seed``."""
    key, chain = master_key(seed)
    for index in parse_path(path):
        key, chain = child_key(key, chain, index)
    return key, chain
