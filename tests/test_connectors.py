"""Which TCP endpoint a dial uses: an address is dialed as it is, a name looked up."""

from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from blockhub.hub.connectors import tcp_endpoint


class TcpEndpointTests(SynchronousTestCase):
    def test_an_address_is_dialed_without_a_lookup(self):
        reactor = MemoryReactor()
        self.assertIsInstance(tcp_endpoint(reactor, "198.18.0.10", 6610, 5),
                              TCP4ClientEndpoint)
        self.assertIsInstance(tcp_endpoint(reactor, "2001:db8::1", 6610, 5),
                              TCP6ClientEndpoint)

    def test_a_name_is_looked_up(self):
        self.assertIsInstance(tcp_endpoint(MemoryReactor(), "gateway.example", 6610, 5),
                              HostnameEndpoint)

    def test_the_dial_goes_to_the_address_with_the_timeout(self):
        reactor = MemoryReactor()
        tcp_endpoint(reactor, "127.0.0.1", 4000, 5).connect(Factory.forProtocol(Protocol))
        host, port, _factory, timeout, _bind = reactor.tcpClients[0]
        self.assertEqual((host, port, timeout), ("127.0.0.1", 4000, 5))

