"""What a request must bring before this hub keeps it: a valid invite, or the proof of
work the hub asks of strangers, and room in the pending list.

``check`` runs before anything of the request is stored (its nonce included): an
invite is looked up read-only, a proof costs one hash.  ``use_invite`` then spends the
use durably (``InviteBook``) before the request is accepted.  ``make_room`` keeps the
pending list under its limit.  Whoever is solicited (an approved key, a peer, a hub we
asked) is never asked for work.
"""

from twisted.logger import Logger

from blockhub import proof_of_work
from blockhub.errors import InviteRefused, NotEnoughWork, TooManyPending
from blockhub.wire.canonical import unb64

log = Logger()


class RequestGate:
    def __init__(self, identity, store, book, invites, cost, replies, refusals,
                 max_pending: int):
        self.identity = identity
        self.store = store
        self.book = book
        self.invites = invites  # InviteBook
        self.cost = cost  # RequestCost
        self.replies = replies
        self.refusals = refusals  # a Counter, by reason
        self.max_pending = max_pending

    def solicited(self, hub_id: str) -> bool:
        """A hub we need no proof from: approved, a peer, or one we asked."""
        return (hub_id in self.store.approved_keys() or self.store.peer(hub_id) is not None
                or self.book.open_outgoing(hub_id) is not None)

    def check(self, request) -> None:
        """Refuse a request with an invite we cannot honour, or an unsolicited one
        without enough work; a short proof is answered with the difficulty needed."""
        if request.invite is not None:
            self._told(self.invites.check, request, request.invite)
            return
        bits = self.cost.required()
        if bits == 0 or self.solicited(request.sender):
            return
        if request.pow is not None and proof_of_work.check(
                request.sender, self.identity.id, unb64(request.nonce), request.at,
                request.pow, bits):
            return
        if request.pow is not None:  # a sender that reads the answer
            self.replies.needs_work(request.sender, request.nonce, self.cost.published)
        raise NotEnoughWork(f"a proof of work of {bits} bits is needed")

    def use_invite(self, request) -> None:
        invite_id = self._told(self.invites.use, request, request.invite, request.sender,
                               request.nonce)
        log.info("request from {peer} accepted on invite {invite}", peer=request.sender,
                 invite=invite_id)

    def _told(self, call, request, *args):
        """``call(*args)``; an invite refused is also told to its sender, who can do
        nothing else with it."""
        try:
            return call(*args)
        except InviteRefused as e:
            self.replies.not_kept(request.sender, request.nonce, f"invite refused: {e}")
            raise

    def make_room(self, request) -> None:
        """Keep the pending list under its limit without refusing newcomers: a full list
        drops its oldest request from a key we know nothing of (not a peer, not one we
        asked), and that requester is told.  Throwaway ids then only push each other
        out.  Only a list full of requests from known keys refuses the new one."""
        waiting = self.book.waiting()
        if len(waiting) < self.max_pending:
            return
        strangers = [m for m in waiting
                     if m.peer not in self.book.outgoing and self.store.peer(m.peer) is None]
        if not strangers:
            self.replies.not_kept(request.sender, request.nonce, "the pending list was full")
            raise TooManyPending(f"too many pending requests ({self.max_pending})")
        oldest = min(strangers, key=lambda m: m.expires_at)
        self.refusals["Dropped"] += 1
        log.info("pending list full ({n}); dropping the oldest request, from {peer}",
                 n=len(waiting), peer=oldest.peer)
        oldest.evict("the pending list was full")
