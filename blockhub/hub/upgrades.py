"""Moving relayed peerings onto direct paths while they run (docs/nat.md).

While a peering this hub dials runs over a relay circuit, it keeps trying to punch a
direct path (``Punching``) in the background: soon after the circuit came up, then
less and less often (doubling, with jitter, up to ``max_delay``), as each try costs
the gateway two relayed boxes from us and one from the peer.  A punched link that opens
is attached like any new link of the peering: the relayed one is closed, and what it
carried unacknowledged is sent again on the new one and dropped by the receiver if
it already has it, so nothing is lost, doubled or reordered.  When the direct link dies
the peering falls back to a circuit the usual way (``PeerLink``), and the tries begin
again.  Only a peer that listens (it gave an address) is tried.
"""

import random as _random

from twisted.logger import Logger

from blockhub.backoff import backoff_delay
from blockhub.hub.peer_paths import RELAYED, path_of
from blockhub.timers import cancel

log = Logger()

FIRST_DELAY = 1.0  # seconds after a relayed link came up
BASE_DELAY = 5.0
MAX_DELAY = 300.0


class Upgrades:
    def __init__(self, clock, punching, store, connections: dict, established,
                 rand=_random.random,
                 first_delay: float = FIRST_DELAY, base_delay: float = BASE_DELAY,
                 max_delay: float = MAX_DELAY):
        self.clock = clock
        self.punching = punching
        self.store = store
        self.connections = connections  # hub id -> its attached peer protocol
        self.established = established  # Peers.established: records a new address
        self.rand = rand
        self.first_delay, self.base_delay, self.max_delay = first_delay, base_delay, max_delay
        self.timers: dict = {}
        self.failures: dict[str, int] = {}
        self.stopped = False

    def path_changed(self, hub_id: str, path: str | None) -> None:
        """The peering's link came up on ``path``, or went (None)."""
        if self.stopped:
            return
        if path != RELAYED:
            cancel(self.timers.pop(hub_id, None))
            if path is not None:
                self.failures.pop(hub_id, None)
            return
        peer = self.store.peer(hub_id)
        if peer is None or not peer["dialer"] or not peer["address"]:
            return
        if hub_id not in self.timers:
            self._schedule(hub_id, self.first_delay)

    def stop(self) -> None:
        """No more tries; one in flight ends with the hub's punching (``Punching.stop``)."""
        self.stopped = True
        for timer in self.timers.values():
            cancel(timer)
        self.timers.clear()

    def _schedule(self, hub_id: str, delay: float) -> None:
        self.timers[hub_id] = self.clock.callLater(delay, self._try, hub_id)

    def _again(self, hub_id: str) -> None:
        self.failures[hub_id] = failures = self.failures.get(hub_id, 0) + 1
        self._schedule(hub_id, backoff_delay(failures, self.base_delay, self.max_delay,
                                             self.rand))

    def _try(self, hub_id: str) -> None:
        del self.timers[hub_id]
        proto = self.connections.get(hub_id)
        if proto is None or path_of(proto) != RELAYED:
            return  # no longer relayed: nothing to move
        if not self.punching.possible():
            self._again(hub_id)
            return
        self.punching.punch(hub_id).addCallbacks(self._moved, self._failed,
                                                 errbackArgs=(hub_id,))

    def _moved(self, result) -> None:
        proto, address = result
        log.info("the relayed peering with {peer} moved onto a direct path",
                 peer=proto.peer_id)
        if address is not None:  # a local address: dial it next time
            self.established(proto.peer_id, address, dialer=True)

    def _failed(self, failure, hub_id: str) -> None:
        log.info("the relayed peering with {peer} stays relayed for now: {reason}",
                 peer=hub_id, reason=failure.getErrorMessage())
        if not self.stopped and hub_id in self.connections and hub_id not in self.timers:
            self._again(hub_id)
