"""The ways this hub reaches a peer, tried in order: a direct dial to the address it
knows, then a punched direct path through NAT (``Punching``, docs/nat.md), then a
relay circuit through the gateway (docs/circuits.md).

With ``--peer-path relay`` a hub never dials: every peering runs over a circuit, so no
peer learns its address.  A circuit is asked for only by the side that is the TLS
client (the requester of a handshake, the dialer of a peering); the other side keeps
listening for one (``Circuits.listen``) while it waits for that peer.  A direct dial
that the peer answers (rejected, pending) is an answer, not a reason to try a circuit.
"""

from twisted.logger import Logger

from blockhub.errors import Refused
from blockhub.wire.canonical import b64

log = Logger()

AUTO, RELAY = "auto", "relay"  # what --peer-path may be
DIRECT, RELAYED = "direct", "relayed"  # how a link was made


class PeerPaths:
    def __init__(self, peers, circuits, store, peer_path: str = AUTO, punching=None,
                 upgrades=None):
        self.peers = peers  # direct dials, the opening frame, recording a peering
        self.circuits = circuits
        self.store = store
        self.relay_only = peer_path == RELAY
        self.punching = punching  # None: this hub never punches (tests of the rest)
        self.upgrades = upgrades  # moves relayed peerings onto punched paths, or None

    def path_changed(self, hub_id: str, path: str | None) -> None:
        """A peering's link came up on ``path``, or went (None)."""
        if self.upgrades is not None:
            self.upgrades.path_changed(hub_id, path)

    def dial_for(self, machine, endpoint: str | None, no_endpoint: str,
                 relay: bool = False) -> None:
        """Reach the other hub of a request (``machine``) and tell it how that went:
        directly when we may and know where, then over a circuit when ``relay`` (we
        are the TLS client).  The hub that reached the other keeps the peering up."""
        peer = machine.peer

        def answered(result, path):
            status, reason = result
            if status != "connected":
                machine.dial_failed(f"{status}: {reason}")
                return
            self.peers.established(peer, endpoint, dialer=True, path=path)
            log.info("peer link with {peer} made {how}", peer=peer,
                     how="directly" if path == DIRECT else "over a relay circuit")
            machine.peer_connected()

        def by_circuit(why: str) -> None:
            if not relay:
                machine.dial_failed(why)
                return
            _proto, d = self.circuits.connect(peer, self.peers.hello_for(peer))
            d.addCallbacks(answered, lambda f: machine.dial_failed(
                f"{why}; no relay circuit either ({f.getErrorMessage()})"),
                callbackArgs=(RELAYED,))

        def punched(result):
            _proto, address = result
            self.peers.established(peer, address or endpoint, dialer=True, path=DIRECT)
            log.info("peer link with {peer} made by punching through NAT", peer=peer)
            machine.peer_connected()

        def by_punch(why: str) -> None:
            if not (relay and self.punching is not None and self.punching.possible()):
                by_circuit(why)
                return
            self.punching.punch(peer).addCallbacks(punched, lambda f: by_circuit(
                f"{why}; punching failed ({f.getErrorMessage()})"))

        if self.relay_only or not endpoint:
            by_circuit("this hub only uses relay circuits" if self.relay_only
                       else no_endpoint)
            return
        d = self.peers.dial(peer, endpoint, self.peers.hello_for(peer))
        d.addCallbacks(answered, lambda f: by_punch(f.getErrorMessage()),
                       callbackArgs=(DIRECT,))

    def request_directly(self, out, endpoint: str, sealed: bytes, relay) -> None:
        """Open mode: make the request ``out`` on a direct connection to the receiver,
        which answers at once; when it cannot be reached, ``relay()`` the request."""
        d = self.peers.dial(out.peer, endpoint, ("peer-request", {"sealed": b64(sealed)}))

        def answered(result):
            status, reason = result
            out.relayed()
            if status == "connected":
                self.peers.established(out.peer, endpoint, dialer=True)
                out.peer_connected()
            elif status == "rejected":
                out.refused(reason or "rejected")

        def failed(failure):
            log.info("direct request to {peer} failed ({error}); relaying instead",
                     peer=out.peer, error=failure.getErrorMessage())
            if relay():
                out.relayed()

        d.addCallbacks(answered, failed)

    def wait_for(self, hub_id: str) -> None:
        """We accepted ``hub_id`` but cannot reach it: it may reach us over a circuit."""
        self.circuits.listen(hub_id)

    def stop_waiting(self, hub_id: str) -> None:
        self.circuits.unlisten(hub_id)

    def attempt(self, hub_id: str, made):
        """One try at an established peering (``PeerLink``'s path): its stored address,
        then a circuit; but a peering that last ran over a circuit (its address did not
        answer then) or over a punched path (its port opens only to a punch) tries the
        circuit first, so it is not held up by a dial that is likely to time out; the
        relayed link is then moved onto a punched path again (``Upgrades``).
        ``made(protocol)`` hears of each connection tried, and the Deferred fires with
        the protocol of the link that opened.  A peer that answers
        (rejected, pending) is an answer: the other way is tried only when a connection
        could not be made."""
        peer = self.store.peer(hub_id)
        address = None if (peer is None or self.relay_only) else peer["address"]
        if not address:
            return self._try(self._circuit, hub_id, made)

        def direct(hub: str):
            return self.peers.open(hub, address, self.peers.hello_for(hub))

        if peer.get("path") == RELAYED or (self.punching is not None
                                           and hub_id in self.punching.punched):
            return self._try(self._circuit, hub_id, made,
                             lambda: self._try(direct, hub_id, made))
        return self._try(direct, hub_id, made, lambda: self._try(self._circuit, hub_id, made))

    @staticmethod
    def _try(connect, hub_id, made, otherwise=None):
        proto, d = connect(hub_id)
        made(proto)
        return d.addCallbacks(_opened, (lambda _f: otherwise()) if otherwise else None,
                              callbackArgs=(proto,))

    def _circuit(self, hub_id):
        return self.circuits.connect(hub_id, self.peers.hello_for(hub_id))


def _opened(result, proto):
    """peer-ready's (status, reason) as the opened protocol, or why not."""
    status, reason = result
    if status != "connected":
        raise Refused(f"{status}: {reason}")
    return proto


def path_of(proto) -> str:
    """How a live peer link runs: over a circuit or directly."""
    return RELAYED if via_of(proto) is not None else DIRECT


def via_of(proto) -> str | None:
    """The gateway a live relayed link runs through; None for a direct one."""
    address = proto.transport.getPeer()
    return address.gateway if getattr(address, "type", "") == "CIRCUIT" else None
