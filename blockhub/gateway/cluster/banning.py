"""Bans and kicks across a cluster: an operator's ban at one node holds at every node,
so a kicked hub cannot simply fail over to another (docs/cluster.md).

A ban, an unban or a kick is published at once (a signed ``ban`` value on the
presence channel); every heartbeat carries the node's whole ban table too, so a node
that missed the event (it was away, or Redis was) has it within a third of
``--cluster-dead-after``.  Records merge by the time they were set (``bans.py``), so
hearing one twice or late changes nothing.  A node that learns of a ban, or of a kick,
for one of its own hubs closes that hub's connection with the reason.
"""

from twisted.logger import Logger

from blockhub.errors import BadId
from blockhub.gateway.cluster.records import Refused
from blockhub.ids import decode_id
from blockhub.when import utc

log = Logger()



class SharedBans:
    def __init__(self, bans, presence, clock, signer, publish):
        self.bans = bans
        self.presence = presence
        self.clock = clock
        self.signer = signer
        self.publish = publish  # (value) -> publish it on the presence channel

    def told(self, hub: str, until: int, set_ms: int, kick: bool = False) -> None:
        """Our operator set ``hub``'s record here (or kicked it): tell the others."""
        self.publish(self.signer.make("ban", self.clock.seconds(), hub=hub, until=until,
                                      set=set_ms, kick=kick))

    def kick(self, hub: str) -> None:
        """Kick ``hub`` wherever in the cluster it is (its node closes it)."""
        until, set_ms = self.bans.records.get(hub, (0, 0))
        self.told(hub, until, set_ms, kick=True)

    def event(self, said) -> None:
        body = said.body
        self._take(said.node, body["hub"], body["until"], body["set"], body["kick"])

    def heartbeat(self, node: str, table: dict | None) -> None:
        for hub, record in (table or {}).items():
            try:
                decode_id(hub)
                until, set_ms = record
                if not all(isinstance(v, int) and v >= 0 for v in (until, set_ms)):
                    raise ValueError
            except (BadId, ValueError, TypeError):
                raise Refused(f"a heartbeat with a malformed ban for {hub[:14]!r}")
            self._take(node, hub, until, set_ms, False)

    def _take(self, node: str, hub: str, until: int, set_ms: int, kick: bool) -> None:
        banned = bool(set_ms) and self.bans.merge(hub, until, set_ms)
        if banned:
            reason = (f"banned by the operator of gateway node {node[:14]}… until "
                      f"{utc(until / 1000)}")
        elif kick:
            reason = f"kicked by the operator of gateway node {node[:14]}…"
        else:
            return
        if self.presence.kick(hub, reason):
            log.info("hub {hub} {what} at node {node}", hub=hub, node=node,
                     what="banned" if banned else "kicked")
