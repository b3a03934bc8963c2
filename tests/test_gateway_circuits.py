"""The gateway's relay circuits alone, on a Clock with fake hub connections: requests
matched, refused, expired and refreshed; replacement; a hub that leaves; the idle
timeout; credit counted and broken; the rate and the total bandwidth slowing a sender
by delaying its credit; frames for unknown circuits; and nothing ever sent to a hub
that did not ask."""

from types import SimpleNamespace

import attrs
from nacl.signing import SigningKey
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.circuit_flow import WINDOW
from blockhub.gateway import circuits as circuits_module
from blockhub.gateway.circuits import Circuits
from blockhub.gateway.counters import Counters
from blockhub.identity import Identity
from blockhub.limits import DEFAULT
from blockhub.wire import features, messages

IDS = [Identity(SigningKey(bytes([40 + n]) * 32)).id for n in range(12)]


CIRCUIT_SPEAKER = SimpleNamespace(features=features.parse([features.CIRCUIT]))


class FakeConn:
    """A hub's gateway connection: what the circuits object sent it, in order."""

    def __init__(self, hub_id):
        self.peer_id = hub_id
        self.session = CIRCUIT_SPEAKER
        self.sent = []       # (kind, fields) of every frame but circuit-data
        self.data = []       # (circuit, payload) of circuit-data, in the low lane
        self.dropped = []    # circuits whose waiting data was forgotten

    def send(self, kind, /, **fields):
        messages.make(kind, **fields)  # checked as the wire would
        self.sent.append((kind, fields))

    def send_low(self, frame, key=None):
        (code, body), = messages_frames(frame)
        message = messages.decode(code, body)
        assert key == message["circuit"]
        self.data.append((message["circuit"], message["data"]))

    def send_circuit_data(self, number, payload):
        """As the gateway's protocol does: a circuit-data frame in the low lane."""
        self.send_low(messages.encode_circuit_data(number, payload), number)

    def drop_low(self, key):
        self.dropped.append(key)

    def kinds(self):
        return [kind for kind, _ in self.sent]


def messages_frames(frame):
    from blockhub.wire.framing import FrameDecoder
    return FrameDecoder().feed(frame)


class FakePresence:
    def __init__(self):
        self.online = {}

    def connection_for(self, hub_id):
        return self.online.get(hub_id)


def msg(kind, **fields):
    if kind == "circuit-data":
        return messages.Message(kind, fields)
    return messages.make(kind, **fields)


class Base(SynchronousTestCase):
    limits = DEFAULT

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.presence = FakePresence()
        self.counters = Counters()
        self.circuits = Circuits(self.presence, self.counters, self.clock, self.limits)
        self.a, self.b, self.c = (self.hub(n) for n in range(3))

    def hub(self, n):
        conn = FakeConn(IDS[n])
        self.presence.online[conn.peer_id] = conn
        return conn

    def ask(self, conn, other):
        self.circuits.received(conn, msg("circuit-open", to=other.peer_id))

    def pair(self, one=None, two=None):
        """A circuit between ``one`` and ``two`` (a and b); its number."""
        one, two = one or self.a, two or self.b
        self.ask(one, two)
        self.ask(two, one)
        kind, fields = two.sent[-1]
        self.assertEqual(kind, "circuit-ready")
        return fields["circuit"]

    def send(self, conn, number, size):
        """``size`` bytes in frames of at most a chunk, as the wire allows."""
        while size > 0:
            chunk = min(size, messages.MAX_CHUNK)
            self.circuits.received(conn, msg("circuit-data", circuit=number,
                                             data=b"x" * chunk))
            size -= chunk

    def credit(self, conn, number, size):
        self.circuits.received(conn, msg("circuit-credit", circuit=number, bytes=size))


class OpeningTests(Base):
    def test_two_requests_make_one_circuit(self):
        self.ask(self.a, self.b)
        self.assertEqual((self.a.sent, self.b.sent), ([], []))
        self.assertEqual(self.circuits.status(), {"count": 0, "pending": 1, "bytes": 0})
        self.ask(self.b, self.a)
        self.assertEqual(self.a.sent, [("circuit-ready", {"circuit": 1, "peer": self.b.peer_id})])
        self.assertEqual(self.b.sent, [("circuit-ready", {"circuit": 1, "peer": self.a.peer_id})])
        self.assertEqual(self.circuits.status(), {"count": 1, "pending": 0, "bytes": 0})
        self.assertEqual(self.counters.circuits_opened, 1)
        self.assertEqual(self.pair(self.a, self.c), 2)  # numbered in turn

    def test_a_hub_that_did_not_ask_is_never_sent_anything(self):
        self.ask(self.a, self.b)
        self.send(self.a, 1, 10)         # guessing the number it would get
        self.credit(self.a, 1, 10)
        self.clock.advance(self.limits.circuit_pending_timeout)
        self.assertEqual((self.b.sent, self.b.data), ([], []))
        self.assertEqual(self.a.sent, [("circuit-refused", {
            "to": self.b.peer_id,
            "reason": "that hub did not ask for this circuit within 30s"})])
        self.assertEqual(self.counters.circuit_unknown, 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_repeat_refreshes_the_wait(self):
        self.ask(self.a, self.b)
        self.clock.advance(20)
        self.ask(self.a, self.b)
        self.clock.advance(20)
        self.assertEqual(self.a.sent, [])
        self.ask(self.b, self.a)
        self.assertEqual(self.a.kinds(), ["circuit-ready"])
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)  # the idle timer only

    def test_refusals(self):
        offline = FakeConn(IDS[9])
        for target, reason in ((offline, "that hub is not online here"),
                               (self.a, "that hub is not online here")):
            self.ask(self.a, target)
            self.assertEqual(self.a.sent.pop(), ("circuit-refused",
                                                 {"to": target.peer_id, "reason": reason}))
        self.assertEqual(self.counters.circuits_refused, 2)
        self.assertEqual(len(self.circuits.requests), 0)

    def test_the_limit_counts_requests_and_circuits(self):
        others = [self.hub(n) for n in range(3, 10)]
        self.pair(self.a, self.b)
        for other in others:
            self.ask(self.a, other)       # 1 circuit + 7 waiting: at the limit of 8
        self.ask(self.a, self.c)
        self.assertEqual(self.a.sent[-1], ("circuit-refused", {
            "to": self.c.peer_id,
            "reason": "too many circuits: at most 8 per hub, open or asked for"}))
        self.ask(self.a, others[0])       # a repeat takes no new place
        self.ask(self.a, self.b)          # nor does asking again for a circuit it has
        self.ask(others[0], self.a)       # a match turns a request into a circuit
        self.assertEqual(self.a.sent[-1][0], "circuit-ready")
        self.assertEqual(self.counters.circuits_refused, 1)
        self.ask(self.c, self.a)          # c may ask; a may not join it while full
        self.ask(self.a, self.c)
        self.assertEqual(self.a.sent[-1][0], "circuit-refused")  # still full

    def test_numbers_wrap_and_skip_those_in_use(self):
        self.circuits._next = circuits_module.LAST_NUMBER
        self.assertEqual(self.pair(self.a, self.b), circuits_module.LAST_NUMBER)
        self.assertEqual(self.pair(self.a, self.c), 1)
        self.circuits._next = circuits_module.LAST_NUMBER
        self.assertEqual(self.pair(self.b, self.c), 2)


class OffTests(Base):
    limits = attrs.evolve(DEFAULT, max_circuits_per_hub=0)

    def test_no_circuits_at_all(self):
        self.ask(self.a, self.b)
        self.ask(self.b, self.a)
        for conn, other in ((self.a, self.b), (self.b, self.a)):
            self.assertEqual(conn.sent, [("circuit-refused", {
                "to": other.peer_id, "reason": "this gateway carries no circuits"})])
        self.assertEqual(self.circuits.status(), {"count": 0, "pending": 0, "bytes": 0})


class EndingTests(Base):
    def test_a_second_circuit_between_a_pair_replaces_the_first(self):
        first = self.pair()
        self.send(self.a, first, 100)
        second = self.pair(self.b, self.a)
        self.assertNotEqual(first, second)
        for conn in self.a, self.b:
            self.assertEqual(conn.kinds(), ["circuit-ready", "circuit-close", "circuit-ready"])
            self.assertEqual(conn.sent[1][1], {"circuit": first, "reason": "replaced"})
            self.assertIn(first, conn.dropped)
        self.assertEqual(self.circuits.status()["count"], 1)
        self.assertEqual(self.counters.circuits_replaced, 1)

    def test_a_member_closes(self):
        number = self.pair()
        self.circuits.received(self.a, msg("circuit-close", circuit=number, reason="bye"))
        self.assertEqual(self.b.sent[-1], ("circuit-close", {"circuit": number,
                                                            "reason": "bye"}))
        self.assertEqual(self.a.kinds(), ["circuit-ready"])  # the closer is not told
        # the other side's close crossed it: nothing to do, nothing counted
        self.circuits.received(self.b, msg("circuit-close", circuit=number, reason="bye"))
        self.send(self.b, number, 5)
        self.assertEqual(self.a.kinds(), ["circuit-ready"])
        self.assertEqual(self.counters.circuit_unknown, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_hub_that_leaves(self):
        number = self.pair(self.a, self.b)
        self.ask(self.a, self.c)   # a's own request: c was never told, is not now
        self.ask(self.hub(5), self.a)
        waiting = self.presence.online[IDS[5]]
        del self.presence.online[self.a.peer_id]
        self.circuits.leave(self.a)
        self.assertEqual(self.b.sent[-1], ("circuit-close", {
            "circuit": number, "reason": "the other hub left"}))
        self.assertEqual(self.c.sent, [])
        self.assertEqual(waiting.sent, [("circuit-refused", {"to": self.a.peer_id,
                                                             "reason": "that hub left"})])
        self.assertEqual(self.circuits.status(), {"count": 0, "pending": 0, "bytes": 0})
        self.assertEqual((self.circuits.peers, self.circuits.requests.asked_by,
                          self.circuits.requests.naming), ({}, {}, {}))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_an_idle_circuit_is_closed(self):
        timeout = self.limits.circuit_idle_timeout
        number = self.pair()
        self.clock.advance(timeout - 100)
        self.send(self.a, number, 1)
        self.clock.advance(100)
        self.assertEqual(self.a.kinds(), ["circuit-ready"])
        self.clock.advance(timeout - 100)
        for conn in self.a, self.b:
            self.assertEqual(conn.sent[-1], ("circuit-close", {
                "circuit": number, "reason": "no data for 300s"}))
        self.assertEqual(self.counters.circuits_idle, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class CreditTests(Base):
    def test_data_goes_on_and_credit_comes_back(self):
        number = self.pair()
        self.send(self.a, number, 1000)
        self.send(self.b, number, 7)
        self.assertEqual(self.b.data, [(number, b"x" * 1000)])
        self.assertEqual(self.a.data, [(number, b"x" * 7)])
        self.credit(self.b, number, 600)
        self.assertEqual(self.a.kinds(), ["circuit-ready"])  # at the end of the turn
        self.clock.advance(0)
        self.assertEqual(self.a.sent[-1], ("circuit-credit", {"circuit": number,
                                                              "bytes": 600}))
        self.assertEqual(self.circuits.status()["bytes"], 1007)

    def test_the_credit_of_a_turn_goes_back_as_one_frame(self):
        number = self.pair()
        self.send(self.a, number, 1000)
        for _ in range(1000):
            self.credit(self.b, number, 1)
        self.clock.advance(0)
        self.assertEqual(self.a.sent[1:], [("circuit-credit", {"circuit": number,
                                                               "bytes": 1000})])
        self.assertEqual(self.counters.circuit_credit_delayed, 0)

    def test_a_whole_window_and_not_a_byte_more(self):
        number = self.pair()
        for _ in range(WINDOW // messages.MAX_CHUNK):
            self.send(self.a, number, messages.MAX_CHUNK)
        self.assertEqual(sum(len(d) for _n, d in self.b.data), WINDOW)
        self.send(self.a, number, 1)
        for conn in self.a, self.b:
            self.assertEqual(conn.sent[-1], ("circuit-close", {
                "circuit": number, "reason": "flow control violated"}))
        self.assertEqual(self.counters.circuit_violations, 1)
        self.assertEqual(sum(len(d) for _n, d in self.b.data), WINDOW)

    def test_credit_frees_the_window_again(self):
        number = self.pair()
        for _ in range(3):
            self.send(self.a, number, WINDOW // 2)
            self.send(self.a, number, WINDOW // 2)
            self.credit(self.b, number, WINDOW)
            self.clock.advance(1)  # the rate: 1 MiB/s, a window takes 0.25 s
        self.assertEqual(self.counters.circuit_violations, 0)

    def test_credit_beyond_what_was_sent(self):
        number = self.pair()
        self.send(self.a, number, 100)
        self.credit(self.b, number, 101)
        self.assertEqual(self.counters.circuit_violations, 1)
        self.assertEqual(self.b.sent[-1][1]["reason"], "flow control violated")
        other = self.pair(self.a, self.c)
        self.credit(self.a, other, 1)  # a credits what c never sent it
        self.assertEqual(self.counters.circuit_violations, 2)

    def test_frames_for_a_circuit_not_the_senders_are_dropped(self):
        number = self.pair(self.a, self.b)
        self.send(self.c, number, 10)
        self.credit(self.c, number, 10)
        self.send(self.c, 77, 10)
        self.circuits.received(self.c, msg("circuit-close", circuit=number, reason="x"))
        self.assertEqual((self.a.data, self.b.data), ([], []))
        self.assertEqual(self.a.kinds(), ["circuit-ready"])
        self.assertEqual(self.counters.circuit_unknown, 3)
        self.assertEqual(self.circuits.status()["count"], 1)


class RateTests(Base):
    limits = attrs.evolve(DEFAULT, circuit_rate=64 * 1024, circuit_burst=64 * 1024,
                          circuit_bandwidth=2**30)  # the total out of the way

    def test_a_sender_over_its_rate_waits_for_its_credit(self):
        number = self.pair()
        frames = WINDOW // messages.MAX_CHUNK
        for _ in range(frames):
            self.send(self.a, number, messages.MAX_CHUNK)
        self.assertEqual(len(self.b.data), frames)  # data is never held
        self.credit(self.b, number, WINDOW // 2)
        self.credit(self.b, number, WINDOW // 2)
        self.assertEqual(self.a.kinds(), ["circuit-ready"])
        wait = (WINDOW - 64 * 1024) / (64 * 1024)  # over the burst, at 64 KiB/s
        self.clock.advance(wait - 0.01)
        self.assertEqual(self.a.kinds(), ["circuit-ready"])
        self.clock.advance(0.01)
        self.assertEqual(self.a.sent[-1], ("circuit-credit", {"circuit": number,
                                                              "bytes": WINDOW}))
        self.assertEqual(self.counters.circuit_credit_delayed, 1)

    def test_the_other_direction_is_not_slowed(self):
        number = self.pair()
        self.send(self.a, number, WINDOW)
        self.send(self.b, number, 100)
        self.credit(self.a, number, 100)
        self.clock.advance(0.001)  # the total's debt (at 1 GiB/s), not a's 3 s
        self.assertEqual(self.b.sent[-1], ("circuit-credit", {"circuit": number,
                                                              "bytes": 100}))

    def test_a_closed_circuit_passes_no_late_credit(self):
        number = self.pair()
        self.send(self.a, number, WINDOW)
        self.credit(self.b, number, WINDOW)
        self.circuits.received(self.b, msg("circuit-close", circuit=number, reason="x"))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10)
        self.assertNotIn("circuit-credit", self.a.kinds())


class TotalTests(Base):
    limits = attrs.evolve(DEFAULT, circuit_bandwidth=128 * 1024, circuit_burst=0)

    def test_all_circuits_together_are_held_to_the_total(self):
        one, two = self.pair(self.a, self.b), self.pair(self.c, self.hub(4))
        self.send(self.a, one, 64 * 1024)
        self.send(self.c, two, 64 * 1024)
        self.credit(self.b, one, 64 * 1024)
        self.credit(self.presence.online[IDS[4]], two, 64 * 1024)
        self.clock.advance(0.99)
        self.assertNotIn("circuit-credit", self.a.kinds() + self.c.kinds())
        self.clock.advance(0.01)  # 128 KiB over all, at 128 KiB/s
        self.assertEqual(self.a.sent[-1][0], "circuit-credit")
        self.assertEqual(self.c.sent[-1][0], "circuit-credit")


class Quiet:
    """A connection that keeps nothing it is sent (so only the circuits are measured)."""

    def __init__(self, hub_id):
        self.peer_id = hub_id
        self.session = CIRCUIT_SPEAKER

    def send(self, kind, /, **fields):
        pass


class MemoryTests(Base):
    def test_an_idle_circuit_costs_the_gateway_little(self):
        """Issue 14's target: at most 16 KiB of gateway memory per idle circuit."""
        import gc
        import tracemalloc
        conns = [Quiet(Identity(SigningKey(n.to_bytes(32, "big"))).id)
                 for n in range(1, 401)]
        for conn in conns:
            self.presence.online[conn.peer_id] = conn
        opens = [(conn, msg("circuit-open", to=other.peer_id))
                 for one, two in zip(conns[::2], conns[1::2], strict=True)
                 for conn, other in ((one, two), (two, one))]
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for conn, message in opens:
                self.circuits.received(conn, message)
            gc.collect()
            used = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        self.assertEqual(self.circuits.status()["count"], 200)
        self.assertLess(used / 200, 16 * 1024, f"{used / 200:.0f} bytes per circuit")
