"""One handshake request this hub received, as an Automat machine.

received -> accepted by an approved key (dialing), by an approved address range
(confirming), or pending (the operator decides) -> connected.  An acceptance by range is
only a claim until this hub reaches the requester at an address in the range: it dials
the requester's endpoint there (confirming), and if that fails the request goes to the
operator as pending, revealing nothing.  An acceptance by key or by the operator that
cannot reach the requester sends our endpoint back through the gateway and waits for
the requester to dial us (awaiting).  Ends in connected, rejected (the operator, or a
block), expired (the TTL), or dropped (evicted from a full pending list).  ``how``
keeps what the request was accepted on, and survives a restart with the state.  The
outputs call the ``Handshakes`` manager.
"""

from automat import MethodicalMachine

from blockhub.machines import watch

FINAL = ("connected", "rejected", "expired", "dropped")
KEY, RANGE, OPERATOR = "auto", "auto-range", "operator"  # what ``how`` may be


class Incoming:
    _machine = MethodicalMachine()
    _setTrace = _machine._setTrace

    def __init__(self, manager, request, observed: str | None, how: str | None = None,
                 seen: bool = False):
        self.manager = manager
        self.request = request
        self.peer = request.sender
        self.observed = observed
        self.seen = seen  # observed is the address we saw, not the requester's claim
        self.how = how
        self.reason = None
        self.timer = None
        self.expires_at = None
        watch(self, "received", f"request from {self.peer[:14]}…",
              on_change=manager.state_changed)

    def restore(self, state: str, how: str | None, blocked: bool) -> None:
        """Bring a request back after a restart in ``state`` on exactly what it was
        accepted on: a range acceptance is confirmed again by dialing, never taken as
        the operator's; one accepted on a basis an older database did not record goes
        to the operator."""
        if blocked:
            self.reject("blocked by the operator")
        elif state == "confirming" and how == RANGE:
            self.range_matched()
        elif state in ("dialing", "awaiting") and how in (KEY, OPERATOR):
            self.resume(how)
        else:
            self.hold()

    @_machine.state(initial=True)
    def received(self):
        "checked; the policy has not decided yet"

    @_machine.state()
    def pending(self):
        "waiting for the operator: blockhub approve / reject"

    @_machine.state()
    def confirming(self):
        "accepted for its address range: we dial it there to confirm the address"

    @_machine.state()
    def dialing(self):
        "accepted by key or by the operator; we dial the requester (the receiver dials)"

    @_machine.state()
    def awaiting(self):
        "the requester is unreachable; our acceptance went back, it dials us"

    @_machine.state()
    def connected(self):
        "the peer link is up"

    @_machine.state()
    def rejected(self):
        "refused by the operator or because the key is blocked"

    @_machine.state()
    def expired(self):
        "nobody decided within the request TTL"

    @_machine.state()
    def dropped(self):
        "evicted from a full pending list; the requester was told"

    @_machine.input()
    def key_approved(self):
        "the policy accepts: the requester's key is approved"

    @_machine.input()
    def range_matched(self):
        "the policy accepts the address the requester claims, if we can confirm it"

    @_machine.input()
    def resume(self, how):
        "after a restart: the request had been accepted by key or by the operator"

    @_machine.input()
    def accepted_directly(self, how):
        "open mode: a request on a direct connection from an approved key or address"

    @_machine.input()
    def hold(self):
        "the policy cannot decide: ask the operator"

    @_machine.input()
    def approve(self):
        "the operator approved"

    @_machine.input()
    def reject(self, reason):
        "the operator rejected, or blocked the key"

    @_machine.input()
    def evict(self, reason):
        "the pending list is full and this is the oldest request from an unknown key"

    @_machine.input()
    def renewed(self, request, observed):
        "the same hub asked again"

    @_machine.input()
    def peer_connected(self):
        "a peer link with the requester is up"

    @_machine.input()
    def dial_failed(self, reason):
        "dialing the requester failed"

    @_machine.input()
    def timed_out(self):
        "the request TTL passed"

    @_machine.output()
    def _mark_key(self):
        self.how = KEY

    @_machine.output()
    def _mark_range(self):
        self.how = RANGE

    @_machine.output()
    def _mark(self, how):
        self.how = how

    @_machine.output()
    def _mark_operator(self):
        self.how = OPERATOR

    @_machine.output()
    def _unconfirmed(self, reason):
        self.how = None
        self.reason = f"address not confirmed ({reason})"

    @_machine.output()
    def _ask_operator(self):
        self.manager.awaiting_operator(self)

    @_machine.output()
    def _dial(self):
        self.manager.dial_requester(self)

    @_machine.output()
    def _send_acceptance(self, reason):
        self.reason = reason
        self.manager.send_acceptance(self)

    @_machine.output()
    def _refresh(self, request, observed):
        self.request, self.observed = request, observed
        self.manager.refreshed(self)

    @_machine.output()
    def _note(self, reason):
        self.reason = reason

    @_machine.output()
    def _tell_requester(self, reason):
        self.manager.send_rejection(self, reason)

    @_machine.output()
    def _hang_up(self):
        self.manager.unwanted(self)

    @_machine.output()
    def _finish(self):
        self.manager.finished(self)

    received.upon(key_approved, enter=dialing, outputs=[_mark_key, _dial])
    received.upon(range_matched, enter=confirming, outputs=[_mark_range, _dial])
    received.upon(resume, enter=dialing, outputs=[_mark, _dial])
    received.upon(hold, enter=pending, outputs=[_ask_operator])
    received.upon(reject, enter=rejected, outputs=[_note, _finish])
    received.upon(accepted_directly, enter=connected, outputs=[_mark, _finish])

    pending.upon(approve, enter=dialing, outputs=[_mark_operator, _dial])
    pending.upon(reject, enter=rejected, outputs=[_note, _finish])
    pending.upon(evict, enter=dropped, outputs=[_note, _tell_requester, _finish])
    pending.upon(renewed, enter=pending, outputs=[_refresh])
    pending.upon(timed_out, enter=expired, outputs=[_finish])

    confirming.upon(peer_connected, enter=connected, outputs=[_finish])
    confirming.upon(dial_failed, enter=pending, outputs=[_unconfirmed, _ask_operator])
    confirming.upon(reject, enter=rejected, outputs=[_note, _finish])
    confirming.upon(renewed, enter=confirming, outputs=[])
    confirming.upon(timed_out, enter=expired, outputs=[_finish])

    dialing.upon(peer_connected, enter=connected, outputs=[_finish])
    dialing.upon(dial_failed, enter=awaiting, outputs=[_send_acceptance])
    dialing.upon(reject, enter=rejected, outputs=[_note, _finish])
    dialing.upon(renewed, enter=dialing, outputs=[])
    dialing.upon(timed_out, enter=expired, outputs=[_finish])

    awaiting.upon(peer_connected, enter=connected, outputs=[_finish])
    awaiting.upon(reject, enter=rejected, outputs=[_note, _finish])
    awaiting.upon(renewed, enter=awaiting, outputs=[_refresh])
    awaiting.upon(timed_out, enter=expired, outputs=[_finish])

    # A dial that was under way when the operator said no may still come back: the link
    # it made is closed again; a failure needs nothing more.
    rejected.upon(peer_connected, enter=rejected, outputs=[_hang_up])
    rejected.upon(dial_failed, enter=rejected, outputs=[])
    for _final in (expired, dropped):
        _final.upon(peer_connected, enter=_final, outputs=[])
        _final.upon(dial_failed, enter=_final, outputs=[])
    del _final
