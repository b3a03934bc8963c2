"""What the hub's operator may do with handshakes and peerings, as the control socket
offers it: ask, list, approve, reject, end a peering, send.

Each operation checks what the operator typed and then hands the decision to the
machine it concerns (through the request book) or to the handshakes and peers; it
answers with the small dicts the CLI prints.  Mistakes are ``UserError``.
"""

from blockhub.errors import UserError
from blockhub.handshake_bodies import MAX_NOTE
from blockhub.ids import decode_id
from blockhub.invites import decode_invite


class Operator:
    def __init__(self, identity, store, clock, book, handshakes, peers,
                 pin_gateways=lambda entries, invite_id: []):
        """``pin_gateways(specs, invite_id)``: pin an invite's gateways (``ID@HOST:PORT``)
        and go to one unless online at one of them already; the ids it added."""
        self.identity = identity
        self.store = store
        self.clock = clock
        self.book = book
        self.handshakes = handshakes
        self.peers = peers
        self.pin_gateways = pin_gateways

    def connect(self, hub_id: str, note: str = "", invite=None) -> dict:
        decode_id(hub_id)
        if hub_id == self.identity.id:
            raise UserError("a hub cannot connect to itself" if invite is None else
                            "this invite is this hub's own")
        if hub_id in self.store.blocked_keys():
            raise UserError(f"{hub_id} is blocked on this hub")
        if hub_id in self.peers.connections:
            return {"peer": hub_id, "state": "connected", "detail": "already connected"}
        if len(note) > MAX_NOTE:
            raise UserError(f"--note is longer than {MAX_NOTE} characters")
        current = self.book.open_outgoing(hub_id)
        if current is not None and (invite is None or current.invite == invite):
            current.note = note or current.note
            current.ask_again()
            return {"peer": hub_id, "state": current.state, "detail": "asked again"}
        if current is not None:
            current.cancel("asked again with an invite")
        out = self.handshakes.ask(hub_id, note, invite)
        return {"peer": hub_id, "state": out.state}

    def connect_invite(self, code: str, note: str = "") -> dict:
        """Ask the hub that made the invite ``code``, with it: pin the invite's gateways
        first, and move to one of them unless online at one already."""
        invite = decode_invite(code)
        if invite.inviter == self.identity.id:
            raise UserError("this invite is this hub's own")
        added = self.pin_gateways(list(invite.gateways), invite.id)
        result = self.connect(invite.inviter, note, invite)
        return dict(result, invite=invite.id, pinned=added,
                    gateways=[spec.partition("@")[0] for spec in invite.gateways])

    def send(self, hub_id: str, text: str):
        """Queue a message to a peer, or to a hub we are still shaking hands with."""
        decode_id(hub_id)
        if self.store.peer(hub_id) is None and not self.book.knows(hub_id):
            raise UserError(f"{hub_id} is not a peer of this hub; ask first with "
                            f"blockhub connect")
        return self.peers.send(hub_id, text)

    def pending(self) -> list[dict]:
        """``address`` is what we saw on a direct connection (``address_source`` "seen"),
        or only the requester's claim for a relayed request ("claimed")."""
        return [{"id": m.peer, "note": m.request.note, "endpoint": m.request.endpoint,
                 "address": m.observed, "expires_at": m.expires_at,
                 "address_source": "seen" if m.seen else "claimed",
                 "reason": m.reason}
                for m in self.book.waiting()]

    def approve(self, hub_id: str) -> dict:
        inc = self.book.incoming.get(hub_id)
        if inc is None or not inc.waits_for_operator():
            raise UserError(f"no pending request from {hub_id}")
        inc.approve()
        return {"peer": hub_id, "state": inc.state}

    def reject(self, hub_id: str, block: bool = False) -> dict:
        """Refuse a request in any state short of connected; with ``block``, also end
        any peering with that key and refuse it from now on."""
        decode_id(hub_id)
        inc = self.book.open_incoming(hub_id)
        if inc is None and not block:
            raise UserError(f"no open request from {hub_id}")
        removed = False
        if block:
            removed = self._block(hub_id)
        else:
            inc.reject("rejected by the operator")
        return {"peer": hub_id, "state": inc.state if inc is not None else "blocked",
                "blocked": block, "removed": removed}

    def unpeer(self, hub_id: str, block: bool = False) -> dict:
        """End the peering with ``hub_id``: close its link, stop redialing it, forget it
        as a peer (unacknowledged messages stay in the outbox); with ``block``, refuse
        it from now on."""
        decode_id(hub_id)
        if block:
            removed = self._block(hub_id)
        elif self.store.peer(hub_id) is None and hub_id not in self.peers.connections:
            raise UserError(f"{hub_id} is not a peer of this hub")
        else:
            removed = self.end(hub_id, "the operator ended the peering")
        return {"peer": hub_id, "removed": removed, "blocked": block}

    def _block(self, hub_id: str) -> bool:
        self.store.block(hub_id, int(self.clock.seconds()))
        return self.end(hub_id, "blocked by the operator")

    def end(self, hub_id: str, reason: str) -> bool:
        """Close every open request with ``hub_id`` and the peering; True if it was a
        peer or connected."""
        out, inc = self.book.open_outgoing(hub_id), self.book.open_incoming(hub_id)
        if out is not None:
            out.cancel(reason)
        if inc is not None:
            inc.reject(reason)
        return self.peers.remove(hub_id, reason)

    def status(self) -> list[dict]:
        """Every request the hub holds, both ways (``status`` shows them)."""
        return self.book.status()
