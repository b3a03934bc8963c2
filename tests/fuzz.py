"""A bounded fuzzer for everything a peer can send: frames into both services'
protocols, and sealed handshakes into the hub's handshake logic.

Inputs start from a corpus of valid frames and are mutated (bit flips, truncation,
splices, absurd length headers, random bodies, wrong-typed fields, bad signatures,
wrong signature domains, boxes sealed to the wrong key).  Each input goes to a fresh
protocol on a ``StringTransport``, so every one meets the full decoder and handler.
Nothing may escape as an exception, the services' tables must stay consistent, and
memory must not grow with the number of inputs.  ``make test`` runs a few thousand
inputs; ``make fuzz`` (tools/fuzz.py) runs a million.
"""

import json
import os
import random
import struct

from nacl.signing import SigningKey
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from blockhub.gateway.admission import Admission
from blockhub.gateway.gateway import Gateway
from blockhub.gateway.protocol import GatewayProtocol
from blockhub.handshake import seal_request
from blockhub.hub.config import GatewayEntry
from blockhub.hub.gateway_link import GatewayLink
from blockhub.hub.gateway_protocol import HubGatewayProtocol
from blockhub.hub.handshakes import Handshakes
from blockhub.hub.hub import Hub
from blockhub.hub.peer_protocol import PeerProtocol
from blockhub.hub.peers import Peers
from blockhub.hub.store import Store
from blockhub.identity import Identity
from blockhub.records import make_hubinfo
from blockhub.wire import envelope, messages
from blockhub.wire.canonical import b64
from blockhub.wire.framing import HEADER


def _identity(seed: int) -> Identity:
    return Identity(SigningKey(bytes([seed]) * 32))


GW, HUB, OTHER, MALLORY = (_identity(n) for n in (1, 2, 3, 4))


def corpus() -> list[bytes]:
    """Valid frames of every kind, including signed and sealed payloads."""
    info = make_hubinfo(HUB, "hub", 1).to_json()
    sealed_ok = b64(seal_request(OTHER, HUB.id, "127.0.0.1:7000", 1_700_000_000,
                                 b"\x01" * 16, "hi"))
    sealed_wrong_key = b64(seal_request(OTHER, MALLORY.id, None, 1_700_000_000,
                                        b"\x02" * 16, "x"))
    wrong_domain = envelope.sign(HUB, "peer-hello", info["body"]).to_json()
    wrong_domain["kind"] = "hubinfo"
    samples = [
        ("hello", dict(gateway=GW.id, observed="127.0.0.1:5000", challenge=b64(b"c" * 32),
                       mode="private", time=1_700_000_000)),
        ("join", dict(hubinfo=info, proof=None)),
        ("join", dict(hubinfo=wrong_domain, proof=b64(b"p" * 32))),
        ("welcome", dict(online=2)),
        ("refused", dict(reason="no")),
        ("presence", dict(event="joined", hub=HUB.id, hubinfo=info)),
        ("presence", dict(event="left", hub=OTHER.id, hubinfo=None)),
        ("update", dict(hubinfo=info)),
        ("ping", dict(n=1)), ("pong", dict(n=1)),
        ("shutdown", dict(reason="bye")),
        ("relay", dict(to=OTHER.id, kind="request", sealed=sealed_ok)),
        ("deliver", {"from": OTHER.id, "kind": "request", "sealed": sealed_ok}),
        ("deliver", {"from": OTHER.id, "kind": "request", "sealed": sealed_wrong_key}),
        ("deliver", {"from": MALLORY.id, "kind": "request", "sealed": sealed_ok}),
        ("deliver", {"from": OTHER.id, "kind": "acceptance", "sealed": sealed_ok}),
        ("relay-refused", dict(to=OTHER.id, reason="offline")),
        ("peer-request", dict(sealed=sealed_ok)),
        ("peer-ready", dict(status="connected", reason=None)),
        ("message", dict(seq=1, text="hello", at=1)),
        ("ack", dict(seq=1)),
        ("error", dict(reason="x", fatal=True)),
    ]
    return [messages.encode(messages.make(kind, **fields)) for kind, fields in samples]


_ODD_VALUES = [None, True, -1, 0, 2**64, 1.5, "", "x" * 5000, [], {}, {"a": [1]},
               "bh" + "a" * 58, HUB.id, "\u0000\ud7ff", "=" * 7]


def mutate(rng: random.Random, frames: list[bytes]) -> bytes:
    frame = bytearray(rng.choice(frames))
    choice = rng.randrange(9)
    if choice == 0:  # flip bits
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(len(frame))
            frame[pos] ^= 1 << rng.randrange(8)
    elif choice == 1:  # truncate
        frame = frame[:rng.randrange(len(frame))]
    elif choice == 2:  # absurd or inconsistent length header
        length = rng.choice([0, 1, 2, 2**31, 2**32 - 1, len(frame) + rng.randint(1, 99)])
        frame[:4] = struct.pack(">I", length)
    elif choice == 3:  # unknown version or type
        frame[4 if rng.random() < 0.5 else 5] = rng.randrange(256)
    elif choice == 4:  # random body
        body = os.urandom(rng.randint(0, 200)) if rng.random() < 0.5 else json.dumps(
            rng.choice(_ODD_VALUES)).encode()
        frame = bytearray(HEADER.pack(2 + len(body), 1, frame[5]) + body)
    elif choice == 5:  # a field of the wrong type or out of bounds
        try:
            body = json.loads(bytes(frame[6:]))
            if body:
                body[rng.choice(sorted(body))] = rng.choice(_ODD_VALUES)
            body = json.dumps(body).encode()
            frame = bytearray(HEADER.pack(2 + len(body), 1, frame[5]) + body)
        except ValueError:
            pass
    elif choice == 6:  # splice two frames
        other = rng.choice(frames)
        frame = frame[:rng.randrange(len(frame))] + other[rng.randrange(len(other)):]
    elif choice == 7:  # several frames back to back, one of them broken
        frame = frame + bytes(mutate(rng, frames)) + rng.choice(frames)
    # choice 8: unchanged, a valid frame out of context
    return bytes(frame)


class Target:
    """Fresh protocols for each input, around long-lived service objects (the real
    gateway, hub, handshake manager, peers manager and store)."""

    def __init__(self, data_dir: str):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.gateway = Gateway(GW, Admission(), self.clock, random=lambda n: b"\x05" * n)
        self.hub = Hub(HUB, "hub", self.clock, listen_port=7000)
        self.store = Store(os.path.join(data_dir, "fuzz.sqlite"))
        self.store.db.execute("PRAGMA synchronous=OFF")  # durability is not under test here
        self.peers = Peers(HUB, self.store, self.clock,
                           lambda hub_id, address, proto: fail(ConnectionRefusedError()))
        self.handshakes = Handshakes(HUB, self.store, self.clock, self.hub, self.peers)
        self.peers.handshakes = self.hub.handshakes = self.handshakes
        self.link = GatewayLink([GatewayEntry(GW.id, "127.0.0.1", 6610)],
                                lambda e: None, self.hub, self.clock)
        self.bugs = []

    def _connect(self, proto, peer_id):
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 40000),
                                    hostAddress=IPv4Address("TCP", "127.0.0.1", 6610))
        proto.makeConnection(transport)
        proto.peer_id = peer_id
        return transport

    def gateway_input(self, data: bytes):
        proto = GatewayProtocol(self.gateway, clock=self.clock)
        self._connect(proto, OTHER.id)
        self.gateway.connection_secured(proto)
        proto.dataReceived(data)
        proto.connectionLost(_closed)

    def hub_input(self, data: bytes):
        proto = HubGatewayProtocol(self.link, self.hub, clock=self.clock)
        self._connect(proto, GW.id)
        proto.admitted = True
        proto.dataReceived(data)
        proto.connectionLost(_closed)

    def peer_input(self, data: bytes):
        proto = PeerProtocol(self.peers, clock=self.clock)
        self._connect(proto, OTHER.id)
        proto.dataReceived(data)
        proto.connectionLost(_closed)

    def _watch(self, event):
        if event.get("log_failure") is not None or event.get("log_level") == LogLevel.critical:
            self.bugs.append(formatEvent(event))

    def run(self, count: int, seed: int = 0):
        rng = random.Random(seed)
        frames = corpus()
        inputs = (self.gateway_input, self.hub_input, self.peer_input)
        globalLogPublisher.addObserver(self._watch)
        try:
            for n in range(count):
                inputs[n % 3](mutate(rng, frames))
                if n % 100 == 99:
                    self.clock.advance(11)  # let timers (join deadlines, pings) run
            self.clock.advance(2 * 86400)
        finally:
            globalLogPublisher.removeObserver(self._watch)

    def check(self):
        """The invariants a flood of junk must not break."""
        assert not self.bugs, f"{len(self.bugs)} unhandled errors, first: {self.bugs[0]}"
        assert self.gateway.presence.hubs == {}, "a fuzz connection stayed admitted"
        assert not self.gateway.unauthenticated, "the unauthenticated count leaked"
        assert not self.peers.connections, "a fuzz connection stayed attached"
        assert len(self.handshakes.pending()) <= self.handshakes.max_pending

    def close(self):
        self.store.close()


class _Closed:
    def getErrorMessage(self):
        return "closed by the fuzzer"


_closed = _Closed()
