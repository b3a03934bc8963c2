"""Where the commits of the message path run: on a thread of their own, or at once.

A commit of 60 KiB messages with ``synchronous=FULL`` is milliseconds of writing and
fsync.  Done on the reactor thread, it stops the hub reading meanwhile: a relay
circuit's receiver grants no credit and a sender takes no acknowledgement until it
is over.  ``ThreadWriter`` runs those commits one at a time, in the order asked, on
one thread with its own connection to the database (sqlite3 lets go of the GIL while
SQLite works), so the reactor goes on reading while the disk works.  The process's
GIL switch interval is lowered for it (``SWITCH_INTERVAL``).  ``InlineWriter``
runs them at once on the store's own connection: a database in memory, and tests.

Either way ``run(job)`` calls ``job(store)`` with the store to use and returns a
Deferred of its result; whoever acts on the wire (an acknowledgement, "queued") does
so in that Deferred's callbacks, once the commit is done.

``GroupedJobs`` (a hub's handshakes: nonces, requests, their states, peerings) gathers
jobs of any kind while a commit is under way and runs them all under one COMMIT on
the writer, each in a savepoint of its own, so that a burst of handshakes costs a few
fsyncs instead of three or four each, and none on the reactor thread.
"""

import contextlib
import sqlite3
import sys

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from blockhub.hub.group_commit import GroupCommit

# How long a thread may hold the GIL while another waits for it (Python's default: 5 ms).
# A commit of four 60 KiB messages took 34-52 ms at the default beside a busy reactor
# thread, 11-12 ms at this.
SWITCH_INTERVAL = 0.0005


def second_connection(path, pragmas) -> sqlite3.Connection:
    """Another connection to the database at ``path``, made on the reactor thread and
    used only on the writer's (hence no same-thread check)."""
    db = sqlite3.connect(str(path), isolation_level=None, timeout=5.0,
                         check_same_thread=False)
    db.row_factory = sqlite3.Row
    for pragma in pragmas:
        db.execute(f"PRAGMA {pragma}")
    return db


class InlineWriter:
    def __init__(self, store):
        self.store = store

    def run(self, job) -> Deferred:
        return maybeDeferred(job, self.store)

    def stop(self) -> None:
        """Nothing runs on its own."""


class ThreadWriter:
    """One thread and one connection (``open_store()``'s), both made when first
    needed, so a hub that never sends nor receives starts no thread."""

    def __init__(self, reactor, open_store):
        self.reactor = reactor
        self.open_store = open_store  # a Store on a connection of its own
        self.store = None
        self._pool: ThreadPool | None = None
        self._stopped = False

    def run(self, job) -> Deferred:
        if self._pool is None:
            if self._stopped:
                return Deferred()  # closing: it never runs, so nothing acts on it
            self.store = self.open_store()  # used on the pool's thread only
            # The thread takes the GIL back after each SQLite call; while the reactor
            # thread runs Python it would wait the default 5 ms for it each time.
            sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
            self._pool = ThreadPool(1, 1, "blockhub-db")
            self._pool.start()
            # As the reactor's own pool: stopped at shutdown even if nobody closes us.
            self.reactor.addSystemEventTrigger("during", "shutdown", self.stop)
        result: Deferred = Deferred()
        done = deferToThreadPool(self.reactor, self._pool, job, self.store)
        done.addBoth(lambda outcome: None if self._stopped else result.callback(outcome))
        return result

    def stop(self) -> None:
        """Finish what was asked (the pool runs its queue before it stops), then close
        the connection.  From now on no result is passed on (the hub is closing, its
        store with it): what was committed but not acknowledged is sent again and
        dropped as a duplicate."""
        self._stopped = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            self.store.close()


@contextlib.contextmanager
def fsynced(store, synced: bool):
    """Unless ``synced``, the transaction inside commits without an fsync of its own
    (``synchronous=NORMAL``): it survives the process being killed, and only a crash
    of the machine may lose it before the next synced commit or checkpoint."""
    if not synced:
        store.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        if not synced:
            store.execute("PRAGMA synchronous=FULL")


def run_jobs(store, jobs, synced: bool = True) -> list:
    """Run ``jobs`` under one COMMIT (``fsynced``), each in a savepoint: (True, result)
    or (False, the exception) for each.  A job that fails is undone alone; a COMMIT
    that fails raises, and every job failed with it."""
    outcomes = []
    with fsynced(store, synced), store.transaction():
        for job in jobs:
            try:
                with store.transaction():
                    outcomes.append((True, job(store)))
            except Exception as e:
                outcomes.append((False, e))
    return outcomes


class InlineJobs:
    """Each job at once, in a transaction of its own (a database in memory, tests)."""

    def __init__(self, store):
        self.store = store

    def run(self, job, synced: bool = True) -> Deferred:
        return maybeDeferred(self._one, job)

    def stop(self) -> None:
        """Nothing waits."""

    def _one(self, job):
        with self.store.transaction():
            return job(self.store)


class GroupedJobs:
    """Jobs gathered by a ``GroupCommit`` and run together on ``writer``."""

    def __init__(self, clock, writer):
        self.writer = writer
        self._group = GroupCommit(clock, self._commit)  # (job, synced, Deferred)

    def run(self, job, synced: bool = True) -> Deferred:
        """``synced=False``: the job may go without an fsync (``run_jobs``), unless
        one it is committed with needs one."""
        done: Deferred = Deferred()
        self._group.add((job, synced, done))
        return done

    def stop(self) -> None:
        """Hand the writer what still waits, before it stops (it runs its queue)."""
        left = self._group.drain()
        if left:
            self._commit(left)

    def _commit(self, items) -> Deferred:
        def each(outcomes):
            for (_, _, done), (ok, value) in zip(items, outcomes, strict=True):
                done.callback(value) if ok else done.errback(value)

        def all_failed(failure):
            for _, _, done in items:
                done.errback(failure)

        jobs = [job for job, _, _ in items]
        synced = any(synced for _, synced, _ in items)
        return self.writer.run(lambda store: run_jobs(store, jobs, synced)).addCallbacks(
            each, all_failed)
