"""In-memory gateway and hubs over real TLS, pumped by hand with iosim and a Clock."""

from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test import iosim

from blockhub.gateway.admission import Admission
from blockhub.gateway.gateway import Gateway
from blockhub.gateway.protocol import GatewayFactory
from blockhub.hub.config import GatewayEntry
from blockhub.hub.gateway_link import GatewayLink
from blockhub.hub.gateway_protocol import HubGatewayProtocol
from blockhub.hub.hub import Hub
from blockhub.identity import Identity, new_phrase
from blockhub.net.tls import PinnedClientCreator, ServerCreator
from blockhub.wire.framing import DEFAULT_MAX_FRAME


def new_identity() -> Identity:
    return Identity.from_phrase(new_phrase())


class World:
    """One gateway and any number of hubs, all in memory, on one Clock."""

    def __init__(self, admission=None, idle_timeout=60.0, gateway_identity=None):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.identity = gateway_identity or new_identity()
        self.gateway = Gateway(self.identity, admission or Admission(), self.clock,
                               random=lambda n: b"\x07" * n)
        self.idle_timeout = idle_timeout
        factory = GatewayFactory(self.gateway, self.clock, DEFAULT_MAX_FRAME, idle_timeout)
        self.server_factory = TLSMemoryBIOFactory(ServerCreator(self.identity), False, factory)
        # TLS aggregates small writes until the next reactor turn: make it our Clock's.
        self.server_factory._clock = self.clock
        self.pumps = []
        self.next_port = 40000

    def add_hub(self, name="hub", identity=None, network_key=None, pin=None,
                listen_port=None, start=True):
        identity = identity or new_identity()
        hub = Hub(identity, name, self.clock, network_key=network_key,
                  listen_port=listen_port)
        entry = GatewayEntry(pin or self.identity.id, "127.0.0.1", 6610, "gw")
        link = GatewayLink([entry], lambda e: self._dial(identity, e, link, hub), hub,
                           self.clock)
        hub.link = link
        if start:
            link.start()
            self.flush()
        return hub

    def _dial(self, identity, entry, link, hub):
        proto = HubGatewayProtocol(link, hub, clock=self.clock, max_frame=DEFAULT_MAX_FRAME,
                                   idle_timeout=self.idle_timeout)
        client = TLSMemoryBIOFactory(PinnedClientCreator(identity, entry.id), True,
                                     Factory.forProtocol(lambda: proto))
        client._clock = self.clock
        self.next_port += 1
        hub_addr = IPv4Address("TCP", "127.0.0.1", self.next_port)
        gw_addr = IPv4Address("TCP", "127.0.0.1", 6610)
        server_proto = self.server_factory.buildProtocol(hub_addr)
        client_proto = client.buildProtocol(gw_addr)
        server_transport = iosim.FakeTransport(server_proto, True, gw_addr, hub_addr)
        client_transport = iosim.FakeTransport(client_proto, False, hub_addr, gw_addr)
        pump = iosim.connect(server_proto, server_transport, client_proto, client_transport,
                             greet=False)
        self.pumps.append(pump)
        proto.server_tls = server_proto
        return succeed(proto)

    def flush(self):
        for _ in range(50):
            self.clock.advance(0)
            moved = False
            for pump in list(self.pumps):
                moved = pump.pump() or moved
            if not moved:
                break
