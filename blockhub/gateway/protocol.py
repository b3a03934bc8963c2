"""The gateway's side of a hub connection: frames in, calls on ``Gateway`` out."""

from twisted.internet.protocol import Factory

from blockhub.net.framed import FramedProtocol


class GatewayProtocol(FramedProtocol):
    def __init__(self, gateway, **kw):
        super().__init__(**kw)
        self.gateway = gateway
        self.counted_ip = None  # set while this connection counts as unauthenticated

    def connectionMade(self):
        super().connectionMade()
        self.gateway.connection_made(self)

    def tls_timed_out(self):
        self.gateway.counters.tls_timeouts += 1

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
