"""The approval policy (the receiver's decision in docs/design.md), as a pure function.

A request from a blocked key is refused; one from an approved key, or from an address
in an approved range, is accepted at once; anything else waits for the operator.  The
two kinds of acceptance are told apart: an address is only a claim until the hub has
reached the requester there, so the caller confirms it before revealing anything.
"""

import ipaddress
from collections.abc import Collection, Iterable

from blockhub.errors import UserError

BLOCKED, AUTO, AUTO_RANGE, PENDING = "blocked", "auto", "auto-range", "pending"


def parse_cidr(text: str) -> str:
    """Normalise an address range (``10.0.0.0/8``, ``::1/128``, or one address)."""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise UserError(f"not an address range: {text!r} (expected CIDR like 10.0.0.0/8)")


def decide(hub_id: str, address: str | None, approved_keys: Collection[str],
           approved_ranges: Iterable[str], blocked_keys: Collection[str]) -> str:
    """BLOCKED, AUTO (approved key), AUTO_RANGE (approved address range) or PENDING
    for a request from ``hub_id`` at ``address``."""
    if hub_id in blocked_keys:
        return BLOCKED
    if hub_id in approved_keys:
        return AUTO
    if address:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return PENDING
        for cidr in approved_ranges:
            network = ipaddress.ip_network(cidr)
            if ip.version == network.version and ip in network:
                return AUTO_RANGE
    return PENDING
