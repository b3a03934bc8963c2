"""The shared network key: admission by proof of knowledge, never sent on the wire.

The seed's "trusted gateway pre-configured with a known encryption key": the gateway
and its hubs share a 32-byte key file (hex, 0600).  On joining, a hub answers the
gateway's random challenge with an HMAC-SHA256 keyed by the network key over the
challenge and both public keys; the gateway checks it in constant time.
"""

import hashlib
import hmac
from pathlib import Path

from blockhub.errors import UserError
from blockhub.keystore import check_private

DOMAIN = b"blockhub/v1/network-key\x00"


def load_network_key(path: Path) -> bytes:
    path = Path(path)
    if not path.exists():
        raise UserError(f"network key file {path} does not exist "
                        f"(make one with: blockhub network-key --out {path})")
    check_private(path)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise UserError(f"{path} is not a network key (64 hex characters expected)")
    return key


def proof(key: bytes, challenge: bytes, gateway_key: bytes, hub_key: bytes) -> bytes:
    return hmac.new(key, DOMAIN + challenge + gateway_key + hub_key, hashlib.sha256).digest()


def check_proof(key: bytes, challenge: bytes, gateway_key: bytes, hub_key: bytes,
                given: bytes | None) -> bool:
    return given is not None and hmac.compare_digest(
        proof(key, challenge, gateway_key, hub_key), given)
