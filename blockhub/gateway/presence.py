"""The gateway's table of admitted hubs and the fan-out of their HubInfo.

Each admitted hub has one live connection; a newer connection from the same hub
replaces the older.  A newcomer is sent the welcome and every other hub's HubInfo;
everyone else is told it joined.  Each presence frame is encoded once and written to
every receiver, and each hub's current "joined" frame is kept, so a newcomer's list is
frames already made, handed to its connection by reference and written as fast as the
newcomer reads (later presence frames wait behind it, in order).  In private mode no
HubInfo with an endpoint is ever accepted, so no address can leave the gateway in
presence traffic.

In a cluster (docs/cluster.md) the table also holds the hubs of other nodes, as their
nodes told us (``remote_put``, ``remote_left``): their frames go to our hubs and into
every newcomer's list like our own hubs', and each change to our own hubs is told to
the cluster (``told``).  A hub that moves between nodes is not reported as gone and
back: it just changes place.

Joins and updates draw on one budget per hub key (a burst, then a steady rate), and
the budget outlives a leave, so rejoining is no way around the update limit.
"""

import collections
import time
from typing import Any

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from blockhub import timers
from blockhub.errors import BadMessage
from blockhub.gateway.counters import Counters
from blockhub.gateway.join_budget import JoinBudget
from blockhub.hubinfo import HubInfo, parse_endpoint
from blockhub.limits import Limits
from blockhub.wire import messages

log = Logger()

REMOTE_WINDOW = 0.005  # seconds: other nodes' events of this long go out together


class Presence:
    def __init__(self, mode: str, limits: Limits, clock, counters: Counters, gone,
                 told=None, gone_elsewhere=None, fanout=None):
        self.mode = mode
        self.gone = gone  # told of each connection that leaves the table (its circuits)
        # told(event, hub id, HubInfo | None, since): each change to our own hubs
        self.told = told or (lambda event, hub_id, info, since: None)
        # gone_elsewhere(hub id): a hub of another node left (its circuits here end)
        self.gone_elsewhere = gone_elsewhere or (lambda hub_id: None)
        # fanout(seconds): how long one presence frame took to hand to every receiver
        self.fanout = fanout or (lambda seconds: None)
        self.since: dict[str, float] = {}  # our hub id -> when it joined here
        # other nodes' hubs: (node, info, when it joined there)
        self.remote: dict[str, tuple[str, HubInfo, float]] = {}
        self._remote_frames: list[tuple[str, bytes]] = []  # (hub it is about, frame)
        self._remote_flush: IDelayedCall | None = None
        self.limits = limits
        self.clock = clock
        # Each hub's connection (a GatewayProtocol, a layer above) and its HubInfo.
        self.hubs: dict[str, tuple[Any, HubInfo]] = {}
        self.joined_frames: dict[str, bytes] = {}  # hub id -> its current "joined" frame
        self.counters = counters
        self.update_limit = JoinBudget(limits.updates_per_minute, limits.updates_burst)
        self.per_host: collections.Counter = collections.Counter()  # admitted hubs
        self.version = 0  # grows with every change to the online set (the heads')

    def check(self, conn, info: HubInfo, observed_host: str) -> None:
        """Refuse HubInfo that is not the connected hub's, or that exposes an address
        the mode forbids, or that points anywhere but the address we see."""
        if info.id != conn.peer_id:
            raise BadMessage("hubinfo is signed by another hub than the connected one")
        if info.endpoint is not None:
            if self.mode != "open":
                raise BadMessage("hubinfo carries an endpoint but the gateway is private")
            host, _port = parse_endpoint(info.endpoint)
            if host != observed_host:
                raise BadMessage("hubinfo endpoint is not the address the gateway sees")

    def allow_join(self, hub_id: str, now: float) -> bool:
        """Take a join from ``hub_id``'s budget (the one its updates use)."""
        return self.update_limit.join(hub_id, now)

    def over_address_cap(self, hub_id: str, host: str) -> bool:
        """Would admitting ``hub_id`` from ``host`` exceed ``hubs_per_ip``?  A hub
        replacing its own connection from the same address takes no new place."""
        cap = self.limits.hubs_per_ip
        if not cap:
            return False
        current = self.hubs.get(hub_id)
        if current is not None and current[0].host == host:
            return False
        return self.per_host[host] >= cap

    @property
    def online(self) -> int:
        """Hubs online in the whole network as this node knows it."""
        return len(self.hubs) + len(self.remote)

    def join(self, conn, info: HubInfo) -> None:
        old = self.hubs.get(info.id)
        if old is not None:
            self.counters.replaced += 1
            self._remove(info.id)
            old[0].close("replaced by a newer connection from the same hub")
        self.flush_remote()  # the newcomer's list then holds all that was said before
        moved = self.remote.pop(info.id, None)  # it was at another node until now
        self.joined_frames.pop(info.id, None)
        conn.send("welcome", online=self.online)
        conn.send_frames(tuple(self.joined_frames.values()))
        self.hubs[info.id] = (conn, info)
        self.version += 1
        self.since[info.id] = now = self.clock.seconds()
        self.per_host[conn.host] += 1
        self.counters.joined += 1
        log.info("hub {hub} joined from {address} ({online} online)", hub=info.id,
                 address=conn.address, online=len(self.hubs))
        frame = self._joined_frame(info)
        if moved is None or moved[1] != info:
            self._broadcast_frame(info.id, frame)
        self.joined_frames[info.id] = frame
        self.told("joined", info.id, info, now)

    def update(self, conn, info: HubInfo) -> bool:
        """Take a hub's new HubInfo; False when it is not taken (the rate limit)."""
        current = self.hubs.get(info.id)
        if current is None or current[0] is not conn:
            return False
        if info.seq <= current[1].seq:
            raise BadMessage("hubinfo update does not increase seq")
        if not self.update_limit.allow(info.id, self.clock.seconds()):
            self.counters.updates_refused += 1
            log.warn("hub {hub} updates its HubInfo too often; update ignored", hub=info.id)
            return False
        self.hubs[info.id] = (conn, info)
        self.version += 1
        self.joined_frames[info.id] = self._joined_frame(info)
        self.counters.updates += 1
        self._broadcast(info.id, "presence", event="updated", hub=info.id,
                        hubinfo=info.to_json())
        self.told("updated", info.id, info, self.since.get(info.id, 0.0))
        return True

    def leave(self, conn, reason: str) -> None:
        hub_id = conn.peer_id
        current = self.hubs.get(hub_id)
        if current is None or current[0] is not conn:
            return
        self._remove(hub_id)  # its budget stays: a rejoin draws on it
        self.counters.left += 1
        log.info("hub {hub} left: {reason} ({online} online)", hub=hub_id, reason=reason,
                 online=len(self.hubs))
        self._broadcast(hub_id, "presence", event="left", hub=hub_id, hubinfo=None)
        self.told("left", hub_id, None, 0.0)

    def _remove(self, hub_id: str) -> None:
        conn, _info = self.hubs.pop(hub_id)
        self.version += 1
        del self.joined_frames[hub_id]
        self.since.pop(hub_id, None)
        self.per_host[conn.host] -= 1
        if self.per_host[conn.host] <= 0:
            del self.per_host[conn.host]
        self.gone(conn)

    # -- the hubs of other nodes -------------------------------------------------------
    def remote_put(self, node: str, info: HubInfo, since: float = 0.0) -> None:
        """``node`` says ``info``'s hub is online there.  Our hubs hear of it only
        when it is new to them or its HubInfo changed."""
        if info.id in self.hubs:
            return
        current = self.remote.get(info.id)
        self.remote[info.id] = (node, info, since)
        if current is not None and current[1] == info:
            return
        self.version += 1
        frame = self._joined_frame(info)
        self.joined_frames[info.id] = frame
        if current is None:
            self._soon(info.id, frame)
        else:
            self._soon(info.id, messages.encode(messages.make(
                "presence", event="updated", hub=info.id, hubinfo=info.to_json())))

    def remote_left(self, node: str, hub_id: str) -> None:
        """``node`` says its hub left (or ``node`` is dead): gone, unless it is
        somewhere else by now."""
        current = self.remote.get(hub_id)
        if current is None or current[0] != node:
            return
        del self.remote[hub_id]
        self.version += 1
        del self.joined_frames[hub_id]
        self.gone_elsewhere(hub_id)
        self._soon(hub_id, messages.encode(messages.make(
            "presence", event="left", hub=hub_id, hubinfo=None)))

    def _soon(self, except_id: str, frame: bytes) -> None:
        """Other nodes' events reach us one at a time: each of our hubs gets those of
        the next ``REMOTE_WINDOW`` seconds together (one write, one TLS record) rather
        than a write each."""
        self._remote_frames.append((except_id, frame))
        if self._remote_flush is None:
            self._remote_flush = self.clock.callLater(REMOTE_WINDOW, self.flush_remote)

    def flush_remote(self) -> None:
        """Write the other nodes' events that wait; done before any frame of our own,
        so every hub sees presence in the order it happened here."""
        self._remote_flush = timers.cancel(self._remote_flush)
        frames, self._remote_frames = self._remote_frames, []
        if not frames:
            return
        for hub_id, (conn, _info) in self.hubs.items():
            mine = tuple(frame for except_id, frame in frames if except_id != hub_id)
            if mine:
                conn.send_frames(mine)

    def moved_away(self, hub_id: str, node: str, info: HubInfo, since: float) -> None:
        """Our hub has a newer connection at ``node``: close ours without telling
        anyone it left, since it did not."""
        conn, _info = self.hubs[hub_id]
        self.counters.replaced += 1
        self._remove(hub_id)
        conn.close("replaced by a newer connection at another gateway node")
        self.remote_put(node, info, since)

    def kick(self, hub_id: str, reason: str) -> bool:
        """Close our hub's connection, telling it ``reason``; -> whether it was ours."""
        entry = self.hubs.get(hub_id)
        if entry is None:
            return False
        entry[0].close(reason, refuse=True)
        return True

    def node_of(self, hub_id: str) -> str | None:
        """The other node a hub is online at, if it is."""
        entry = self.remote.get(hub_id)
        return entry[0] if entry else None

    def connection_for(self, hub_id: str):
        entry = self.hubs.get(hub_id)
        return entry[0] if entry else None

    def shutdown(self, reason: str) -> None:
        self.flush_remote()
        frame = messages.encode(messages.make("shutdown", reason=reason))
        for conn, _info in list(self.hubs.values()):
            conn.send_frame(frame)
            conn.close(reason)

    @staticmethod
    def _joined_frame(info: HubInfo) -> bytes:
        return messages.encode(messages.make("presence", event="joined", hub=info.id,
                                             hubinfo=info.to_json()))

    def _broadcast(self, except_id: str, kind: str, **fields) -> None:
        self._broadcast_frame(except_id, messages.encode(messages.make(kind, **fields)))

    def _broadcast_frame(self, except_id: str, frame: bytes) -> None:
        self.flush_remote()
        started = time.perf_counter()
        for hub_id, (conn, _info) in self.hubs.items():
            if hub_id != except_id:
                conn.send_frame(frame)
        self.fanout(time.perf_counter() - started)

    def online_infos(self) -> list:
        """The HubInfo of every hub online as our hubs are told (a head's set)."""
        return [info for _conn, info in self.hubs.values()] + \
            [info for _node, info, _since in self.remote.values()]

    def snapshot(self) -> list[dict]:
        """Our hubs (with the address we see them at), then other nodes' hubs (with
        their node, and no address: none is ever shared between nodes)."""
        return [{"id": info.id, "name": info.name, "endpoint": info.endpoint,
                 "address": conn.address, "seq": info.seq,
                 "since": int(self.since.get(hub_id, 0))}
                for hub_id, (conn, info) in self.hubs.items()] + [
                {"id": info.id, "name": info.name, "endpoint": info.endpoint,
                 "address": None, "seq": info.seq, "node": node, "since": int(since)}
                for node, info, since in self.remote.values()]
