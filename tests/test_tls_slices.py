"""The gateway's TLS transport writes through OpenSSL a slice at a time (net/tls.py):
every record it sends carries at most ``SLICE`` bytes, and what it carries arrives
whole and in order, written in one go or many."""

import os
import struct

from nacl.signing import SigningKey
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from blockhub.identity import Identity
from blockhub.net import tls

RECORD_HEADER = struct.Struct(">BHH")  # type, version, length
TAG_AND_TYPE = 17  # a TLS 1.3 record's inner content type and AEAD tag


class Collect(Protocol):
    def __init__(self):
        self.data = bytearray()

    def dataReceived(self, data):
        self.data += data


class Recording(iosim.FakeTransport):
    """Keeps every byte the TLS layer wrote, to read its records."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sent = bytearray()

    def write(self, data):
        self.sent += data
        super().write(data)


def records(wire: bytes) -> list[int]:
    lengths, at = [], 0
    while at < len(wire):
        _kind, _version, length = RECORD_HEADER.unpack_from(wire, at)
        lengths.append(length)
        at += RECORD_HEADER.size + length
    return lengths


class SlicedTLSTests(SynchronousTestCase):
    def connect(self):
        clock = Clock()
        server_id = Identity(SigningKey(b"\x31" * 32))
        client_id = Identity(SigningKey(b"\x32" * 32))
        received = Collect()
        server = tls.SlicedTLSFactory(tls.ServerCreator(server_id), False,
                                      Factory.forProtocol(Protocol), clock=clock)
        client = tls.TLSMemoryBIOFactory(tls.PinnedClientCreator(client_id, server_id.id),
                                         True, Factory.forProtocol(lambda: received),
                                         clock=clock)
        server_proto, client_proto = server.buildProtocol(None), client.buildProtocol(None)
        wire = Recording(server_proto, False)
        pump = iosim.connect(server_proto, wire, client_proto,
                             iosim.FakeTransport(client_proto, True), greet=False)
        pump.flush()
        self.assertTrue(server_proto._handshakeDone)
        return clock, pump, server_proto, wire, received

    def test_records_carry_a_slice_at_most_and_the_bytes_arrive_in_order(self):
        clock, pump, server, wire, received = self.connect()
        wire.sent.clear()
        sent = [os.urandom(70_000), os.urandom(3), os.urandom(tls.SLICE * 2 + 1)]
        for data in sent:
            server.write(data)
        clock.advance(0)  # Twisted's write aggregation
        pump.flush()
        self.assertEqual(bytes(received.data), b"".join(sent))
        lengths = records(bytes(wire.sent))
        self.assertLessEqual(max(lengths), tls.SLICE + TAG_AND_TYPE)
        self.assertGreaterEqual(len(lengths), sum(map(len, sent)) // tls.SLICE)
