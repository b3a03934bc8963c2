"""The ceiling: a minimal Twisted TLS 1.3 server doing the gateway's transport work and
nothing else, to measure what the same machine, reactor and TLS can do at best.

Frames are blockhub's shape (4-byte big-endian length, version byte, type byte, body)
but bodies are opaque bytes of the same sizes as blockhub's: no JSON, no schema, no
signatures, no state machines.  Each connection is a member with a 32-byte key (the
first 32 bytes of its JOIN body).

  JOIN (2)     the newcomer gets WELCOME (3) and every stored PRESENCE (5) frame, in one
               write; every other member gets the newcomer's PRESENCE frame (encoded once)
  UPDATE (6)   re-framed as PRESENCE (5) once and written to every other member
  RELAY (10)   body = target key + payload; the target gets DELIVER (11) = sender key +
               payload (the same size)
  MESSAGE (23) answered with ACK (24) carrying the first 8 bytes of the body (the
               stream ceiling for the peer channel: no storage)
  PING (7)     answered with PONG (8), same body

Usage: ceiling_server.py  (prints {"ev": "ready", "port": N} on stdout; stops when its
standard input closes or after --lifetime seconds)
"""

import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tlsmin  # noqa: E402
from twisted.internet import reactor, stdio  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402
from twisted.protocols.tls import TLSMemoryBIOFactory  # noqa: E402

HEADER = struct.Struct(">IBB")
LENGTH = struct.Struct(">I")
MAX_FRAME = 256 * 1024
NODELAY = bool(os.environ.get("BENCH_NODELAY"))  # an experiment: Twisted leaves Nagle on
JOIN, WELCOME, PRESENCE, UPDATE, PING, PONG = 2, 3, 5, 6, 7, 8
RELAY, DELIVER, MESSAGE, ACK = 10, 11, 23, 24


def frame(code: int, body: bytes) -> bytes:
    return HEADER.pack(2 + len(body), 1, code) + body


class Member(Protocol):
    def __init__(self, hub):
        self.hub = hub
        self.key = None
        self.buffer = bytearray()
        self.presence = None  # our encoded PRESENCE(joined) frame

    def connectionMade(self):
        if NODELAY:
            self.transport.setTcpNoDelay(True)

    def dataReceived(self, data):
        buf = self.buffer
        buf += data
        while len(buf) >= 4:
            (length,) = LENGTH.unpack_from(buf)
            if length > MAX_FRAME or length < 2:
                self.transport.abortConnection()
                return
            if len(buf) < 4 + length:
                break
            code = buf[5]
            body = bytes(buf[6:4 + length])
            del buf[:4 + length]
            self.hub.handle(self, code, body)

    def connectionLost(self, reason):
        self.hub.left(self)


class Hub(Factory):
    def __init__(self):
        self.members: dict[bytes, Member] = {}

    def buildProtocol(self, addr):
        return Member(self)

    def handle(self, m: Member, code: int, body: bytes):
        if code == RELAY:
            target = self.members.get(body[:32])
            if target is not None:
                target.transport.write(frame(DELIVER, m.key + body[32:]))
        elif code == MESSAGE:
            m.transport.write(frame(ACK, body[:8]))
        elif code == UPDATE:
            out = frame(PRESENCE, body)
            for key, other in self.members.items():
                if other is not m:
                    other.transport.write(out)
        elif code == JOIN:
            m.key = body[:32]
            m.presence = frame(PRESENCE, b"J" + body)
            existing = [o.presence for o in self.members.values()]
            m.transport.writeSequence([frame(WELCOME, struct.pack(">I", len(existing)))]
                                      + existing)
            for other in self.members.values():
                other.transport.write(m.presence)
            self.members[m.key] = m
        elif code == PING:
            m.transport.write(frame(PONG, body))

    def left(self, m: Member):
        if m.key is not None and self.members.get(m.key) is m:
            del self.members[m.key]
            out = frame(PRESENCE, b"L" + m.key)
            for other in self.members.values():
                other.transport.write(out)


class Stdin(Protocol):
    def connectionLost(self, reason):
        if reactor.running:
            reactor.stop()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lifetime", type=float, default=1800.0)
    args = p.parse_args()
    factory = TLSMemoryBIOFactory(tlsmin.Server(), False, Hub())
    port = reactor.listenTCP(0, factory, backlog=4096, interface="127.0.0.1")
    sys.stdout.write(json.dumps({"ev": "ready", "port": port.getHost().port}) + "\n")
    sys.stdout.flush()
    stdio.StandardIO(Stdin())
    reactor.callLater(args.lifetime, reactor.stop)
    reactor.run()


if __name__ == "__main__":
    main()
