"""One handshake request this hub made, as an Automat machine.

requested (waiting until the receiver is reachable) -> sent -> connected when the
receiver dials us; or sent -> connecting (the receiver accepted through the gateway
and gave its endpoint, so we dial) -> connected.  Ends in rejected (the receiver said
no, or did not keep the request), expired, failed, or cancelled (our operator blocked or
unpeered the receiver).
The outputs call the ``Handshakes`` manager, which does the sending and dialing.
"""

from automat import MethodicalMachine

from blockhub.machines import watch

FINAL = ("connected", "rejected", "expired", "failed", "cancelled")


class Outgoing:
    _machine = MethodicalMachine()
    _setTrace = _machine._setTrace

    def __init__(self, manager, peer: str, note: str):
        self.manager = manager
        self.peer = peer
        self.note = note
        self.nonce: str | None = None  # of the latest request sent; an acceptance names it
        self.reason = None
        self.timer = None
        watch(self, "requested", f"request to {peer[:14]}…",
              on_change=manager.state_changed)

    @_machine.state(initial=True)
    def requested(self):
        "built; waiting to be relayed (receiver offline or gateway down)"

    @_machine.state()
    def sent(self):
        "delivered to the receiver's gateway connection or direct connection"

    @_machine.state()
    def connecting(self):
        "the receiver accepted and gave its endpoint; we dial it"

    @_machine.state()
    def connected(self):
        "the peer link is up"

    @_machine.state()
    def rejected(self):
        "the receiver refused"

    @_machine.state()
    def expired(self):
        "no answer within the request TTL"

    @_machine.state()
    def failed(self):
        "accepted, but no connection could be made"

    @_machine.state()
    def cancelled(self):
        "our operator blocked the receiver or ended the peering"

    @_machine.input()
    def try_send(self):
        "the gateway or the receiver may be reachable now"

    @_machine.input()
    def ask_again(self):
        "the operator asked again: send a fresh request (new nonce and time)"

    @_machine.input()
    def relayed(self):
        "the request went out"

    @_machine.input()
    def not_delivered(self, reason):
        "the gateway could not deliver it (receiver offline, rate limit)"

    @_machine.input()
    def accepted(self, endpoint):
        "an acceptance came back with the receiver's endpoint"

    @_machine.input()
    def peer_connected(self):
        "a peer link with the receiver is up"

    @_machine.input()
    def dial_failed(self, reason):
        "dialing the receiver failed"

    @_machine.input()
    def refused(self, reason):
        "the receiver said no"

    @_machine.input()
    def cancel(self, reason):
        "our operator no longer wants this peering"

    @_machine.input()
    def timed_out(self):
        "the request TTL passed"

    @_machine.output()
    def _send(self):
        self.manager.send_request(self)

    @_machine.output()
    def _note(self, reason):
        self.reason = reason

    @_machine.output()
    def _dial(self, endpoint):
        self.manager.dial_back(self, endpoint)

    @_machine.output()
    def _hang_up(self):
        self.manager.unwanted(self)

    @_machine.output()
    def _finish(self):
        self.manager.finished(self)

    requested.upon(try_send, enter=requested, outputs=[_send])
    requested.upon(ask_again, enter=requested, outputs=[_send])
    requested.upon(relayed, enter=sent, outputs=[])
    requested.upon(not_delivered, enter=requested, outputs=[_note])
    requested.upon(accepted, enter=connecting, outputs=[_dial])
    requested.upon(peer_connected, enter=connected, outputs=[_finish])
    requested.upon(refused, enter=rejected, outputs=[_note, _finish])
    requested.upon(timed_out, enter=expired, outputs=[_finish])

    sent.upon(try_send, enter=sent, outputs=[])
    sent.upon(ask_again, enter=sent, outputs=[_send])
    sent.upon(relayed, enter=sent, outputs=[])
    sent.upon(not_delivered, enter=requested, outputs=[_note])
    sent.upon(accepted, enter=connecting, outputs=[_dial])
    sent.upon(peer_connected, enter=connected, outputs=[_finish])
    sent.upon(refused, enter=rejected, outputs=[_note, _finish])
    sent.upon(timed_out, enter=expired, outputs=[_finish])

    connecting.upon(peer_connected, enter=connected, outputs=[_finish])
    connecting.upon(dial_failed, enter=failed, outputs=[_note, _finish])
    connecting.upon(accepted, enter=connecting, outputs=[])
    connecting.upon(try_send, enter=connecting, outputs=[])
    connecting.upon(ask_again, enter=connecting, outputs=[])
    connecting.upon(refused, enter=rejected, outputs=[_note, _finish])
    connecting.upon(timed_out, enter=expired, outputs=[_finish])

    for _live in (requested, sent, connecting):
        _live.upon(cancel, enter=cancelled, outputs=[_note, _finish])
    del _live

    for _final in (connected, rejected, expired, failed, cancelled):
        _final.upon(try_send, enter=_final, outputs=[])
        _final.upon(relayed, enter=_final, outputs=[])
        _final.upon(not_delivered, enter=_final, outputs=[])
        _final.upon(accepted, enter=_final, outputs=[])
        _final.upon(refused, enter=_final, outputs=[])
        _final.upon(dial_failed, enter=_final, outputs=[])
        _final.upon(timed_out, enter=_final, outputs=[])
        _final.upon(cancel, enter=_final, outputs=[])
        if _final is not cancelled:
            _final.upon(peer_connected, enter=_final, outputs=[])
    # A link that comes up after our operator said no is closed again.
    cancelled.upon(peer_connected, enter=cancelled, outputs=[_hang_up])
    del _final
