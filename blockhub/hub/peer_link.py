"""Keeping an established peering up, from the side that dials, as an Automat machine.

idle -> dialing -> connected; a failed dial or a lost link -> waiting, which retries
after a jittered exponential delay.  Only the hub that dialed first reconnects, so the
two sides never race each other.  The machine calls ``dial`` and hears back through
``connected``, ``failed`` and ``lost``.
"""

import random

from automat import MethodicalMachine

from blockhub.backoff import backoff_delay
from blockhub.machines import watch
from blockhub.timers import cancel


class PeerLink:
    _machine = MethodicalMachine()
    _setTrace = _machine._setTrace

    def __init__(self, peer: str, dial, clock, base_delay=1.0, max_delay=60.0,
                 rand=random.random):
        self.peer = peer
        self.dial = dial
        self.clock = clock
        self.base_delay, self.max_delay, self.rand = base_delay, max_delay, rand
        self.failures = 0
        self._timer = None
        watch(self, "idle", f"peer link to {peer[:14]}…", quiet=True)

    @_machine.state(initial=True)
    def idle(self):
        "not started"

    @_machine.state()
    def dialing(self):
        "a connection attempt is under way"

    @_machine.state()
    def connected(self):
        "the link is up"

    @_machine.state()
    def waiting(self):
        "backing off before the next attempt"

    @_machine.state()
    def stopped(self):
        "the hub is stopping"

    @_machine.input()
    def start(self):
        "begin keeping the link up"

    @_machine.input()
    def up(self):
        "a connection to the peer is established (ours or theirs)"

    @_machine.input()
    def failed(self, reason):
        "the attempt failed"

    @_machine.input()
    def lost(self, reason):
        "the established link closed"

    @_machine.input()
    def _retry(self):
        "the backoff timer fired"

    @_machine.input()
    def stop(self):
        "stop reconnecting"

    @_machine.output()
    def _dial(self):
        self.dial(self)

    @_machine.output()
    def _reset(self):
        self.failures = 0

    @_machine.output()
    def _schedule(self):
        self.failures += 1
        delay = backoff_delay(self.failures, self.base_delay, self.max_delay, self.rand)
        self._timer = self.clock.callLater(delay, self._retry)

    @_machine.output()
    def _cancel(self):
        self._timer = cancel(self._timer)

    idle.upon(start, enter=dialing, outputs=[_dial])
    idle.upon(up, enter=connected, outputs=[_reset])
    idle.upon(stop, enter=stopped, outputs=[])
    dialing.upon(up, enter=connected, outputs=[_reset])
    dialing.upon(failed, enter=waiting, outputs=[_schedule])
    dialing.upon(lost, enter=waiting, outputs=[_schedule])
    dialing.upon(stop, enter=stopped, outputs=[])
    connected.upon(up, enter=connected, outputs=[])
    connected.upon(lost, enter=waiting, outputs=[_schedule])
    connected.upon(failed, enter=connected, outputs=[])
    connected.upon(stop, enter=stopped, outputs=[])
    waiting.upon(_retry, enter=dialing, outputs=[_dial])
    waiting.upon(up, enter=connected, outputs=[_cancel, _reset])
    waiting.upon(lost, enter=waiting, outputs=[])
    waiting.upon(failed, enter=waiting, outputs=[])
    waiting.upon(stop, enter=stopped, outputs=[_cancel])
    for _input in (up, failed, lost, stop, start):
        stopped.upon(_input, enter=stopped, outputs=[])
    del _input
