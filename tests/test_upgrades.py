"""Moving relayed peerings onto punched direct paths (``Upgrades``) alone on a Clock,
with a fake punching whose attempts are fired by hand."""

from types import SimpleNamespace

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import Refused
from blockhub.hub.peer_paths import DIRECT, RELAYED
from blockhub.hub.upgrades import BASE_DELAY, FIRST_DELAY, MAX_DELAY, Upgrades

PEER = "bh-peer"
EPSILON = 1 / 1024  # exact in binary, so Clock times add up exactly


class Punching:
    def __init__(self):
        self.ok, self.asked = True, []  # asked: (hub id, its Deferred)

    def possible(self):
        return self.ok

    def punch(self, hub_id):
        self.asked.append((hub_id, Deferred()))
        return self.asked[-1][1]


class Store:
    def __init__(self, rows):
        self.rows = rows

    def peer(self, hub_id):
        return self.rows.get(hub_id)


def link(relayed=True, peer_id=PEER):
    """A live peer protocol whose transport runs over a circuit, or over TCP."""
    address = (SimpleNamespace(type="CIRCUIT", gateway="bh-gateway") if relayed
               else IPv4Address("TCP", "198.51.100.20", 7002))
    transport = SimpleNamespace(getPeer=lambda: address)
    return SimpleNamespace(transport=transport, peer_id=peer_id)


class UpgradeCase(SynchronousTestCase):
    def setUp(self):
        self.clock, self.punching = Clock(), Punching()
        self.rows = {PEER: {"dialer": True, "address": "198.51.100.20:7002"}}
        self.connections = {PEER: link()}
        self.established = []
        self.upgrades = Upgrades(
            self.clock, self.punching, Store(self.rows), self.connections,
            lambda *args, **kw: self.established.append((args, kw)), rand=lambda: 1.0)

    def relayed(self, hub_id=PEER):
        self.upgrades.path_changed(hub_id, RELAYED)

    def tries_at(self, delay):
        """Nothing is tried until ``delay`` has passed, then one try: its Deferred."""
        before = len(self.punching.asked)
        self.clock.advance(delay - EPSILON)
        self.assertEqual(len(self.punching.asked), before, "tried too soon")
        self.clock.advance(EPSILON)
        self.assertEqual(len(self.punching.asked), before + 1, "not tried in time")
        self.assertEqual(self.punching.asked[-1][0], PEER)
        return self.punching.asked[-1][1]

    def never_tried(self, before=0):
        """No try (after the ``before`` there were), now or ever."""
        self.clock.advance(10 * MAX_DELAY)
        self.assertEqual(len(self.punching.asked), before)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class ScheduleTests(UpgradeCase):
    def test_a_relayed_dialer_peering_is_tried_after_the_first_delay(self):
        self.relayed()
        self.tries_at(FIRST_DELAY)

    def test_a_second_relayed_report_does_not_add_a_try(self):
        self.relayed()
        self.relayed()
        self.tries_at(FIRST_DELAY)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_failures_back_off_doubling_up_to_the_cap(self):
        self.relayed()
        d = self.tries_at(FIRST_DELAY)
        for delay in (BASE_DELAY, 2 * BASE_DELAY, 4 * BASE_DELAY, 8 * BASE_DELAY,
                      16 * BASE_DELAY, 32 * BASE_DELAY, MAX_DELAY, MAX_DELAY):
            d.errback(Refused("the peer did not answer"))
            d = self.tries_at(delay)
        self.assertEqual(self.upgrades.failures, {PEER: 8})

    def test_jitter_shortens_a_delay_to_no_less_than_half(self):
        self.upgrades.rand = lambda: 0.0
        self.relayed()
        self.tries_at(FIRST_DELAY).errback(Refused("no"))
        self.tries_at(BASE_DELAY / 2)

    def test_while_punching_is_impossible_it_waits_and_backs_off(self):
        self.punching.ok = False
        self.relayed()
        for delay in (FIRST_DELAY, BASE_DELAY):
            self.clock.advance(delay)
            self.assertEqual(self.punching.asked, [])
        self.punching.ok = True
        self.tries_at(2 * BASE_DELAY)


class StoppingTests(UpgradeCase):
    def test_a_direct_path_cancels_the_next_try(self):
        self.relayed()
        self.tries_at(FIRST_DELAY).errback(Refused("no"))
        self.upgrades.path_changed(PEER, DIRECT)
        self.connections[PEER] = link(relayed=False)
        self.never_tried(1)
        self.assertEqual(self.upgrades.failures, {})

    def test_a_link_gone_direct_by_the_time_of_the_try_is_left_alone(self):
        self.relayed()
        self.connections[PEER] = link(relayed=False)
        self.never_tried()

    def test_a_link_gone_cancels_and_a_failure_then_is_not_retried(self):
        self.relayed()
        d = self.tries_at(FIRST_DELAY)
        del self.connections[PEER]
        self.upgrades.path_changed(PEER, None)
        d.errback(Refused("no"))
        self.never_tried(1)

    def test_a_peering_we_do_not_dial_or_cannot_reach_is_never_tried(self):
        for row in ({"dialer": False, "address": "198.51.100.20:7002"},
                    {"dialer": True, "address": None}, None):
            self.rows[PEER] = row
            self.relayed()
            self.never_tried()

    def test_stop_cancels_every_try(self):
        self.connections["bh-other"] = link(peer_id="bh-other")
        self.rows["bh-other"] = dict(self.rows[PEER])
        self.relayed()
        self.relayed("bh-other")
        self.assertEqual(len(self.clock.getDelayedCalls()), 2)
        self.upgrades.stop()
        self.never_tried()

    def test_a_try_that_fails_after_stop_is_not_retried(self):
        self.relayed()
        d = self.tries_at(FIRST_DELAY)
        self.upgrades.stop()  # the relayed link is still closing: still in connections
        d.errback(Refused("the peer did not answer"))
        self.never_tried(1)


class MovedTests(UpgradeCase):
    def test_a_punched_path_records_nothing_and_ends_the_tries(self):
        self.relayed()
        self.tries_at(FIRST_DELAY).callback((link(relayed=False), None))
        self.assertEqual(self.established, [])
        self.never_tried(1)

    def test_a_local_path_is_recorded_to_be_dialed_next_time(self):
        self.relayed()
        self.tries_at(FIRST_DELAY).callback((link(relayed=False), "10.0.0.20:7002"))
        self.assertEqual(self.established, [((PEER, "10.0.0.20:7002"), {"dialer": True})])
