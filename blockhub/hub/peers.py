"""The hub's direct peer links and the messages that travel on them.

Keeps one live connection per peer, reconnects the peerings this hub dialed (a
``PeerLink`` each), and carries messages with at-least-once delivery made exactly-once
by the receiver: the sender stores a message before sending it and keeps it until it
is acknowledged, re-sending after every reconnect; the receiver commits it before
acknowledging (``Inbox``) and drops duplicates by (sender, seq).  Messages queued to
send are committed together before any of them is reported queued or sent.  The
commits run on the store's writer (a thread of their own for a hub on disk), one at a
time: what is queued while one runs goes into the next (``GroupCommit``).
Acknowledgements received are recorded the same way; until they are, the in-memory
``acked_seq`` of the connection says what is in flight.
"""

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from blockhub.errors import BadMessage, StoreError, UserError
from blockhub.handshake_bodies import sign_peer_hello
from blockhub.hub.group_commit import GroupCommit
from blockhub.hub.inbox import Inbox
from blockhub.hub.peer_link import PeerLink
from blockhub.hub.peer_paths import DIRECT, RELAYED, path_of, via_of
from blockhub.ids import decode_id
from blockhub.limits import DEFAULT, Limits
from blockhub.wire.messages import MAX_TEXT

log = Logger()

# What an acceptor answers a dialer when it cannot record the peering (a full disk).
NOT_RECORDED = "this hub cannot record the peering now"

# The most text one commit of queued messages takes: a burst of 60 KiB messages starts
# going out after a commit of 16 of them, not after one of all of them.
MAX_QUEUED_BYTES = 1 << 20


class Peers:
    def __init__(self, identity, store, clock, connector, dialer_protocol, attempt,
                 circuits, limits: Limits = DEFAULT, on_path=None, on_head=None):
        self.identity = identity
        self.store = store
        self.clock = clock
        self.connector = connector  # (hub id, "HOST:PORT", protocol) -> Deferred
        self.dialer_protocol = dialer_protocol  # (opening frame) -> a PeerProtocol
        self.attempt = attempt  # how a PeerLink tries: PeerPaths.attempt
        self.circuits = circuits  # listened on for a relayed peer we do not redial
        self.limits = limits
        # (hub id, path or None): a peering's link came up on a path, or went
        # (``Upgrades`` moves relayed ones onto direct paths).
        self.on_path = on_path or (lambda hub_id, path: None)
        self.on_head = on_head or (lambda hub_id, head: None)  # a head a peer gossiped
        self.inbox = Inbox(store, clock)  # what peers send us
        # (hub id, text, Deferred) to send and (hub id, seq) acknowledged by the peer,
        # each committed in groups.
        self._queued = GroupCommit(clock, self._commit_queued,
                                   size=lambda item: len(item[1]),
                                   max_bytes=MAX_QUEUED_BYTES)
        self._acks = GroupCommit(clock, self._commit_acks)
        self.connections: dict = {}  # hub id -> its attached PeerProtocol
        self.links: dict[str, PeerLink] = {}

    def now(self) -> int:
        return int(self.clock.seconds())

    # -- lifecycle ------------------------------------------------------------------
    def start(self):
        for peer in self.store.peers():
            if peer["dialer"] and (peer["address"] or peer["path"] == RELAYED):
                self._link(peer["id"]).start()
            elif not peer["dialer"]:  # it redials us: directly, or over a circuit
                self.circuits.listen(peer["id"])

    def stop(self):
        """Close the links, telling each peer why, then stop keeping them up."""
        for proto in list(self.connections.values()):
            proto.close("hub stopping")
        for link in self.links.values():
            link.stop()

    # -- dialing --------------------------------------------------------------------
    def hello_for(self, hub_id: str):
        """The opening frame for a dial to an established or accepted peer."""
        return ("peer-hello",
                {"hello": sign_peer_hello(self.identity, hub_id, self.now()).to_json()})

    def dial(self, hub_id: str, address: str, first):
        """Connect to ``hub_id`` at ``address``; fires with (status, reason) once the
        other side answers peer-ready, or fails when the connection does."""
        return self.open(hub_id, address, first)[1]

    def open(self, hub_id: str, address: str, first):
        """(protocol, Deferred): a direct dial, as ``dial``, with its protocol."""
        proto = self.dialer_protocol(first)
        ready = proto.ready
        d = self.connector(hub_id, address, proto)
        d.addCallback(lambda _: ready)
        return proto, d

    def _link(self, hub_id: str) -> PeerLink:
        if hub_id not in self.links:
            self.links[hub_id] = PeerLink(hub_id, self.attempt, self.clock)
        return self.links[hub_id]

    def established(self, hub_id: str, address: str | None, dialer: bool,
                    path: str = DIRECT):
        """Record a peering, with the store's other commits of the moment: a Deferred
        that fires True once it is durable (False: it could not be, which is logged).
        The dialing side keeps it up from now on (a relayed one even with no address:
        over a circuit)."""
        now = self.now()
        recorded = self.store.commit(
            lambda store: store.add_peer(hub_id, address, dialer, now, path))
        recorded.addCallbacks(lambda _: True, self._not_recorded, errbackArgs=(hub_id,))
        if dialer and (address or path == RELAYED):
            link = self._link(hub_id)
            if hub_id in self.connections:
                link.up(self.connections[hub_id])
            else:
                link.start()
        recorded.addCallback(self._recorded, hub_id)
        return recorded

    def _recorded(self, ok: bool, hub_id: str) -> bool:
        """Its link came up before it was recorded: those who read the record (the
        upgrades to a direct path) hear of the path again, now that it is there."""
        if hub_id in self.connections:
            self.on_path(hub_id, path_of(self.connections[hub_id]))
        return ok

    @staticmethod
    def _not_recorded(failure, hub_id: str) -> bool:
        failure.trap(StoreError)
        log.error("cannot record the peering with {peer}: {error}", peer=hub_id,
                  error=failure.getErrorMessage())
        return False

    def remove(self, hub_id: str, reason: str) -> bool:
        """End a peering: stop redialing, tell the peer why and close the link, drop
        what it sent that is not committed yet, forget the peer.  True if it was a peer
        or connected.  Its unacknowledged messages stay in the outbox."""
        proto = self.connections.get(hub_id)
        if proto is not None:
            proto.send("error", reason=reason, fatal=True)
            proto.close(reason)
        link = self.links.pop(hub_id, None)
        if link is not None:
            link.stop()
        self.circuits.unlisten(hub_id)
        self.inbox.forget(hub_id)
        was_peer = self.store.peer(hub_id) is not None
        # After any recording still under way (it is committed in order).
        self.store.commit(lambda store: store.remove_peer(hub_id)).addErrback(
            lambda f: log.error("cannot forget the peer {peer}: {error}", peer=hub_id,
                                error=f.getErrorMessage()))
        if was_peer:
            log.info("peering with {peer} ended: {reason}", peer=hub_id, reason=reason)
        return was_peer or proto is not None

    def head_heard(self, proto, head) -> None:
        self.on_head(proto.peer_id, head)

    # -- live connections -----------------------------------------------------------
    def attach(self, proto):
        hub_id = proto.peer_id
        old = self.connections.get(hub_id)
        if old is not None and old is not proto:
            old.close("replaced by a newer connection")
        self.connections[hub_id] = proto
        log.info("peer link up with {peer} ({path} at {address})", peer=hub_id,
                 path=path_of(proto), address=proto.address)
        if hub_id in self.links:
            self.links[hub_id].up(proto)
        self.circuits.unlisten(hub_id)
        peer, path = self.store.peer(hub_id), path_of(proto)
        if peer is not None and peer["path"] != path:
            # How it comes back after a restart; in order with the other commits.
            self.store.commit(lambda store: store.set_peer_path(hub_id, path)).addErrback(
                lambda f: log.error("cannot record the path to {peer}: {error}",
                                    peer=hub_id, error=f.getErrorMessage()))
        proto.sent_seq = proto.acked_seq = 0
        self._pump(proto)
        self.on_path(hub_id, path)

    def _pump(self, proto):
        """Send queued messages, keeping at most ``max_inflight`` unacknowledged on the
        wire, oldest first (so order per sender holds), and only while the connection's
        transport takes them: the rest waits in the outbox, not in memory, until
        ``drained``."""
        hub_id = proto.peer_id
        if proto.paused:
            return
        inflight = self.store.count_unacked(hub_id, up_to=proto.sent_seq,
                                            after=proto.acked_seq)
        room = self.limits.max_inflight - inflight
        if room <= 0:
            return
        with self.store.each_unacked(hub_id, proto.sent_seq, room) as rows:
            for row in rows:
                proto.send("message", seq=row["seq"], text=row["text"], at=row["at"])
                proto.sent_seq = row["seq"]
                if proto.paused:
                    break

    def drained(self, proto):
        """The peer read what was waiting: send on."""
        if self.connections.get(proto.peer_id) is proto:
            self._pump(proto)

    def detach(self, proto, reason: str):
        hub_id = proto.peer_id
        if self.connections.get(hub_id) is proto:
            del self.connections[hub_id]
            log.info("peer link with {peer} closed: {reason}", peer=hub_id, reason=reason)
            if hub_id in self.links:
                self.links[hub_id].lost(proto)
            try:
                peer = self.store.peer(hub_id)
            except StoreError:  # the hub is stopping: its database is closed
                peer = None
            if peer is not None and not peer["dialer"]:
                self.circuits.listen(hub_id)  # it may reach us only over a circuit now
            self.on_path(hub_id, None)

    # -- messages -------------------------------------------------------------------
    def send(self, hub_id: str, text: str) -> Deferred:
        """Queue a message; the Deferred fires with its seq once it is committed.  Whether
        ``hub_id`` may be sent to is the caller's decision (``Handshakes.send``)."""
        decode_id(hub_id)
        if len(text) > MAX_TEXT:
            raise UserError(f"the message is longer than {MAX_TEXT // 1024} KiB")
        d: Deferred = Deferred()
        self._queued.add((hub_id, text, d))
        return d

    def _commit_queued(self, batch) -> Deferred:
        d = self.store.commit_queued([(hub, text) for hub, text, _ in batch], self.now())
        return d.addCallbacks(self._queued_done, self._queue_failed,
                              callbackArgs=(batch,), errbackArgs=(batch,))

    @staticmethod
    def _queue_failed(failure, batch):
        failure.trap(StoreError)
        for _hub, _text, d in batch:
            d.errback(failure.value)

    def _queued_done(self, seqs, batch):
        for (_hub, _text, d), seq in zip(batch, seqs, strict=True):
            d.callback(seq)
        for hub_id in {hub for hub, _, _ in batch}:
            proto = self.connections.get(hub_id)
            if proto is not None:
                self._pump(proto)

    def message_received(self, proto, message):
        """For the inbox's next group commit; acknowledged once it is done."""
        self.inbox.received(proto, message)

    def acked(self, proto, seq: int):
        if seq > proto.sent_seq:
            raise BadMessage(f"ack for message {seq}, which was never sent")
        if seq > proto.acked_seq:
            proto.acked_seq = seq
            self._acks.add((proto.peer_id, seq))
        self._pump(proto)

    def _commit_acks(self, batch) -> Deferred:
        """Record what the peers acknowledged.  If the disk refuses, they are sent
        again later and the receiver drops them as duplicates: nothing is lost."""
        highest: dict = {}
        for hub_id, seq in batch:
            highest[hub_id] = max(seq, highest.get(hub_id, 0))

        def failed(failure):
            failure.trap(StoreError)
            self.inbox.storage_errors += 1
            log.error("cannot record {n} acknowledgement(s): {error}", n=len(highest),
                      error=failure.getErrorMessage())

        return self.store.commit_acks(highest).addErrback(failed)

    @property
    def storage_errors(self) -> int:
        return self.inbox.storage_errors

    def snapshot(self) -> list[dict]:
        """Each peer as ``peers --json`` shows it: a relayed link has the gateway it
        runs through (``via``) and no address, since none is known or shown."""
        rows = []
        for peer in self.store.peers():
            proto = self.connections.get(peer["id"])
            path, via = (path_of(proto), via_of(proto)) if proto else (peer["path"], None)
            address = proto.address if proto else peer["address"]
            rows.append({"id": peer["id"], "path": path, "via": via,
                         "address": None if path == RELAYED else address,
                         "connected": proto is not None, "dialer": bool(peer["dialer"]),
                         "since": peer["established_at"],
                         "unacked": len(self.store.unacked(peer["id"]))})
        return rows
