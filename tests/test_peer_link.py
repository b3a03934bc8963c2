"""The peering's reconnection machine alone, with a Clock and a fake dial."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.hub.peer_link import PeerLink


class PeerLinkTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.dials = []
        self.answer = None  # what the fake dial says at once: None, or a failure reason
        self.link = PeerLink("bhpeer", self.dial, self.clock, rand=lambda: 1.0)

    def dial(self, link):
        self.dials.append(self.clock.seconds())
        if self.answer is not None:
            link.failed(self.answer)

    def test_dials_and_is_up(self):
        self.link.start()
        self.assertEqual((self.link.state, self.dials), ("dialing", [0]))
        self.link.up()
        self.assertEqual(self.link.state, "connected")

    def test_failures_back_off_exponentially_and_reset_once_up(self):
        self.answer = "refused"
        self.link.start()  # the dial fails at once: held until the dial is done
        self.assertEqual(self.link.state, "waiting")
        self.clock.advance(1)
        self.clock.advance(2)
        self.clock.advance(4)
        self.assertEqual(self.dials, [0, 1, 3, 7])
        self.assertEqual(self.link.failures, 4)
        self.answer = None
        self.clock.advance(8)
        self.link.up()
        self.assertEqual((self.link.state, self.link.failures), ("connected", 0))

    def test_a_lost_link_is_redialed(self):
        self.link.start()
        self.link.up()
        self.link.lost("reset")
        self.assertEqual(self.link.state, "waiting")
        self.clock.advance(1)
        self.assertEqual(self.dials, [0, 1])

    def test_the_other_side_reconnecting_cancels_the_wait(self):
        self.link.start()
        self.link.failed("no answer")
        self.link.up()
        self.assertEqual(self.link.state, "connected")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopped_means_no_more_attempts(self):
        self.link.start()
        self.link.failed("no answer")
        self.link.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.link.lost("late")
        self.link.up()
        self.link.start()
        self.assertEqual((self.link.state, self.dials), ("stopped", [0]))
