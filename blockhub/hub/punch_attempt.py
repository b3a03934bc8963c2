"""One try at punching a direct path to a peer, from the side that will be the TLS
client, as an Automat machine (the typed API).

new --start--> offering (our ``offer`` went out; the answer is awaited, bounded)
--answered--> going (our ``go`` went out; we wait half the measured round trip, so
that our dial leaves about when the peer's does) --dial--> dialing (every address the
peer gave, from our listen port, bounded) --connected--> direct.  Any failure, a
timeout or a cancel ends it in failed.  The first TCP connection to come up wins and
alone carries TLS: the others are aborted before a byte goes on them, so the peer
never sees two links.  The machine asks its ``manager`` (``Punching``) to send and
dial; ``result`` fires with (peer protocol, the address to record or None) or fails
with ``Refused``.
"""

from __future__ import annotations

from typing import Protocol as TypingProtocol

from automat import TypeMachineBuilder
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory, Protocol

from blockhub import machines
from blockhub.errors import Refused
from blockhub.hubinfo import format_address
from blockhub.timers import cancel

ANSWER_WAIT = 3.0  # seconds to wait for the peer's answer
DIAL_WAIT = 3.0  # seconds for the dials (a lost SYN is sent again after 1 s), TLS, peer-ready


class Inputs(TypingProtocol):
    def start(self) -> None:
        "send the offer"

    def answered(self, punch) -> None:
        "the peer's answer came, with its addresses"

    def dial(self) -> None:
        "half the round trip has passed: dial now"

    def connected(self, proto, address: str | None) -> None:
        "a dial came up and the peer said connected"

    def failed(self, reason: str) -> None:
        "no answer, no dial came up, the gateway refused, or we gave up"


class PunchAttempt:
    def __init__(self, manager, peer: str, number: bytes):
        self.manager = manager
        self.peer = peer
        self.number = number  # the attempt's random 16 bytes, in every box
        self.state = "new"
        self.reason = ""
        self.result: Deferred = Deferred()
        self.timer: IDelayedCall | None = None
        self.sent_at = 0.0
        self.candidates: tuple[str, ...] = ()
        self.local: str | None = None  # the peer's address on its network, if it gave one
        self.dials: list[Deferred] = []
        self.chosen = None  # the peer protocol of the connection that won
        self._machine = _Machine(self)

    def start(self) -> None:
        self._machine.start()

    def answered(self, punch) -> None:
        self._machine.answered(punch)

    def failed(self, reason: str) -> None:
        self._machine.failed(reason)

    def changed(self, old: str, event: str, new: str) -> None:
        machines.log_change(f"punch to {self.peer[:14]}…", old, event, new, "PunchAttempt")

    @property
    def live(self) -> bool:
        return self.state in ("new", "offering", "going", "dialing")

    # -- used by the behaviours ---------------------------------------------------------
    def wait(self, seconds: float, then) -> None:
        self.timer = cancel(self.timer)
        self.timer = self.manager.clock.callLater(seconds, then)

    def dial_all(self) -> None:
        factory = _FirstWins(self)
        self.dials = [self.manager.dial_from_listen_port(address, factory)
                      for address in self.candidates]
        for d, address in zip(self.dials, self.candidates, strict=True):
            d.addErrback(self._dial_failed, address)  # only once all are in the list

    def _dial_failed(self, failure, address: str) -> None:
        self.manager.log_dial(self.peer, address, failure.getErrorMessage())
        if self.chosen is None and all(d.called for d in self.dials):
            self._machine.failed("no dial came up")

    def won(self, addr):
        """The first TCP connection of the attempt: TLS and our peer-hello go on it."""
        proto = self.manager.dialer_protocol(self.manager.hello_for(self.peer))
        self.chosen = proto
        address = format_address(addr)
        recorded = address if address == self.local else None  # a punched port is not
        proto.ready.addCallbacks(self._ready, lambda f: self._machine.failed(
            f.getErrorMessage()), callbackArgs=(proto, recorded))  # dialable later
        return self.manager.client_tls(self.peer, proto)

    def _ready(self, answer, proto, recorded) -> None:
        status, reason = answer
        if status == "connected":
            self._machine.connected(proto, recorded)
        else:
            self._machine.failed(f"{status}: {reason}")

    def end(self, reason: str) -> None:
        self.timer = cancel(self.timer)
        for d in self.dials:
            if not d.called:
                d.cancel()
        if self.chosen is not None and self.state == "failed":
            self.chosen.close(reason)
        self.manager.ended(self)


class _FirstWins(Factory):
    def __init__(self, attempt: PunchAttempt):
        self.attempt = attempt

    def buildProtocol(self, addr):
        if self.attempt.chosen is None and self.attempt.state == "dialing":
            return self.attempt.won(addr)
        return _Abort()


class _Abort(Protocol):
    """A connection that came up after another won, or too late."""

    def connectionMade(self):
        self.transport.abortConnection()


_builder = TypeMachineBuilder(Inputs, PunchAttempt)
new = _builder.state("new")
offering = _builder.state("offering")
going = _builder.state("going")
dialing = _builder.state("dialing")
direct = _builder.state("direct")
failed = _builder.state("failed")
_on = machines.on


@_on(new, [Inputs.start], offering)
def _offer(machine: Inputs, attempt: PunchAttempt) -> None:
    attempt.sent_at = attempt.manager.clock.seconds()
    if not attempt.manager.send(attempt.peer, "offer", attempt.number):
        machine.failed("our gateway does not carry punches")
        return
    attempt.wait(ANSWER_WAIT, lambda: machine.failed("the peer did not answer"))


@_on(offering, [Inputs.answered], going)
def _go(machine: Inputs, attempt: PunchAttempt, punch) -> None:
    attempt.candidates, attempt.local = punch.candidates, punch.local
    if not attempt.candidates:
        machine.failed("the peer offers no address")
        return
    rtt = attempt.manager.clock.seconds() - attempt.sent_at
    if not attempt.manager.send(attempt.peer, "go", attempt.number):
        machine.failed("our gateway went away")
        return
    attempt.wait(rtt / 2, machine.dial)


@_on(going, [Inputs.dial], dialing)
def _dial(machine: Inputs, attempt: PunchAttempt) -> None:
    attempt.wait(DIAL_WAIT, lambda: machine.failed("no direct path came up in time"))
    attempt.dial_all()


@_on(dialing, [Inputs.connected], direct)
def _done(machine: Inputs, attempt: PunchAttempt, proto, address) -> None:
    attempt.end("")
    attempt.result.callback((proto, address))


def _fail(machine: Inputs, attempt: PunchAttempt, reason: str) -> None:
    attempt.reason = reason
    attempt.end(reason)
    attempt.result.errback(Refused(reason))


def _late(machine: Inputs, attempt: PunchAttempt, *news) -> None:
    """Too late to matter: the attempt has ended, or the news is not for this step."""


for _live in (new, offering, going, dialing):
    _on(_live, [Inputs.failed], failed)(_fail)
_on(going, [Inputs.answered], going)(_late)
_on(dialing, [Inputs.answered], dialing)(_late)
for _final in (direct, failed):
    _on(_final, [Inputs.answered, Inputs.failed, Inputs.dial], _final)(_late)


@_on(failed, [Inputs.connected], failed)
@_on(direct, [Inputs.connected], direct)
def _hang_up(machine: Inputs, attempt: PunchAttempt, proto, address) -> None:
    """A link that opened after the attempt ended is not ours to keep."""
    if proto is not attempt.chosen or attempt.state == "failed":
        proto.close("the punch attempt had ended")


del _live, _final
_Machine = _builder.build()
