"""Keeping an established peering up, from the side that dials, as an Automat machine
(the typed API).

idle -> dialing -> connected; a failed dial or a lost link -> waiting, which retries
after a jittered exponential delay (``backoff``).  Only the hub that dialed first
reconnects, so the two sides never race each other.  The machine calls ``dial`` and
hears back through ``up``, ``failed`` and ``lost``; an answer that ``dial`` gives at
once is held by Automat until the transition that dialed is done.  Each transition
records the name of the state it enters in ``PeerLink.state``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Protocol

from automat import TypeMachineBuilder
from twisted.internet.interfaces import IDelayedCall

from blockhub import machines
from blockhub.backoff import backoff_delay
from blockhub.timers import cancel


class Inputs(Protocol):
    def start(self) -> None:
        "begin keeping the link up"

    def up(self) -> None:
        "a connection to the peer is established (ours or theirs)"

    def failed(self, reason: str) -> None:
        "the attempt failed"

    def lost(self, reason: str) -> None:
        "the established link closed"

    def retry(self) -> None:
        "the backoff timer fired"

    def stop(self) -> None:
        "stop reconnecting"


class PeerLink:
    """One peering's reconnection: who (``peer``), how (``dial``, called with this link),
    and the backoff's count and timer."""

    def __init__(self, peer: str, dial: Callable[[PeerLink], object], clock,
                 base_delay: float = 1.0, max_delay: float = 60.0,
                 rand: Callable[[], float] = random.random):
        self.peer = peer
        self.dial = dial
        self.clock = clock
        self.base_delay, self.max_delay, self.rand = base_delay, max_delay, rand
        self.failures = 0
        self.state = "idle"
        self._timer: IDelayedCall | None = None
        self._machine = _Machine(self)

    def start(self) -> None:
        self._machine.start()

    def up(self) -> None:
        self._machine.up()

    def failed(self, reason: str) -> None:
        self._machine.failed(reason)

    def lost(self, reason: str) -> None:
        self._machine.lost(reason)

    def stop(self) -> None:
        self._machine.stop()

    def wait(self, machine: Inputs) -> None:
        self.failures += 1
        delay = backoff_delay(self.failures, self.base_delay, self.max_delay, self.rand)
        self._timer = self.clock.callLater(delay, machine.retry)

    def stop_waiting(self) -> None:
        self._timer = cancel(self._timer)


_builder = TypeMachineBuilder(Inputs, PeerLink)
idle = _builder.state("idle")
dialing = _builder.state("dialing")
connected = _builder.state("connected")
waiting = _builder.state("waiting")
stopped = _builder.state("stopped")
_on = machines.on


@_on(idle, [Inputs.start], dialing)
@_on(waiting, [Inputs.retry], dialing)
def _dial(machine: Inputs, link: PeerLink) -> None:
    link.dial(link)


@_on(idle, [Inputs.up], connected)
@_on(dialing, [Inputs.up], connected)
def _connected(machine: Inputs, link: PeerLink) -> None:
    link.failures = 0


@_on(waiting, [Inputs.up], connected)
def _connected_while_waiting(machine: Inputs, link: PeerLink) -> None:
    link.stop_waiting()
    link.failures = 0


@_on(dialing, [Inputs.failed, Inputs.lost], waiting)
@_on(connected, [Inputs.lost], waiting)
def _back_off(machine: Inputs, link: PeerLink, reason: str) -> None:
    link.wait(machine)


@_on(connected, [Inputs.failed], connected)
@_on(waiting, [Inputs.failed, Inputs.lost], waiting)
@_on(stopped, [Inputs.failed, Inputs.lost], stopped)
def _ignore_news(machine: Inputs, link: PeerLink, reason: str) -> None:
    """A late answer from an attempt that no longer matters."""


@_on(connected, [Inputs.up], connected)
@_on(stopped, [Inputs.up, Inputs.start, Inputs.stop], stopped)
def _nothing(machine: Inputs, link: PeerLink) -> None:
    """Already so."""


@_on(idle, [Inputs.stop], stopped)
@_on(dialing, [Inputs.stop], stopped)
@_on(connected, [Inputs.stop], stopped)
def _stop(machine: Inputs, link: PeerLink) -> None:
    """The hub is stopping: no more attempts."""


@_on(waiting, [Inputs.stop], stopped)
def _stop_waiting(machine: Inputs, link: PeerLink) -> None:
    link.stop_waiting()


_Machine = _builder.build()
