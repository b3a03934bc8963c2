"""The gateway's side of a hub connection: frames in, calls on ``Gateway`` out."""

from twisted.internet.protocol import Factory

from blockhub.net.framed import FramedProtocol


class GatewayProtocol(FramedProtocol):
    def __init__(self, gateway, **kw):
        super().__init__(**kw)
        self.gateway = gateway

    def secured(self):
        self.gateway.connection_secured(self)

    def messageReceived(self, message):
        self.gateway.received(self, message)

    def lost(self, reason):
        self.gateway.connection_lost(self, reason)


class GatewayFactory(Factory):
    noisy = False

    def __init__(self, gateway, clock, max_frame, idle_timeout):
        self.gateway = gateway
        self.kw = dict(clock=clock, max_frame=max_frame, idle_timeout=idle_timeout)

    def buildProtocol(self, addr):
        return GatewayProtocol(self.gateway, **self.kw)
