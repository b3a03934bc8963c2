"""The ceiling for relaying: a minimal Twisted program that terminates two TLS 1.3
connections as the gateway terminates two hubs' and copies the bytes of each to the
other, with no framing, no checks and no limits (a splice).

Each connection starts with 32 bytes naming its circuit (as each hub names the other
in ``circuit-open``); the second connection with the same 32 bytes is joined to the
first, and from then on whatever one sends is written to the other as it arrives
(bytes that came before the partner are written when it does).  Each side's transport
is the other's streaming producer, so a slow reader pauses the writer (what any
Twisted proxy does; there is no window, no credit and no rate).  Written for the
benchmark only; it shares no code with blockhub (TLS from ``tlsmin.py``).

Usage: ceiling_splice.py (prints {"ev": "ready", "port": N} on stdout; commands on
stdin as every benchmark worker: ``stats`` -> {"ev": "stats", "carried": bytes copied,
"joined": circuits}; stops when stdin closes or after --lifetime seconds)
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tlsmin  # noqa: E402
from twisted.internet import reactor  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402
from twisted.protocols.tls import TLSMemoryBIOFactory  # noqa: E402
from workerio import emit, serve  # noqa: E402

KEY = 32


class End(Protocol):
    """One hub's TLS connection, spliced to its partner's."""

    def __init__(self, splice):
        self.splice = splice
        self.key = None
        self.early = bytearray()  # the key, then bytes before the partner came
        self.other = None

    def dataReceived(self, data):
        other = self.other
        if other is not None:
            self.splice.carried += len(data)
            other.transport.write(data)
            return
        self.early += data
        if self.key is None and len(self.early) >= KEY:
            self.key = bytes(self.early[:KEY])
            del self.early[:KEY]
            self.splice.arrived(self)

    def joined(self, other):
        self.other = other
        self.transport.registerProducer(other.transport, True)
        if self.early:
            early, self.early = bytes(self.early), bytearray()
            self.dataReceived(early)

    def connectionLost(self, reason):
        self.splice.left(self)
        if self.other is not None and self.other.transport is not None:
            self.other.transport.loseConnection()


class Splice(Factory):
    def __init__(self):
        self.waiting: dict[bytes, End] = {}
        self.carried = 0
        self.joins = 0

    def buildProtocol(self, addr):
        return End(self)

    def arrived(self, end: End):
        first = self.waiting.pop(end.key, None)
        if first is None:
            self.waiting[end.key] = end
            return
        self.joins += 1
        first.joined(end)
        end.joined(first)

    def left(self, end: End):
        if self.waiting.get(end.key) is end:
            del self.waiting[end.key]

    def cmd_stats(self, **_):
        emit("stats", carried=self.carried, joined=self.joins)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lifetime", type=float, default=1800.0)
    args = p.parse_args()
    splice = Splice()
    port = reactor.listenTCP(0, TLSMemoryBIOFactory(tlsmin.Server(), False, splice),
                             backlog=128, interface="127.0.0.1")
    serve(splice)
    reactor.callLater(args.lifetime, reactor.stop)
    reactor.callWhenRunning(emit, "ready", port=port.getHost().port, pid=os.getpid())
    reactor.run()


if __name__ == "__main__":
    main()
