"""Relay circuits between hubs on different nodes (docs/cluster.md): each node runs
an ordinary circuit (``circuits.py``) between its own hub and a ``RemoteEnd``
standing for the hub at the other node, and the two nodes pass the frames of their
circuits to each other on the other node's ``circuit:ID`` channel.

That channel has a subscriber connection of its own (the ``circuits`` group), so a
busy circuit that Redis cuts off never costs a node its presence feed; what one
circuit has in flight between nodes is bounded by the hubs' end-to-end credit window,
and each node checks both members' flow and rate, as for circuits between its own
hubs.

Every message is a NaCl box from the sending node's key to the receiving node's (the
X25519 forms of their Ed25519 ids), so Redis can neither read the ciphertext the hubs
exchange nor forge, alter or replay a message: each carries the sender's counter, and
a counter not above the last one taken from that node is dropped.  The sender is
named in clear first, and must be in ``--cluster-keys``.

Inside the box: counter (8 bytes), op (1), the sender's circuit number (4), the
receiver's circuit number when the sender knows it (4, else 0), the hub at the
sending node and the hub at the receiving node (60 bytes each), then the op's body.
Each node numbers its own circuits; the first ``ready`` each way tells the other.
"""

import struct

from nacl.exceptions import CryptoError
from nacl.public import Box
from twisted.logger import Logger

from blockhub.errors import BadId
from blockhub.identity import box_public_key_for
from blockhub.ids import decode_id
from blockhub.wire import messages

log = Logger()

OPEN, READY, DATA, CREDIT, CLOSE, REFUSED = range(1, 7)
_HEAD = struct.Struct(">QBII60s60s")
ID_LEN = 60
MAX_MESSAGE = 40 * 1024  # a box larger than a circuit-data frame's payload and head


def circuit_channel(node: str) -> str:
    return f"circuit:{node}"


class RemoteEnd:
    """The hub at another node, as one member of one of our circuits (or one waiting
    request): what ``circuits.py`` sends it goes to that node."""

    def __init__(self, bridge: "CircuitBridge", node: str, hub: str, near: str):
        self.bridge = bridge
        self.node = node
        self.peer_id = hub
        self.near = near  # our hub, the other member
        self.theirs = 0   # the other node's number for this circuit, once known

    def __repr__(self) -> str:
        return f"<RemoteEnd {self.peer_id[:14]}… at {self.node[:14]}…>"

    def send(self, kind: str, /, **fields) -> None:
        if kind == "circuit-ready":
            self.bridge.send(self, READY, fields["circuit"])
        elif kind == "circuit-credit":
            self.bridge.send(self, CREDIT, fields["circuit"], struct.pack(">I", fields["bytes"]))
        elif kind == "circuit-close":
            self.bridge.send(self, CLOSE, fields["circuit"], fields["reason"].encode())
        elif kind == "circuit-refused":
            self.bridge.send(self, REFUSED, 0, fields["reason"].encode())

    def send_circuit_data(self, number: int, payload: bytes) -> None:
        self.bridge.send(self, DATA, number, payload)

    def drop_low(self, key) -> None:
        """The circuit ended.  Nothing waits here (each frame went to Redis when it
        was sent); the other node's number for it is forgotten."""
        self.bridge.forget(self.node, self.theirs)


class CircuitBridge:
    def __init__(self, identity, keys: frozenset[str], backend, clock, circuits, presence):
        self.identity = identity
        self.keys = keys
        self.backend = backend
        self.circuits = circuits
        self.presence = presence
        self.clock = clock
        self._boxes: dict[str, Box] = {}
        self.counter = int(clock.seconds() * 1_000_000)  # grows across restarts too
        self.last: dict[str, int] = {}  # node -> the last counter taken from it
        self.known: dict[tuple[str, int], int] = {}  # (node, their number) -> ours
        self.refused = 0
        self.up = False

    def _box(self, node: str) -> Box:
        box = self._boxes.get(node)
        if box is None:
            box = self._boxes[node] = Box(self.identity.box_key(), box_public_key_for(node))
        return box

    # -- what circuits.py asks ------------------------------------------------------
    def node_of(self, hub: str) -> str | None:
        """The node a hub is at, if it is at another node we can reach now."""
        return self.presence.node_of(hub) if self.up else None

    def open(self, node: str, asker: str, target: str) -> None:
        """Our hub ``asker`` asks for a circuit to ``target`` at ``node``."""
        self.send(RemoteEnd(self, node, target, asker), OPEN, 0)

    def decline(self, end: RemoteEnd) -> None:
        """``end``'s node joined a circuit our hub no longer asks for."""
        self.send(end, CLOSE, 0, b"that hub no longer asks for this circuit")

    def send(self, end: RemoteEnd, op: int, number: int, body: bytes = b"") -> None:
        """One message to ``end``'s node about our circuit ``number`` (0: none yet)."""
        if not self.up:
            return
        self.counter += 1
        plain = _HEAD.pack(self.counter, op, number, end.theirs, end.near.encode(),
                           end.peer_id.encode()) + body
        sealed = self.identity.id.encode() + bytes(self._box(end.node).encrypt(plain))
        self.backend.publish(circuit_channel(end.node), sealed).addErrback(
            lambda f: log.warn("cluster: a circuit message was not sent: {error}",
                               error=str(f.value)))

    # -- what other nodes send ------------------------------------------------------
    def received(self, payload: bytes) -> None:
        try:
            node, head, body = self._open(payload)
        except ValueError as e:
            self.refused += 1
            log.warn("cluster: refused a circuit message: {error}", error=str(e))
            return
        counter, op, theirs, ours, far, near = head
        if counter <= self.last.get(node, 0):
            self.refused += 1
            log.warn("cluster: a circuit message from {node} came again", node=node)
            return
        self.last[node] = counter
        self._dispatch(node, op, theirs, ours, far.decode(), near.decode(), body)

    def _open(self, payload: bytes):
        if len(payload) > MAX_MESSAGE or len(payload) < ID_LEN + _HEAD.size:
            raise ValueError(f"{len(payload)} bytes")
        node = payload[:ID_LEN].decode("ascii", "replace")
        if node not in self.keys or node == self.identity.id:
            raise ValueError(f"from {node[:14]}…, which is not another node's key")
        try:
            decode_id(node)
            plain = self._box(node).decrypt(payload[ID_LEN:])
        except (BadId, CryptoError, ValueError) as e:
            raise ValueError(f"from {node[:14]}…: {e}")
        if len(plain) < _HEAD.size:
            raise ValueError("too short")
        return node, _HEAD.unpack_from(plain), plain[_HEAD.size:]

    def _dispatch(self, node, op, theirs, ours, far, near, body) -> None:
        """``far`` is their hub, ``near`` ours (as the sender names them)."""
        circuits = self.circuits
        if op == OPEN:
            circuits.remote_open(RemoteEnd(self, node, far, near), near)
        elif op == READY:
            circuits.remote_ready(node, theirs, far, near,
                                  lambda: RemoteEnd(self, node, far, near))
        elif op == REFUSED:
            circuits.remote_refused(far, near, body.decode("utf-8", "replace"))
        else:
            number = ours or self.known.get((node, theirs), 0)
            end = circuits.remote_end(number, node, far)
            if end is None:
                circuits.counters.circuit_unknown += 1
                return
            if op == DATA and len(body) <= messages.MAX_CHUNK:
                circuits.data(end, messages.Message("circuit-data", {
                    "circuit": number, "data": body}))
            elif op == CREDIT and len(body) == 4:
                circuits.credit(end, messages.Message("circuit-credit", {
                    "circuit": number, "bytes": struct.unpack(">I", body)[0]}))
            elif op == CLOSE:
                circuits.close(end, messages.Message("circuit-close", {
                    "circuit": number,
                    "reason": body.decode("utf-8", "replace")[:messages.MAX_REASON]}))

    def learn(self, node: str, theirs: int, ours: int) -> None:
        self.known[(node, theirs)] = ours

    def forget(self, node: str, theirs: int) -> None:
        self.known.pop((node, theirs), None)

    def state(self, up: bool) -> None:
        """The cluster link is up or down: circuits to other nodes cannot survive it."""
        self.up = up
        if not up:
            self.known.clear()
            self.circuits.remote_lost()
