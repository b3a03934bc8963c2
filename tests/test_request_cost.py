"""The difficulty a hub asks (RequestCost), and solving a proof in rounds (Work)."""

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub import proof_of_work
from blockhub.hub.request_cost import (
    GRACE,
    MAX_DIFFICULTY,
    PUBLISH_INTERVAL,
    RequestCost,
    auto_bits,
    parse_difficulty,
)
from blockhub.hub.work import Work
from tests.memory import new_identity


class AutoBitsTests(SynchronousTestCase):
    def test_free_then_two_bits_per_doubling_up_to_the_cap(self):
        self.assertEqual([auto_bits(n) for n in (0, 3, 4, 7, 8, 16, 32, 64, 100, 10**6)],
                         [0, 0, 12, 12, 14, 16, 18, 20, 20, 22])

    def test_parse(self):
        self.assertIsNone(parse_difficulty("auto"))
        self.assertEqual(parse_difficulty("16"), 16)
        for bad in ("-1", str(MAX_DIFFICULTY + 1), "lots"):
            self.assertRaises(ValueError, parse_difficulty, bad)


class RequestCostTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.published = []

    def cost(self, setting):
        return RequestCost(self.clock, setting, self.published.append)

    def test_fixed_is_published_as_is_and_never_changes(self):
        cost = self.cost(10)
        self.assertEqual((cost.meta(), cost.required()), ({"pow": 10}, 10))
        cost.pending_changed(1000)
        self.clock.advance(PUBLISH_INTERVAL)
        self.assertEqual((cost.required(), self.published), (10, []))
        self.assertEqual(self.cost(0).meta(), {})

    def test_auto_publishes_at_most_every_interval_and_keeps_the_old_one_for_the_grace(self):
        cost = self.cost(None)
        self.assertEqual(cost.meta(), {"pow": 0})
        cost.pending_changed(4)
        self.clock.advance(0)
        self.assertEqual(self.published, [{"pow": 12}])  # the first change goes at once
        cost.pending_changed(8)
        self.assertEqual(self.published, [{"pow": 12}])  # the next waits
        self.assertEqual(cost.required(), 0)
        self.clock.advance(PUBLISH_INTERVAL)
        self.assertEqual(self.published, [{"pow": 12}, {"pow": 14}])
        self.assertEqual(cost.required(), 0)  # 0 is still in its grace
        self.clock.advance(GRACE - PUBLISH_INTERVAL)
        self.assertEqual(cost.required(), 12)
        self.clock.advance(PUBLISH_INTERVAL)
        self.assertEqual(cost.required(), 14)

    def test_auto_lowers_and_a_change_undone_in_time_is_not_published(self):
        cost = self.cost(None)
        cost.pending_changed(4)
        self.clock.advance(0)
        cost.pending_changed(8)
        cost.pending_changed(4)  # back before the interval ended
        self.clock.advance(PUBLISH_INTERVAL)
        self.assertEqual(self.published, [{"pow": 12}])
        cost.pending_changed(0)
        self.clock.advance(0)
        self.assertEqual(self.published, [{"pow": 12}, {"pow": 0}])
        self.assertEqual(cost.required(), 0)

    def test_stop_cancels_a_publication(self):
        cost = self.cost(None)
        cost.pending_changed(4)
        self.clock.advance(0)
        cost.pending_changed(16)
        cost.stop()
        self.clock.advance(PUBLISH_INTERVAL)
        self.assertEqual(self.published, [{"pow": 12}])


class WorkTests(SynchronousTestCase):
    def setUp(self):
        self.a, self.b = new_identity().id, new_identity().id
        self.found = []

    def work(self, run, bits=10, size=64):
        return Work(run, self.a, self.b, b"\x01" * 16, 1000, bits, self.found.append,
                    round_size=size)

    def test_rounds_until_found_and_the_proof_checks(self):
        work = self.work(maybeDeferred)
        work.start()
        [counter] = self.found
        self.assertTrue(proof_of_work.check(self.a, self.b, b"\x01" * 16, 1000, counter, 10))
        self.assertEqual(work.tries, counter + 1)
        self.assertEqual(work.status(), {"bits": 10, "tries": counter + 1,
                                         "expected": 1024})

    def test_progress_between_rounds_and_cancel_stops_it(self):
        rounds = []

        def run(f, *args):
            d = Deferred()
            rounds.append((args[-2:], d))
            return d

        work = self.work(run)
        work.start()
        (first, d) = rounds.pop()
        self.assertEqual(first, (0, 64))  # from 0, 64 tries
        d.callback(None)  # none found in this round
        self.assertEqual(work.tries, 64)
        (second, d) = rounds.pop()
        self.assertEqual(second, (64, 64))
        work.cancel()
        d.callback(100)  # the round under way ends; nothing more happens
        self.assertEqual((self.found, rounds), ([], []))
