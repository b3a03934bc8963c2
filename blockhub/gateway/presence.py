"""The gateway's table of admitted hubs and the fan-out of their HubInfo.

Each admitted hub has one live connection; a newer connection from the same hub
replaces the older.  A newcomer is sent the welcome and every other hub's HubInfo;
everyone else is told it joined.  Each presence frame is encoded once and written to
every receiver, and each hub's current "joined" frame is kept, so a newcomer's list is
one write of frames already made.  In private mode no HubInfo with an endpoint is ever
accepted, so no address can leave the gateway in presence traffic.
"""

import attrs
from twisted.logger import Logger

from blockhub.errors import BadMessage
from blockhub.limits import DEFAULT, Limits
from blockhub.ratelimit import RateLimiter
from blockhub.records import HubInfo, parse_endpoint
from blockhub.wire import messages

log = Logger()


@attrs.define
class Counters:
    joined: int = 0
    left: int = 0
    replaced: int = 0
    refused: int = 0
    refused_full: int = 0
    refused_unauthenticated: int = 0
    tls_timeouts: int = 0
    protocol_errors: int = 0
    updates: int = 0
    updates_refused: int = 0
    relayed: int = 0
    relay_refused: int = 0


class Presence:
    def __init__(self, mode: str, limits: Limits = DEFAULT):
        self.mode = mode
        self.limits = limits
        self.hubs: dict[str, tuple[object, HubInfo]] = {}
        self.joined_frames: dict[str, bytes] = {}  # hub id -> its current "joined" frame
        self.counters = Counters()
        self.update_limit = RateLimiter(limits.updates_per_minute, limits.updates_burst)

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

    def join(self, conn, info: HubInfo) -> None:
        old = self.hubs.get(info.id)
        if old is not None:
            self.counters.replaced += 1
            self.hubs.pop(info.id)
            self.joined_frames.pop(info.id)
            old[0].close("replaced by a newer connection from the same hub")
        conn.send("welcome", online=len(self.hubs))
        conn.send_frames(list(self.joined_frames.values()))
        self.hubs[info.id] = (conn, info)
        self.counters.joined += 1
        log.info("hub {hub} joined from {address} ({online} online)", hub=info.id,
                 address=conn.address, online=len(self.hubs))
        frame = self._joined_frame(info)
        self._broadcast_frame(info.id, frame)
        self.joined_frames[info.id] = frame

    def update(self, conn, info: HubInfo) -> None:
        current = self.hubs.get(info.id)
        if current is None or current[0] is not conn:
            return
        if info.seq <= current[1].seq:
            raise BadMessage("hubinfo update does not increase seq")
        if not self.update_limit.allow(info.id, conn.clock.seconds()):
            self.counters.updates_refused += 1
            log.warn("hub {hub} updates its HubInfo too often; update ignored", hub=info.id)
            return
        self.hubs[info.id] = (conn, info)
        self.joined_frames[info.id] = self._joined_frame(info)
        self.counters.updates += 1
        self._broadcast(info.id, "presence", event="updated", hub=info.id,
                        hubinfo=info.to_json())

    def leave(self, conn, reason: str) -> None:
        hub_id = conn.peer_id
        current = self.hubs.get(hub_id)
        if current is None or current[0] is not conn:
            return
        del self.hubs[hub_id]
        del self.joined_frames[hub_id]
        self.update_limit.forget(hub_id)
        self.counters.left += 1
        log.info("hub {hub} left: {reason} ({online} online)", hub=hub_id, reason=reason,
                 online=len(self.hubs))
        self._broadcast(hub_id, "presence", event="left", hub=hub_id, hubinfo=None)

    def connection_for(self, hub_id: str):
        entry = self.hubs.get(hub_id)
        return entry[0] if entry else None

    def shutdown(self, reason: str) -> None:
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
        for hub_id, (conn, _info) in self.hubs.items():
            if hub_id != except_id:
                conn.send_frame(frame)

    def snapshot(self) -> list[dict]:
        return [{"id": info.id, "name": info.name, "endpoint": info.endpoint,
                 "address": conn.address, "seq": info.seq}
                for conn, info in self.hubs.values()]
