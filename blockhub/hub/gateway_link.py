"""The hub's connection to its gateways, as one Automat machine (the typed API).

idle -> connecting -> authenticating -> online; any failure -> backing_off, which retries
after a jittered exponential delay at the next configured gateway (failover).  With
several gateways and a rotation interval, an online link moves on to the next on
schedule (rotating), against a compromised gateway.  The machine calls ``dial`` and the
hub's callbacks and hears back through ``GatewayLink``'s event methods, which ignore a
connection that is no longer current.  Every change of state is logged.

Not ``ClientService``: that keeps one endpoint connected, while this link moves between
gateways on failure and on a schedule, re-aims at a gateway whose signed record says it
moved, and is online only once admitted (after hello and join), not when TCP connects.
"""

from __future__ import annotations

import random
from typing import Protocol

from automat import TypeMachineBuilder
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from blockhub import machines
from blockhub.backoff import backoff_delay
from blockhub.timers import cancel

log = Logger()


class Inputs(Protocol):
    # The names are those of the transition log lines operators already read.
    def start(self) -> None:
        "the service started"

    def stop(self) -> None:
        "the service is stopping"

    def _dial_failed(self, reason: str) -> None:
        "the TCP connection could not be made"

    def _connected(self, proto: object) -> None:
        "TCP is up (TLS follows)"

    def _hello(self, proto: object, message: object) -> None:
        "the gateway said hello over pinned TLS"

    def _welcome(self, proto: object, message: object) -> None:
        "the gateway admitted us"

    def _refused(self, reason: str) -> None:
        "the gateway refused us, with a reason"

    def _lost(self, reason: str) -> None:
        "the connection closed"

    def _retry(self) -> None:
        "the backoff timer fired"

    def _rotate(self) -> None:
        "the rotation timer fired"

    def _moved(self) -> None:
        "the current gateway's address changed"


class GatewayLink:
    """Which gateway is current, its connection, the timers, the last errors."""

    def __init__(self, gateways, dial, hub, clock, rotate_interval: float | None = None,
                 base_delay: float = 1.0, max_delay: float = 30.0, rand=random.random):
        self.gateways = list(gateways)
        self.index = 0
        self.dial = dial
        self.hub = hub
        self.clock = clock
        self.rotate_interval = rotate_interval
        self.base_delay, self.max_delay, self.rand = base_delay, max_delay, rand
        self.proto = None
        self.failures = 0
        self.last_error: dict[str, str] = {}
        self.state = "idle"
        self._attempt = None
        self._refusal: str | None = None
        self._retry_timer: IDelayedCall | None = None
        self._rotate_timer: IDelayedCall | None = None
        self._next: int | None = None  # the gateway to go to next, when not the one after
        self.distrusted: set[str] = set()  # caught lying: never dialed again (gateway_pins)
        self._machine = _Machine(self)

    @property
    def current(self):
        return self.gateways[self.index]

    def changed(self, old: str, event: str, new: str) -> None:
        machines.log_change("gateway link", old, event, new, "GatewayLink")

    def start(self) -> None:
        self._machine.start()

    def stop(self) -> None:
        self._machine.stop()

    def hello(self, proto, message):
        if proto is self.proto:
            self._machine._hello(proto, message)

    def welcome(self, proto, message):
        if proto is self.proto:
            self._machine._welcome(proto, message)

    def refused(self, proto, reason):
        if proto is self.proto:
            self._refusal = f"refused: {reason}"
            self._machine._refused(self._refusal)

    def shutting_down(self, proto, reason):
        """The gateway announced it is stopping; the close that follows is explained."""
        if proto is self.proto:
            self._refusal = f"gateway shut down: {reason}"

    def lost(self, proto, reason):
        # A refusal explains the close that follows it better than the close does.
        if proto is self.proto:
            self._machine._lost(self._refusal or reason)

    def current_moved(self) -> None:
        """The current gateway's address changed (``gateway_pins.move``)."""
        self._machine._moved()

    def go_to(self, index: int) -> None:
        """Go to gateway ``index`` now: from online, close and connect there; while
        connecting, once this attempt ends or is admitted."""
        self._next = index
        if self.state == "online":
            self._machine._rotate()
        elif self.state in ("backing_off", "idle", "rotating"):
            self._step()
            if self.state == "backing_off":
                self._machine._retry()

    def _step(self) -> None:
        """To the gateway chosen next, or else the one after the current."""
        self.index = self._next if self._next is not None else \
            (self.index + 1) % len(self.gateways)
        self._next = None

    def dial_current(self, machine: Inputs) -> None:
        entry = self.current
        self.proto = None
        self._refusal = None
        if entry.host is None:
            self._attempt = None
            machine._dial_failed("no known address for this gateway")
            return
        log.info("connecting to gateway {gateway} at {address}", gateway=entry.id,
                 address=entry.address)
        d = self._attempt = self.dial(entry)
        d.addCallbacks(machine._connected,
                       lambda f: machine._dial_failed(f.getErrorMessage()))

    def note_error(self, reason: str) -> None:
        self.last_error[self.current.id] = reason
        log.warn("gateway {gateway}: {reason}", gateway=self.current.id, reason=reason)

    def fail_over(self, machine: Inputs) -> None:
        """Move to the next gateway and wait before trying it."""
        self.failures += 1
        self.proto = None
        self._step()
        delay = backoff_delay(self.failures, self.base_delay, self.max_delay, self.rand)
        log.info("next attempt in {delay:.1f}s (gateway {gateway})", delay=delay,
                 gateway=self.current.id)
        self._retry_timer = self.clock.callLater(delay, machine._retry)

    def close(self, reason: str) -> None:
        if self.proto is not None:
            self.proto.close(reason)

    def cancel_all(self) -> None:
        if self._attempt is not None:
            self._attempt.cancel()
            self._attempt = None
        self._retry_timer = cancel(self._retry_timer)
        self._rotate_timer = cancel(self._rotate_timer)


_builder = TypeMachineBuilder(Inputs, GatewayLink)
idle = _builder.state("idle")
connecting = _builder.state("connecting")
authenticating = _builder.state("authenticating")
online = _builder.state("online")
rotating = _builder.state("rotating")
backing_off = _builder.state("backing_off")
stopped = _builder.state("stopped")
_on = machines.on


@_on(idle, [Inputs.start], connecting)
@_on(rotating, [Inputs._lost], connecting)
@_on(backing_off, [Inputs._retry, Inputs._moved], connecting)
def _dial(machine: Inputs, link: GatewayLink, *reason: str) -> None:
    link.cancel_all()  # a retry that a move made early
    link.dial_current(machine)


@_on(connecting, [Inputs._connected], connecting)
def _attach(machine: Inputs, link: GatewayLink, proto) -> None:
    link._attempt = None
    link.proto = proto


@_on(connecting, [Inputs._hello], authenticating)
def _send_join(machine: Inputs, link: GatewayLink, proto, message) -> None:
    link.hub.send_join(proto, link.current, message)


@_on(authenticating, [Inputs._welcome], online)
def _went_online(machine: Inputs, link: GatewayLink, proto, message) -> None:
    link.failures = 0
    link.last_error.pop(link.current.id, None)
    log.info("online at gateway {gateway}", gateway=link.current.id)
    link.hub.online(link.current, proto)
    if link._next is not None:  # an invite's gateway was chosen while we connected
        link._rotate_timer = link.clock.callLater(0, machine._rotate)
    elif link.rotate_interval and len(link.gateways) > 1:
        link._rotate_timer = link.clock.callLater(link.rotate_interval, machine._rotate)


@_on(connecting, [Inputs._refused], connecting)
@_on(authenticating, [Inputs._refused], authenticating)
@_on(online, [Inputs._refused], online)
def _note_error(machine: Inputs, link: GatewayLink, reason: str) -> None:
    link.note_error(reason)


@_on(connecting, [Inputs._dial_failed, Inputs._lost], backing_off)
@_on(authenticating, [Inputs._lost], backing_off)
def _back_off(machine: Inputs, link: GatewayLink, reason: str) -> None:
    link.note_error(reason)
    link.fail_over(machine)


@_on(online, [Inputs._lost], backing_off)
def _went_offline(machine: Inputs, link: GatewayLink, reason: str) -> None:
    link.note_error(reason)
    link.hub.offline(link.current)
    link._rotate_timer = cancel(link._rotate_timer)
    link.fail_over(machine)


@_on(online, [Inputs._rotate], rotating)
def _rotate_away(machine: Inputs, link: GatewayLink) -> None:
    link.hub.offline(link.current)
    link.close("rotating")
    log.info("rotating away from gateway {gateway}", gateway=link.current.id)
    link._step()


@_on(online, [Inputs.stop], stopped)
def _stop_online(machine: Inputs, link: GatewayLink) -> None:
    link.hub.offline(link.current)
    link.close("hub stopping")
    link.cancel_all()


@_on(connecting, [Inputs.stop], stopped)
@_on(authenticating, [Inputs.stop], stopped)
def _stop_connection(machine: Inputs, link: GatewayLink) -> None:
    link.close("hub stopping")
    link.cancel_all()


@_on(idle, [Inputs.stop], stopped)
@_on(rotating, [Inputs.stop], stopped)
@_on(backing_off, [Inputs.stop], stopped)
def _stop_waiting(machine: Inputs, link: GatewayLink) -> None:
    link.cancel_all()


@_on(stopped, [Inputs._connected], stopped)
def _close_late(machine: Inputs, link: GatewayLink, proto) -> None:
    proto.close("hub stopping")  # a dial that ended after we stopped


@_on(stopped, [Inputs.stop], stopped)
def _nothing(machine: Inputs, link: GatewayLink) -> None:
    """Nothing to do: already so, or the new address is used from the next attempt."""


@_on(rotating, [Inputs._refused], rotating)
@_on(stopped, [Inputs._lost, Inputs._dial_failed], stopped)
def _ignored(machine: Inputs, link: GatewayLink, reason: str) -> None:
    """News from a connection this link has left."""


for _state in (idle, stopped, connecting, authenticating, online, rotating):
    _on(_state, [Inputs._moved], _state)(_nothing)
del _state
_Machine = _builder.build()
