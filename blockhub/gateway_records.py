"""Signed gateway records: the public list of gateways (docs/design.md).

A record is ``{"pubKey", "IP", "Port", "issued", "expires", "signature"}``, and
``next`` when the gateway committed to its next key (a commitment envelope, signed on
its own: ``succession.py``; readers of before ignore it).  The
gateway's own identity key signs the canonical bytes of every field but the signature,
in the ``gateway-record`` domain (see ``wire/envelope.py``), so a record proves that
the holder of the key vouches for the address, and cannot be moved to another key or
address.  A list is ``{"gateways": [record, ...]}``.  Pure code: time is passed in.
"""

import binascii
import ipaddress
from typing import Any

from nacl.exceptions import BadSignatureError

from blockhub.errors import BadId, BadMessage, ProtocolError
from blockhub.identity import Identity, verify_key_for
from blockhub.ids import decode_id
from blockhub.succession import Commitment, verify_commitment
from blockhub.wire import canonical, envelope
from blockhub.wire.schema import MAX_TIME

DEFAULT_DAYS = 7.0
SIGNED_FIELDS = ("pubKey", "IP", "Port", "issued", "expires")


def _body(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record[name] for name in SIGNED_FIELDS}


def make_record(identity: Identity, ip: str, port: int, now: int,
                days: float = DEFAULT_DAYS, commitment: Commitment | None = None
                ) -> dict[str, Any]:
    ip = str(ipaddress.ip_address(ip))
    if not 0 < int(port) < 65536:
        raise ValueError("port must be from 1 to 65535")
    if not 0 <= now + days * 86400 <= MAX_TIME:
        raise ValueError("the record would expire after the year 9999")
    body = {"pubKey": identity.id, "IP": ip, "Port": int(port), "issued": int(now),
            "expires": int(now + days * 86400)}
    sig = identity.sign(envelope.signed_bytes("gateway-record", identity.public_key, body))
    record = dict(body, signature=canonical.b64(sig))
    if commitment is not None:
        record["next"] = commitment.to_json()
    return record


def commitment_of(record: dict[str, Any]) -> Commitment | None:
    """The commitment to a next key a valid record carries (``check_record`` checked
    it), or None."""
    return verify_commitment(record["next"]) if "next" in record else None


def _is_int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _shape_problem(record: dict[str, Any]) -> str | None:
    """Why a record's fields have the wrong types or bounds, before any of them is used."""
    if not isinstance(record["pubKey"], str):
        return "bad pubKey"
    if not isinstance(record["IP"], str):
        return "malformed field"
    if not _is_int(record["Port"], 1, 65535):
        return "bad Port"
    if not all(_is_int(record[f], 0, MAX_TIME) for f in ("issued", "expires")):
        return "bad issued or expires"
    if not isinstance(record["signature"], str):
        return "malformed field"
    return None


def check_record(record: Any, now: int) -> str | None:
    """None when the record is well-formed, correctly signed and unexpired; else why not.
    Total: any JSON value gives an answer, never an exception, so one malformed record
    in a list is judged alone."""
    if not isinstance(record, dict):
        return "not an object"
    missing = [f for f in SIGNED_FIELDS + ("signature",) if f not in record]
    if missing:
        return f"missing {', '.join(missing)}"
    problem = _shape_problem(record)
    if problem:
        return problem
    try:
        key = decode_id(record["pubKey"])
        ipaddress.ip_address(record["IP"])
        sig = canonical.unb64(record["signature"])
        verify_key_for(record["pubKey"]).verify(
            envelope.signed_bytes("gateway-record", key, _body(record)), sig)
    except BadId:
        return "bad pubKey"
    except (ValueError, TypeError, binascii.Error, BadMessage):
        return "malformed field"
    except BadSignatureError:
        return "bad signature"
    if "next" in record:
        try:
            if verify_commitment(record["next"]).gateway != record["pubKey"]:
                return "next: another key's commitment"
        except ProtocolError as e:
            return f"next: {e}"
    if record["expires"] <= now:
        return "expired"
    if record["issued"] > now + 300:
        return "issued in the future"
    return None


def records_of(document: Any) -> list[Any]:
    """The records in a list document, or ValueError when it is not one."""
    if not isinstance(document, dict) or not isinstance(document.get("gateways"), list):
        raise ValueError('expected {"gateways": [...]}')
    gateways: list[Any] = document["gateways"]
    return gateways
