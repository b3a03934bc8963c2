"""The two handshake-request machines alone, with a fake manager that records what
they ask of it (and answers at once where the real one may)."""

from automat import NoTransition
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from blockhub.handshake_bodies import Request
from blockhub.hub.incoming import KEY, OPERATOR, RANGE, Incoming
from blockhub.hub.outgoing import Outgoing

PEER = "bhpeer0000000000000000"


class FakeManager:
    def __init__(self, clock):
        self.clock = clock
        self.calls = []
        self.changes = []
        self.send_answer = None  # a callable run with the machine inside send_request
        self.dial_answer = None  # the same inside a dial

    def state_changed(self, machine, old, new):
        self.changes.append((old, new))

    def _record(self, name, machine, *args):
        self.calls.append((name,) + args)

    def send_request(self, out):
        self._record("send_request", out)
        if self.send_answer is not None:
            self.send_answer(out)

    def dial_back(self, out, endpoint):
        self._record("dial_back", out, endpoint)

    def dial_requester(self, inc):
        self._record("dial_requester", inc)
        if self.dial_answer is not None:
            self.dial_answer(inc)

    def finished(self, machine):
        self._record("finished", machine)

    def unwanted(self, machine):
        self._record("unwanted", machine)

    def awaiting_operator(self, inc):
        self._record("awaiting_operator", inc)

    def refreshed(self, inc):
        self._record("refreshed", inc)

    def send_acceptance(self, inc):
        self._record("send_acceptance", inc)

    def send_rejection(self, inc, reason):
        self._record("send_rejection", inc, reason)


def names(manager):
    return [call[0] for call in manager.calls]


class LogCapture:
    def __init__(self, case):
        self.lines = []
        globalLogPublisher.addObserver(self.observe)
        case.addCleanup(globalLogPublisher.removeObserver, self.observe)

    def observe(self, event):
        if "event" in event and event.get("log_format", "").startswith("{what}"):
            self.lines.append((event["old"], event["event"], event["new"]))


class OutgoingTests(SynchronousTestCase):
    def setUp(self):
        self.manager = FakeManager(Clock())
        self.out = Outgoing(self.manager, PEER, "hello")

    def test_an_answer_given_while_sending_waits_for_the_send_to_finish(self):
        self.manager.send_answer = lambda out: out.relayed()
        log = LogCapture(self)
        self.out.try_send()
        self.assertEqual(self.out.state, "sent")
        self.assertEqual(self.manager.changes, [("requested", "sent")])
        self.assertEqual(log.lines, [("requested", "relayed", "sent")])

    def test_not_delivered_waits_in_requested_with_the_reason(self):
        self.out.try_send()
        self.out.relayed()
        self.out.not_delivered("offline")
        self.assertEqual((self.out.state, self.out.reason), ("requested", "offline"))
        self.out.try_send()
        self.assertEqual(names(self.manager), ["send_request", "send_request"])

    def test_sent_is_not_sent_again_unless_the_operator_asks(self):
        self.out.try_send()
        self.out.relayed()
        self.out.try_send()
        self.assertEqual(names(self.manager), ["send_request"])
        self.out.ask_again()
        self.assertEqual(names(self.manager), ["send_request", "send_request"])

    def test_acceptance_dials_and_a_failed_dial_ends_it(self):
        self.out.relayed()
        self.out.accepted("127.0.0.1:9")
        self.assertEqual(self.manager.calls, [("dial_back", "127.0.0.1:9")])
        self.out.dial_failed("refused")
        self.assertEqual((self.out.state, self.out.reason), ("failed", "refused"))
        self.assertFalse(self.out.is_open())
        self.assertEqual(names(self.manager)[-1], "finished")

    def test_late_news_after_the_end_changes_nothing(self):
        self.out.refused("no")
        for late in (lambda: self.out.accepted(None), lambda: self.out.relayed(),
                     lambda: self.out.timed_out(), lambda: self.out.peer_connected()):
            late()
        self.assertEqual((self.out.state, self.out.reason), ("rejected", "no"))
        self.assertEqual(names(self.manager), ["finished"])

    def test_a_link_after_a_cancel_is_hung_up(self):
        self.out.cancel("blocked")
        self.out.peer_connected()
        self.assertEqual(self.out.state, "cancelled")
        self.assertEqual(names(self.manager), ["finished", "unwanted"])

    def test_impossible_input_raises(self):
        self.out.relayed()
        self.out.accepted(None)
        with self.assertRaises(NoTransition):
            self.out.relayed()  # connecting: the request was answered already


def request():
    return Request(PEER, "bhme", "127.0.0.1:9", 0, "n0nce", "hi", None)


class IncomingTests(SynchronousTestCase):
    def setUp(self):
        self.manager = FakeManager(Clock())

    def incoming(self, **kw):
        return Incoming(self.manager, request(), None, **kw)

    def test_key_approval_dials_and_a_failed_dial_sends_the_acceptance(self):
        inc = self.incoming()
        inc.key_approved()
        self.assertEqual((inc.state, inc.how), ("dialing", KEY))
        self.assertTrue(inc.expects_hello())
        inc.dial_failed("no route")
        self.assertEqual(inc.state, "awaiting")
        self.assertEqual(names(self.manager), ["dial_requester", "send_acceptance"])

    def test_a_dial_that_fails_at_once_is_taken_after_the_approval(self):
        self.manager.dial_answer = lambda inc: inc.dial_failed("refused")
        inc = self.incoming()
        inc.key_approved()
        self.assertEqual(inc.state, "awaiting")
        self.assertEqual(self.manager.changes, [("received", "dialing"),
                                                ("dialing", "awaiting")])

    def test_an_unconfirmed_range_goes_to_the_operator_revealing_nothing(self):
        inc = self.incoming()
        inc.range_matched()
        self.assertTrue(inc.needs_range_check())
        inc.dial_failed("timeout")
        self.assertEqual((inc.state, inc.how), ("pending", None))
        self.assertIn("not confirmed", inc.reason)
        self.assertNotIn("send_acceptance", names(self.manager))

    def test_operator_approval_and_eviction(self):
        inc = self.incoming()
        inc.hold()
        self.assertTrue(inc.waits_for_operator())
        inc.approve()
        self.assertEqual((inc.state, inc.how), ("dialing", OPERATOR))
        other = self.incoming()
        other.hold()
        other.evict("full")
        self.assertEqual(other.state, "dropped")
        self.assertIn(("send_rejection", "full"), self.manager.calls)

    def test_restored_runs_no_behaviour_until_restarted(self):
        inc = Incoming.restored(self.manager, request(), None, "awaiting", KEY, False)
        self.assertEqual((inc.state, self.manager.calls), ("dialing", []))
        self.assertEqual(self.manager.changes, [("awaiting", "dialing")])
        inc.restarted()
        self.assertEqual(names(self.manager), ["dial_requester"])

    def test_restored_range_acceptance_is_confirmed_again(self):
        inc = Incoming.restored(self.manager, request(), None, "confirming", RANGE, False)
        self.assertEqual(self.manager.changes, [])  # the same state: nothing to write
        inc.restarted()
        self.assertEqual((inc.state, names(self.manager)), ("confirming", ["dial_requester"]))

    def test_restored_on_an_unknown_basis_or_blocked(self):
        inc = Incoming.restored(self.manager, request(), None, "dialing", None, False)
        inc.restarted()
        self.assertEqual((inc.state, names(self.manager)), ("pending", ["awaiting_operator"]))
        gone = Incoming.restored(self.manager, request(), None, "pending", None, True)
        gone.restarted()
        self.assertEqual((gone.state, gone.reason), ("rejected", "blocked by the operator"))
        self.assertEqual(names(self.manager)[-1], "finished")

    def test_a_link_after_a_rejection_is_hung_up(self):
        inc = self.incoming()
        inc.key_approved()
        inc.reject("no")
        inc.peer_connected()
        inc.dial_failed("late")
        self.assertEqual(inc.state, "rejected")
        self.assertEqual(names(self.manager), ["dial_requester", "finished", "unwanted"])
