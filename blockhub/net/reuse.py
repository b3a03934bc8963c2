"""TCP connections from a chosen local port that a listener already holds.

A hub behind NAT punches a direct path by dialing its peer from its own listen port at
the moment the peer dials it (docs/nat.md): its router then maps that port to the
public port the hub's gateway saw, and lets the peer's dial in as the answer to ours.
Binding a port that a listener holds needs ``SO_REUSEADDR`` and ``SO_REUSEPORT`` on
every socket involved, which ``connectTCP(bindAddress=...)`` does not set; so this is
Twisted's own TCP client with those two options set before the bind, and a call that
sets ``SO_REUSEPORT`` on a listening port.  Only sockets of the same user may share the
port, so no other user can take the listener's connections.
"""

import socket

from twisted.internet import defer, tcp
from twisted.internet.endpoints import _WrappingFactory
from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer


def allow_reuse(port) -> bool:
    """Let sockets of ours bind the port a Twisted TCP listener holds; False when the
    port is not a TCP socket or the platform has no ``SO_REUSEPORT``."""
    sock = getattr(port, "socket", None)
    if sock is None or not hasattr(socket, "SO_REUSEPORT"):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    except OSError:
        return False
    return True


class _SharedPortClient(tcp.Client):
    def createInternetSocket(self):
        sock = super().createInternetSocket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        return sock


class _SharedPortConnector(tcp.Connector):
    def _makeTransport(self):
        return _SharedPortClient(self.host, self.port, self.bindAddress, self, self.reactor)


@implementer(IStreamClientEndpoint)
class SharedPortEndpoint:
    """Like ``TCP4ClientEndpoint`` with ``bindAddress``, but the local port may be one a
    listener of ours holds (``allow_reuse``)."""

    def __init__(self, reactor, host: str, port: int, bind: tuple[str, int],
                 timeout: float = 30):
        self.reactor = reactor
        self.host = host
        self.port = port
        self.bind = bind
        self.timeout = timeout

    def connect(self, factory):
        try:
            wrapping = _WrappingFactory(factory)
            connector = _SharedPortConnector(self.host, self.port, wrapping, self.timeout,
                                             self.bind, self.reactor)
            connector.connect()
            return wrapping._onConnection
        except BaseException:
            return defer.fail()
