"""One end of the ceiling splice (``ceiling_splice.py``): a load process that plays a
hub behind a relay circuit with nothing of blockhub in it.

It opens a TLS 1.3 connection to the splice (``tlsmin.Client``, as a hub opens its
gateway connection), names its circuit with 32 bytes, and then runs a second TLS 1.3
session end to end through the splice with the other end (the streamer is its TLS
client, the acknowledger its server), as two hubs run their peer protocol inside a
circuit.  Inside it, the streamer sends frames of the ceiling's shape (4-byte length,
version, type 23, body) and the acknowledger answers each with type 24 (no storage),
with the same window as the stream ceiling.

Commands (JSON lines on stdin; events on stdout):
  connect {port, key (hex), role: stream|ack} -> connected (outer TLS up, key sent)
  stream  {count, size, window}               -> stream_done {t_first, t_last, n}
"""

import argparse
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tlsmin  # noqa: E402
from twisted.internet import reactor  # noqa: E402
from twisted.internet.endpoints import (  # noqa: E402
    TCP4ClientEndpoint,
    connectProtocol,
    wrapClientTLS,
)
from twisted.internet.protocol import Factory, Protocol  # noqa: E402
from twisted.protocols.tls import TLSMemoryBIOFactory  # noqa: E402
from workerio import emit, serve  # noqa: E402

now = time.monotonic
HEADER = struct.Struct(">IBB")
LENGTH = struct.Struct(">I")
MESSAGE, ACK = 23, 24


def frame(code: int, body: bytes) -> bytes:
    return HEADER.pack(2 + len(body), 1, code) + body


class Inner(Protocol):
    """The end-to-end session: frames in, acknowledgements (or their count) out."""

    def __init__(self, worker, role):
        self.worker, self.role = worker, role
        self.buffer = bytearray()

    def dataReceived(self, data):
        buf = self.buffer
        buf += data
        acks = []
        while len(buf) >= 6:
            (length,) = LENGTH.unpack_from(buf)
            if len(buf) < 4 + length:
                break
            code = buf[5]
            if code == MESSAGE and self.role == "ack":
                acks.append(frame(ACK, bytes(buf[6:14])))
            elif code == ACK:
                self.worker.acked(now())
            del buf[:4 + length]
        if acks:
            self.transport.writeSequence(acks)


class Outer(Protocol):
    """The connection to the splice: the circuit's name, then the inner TLS."""

    def __init__(self, key, inner_tls):
        self.key, self.inner_tls = key, inner_tls

    def connectionMade(self):
        self.transport.write(self.key)
        self.inner_tls.makeConnection(self.transport)

    def dataReceived(self, data):
        self.inner_tls.dataReceived(data)

    def connectionLost(self, reason):
        self.inner_tls.connectionLost(reason)


class Worker:
    def __init__(self):
        self.inner = None
        self.stream = None

    def cmd_connect(self, port, key, role, **_):
        inner = self.inner = Inner(self, role)
        creator = tlsmin.Client() if role == "stream" else tlsmin.Server()
        tls = TLSMemoryBIOFactory(creator, role == "stream",
                                  Factory.forProtocol(lambda: inner)).buildProtocol(None)
        endpoint = wrapClientTLS(tlsmin.Client(), TCP4ClientEndpoint(
            reactor, "127.0.0.1", port, timeout=30))
        d = connectProtocol(endpoint, Outer(bytes.fromhex(key), tls))
        d.addCallbacks(lambda _: emit("connected"),
                       lambda f: emit("error", error=f.getErrorMessage()))

    def cmd_stream(self, count, size, window=256, **_):
        self.stream = {"count": count, "sent": 0, "acked": 0, "window": window,
                       "t_first": now(), "filler": b"m" * (size - 8)}
        self._pump()

    def _pump(self):
        s = self.stream
        out = []
        while s["sent"] < s["count"] and s["sent"] - s["acked"] < s["window"]:
            s["sent"] += 1
            out.append(frame(MESSAGE, struct.pack(">Q", s["sent"]) + s["filler"]))
        if out:
            self.inner.transport.writeSequence(out)

    def acked(self, t):
        s = self.stream
        if s is None:
            return
        s["acked"] += 1
        if s["acked"] >= s["count"]:
            self.stream = None
            emit("stream_done", t_first=s["t_first"], t_last=t, n=s["acked"])
        elif s["sent"] - s["acked"] <= s["window"] // 2:
            self._pump()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lifetime", type=float, default=1800.0)
    args = p.parse_args()
    serve(Worker())
    reactor.callLater(args.lifetime, reactor.stop)
    reactor.callWhenRunning(emit, "ready", pid=os.getpid())
    reactor.run()


if __name__ == "__main__":
    main()
