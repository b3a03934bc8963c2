"""What a cluster adds to ``Circuits``: circuits whose other hub is at another node.

The other hub is a ``RemoteEnd`` (``cluster/bridge.py``), a member like a hub's
connection.  Both nodes forward the ``circuit-open`` of their hub to the other; the
node that finds the two requests matched joins the circuit and says ``ready``, and
the other then joins its own half.  When both asked at once, each node holds its own
hub's request and gets the other's open: the node of the hub with the smaller id
joins, so exactly one does.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from blockhub.gateway.circuit import Circuit
from blockhub.gateway.circuit_requests import Requests

log = Logger()


class RemoteCircuits:
    """Mixed into ``Circuits``; uses its table, requests and helpers."""

    bridge: Callable[[], Any]
    presence: Any
    requests: Requests
    table: dict[int, Circuit]
    by_pair: dict[frozenset, Circuit]
    peers: dict[str, set[str]]

    if TYPE_CHECKING:  # what Circuits defines
        def _refuse(self, conn, target: str, reason: str) -> None: ...
        def _takes_circuits(self, conn) -> bool: ...
        def _join(self, first, second) -> Circuit: ...
        def _end(self, circuit: Circuit, reason: str, tell) -> None: ...

    def _elsewhere(self, hub: str) -> str | None:
        bridge = self.bridge()
        return bridge.node_of(hub) if bridge is not None else None

    def remote_open(self, end, target: str) -> None:
        """The hub ``end`` at another node asks for a circuit to our hub ``target``."""
        other = self.presence.connection_for(target)
        if other is None or self._elsewhere(end.peer_id) != end.node:
            self._refuse(end, target, "that hub is not online here")
            return
        if not self._takes_circuits(other):
            self._refuse(end, target, "that hub does not take circuits")
            return
        waiting = self.requests.take(target, end.peer_id)
        if waiting is None:
            self.requests.hold(end, target)
        elif target < end.peer_id:
            self._join(waiting.conn, end)
        else:
            self.requests.hold(waiting.conn, end.peer_id)  # the other node joins

    def remote_ready(self, node: str, theirs: int, far: str, near: str, make_end) -> None:
        """``node`` joined its half of the circuit between its ``far`` and our ``near``
        as its number ``theirs``: join ours, or learn its number if we joined first."""
        circuit = self.by_pair.get(frozenset((far, near)))
        if circuit is not None:
            end = self.remote_end(circuit.number, node, far)
            if end is not None:
                end.theirs = theirs
                self.bridge().learn(node, theirs, circuit.number)
                return
        waiting = self.requests.take(near, far)
        if waiting is None or _remote(waiting.conn):
            end = make_end()
            end.theirs = theirs
            self.bridge().decline(end)
            return
        end = make_end()
        end.theirs = theirs
        circuit = self._join(waiting.conn, end)
        self.bridge().learn(node, theirs, circuit.number)

    def remote_refused(self, far: str, near: str, reason: str) -> None:
        request = self.requests.take(near, far)
        if request is not None and not _remote(request.conn):
            self._refuse(request.conn, far, reason)

    def remote_end(self, number: int, node: str, far: str):
        """The member of our circuit ``number`` that is ``far`` at ``node``, if any."""
        circuit = self.table.get(number)
        if circuit is None:
            return None
        for member in circuit.members:
            if _remote(member.conn) and member.conn.node == node and member.hub == far:
                return member.conn
        return None

    def remote_gone(self, hub: str) -> None:
        """A hub at another node left: its circuits here end, our hubs told."""
        for peer in list(self.peers.get(hub, ())):
            circuit = self.by_pair.get(frozenset((hub, peer)))
            if circuit is None:
                continue
            remote = [m for m in circuit.members if _remote(m.conn)]
            if remote and remote[0].hub == hub:
                local = [m for m in circuit.members if m not in remote]
                self._end(circuit, "the other hub left", local)
        for asker in list(self.requests.naming.get(hub, ())):
            request = self.requests.take(asker, hub)
            if request is not None and not _remote(request.conn):
                self._refuse(request.conn, hub, "that hub left")

    def remote_lost(self) -> None:
        """The cluster is away: no circuit to another node survives it."""
        for circuit in list(self.table.values()):
            remote = [m for m in circuit.members if _remote(m.conn)]
            if remote:
                local = [m for m in circuit.members if m not in remote]
                self._end(circuit, "the gateway lost its cluster", local)
        for (asker, target), request in list(self.requests.waiting.items()):
            if _remote(request.conn):
                self.requests.take(asker, target)
            elif self.presence.connection_for(target) is None:
                self.requests.take(asker, target)
                self._refuse(request.conn, target, "the gateway lost its cluster")


def _remote(conn) -> bool:
    """Is this member the hub at another node (a ``RemoteEnd``)?"""
    return getattr(conn, "node", None) is not None
