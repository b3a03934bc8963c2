"""EndOfTurn: what arrives in one reactor turn is flushed once, together."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.batching import EndOfTurn


class EndOfTurnTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.flushed = []
        self.batch = EndOfTurn(self.clock, self.flushed.append)

    def test_one_flush_per_turn_in_order(self):
        for n in range(3):
            self.batch.add(n)
        self.assertEqual(self.flushed, [])
        self.clock.advance(0)
        self.batch.add(3)
        self.clock.advance(0)
        self.assertEqual(self.flushed, [[0, 1, 2], [3]])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_keep_forgets_what_is_not_wanted(self):
        for n in range(4):
            self.batch.add(n)
        self.batch.keep(lambda n: n % 2)
        self.clock.advance(0)
        self.assertEqual(self.flushed, [[1, 3]])

    def test_run_flushes_now_and_leaves_no_call(self):
        self.batch.add("x")
        self.batch.run()
        self.assertEqual(self.flushed, [["x"]])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.batch.run()  # nothing waits: no empty flush
        self.assertEqual(self.flushed, [["x"]])
