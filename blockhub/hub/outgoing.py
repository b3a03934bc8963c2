"""One handshake request this hub made, as an Automat machine (the typed API).

requested (waiting until the receiver is reachable) -> sent -> connected when the
receiver dials us; or sent -> connecting (the receiver accepted through the gateway and
gave its endpoint, so we dial) -> connected.  When the receiver asks a proof of work,
requested -> working while it is found -> requested, and a rejection that asks more
bits goes back to requested.  Ends in rejected (the receiver said no, or did not keep
the request), expired, failed, or cancelled (our operator blocked or unpeered the
receiver).
The behaviours call the ``Handshakes`` manager, which does the sending and dialing; every
change of state is logged and handed to the manager to be written (``changed``).  An
answer the manager gives at once (``relayed``, ``not_delivered``) is held by Automat
until the transition that asked is done.
"""

from __future__ import annotations

from typing import Protocol

from automat import TypeMachineBuilder

from blockhub import machines

OPEN = ("requested", "working", "sent", "connecting")
FINAL = ("connected", "rejected", "expired", "failed", "cancelled")


class Inputs(Protocol):
    def try_send(self) -> None:
        "the gateway or the receiver may be reachable now"

    def ask_again(self) -> None:
        "the operator asked again: send a fresh request (new nonce and time)"

    def relayed(self) -> None:
        "the request went out"

    def solving(self) -> None:
        "the receiver asks a proof of work, and the manager started it"

    def solved(self) -> None:
        "the proof of work is found"

    def harder(self, bits: int) -> None:
        "the receiver answered that it needs a proof of ``bits``"

    def not_delivered(self, reason: str) -> None:
        "the gateway could not deliver it (receiver offline, rate limit)"

    def accepted(self, endpoint: str | None) -> None:
        "an acceptance came back with the receiver's endpoint"

    def peer_connected(self) -> None:
        "a peer link with the receiver is up"

    def dial_failed(self, reason: str) -> None:
        "dialing the receiver failed"

    def refused(self, reason: str) -> None:
        "the receiver said no"

    def cancel(self, reason: str) -> None:
        "our operator no longer wants this peering"

    def timed_out(self) -> None:
        "the request TTL passed"


class Outgoing:
    """The request's facts (receiver, note, the nonce of the latest one sent, why it
    ended) beside its machine; the inputs are the machine's."""

    def __init__(self, manager, peer: str, note: str, invite=None):
        self.manager = manager
        self.peer = peer
        self.note = note
        self.invite = invite  # the Invite this request uses, or None
        self.nonce: str | None = None  # of the latest request sent; an acceptance names it
        # The next request's nonce and time, its proof of work (counter, bits) once
        # found and the Work finding it; what the receiver last said it needs (bits).
        self.draft: tuple[bytes, int] | None = None
        self.proof: tuple[int, int] | None = None
        self.work = None
        self.bits: int | None = None
        self.reason: str | None = None
        self.timer = None
        self.expires_at: int | None = None
        self.state = "requested"
        self._machine = _Machine(self)

    def is_open(self) -> bool:
        return self.state in OPEN

    def changed(self, old: str, event: str, new: str) -> None:
        machines.log_change(f"request to {self.peer[:14]}…", old, event, new, "Outgoing")
        self.manager.state_changed(self, old, new)

    def try_send(self) -> None:
        self._machine.try_send()

    def ask_again(self) -> None:
        self._machine.ask_again()

    def relayed(self) -> None:
        self._machine.relayed()

    def solving(self) -> None:
        self._machine.solving()

    def solved(self) -> None:
        self._machine.solved()

    def harder(self, bits: int) -> None:
        self._machine.harder(bits)

    def not_delivered(self, reason: str) -> None:
        self._machine.not_delivered(reason)

    def accepted(self, endpoint: str | None) -> None:
        self._machine.accepted(endpoint)

    def peer_connected(self) -> None:
        self._machine.peer_connected()

    def dial_failed(self, reason: str) -> None:
        self._machine.dial_failed(reason)

    def refused(self, reason: str) -> None:
        self._machine.refused(reason)

    def cancel(self, reason: str) -> None:
        self._machine.cancel(reason)

    def timed_out(self) -> None:
        self._machine.timed_out()


_builder = TypeMachineBuilder(Inputs, Outgoing)
requested = _builder.state("requested")
working = _builder.state("working")
sent = _builder.state("sent")
connecting = _builder.state("connecting")
connected = _builder.state("connected")
rejected = _builder.state("rejected")
expired = _builder.state("expired")
failed = _builder.state("failed")
cancelled = _builder.state("cancelled")
_on = machines.on
_LIVE = (requested, working, sent, connecting)
_ENDS = (connected, rejected, expired, failed, cancelled)


@_on(requested, [Inputs.try_send, Inputs.ask_again], requested)
@_on(sent, [Inputs.ask_again], sent)
@_on(working, [Inputs.solved], requested)
def _send(machine: Inputs, out: Outgoing) -> None:
    out.manager.send_request(out)


@_on(requested, [Inputs.harder], requested)
@_on(sent, [Inputs.harder], requested)
def _work_harder(machine: Inputs, out: Outgoing, bits: int) -> None:
    out.bits = bits
    out.manager.send_request(out)


@_on(working, [Inputs.harder], working)
def _note_bits(machine: Inputs, out: Outgoing, bits: int) -> None:
    """The proof under way is checked against it once found."""
    out.bits = bits


@_on(requested, [Inputs.not_delivered], requested)
@_on(sent, [Inputs.not_delivered], requested)
def _note(machine: Inputs, out: Outgoing, reason: str) -> None:
    out.reason = reason


@_on(requested, [Inputs.accepted], connecting)
@_on(sent, [Inputs.accepted], connecting)
def _dial(machine: Inputs, out: Outgoing, endpoint: str | None) -> None:
    out.manager.dial_back(out, endpoint)


def _finish(machine: Inputs, out: Outgoing) -> None:
    out.manager.finished(out)


def _end(machine: Inputs, out: Outgoing, reason: str) -> None:
    out.reason = reason
    out.manager.finished(out)


for _live in _LIVE:
    _on(_live, [Inputs.peer_connected], connected)(_finish)
    _on(_live, [Inputs.timed_out], expired)(_finish)
    _on(_live, [Inputs.refused], rejected)(_end)
    _on(_live, [Inputs.cancel], cancelled)(_end)
_on(connecting, [Inputs.dial_failed], failed)(_end)


def _nothing(machine: Inputs, out: Outgoing) -> None:
    """Already so, or too late to matter."""


def _too_late(machine: Inputs, out: Outgoing, news: object) -> None:
    """An answer for a request that has moved on."""


_on(requested, [Inputs.relayed], sent)(_nothing)
_on(requested, [Inputs.solving], working)(_nothing)
_on(sent, [Inputs.solving], working)(_nothing)
_on(working, [Inputs.try_send, Inputs.ask_again], working)(_nothing)
_on(working, [Inputs.not_delivered], working)(_too_late)
_on(sent, [Inputs.try_send, Inputs.relayed], sent)(_nothing)
_on(connecting, [Inputs.try_send, Inputs.ask_again], connecting)(_nothing)
_on(connecting, [Inputs.accepted, Inputs.not_delivered, Inputs.harder],
    connecting)(_too_late)
for _final in _ENDS:
    _on(_final, [Inputs.try_send, Inputs.relayed, Inputs.timed_out, Inputs.solved],
        _final)(_nothing)
    _on(_final, [Inputs.not_delivered, Inputs.accepted, Inputs.refused,
                 Inputs.dial_failed, Inputs.cancel, Inputs.harder], _final)(_too_late)
    if _final is not cancelled:
        _on(_final, [Inputs.peer_connected], _final)(_nothing)
del _live, _final


@_on(cancelled, [Inputs.peer_connected], cancelled)
def _hang_up(machine: Inputs, out: Outgoing) -> None:
    """A link that comes up after our operator said no is closed again."""
    out.manager.unwanted(out)


_Machine = _builder.build()
