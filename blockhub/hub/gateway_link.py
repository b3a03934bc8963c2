"""The hub's connection to its gateways, as one Automat machine.

idle -> connecting -> authenticating -> online; any failure -> backing_off, which
retries after an exponential, jittered delay, moving to the next configured gateway
(failover).  With several gateways and a rotation interval, an online link moves on
to the next gateway on schedule (rotating), the design's mitigation against a
compromised gateway.  The machine never touches a socket: it calls ``dial`` and the
hub's callbacks, and hears back through the methods at the bottom, which ignore
events from a connection that is no longer the current one.

Why not Twisted's ``ClientService``: it keeps one endpoint connected with a backoff
policy, while this link moves between several gateways on failure and on a schedule,
re-aims at a gateway whose signed record says it moved, and is online only once the
gateway admitted us (after hello and join), not when TCP connects.
"""

import random

import attrs
from automat import MethodicalMachine
from twisted.logger import Logger

from blockhub.backoff import backoff_delay
from blockhub.machines import watch
from blockhub.timers import cancel

log = Logger()


class GatewayLink:
    _machine = MethodicalMachine()
    _setTrace = _machine._setTrace
    state: str  # the current state's name, kept by machines.watch

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
        self._attempt = None
        self._refusal = None
        self._retry_timer = None
        self._rotate_timer = None
        watch(self, "idle", "gateway link")

    @property
    def current(self):
        return self.gateways[self.index]

    # -- states ----------------------------------------------------------------------
    @_machine.state(initial=True)
    def idle(self):
        "not started"

    @_machine.state()
    def connecting(self):
        "dialing the current gateway; TLS pins its key"

    @_machine.state()
    def authenticating(self):
        "hello received; join sent; waiting for the welcome"

    @_machine.state()
    def online(self):
        "admitted; presence flows"

    @_machine.state()
    def rotating(self):
        "closing this gateway's connection to move to the next"

    @_machine.state()
    def backing_off(self):
        "waiting before the next attempt"

    @_machine.state()
    def stopped(self):
        "the service is stopping; nothing more happens"

    # -- inputs ----------------------------------------------------------------------
    @_machine.input()
    def start(self):
        "the service started"

    @_machine.input()
    def stop(self):
        "the service is stopping"

    @_machine.input()
    def _dial_failed(self, reason):
        "the TCP connection could not be made"

    @_machine.input()
    def _connected(self, proto):
        "TCP is up (TLS follows)"

    @_machine.input()
    def _hello(self, proto, message):
        "the gateway said hello over pinned TLS"

    @_machine.input()
    def _welcome(self, proto, message):
        "the gateway admitted us"

    @_machine.input()
    def _refused(self, reason):
        "the gateway refused us, with a reason"

    @_machine.input()
    def _lost(self, reason):
        "the connection closed"

    @_machine.input()
    def _retry(self):
        "the backoff timer fired"

    @_machine.input()
    def _rotate(self):
        "the rotation timer fired"

    @_machine.input()
    def _moved(self):
        "the current gateway's address changed"

    # -- outputs ---------------------------------------------------------------------
    @_machine.output()
    def _dial(self):
        entry = self.current
        self.proto = None
        self._refusal = None
        if entry.host is None:
            self._attempt = None
            self.clock.callLater(0, self._dial_failed, "no known address for this gateway")
            return
        log.info("connecting to gateway {gateway} at {address}", gateway=entry.id,
                 address=entry.address)
        d = self._attempt = self.dial(entry)
        d.addCallbacks(self._connected, lambda f: self._dial_failed(f.getErrorMessage()))

    @_machine.output()
    def _attach(self, proto):
        self._attempt = None
        self.proto = proto

    @_machine.output()
    def _send_join(self, proto, message):
        self.hub.send_join(proto, self.current, message)

    @_machine.output()
    def _went_online(self, proto, message):
        self.failures = 0
        self.last_error.pop(self.current.id, None)
        log.info("online at gateway {gateway}", gateway=self.current.id)
        self.hub.online(self.current, proto)

    @_machine.output()
    def _went_offline(self):
        self.hub.offline(self.current)

    @_machine.output()
    def _note_error(self, reason):
        self.last_error[self.current.id] = reason
        log.warn("gateway {gateway}: {reason}", gateway=self.current.id, reason=reason)

    @_machine.output()
    def _fail_over(self):
        self.failures += 1
        self.proto = None
        self.index = (self.index + 1) % len(self.gateways)

    @_machine.output()
    def _schedule_retry(self):
        delay = backoff_delay(self.failures, self.base_delay, self.max_delay, self.rand)
        log.info("next attempt in {delay:.1f}s (gateway {gateway})", delay=delay,
                 gateway=self.current.id)
        self._retry_timer = self.clock.callLater(delay, self._retry)

    @_machine.output()
    def _schedule_rotation(self):
        if self.rotate_interval and len(self.gateways) > 1:
            self._rotate_timer = self.clock.callLater(self.rotate_interval, self._rotate)

    @_machine.output()
    def _cancel_rotation(self):
        self._rotate_timer = cancel(self._rotate_timer)

    @_machine.output()
    def _advance(self):
        log.info("rotating away from gateway {gateway}", gateway=self.current.id)
        self.index = (self.index + 1) % len(self.gateways)

    @_machine.output()
    def _close(self):
        if self.proto is not None:
            self.proto.close("hub stopping" if self.state == "stopped" else "rotating")

    @_machine.output()
    def _close_late(self, proto):
        proto.close("hub stopping")

    @_machine.output()
    def _cancel_all(self):
        if self._attempt is not None:
            self._attempt.cancel()
            self._attempt = None
        self._retry_timer = cancel(self._retry_timer)
        self._rotate_timer = cancel(self._rotate_timer)

    # -- transitions -----------------------------------------------------------------
    idle.upon(start, enter=connecting, outputs=[_dial])
    idle.upon(stop, enter=stopped, outputs=[])

    connecting.upon(_connected, enter=connecting, outputs=[_attach])
    connecting.upon(_dial_failed, enter=backing_off,
                    outputs=[_note_error, _fail_over, _schedule_retry])
    connecting.upon(_hello, enter=authenticating, outputs=[_send_join])
    connecting.upon(_refused, enter=connecting, outputs=[_note_error])
    connecting.upon(_lost, enter=backing_off, outputs=[_note_error, _fail_over, _schedule_retry])
    connecting.upon(stop, enter=stopped, outputs=[_close, _cancel_all])

    authenticating.upon(_welcome, enter=online, outputs=[_went_online, _schedule_rotation])
    authenticating.upon(_refused, enter=authenticating, outputs=[_note_error])
    authenticating.upon(_lost, enter=backing_off,
                        outputs=[_note_error, _fail_over, _schedule_retry])
    authenticating.upon(stop, enter=stopped, outputs=[_close, _cancel_all])

    online.upon(_refused, enter=online, outputs=[_note_error])
    online.upon(_lost, enter=backing_off,
                outputs=[_note_error, _went_offline, _cancel_rotation, _fail_over,
                         _schedule_retry])
    online.upon(_rotate, enter=rotating, outputs=[_went_offline, _close, _advance])
    online.upon(stop, enter=stopped, outputs=[_went_offline, _close, _cancel_all])

    rotating.upon(_lost, enter=connecting, outputs=[_dial])
    rotating.upon(_refused, enter=rotating, outputs=[])
    rotating.upon(stop, enter=stopped, outputs=[_cancel_all])

    backing_off.upon(_retry, enter=connecting, outputs=[_dial])
    backing_off.upon(_moved, enter=connecting, outputs=[_cancel_all, _dial])
    backing_off.upon(stop, enter=stopped, outputs=[_cancel_all])

    stopped.upon(_lost, enter=stopped, outputs=[])
    stopped.upon(_dial_failed, enter=stopped, outputs=[])
    stopped.upon(_connected, enter=stopped, outputs=[_close_late])
    stopped.upon(stop, enter=stopped, outputs=[])
    for _state in (idle, connecting, authenticating, online, rotating, stopped):
        _state.upon(_moved, enter=_state, outputs=[])
    del _state

    # -- events from the current connection --------------------------------------------
    def hello(self, proto, message):
        if proto is self.proto:
            self._hello(proto, message)

    def welcome(self, proto, message):
        if proto is self.proto:
            self._welcome(proto, message)

    def refused(self, proto, reason):
        if proto is self.proto:
            self._refusal = f"refused: {reason}"
            self._refused(self._refusal)

    def shutting_down(self, proto, reason):
        """The gateway announced it is stopping; the close that follows is explained."""
        if proto is self.proto:
            self._refusal = f"gateway shut down: {reason}"

    def lost(self, proto, reason):
        # A refusal explains the close that follows it better than the close does.
        if proto is self.proto:
            self._lost(self._refusal or reason)

    def move(self, gateway_id: str, host: str, port: int):
        """A signed record says this gateway is elsewhere now: use that address from the
        next attempt on (at once, when we are waiting to retry it).  Returns the new
        entry, or None when nothing changed."""
        for i, entry in enumerate(self.gateways):
            if entry.id == gateway_id and (entry.host, entry.port) != (host, port):
                self.gateways[i] = attrs.evolve(entry, host=host, port=port)
                if i == self.index:
                    self._moved()
                return self.gateways[i]
        return None

    def status(self) -> list[dict]:
        rows = []
        for i, entry in enumerate(self.gateways):
            row = {"id": entry.id, "name": entry.name, "address": entry.address,
                   "state": self.state if i == self.index else "standby"}
            if entry.id in self.last_error:
                row["last_error"] = self.last_error[entry.id]
            rows.append(row)
        return rows
