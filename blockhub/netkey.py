"""The shared network key: admission by proof of knowledge, never sent on the wire.

A gateway pre-configured with a known key (docs/design.md): the gateway and its hubs
share a 32-byte key file (hex, 0600; ``keystore.load_network_key`` reads it).  On
joining, a hub answers the gateway's random challenge with an HMAC-SHA256 keyed by the
network key over the challenge and both public keys; the gateway checks it in constant
time.
"""

import hashlib
import hmac

DOMAIN = b"blockhub/v1/network-key\x00"


def proof(key: bytes, challenge: bytes, gateway_key: bytes, hub_key: bytes) -> bytes:
    return hmac.new(key, DOMAIN + challenge + gateway_key + hub_key, hashlib.sha256).digest()


def check_proof(key: bytes, challenge: bytes, gateway_key: bytes, hub_key: bytes,
                given: bytes | None) -> bool:
    return given is not None and hmac.compare_digest(
        proof(key, challenge, gateway_key, hub_key), given)
