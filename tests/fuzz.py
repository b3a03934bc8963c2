"""A bounded fuzzer for everything a peer can send: frames into both services'
protocols, and sealed handshakes into the hub's handshake logic.

Inputs start from a corpus of valid frames and are mutated (bit flips, truncation,
splices, absurd length headers, random bodies, wrong-typed fields, bad signatures,
wrong signature domains, boxes sealed to the wrong key).  Each input goes to a fresh
protocol on a transport with a small, TCP-like buffer that is drained only now and
then (so output often waits in the send queue), and meets the full decoder and
handler.  Some inputs keep their connection open across later inputs, as a flood
would: gateway sessions that join with valid HubInfo from a few addresses and
identities (rejoins, replacements, hubs per address, the join budget, readers that
stall until they are over their send queue), pairs of them that open a relay circuit
to each other and then send data, credit and junk on it (within and beyond their
credit, over their rate), and peer-listener connections that never open (the
unopened caps and the first-frame deadline).  The services' limits are set
small so that every new limit is hit.  Nothing may escape as an exception, the
services' tables and counts must come back empty, and memory must not grow with the
number of inputs.  ``make test`` runs a few thousand inputs; ``make fuzz``
(tools/fuzz.py) runs a million.
"""

import json
import os
import random
import struct

from nacl.signing import SigningKey
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from blockhub.circuit_flow import WINDOW
from blockhub.gateway.admission import Admission
from blockhub.gateway.build import build_gateway
from blockhub.handshake_bodies import seal_rejection, seal_request
from blockhub.hub.build import HubSettings, build_hub
from blockhub.hub.config import GatewayEntry
from blockhub.hub.gateway_protocol import HubGatewayProtocol
from blockhub.hub.peer_protocol import PeerProtocol
from blockhub.hub.store import Store
from blockhub.hubinfo import make_hubinfo
from blockhub.identity import Identity
from blockhub.limits import Limits
from blockhub.wire import envelope, features, messages
from blockhub.wire.canonical import b64
from blockhub.wire.framing import HEADER
from tests.flow import FlowStringTransport


def _identity(seed: int) -> Identity:
    return Identity(SigningKey(bytes([seed]) * 32))


GW, HUB, OTHER, MALLORY = (_identity(n) for n in (1, 2, 3, 4))
JOINERS = [_identity(n) for n in range(10, 16)]  # hubs that join for real
HOSTS = ["10.9.0.1", "10.9.0.2", "10.9.0.3"]
KEEP = 40  # connections a flood keeps open at once, at most

# Small limits, so that a few thousand inputs hit every one of them.
LIMITS = Limits(max_send_queue=2048, close_timeout=5.0, unauthenticated_per_ip=2,
                hubs_per_ip=2, updates_per_minute=30, updates_burst=3,
                first_frame_timeout=10.0, unopened_per_ip=3, max_unopened=6,
                max_circuits_per_hub=2, circuit_rate=4096, circuit_burst=1024,
                circuit_bandwidth=16384, circuit_idle_timeout=30.0,
                circuit_pending_timeout=20.0)


def _joins() -> list[tuple[Identity, bytes, bytes]]:
    """Each joiner's valid join frame and a valid update after it."""
    out = []
    for ident in JOINERS:
        join = messages.make("join", hubinfo=make_hubinfo(ident, "j", 1).to_json(), proof=None,
                             features=features.ours())
        update = messages.make("update", hubinfo=make_hubinfo(ident, "j2", 2).to_json())
        out.append((ident, messages.encode(join), messages.encode(update)))
    return out


def corpus() -> list[bytes]:
    """Valid frames of every kind, including signed and sealed payloads."""
    info = make_hubinfo(HUB, "hub", 1).to_json()
    sealed_ok = b64(seal_request(OTHER, HUB.id, "127.0.0.1:7000", 1_700_000_000,
                                 b"\x01" * 16, "hi"))
    sealed_wrong_key = b64(seal_request(OTHER, MALLORY.id, None, 1_700_000_000,
                                        b"\x02" * 16, "x"))
    rejection = b64(seal_rejection(OTHER, HUB.id, 1_700_000_000, b"\x03" * 16,
                                   b64(b"\x04" * 16), "the pending list was full"))
    wrong_domain = envelope.sign(HUB, "peer-hello", info["body"]).to_json()
    wrong_domain["kind"] = "hubinfo"
    samples = [
        ("hello", dict(gateway=GW.id, observed="127.0.0.1:5000", challenge=b64(b"c" * 32),
                       mode="private", time=1_700_000_000)),
        ("join", dict(hubinfo=info, proof=None, features=features.ours())),
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
        ("deliver", {"from": OTHER.id, "kind": "rejection", "sealed": rejection}),
        ("deliver", {"from": OTHER.id, "kind": "rejection", "sealed": sealed_ok}),
        ("relay", dict(to=OTHER.id, kind="rejection", sealed=rejection)),
        ("relay-refused", dict(to=OTHER.id, reason="offline")),
        ("peer-request", dict(sealed=sealed_ok)),
        ("peer-ready", dict(status="connected", reason=None)),
        ("message", dict(seq=1, text="hello", at=1)),
        ("ack", dict(seq=1)),
        ("error", dict(reason="x", fatal=True)),
        ("circuit-open", dict(to=OTHER.id)),
        ("circuit-ready", dict(circuit=1, peer=OTHER.id)),
        ("circuit-credit", dict(circuit=1, bytes=4096)),
        ("circuit-close", dict(circuit=1, reason="done")),
        ("circuit-refused", dict(to=OTHER.id, reason="that hub is not online here")),
    ] + [("circuit-open", dict(to=ident.id)) for ident in JOINERS[:3]]
    data = [messages.encode_circuit_data(n, os.urandom(size)) for n, size in
            ((1, 1), (2, 100), (1, messages.MAX_CHUNK), (2**31 - 1, 7))]
    return data + [messages.encode(messages.make(kind, **fields))
                   for kind, fields in samples]


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
        self.gateway_graph = build_gateway(GW, Admission(), self.clock, LIMITS,
                                           random=lambda n: b"\x05" * n)
        self.gateway = self.gateway_graph.gateway
        store = Store(os.path.join(data_dir, "fuzz.sqlite"))
        store.db.execute("PRAGMA synchronous=OFF")  # durability is not under test here
        graph = build_hub(HUB, store, self.clock, [GatewayEntry(GW.id, "127.0.0.1", 6610)],
                          lambda hub_id, address, proto: fail(ConnectionRefusedError()),
                          lambda entry, make_protocol: None,
                          HubSettings(name="hub", listen_port=7000, limits=LIMITS))
        self.hub, self.store, self.link = graph.hub, graph.store, graph.link
        self.peers, self.handshakes, self.operator = graph.peers, graph.handshakes, \
            graph.operator
        self.door = graph.door
        self.circuits = graph.circuits
        self.listener = graph.peer_factory
        self.joins = _joins()
        self.open: list = []  # (protocol, transport) kept open across inputs
        self.rng = random.Random(0)
        self.bugs = []

    def _connect(self, proto, peer_id, host="127.0.0.1"):
        transport = FlowStringTransport(peerAddress=IPv4Address("TCP", host, 40000),
                                        hostAddress=IPv4Address("TCP", "127.0.0.1", 6610),
                                        buffer_size=self.rng.choice([64, 512, 4096]))
        proto.makeConnection(transport)
        if proto.connected and not transport.disconnecting:
            proto.peer_id = peer_id
        return transport

    def _read_some(self, transport):
        """The reader takes what is waiting, or, now and then, stalls."""
        if self.rng.random() < 0.7:
            transport.drain()

    def gateway_input(self, data: bytes):
        proto = self.gateway_graph.factory.buildProtocol(None)
        transport = self._connect(proto, OTHER.id)
        if proto.peer_id:
            proto.secured()  # what handshakeCompleted does, without a certificate
            proto.dataReceived(data)
            self._read_some(transport)
        proto.connectionLost(_closed)

    def hub_input(self, data: bytes):
        proto = HubGatewayProtocol(self.link, self.hub, self.handshakes, self.circuits,
                                   clock=self.clock)
        transport = self._connect(proto, GW.id)
        proto.admitted = True
        proto.dataReceived(data)
        self._read_some(transport)
        proto.connectionLost(_closed)

    def peer_input(self, data: bytes):
        proto = PeerProtocol(self.peers, self.door, clock=self.clock)
        transport = self._connect(proto, OTHER.id)
        proto.dataReceived(data)
        self._read_some(transport)
        proto.connectionLost(_closed)

    def gateway_session(self, data: bytes):
        """A hub that joins for real (rejoining, replacing itself, crowding one
        address), then sends junk or an update; kept open for a while."""
        ident, join, update = self.rng.choice(self.joins)
        proto = self.gateway_graph.factory.buildProtocol(None)
        transport = self._connect(proto, ident.id, host=self.rng.choice(HOSTS))
        if proto.peer_id:
            proto.secured()
            choice = self.rng.random()
            if choice < 0.2:
                pass  # silent: it holds an unauthenticated place until its deadline
            elif choice < 0.5:
                proto.dataReceived(join + update)
            else:
                proto.dataReceived(join + data)
        self._keep(proto, transport)

    def circuit_pair(self, data: bytes):
        """Two hubs that join and ask for a circuit to each other (when their joins
        are taken), then send data, credit, a close or junk on it; kept open."""
        pair = self.rng.sample(self.joins, 2)
        protos = []
        for ident, join, _update in pair:
            proto = self.gateway_graph.factory.buildProtocol(None)
            transport = self._connect(proto, ident.id, host=self.rng.choice(HOSTS))
            if proto.peer_id:
                proto.secured()
                proto.dataReceived(join)
            protos.append(proto)
            self._keep(proto, transport)
        for _ in range(self.rng.choice([1, 1, 2])):  # twice: a replacement
            for proto, (other, _j, _u) in zip(protos, reversed(pair), strict=True):
                proto.dataReceived(messages.encode(messages.make("circuit-open",
                                                                 to=other.id)))
            circuits = self.gateway_graph.circuits.table
            number = max(circuits) if circuits else 1
            for _ in range(self.rng.randrange(6)):
                self.rng.choice(protos).dataReceived(self._circuit_frames(number))
        self.rng.choice(protos).dataReceived(data)

    def _circuit_frames(self, number: int) -> bytes:
        choice = self.rng.random()
        if choice < 0.5:  # data, now and then beyond the window
            size, count = self.rng.choice([(1, 3), (1000, 2), (messages.MAX_CHUNK, 2),
                                           (messages.MAX_CHUNK, WINDOW // messages.MAX_CHUNK
                                            + 1)])
            return messages.encode_circuit_data(number, b"d" * size) * count
        if choice < 0.8:
            return messages.encode(messages.make("circuit-credit", circuit=number,
                                                 bytes=self.rng.choice([1, 1000, WINDOW])))
        return messages.encode(messages.make("circuit-close", circuit=number, reason="x"))

    def peer_flood(self, data: bytes):
        """A connection to the hub's peer listener that finishes TLS and, mostly,
        never opens; kept open until a deadline drops it."""
        proto = self.listener.buildProtocol(None)
        transport = self._connect(proto, MALLORY.id, host=self.rng.choice(HOSTS + ["10.9.0.4"]))
        if proto.peer_id:
            proto.secured()  # what handshakeCompleted does, without a certificate
            if self.rng.random() < 0.2:
                proto.dataReceived(data)
        self._keep(proto, transport)

    def _keep(self, proto, transport):
        self.open.append((proto, transport))
        if len(self.open) > KEEP:
            old, _ = self.open.pop(self.rng.randrange(len(self.open)))
            old.connectionLost(_closed)
        self._reap()

    def _reap(self):
        """What TCP does for the connections kept open: deliver some of what they
        wrote, and report the loss of those that closed."""
        kept = []
        for proto, transport in self.open:
            if proto.connected and self.rng.random() < 0.3:
                self._read_some(transport)
            if transport.disconnecting:
                proto.connectionLost(_closed)
            else:
                kept.append((proto, transport))
        self.open = kept

    def _watch(self, event):
        if event.get("log_failure") is not None or event.get("log_level") == LogLevel.critical:
            self.bugs.append(formatEvent(event))

    def run(self, count: int, seed: int = 0):
        rng = random.Random(seed)
        frames = corpus()
        self.rng = random.Random(seed + 1)
        inputs = (self.gateway_input, self.hub_input, self.peer_input,
                  self.gateway_input, self.hub_input, self.peer_input,
                  self.gateway_session, self.peer_flood, self.circuit_pair)
        globalLogPublisher.addObserver(self._watch)
        try:
            for n in range(count):
                inputs[n % len(inputs)](mutate(rng, frames))
                if n % 100 == 99:
                    self.clock.advance(11)  # let timers (deadlines, pings) run
                    self._reap()
            for _ in range(4):  # every deadline, then the aborts they cause
                self.clock.advance(86400)
                self._reap()
            for proto, _transport in self.open:
                proto.connectionLost(_closed)
            self.open = []
        finally:
            globalLogPublisher.removeObserver(self._watch)

    def check(self):
        """The invariants a flood of junk must not break."""
        assert not self.bugs, f"{len(self.bugs)} unhandled errors, first: {self.bugs[0]}"
        assert self.gateway.presence.hubs == {}, "a fuzz connection stayed admitted"
        assert not self.gateway.unauthenticated, "the unauthenticated count leaked"
        assert not self.gateway.unauthenticated.by_address, "an address count leaked"
        assert not self.gateway.presence.per_host, "the admitted-per-address count leaked"
        assert not self.gateway.presence.joined_frames, "a joined frame outlived its hub"
        circuits = self.gateway_graph.circuits
        assert not circuits.table and not circuits.by_pair and not circuits.peers, \
            "a circuit outlived its hubs"
        assert not circuits.requests.waiting and not circuits.requests.asked_by \
            and not circuits.requests.naming, "a circuit request outlived its hub"
        assert len(self.gateway.presence.update_limit) <= len(JOINERS) + 2, \
            "join and update budgets grew past the keys that used them"
        assert not self.listener.openings, "the unopened peer-connection count leaked"
        assert not self.listener.openings.by_address, "an unopened-per-address count leaked"
        assert not self.open, "a kept connection was not closed"
        assert not self.peers.connections, "a fuzz connection stayed attached"
        assert len(self.operator.pending()) <= self.handshakes.max_pending

    def covered(self) -> dict:
        """How often each new limit was hit: a run that never hits one tests nothing."""
        counters = self.gateway.counters
        return {"joins refused": counters.joins_refused,
                "hubs per address": counters.refused_per_address,
                "unauthenticated per address": counters.refused_unauthenticated,
                "send queue full": counters.send_queue_full,
                "close timeouts": counters.close_timeouts,
                "replaced": counters.replaced,
                "unopened per address": self.listener.refusals["TooManyFromAddress"],
                "unopened in total": self.listener.refusals["TooManyUnopened"],
                "first-frame deadline": self.listener.refusals["FirstFrameTimeout"],
                "circuits opened": counters.circuits_opened,
                "circuits refused": counters.circuits_refused,
                "circuits replaced": counters.circuits_replaced,
                "circuit violations": counters.circuit_violations,
                "circuit frames unknown": counters.circuit_unknown,
                "circuit credit delayed": counters.circuit_credit_delayed}

    def close(self):
        self.store.close()


class _Closed:
    def getErrorMessage(self):
        return "closed by the fuzzer"


_closed = _Closed()
