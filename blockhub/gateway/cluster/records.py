"""What one gateway node tells the others through Redis, signed with its own key.

Redis is trusted to keep things available, never to keep them intact: every value a
node writes is an envelope of kind ``cluster`` signed by that node, and every value a
node reads is verified here before it is believed: a valid signature, a signer listed
in ``--cluster-keys``, the same cluster name, the body's fields and sizes, and for
messages that act (presence events, deliveries) a time inside the freshness window.
A hub's HubInfo inside is verified against the hub's own signature as well, so no node
can put words in a hub's mouth either.

Bodies (times are Unix milliseconds):

- ``node``: the heartbeat: ``seq``, ``hubs`` (how many it serves), ``record`` (its
  signed gateway record, or null), ``bans`` (every ban record it holds: hub id ->
  ``[until, set]``);
- ``hub``: one entry of a node's hub table: ``hub``, ``hubinfo``, ``since`` (when it
  joined that node);
- ``presence``: ``seq`` (the node's event number), ``event`` (joined, updated, left),
  ``hub``, ``hubinfo`` (null for left), ``since``;
- ``ban``: the operator of the node banned (``until`` ahead), unbanned (``until`` 0)
  or kicked (``kick``) a hub; ``set`` orders the records of one hub (bans.py);
- ``deliver``: a relayed handshake for a hub on another node: ``id`` (random, so that
  no delivery is made twice), ``to_node``, ``from``, ``to``, ``kind``, ``sealed``.
"""

from typing import Any

import attrs

from blockhub.errors import BadMessage, ProtocolError
from blockhub.gateway_records import check_record
from blockhub.hubinfo import HubInfo, verify_hubinfo
from blockhub.identity import Identity
from blockhub.wire import canonical, envelope
from blockhub.wire.messages import RELAYED
from blockhub.wire.schema import Bool, Bytes, Dict, Field, Id, Int, Optional, Str, check_fields

KIND = "cluster"
MAX_VALUE = 48 * 1024          # bytes: a value larger than any a node writes is refused
FRESH_MS = 60_000              # events and deliveries older (or newer) than this are refused

_COMMON = {"type": Str(16, ("node", "hub", "presence", "deliver", "ban")), "cluster": Str(64),
           "node": Id(), "time": Int()}
_BODIES: dict[str, dict[str, Field]] = {
    "node": {"seq": Int(), "hubs": Int(), "record": Optional(Dict()),
             "bans": Optional(Dict(256))},
    "hub": {"hub": Id(), "hubinfo": Dict(), "since": Int()},
    "presence": {"seq": Int(), "event": Str(16, ("joined", "updated", "left")),
                 "hub": Id(), "hubinfo": Optional(Dict()), "since": Int()},
    "deliver": {"id": Str(32), "to_node": Id(), "from": Id(), "to": Id(),
                "kind": RELAYED, "sealed": Bytes(16 * 1024)},
    "ban": {"hub": Id(), "until": Int(), "set": Int(), "kick": Bool()},
}


class Refused(ProtocolError):
    """A value from Redis that is not what a cluster node would have written."""


@attrs.frozen
class Said:
    """A verified value: who said it, what, and the HubInfo inside (verified)."""
    node: str
    type: str
    body: dict[str, Any]
    hubinfo: HubInfo | None = None


class Signer:
    """Writes this node's values."""

    def __init__(self, identity: Identity, cluster: str):
        self.identity = identity
        self.cluster = cluster

    def make(self, type_: str, now: float, **fields) -> bytes:
        body = dict(fields, type=type_, cluster=self.cluster, node=self.identity.id,
                    time=int(now * 1000))
        return canonical.dumps(envelope.sign(self.identity, KIND, body).to_json())


class Reader:
    """Reads other nodes' values: refuses anything not signed by a node in ``keys``."""

    def __init__(self, cluster: str, keys: frozenset[str]):
        self.cluster = cluster
        self.keys = keys

    def read(self, data: bytes, type_: str | tuple[str, ...],
             now: float | None = None) -> Said:
        """Verify ``data`` as a value of ``type_`` (or of one of several types); with
        ``now``, also its freshness."""
        return self._check(self._parse(data, type_), type_, now)

    def read_others(self, data: bytes, type_: str | tuple[str, ...], now: float,
                    own: str) -> Said | None:
        """As ``read``, but None for a value whose signer is ``own`` (ours: we sent it
        on a channel we hear too), found before any signature is checked."""
        value = self._parse(data, type_)
        if isinstance(value, dict) and value.get("signer") == own:
            return None
        return self._check(value, type_, now)

    @staticmethod
    def _parse(data: bytes, type_: str | tuple[str, ...]):
        what = type_ if isinstance(type_, str) else "/".join(type_)
        if len(data) > MAX_VALUE:
            raise Refused(f"a cluster {what} value of {len(data)} bytes")
        try:
            return canonical.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise Refused(f"a cluster {what} value that is not canonical JSON: {e}")

    def _check(self, value, type_: str | tuple[str, ...], now: float | None) -> Said:
        types = (type_,) if isinstance(type_, str) else type_
        what = "/".join(types)
        try:
            env = envelope.verify(value, KIND)
        except ProtocolError as e:
            raise Refused(f"a cluster {what} value: {e}")
        if env.signer not in self.keys:
            raise Refused(f"a cluster {what} value signed by {env.signer[:14]}…, "
                          "which is not in --cluster-keys")
        found = env.body.get("type")
        if found not in types:
            raise Refused(f"a cluster value of type {str(found)[:16]!r} where {what} "
                          "was expected")
        try:
            body = check_fields(f"cluster {found}", dict(_COMMON, **_BODIES[found]),
                                env.body)
        except BadMessage as e:
            raise Refused(str(e))
        if body["node"] != env.signer:
            raise Refused(f"a cluster {found} value of another node")
        if body["cluster"] != self.cluster:
            raise Refused(f"a cluster {found} value of cluster {body['cluster']!r}")
        if now is not None and abs(now * 1000 - body["time"]) > FRESH_MS:
            raise Refused(f"a cluster {found} value outside the freshness window")
        if found == "node" and body["record"] is not None:
            problem = check_record(body["record"], body["time"] // 1000)
            if problem is None and body["record"]["pubKey"] != env.signer:
                problem = "another node's"
            if problem is not None:
                raise Refused(f"a cluster heartbeat with a gateway record: {problem}")
        return Said(env.signer, found, body, self._hubinfo(body, found))

    @staticmethod
    def _hubinfo(body: dict[str, Any], type_: str) -> HubInfo | None:
        if body.get("hubinfo") is None:
            return None
        try:
            info = verify_hubinfo(body["hubinfo"])
        except ProtocolError as e:
            raise Refused(f"a cluster {type_} value: {e}")
        if info.id != body["hub"]:
            raise Refused(f"a cluster {type_} value naming one hub with another's hubinfo")
        return info
