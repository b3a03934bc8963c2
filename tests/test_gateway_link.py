"""The hub's gateway link machine, driven alone with a Clock and fake collaborators."""

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.backoff import backoff_delay
from blockhub.hub.config import GatewayEntry
from blockhub.hub.gateway_link import GatewayLink
from blockhub.hub.gateway_pins import gateway_rows, move, pin
from blockhub.identity import Identity, new_phrase

G1 = GatewayEntry(Identity.from_phrase(new_phrase()).id, "127.0.0.1", 1001, "one")
G2 = GatewayEntry(Identity.from_phrase(new_phrase()).id, "127.0.0.1", 1002, "two")


class FakeProto:
    def __init__(self):
        self.closed = None

    def close(self, reason):
        self.closed = reason


class FakeHub:
    def __init__(self):
        self.events = []

    def send_join(self, proto, entry, hello):
        self.events.append(("join", entry.port))

    def online(self, entry, proto):
        self.events.append(("online", entry.port))

    def offline(self, entry):
        self.events.append(("offline", entry.port))


class Links:
    """A link with fake dials and hub, and a way to bring it online."""

    def setUp(self):
        self.clock = Clock()
        self.hub = FakeHub()
        self.dials = []

    def link(self, gateways=(G1,), **kw):
        def dial(entry):
            d = Deferred(lambda d: None)
            self.dials.append((entry, d))
            return d
        return GatewayLink(list(gateways), dial, self.hub, self.clock, rand=lambda: 1.0, **kw)

    def bring_online(self, link):
        entry, d = self.dials[-1]
        proto = FakeProto()
        d.callback(proto)
        link.hello(proto, {"gateway": entry.id})
        self.assertEqual(link.state, "authenticating")
        link.welcome(proto, {})
        return proto


class LinkTests(Links, SynchronousTestCase):
    def test_connect_and_go_online(self):
        link = self.link()
        self.assertEqual(link.state, "idle")
        link.start()
        self.assertEqual(link.state, "connecting")
        self.bring_online(link)
        self.assertEqual(link.state, "online")
        self.assertEqual(self.hub.events, [("join", 1001), ("online", 1001)])
        self.assertEqual(gateway_rows(link)[0]["state"], "online")

    def test_dial_failure_backs_off_exponentially(self):
        link = self.link()
        link.start()
        delays = []
        for _ in range(4):
            self.dials[-1][1].errback(ConnectionRefusedError("refused"))
            self.assertEqual(link.state, "backing_off")
            delays.append(self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds())
            self.clock.advance(delays[-1])
            self.assertEqual(link.state, "connecting")
        self.assertEqual(delays, [1.0, 2.0, 4.0, 8.0])
        self.assertIn("refused", gateway_rows(link)[0]["last_error"])

    def test_lost_while_online_reconnects_and_clears(self):
        link = self.link()
        link.start()
        proto = self.bring_online(link)
        link.lost(proto, "connection reset")
        self.assertEqual(link.state, "backing_off")
        self.assertEqual(self.hub.events[-1], ("offline", 1001))
        self.clock.advance(1.0)
        self.assertEqual(len(self.dials), 2)
        self.bring_online(link)
        self.assertEqual(link.failures, 0)

    def test_fail_over_to_next_gateway(self):
        link = self.link([G1, G2])
        link.start()
        proto = self.bring_online(link)
        link.lost(proto, "gone")
        self.clock.advance(1.0)
        self.assertEqual(self.dials[-1][0], G2)
        self.bring_online(link)
        rows = gateway_rows(link)
        self.assertEqual([r["state"] for r in rows], ["standby", "online"])

    def test_refusal_is_remembered(self):
        link = self.link()
        link.start()
        entry, d = self.dials[-1]
        proto = FakeProto()
        d.callback(proto)
        link.hello(proto, {"gateway": entry.id})
        link.refused(proto, "this hub is not on the gateway's allow list")
        link.lost(proto, "closed")
        self.assertEqual(link.state, "backing_off")
        self.assertIn("allow list", link.last_error[G1.id])

    def test_events_from_an_old_connection_are_ignored(self):
        link = self.link([G1, G2])
        link.start()
        old = self.bring_online(link)
        link.lost(old, "gone")
        self.clock.advance(1.0)
        link.lost(old, "late duplicate")
        link.welcome(old, {})
        self.assertEqual(link.state, "connecting")

    def test_rotation(self):
        link = self.link([G1, G2], rotate_interval=100)
        link.start()
        proto = self.bring_online(link)
        self.clock.advance(100)
        self.assertEqual(link.state, "rotating")
        self.assertEqual(proto.closed, "rotating")
        link.lost(proto, "closed")
        self.assertEqual(link.state, "connecting")
        self.assertEqual(self.dials[-1][0], G2)

    def test_no_rotation_with_one_gateway(self):
        link = self.link([G1], rotate_interval=100)
        link.start()
        self.bring_online(link)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_cancels_everything(self):
        link = self.link()
        link.start()
        self.dials[-1][1].errback(ConnectionRefusedError())
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        link.stop()
        self.assertEqual(link.state, "stopped")
        self.assertEqual([c for c in self.clock.getDelayedCalls() if c.active()], [])

    def test_stop_while_online_closes(self):
        link = self.link()
        link.start()
        proto = self.bring_online(link)
        link.stop()
        self.assertEqual(proto.closed, "hub stopping")
        link.lost(proto, "closed")
        self.assertEqual(link.state, "stopped")

    def test_impossible_input_raises(self):
        link = self.link()
        from automat import NoTransition
        self.assertRaises(NoTransition, link._machine._welcome, FakeProto(), {})

    def test_backoff_is_capped_and_jittered(self):
        self.assertEqual(backoff_delay(50, 1.0, 30.0, lambda: 1.0), 30.0)
        self.assertEqual(backoff_delay(3, 1.0, 30.0, lambda: 0.0), 2.0)


G3 = GatewayEntry(Identity.from_phrase(new_phrase()).id, "127.0.0.1", 1003, "three")


class PinTests(Links, SynchronousTestCase):
    """An invite's gateways: added, recorded, and gone to unless online at one."""

    def setUp(self):
        super().setUp()
        self.recorded = []

    def record(self, entries, invite_id):
        self.recorded.append(([e.id for e in entries], invite_id))

    def test_online_elsewhere_moves_to_the_first_of_them(self):
        link = self.link((G1,))
        link.start()
        proto = self.bring_online(link)
        added = pin(link, [G2, G3], "invx", self.record)
        self.assertEqual((added, self.recorded), ([G2.id, G3.id], [([G2.id, G3.id], "invx")]))
        self.assertEqual((link.state, proto.closed), ("rotating", "rotating"))
        link.lost(proto, "closed")
        self.assertEqual(self.dials[-1][0], G2)

    def test_online_at_one_of_them_stays(self):
        link = self.link((G1, G2))
        link.start()
        proto = self.bring_online(link)
        self.assertEqual(pin(link, [G1], "invx", self.record), [])
        self.assertEqual((link.state, proto.closed, self.recorded), ("online", None, []))

    def test_while_backing_off_goes_there_at_once(self):
        link = self.link((G1,))
        link.start()
        self.dials[-1][1].errback(ConnectionRefusedError())
        self.assertEqual(link.state, "backing_off")
        pin(link, [G3], "invx")
        self.assertEqual((link.state, self.dials[-1][0]), ("connecting", G3))

    def test_while_connecting_goes_there_once_admitted_elsewhere(self):
        link = self.link((G1,))
        link.start()
        pin(link, [G2], "invx")
        proto = self.bring_online(link)  # G1's attempt was already under way
        self.clock.advance(0)
        self.assertEqual((link.state, proto.closed), ("rotating", "rotating"))
        link.lost(proto, "closed")
        self.assertEqual(self.dials[-1][0], G2)
        self.bring_online(link)
        self.clock.advance(0)
        self.assertEqual((link.state, link.current), ("online", G2))


class MoveTests(Links, SynchronousTestCase):
    def test_a_record_moves_an_address(self):
        link = self.link((G1, G2))
        self.assertEqual(move(link, G2.id, "10.0.0.9", 7), attrs.evolve(G2, host="10.0.0.9",
                                                                       port=7))
        self.assertIsNone(move(link, G2.id, "10.0.0.9", 7))  # nothing changed


class PinWithRotationTests(Links, SynchronousTestCase):
    def test_the_move_restarts_the_rotation_schedule(self):
        link = self.link((G1,), rotate_interval=100)
        link.start()
        self.bring_online(link)
        self.clock.advance(50)
        proto = link.proto
        pin(link, [G2], "invx")
        link.lost(proto, "closed")
        self.bring_online(link)
        self.clock.advance(70)  # past G1's old rotation time
        self.assertEqual((link.state, link.current), ("online", G2))
