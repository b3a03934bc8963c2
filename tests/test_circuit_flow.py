"""The pure pieces under relay circuits: a direction's credit count, the byte bucket
that delays credit, circuit-data frames joined while they wait, and the send queue's
low lane that lets every other frame go first."""

import collections

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from blockhub.circuit_flow import WINDOW, Flow
from blockhub.net.sendqueue import SendQueue
from blockhub.ratelimit import TokenBucket
from blockhub.wire import messages
from blockhub.wire.framing import FrameDecoder

steps = st.lists(st.tuples(st.sampled_from(["sent", "credited", "release"]),
                           st.integers(0, 2 * WINDOW)), max_size=60)


class FlowTests(SynchronousTestCase):
    @given(steps)
    def test_the_three_counts_always_make_the_window(self, script):
        flow = Flow()
        carried = 0
        for step, size in script:
            if step == "release":
                flow.release()
            elif getattr(flow, step)(size) and step == "sent":
                carried += size
            self.assertEqual(flow.allowed + flow.unacked + flow.held, WINDOW)
            self.assertTrue(min(flow.allowed, flow.unacked, flow.held) >= 0)
        self.assertEqual(flow.carried, carried)

    def test_what_is_broken(self):
        flow = Flow()
        self.assertTrue(flow.sent(WINDOW))
        self.assertFalse(flow.sent(1))       # beyond the credit
        self.assertFalse(flow.credited(WINDOW + 1))  # beyond what was sent
        self.assertTrue(flow.credited(10))
        self.assertEqual((flow.release(), flow.release()), (10, 0))
        self.assertTrue(flow.sent(10))
        self.assertFalse(flow.sent(1))


class TokenBucketTests(SynchronousTestCase):
    def test_overdrawn_then_paid_back_by_waiting(self):
        bucket = TokenBucket(1000, 500, now=100.0)
        bucket.take(500, 100.0)
        self.assertEqual(bucket.wait(100.0), 0.0)
        bucket.take(1500, 100.0)
        self.assertAlmostEqual(bucket.wait(100.0), 1.5)
        self.assertAlmostEqual(bucket.wait(101.0), 0.5)
        self.assertEqual(bucket.wait(101.5), 0.0)
        self.assertEqual(bucket.wait(1000.0), 0.0)
        self.assertEqual(bucket.tokens, 500)  # saved up to the burst, no more

    def test_a_clock_set_back_refills_nothing_and_tiny_waits_are_a_millisecond(self):
        bucket = TokenBucket(10**9, 0, now=1_700_000_000.0)
        bucket.take(10, 1_700_000_000.0)
        self.assertEqual(bucket.wait(1_699_999_000.0), 0.001)
        bucket.take(bucket.tokens + 0.5, 1_699_999_000.0)  # owes half a byte: paid
        self.assertEqual(bucket.wait(1_699_999_000.0), 0.0)


def data_frame(circuit, payload):
    return messages.encode_circuit_data(circuit, payload)


def decoded(frames):
    out = []
    for frame in frames:
        for code, body in FrameDecoder().feed(frame):
            out.append(messages.decode(code, body))
    return out


class JoinTests(SynchronousTestCase):
    def test_frames_of_one_circuit_join_up_to_a_chunk(self):
        frame = bytearray(data_frame(3, b"ab"))
        self.assertTrue(messages.join_circuit_data(frame, data_frame(3, b"cde")))
        [message] = decoded([bytes(frame)])
        self.assertEqual((message["circuit"], message["data"]), (3, b"abcde"))
        self.assertFalse(messages.join_circuit_data(frame, data_frame(4, b"x")))
        full = bytearray(data_frame(3, b"x" * (messages.MAX_CHUNK - 5)))
        self.assertTrue(messages.join_circuit_data(full, data_frame(3, b"y" * 5)))
        self.assertFalse(messages.join_circuit_data(full, data_frame(3, b"z")))
        close = messages.encode(messages.make("circuit-close", circuit=3, reason="x"))
        self.assertFalse(messages.join_circuit_data(bytearray(close), data_frame(3, b"z")))
        self.assertFalse(messages.join_circuit_data(frame, close))
        self.assertEqual(decoded([bytes(frame)])[0]["data"], b"abcde")


class LowLaneTests(SynchronousTestCase):
    def queue(self):
        return SendQueue(merge=messages.join_circuit_data)

    def test_every_other_frame_goes_first(self):
        queue = self.queue()
        queue.append_low(data_frame(1, b"a" * 100), 1)
        queue.append(b"presence-1")
        queue.append_low(data_frame(2, b"b"), 2)
        queue.append_shared([b"welcome-1", b"welcome-2"])
        queue.append(b"presence-2")
        self.assertEqual(queue.take(10**6)[:4],
                         [b"presence-1", b"welcome-1", b"welcome-2", b"presence-2"])
        self.assertFalse(queue)
        self.assertEqual((queue.bytes, queue.low_bytes), (0, 0))

    def test_a_flood_of_tiny_frames_waits_at_the_cost_of_its_bytes(self):
        queue = self.queue()
        for n in range(WINDOW):
            queue.append_low(data_frame(7 + n % 2, b"x"), 7 + n % 2)
        self.assertLess(queue.low_bytes, WINDOW + 1000)
        self.assertEqual(len(queue._low), 2 * (WINDOW // 2 // messages.MAX_CHUNK))
        out = decoded(queue.take(10**9))
        self.assertEqual(sum(len(m["data"]) for m in out), WINDOW)
        self.assertEqual((queue.low_bytes, queue.waiting(7), bool(queue)), (0, False, False))

    def test_a_key_keeps_its_order_and_can_be_dropped(self):
        queue = self.queue()
        queue.append_low(data_frame(1, b"one"), 1)
        queue.append_low(data_frame(2, b"two"), 2)
        queue.append_low(data_frame(1, b"-more"), 1)
        self.assertTrue(queue.waiting(1))
        queue.drop_low(2)
        self.assertFalse(queue.waiting(2))
        [message] = decoded(queue.take(10))
        self.assertEqual(message["data"], b"one-more")
        queue.drop_low(5)  # nothing of it waits: nothing happens
        self.assertEqual(queue.low_bytes, 0)

    def test_an_emptied_queue_holds_no_lane(self):
        """An idle connection's queue holds no deque (760 bytes each, on every idle hub
        of a gateway), however it was emptied."""
        def deques(queue):
            return [v for v in vars(queue).values() if isinstance(v, collections.deque)]

        queue = self.queue()
        self.assertEqual(deques(queue), [])
        queue.append(b"frame")
        queue.append_shared([b"welcome"])
        queue.append_low(data_frame(1, b"a"), 1)
        self.assertEqual(len(deques(queue)), 2)
        queue.take(10**6)
        self.assertEqual(deques(queue), [])
        queue.append(b"frame")
        queue.append_low(data_frame(1, b"a"), 1)
        queue.drop_low(1)
        self.assertEqual(len(deques(queue)), 1)
        queue.clear()
        self.assertEqual((deques(queue), bool(queue)), ([], False))

    def test_the_budget_spans_both_lanes(self):
        queue = self.queue()
        queue.append(b"x" * 10)
        queue.append_low(data_frame(1, b"y" * 100), 1)
        queue.append_low(data_frame(2, b"z" * 100), 2)
        self.assertEqual(len(queue.take(50)), 2)  # one of each lane, then over budget
        self.assertEqual(len(queue.take(50)), 1)
