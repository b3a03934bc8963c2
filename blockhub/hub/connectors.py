"""How bytes move for a real hub: key-pinned TLS over TCP to peers and gateways, and
TCP from the hub's listen port for the gateway link and punches (docs/nat.md)."""

import errno
import ipaddress

from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.error import ConnectBindError, ConnectError
from twisted.logger import Logger

from blockhub.hubinfo import parse_endpoint
from blockhub.net.reuse import SharedPortEndpoint
from blockhub.net.tls import PinnedClientCreator

log = Logger()
CONNECT_TIMEOUT = 10
# A peer behind NAT drops our dial without a word: give up soon, then try a circuit.
PEER_CONNECT_TIMEOUT = 5


def tls_connectors(identity, reactor, bind):
    """How bytes move for a real hub: key-pinned TLS over TCP, to peers and gateways.
    The gateway link goes out from our listen port when we listen (``bind()``), so
    that what the gateway sees is where our router maps that port (docs/nat.md); when
    that port cannot be used for it now (a closed link to the gateway from it still
    waits out TIME_WAIT), from any port."""
    def connect_peer(hub_id, address, proto):
        host, port = parse_endpoint(address)
        endpoint = wrapClientTLS(PinnedClientCreator(identity, hub_id),
                                 tcp_endpoint(reactor, host, port, PEER_CONNECT_TIMEOUT))
        return connectProtocol(endpoint, proto)

    def connect_gateway(entry, make_protocol):
        creator = PinnedClientCreator(identity, entry.id)

        def over(tcp):
            return connectProtocol(wrapClientTLS(creator, tcp), make_protocol(creator))

        plain = tcp_endpoint(reactor, entry.host, entry.port, CONNECT_TIMEOUT)
        local = bind()
        if local is None or _ip_version(entry.host) != 4:
            return over(plain)

        def port_busy(failure):
            failure.trap(ConnectError)
            if getattr(failure.value, "osError", None) not in _BUSY \
                    and not failure.check(ConnectBindError):
                return failure
            log.info("connecting to gateway {gateway} from any port: {error}",
                     gateway=entry.id, error=failure.getErrorMessage())
            return over(plain)

        return over(SharedPortEndpoint(reactor, entry.host, entry.port, local,
                                       CONNECT_TIMEOUT)).addErrback(port_busy)

    def connect_punch(address, local, factory):
        host, port = parse_endpoint(address)
        return SharedPortEndpoint(reactor, host, port, local, PEER_CONNECT_TIMEOUT
                                  ).connect(factory)

    return connect_peer, connect_gateway, connect_punch


_BUSY = (errno.EADDRINUSE, errno.EADDRNOTAVAIL)


def tcp_endpoint(reactor, host: str, port: int, timeout: float):
    """A plain TCP endpoint for an address, a resolving one for a name: a peer's
    endpoint is nearly always an address, and ``HostnameEndpoint`` would look even
    that up on a thread (a third of a dial's cost in a burst of handshakes)."""
    version = _ip_version(host)
    if version is None:
        return HostnameEndpoint(reactor, host, port, timeout=timeout)
    kind = TCP4ClientEndpoint if version == 4 else TCP6ClientEndpoint
    return kind(reactor, host, port, timeout=timeout)


def _ip_version(host: str) -> int | None:
    """4 or 6 for an address, None for a name."""
    try:
        return ipaddress.ip_address(host).version
    except ValueError:
        return None
