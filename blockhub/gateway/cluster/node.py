"""One gateway node's part in a cluster (docs/cluster.md): what it tells the other
nodes through Redis and what it believes of what they tell it.

- Our hubs: each join, update and leave is written to our hub table in Redis and
  published on the ``presence`` channel, both signed (``records.py``).  The table is
  what a node reads when it (re)connects; the channel is how the change spreads at
  once.  Both are written on one connection, so the table is written before the event
  is seen.
- Other nodes' hubs: an event or table entry is believed only once verified, and
  what we hold of them is ``view.py``'s.
- Liveness: every ``dead_after / 3`` seconds we write our heartbeat (it expires after
  ``dead_after``) and read the others'.  A node whose heartbeat expired is dead: its
  hubs leave, except those that are somewhere else by now.
- Relayed handshakes for a hub of another node are published on that node's channel,
  signed, with an id so that none is delivered twice; the sender's rate budget is
  taken in Redis, so it is the same at every node.
- Redis away (``link.py``): we keep serving our hubs; after ``dead_after`` without
  Redis we forget the other nodes' hubs, since nothing confirms them any more; when it
  is back we resynchronise: our table written again whole, the others' read and
  compared with what we hold, so that no change is lost or told twice.
"""

import os

from twisted.internet.defer import gatherResults
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from blockhub import timers
from blockhub.gateway.cluster import link as link_machine
from blockhub.gateway.cluster.backend import ClusterUnavailable
from blockhub.gateway.cluster.banning import SharedBans
from blockhub.gateway.cluster.bridge import circuit_channel
from blockhub.gateway.cluster.deliveries import Deliveries
from blockhub.gateway.cluster.records import Reader, Refused, Signer
from blockhub.gateway.cluster.view import OtherNodes
from blockhub.hubinfo import HubInfo

log = Logger()

PRESENCE = "presence"
CLOCK_SKEW = 30.0  # seconds the nodes' clocks may differ by, beyond --cluster-dead-after


def node_channel(node: str) -> str:
    return f"node:{node}"


def _local_budget_only(failure) -> bool:
    failure.trap(ClusterUnavailable)
    return True


class ClusterNode:
    def __init__(self, identity, name: str, keys: frozenset[str], backend, clock,
                 presence, deliver, limits, dead_after: float, record=lambda: None,
                 bridge=None, bans=None):
        self.identity = identity
        self.id = identity.id
        self.name = name
        self.backend = backend
        self.clock = clock
        self.presence = presence
        self.limits = limits
        self.bridge = bridge  # relay circuits to other nodes' hubs (bridge.py)
        self.dead_after = dead_after
        self.record = record  # -> our signed gateway record, or None
        self.signer = Signer(identity, name)
        self.reader = Reader(name, keys | {identity.id})
        self.state = "idle"
        self.entries: dict[str, bytes] = {}          # our hub id -> its signed entry
        self.shared: dict[str, bytes] = {}           # the entries the others were told of
        self.others = OtherNodes(name, presence, self.reader, self._refuse)
        self.bans = None if bans is None else SharedBans(
            bans, presence, clock, self.signer, self._publish_presence)
        self.deliveries = Deliveries(self.id, name, deliver)
        self.refused = 0                             # values from Redis refused
        # Event numbers grow across restarts too: they start from the clock.
        self.seq = int(clock.seconds() * 1_000_000)
        self._beat = LoopingCall(self.heartbeat)
        self._beat.clock = clock
        self._forget: IDelayedCall | None = None
        self.link = link_machine.Link(self)
        self.machine = link_machine.Machine(self.link)

    @property
    def connected(self) -> bool:
        return self.state == "connected"

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self.machine.start()
        self.backend.start({"presence": [PRESENCE, node_channel(self.id)],
                            "circuits": [circuit_channel(self.id)]},
                           self._message, self._store_state)
        self._beat.start(self.dead_after / 3, now=False)

    def stop(self):
        self.machine.stop()
        if self.bridge is not None:
            self.bridge.state(False)
        if self._beat.running:
            self._beat.stop()
        self._forget = timers.cancel(self._forget)
        return self.backend.stop()

    def _store_state(self, up: bool) -> None:
        (self.machine.up if up else self.machine.down)()

    # -- called by the link machine -------------------------------------------------
    def resync(self, generation: int) -> None:
        self._forget = timers.cancel(self._forget)
        self.others.touched = set()
        d = self.backend.replace_hubs(self.id, dict(self.entries), self.dead_after)
        d.addCallback(lambda _: self._tell_changes())
        d.addCallback(lambda _: self._write_heartbeat())
        d.addCallback(lambda _: self.backend.nodes())
        d.addCallback(self._read_nodes, full=True)
        d.addCallback(lambda _: self.machine.synced(generation))
        d.addBoth(self._synced)
        d.addErrback(self._failed, "resynchronise")

    def _tell_changes(self) -> None:
        """Publish what changed among our hubs while the others could not hear it."""
        now = self.clock.seconds()
        for hub, entry in self.entries.items():
            if self.shared.get(hub) != entry:
                said = self.reader.read(entry, "hub")
                self._publish_event(now, "joined", hub, said.hubinfo, said.body["since"])
        for hub in self.shared.keys() - self.entries.keys():
            self._publish_event(now, "left", hub, None, 0)
        self.shared = dict(self.entries)

    def _synced(self, result):
        self.others.touched = None
        return result

    def gained(self) -> None:
        log.info("cluster {name}: connected, {nodes} other nodes, {hubs} of their hubs",
                 name=self.name, nodes=len(self.others.alive), hubs=len(self.others.where))
        if self.bridge is not None:
            self.bridge.state(True)

    def lost(self) -> None:
        log.warn("cluster {name}: the store is away; serving our own hubs", name=self.name)
        if self.bridge is not None:
            self.bridge.state(False)
        self._forget = timers.cancel(self._forget)
        self._forget = self.clock.callLater(self.dead_after, self._forget_others)

    def _forget_others(self) -> None:
        self._forget = None
        self.others.forget()

    # -- our hubs -------------------------------------------------------------------
    def told(self, event: str, hub_id: str, info: HubInfo | None, since: float) -> None:
        """Presence tells us of each change to our own hubs."""
        now = self.clock.seconds()
        since_ms = int(since * 1000)
        if info is not None:
            self.entries[hub_id] = self.signer.make("hub", now, hub=hub_id,
                                                    hubinfo=info.to_json(), since=since_ms)
        else:
            self.entries.pop(hub_id, None)
        if self.state not in ("syncing", "connected"):
            return  # the resync when the store is back tells the others
        if info is not None:
            self.shared[hub_id] = self.entries[hub_id]
            d = self.backend.put_hubs(self.id, {hub_id: self.entries[hub_id]})
        else:
            self.shared.pop(hub_id, None)
            d = self.backend.drop_hubs(self.id, [hub_id])
        d.addErrback(self._failed, "write our hub table")
        self._publish_event(now, event, hub_id, info, since_ms)

    def _publish_event(self, now: float, event: str, hub_id: str, info: HubInfo | None,
                       since_ms: int) -> None:
        self.seq += 1
        value = self.signer.make(
            "presence", now, seq=self.seq, event=event, hub=hub_id,
            hubinfo=None if info is None else info.to_json(), since=since_ms)
        self._publish_presence(value)

    def _publish_presence(self, value: bytes) -> None:
        self.backend.publish(PRESENCE, value).addErrback(self._failed, "publish presence")

    def ban_told(self, hub: str, until: int, set_ms: int) -> None:
        """Our operator banned or unbanned a hub: every node hears it."""
        if self.bans is not None and self.connected:
            self.bans.told(hub, until, set_ms)

    def kick(self, hub: str) -> bool:
        """Kick a hub of another node; -> whether we could tell its node."""
        if self.bans is None or not self.connected or self.presence.node_of(hub) is None:
            return False
        self.bans.kick(hub)
        return True

    # -- relaying -------------------------------------------------------------------
    def take(self, sender: str):
        """The sender's relay budget at the cluster; with the store away, the local
        budget (already taken) is all there is."""
        d = self.backend.take(f"relay:{sender}", self.limits.relay_per_minute,
                              self.limits.relay_burst)
        return d.addErrback(_local_budget_only)

    def forward(self, node: str, sender: str, target: str, kind: str,
                sealed: bytes) -> bool:
        """Send a relayed box to ``target`` at ``node``; False when we cannot now."""
        if not self.connected:
            return False
        value = self.signer.make("deliver", self.clock.seconds(),
                                 id=os.urandom(12).hex(), to_node=node, to=target,
                                 sealed=sealed, kind=kind, **{"from": sender})
        self.backend.publish(node_channel(node), value).addErrback(self._failed,
                                                                   "forward a relay")
        return True

    # -- what the store tells us -----------------------------------------------------
    def _message(self, channel: str, payload: bytes) -> None:
        now = self.clock.seconds()
        try:
            if channel == PRESENCE:
                said = self.reader.read_others(payload, ("presence", "ban"), now, self.id)
                if said is None:
                    pass  # our own
                elif said.type == "presence":
                    self.others.event(said)
                elif self.bans is not None:
                    self.bans.event(said)
            elif channel == node_channel(self.id):
                self.deliveries.received(self.reader.read(payload, "deliver", now), now)
            elif channel == circuit_channel(self.id) and self.bridge is not None:
                self.bridge.received(payload)
        except Refused as e:
            self._refuse(channel, e)

    def _refuse(self, where: str, error: Exception) -> None:
        self.refused += 1
        log.warn("cluster {name}: refused a value from {where}: {error}", name=self.name,
                 where=where, error=str(error))

    # -- heartbeats and other nodes --------------------------------------------------
    def heartbeat(self) -> None:
        if not self.connected:
            return
        d = self._write_heartbeat()
        d.addCallback(lambda _: self.backend.nodes())
        d.addCallback(self._read_nodes, full=False)
        d.addErrback(self._failed, "heartbeat")

    def _read_nodes(self, records: dict, full: bool):
        oldest = self.clock.seconds() - self.dead_after - CLOCK_SKEW
        new = self.others.heartbeats(records, self.id, int(oldest * 1000))
        if self.bans is not None:
            for node, body in self.others.alive.items():
                try:
                    self.bans.heartbeat(node, body.get("bans"))
                except Refused as e:
                    self._refuse(f"the heartbeat of {node[:14]}…", e)
        wanted = list(self.others.alive) if full else new
        return gatherResults([self.backend.hubs(node).addCallback(self.others.table, node)
                              for node in wanted], consumeErrors=True)

    def _write_heartbeat(self):
        self.seq += 1
        value = self.signer.make("node", self.clock.seconds(), seq=self.seq,
                                 hubs=len(self.presence.hubs), record=self.record(),
                                 bans=self.bans.bans.table() if self.bans else None)
        return self.backend.set_node(self.id, value, self.dead_after)

    def _failed(self, failure, what: str):
        failure.trap(ClusterUnavailable)
        log.warn("cluster {name}: could not {what}: {error}", name=self.name, what=what,
                 error=str(failure.value))

    # -- what operators see ----------------------------------------------------------
    def status(self) -> dict:
        nodes = [{"id": self.id, "hubs": len(self.presence.hubs)}] + self.others.status()
        refused = self.refused + (self.bridge.refused if self.bridge is not None else 0)
        return {"name": self.name,
                "state": "connected" if self.connected else "disconnected",
                "nodes": nodes, "refused": refused}

    def records(self) -> list:
        """The signed gateway records of the other live nodes (for GET /gateways)."""
        return self.others.records()
