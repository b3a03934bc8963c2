"""Watching the gateways' signed presence heads (docs/accountability.md).

A head from our gateway is checked three ways: its signature (the pinned key), its
chain against every head of that gateway we have seen, from it or from our peers
(``heads.conflict``), and its commitment against the set we were told: every HubInfo
its presence gave us, and ours as it keeps it (``Hub.told_set``).  Heads we see are
gossiped to our peers that listed ``heads/1``, and theirs checked the same way (but
for the set, which only the hubs of that gateway can check).  A failed check is an
alarm: logged, in ``status`` under ``alarms``, with its proof written in the data
directory (``equivocation-<gateway id>.json``: both heads, which ``blockhub
verify-equivocation`` checks alone; ``mismatch-<gateway id>-<seq>.json``: the head and
the set we computed).  On an equivocation, ``on_equivocation`` says what else to do:
``alarm`` (nothing) or ``disconnect`` (drop that gateway and fail over).  With a
``file``, the heads seen and the alarms outlive a restart of the hub.
"""

from twisted.logger import Logger

from blockhub.batching import EndOfTurn
from blockhub.errors import BadMessage, ProtocolError
from blockhub.heads import Head, SetEncoder, conflict, proof_document, verify_head
from blockhub.wire import canonical, features

log = Logger()
KEEP = 64  # heads kept per gateway, the newest
GOSSIP = 8  # of which a new peer link is told
MAX_ALARMS = 100
ALARM, DISCONNECT = "alarm", "disconnect"


class HeadWatch:
    def __init__(self, clock, hub, peers, proofs=None, on_equivocation: str = ALARM,
                 drop_gateway=lambda gateway_id: None, file=None):
        """``proofs``: where proofs are written (``ProofFiles``; None: nowhere);
        ``file``: where the heads seen and the alarms are kept across restarts
        (``SeenHeadsFile``; None: in memory only)."""
        self.clock = clock
        self.hub = hub  # told_set(), and who our gateway is
        self.peers = peers  # connections, to gossip on
        self.proofs = proofs
        self.on_equivocation = on_equivocation
        self.drop_gateway = drop_gateway
        self.heads: dict[str, dict[int, Head]] = {}  # gateway id -> seq -> head
        self.alarms: list[dict] = []
        self._raised: set[tuple[str, str]] = set()  # (kind, gateway): one proof each
        self._set = SetEncoder()  # what our gateway told us, encoded once per HubInfo
        self.file = file
        self._save = EndOfTurn(clock, lambda _changes: file.save(self.heads, self.alarms))
        if file is not None:
            self.heads, self.alarms = file.load()
            self._raised = {(str(a.get("kind")), str(a.get("gateway"))) for a in self.alarms}

    # -- what arrives ---------------------------------------------------------------
    def from_gateway(self, gateway_id: str, value) -> None:
        """A head our gateway pushed, after the presence it commits to."""
        head = verify_head(value)
        if head.gateway != gateway_id:
            raise BadMessage("the gateway sent another gateway's head")
        fresh = self._take(head, f"gateway {gateway_id}")
        told = self.hub.told_set()
        computed = self._set.commitment(told)
        if canonical.b64(computed) != head.set:
            self._mismatch(head, computed, [info.to_json() for info in told])
        if fresh:
            self._gossip([head])

    def from_peer(self, peer_id: str, value) -> None:
        """A head a peer saw; a bad one is only counted (the peer may just relay it)."""
        try:
            head = verify_head(value)
        except ProtocolError as e:
            log.warn("a peer's gossiped head does not verify: {error}", peer=peer_id,
                     error=str(e))
            return
        self._take(head, f"peer {peer_id}")

    def link_up(self, hub_id: str, path) -> None:
        """A peer link came up: tell it the newest heads we have seen."""
        proto = self.peers.connections.get(hub_id) if path is not None else None
        if proto is not None:
            newest = [h for seqs in self.heads.values()
                      for h in sorted(seqs.values(), key=lambda h: h.seq)[-GOSSIP:]]
            self._send(proto, newest)

    # -- checking -------------------------------------------------------------------
    def _take(self, head: Head, source: str) -> bool:
        """Check ``head`` against the heads of its gateway we kept, then keep it; True
        when it is new to us."""
        seqs = self.heads.setdefault(head.gateway, {})
        known = seqs.get(head.seq)
        if known is not None and known.hash == head.hash:
            return False
        for seq in (head.seq - 1, head.seq, head.seq + 1):
            other = seqs.get(seq)
            if other is None:
                continue
            why = conflict(other, head)
            if why is not None:
                self._equivocation(other, head, why, source)
                return False
        seqs[head.seq] = head
        if len(seqs) > KEEP:
            del seqs[min(seqs)]
        self._changed()
        return True

    def _changed(self) -> None:
        if self.file is not None:
            self._save.add(None)

    def _equivocation(self, a: Head, b: Head, why: str, source: str) -> None:
        if ("equivocation", a.gateway) not in self._raised:
            # Every peer can check the proof on its own: tell them both heads.
            self._gossip([a, b])
        path = self._proof(f"equivocation-{a.gateway}.json", proof_document(a, b, why))
        self._alarm("equivocation", a.gateway, path,
                    f"gateway {a.gateway} signed two heads that cannot be on one chain "
                    f"({why}; the second came from {source})")
        if self.on_equivocation == DISCONNECT:
            self.drop_gateway(a.gateway)

    def _mismatch(self, head: Head, computed: bytes, told: list) -> None:
        path = self._proof(f"mismatch-{head.gateway}-{head.seq}.json", {
            "kind": "mismatch", "gateway": head.gateway, "head": head.to_json(),
            "computed": canonical.b64(computed), "hubinfos": told})
        self._alarm("mismatch", head.gateway, path,
                    f"gateway {head.gateway}'s head {head.seq} commits to {head.count} "
                    f"hubs but not to the {len(told)} it showed us")

    def _alarm(self, kind: str, gateway: str, path: str | None, text: str) -> None:
        if (kind, gateway) in self._raised and kind == "equivocation":
            return
        self._raised.add((kind, gateway))
        log.critical("ALARM: {text}; proof in {proof}", text=text, proof=path,
                     kind=kind, gateway=gateway)
        if len(self.alarms) < MAX_ALARMS:
            self.alarms.append({"kind": kind, "gateway": gateway,
                                "at": int(self.clock.seconds()), "proof": path})
            self._changed()

    def _proof(self, name: str, document: dict) -> str | None:
        return self.proofs.write(name, document) if self.proofs is not None else None

    def _gossip(self, heads) -> None:
        for proto in list(self.peers.connections.values()):
            self._send(proto, heads)

    @staticmethod
    def _send(proto, heads) -> None:
        session = proto.session
        if session.features.peer_has(features.HEADS) and \
                features.HEADS in (session.spoken or ()):
            for head in heads:
                proto.send("peer-head", head=head.to_json())
