"""This hub's relay circuits at its gateway (docs/circuits.md): asking for them, and
running each under the peer protocol's TLS as if it were a TCP connection.

Two ways to ask.  ``connect`` is the TLS client's (the hub that keeps the peering up):
one attempt that fires with the opened peer link or fails, bounded in time.
``listen`` is the TLS server's standing wish (an accepted request waiting for the
requester, a relayed peering whose link is down): it asks again whenever the gateway
let a request lapse or the peer comes online, until ``unlisten``.  A circuit the
gateway makes for a peer we asked for as server is handed to the listener's factory,
so the peer door judges its peer-hello exactly as for a direct connection.
"""

from __future__ import annotations

import collections

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from blockhub.errors import Refused
from blockhub.hub.circuit_transport import CircuitTransport
from blockhub.timers import cancel

log = Logger()

CONNECT_WAIT = 40.0  # seconds a client waits for its circuit: the gateway holds 30
LIMITED_WAIT = 30.0  # seconds a listener waits after the gateway's circuit limit


@attrs.define
class _Ask:
    client: bool
    proto: object = None  # the client's peer protocol, made before the circuit
    result: Deferred | None = None  # the client's: fires once the circuit carries TLS
    timer: IDelayedCall | None = None
    waiting_for_peer: bool = False  # refused: the peer is not online at our gateway


class Circuits:
    def __init__(self, channel, clock, client_tls, server_tls, dialer_protocol,
                 connect_wait: float = CONNECT_WAIT):
        self.channel = channel  # sends the circuit frames; knows our gateway
        self.clock = clock
        self.client_tls = client_tls  # (peer id, protocol) -> TLS pinned to the peer
        self.server_tls = server_tls  # (address) -> a TLS protocol for the listener
        self.dialer_protocol = dialer_protocol  # (opening frame) -> a PeerProtocol
        self.connect_wait = connect_wait
        self.asking: dict[str, _Ask] = {}
        self.open: dict[int, CircuitTransport] = {}
        self.peer_of: dict[int, str] = {}
        self.carried = 0  # bytes both ways over circuits already closed
        self.refusals: collections.Counter = collections.Counter()

    # -- asking ---------------------------------------------------------------------
    def connect(self, peer: str, first):
        """(protocol, Deferred): one attempt as the TLS client; the Deferred fires with
        (status, reason) from peer-ready, like a direct dial's."""
        self._drop_ask(peer, Refused("replaced by a newer attempt"))
        proto = self.dialer_protocol(first)
        result: Deferred = Deferred(lambda _: self._drop_ask(peer, None))
        ask = _Ask(True, proto, result)
        ask.timer = self.clock.callLater(self.connect_wait, self._gave_up, peer, ask)
        self.asking[peer] = ask
        self._ask(peer)
        ready = proto.ready
        return proto, result.addCallback(lambda _: ready)

    def listen(self, peer: str) -> None:
        """Keep asking for a circuit to ``peer`` as the TLS server, until unlisten."""
        if peer in self.asking:
            return
        self.asking[peer] = _Ask(False)
        self._ask(peer)

    def unlisten(self, peer: str) -> None:
        ask = self.asking.get(peer)
        if ask is not None and not ask.client:
            del self.asking[peer]

    def _ask(self, peer: str) -> None:
        ask = self.asking[peer]
        ask.waiting_for_peer = False
        if self.channel.online and not self.channel.carries_circuits:
            if ask.client:
                self._drop_ask(peer, Refused("our gateway carries no relay circuits"))
            return  # a listener waits: the next gateway may carry them
        self.channel.circuit_open(peer)  # offline: gateway_online asks again

    def _gave_up(self, peer: str, ask: _Ask) -> None:
        ask.timer = None
        if self.asking.get(peer) is ask:
            self._drop_ask(peer, Refused("no circuit within "
                                         f"{self.connect_wait:g}s"))

    def _drop_ask(self, peer: str, error: Exception | None) -> None:
        ask = self.asking.pop(peer, None)
        if ask is None:
            return
        ask.timer = cancel(ask.timer)
        if error is not None and ask.result is not None and not ask.result.called:
            ask.result.errback(error)

    # -- from the gateway -------------------------------------------------------------
    def gateway_online(self) -> None:
        for peer in list(self.asking):
            self._ask(peer)

    def hub_appeared(self, peer: str) -> None:
        ask = self.asking.get(peer)
        if ask is not None and ask.waiting_for_peer:
            self._ask(peer)

    def refused(self, message) -> None:
        peer, reason = message["to"], message["reason"]
        ask = self.asking.get(peer)
        if ask is None:
            return
        self.refusals["refused by the gateway"] += 1  # by kind: the text is the gateway's
        if ask.client:
            self._drop_ask(peer, Refused(f"no circuit: {reason}"))
        elif "did not ask" in reason:  # the wait lapsed: keep standing
            self.clock.callLater(1.0, self._again, peer, ask)
        elif "too many" in reason:
            self.clock.callLater(LIMITED_WAIT, self._again, peer, ask)
        else:  # not online, left, takes no circuits: ask when it (re)appears
            ask.waiting_for_peer = True

    def _again(self, peer: str, ask: _Ask) -> None:
        if self.asking.get(peer) is ask:
            self._ask(peer)

    def ready(self, message) -> None:
        number, peer = message["circuit"], message["peer"]
        ask = self.asking.get(peer)
        if ask is None:
            log.warn("the gateway made circuit {n} to {peer}, which we did not ask for; "
                     "closing it", n=number, peer=peer)
            self.channel.circuit_close(number, "not asked for")
            return
        transport = self._transport(number, peer)
        if ask.client:
            self.asking.pop(peer)
            ask.timer = cancel(ask.timer)
            transport.connect(self.client_tls(peer, ask.proto))
            if ask.result is not None:
                ask.result.callback(None)
        else:
            transport.connect(self.server_tls(transport.address))
        log.info("circuit {n} to {peer} via gateway {gateway} is open", n=number, peer=peer,
                 gateway=transport.address.gateway)

    def _transport(self, number: int, peer: str) -> CircuitTransport:
        old = self.open.get(number)
        if old is not None:
            self._closed(number, "replaced by the gateway")
        gateway = self.channel.gateway.id if self.channel.gateway is not None else "?"
        transport = CircuitTransport(number, gateway, self.channel.circuit_data,
                                     self.channel.circuit_credit, self._close_ours)
        self.open[number], self.peer_of[number] = transport, peer
        return transport

    def data(self, message) -> None:
        transport = self.open.get(message["circuit"])
        if transport is None:
            self.refusals["unknown circuit"] += 1
            return
        transport.data(message["data"])

    def credit(self, message) -> None:
        number = message["circuit"]
        transport = self.open.get(number)
        if transport is None:
            self.refusals["unknown circuit"] += 1
        elif not transport.credited(message["bytes"]):
            self.channel.circuit_close(number, "flow control violated")
            self._closed(number, "flow control violated", clean=False)

    def closed(self, message) -> None:
        self._closed(message["circuit"], message["reason"])

    def gateway_lost(self) -> None:
        """Every circuit ran through that connection: all are lost."""
        for number in list(self.open):
            self._closed(number, "the gateway connection closed", clean=False)

    def _close_ours(self, number: int, reason: str) -> None:
        self.channel.circuit_close(number, reason)
        self._forget(number)

    def _closed(self, number: int, reason: str, clean: bool = True) -> None:
        transport = self._forget(number)
        if transport is not None:
            transport.closed(reason, clean)

    def _forget(self, number: int) -> CircuitTransport | None:
        transport = self.open.pop(number, None)
        peer = self.peer_of.pop(number, None)
        if transport is not None:
            self.carried += transport.sent + transport.received
        ask = self.asking.get(peer) if peer is not None else None
        if ask is not None and not ask.client:  # still wanted: it ended too soon
            self.clock.callLater(1.0, self._again, peer, ask)
        return transport

    def status(self) -> dict:
        live = sum(t.sent + t.received for t in self.open.values())
        return {"count": len(self.open), "bytes": self.carried + live}
