"""Keeping a peering up alone: the ClientService over PeerPath, with a Clock and a fake
attempt that hands out connections and decides how each opening ends."""

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import Refused
from blockhub.hub.peer_link import PeerLink


class FakeConnection:
    def __init__(self):
        self.transport = StringTransport()
        self.closed = None
        self.listeners = []

    def close(self, reason):
        self.closed = reason

    def when_lost(self, listener):
        self.listeners.append(listener)

    def lose(self, reason="reset"):
        for listener in self.listeners:
            listener(reason)


class PeerLinkTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.dials = []  # (time, connection, Deferred) per attempt
        self.refuse = None  # a reason: each attempt's opening fails at once with it
        self.link = PeerLink("bhpeer", self.attempt, self.clock, rand=lambda: 1.0)
        self.addCleanup(self.link.stop)

    def attempt(self, peer):
        conn = FakeConnection()
        if self.refuse is not None:
            d = fail(Refused(self.refuse))
        else:
            d = Deferred()
        self.dials.append((self.clock.seconds(), conn, d))
        return conn, d

    def times(self):
        return [t for t, _, _ in self.dials]

    def open_latest(self):
        _, conn, d = self.dials[-1]
        d.callback(conn)
        return conn

    def test_dials_at_start_and_stays_up(self):
        self.link.start()
        conn = self.open_latest()
        self.link.up(conn)
        self.clock.advance(3600)
        self.assertEqual(self.times(), [0])

    def test_failures_back_off_exponentially_and_reset_once_up(self):
        self.refuse = "rejected: not now"
        self.link.start()
        for step in (1, 2, 4):
            self.clock.advance(step)
        self.assertEqual(self.times(), [0, 1, 3, 7])
        self.refuse = None
        self.clock.advance(16)
        conn = self.open_latest()
        conn.lose()
        self.clock.advance(1)  # the count started again: the first delay
        self.assertEqual(self.times(), [0, 1, 3, 7, 23, 24])

    def test_a_refused_opening_is_a_failure_not_a_loss(self):
        """The opening ended the connection; the service never saw it connected, so
        the connection's end is no news to it (Twisted would raise NoTransition)."""
        self.refuse = "pending: waiting for the operator"
        self.link.start()
        self.dials[-1][1].lose("closed after peer-ready")
        self.clock.advance(1)
        self.assertEqual(self.times(), [0, 1])

    def test_a_lost_link_is_redialed(self):
        self.link.start()
        self.open_latest().lose()
        self.assertEqual(self.times(), [0])
        self.clock.advance(1)
        self.assertEqual(self.times(), [0, 1])

    def test_the_other_side_reconnecting_cancels_the_wait(self):
        self.refuse = "no answer"
        self.link.start()
        theirs = FakeConnection()
        self.link.up(theirs)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.link.lost(theirs)  # their link ends: ours again, after the first delay
        self.refuse = None
        self.assertEqual(self.times(), [0])
        self.clock.advance(1)
        self.assertEqual(self.times(), [0, 1])

    def test_another_connection_closes_an_attempt_under_way(self):
        self.link.start()
        _, attempt, _ = self.dials[-1]
        self.link.up(FakeConnection())
        self.assertEqual(attempt.closed, "the peering is no longer kept up")

    def test_stopped_means_no_more_attempts(self):
        self.refuse = "no answer"
        self.link.start()
        self.link.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        theirs = FakeConnection()
        self.link.up(theirs)
        self.link.lost(theirs)
        self.link.start()
        self.clock.advance(60)
        self.assertEqual(self.times(), [0])
