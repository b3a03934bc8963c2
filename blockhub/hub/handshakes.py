"""The hub's handshake requests, both ways: make them, check them, decide, connect.

The machines (one ``Outgoing`` per hub we asked, one ``Incoming`` per hub that asked
us) live in the ``RequestBook``; this turns their outputs into requests relayed through
the gateway, dials to peers and answers (``Replies``), and judges what arrives: a
request (seal, signature, freshness, replay, the approval policy), an acceptance, a
rejection.  What a request must bring (an invite, a proof of work, room in the
pending list) is the ``RequestGate``'s to judge, and the proofs we send ``Proofs``'.
A bad request from another hub is refused and counted here; it never closes the
gateway link, which carried it in good faith.  Who may open a peer link is
``PeerDoor``'s decision; what the operator may do is ``Operator``'s.
"""

import collections
import os

from twisted.logger import Logger

from blockhub.errors import BadMessage, ProtocolError, StoreError
from blockhub.handshake_bodies import (
    DEFAULT_WINDOW,
    open_acceptance,
    open_rejection,
    seal_request,
)
from blockhub.hub.incoming import Incoming
from blockhub.hub.intake import Intake
from blockhub.hub.invite_book import InviteBook
from blockhub.hub.outgoing import Outgoing
from blockhub.hub.peers import NOT_RECORDED
from blockhub.hub.proofs import Proofs
from blockhub.hub.replies import Replies
from blockhub.hub.request_book import RequestBook
from blockhub.hub.request_cost import RequestCost
from blockhub.hub.request_gate import RequestGate
from blockhub.hubinfo import parse_endpoint
from blockhub.invites import encode_invite
from blockhub.limits import DEFAULT
from blockhub.wire.canonical import b64, unb64

log = Logger()

DEFAULT_TTL = 86400


class Handshakes:
    def __init__(self, identity, store, clock, hub, channel, peers, paths,
                 request_ttl: int = DEFAULT_TTL, window: int = DEFAULT_WINDOW,
                 max_pending: int = DEFAULT.max_pending, random=os.urandom, watch=None,
                 cost: RequestCost | None = None, run_in_thread=None):
        """``cost``: the proof of work we ask (default: none); ``run_in_thread``: where
        the proofs we are asked for are solved (``Work``)."""
        self.identity = identity
        self.store = store
        self.clock = clock
        self.hub = hub  # where we are reachable (observed, mode, peer_endpoint), directory
        self.channel = channel  # the only way to the gateway
        self.peers = peers
        self.paths = paths  # how to reach a peer: dial, circuit
        self.ttl = request_ttl
        self.window = window
        self.max_pending = max_pending
        self.random = random
        self.book = RequestBook(store, clock)
        self.refusals: collections.Counter = collections.Counter()
        self.replies = Replies(identity, clock, channel, hub, random)
        self.invites = InviteBook(store, clock, random)
        self.cost = cost or RequestCost(clock, 0)
        self.gate = RequestGate(identity, store, self.book, self.invites, self.cost,
                                self.replies, self.refusals, max_pending)
        self.proofs = Proofs(identity, clock, run_in_thread, window, random)
        self.intake = Intake(self, identity, store, clock, self.book, self.gate,
                             request_ttl, window, refuse=self._refuse)
        # watch(machine, old, new): told of every request's change (handshake timings)
        self.watch = watch or (lambda machine, old, new: None)

    def now(self) -> int:
        return int(self.clock.seconds())

    # -- lifecycle ------------------------------------------------------------------
    def start(self):
        """Bring back what was in flight before a restart (``RequestBook.restore``)."""
        self.book.restore(self, self.identity.id)

    def stop(self):
        for out in self.book.outgoing.values():
            self.proofs.cancel(out)
        self.cost.stop()
        self.book.stop()

    # -- what the machines report -----------------------------------------------------
    def state_changed(self, machine, old, new):
        self.book.state_changed(machine, old, new)
        self.watch(machine, old, new)
        if isinstance(machine, Incoming) and "pending" in (old, new):
            self.cost.pending_changed(len(self.book.waiting()))

    def finished(self, machine):
        self.book.finished(machine)
        if isinstance(machine, Incoming):
            self.paths.stop_waiting(machine.peer)
        else:
            self.proofs.cancel(machine)

    # -- asking ---------------------------------------------------------------------
    def ask(self, hub_id: str, note: str, invite=None) -> Outgoing:
        """Make a new request to ``hub_id`` (with ``invite``, an Invite of its) and send
        it as soon as it is stored and can go."""
        now = self.now()
        out = Outgoing(self, hub_id, note, invite)
        code = encode_invite(invite) if invite else None
        self.book.add(out, now + self.ttl)
        kept = self.store.commit(lambda store: store.save_request(
            "out", hub_id, "requested", now, now + self.ttl, note=note, invite=code))
        kept.addCallbacks(lambda _: out.try_send(), self._not_kept, errbackArgs=(out,))
        return out

    @staticmethod
    def _not_kept(failure, out: Outgoing):
        """It is sent only once stored, so that a restart sends it again."""
        failure.trap(StoreError)
        log.error("cannot store the request to {peer}: {error}", peer=out.peer,
                  error=failure.getErrorMessage())
        out.cancel(f"cannot store the request: {failure.getErrorMessage()}")

    def send_request(self, out: Outgoing):
        """Relay the request through the gateway, or in open mode dial the receiver."""
        info = self.hub.directory.hubs.get(out.peer)
        if info is None:
            out.not_delivered("the hub is not online at our gateway; waiting for it")
            return
        fields = self.proofs.prepare(out, info)
        if fields is None:  # a proof is being found first
            return
        assert out.draft is not None  # drawn by prepare
        nonce, at = out.draft
        out.nonce = b64(nonce)
        address = parse_endpoint(self.hub.observed)[0] \
            if self.hub.observed and not self.paths.relay_only else None
        sealed = seal_request(self.identity, out.peer, self.hub.peer_endpoint(), at,
                              nonce, out.note, address, **fields)
        self.proofs.spent(out)
        if info.endpoint and self.hub.mode == "open" and not self.paths.relay_only:
            self.paths.request_directly(out, info.endpoint, sealed, lambda: self.channel.relay(
                out.peer, "request", sealed))
        elif self.channel.relay(out.peer, "request", sealed):
            out.relayed()
        else:
            out.not_delivered("the gateway could not relay it; waiting")

    def dial_back(self, out: Outgoing, endpoint: str | None):
        self.paths.dial_for(out, endpoint, "the receiver accepted but gave no endpoint",
                            relay=True)

    # -- hearing from the gateway ---------------------------------------------------
    def gateway_online(self):
        """Each request decides for itself whether it still needs sending."""
        for out in list(self.book.outgoing.values()):
            out.try_send()

    def hub_appeared(self, hub_id: str):
        out = self.book.outgoing.get(hub_id)
        if out is not None:
            out.try_send()

    def relay_refused(self, message):
        punching = self.paths.punching
        if punching is not None and punching.refused(message["to"], message["reason"]):
            return
        out = self.book.outgoing.get(message["to"])
        if out is not None:
            out.not_delivered(message["reason"])

    def delivered(self, message):
        """A sealed box relayed by the gateway (``deliver``: its base64; ``deliver-raw``:
        its bytes)."""
        try:
            sealed = message["sealed"]
            if isinstance(sealed, str):
                sealed = unb64(sealed)
            if message["kind"] == "request":
                self.intake.relayed(sealed, message["from"])
            elif message["kind"] == "acceptance":
                self._acceptance(sealed, message["from"])
            elif message["kind"] == "punch":
                self._punch(sealed, message["from"])
            else:
                self._rejection(sealed, message["from"])
        except ProtocolError as e:
            self._refuse(message["from"], f"{type(e).__name__}: {e}")
        except StoreError as e:
            # Our disk, not the sender, failed: say so, and keep the gateway link up.
            self._refuse(message["from"], f"StoreError: {e}")

    def _refuse(self, sender, reason):
        """Count by kind (the error's name: Replayed, Blocked, BadSeal, ...) and log."""
        self.refusals[reason.split(":")[0]] += 1
        log.warn("refused a handshake from {sender}: {reason}", sender=sender, reason=reason)

    def _punch(self, sealed, sender):
        if self.paths.punching is None:
            raise BadMessage("this hub does not punch")
        self.paths.punching.delivered(sender, sealed)

    def _acceptance(self, sealed, sender):
        acc = open_acceptance(self.identity, sealed, sender, self.now(), self.window)
        self._answered(sender, acc.request, "acceptance").accepted(acc.endpoint)

    def _rejection(self, sealed, sender):
        rej = open_rejection(self.identity, sealed, sender, self.now(), self.window)
        out = self._answered(sender, rej.request, "rejection")
        if rej.difficulty is not None:
            out.harder(rej.difficulty)
        else:
            out.refused(f"not kept: {rej.reason}")

    def _answered(self, sender: str, request_nonce: str, kind: str) -> Outgoing:
        """Our latest request to ``sender``, which an answer must name by its nonce."""
        out = self.book.outgoing.get(sender)
        if out is None or out.nonce != request_nonce:
            raise BadMessage(f"{kind} for a request we did not make")
        return out

    # -- being asked ----------------------------------------------------------------
    def inbound_request(self, proto, sealed):
        """Open mode: a request made on a direct connection to us."""
        try:
            inc = self.intake.direct(sealed, proto)
        except (ProtocolError, StoreError) as e:
            self._refuse(proto.peer_id, f"{type(e).__name__}: {e}")
            return "rejected", str(e)
        if inc.is_linked():
            recorded = self.peers.established(inc.peer, inc.request.endpoint, dialer=False)
            return recorded.addCallback(
                lambda ok: ("connected", None) if ok else ("rejected", NOT_RECORDED))
        return "pending", "waiting for the operator's approval"

    # -- outputs of Incoming ----------------------------------------------------------
    def awaiting_operator(self, inc: Incoming):
        log.info("request from {peer} waits for the operator: blockhub approve {peer}",
                 peer=inc.peer, note=inc.request.note)

    def refreshed(self, inc: Incoming):
        log.info("request from {peer} renewed", peer=inc.peer)

    def dial_requester(self, inc: Incoming):
        self.paths.dial_for(inc, inc.request.endpoint, "the requester gave no endpoint")

    def send_acceptance(self, inc: Incoming):
        """We could not reach the requester, accepted by key or by the operator (never by
        address range alone): tell it (only it) where to reach us."""
        self.replies.accept(inc)
        self.paths.wait_for(inc.peer)  # or over a circuit, which it asks for

    def send_rejection(self, inc: Incoming, reason: str):
        self.replies.not_kept(inc.peer, inc.request.nonce, reason)

    def unwanted(self, machine):
        """A link came up for a request the operator has since refused: close it."""
        self.peers.remove(machine.peer, "refused by the operator")
