"""A handshake acts on the wire only on what is durable: the requester sends its
request once stored, the receiver decides once the request (and its nonce) is kept,
and the acceptor of the peer link says "connected" once the peering is recorded.
Here every hub's ``Store.commit`` jobs wait until the test lets them run (a slow
disk, or a writer thread busy with other commits)."""

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import StoreError
from tests.memory import World
from tests.test_store_thread import HeldWriter


class HeldJobs(HeldWriter):
    """``Store.commit``'s jobs, held as ``HeldWriter`` holds commits; each runs in a
    transaction of its own when let go."""

    def run(self, job, synced=True) -> Deferred:
        def in_transaction(store):
            with store.transaction():
                return job(store)

        return super().run(in_transaction)

    def release_all(self) -> int:
        """Run every job held now, in order (not those they ask for); how many ran."""
        n = len(self.held)
        for _ in range(n):
            self.release()
        return n


class DurableFirstTests(SynchronousTestCase):
    def setUp(self):
        self.world = World()
        self.a = self.world.full_hub(self, "a")
        self.b = self.world.full_hub(self, "b")
        self.b.store.add_approved_key(self.a.id, 0)
        for hub in (self.a, self.b):
            hub.store.jobs = HeldJobs(hub.store)

    def settle(self):
        """Let every commit run, and what follows from it, until nothing is held."""
        for _ in range(20):
            self.world.flush()
            if not (self.a.store.jobs.release_all() + self.b.store.jobs.release_all()):
                return
        self.fail("commits kept coming")

    def linked(self) -> bool:
        return self.b.id in self.a.peers.connections and \
            self.a.id in self.b.peers.connections

    def test_the_request_goes_out_only_once_stored(self):
        self.a.operator.connect(self.b.id, "hi")
        self.world.flush()
        self.assertEqual(self.b.handshakes.book.incoming, {})  # nothing sent yet
        self.assertEqual(self.a.store.requests("out"), [])
        self.a.store.jobs.release_all()
        self.world.flush()
        self.assertEqual([r["peer"] for r in self.a.store.requests("out")], [self.b.id])
        # b has it, but decides only once it is kept: no dial, no incoming machine.
        self.assertEqual(self.b.handshakes.book.incoming, {})
        self.assertEqual(len(self.b.store.jobs.held), 1)
        self.assertFalse(self.linked())
        self.settle()
        self.assertTrue(self.linked())
        self.assertIsNotNone(self.a.store.peer(self.b.id))
        self.assertIsNotNone(self.b.store.peer(self.a.id))
        self.assertEqual(self.b.store.requests("in")[0]["state"], "connected")

    def test_the_acceptor_says_connected_only_once_the_peering_is_recorded(self):
        """b dials a (the requester) with a hello; b attaches the link when a answers
        "connected", which a does only after its commit of the peering ran."""
        events = []
        record, attach = self.a.store.add_peer, self.b.peers.attach
        self.a.store.add_peer = lambda *args: (events.append("a recorded"), record(*args))
        self.b.peers.attach = lambda proto: (events.append("b attached"), attach(proto))
        self.a.operator.connect(self.b.id, "hi")
        self.settle()
        self.assertTrue(self.linked())
        self.assertEqual(events, ["a recorded", "b attached"])

    def test_the_path_is_told_again_once_the_peering_is_recorded(self):
        """Who reads the peering's row when its path changes (the upgrades to a direct
        path) must find it: the dialer records it after its link came up."""
        seen = []
        told = self.b.peers.on_path
        self.b.peers.on_path = lambda hub_id, path: (
            seen.append(self.b.store.peer(hub_id) is not None), told(hub_id, path))
        self.a.operator.connect(self.b.id, "hi")
        self.settle()
        self.assertTrue(self.linked())
        self.assertEqual(seen[-1], True)

    def test_a_replay_found_on_commit_is_refused(self):
        delivered = []
        real = self.b.handshakes.delivered

        def twice(message):
            delivered.append(message)
            real(message)
            if message["kind"] == "request":
                real(message)  # the same sealed request again, before the first is kept

        self.b.handshakes.delivered = twice
        self.a.operator.connect(self.b.id, "hi")
        self.settle()
        self.assertTrue(delivered)
        self.assertEqual(self.b.handshakes.refusals["Replayed"], 1)
        self.assertTrue(self.linked())

    def test_a_peering_that_cannot_be_recorded_is_not_said_connected(self):
        """a cannot record b's dial: it answers rejected, and b falls back on telling a
        to dial it (where a, the dialer, keeps the link and logs that it is unrecorded)."""
        def broken(*args):
            raise StoreError("database error: disk I/O error")

        self.a.store.add_peer = broken
        self.a.operator.connect(self.b.id, "hi")
        self.settle()
        (row,) = self.b.operator.status()
        self.assertEqual(row["reason"], "rejected: this hub cannot record the peering now")
        self.assertIsNone(self.a.store.peer(self.b.id))
