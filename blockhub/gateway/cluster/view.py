"""What one node believes of the other nodes of its cluster: which are alive and
which hubs each holds, built only from values that ``records.Reader`` verified.

A hub claimed by two nodes belongs to the one it joined last (``since``, in each
node's clock); if that is another node while the hub is ours too, ours is the older
connection and is closed without a "left" (``Presence.moved_away``).  Whatever
changes reaches ``Presence`` (``remote_put``, ``remote_left``), which tells our hubs.
A node's whole table (read when we resynchronise or first see the node) is compared
with what we hold, except for hubs an event changed meanwhile: the event is newer.
"""

import collections

from twisted.logger import Logger

from blockhub.gateway.cluster.records import Refused
from blockhub.hubinfo import HubInfo

log = Logger()


class OtherNodes:
    def __init__(self, name: str, presence, reader, refuse):
        self.name = name
        self.presence = presence
        self.reader = reader
        self.refuse = refuse  # (where, error): count and log a refused value
        self.where: dict[str, tuple[str, int]] = {}  # their hubs: hub -> (node, since)
        self.alive: dict[str, dict] = {}             # live nodes: their heartbeat body
        self.last_seq: dict[str, int] = {}           # node -> last presence seq taken
        self.touched: set[str] | None = None         # hubs events changed while syncing

    def known(self) -> set[str]:
        """Every other node we believe alive or hold hubs of."""
        return set(self.alive) | {where for where, _since in self.where.values()}

    def event(self, said) -> None:
        """A verified presence event of another node."""
        body = said.body
        if body["event"] != "left" and said.hubinfo is None:
            raise Refused(f"a presence {body['event']} without hubinfo")
        if body["seq"] <= self.last_seq.get(said.node, 0):
            return  # told before (a resync read it, or Redis said it twice)
        self.last_seq[said.node] = body["seq"]
        if self.touched is not None:
            self.touched.add(body["hub"])
        if body["event"] == "left":
            self.drop(said.node, body["hub"])
        else:
            self.put(said.node, said.hubinfo, body["since"])

    def put(self, node: str, info: HubInfo | None, since: int) -> None:
        if info is None:
            raise Refused("a hub entry without hubinfo")
        hub = info.id
        if hub in self.presence.hubs:
            if since > int(self.presence.since.get(hub, 0.0) * 1000):
                self.where[hub] = (node, since)
                self.presence.moved_away(hub, node, info, since / 1000)
            return
        current = self.where.get(hub)
        if current is not None and current[0] != node and current[1] > since:
            return  # an older claim than the one we hold
        self.where[hub] = (node, since)
        self.presence.remote_put(node, info, since / 1000)

    def drop(self, node: str, hub: str) -> None:
        current = self.where.get(hub)
        if current is None or current[0] != node:
            return
        del self.where[hub]
        self.presence.remote_left(node, hub)

    def heartbeats(self, records: dict, own: str, oldest_ms: int) -> list[str]:
        """Every live node's heartbeat: nodes missing from them, or whose heartbeat was
        written before ``oldest_ms`` (one replayed), are dead; -> the nodes new to us,
        whose tables we should read."""
        alive = {}
        for node, value in records.items():
            if node == own:
                continue
            try:
                said = self.reader.read(value, "node")
                if said.node != node:
                    raise Refused("another node's")
                if said.body["time"] < oldest_ms:
                    raise Refused("a heartbeat older than --cluster-dead-after allows")
            except Refused as e:
                self.refuse(f"the heartbeat of {node[:14]}…", e)
                continue
            alive[node] = said.body
        for node in self.known() - set(alive):
            self.dead(node)
        new = [node for node in alive if node not in self.alive]
        self.alive.update(alive)
        return new

    def table(self, entries: dict, node: str) -> None:
        """A node's whole hub table: what we hold of it is made to match."""
        found = set()
        touched = self.touched or set()
        for hub, value in entries.items():
            try:
                said = self.reader.read(value, "hub")
                if said.node != node or said.body["hub"] != hub:
                    raise Refused("an entry under another node's or hub's name")
            except Refused as e:
                self.refuse(f"the hub table of {node[:14]}…", e)
                continue
            found.add(hub)
            if hub not in touched:
                self.put(node, said.hubinfo, said.body["since"])
        for hub, (where, _since) in list(self.where.items()):
            if where == node and hub not in found and hub not in touched:
                self.drop(node, hub)

    def dead(self, node: str) -> None:
        self.alive.pop(node, None)
        self.last_seq.pop(node, None)
        gone = [hub for hub, (where, _) in self.where.items() if where == node]
        if gone:
            log.info("cluster {name}: node {node} is gone; {count} of its hubs leave",
                     name=self.name, node=node, count=len(gone))
        for hub in gone:
            self.drop(node, hub)

    def forget(self) -> None:
        """Nothing confirms the other nodes any more: their hubs leave."""
        for node in self.known():
            self.dead(node)

    def status(self) -> list[dict]:
        counts = collections.Counter(where for where, _since in self.where.values())
        return [{"id": node, "hubs": counts[node]}
                for node in sorted(set(self.alive) | set(counts))]

    def records(self) -> list:
        """The signed gateway records of the live nodes (for GET /gateways)."""
        return [body["record"] for _node, body in sorted(self.alive.items())
                if body["record"] is not None]

