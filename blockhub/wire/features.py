"""Feature negotiation: how a node of one version and a node of the next still talk.

Every frame and field of docs/protocol.md's base protocol is understood by every node,
and receivers keep refusing what they do not know.  Anything added later belongs to a
named feature: the opening frames (``hello``, ``peer-hello``, ``peer-request``) and
their answers (``join``, ``peer-ready``) carry the list of features each side speaks,
and a side sends a feature's frame or field only to a peer that listed it.  A side
that sent no list speaks none (a node from before negotiation).  Pure code.
"""

import re
from collections.abc import Iterable
from typing import Any

import attrs

from blockhub.errors import BadMessage
from blockhub.wire.schema import Field

# The relayed kind ``rejection`` (relay and deliver): a receiver's signed answer that it
# did not keep a request.  Gateways and hubs older than it refuse the kind.
REJECTION = "rejection/1"
# Relay circuits at the gateway: the circuit-* frames (docs/circuits.md).
CIRCUIT = "circuit/1"
# The relayed kind ``punch`` (relay and deliver): two hubs that agreed to peer tell each
# other where they can be reached and when to dial (docs/nat.md).
PUNCH = "punch/1"
# Signed presence heads: the gateway's ``head`` and ``kept`` frames, and ``peer-head``
# between peers (docs/accountability.md).
HEADS = "heads/1"
# Key succession: the gateway's ``next-key`` (its commitment to its next key) and
# ``succession`` (the move to it, signed by both keys) frames (docs/accountability.md).
SUCCESSION = "succession/1"
# Relay and delivery as binary frames (``relay-raw``, ``deliver-raw``): the gateway routes
# a box by the key at its head without reading JSON or base64 (docs/protocol.md).
RAW_RELAY = "raw-relay/1"

KNOWN = {REJECTION: "relayed kind rejection", CIRCUIT: "relay circuits",
         PUNCH: "relayed kind punch", HEADS: "signed presence heads",
         SUCCESSION: "key succession", RAW_RELAY: "binary relay frames"}
# What this version implements.
SPOKEN: tuple[str, ...] = (REJECTION, CIRCUIT, PUNCH, HEADS, SUCCESSION, RAW_RELAY)
# The relayed kinds that need a feature, at the gateway and at the receiving hub.
RELAYED_KIND: dict[str, str] = {"rejection": REJECTION, "punch": PUNCH}

MAX_FEATURES = 32
MAX_NAME = 32
_NAME = re.compile(r"[a-z][a-z0-9-]*/[1-9][0-9]{0,3}")


@attrs.frozen
class Features:
    """What a peer said it speaks.  ``listed`` is False when it sent no list at all."""

    names: frozenset[str] = frozenset()
    listed: bool = False

    def peer_has(self, feature: str) -> bool:
        return feature in self.names


NONE = Features()


def parse(value: Iterable[str] | None) -> Features:
    """A peer's checked list (``FeatureList`` checked its shape) as ``Features``.

    Every hub of a version lists the same features: the first few lists seen are kept
    and shared, so a gateway holds one copy of them rather than one per hub (about
    600 bytes each); a peer cannot make the table grow past ``_SHARED_LISTS``."""
    if value is None:
        return NONE
    names = frozenset(value)
    shared = _shared.get(names)
    if shared is None:
        shared = Features(names, listed=True)
        if len(_shared) < _SHARED_LISTS:
            _shared[names] = shared
    return shared


_SHARED_LISTS = 64
_shared: dict[frozenset[str], Features] = {}


def ours(spoken: Iterable[str] | None = SPOKEN) -> list[str] | None:
    """The list we send: sorted, checked, each name once; None (no list at all) for a
    node that plays one from before negotiation, as tests do."""
    if spoken is None:
        return None
    names = sorted(set(spoken))
    FeatureList().check("features", names)
    return names


class FeatureList(Field):
    """An array of at most ``MAX_FEATURES`` feature names (``NAME/VERSION``, lower-case
    ASCII); a name this version does not know is kept and ignored, never refused."""

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, list) or len(value) > MAX_FEATURES:
            raise BadMessage(f"{name} must be a list of at most {MAX_FEATURES} names")
        for item in value:
            if not (isinstance(item, str) and len(item) <= MAX_NAME
                    and _NAME.fullmatch(item)):
                raise BadMessage(f"{name}: {str(item)[:40]!r} is not a feature name "
                                 "(NAME/VERSION, lower-case ASCII)")
        return value
