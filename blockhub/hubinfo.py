"""HubInfo: what a hub says about itself, signed by the hub.

The gateway forwards HubInfo but cannot forge or alter it (the Tahoe-LAFS introducer
stance): every receiver checks the hub's own signature.  The body is
``{"id", "name", "meta", "seq", "endpoint"?}``; ``seq`` grows with every new version so
an old copy never replaces a newer one, and ``endpoint`` (``HOST:PORT``) appears only
when the gateway runs in open mode.
"""

import ipaddress
from typing import Any

import attrs

from blockhub.errors import BadMessage
from blockhub.identity import Identity
from blockhub.wire import canonical, envelope
from blockhub.wire.schema import Dict, Id, Int, Optional, Str, check_fields

MAX_NAME = 64
MAX_META_BYTES = 2048

_FIELDS = {"id": Id(), "name": Str(MAX_NAME), "meta": Dict(32), "seq": Int(0),
           "endpoint": Optional(Str(64))}


def parse_endpoint(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (IPv6 in brackets) into a literal IP and a port."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    try:
        ip = ipaddress.ip_address(host)
        number = int(port)
    except ValueError:
        raise BadMessage(f"not an IP:PORT endpoint: {text[:64]!r}")
    if not sep or not 0 < number < 65536:
        raise BadMessage(f"not an IP:PORT endpoint: {text[:64]!r}")
    return str(ip), number


def format_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_address(address: object) -> str:
    """``HOST:PORT`` for an IPv4 or IPv6 Twisted address, IPv6 in brackets."""
    return format_endpoint(getattr(address, "host", "?"), getattr(address, "port", 0))


@attrs.frozen
class HubInfo:
    id: str
    name: str
    meta: dict[str, Any]
    seq: int
    endpoint: str | None
    signed: envelope.Envelope = attrs.field(eq=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return self.signed.to_json()


def make_hubinfo(identity: Identity, name: str, seq: int, meta: dict[str, Any] | None = None,
                 endpoint: str | None = None) -> HubInfo:
    body = {"id": identity.id, "name": name[:MAX_NAME], "meta": meta or {}, "seq": seq}
    if endpoint is not None:
        body["endpoint"] = endpoint
    return _from_envelope(envelope.sign(identity, "hubinfo", body))


def verify_hubinfo(value: Any) -> HubInfo:
    """Check a HubInfo envelope from the wire: signature, shape, bounds, self-consistency."""
    return _from_envelope(envelope.verify(value, "hubinfo"))


def _from_envelope(env: envelope.Envelope) -> HubInfo:
    body = check_fields("hubinfo", _FIELDS, env.body)
    if body["id"] != env.signer:
        raise BadMessage("hubinfo id is not its signer")
    if len(canonical.dumps(body["meta"])) > MAX_META_BYTES:
        raise BadMessage(f"hubinfo meta is larger than {MAX_META_BYTES} bytes")
    if body["endpoint"] is not None:
        parse_endpoint(body["endpoint"])
    return HubInfo(body["id"], body["name"], body["meta"], body["seq"], body["endpoint"], env)
