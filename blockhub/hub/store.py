"""The hub's SQLite database: approvals, blocks, requests, peers, messages, archive.

WAL with full sync, so a ``kill -9`` loses nothing committed; the hub acts on the wire
only on what is committed (a message is stored before it is acknowledged).  Rare
writes are short transactions on the reactor thread.  The message path's commits
(``commit_*``) and the handshakes' (``commit``) return Deferreds and, for a database
on disk opened with a reactor, run on a thread of their own with a second connection
(``store_thread``), so an fsync does not stop the hub reading.  The schema, its files
and upgrades are ``db_schemas.py``'s; this module only reads and writes rows.
"""

import contextlib
import sqlite3
from pathlib import Path

from blockhub.errors import StoreError
from blockhub.hub import store_thread
from blockhub.hub.db_schemas import PRAGMAS, SchemaError, Transaction, open_database, open_memory

DB_NAME = "hub.sqlite"
__all__ = ["DB_NAME", "Store", "StoreError"]


class Store:
    def __init__(self, path: Path | None, reactor=None, connection=None,
                 observe_commit=None):
        """The database at ``path``; None keeps it in memory (tests).  With a
        ``reactor`` (and a path), ``commit`` and ``commit_*`` run on a thread of their
        own; without, at once.  ``connection``: an open connection to use as it is
        (the writer thread's own).  ``observe_commit(seconds)`` hears how long each
        COMMIT took (metrics; from the writer's thread too)."""
        self.path = Path(path) if path is not None else None
        self.observe_commit = observe_commit or (lambda seconds: None)
        try:
            self.db = connection or (open_database(self.path) if self.path is not None
                                     else open_memory())
        except SchemaError as e:
            raise StoreError(str(e))
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the hub database {self.path}: {e}")
        threaded = reactor is not None and self.path is not None
        self.writer = (store_thread.ThreadWriter(reactor, self._second) if threaded
                       else store_thread.InlineWriter(self))
        self.jobs = (store_thread.GroupedJobs(reactor, self.writer) if threaded
                     else store_thread.InlineJobs(self))

    @classmethod
    def in_dir(cls, data_dir: Path, reactor=None, observe_commit=None) -> "Store":
        return cls(Path(data_dir) / DB_NAME, reactor, observe_commit=observe_commit)

    def _second(self) -> "Store":
        """The same database on a second connection, for the writer's thread."""
        try:
            return Store(self.path, connection=store_thread.second_connection(self.path, PRAGMAS),
                         observe_commit=self.observe_commit)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open the hub database {self.path}: {e}")

    def transaction(self):
        return Transaction(self.db, self.observe_commit)

    def execute(self, sql: str, args=()) -> sqlite3.Cursor:
        return self._call(self.db.execute, sql, args)

    def execute_many(self, sql: str, rows) -> sqlite3.Cursor:
        """One statement for many rows, in one call (fewer trips through the GIL for
        the writer's thread)."""
        return self._call(self.db.executemany, sql, rows)

    @staticmethod
    def _call(method, sql, args):
        try:
            return method(sql, args)
        except sqlite3.Error as e:
            raise StoreError(f"database error: {e}")
        except UnicodeEncodeError as e:  # text SQLite cannot hold (a lone surrogate)
            raise StoreError(f"text the database cannot store: {e.reason}")

    def commit(self, job, synced: bool = True):
        """``job(store)`` committed with the other jobs of the moment, off the reactor
        thread if the store has a writer; a Deferred of its result, fired once durable
        (``synced=False``: once it survives a killed process; ``run_jobs``)."""
        return self.jobs.run(job, synced)

    def durable(self):
        """A Deferred that fires once every ``commit`` asked before it is durable."""
        return self.commit(lambda store: None)

    def write(self, sql: str, args=()) -> sqlite3.Cursor:
        """One statement in its own committed transaction."""
        with self.transaction():
            return self.execute(sql, args)

    def close(self):
        """Let the writer finish what it was asked first."""
        self.jobs.stop()
        self.writer.stop()
        self.db.close()

    # -- approvals and blocks --------------------------------------------------------
    def add_approved_key(self, hub_id: str, now: int):
        self.write("INSERT OR IGNORE INTO approved_keys VALUES (?, ?)", (hub_id, now))

    def add_approved_range(self, cidr: str, now: int):
        self.write("INSERT OR IGNORE INTO approved_ranges VALUES (?, ?)", (cidr, now))

    def block(self, hub_id: str, now: int):
        with self.transaction():
            self.execute("INSERT OR IGNORE INTO blocked_keys VALUES (?, ?)", (hub_id, now))
            self.execute("DELETE FROM approved_keys WHERE id = ?", (hub_id,))

    def approved_keys(self) -> set[str]:
        return {r[0] for r in self.execute("SELECT id FROM approved_keys")}

    def approved_ranges(self) -> list[str]:
        return [r[0] for r in self.execute("SELECT cidr FROM approved_ranges ORDER BY cidr")]

    def blocked_keys(self) -> set[str]:
        return {r[0] for r in self.execute("SELECT id FROM blocked_keys")}

    # -- replay protection ----------------------------------------------------------
    def remember_nonce(self, nonce: str, now: int, forget_before: int) -> bool:
        """Record ``nonce``; False when it was seen before (a replay)."""
        with self.transaction():
            self.execute("DELETE FROM seen_nonces WHERE seen_at < ?", (forget_before,))
            cur = self.execute("INSERT OR IGNORE INTO seen_nonces VALUES (?, ?)", (nonce, now))
            return cur.rowcount == 1

    # -- requests -------------------------------------------------------------------
    def save_request(self, direction: str, peer: str, state: str, now: int, expires_at: int,
                     note: str = "", endpoint=None, observed=None, nonce=None, invite=None):
        """``invite``: an outgoing request's invite code, to sign it again later."""
        self.write(
            "INSERT INTO requests (direction, peer, state, note, endpoint, observed, nonce,"
            " created_at, updated_at, expires_at, invite) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (direction, peer) DO UPDATE SET state=excluded.state,"
            " note=excluded.note, endpoint=excluded.endpoint, observed=excluded.observed,"
            " nonce=excluded.nonce, created_at=excluded.created_at,"
            " updated_at=excluded.updated_at, expires_at=excluded.expires_at,"
            " invite=excluded.invite",
            (direction, peer, state, note, endpoint, observed, nonce, now, now, expires_at,
             invite))

    def forget_invite(self, peer: str):
        """An outgoing request ended: its invite code is of no more use to keep."""
        self.write("UPDATE requests SET invite = NULL WHERE direction = 'out' AND peer = ?",
                   (peer,))

    def set_request_state(self, direction: str, peer: str, state: str, now: int,
                          how: str | None = None):
        self.set_request_states([(direction, peer, state, now, how)])

    def set_request_states(self, changes):
        """Apply (direction, peer, state, time, how) changes in order, in one transaction.
        ``how`` is what an incoming request was accepted on (None: not accepted)."""
        with self.transaction():
            for direction, peer, state, now, how in changes:
                self.execute("UPDATE requests SET state = ?, updated_at = ?, how = ? WHERE "
                             "direction = ? AND peer = ?", (state, now, how, direction, peer))

    def requests(self, direction: str | None = None) -> list[dict]:
        if direction:
            rows = self.execute("SELECT * FROM requests WHERE direction = ? ORDER BY "
                                "created_at", (direction,))
        else:
            rows = self.execute("SELECT * FROM requests ORDER BY created_at")
        return [dict(r) for r in rows]

    # -- peers ----------------------------------------------------------------------
    def add_peer(self, hub_id: str, address: str | None, dialer: bool, now: int,
                 path: str = "direct"):
        """Record a peering; a later link updates its address, who redials and how the
        link was made (``path``)."""
        self.write("INSERT INTO peers (id, address, dialer, established_at, path) "
                   "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                   "address = excluded.address, "
                   "dialer = excluded.dialer, path = excluded.path",
                   (hub_id, address, int(dialer), now, path))

    def set_peer_path(self, hub_id: str, path: str):
        self.write("UPDATE peers SET path = ? WHERE id = ?", (path, hub_id))

    def remove_peer(self, hub_id: str):
        self.write("DELETE FROM peers WHERE id = ?", (hub_id,))

    def peers(self) -> list[dict]:
        return [dict(r) for r in self.execute("SELECT * FROM peers ORDER BY established_at")]

    def peer(self, hub_id: str) -> dict | None:
        row = self.execute("SELECT * FROM peers WHERE id = ?", (hub_id,)).fetchone()
        return dict(row) if row else None

    # -- messages -------------------------------------------------------------------
    def queue_messages(self, items, now: int) -> list[int]:
        """Append (peer, text) pairs to the outbox in one transaction; their seqs."""
        seqs, last, rows = [], {}, []
        with self.transaction():
            for peer, text in items:
                if peer not in last:
                    (last[peer],) = self.execute(
                        "SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE peer = ?",
                        (peer,)).fetchone()
                last[peer] += 1
                rows.append((peer, last[peer], text, now))
                seqs.append(last[peer])
            self.execute_many("INSERT INTO outbox (peer, seq, text, at) VALUES (?, ?, ?, ?)",
                              rows)
        return seqs

    def unacked(self, peer: str, after: int = 0, limit: int = -1) -> list[dict]:
        return [dict(r) for r in self.execute(
            "SELECT seq, text, at FROM outbox WHERE peer = ? AND acked = 0 AND seq > ? "
            "ORDER BY seq LIMIT ?", (peer, after, limit))]

    @contextlib.contextmanager
    def each_unacked(self, peer: str, after: int, limit: int):
        """``unacked`` read a row at a time, for a sender that stops when its transport
        is full: what it does not take is never read (60 KiB texts add up)."""
        cursor = self.execute(
            "SELECT seq, text, at FROM outbox WHERE peer = ? AND acked = 0 AND seq > ? "
            "ORDER BY seq LIMIT ?", (peer, after, limit))
        try:
            yield (dict(row) for row in cursor)
        except sqlite3.Error as e:
            raise StoreError(f"database error: {e}")
        finally:
            cursor.close()

    def count_unacked(self, peer: str, up_to: int, after: int = 0) -> int:
        """Unacknowledged messages with ``after`` < seq <= ``up_to`` (``after``: what
        the caller knows to be acknowledged, even if not recorded yet)."""
        (n,) = self.execute("SELECT COUNT(*) FROM outbox WHERE peer = ? AND acked = 0 AND "
                            "seq > ? AND seq <= ?", (peer, after, up_to)).fetchone()
        return n

    def ack(self, peer: str, seq: int):
        self.ack_many({peer: seq})

    def ack_many(self, highest: dict[str, int], synced: bool = True):
        """Mark acknowledged, per peer, every message up to its seq, in one transaction.
        ``synced=False`` (``store_thread.fsynced``), for the record of acks received:
        if a crash loses it, the messages are only sent again and the receiver drops
        them as duplicates."""
        with store_thread.fsynced(self, synced), self.transaction():
            for peer, seq in highest.items():
                self.execute("UPDATE outbox SET acked = 1 WHERE peer = ? AND acked = 0 "
                             "AND seq <= ?", (peer, seq))

    def store_received_many(self, rows, now: int) -> int:
        """Store several incoming (peer, seq, text, at) in one transaction; duplicates
        are dropped.  Returns how many were new."""
        with self.transaction():
            before = self.db.total_changes
            self.execute_many("INSERT OR IGNORE INTO inbox (peer, seq, text, at, "
                              "received_at) VALUES (?, ?, ?, ?, ?)",
                              [(peer, seq, text, at, now) for peer, seq, text, at in rows])
            return self.db.total_changes - before

    # The message path's commits, on the writer (see the module's docstring).  Each
    # calls the method above on the store the writer gives it.
    def commit_queued(self, items, now: int):
        """``queue_messages``; a Deferred of the seqs."""
        return self.writer.run(lambda store: store.queue_messages(items, now))

    def commit_received(self, rows, now: int):
        """``store_received_many``; a Deferred of how many were new."""
        return self.writer.run(lambda store: store.store_received_many(rows, now))

    def commit_acks(self, highest: dict[str, int]):
        """``ack_many``, unsynced; a Deferred that fires once they are recorded."""
        return self.writer.run(lambda store: store.ack_many(highest, synced=False))

    def messages(self) -> list[dict]:
        return [{"from": r["peer"], "seq": r["seq"], "text": r["text"], "at": r["at"],
                 "received_at": r["received_at"]}
                for r in self.execute("SELECT * FROM inbox ORDER BY n")]

    def outbox(self) -> list[dict]:
        return [dict(r) for r in self.execute("SELECT * FROM outbox ORDER BY peer, seq")]

    # -- gateway list ---------------------------------------------------------------
    def gateway_issued(self) -> dict[str, int]:
        """The newest ``issued`` taken from a signed record, per gateway key, so an older
        record is never taken again after a restart (a rollback)."""
        return {r[0]: r[1] for r in self.execute("SELECT key, issued FROM gateway_issued")}

    def set_gateway_issued(self, key: str, issued: int):
        self.write("INSERT INTO gateway_issued VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                   "issued = MAX(issued, excluded.issued)", (key, issued))

    # -- archive --------------------------------------------------------------------
    def archive(self, now: int, gateway: str | None, event: str, hub: str, hubinfo: str | None):
        self.write("INSERT INTO archive (at, gateway, event, hub, hubinfo) VALUES "
                   "(?, ?, ?, ?, ?)", (now, gateway, event, hub, hubinfo))

    def archived(self) -> list[dict]:
        return [dict(r) for r in self.execute("SELECT * FROM archive ORDER BY n")]
