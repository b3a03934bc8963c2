"""Signed gateway records: the seed's public list of gateways.

A record is ``{"pubKey", "IP", "Port", "issued", "expires", "signature"}``.  The
gateway's own identity key signs the canonical bytes of every field but the signature,
in the ``gateway-record`` domain (see ``wire/envelope.py``), so a record proves that
the holder of the key vouches for the address, and cannot be moved to another key or
address.  A list is ``{"gateways": [record, ...]}``.  Pure code: time is passed in.
"""

import binascii
import ipaddress

from nacl.exceptions import BadSignatureError

from blockhub.errors import BadId
from blockhub.identity import Identity, verify_key_for
from blockhub.ids import decode_id
from blockhub.wire import canonical, envelope

DEFAULT_DAYS = 7.0
SIGNED_FIELDS = ("pubKey", "IP", "Port", "issued", "expires")


def _body(record: dict) -> dict:
    return {name: record[name] for name in SIGNED_FIELDS}


def make_record(identity: Identity, ip: str, port: int, now: int,
                days: float = DEFAULT_DAYS) -> dict:
    ip = str(ipaddress.ip_address(ip))
    if not 0 < int(port) < 65536:
        raise ValueError("port must be from 1 to 65535")
    body = {"pubKey": identity.id, "IP": ip, "Port": int(port), "issued": int(now),
            "expires": int(now + days * 86400)}
    sig = identity.sign(envelope.signed_bytes("gateway-record", identity.public_key, body))
    return dict(body, signature=canonical.b64(sig))


def check_record(record, now: int) -> str | None:
    """None when the record is well-formed, correctly signed and unexpired; else why not."""
    if not isinstance(record, dict):
        return "not an object"
    missing = [f for f in SIGNED_FIELDS + ("signature",) if f not in record]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        key = decode_id(record["pubKey"])
        ipaddress.ip_address(record["IP"])
        if not isinstance(record["Port"], int) or not 0 < record["Port"] < 65536:
            return "bad Port"
        if not all(isinstance(record[f], int) for f in ("issued", "expires")):
            return "bad issued or expires"
        sig = canonical.unb64(record["signature"])
        verify_key_for(record["pubKey"]).verify(
            envelope.signed_bytes("gateway-record", key, _body(record)), sig)
    except BadId:
        return "bad pubKey"
    except (ValueError, TypeError, binascii.Error):
        return "malformed field"
    except BadSignatureError:
        return "bad signature"
    if record["expires"] <= now:
        return "expired"
    if record["issued"] > now + 300:
        return "issued in the future"
    return None


def records_of(document) -> list:
    """The records in a list document, or ValueError when it is not one."""
    if not isinstance(document, dict) or not isinstance(document.get("gateways"), list):
        raise ValueError('expected {"gateways": [...]}')
    return document["gateways"]
