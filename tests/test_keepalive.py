"""Keepalives and idle timeouts on one wheel per clock (blockhub/net/keepalive.py):
pings only after silence, the idle timeout on time, nothing left on the clock when
no connection is watched, and a gateway and hub that settle on one ping per period."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.net.keepalive import RESOLUTION, Keepalive, KeepaliveWheel
from tests.memory import World


class Conn(Keepalive):
    PING_UNHEARD = True

    def __init__(self, clock, idle=60.0):
        self.clock, self.idle_timeout = clock, idle
        self.connected, self.closing_reason = True, None
        self._heard = self._sent = clock.seconds()
        self._pinged, self._secured, self._ping_n = -1.0, True, 0
        self.pings, self.closed = [], None

    def send(self, kind, **fields):
        self._sent = self.clock.seconds()
        self.pings.append(self._sent)

    def close(self, reason):
        self.closed, self.connected = (self.clock.seconds(), reason), False

    def hear(self):
        self._heard = self.clock.seconds()


class WheelTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000.1)
        self.wheel = KeepaliveWheel(self.clock)

    def run_for(self, seconds, step=0.05, each=None):
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            if each is not None:
                each()

    def test_a_silent_peer_is_pinged_once_then_closed_on_time(self):
        conn = Conn(self.clock)
        start = self.clock.seconds()
        self.wheel.watch(conn, start + 20)
        self.run_for(61)
        [ping] = conn.pings
        self.assertTrue(20 <= ping - start <= 20 + 2 * RESOLUTION, ping - start)
        at, reason = conn.closed
        self.assertTrue(60 <= at - start <= 60 + 2 * RESOLUTION, at - start)
        self.assertIn("idle timeout", reason)
        self.assertEqual(self.clock.getDelayedCalls(), [])  # nothing left watched

    def test_a_peer_heard_from_is_never_pinged(self):
        conn = Conn(self.clock)
        self.wheel.watch(conn, self.clock.seconds() + 20)
        ticks = iter(range(10**6))
        self.run_for(300, each=lambda: next(ticks) % 200 == 0 and conn.hear())
        self.assertEqual((conn.pings, conn.closed), ([], None))

    def test_a_sender_pings_after_a_third_of_not_sending(self):
        conn = Conn(self.clock)
        conn.PING_UNHEARD = False
        start = self.clock.seconds()
        self.wheel.watch(conn, start + 20)
        ticks = iter(range(10**6))
        self.run_for(90, each=lambda: next(ticks) % 100 == 0 and conn.hear())
        self.assertEqual(len(conn.pings), 4)  # about every 20 s, heard from or not
        self.assertIsNone(conn.closed)

    def test_a_closed_connection_is_let_go_at_once(self):
        gone, kept = Conn(self.clock), Conn(self.clock)
        for conn in (gone, kept):
            self.wheel.watch(conn, self.clock.seconds() + 20)
        self.wheel.unwatch(gone)
        self.wheel.unwatch(gone)  # twice, or never watched: nothing happens
        self.wheel.unwatch(Conn(self.clock))
        self.assertEqual([c for slot in self.wheel._slots.values() for c in slot], [kept])
        self.run_for(21)
        self.assertEqual((gone.pings, len(kept.pings)), ([], 1))

    def test_one_connections_bug_stops_no_other(self):
        broken, fine = Conn(self.clock), Conn(self.clock)
        broken.keepalive = lambda now: 1 / 0
        self.wheel.watch(broken, self.clock.seconds() + 1)
        self.wheel.watch(fine, self.clock.seconds() + 1)
        self.run_for(61)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertIsNotNone(fine.closed)

    def test_a_jump_of_the_clock_visits_every_slot_once(self):
        conns = [Conn(self.clock) for _ in range(50)]
        for n, conn in enumerate(conns):
            self.wheel.watch(conn, self.clock.seconds() + n)
        self.clock.advance(3600)
        self.clock.advance(RESOLUTION)
        self.assertTrue(all(c.closed for c in conns))
        self.assertTrue(all(len(c.pings) <= 1 for c in conns))


class SessionKeepaliveTests(SynchronousTestCase):
    def test_a_gateway_and_a_hub_settle_on_one_ping_and_one_pong(self):
        world = World(idle_timeout=60.0)
        hub = world.add_hub("a")
        gateway_conn = world.gateway.presence.connection_for(hub.identity.id)
        hub_conn = hub.link.proto
        for _ in range(600):  # ten minutes
            world.clock.advance(1)
            world.flush()
        self.assertEqual(hub.link.state, "online")
        self.assertEqual(gateway_conn._ping_n, 0)  # the hub's pings keep both alive
        self.assertTrue(17 <= hub_conn._ping_n <= 21, hub_conn._ping_n)  # every 30 s


class HeapTrimTests(SynchronousTestCase):
    def test_trims_only_after_enough_churn(self):
        from blockhub.net.heap import HeapTrim
        churn, trims = [0], []
        trim = HeapTrim(lambda: churn[0], after=100, trim=trims.append)
        self.assertFalse(trim.check())
        churn[0] = 99
        self.assertFalse(trim.check())
        churn[0] = 100
        self.assertTrue(trim.check())
        self.assertFalse(trim.check())  # at rest: nothing
        self.assertEqual(trims, [0])

    def test_trims_once_when_a_small_burst_ends(self):
        from blockhub.net.heap import HeapTrim
        churn, trims = [0], []
        trim = HeapTrim(lambda: churn[0], after=100, trim=trims.append)
        churn[0] = 150
        self.assertTrue(trim.check())  # enough came
        churn[0] = 180
        self.assertFalse(trim.check())  # still coming
        self.assertTrue(trim.check())  # quiet for an interval: the burst's end trimmed
        self.assertFalse(trim.check())
        self.assertFalse(trim.check())
        self.assertEqual(len(trims), 2)

    def test_without_malloc_trim_it_does_nothing(self):
        from blockhub.net.heap import HeapTrim
        trim = HeapTrim(lambda: 10**6, after=1, trim=None)
        trim.trim = None
        self.assertFalse(trim.check())
