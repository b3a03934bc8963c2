"""One handshake request this hub received, as an Automat machine (the typed API).

received -> accepted by an approved key or a valid invite (dialing), by an approved
address range (confirming), or pending (the operator decides) -> connected.  A range
is only a claim until this hub reaches the requester at an address in it (confirming:
dialing its endpoint there); if that fails the request goes to the operator, revealing
nothing.  An acceptance that cannot reach the requester sends our endpoint back through
the gateway and waits for the requester to dial us (awaiting).  Ends in connected,
rejected (the operator, or a block), expired (the TTL), or dropped (evicted from a
full pending list).  ``how`` keeps what it was accepted on and survives a restart: a
restored request is built in its state, then told ``restarted`` (only what resuming
needs).  Behaviours call the ``Handshakes`` manager, told of every change (``changed``).
"""

from __future__ import annotations

from typing import Protocol

from automat import TypeMachineBuilder

from blockhub import machines

FINAL = ("connected", "rejected", "expired", "dropped")
ACCEPTED = ("confirming", "dialing", "awaiting")  # what this hub said yes to
KEY, RANGE, OPERATOR, INVITE = "auto", "auto-range", "operator", "invite"  # ``how``


class Inputs(Protocol):
    def key_approved(self) -> None:
        "the policy accepts: the requester's key is approved"

    def range_matched(self) -> None:
        "the policy accepts the address the requester claims, if we can confirm it"

    def invited(self) -> None:
        "the request carries a valid invite of ours, whose use is recorded"

    def accepted_directly(self, how: str) -> None:
        "open mode: a request on a direct connection from an approved key or address"

    def hold(self) -> None:
        "the policy cannot decide: ask the operator"

    def restarted(self) -> None:
        "the hub restarted with this request open: pick up where it was"

    def approve(self) -> None:
        "the operator approved"

    def reject(self, reason: str) -> None:
        "the operator rejected, or blocked the key"

    def evict(self, reason: str) -> None:
        "the pending list is full and this is the oldest request from an unknown key"

    def renewed(self, request: object, observed: str | None) -> None:
        "the same hub asked again"

    def peer_connected(self) -> None:
        "a peer link with the requester is up"

    def dial_failed(self, reason: str) -> None:
        "dialing the requester failed"

    def timed_out(self) -> None:
        "the request TTL passed"


class Incoming:
    """The request (as opened), where it came from, what it was accepted on and why it
    ended, beside its machine; the inputs are the machine's."""

    def __init__(self, manager, request, observed: str | None, how: str | None = None,
                 seen: bool = False, state: str = "received"):
        self.manager = manager
        self.request = request
        self.peer = request.sender
        self.observed = observed
        self.seen = seen  # observed is the address we saw, not the requester's claim
        self.how = how
        self.reason: str | None = None
        self.timer = None
        self.expires_at: int | None = None
        self.state = state
        self._machine = _Machine(self, _STATES[state])

    @classmethod
    def restored(cls, manager, request, observed: str | None, state: str,
                 how: str | None, blocked: bool) -> Incoming:
        """A request back after a restart, in ``state`` on exactly what it was accepted
        on: a range acceptance is confirmed again by dialing, never taken as the
        operator's; one accepted on a basis an older database did not record goes to
        the operator; a request whose key was blocked since is rejected."""
        reason = None
        if blocked:
            target, how, reason = "rejected", None, "blocked by the operator"
        elif state == "confirming" and how == RANGE:
            target = "confirming"
        elif state in ("dialing", "awaiting") and how in (KEY, OPERATOR, INVITE):
            target = "dialing"
        else:
            target, how = "pending", None
        inc = cls(manager, request, observed, how=how, state=target)
        inc.reason = reason
        if target != state:
            inc.changed(state, "restart", target)
        return inc

    def is_open(self) -> bool:
        return self.state not in FINAL

    def is_linked(self) -> bool:
        return self.state == "connected"

    def waits_for_operator(self) -> bool:
        return self.state == "pending"

    def expects_hello(self) -> bool:
        """Whether this hub said yes and so expects the requester's peer-hello."""
        return self.state in ACCEPTED

    def needs_range_check(self) -> bool:
        """Whether a peer-hello counts only from an address in the approved range."""
        return self.state == "confirming"

    def changed(self, old: str, event: str, new: str) -> None:
        machines.log_change(f"request from {self.peer[:14]}…", old, event, new, "Incoming")
        self.manager.state_changed(self, old, new)

    def key_approved(self) -> None:
        self._machine.key_approved()

    def range_matched(self) -> None:
        self._machine.range_matched()

    def invited(self) -> None:
        self._machine.invited()

    def accepted_directly(self, how: str) -> None:
        self._machine.accepted_directly(how)

    def hold(self) -> None:
        self._machine.hold()

    def restarted(self) -> None:
        self._machine.restarted()

    def approve(self) -> None:
        self._machine.approve()

    def reject(self, reason: str) -> None:
        self._machine.reject(reason)

    def evict(self, reason: str) -> None:
        self._machine.evict(reason)

    def renewed(self, request, observed: str | None) -> None:
        self._machine.renewed(request, observed)

    def peer_connected(self) -> None:
        self._machine.peer_connected()

    def dial_failed(self, reason: str) -> None:
        self._machine.dial_failed(reason)

    def timed_out(self) -> None:
        self._machine.timed_out()


_builder = TypeMachineBuilder(Inputs, Incoming)
received = _builder.state("received")
pending = _builder.state("pending")
confirming = _builder.state("confirming")
dialing = _builder.state("dialing")
awaiting = _builder.state("awaiting")
connected = _builder.state("connected")
rejected = _builder.state("rejected")
expired = _builder.state("expired")
dropped = _builder.state("dropped")
_STATES = {s.name: s for s in (received, pending, confirming, dialing, awaiting,
                               connected, rejected, expired, dropped)}
_on = machines.on
_OPEN = (received, pending, confirming, dialing, awaiting)


@_on(received, [Inputs.key_approved], dialing)
def _approved_key(machine: Inputs, inc: Incoming) -> None:
    inc.how = KEY
    inc.manager.dial_requester(inc)


@_on(received, [Inputs.invited], dialing)
@_on(pending, [Inputs.invited], dialing)
def _invited(machine: Inputs, inc: Incoming) -> None:
    inc.how = INVITE
    inc.manager.dial_requester(inc)


@_on(received, [Inputs.range_matched], confirming)
def _approved_range(machine: Inputs, inc: Incoming) -> None:
    inc.how = RANGE
    inc.manager.dial_requester(inc)


@_on(pending, [Inputs.approve], dialing)
def _approved_by_operator(machine: Inputs, inc: Incoming) -> None:
    inc.how = OPERATOR
    inc.manager.dial_requester(inc)


@_on(dialing, [Inputs.restarted], dialing)
@_on(confirming, [Inputs.restarted], confirming)
def _dial_again(machine: Inputs, inc: Incoming) -> None:
    inc.manager.dial_requester(inc)


@_on(received, [Inputs.accepted_directly], connected)
def _accepted_directly(machine: Inputs, inc: Incoming, how: str) -> None:
    inc.how = how
    inc.manager.finished(inc)


@_on(received, [Inputs.hold], pending)
@_on(pending, [Inputs.restarted], pending)
def _ask_operator(machine: Inputs, inc: Incoming) -> None:
    inc.manager.awaiting_operator(inc)


@_on(confirming, [Inputs.dial_failed], pending)
def _unconfirmed(machine: Inputs, inc: Incoming, reason: str) -> None:
    inc.how = None
    inc.reason = f"address not confirmed ({reason})"
    inc.manager.awaiting_operator(inc)


@_on(dialing, [Inputs.dial_failed], awaiting)
def _send_acceptance(machine: Inputs, inc: Incoming, reason: str) -> None:
    inc.reason = reason
    inc.manager.send_acceptance(inc)


@_on(pending, [Inputs.evict], dropped)
def _evicted(machine: Inputs, inc: Incoming, reason: str) -> None:
    inc.reason = reason
    inc.manager.send_rejection(inc, reason)
    inc.manager.finished(inc)


@_on(pending, [Inputs.renewed], pending)
@_on(awaiting, [Inputs.renewed], awaiting)
def _refresh(machine: Inputs, inc: Incoming, request, observed: str | None) -> None:
    inc.request, inc.observed = request, observed
    inc.manager.refreshed(inc)


@_on(confirming, [Inputs.renewed], confirming)
@_on(dialing, [Inputs.renewed], dialing)
def _already_dialing(machine: Inputs, inc: Incoming, request, observed) -> None:
    """Our dial is under way; the renewed request changes nothing."""


def _finish(machine: Inputs, inc: Incoming) -> None:
    inc.manager.finished(inc)


def _end(machine: Inputs, inc: Incoming, reason: str) -> None:
    inc.reason = reason
    inc.manager.finished(inc)


for _live in _OPEN:
    _on(_live, [Inputs.reject], rejected)(_end)
    if _live is not received:
        _on(_live, [Inputs.timed_out], expired)(_finish)
    if _live in (confirming, dialing, awaiting):
        _on(_live, [Inputs.peer_connected], connected)(_finish)
_on(rejected, [Inputs.restarted], rejected)(_finish)


@_on(rejected, [Inputs.peer_connected], rejected)
def _hang_up(machine: Inputs, inc: Incoming) -> None:
    """A dial that was under way when the operator said no may still come back: the
    link it made is closed again."""
    inc.manager.unwanted(inc)


def _nothing(machine: Inputs, inc: Incoming) -> None:
    """Too late to matter."""


def _too_late(machine: Inputs, inc: Incoming, reason: str) -> None:
    """A dial's failure after the request ended needs nothing more."""


_on(rejected, [Inputs.dial_failed], rejected)(_too_late)
for _final in (expired, dropped):
    _on(_final, [Inputs.peer_connected], _final)(_nothing)
    _on(_final, [Inputs.dial_failed], _final)(_too_late)

_Machine = _builder.build()
