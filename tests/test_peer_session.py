"""The peer connection's life machine alone, with a Clock and fakes."""

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import BadMessage, Refused
from blockhub.hub.peer_session import PeerSession
from blockhub.wire.messages import Message


class FakeConn:
    address, peer_id = "127.0.0.1:4000", "bhpeer"

    def __init__(self):
        self.sent, self.closed = [], None

    def send(self, kind, **fields):
        self.sent.append((kind, fields))

    def close(self, reason, **kw):
        self.closed = reason


class FakePeers:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, args[1:]))


class FakeOpener:
    def __init__(self, verdict):
        self.verdict, self.asked = verdict, []

    def inbound(self, conn, message):
        self.asked.append(message.kind)
        return self.verdict


class FakeSlot:
    released = 0

    def release(self):
        self.released += 1


HELLO = ("peer-hello", {"hello": {}})


class PeerSessionTests(SynchronousTestCase):
    def make(self, first=None, verdict=("connected", None)):
        self.clock, self.conn, self.peers = Clock(), FakeConn(), FakePeers()
        self.opener, self.counted = FakeOpener(verdict), []
        session = PeerSession(self.conn, self.peers, self.opener, first, self.clock, 10.0,
                              self.counted.append)
        session.slot = self.slot = FakeSlot()
        self.answers = []
        if session.ready is not None:
            session.ready.addBoth(self.answers.append)
        return session

    def test_dialer_sends_its_opening_and_links_on_connected(self):
        session = self.make(first=HELLO)
        self.assertEqual(session.state, "tls")
        session.secured()
        self.assertEqual((session.state, self.conn.sent), ("opening", [HELLO]))
        session.frame(Message("peer-ready", {"status": "connected", "reason": None}))
        self.assertEqual(session.state, "linked")
        self.assertEqual(self.answers, [("connected", None)])
        self.assertEqual([c[0] for c in self.peers.calls], ["attach"])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.slot.released, 1)

    def test_dialer_told_no_closes_with_the_reason(self):
        session = self.make(first=HELLO)
        session.secured()
        session.frame(Message("peer-ready", {"status": "rejected", "reason": "blocked"}))
        self.assertEqual(session.state, "refused")
        self.assertEqual(self.answers, [("rejected", "blocked")])
        self.assertEqual(self.conn.closed, "peer link rejected: blocked")
        self.assertRaises(BadMessage, session.frame, Message("ack", {"seq": 1}))

    def test_acceptor_asks_the_opener_and_answers(self):
        session = self.make()
        session.secured()
        self.assertEqual(self.conn.sent, [])
        session.frame(Message(*HELLO))
        self.assertEqual(self.opener.asked, ["peer-hello"])
        self.assertEqual(self.conn.sent, [("peer-ready", {"status": "connected",
                                                          "reason": None})])
        self.assertEqual(session.state, "linked")

    def test_acceptor_answers_a_deferred_verdict_only_once_it_fires(self):
        """A peering is recorded before the dialer hears "connected"."""
        held = Deferred()
        session = self.make(verdict=held)
        session.secured()
        session.frame(Message(*HELLO))
        self.assertEqual((self.conn.sent, session.state), ([], "opening"))
        self.assertRaises(BadMessage, session.frame, Message(*HELLO))  # one opening only
        held.callback(("connected", None))
        self.assertEqual(self.conn.sent, [("peer-ready", {"status": "connected",
                                                          "reason": None})])
        self.assertEqual(session.state, "linked")
        self.assertEqual(self.opener.asked, ["peer-hello"])

    def test_a_verdict_after_the_deadline_is_not_told(self):
        held = Deferred()
        session = self.make(verdict=held)
        session.secured()
        session.frame(Message(*HELLO))
        self.clock.advance(10)
        sent = list(self.conn.sent)
        held.callback(("connected", None))
        self.assertEqual((session.state, self.conn.sent), ("refused", sent))
        self.assertEqual([c[0] for c in self.peers.calls], [])  # never attached

    def test_acceptor_refuses_a_wrong_first_frame(self):
        session = self.make()
        session.secured()
        self.assertRaises(BadMessage, session.frame, Message("ack", {"seq": 1}))
        self.assertEqual(self.opener.asked, [])

    def test_the_opening_has_a_deadline(self):
        session = self.make()
        session.secured()
        self.clock.advance(10)
        self.assertEqual(session.state, "refused")
        self.assertEqual(self.counted, ["FirstFrameTimeout"])
        self.assertEqual(self.conn.sent[0][0], "error")
        self.assertIn("within 10s of TLS", self.conn.closed)
        self.assertEqual(self.slot.released, 1)

    def test_a_connection_lost_while_opening_fails_ready(self):
        session = self.make(first=HELLO)
        session.secured()
        session.lost("reset")
        self.assertEqual(session.state, "closed")
        self.assertIsInstance(self.answers[0].value, Refused)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_linked_connection_carries_messages_and_is_detached_when_lost(self):
        session = self.make()
        session.secured()
        session.frame(Message(*HELLO))
        session.frame(Message("message", {"seq": 1, "text": "hi", "at": 1}))
        session.frame(Message("ack", {"seq": 1}))
        session.drained()
        self.assertRaises(BadMessage, session.frame, Message(*HELLO))
        session.lost("bye")
        self.assertEqual([c[0] for c in self.peers.calls],
                         ["attach", "message_received", "acked", "drained", "detach"])
        self.assertEqual(session.state, "closed")
