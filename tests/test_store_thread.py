"""The message path's commits off the reactor thread: group commits, the writer thread,
and acknowledgements that wait for the commit (nothing is acknowledged before it is
durable, nothing lost, duplicated or reordered)."""

import threading

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredList, gatherResults, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from blockhub.errors import StoreError
from blockhub.hub.group_commit import GroupCommit
from blockhub.hub.store import Store
from tests.memory import World

PEER = "bhpeer"


class HeldWriter:
    """A writer whose commits wait until the test lets them run (a slow disk)."""

    def __init__(self, store):
        self.store = store
        self.held: list = []  # (job, Deferred)

    def run(self, job):
        d = Deferred()
        self.held.append((job, d))
        return d

    def release(self):
        """Run the oldest commit held, and fire its Deferred."""
        job, d = self.held.pop(0)
        try:
            result = job(self.store)
        except Exception as e:
            d.errback(e)
        else:
            d.callback(result)

    def stop(self):
        pass


class GroupCommitTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.commits: list = []  # (items, Deferred)

        def commit(items):
            d = Deferred()
            self.commits.append((items, d))
            return d

        self.group = GroupCommit(self.clock, commit)

    def test_one_turn_is_one_commit(self):
        self.group.add(1)
        self.group.add(2)
        self.assertEqual(self.commits, [])  # at the end of the turn
        self.clock.advance(0)
        self.assertEqual([items for items, _ in self.commits], [[1, 2]])

    def test_what_arrives_during_a_commit_goes_in_the_next_one(self):
        self.group.add(1)
        self.clock.advance(0)
        for turn in ([2, 3], [4]):  # two turns while the first commit runs
            for item in turn:
                self.group.add(item)
            self.clock.advance(0)
        self.assertEqual(len(self.commits), 1)
        self.commits[0][1].callback(None)
        self.assertEqual([items for items, _ in self.commits], [[1], [2, 3, 4]])

    def test_a_failed_commit_lets_the_next_one_run(self):
        self.group.add(1)
        self.clock.advance(0)
        self.group.add(2)
        self.clock.advance(0)
        self.commits[0][1].errback(RuntimeError("a bug in the caller's handling"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual([items for items, _ in self.commits], [[1], [2]])

    def test_keep_drops_waiting_items(self):
        self.group.add(1)
        self.clock.advance(0)
        self.group.add(2)
        self.group.add(3)
        self.clock.advance(0)
        self.group.keep(lambda item: item != 2)
        self.commits[0][1].callback(None)
        self.assertEqual(self.commits[1][0], [3])

    def test_max_bytes_splits_a_burst_in_order(self):
        group = GroupCommit(self.clock, lambda items: (self.commits.append(items),
                                                       succeed(None))[1],
                            size=len, max_bytes=5)
        for item in ("aaa", "bb", "c", "dddddddd", "e"):
            group.add(item)
        self.clock.advance(0)
        self.assertEqual(self.commits, [["aaa", "bb"], ["c"], ["dddddddd"], ["e"]])


class ThreadWriterTests(TestCase):
    """A real thread and a real database file (the reactor delivers the results)."""

    def setUp(self):
        self.store = Store(self.mktemp(), reactor)
        self.addCleanup(self.store.close)

    def test_commits_run_on_another_thread_in_order(self):
        threads = []

        def where(store):
            threads.append(threading.get_ident())
            return store.queue_messages([(PEER, "x")], 1)

        ds = [self.store.commit_queued([(PEER, f"m{n}")], 1) for n in range(5)]
        ds.append(self.store.writer.run(where))

        def check(results):
            self.assertEqual(results, [[1], [2], [3], [4], [5], [6]])
            self.assertNotEqual(threads, [threading.get_ident()])
            # The reactor thread's connection sees what the writer committed.
            self.assertEqual([r["text"] for r in self.store.unacked(PEER)],
                             [f"m{n}" for n in range(5)] + ["x"])

        return gatherResults(ds).addCallback(check)

    def test_received_and_acks(self):
        d = self.store.commit_received([(PEER, 1, "a", 1), (PEER, 1, "a", 1),
                                        (PEER, 2, "b", 1)], 2)
        d.addCallback(self.assertEqual, 2)  # the duplicate is dropped
        d.addCallback(lambda _: self.store.commit_queued([(PEER, "q1"), (PEER, "q2")], 3))
        d.addCallback(lambda _: self.store.commit_acks({PEER: 1}))

        def check(_):
            self.assertEqual([m["text"] for m in self.store.messages()], ["a", "b"])
            self.assertEqual([r["seq"] for r in self.store.unacked(PEER)], [2])
            # Acks went in without an fsync of their own; the connection is back to FULL.
            thread_db = self.store.writer.store.db
            self.assertEqual(thread_db.execute("PRAGMA synchronous").fetchone()[0], 2)

        return d.addCallback(check)

    def test_errors_arrive_as_store_errors(self):
        d = self.store.writer.run(lambda store: store.execute("SELECT * FROM nowhere"))
        return self.assertFailure(d, StoreError)

    def test_nothing_is_passed_on_after_close(self):
        store = Store(self.mktemp(), reactor)
        d = store.commit_queued([(PEER, "late")], 1)
        fired = []
        d.addBoth(fired.append)
        store.close()  # the commit is done before the thread stops...
        again = Store(store.path)
        self.addCleanup(again.close)
        self.assertEqual([r["text"] for r in again.unacked(PEER)], ["late"])
        done = Deferred()
        reactor.callLater(0, done.callback, None)
        # ...but its result, due through the reactor, is not passed on.
        return done.addCallback(lambda _: self.assertEqual(fired, []))


class NestedTransactionTests(SynchronousTestCase):
    def setUp(self):
        self.store = Store(None)

    def test_an_inner_failure_is_undone_alone(self):
        with self.store.transaction():
            self.store.add_approved_key("kept", 1)
            with self.assertRaises(StoreError):
                with self.store.transaction():
                    self.store.add_approved_key("undone", 1)
                    self.store.execute("SELECT * FROM nowhere")
        self.assertEqual(self.store.approved_keys(), {"kept"})

    def test_an_outer_failure_undoes_the_inner_ones(self):
        with self.assertRaises(RuntimeError):
            with self.store.transaction():
                self.store.add_approved_key("inner", 1)  # its own transaction, nested
                raise RuntimeError("after the inner one")
        self.assertEqual(self.store.approved_keys(), set())

    def test_inline_jobs_are_atomic(self):
        def half(store):
            store.add_approved_key("first", 1)
            raise StoreError("database error: the second half failed")

        d = self.store.commit(half)
        self.failureResultOf(d, StoreError)
        self.assertEqual(self.store.approved_keys(), set())
        self.assertIsNone(self.successResultOf(
            self.store.commit(lambda s: s.add_approved_key("k", 1))))
        self.assertEqual(self.store.approved_keys(), {"k"})


class GroupedJobsTests(TestCase):
    """Jobs of several kinds on a real writer thread: one COMMIT for what waited."""

    def setUp(self):
        self.commits: list = []
        self.store = Store(self.mktemp(), reactor, observe_commit=self.commits.append)
        self.addCleanup(self.store.close)

    def test_jobs_asked_together_share_one_commit_and_each_gets_its_result(self):
        def bad(store):
            store.add_approved_key("undone", 1)
            store.execute("SELECT * FROM nowhere")

        ds = [self.store.commit(lambda s: s.remember_nonce("n1", 5, 0)),
              self.store.commit(lambda s: s.remember_nonce("n1", 5, 0)),  # a replay
              self.store.commit(bad),
              self.store.commit(lambda s: s.add_approved_key("kept", 1))]
        self.assertEqual(self.commits, [])  # nothing on the reactor thread, nor yet

        def check(results):
            self.assertEqual([ok for ok, _ in results], [True, True, False, True])
            self.assertEqual([results[0][1], results[1][1]], [True, False])
            results[2][1].trap(StoreError)
            self.assertEqual(len(self.commits), 1)  # the four, in one COMMIT
            self.assertEqual(self.store.approved_keys(), {"kept"})

        return DeferredList(ds, consumeErrors=True).addCallback(check)

    def test_jobs_asked_on_a_later_turn_commit_apart(self):
        first = self.store.commit(lambda s: s.add_approved_key("a", 1))
        later = []

        def during(_):
            later.extend(self.store.commit(lambda s, k=k: s.add_approved_key(k, 1))
                         for k in ("b", "c"))
            return gatherResults(later)

        def check(_):
            self.assertEqual(len(self.commits), 2)
            self.assertEqual(self.store.approved_keys(), {"a", "b", "c"})

        return first.addCallback(during).addCallback(check)


    def test_unsynced_jobs_alone_commit_without_an_fsync(self):
        modes = []

        def mode(store):
            modes.append(store.execute("PRAGMA synchronous").fetchone()[0])

        d = self.store.commit(mode, synced=False)
        d.addCallback(lambda _: gatherResults([self.store.commit(mode, synced=False),
                                               self.store.commit(mode)]))
        d.addCallback(lambda _: self.store.commit(mode, synced=False))

        def check(_):
            # NORMAL (1) alone; FULL (2) beside a synced job; then NORMAL again, and
            # the connection is back to FULL after each.
            self.assertEqual(modes, [1, 2, 2, 1])
            thread_db = self.store.writer.store.db
            self.assertEqual(thread_db.execute("PRAGMA synchronous").fetchone()[0], 2)

        return d.addCallback(check)

    def test_durable_fires_after_what_was_asked_before(self):
        order = []
        self.store.commit(lambda s: s.add_approved_key("k", 1)).addCallback(
            lambda _: order.append("job"))
        d = self.store.durable().addCallback(lambda _: order.append("durable"))

        def check(_):
            self.assertEqual(order, ["job", "durable"])
            self.assertEqual(Store(self.store.path).approved_keys(), {"k"})

        return d.addCallback(check)

    def test_closing_commits_what_still_waits(self):
        store = Store(self.mktemp(), reactor)
        store.commit(lambda s: s.add_approved_key("busy", 1))  # handed to the thread
        store.commit(lambda s: s.add_approved_key("late", 1))  # waits for the turn
        store.close()
        again = Store(store.path)
        self.addCleanup(again.close)
        self.assertEqual(again.approved_keys(), {"busy", "late"})


class AcknowledgedOnlyWhenDurableTests(SynchronousTestCase):
    """Peers over the in-memory world, with the receiver's commits held back."""

    def setUp(self):
        self.world = World()
        self.a = self.world.full_hub(self, "a")
        self.b = self.world.full_hub(self, "b")
        self.b.store.add_approved_key(self.a.id, 0)
        self.a.operator.connect(self.b.id)
        self.world.flush()
        self.writer = HeldWriter(self.b.store)
        self.b.store.writer = self.writer
        self.acks = []
        proto = self.b.peers.connections[self.a.id]
        original = proto.send

        def spy(kind, /, **fields):
            if kind == "ack":
                self.acks.append(fields["seq"])
            original(kind, **fields)

        proto.send = spy

    def test_no_ack_before_the_commit_and_later_messages_wait_for_the_next(self):
        for n in range(3):
            self.a.peers.send(self.a_peer(), f"m{n}")
        self.world.flush()
        self.assertEqual(self.acks, [])
        self.assertEqual(self.b.store.messages(), [])  # not committed, not acknowledged
        self.assertEqual(len(self.writer.held), 1)
        for n in range(3, 5):  # arrive while the first commit runs
            self.a.peers.send(self.a_peer(), f"m{n}")
        self.world.flush()
        self.assertEqual((self.acks, len(self.writer.held)), ([], 1))
        self.writer.release()
        self.world.flush()
        self.assertEqual(self.acks, [3])
        self.assertEqual(len(self.writer.held), 1)  # m3 and m4, together
        self.writer.release()
        self.world.flush()
        self.assertEqual(self.acks, [3, 5])
        self.assertEqual([m["text"] for m in self.b.store.messages()],
                         [f"m{n}" for n in range(5)])
        self.assertEqual(self.a.store.unacked(self.b.id), [])

    def test_a_failed_commit_drops_what_waited_behind_it(self):
        """Messages that arrived during a commit that fails are not committed either:
        an ack for them would cover the lost ones.  The sender sends all again."""
        self.a.peers.send(self.a_peer(), "m0")
        self.world.flush()
        self.a.peers.send(self.a_peer(), "m1")
        self.world.flush()
        real = self.b.store.store_received_many
        self.b.store.store_received_many = self.broken
        self.writer.release()
        self.world.flush()
        self.assertEqual((self.acks, self.writer.held, self.b.peers.storage_errors),
                         ([], [], 1))
        self.b.store.store_received_many = real
        self.b.store.writer = _Inline(self.b.store)
        self.world.clock.advance(5)  # b dialed: it reconnects, and a sends again
        self.world.flush()
        self.assertEqual([m["text"] for m in self.b.store.messages()], ["m0", "m1"])
        self.assertEqual(self.a.store.unacked(self.b.id), [])

    def a_peer(self):
        return self.b.id

    @staticmethod
    def broken(*args):
        raise StoreError("database error: disk I/O error")


class _Inline(HeldWriter):
    def run(self, job):
        d = super().run(job)
        self.release()
        return d
