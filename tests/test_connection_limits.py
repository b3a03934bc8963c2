"""What a connection may cost: its output paced by the reader and bounded
(``max_send_queue``), a close that cannot drain aborted (``close_timeout``), the
welcome list of a large gateway written as the newcomer reads, and the shared count
of connections that have not opened yet."""

import json

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.gateway.admission import Admission
from blockhub.gateway.build import build_gateway
from blockhub.hubinfo import make_hubinfo
from blockhub.identity import Identity
from blockhub.ids import encode_id
from blockhub.limits import Limits
from blockhub.net import opening
from blockhub.net.framed import DRAIN_CHUNK, FramedProtocol
from blockhub.net.opening import Openings
from blockhub.net.sendqueue import SendQueue
from blockhub.wire import messages
from blockhub.wire.framing import FrameDecoder
from tests.flow import BUFFER, FlowStringTransport
from tests.helpers import NoCircuits


def _identity(seed: int) -> Identity:
    from nacl.signing import SigningKey
    return Identity(SigningKey(bytes([seed]) * 32))


GW, NEWCOMER = _identity(11), _identity(12)


def transport(host="127.0.0.1", **kw) -> FlowStringTransport:
    return FlowStringTransport(peerAddress=IPv4Address("TCP", host, 40000),
                               hostAddress=IPv4Address("TCP", "127.0.0.1", 6610), **kw)


def kinds(data: bytes) -> list[messages.Message]:
    return [messages.decode(code, body) for code, body in FrameDecoder().feed(data)]


class Plain(FramedProtocol):
    def messageReceived(self, message):
        pass


class SendQueueTests(SynchronousTestCase):
    def test_order_budget_and_counted_bytes(self):
        queue = SendQueue()
        queue.append(b"a" * 10)
        queue.append_shared([b"b" * 10, b"c" * 10, b"d" * 10])
        queue.append(b"e" * 10)
        self.assertEqual(queue.bytes, 20)  # the shared run is not counted
        self.assertEqual(queue.take(15), [b"a" * 10, b"b" * 10])
        self.assertEqual(queue.take(1), [b"c" * 10])
        self.assertEqual(queue.take(100), [b"d" * 10, b"e" * 10])
        self.assertFalse(queue)
        self.assertEqual(queue.bytes, 0)


class OpeningsTests(SynchronousTestCase):
    def test_caps_per_address_and_in_total(self):
        openings = Openings(per_address=2, total=3)
        a1, a2 = openings.enter("a"), openings.enter("a")
        self.assertEqual(openings.refuse("a"), opening.PER_ADDRESS)
        openings.enter("b")
        self.assertEqual(openings.refuse("c"), opening.TOTAL)
        a1.release()
        a1.release()  # twice is harmless
        self.assertIsNone(openings.refuse("a"))
        self.assertEqual(len(openings), 2)
        a2.release()
        self.assertEqual(dict(openings.by_address), {"b": 1})

    def test_zero_means_no_cap(self):
        openings = Openings(per_address=0, total=0)
        for _ in range(100):
            openings.enter("a")
        self.assertIsNone(openings.refuse("a"))


class FlowControlTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.limits = Limits(max_send_queue=200_000, close_timeout=10.0)
        self.proto = Plain(self.clock, self.limits)
        self.transport = transport()
        self.proto.makeConnection(self.transport)

    def test_a_reader_that_keeps_up_gets_everything_in_order(self):
        frames = [messages.encode(messages.make("ping", n=n)) for n in range(1, 30001)]
        for frame in frames:
            self.proto.send_frame(frame)
            if self.transport.paused:
                received = self.transport.drain()
                self.assertTrue(received)
        data = b""
        while self.proto.queue or self.transport.value():
            data += self.transport.drain()
        self.assertEqual([m["n"] for m in kinds(data)][-3:], [29998, 29999, 30000])
        self.assertLessEqual(self.transport.most, BUFFER + DRAIN_CHUNK)
        self.assertFalse(self.transport.aborted)

    def test_a_reader_that_stops_is_aborted_over_the_bound(self):
        """Regression (security review #5): output was never bounded."""
        full = []
        self.proto.send_queue_full = lambda: full.append(True)
        frame = b"\x00" * 1000
        for _ in range(400):
            self.proto.send_frame(frame)
        self.assertTrue(self.transport.aborted)
        self.assertEqual(full, [True])
        self.assertIn("not reading", self.proto.closing_reason)
        self.assertLessEqual(self.transport.most, BUFFER + len(frame))
        self.assertEqual(self.proto.queue.bytes, 0)  # freed at once

    def test_a_close_that_cannot_drain_is_aborted(self):
        """Regression (security review #5): a graceful close waited forever."""
        timed_out = []
        self.proto.close_timed_out = lambda: timed_out.append(True)
        self.proto.send_frame(b"x" * (BUFFER + 1))  # the reader stops here
        self.proto.send_frame(b"y" * 100)
        self.proto.close("replaced")
        self.assertFalse(self.transport.disconnecting)  # waiting for the queue
        self.clock.advance(9.9)
        self.assertFalse(self.transport.aborted)
        self.clock.advance(0.1)
        self.assertTrue(self.transport.aborted)
        self.assertEqual(timed_out, [True])

    def test_a_close_drains_then_closes(self):
        self.proto.send_frame(b"x" * (BUFFER + 1))
        self.proto.send("refused", reason="last words")
        self.proto.close("done")
        data = self.transport.drain()
        data += self.transport.drain()
        self.assertTrue(self.transport.disconnecting)
        self.assertIsNone(self.transport.producer)  # TLS and TCP close only without one
        self.assertEqual(kinds(data[BUFFER + 1:])[-1]["reason"], "last words")
        self.proto.connectionLost(None)
        self.clock.advance(10)
        self.assertFalse(self.transport.aborted)


def presence_frame(hub_id: str, template: bytes, template_id: str) -> bytes:
    return template.replace(template_id.encode(), hub_id.encode())


class Quiet:
    """A joined hub of the big table: it only receives."""

    host = "10.0.0.1"

    def __init__(self, hub_id):
        self.peer_id = hub_id
        self.frames = 0

    def send_frame(self, frame):
        self.frames += 1

    def close(self, reason):
        pass


class BigGatewayTests(SynchronousTestCase):
    HUBS = 20_000

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.limits = Limits(max_send_queue=256 * 1024, max_hubs=self.HUBS + 1)
        self.graph = build_gateway(GW, Admission(), self.clock, self.limits,
                                   random=lambda n: b"\x01" * n)
        self.gateway = self.graph.gateway
        presence = self.gateway.presence
        info = make_hubinfo(GW, "a hub with a name of some length", 1, {}).to_json()
        template = messages.encode(messages.make("presence", event="joined", hub=GW.id,
                                                 hubinfo=info))
        self.ids = [encode_id(n.to_bytes(32, "big")) for n in range(1, self.HUBS + 1)]
        for hub_id in self.ids:
            presence.hubs[hub_id] = (Quiet(hub_id), None)
            presence.joined_frames[hub_id] = presence_frame(hub_id, template, GW.id)
        presence.per_host["10.0.0.1"] = self.HUBS
        self.table_bytes = sum(map(len, presence.joined_frames.values()))
        self.assertGreater(self.table_bytes, 4 * self.limits.max_send_queue)

    def newcomer(self):
        proto = self.graph.factory.buildProtocol(None)
        proto.makeConnection(transport("127.0.0.9"))
        proto.peer_id = NEWCOMER.id
        proto.secured()
        info = make_hubinfo(NEWCOMER, "new", 1, {}).to_json()
        proto.dataReceived(messages.encode(messages.make("join", hubinfo=info, proof=None)))
        return proto

    def test_newcomer_to_a_large_gateway_is_served_in_order(self):
        proto = self.newcomer()
        self.assertTrue(NEWCOMER.id in self.gateway.presence.hubs)
        leaver = self.gateway.presence.hubs[self.ids[0]][0]
        self.gateway.presence.leave(leaver, "gone")  # while the list is still going out
        data = b""
        while proto.transport.value() or proto.queue:
            data += proto.transport.drain()
        frames = list(FrameDecoder().feed(data))
        self.assertEqual(len(frames), 2 + self.HUBS + 1)
        first = [messages.decode(code, body).kind for code, body in frames[:2]]
        self.assertEqual(first, ["hello", "welcome"])
        # Checked as JSON only: decoding 20,000 HubInfo would be the slow part here.
        self.assertEqual([json.loads(body)["hub"] for _code, body in frames[2:-1]], self.ids)
        last = messages.decode(*frames[-1])
        self.assertEqual((last["event"], last["hub"]), ("left", self.ids[0]))
        self.assertFalse(proto.transport.aborted)
        self.assertEqual(self.gateway.counters.send_queue_full, 0)

    def test_a_stalled_newcomer_costs_a_bounded_amount(self):
        """Regression (security review #5): the whole list was written at once."""
        proto = self.newcomer()
        held = proto.transport.most
        self.assertLessEqual(held, BUFFER + DRAIN_CHUNK + 1024)
        self.assertLess(held, self.table_bytes / 10)
        # Presence traffic keeps coming; the newcomer never reads.
        frame = messages.encode(messages.make("presence", event="left", hub=GW.id,
                                              hubinfo=None))
        sent = 0
        while not proto.transport.aborted and sent < 100_000:
            proto.send_frame(frame)  # what a broadcast does for each receiver
            self.assertLessEqual(proto.queue.bytes, self.limits.max_send_queue)
            sent += 1
        self.assertTrue(proto.transport.aborted)
        self.assertEqual(self.gateway.counters.send_queue_full, 1)
        self.assertLessEqual(sent * len(frame), self.limits.max_send_queue + len(frame))
        proto.connectionLost(None)
        self.assertFalse(NEWCOMER.id in self.gateway.presence.hubs)


class _AcceptEveryone:
    def inbound(self, proto, message):
        return "connected", None


class PeerLinkPacingTests(SynchronousTestCase):
    """A peer link sends from the outbox only while its transport takes more, so a
    burst of large messages to a slow reader waits on disk, not in memory, and never
    trips ``max_send_queue``."""

    def test_a_burst_to_a_slow_reader_waits_in_the_outbox(self):
        from blockhub.hub.peer_protocol import PeerProtocol
        from blockhub.hub.peers import Peers
        from blockhub.hub.store import Store

        limits = Limits(max_send_queue=256 * 1024, max_inflight=256)
        clock = Clock()
        store = Store(self.mktemp())
        self.addCleanup(store.close)
        peers = Peers(GW, store, clock, None, None, None, NoCircuits(), limits)
        opener = _AcceptEveryone()
        proto = PeerProtocol(peers, opener, clock=clock, limits=limits)
        wire = transport()
        proto.makeConnection(wire)
        proto.peer_id = NEWCOMER.id
        proto.secured()
        proto.messageReceived(messages.Message("peer-hello", {"hello": {}}))  # linked
        wire.drain()
        store.add_peer(NEWCOMER.id, None, False, 0)
        for _ in range(40):
            peers.send(NEWCOMER.id, "x" * 30000)  # 1.2 MB in all
        clock.advance(0)  # committed to the outbox, then sent as the link takes them
        seqs = []
        for _ in range(100):
            seqs += [m["seq"] for m in kinds(wire.drain()) if m.kind == "message"]
            self.assertLessEqual(proto.queue.bytes, limits.max_send_queue)
            if seqs:
                peers.acked(proto, seqs[-1])
        self.assertFalse(wire.aborted)
        self.assertEqual(seqs, list(range(1, 41)))
        self.assertLess(wire.most, 4 * BUFFER)
