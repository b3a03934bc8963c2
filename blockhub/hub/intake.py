"""Handshake requests that reach this hub: checked, kept, then decided.

A request is opened and judged (seal, signature, freshness, what the ``RequestGate``
asks, the approval policy) before anything of it is stored.  It is then kept in one
commit, its nonce and its row together; a nonce seen before is a replay and keeps
nothing.  Only then is it decided: an open request from the same hub is renewed, or a
new ``Incoming`` machine starts, which answers.  A request relayed by the gateway is
committed with whatever else commits meanwhile, off the reactor thread
(``Store.commit``); one made on a direct connection to us (open mode) is answered on
that connection at once, so its commit is made there and then.
"""

from blockhub import policy
from blockhub.errors import Blocked, ProtocolError, Replayed, StoreError
from blockhub.handshake_bodies import open_request
from blockhub.hub.incoming import INVITE, Incoming


class Intake:
    def __init__(self, manager, identity, store, clock, book, gate, ttl: int, window: int,
                 refuse):
        self.manager = manager  # what the Incoming machines report to (Handshakes)
        self.refuse = refuse  # (sender, reason): a refusal counted and logged
        self.identity = identity
        self.store = store
        self.clock = clock
        self.book = book
        self.gate = gate
        self.ttl = ttl
        self.window = window

    def direct(self, sealed, proto) -> Incoming:
        """A request on a direct connection: the Incoming machine, or raises."""
        now = int(self.clock.seconds())
        request, host, verdict = self._checked(sealed, proto.peer_id, proto, now)
        with self.store.transaction():
            kept = self._keep(request, host, now)(self.store)
        return self._decide(request, host, verdict, proto, now, kept)

    def relayed(self, sealed, sender):
        """A request relayed by the gateway; raises only what its checks find, and a
        refusal found later (a replay, a full disk) goes to ``refuse``."""
        now = int(self.clock.seconds())
        request, host, verdict = self._checked(sealed, sender, None, now)
        d = self.store.commit(self._keep(request, host, now))
        d.addCallback(lambda kept: self._decide(request, host, verdict, None, now, kept))
        d.addErrback(self._refused_later, sender)

    def _refused_later(self, failure, sender):
        failure.trap(ProtocolError, StoreError)
        self.refuse(sender, f"{failure.type.__name__}: {failure.getErrorMessage()}")

    def _checked(self, sealed, sender, proto, now):
        """(request, the address it came from, the policy's verdict), or raises.

        On a direct connection the address is the one we see; through the gateway it
        is the requester's claim, so an address-range approval then needs an endpoint
        at that address for us to confirm by dialing it."""
        request = open_request(self.identity, sealed, sender, now, self.window)
        self.gate.check(request)
        host = proto.transport.getPeer().host if proto is not None else request.address
        verdict = policy.decide(request.sender, host, self.store.approved_keys(),
                                self.store.approved_ranges(), self.store.blocked_keys())
        if verdict == policy.AUTO_RANGE and proto is None and not request.endpoint:
            verdict = policy.PENDING
        if verdict == policy.BLOCKED:
            raise Blocked("the sender is blocked")
        if verdict == policy.PENDING and request.invite is None and \
                self.book.open_incoming(request.sender) is None:
            self.gate.make_room(request)  # before it is kept: a full list may refuse it
        return request, host, verdict

    def _keep(self, request, host, now):
        """The job that keeps a request: the state its row was written with, or None
        for a replay (nothing kept)."""
        current = self.book.open_incoming(request.sender)
        state = current.state if current is not None else "received"

        def job(store) -> str | None:
            if not store.remember_nonce(request.nonce, now, now - 4 * self.window):
                return None
            store.save_request("in", request.sender, state, now, now + self.ttl,
                               request.note, request.endpoint, host, request.nonce)
            return state

        return job

    def _decide(self, request, host, verdict, proto, now, kept: str | None) -> Incoming:
        if kept is None:
            raise Replayed("replayed handshake (nonce seen before)")
        current = self.book.open_incoming(request.sender)
        if request.invite is not None and verdict != policy.AUTO and \
                (current is None or current.waits_for_operator()):
            self.gate.use_invite(request)  # durably, before the acceptance
            verdict = INVITE
        if current is not None:
            if current.state != kept:  # it moved on while the row was committed
                self.book.state_changed(current, kept, current.state)
            current.renewed(request, host)
            if verdict == INVITE:  # it waited for the operator; the invite decides
                current.invited()
            return current
        inc = Incoming(self.manager, request, host, seen=proto is not None)
        self.book.add(inc, now + self.ttl)
        self._first_input(inc, verdict, direct=proto is not None)
        return inc

    @staticmethod
    def _first_input(inc: Incoming, verdict, direct: bool) -> None:
        if direct:
            if verdict in (policy.AUTO, policy.AUTO_RANGE, INVITE):
                inc.accepted_directly(verdict)
            else:
                inc.hold()
        elif verdict == INVITE:
            inc.invited()
        elif verdict == policy.AUTO:
            inc.key_approved()
        elif verdict == policy.AUTO_RANGE:
            inc.range_matched()
        else:
            inc.hold()
