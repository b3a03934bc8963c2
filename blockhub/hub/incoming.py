"""One handshake request this hub received, as an Automat machine.

received -> auto-accepted or pending (the operator decides) -> dialing the requester
-> connected.  When the requester cannot be reached, we send an acceptance with our
endpoint through the gateway and wait for it to dial us (awaiting).  Ends in
rejected or expired.  The outputs call the ``Handshakes`` manager.
"""

from automat import MethodicalMachine

from blockhub.machines import watch

FINAL = ("connected", "rejected", "expired")


class Incoming:
    _machine = MethodicalMachine()
    _setTrace = _machine._setTrace

    def __init__(self, manager, request, observed: str | None):
        self.manager = manager
        self.request = request
        self.peer = request.sender
        self.observed = observed
        self.how = None
        self.reason = None
        self.timer = None
        watch(self, "received", f"request from {self.peer[:14]}…",
              on_change=manager.state_changed)

    @_machine.state(initial=True)
    def received(self):
        "checked; the policy has not decided yet"

    @_machine.state()
    def pending(self):
        "waiting for the operator: blockhub approve / reject"

    @_machine.state()
    def dialing(self):
        "accepted; we dial the requester (seed step 6)"

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

    @_machine.input()
    def auto_accept(self, how):
        "the policy accepts: approved key ('auto') or address range ('auto-range')"

    @_machine.input()
    def hold(self):
        "the policy cannot decide: ask the operator"

    @_machine.input()
    def approve(self):
        "the operator approved"

    @_machine.input()
    def reject(self, reason):
        "the operator rejected, or the key is blocked"

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
    def _mark_auto(self, how):
        self.how = how

    @_machine.output()
    def _mark_direct(self):
        self.how = "auto"

    @_machine.output()
    def _mark_operator(self):
        self.how = "operator"

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
    def _finish(self):
        self.manager.finished(self)

    received.upon(auto_accept, enter=dialing, outputs=[_mark_auto, _dial])
    received.upon(hold, enter=pending, outputs=[_ask_operator])
    received.upon(reject, enter=rejected, outputs=[_note, _finish])
    received.upon(peer_connected, enter=connected, outputs=[_mark_direct, _finish])

    pending.upon(approve, enter=dialing, outputs=[_mark_operator, _dial])
    pending.upon(reject, enter=rejected, outputs=[_note, _finish])
    pending.upon(renewed, enter=pending, outputs=[_refresh])
    pending.upon(timed_out, enter=expired, outputs=[_finish])

    dialing.upon(peer_connected, enter=connected, outputs=[_finish])
    dialing.upon(dial_failed, enter=awaiting, outputs=[_send_acceptance])
    dialing.upon(renewed, enter=dialing, outputs=[])
    dialing.upon(timed_out, enter=expired, outputs=[_finish])

    awaiting.upon(peer_connected, enter=connected, outputs=[_finish])
    awaiting.upon(renewed, enter=awaiting, outputs=[_refresh])
    awaiting.upon(timed_out, enter=expired, outputs=[_finish])
