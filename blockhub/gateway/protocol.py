"""The gateway's side of a hub connection: frames in, calls on ``Gateway`` out."""

from twisted.internet.protocol import Factory

from blockhub.net.framed import FramedProtocol


class GatewayProtocol(FramedProtocol):
    def __init__(self, gateway, **kw):
        super().__init__(**kw)
        self.gateway = gateway
        self.opening = None  # a slot among the unauthenticated until it joins

    def connectionMade(self):
        super().connectionMade()
        self.gateway.connection_made(self)

    def tls_timed_out(self):
        self.gateway.counters.tls_timeouts += 1

    def send_queue_full(self):
        self.gateway.counters.send_queue_full += 1

    def close_timed_out(self):
        self.gateway.counters.close_timeouts += 1

    def protocol_error(self, error):
        self.gateway.counters.protocol_errors += 1
        super().protocol_error(error)

    def secured(self):
        self.gateway.connection_secured(self)

    def messageReceived(self, message):
        self.gateway.received(self, message)

    def lost(self, reason):
        self.gateway.connection_lost(self, reason)


class GatewayFactory(Factory):
    noisy = False

    def __init__(self, gateway, clock, limits):
        self.gateway = gateway
        self.kw = dict(clock=clock, limits=limits)

    def buildProtocol(self, addr):
        return GatewayProtocol(self.gateway, **self.kw)
