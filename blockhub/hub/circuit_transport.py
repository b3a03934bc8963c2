"""A relay circuit as a transport: what the peer protocol's TLS writes goes to the
gateway as circuit-data, what the gateway delivers is fed to TLS as if from a socket.

Flow control is end to end (docs/circuits.md): this side sends at most the credit the
other side has granted, and holds the rest, pausing its producer (the TLS layer, and
so the peer protocol above it) until credit comes; it grants credit back for what it
has taken, unless its own reader paused it, so a slow reader pauses the writer across
the gateway.  The transport only moves bytes; the circuit's number, its gateway and
the frames come from ``Circuits``.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IAddress, IPushProducer, ITransport
from twisted.python.failure import Failure
from zope.interface import implementer

from blockhub.circuit_flow import WINDOW
from blockhub.wire.messages import MAX_CHUNK

CREDIT_STEP = WINDOW // 4  # what a receiver takes before it grants credit back


@implementer(IAddress)
@attrs.frozen
class CircuitAddress:
    """Where a circuit's peer is, as far as this hub knows: behind this gateway.  Its
    ``host`` is no IP address, so no policy approves it by range and nothing dials it;
    it differs per circuit, so circuits we asked for never share one address's cap
    on connections still opening (the total cap still holds)."""

    gateway: str
    circuit: int
    type: str = "CIRCUIT"

    @property
    def host(self) -> str:
        return f"circuit-{self.circuit}"

    @property
    def port(self) -> int:
        return self.circuit


@implementer(ITransport, IPushProducer)
class CircuitTransport:
    def __init__(self, circuit: int, gateway: str, send_data, send_credit, send_close):
        self.circuit = circuit
        self.address = CircuitAddress(gateway, circuit)
        self._send_data = send_data  # (circuit, bytes): one circuit-data frame
        self._send_credit = send_credit  # (circuit, bytes)
        self._send_close = send_close  # (circuit, reason)
        self.protocol: Any = None
        self.credit = WINDOW  # what we may still send
        self.owed = 0  # what we took and have not credited back yet
        self.sent = self.received = 0
        self.disconnected = False
        self._held = bytearray()  # written, waiting for credit
        self._producer = None
        self._producer_paused = False
        self._reading_paused = False
        self._closing = False

    def connect(self, protocol) -> None:
        self.protocol = protocol
        protocol.makeConnection(self)

    # -- from the gateway -------------------------------------------------------------
    def data(self, payload: bytes) -> None:
        """circuit-data for us: feed it up, and credit it back when due."""
        if self.disconnected:
            return
        self.received += len(payload)
        self.owed += len(payload)
        self.protocol.dataReceived(payload)
        self._grant()

    def credited(self, amount: int) -> bool:
        """circuit-credit for us; False when it is more than we ever sent (the other
        side, or the gateway, broke flow control)."""
        if self.credit + amount > WINDOW:
            return False
        self.credit += amount
        self._flush()
        return True

    def closed(self, reason: str, clean: bool = True) -> None:
        """The circuit is gone (closed by the other side, the gateway, or its loss)."""
        if self.disconnected:
            return
        self.disconnected = True
        self._held.clear()
        error = ConnectionDone if clean else ConnectionLost
        self.protocol.connectionLost(Failure(error(reason)))

    # -- ITransport -----------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.disconnected or self._closing or not data:
            return
        self._held += data
        self._flush()

    def writeSequence(self, data) -> None:
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """Close once what waits has gone (it is bounded by the window)."""
        if self.disconnected or self._closing:
            return
        self._closing = True
        self._finish_if_done()

    def abortConnection(self) -> None:
        self._held.clear()
        self._closing = True
        self._finish_if_done()

    def getPeer(self) -> CircuitAddress:
        return self.address

    def getHost(self) -> CircuitAddress:
        return self.address

    # -- IConsumer (TLS registers the protocol above it) --------------------------------------
    def registerProducer(self, producer, streaming: bool) -> None:
        self._producer = producer
        self._producer_paused = False
        self._pace()

    def unregisterProducer(self) -> None:
        self._producer = None

    # -- IPushProducer (the protocol above us pauses our reading) ------------------------------
    def pauseProducing(self) -> None:
        self._reading_paused = True

    def resumeProducing(self) -> None:
        self._reading_paused = False
        self._grant()

    def stopProducing(self) -> None:
        self.loseConnection()

    # -- inside -----------------------------------------------------------------------
    def _flush(self) -> None:
        while self._held and self.credit > 0 and not self.disconnected:
            size = min(len(self._held), self.credit, MAX_CHUNK)
            chunk = bytes(self._held[:size])
            del self._held[:size]
            self.credit -= size
            self.sent += size
            self._send_data(self.circuit, chunk)
        self._pace()
        self._finish_if_done()

    def _pace(self) -> None:
        """Pause the writer above while bytes wait for credit; resume it after."""
        if self._producer is None or bool(self._held) == self._producer_paused:
            return
        self._producer_paused = bool(self._held)
        if self._producer_paused:
            self._producer.pauseProducing()
        else:
            self._producer.resumeProducing()

    def _grant(self) -> None:
        if self.owed >= CREDIT_STEP and not self._reading_paused and not self.disconnected:
            owed, self.owed = self.owed, 0
            self._send_credit(self.circuit, owed)

    def _finish_if_done(self) -> None:
        if self._closing and not self._held and not self.disconnected:
            self._send_close(self.circuit, "closed by the hub")
            self.closed("closed by this hub")
