"""The gateway's side of a hub connection: frames in, calls on its session out.

Each protocol owns the session it is built with (``make_session(self)``, given by the
wiring in ``build.py``); the session decides what each event means.  The protocol only
counts what the framed layer does to a connection on its own (TLS and close timeouts,
a full send queue, a protocol error)."""

from twisted.internet.protocol import Factory

from blockhub.gateway.counters import Counters
from blockhub.net.framed import FramedProtocol
from blockhub.wire import messages


class GatewayProtocol(FramedProtocol):
    # Hubs send something every half of their idle timeout; we ping only after two
    # thirds of ours without a word, so each period costs us one pong (a hub's ping
    # proves it alive) instead of a ping, a pong and two frames read: 10,000 idle hubs
    # cost 2.2 % of a core (4.1 % when they pinged every 20 s; blockhub/net/keepalive.py).
    PING_AFTER = 2 / 3
    PING_UNHEARD = True

    def __init__(self, make_session, counters: Counters, **kw):
        super().__init__(**kw)
        self.counters = counters
        self.session = make_session(self)

    def connectionMade(self):
        super().connectionMade()
        self.session.connected()

    def tls_timed_out(self):
        self.counters.tls_timeouts += 1

    def send_queue_full(self):
        self.counters.send_queue_full += 1

    def close_timed_out(self):
        self.counters.close_timeouts += 1

    def protocol_error(self, error):
        self.counters.protocol_errors += 1
        super().protocol_error(error)

    def send_circuit_data(self, number: int, payload: bytes):
        """A circuit's data for this hub, behind every other frame."""
        self.send_low(messages.encode_circuit_data(number, payload), number)

    def secured(self):
        self.session.secured()

    def messageReceived(self, message):
        self.session.received(message)

    def lost(self, reason):
        self.session.lost(reason)


class GatewayFactory(Factory):
    """Builds each connection's protocol (with its session) with ``make_protocol``."""

    noisy = False

    def __init__(self, make_protocol):
        self.make_protocol = make_protocol

    def buildProtocol(self, addr):
        proto = self.make_protocol()
        proto.factory = self
        return proto
