"""The hub database's schema, kept as files in ``db-schemas/``, and the opening that applies it.

``vN.sql`` is the full schema of version N: a new database is made from the newest.
``upgrade-to-vN.sql`` turns version N-1 into N: an older database is first copied beside
itself (``hub.sqlite.vN.bak``), then brought forward one step at a time, each step in one
transaction with its version bump, so a step that fails leaves the version before it.
A released version's files never change; a test checks that the upgrades of version 1
give exactly the newest full schema.
"""

import os
import sqlite3
import time
from importlib import resources
from pathlib import Path

from twisted.logger import Logger

from blockhub.errors import StoreError, UserError

log = Logger()
SCHEMA_VERSION = 5
# SQLite checkpoints the WAL into the database every 8192 pages (32 MiB) rather than 1000:
# fewer, larger checkpoints (each one fsyncs the database) for the 60 KiB messages.
PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "wal_autocheckpoint=8192")
LOCK_WAIT = 5.0  # seconds an upgrade waits for other users of the database to leave


class SchemaError(UserError):
    """The database cannot be brought to this code's schema; said in one line."""


def schema_script(name: str) -> str:
    """A file of ``db-schemas/``, from the installed package."""
    return resources.files("blockhub.hub").joinpath("db-schemas").joinpath(name).read_text()


def open_database(path: Path) -> sqlite3.Connection:
    """A connection to the database at ``path`` (made, mode 0600, when missing) at
    ``SCHEMA_VERSION``.  Raises SchemaError, or sqlite3.Error for the caller to report."""
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    db = _connect(path, *PRAGMAS)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    if "version" not in tables:
        run_in_transaction(db, schema_script(f"v{SCHEMA_VERSION}.sql"),
                           f"INSERT INTO version VALUES ({SCHEMA_VERSION})")
    elif _version(db, path) < SCHEMA_VERSION:
        db.close()
        _upgrade(path)
        db = _connect(path, *PRAGMAS)
    return db


def open_memory() -> sqlite3.Connection:
    """A database in memory at ``SCHEMA_VERSION`` (for tests: nothing reaches a disk)."""
    db = _connect(Path(":memory:"))
    run_in_transaction(db, schema_script(f"v{SCHEMA_VERSION}.sql"),
                       f"INSERT INTO version VALUES ({SCHEMA_VERSION})")
    return db


def run_in_transaction(db: sqlite3.Connection, script: str, version_sql: str):
    """Run ``script`` and ``version_sql`` as one transaction.  ``executescript`` commits
    whatever is open first, so the BEGIN and COMMIT are part of the script; on an error
    the transaction it left open is rolled back and the database is as it was."""
    try:
        db.executescript(f"BEGIN IMMEDIATE;\n{script}\n;{version_sql};\nCOMMIT;")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _connect(path: Path, *pragmas: str, timeout: float = 5.0) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), isolation_level=None, timeout=timeout)
    db.row_factory = sqlite3.Row
    for pragma in pragmas:
        db.execute(f"PRAGMA {pragma}")
    return db


def _version(db: sqlite3.Connection, path: Path) -> int:
    (version,) = db.execute("SELECT version FROM version").fetchone()
    if version > SCHEMA_VERSION:
        db.close()
        raise SchemaError(f"{path} was written by a newer blockhub (schema {version})")
    return version


def _upgrade(path: Path):
    """Bring an older database to the newest schema, after keeping a copy of it.  This
    connection holds the exclusive lock from before the copy to the last step, so no
    other process has the database open meanwhile (a hub running on it is refused)."""
    db = _connect(path, "locking_mode=EXCLUSIVE", timeout=LOCK_WAIT)
    try:
        try:
            db.execute("BEGIN EXCLUSIVE")  # the first use of the file: nothing read before
        except sqlite3.OperationalError as e:
            if e.sqlite_errorname != "SQLITE_BUSY":
                raise
            raise SchemaError(f"cannot upgrade the hub database {path}: another process "
                              "has it open (is a hub running on this data directory?)")
        version = _version(db, path)
        db.execute("COMMIT")  # the lock stays, in this locking mode
        db.execute("PRAGMA synchronous=FULL")
        backup = _backup(db, path, version)
        log.info("upgrading the hub database {path} from schema {old} to {new}; a copy of "
                 "it is kept in {backup}", path=str(path), old=version, new=SCHEMA_VERSION,
                 backup=str(backup))
        for step in range(version + 1, SCHEMA_VERSION + 1):
            try:
                run_in_transaction(db, schema_script(f"upgrade-to-v{step}.sql"),
                                   f"UPDATE version SET version = {step}")
            except sqlite3.Error as e:
                raise SchemaError(f"cannot upgrade the hub database {path} to schema {step} "
                                  f"({e}): it is left at schema {step - 1}, and as it was "
                                  f"before in {backup}")
    finally:
        db.close()


def _backup(db: sqlite3.Connection, path: Path, version: int) -> Path:
    """A consistent copy of the database (what its WAL holds included), mode 0600, beside
    it; an earlier copy is never overwritten."""
    backup, n = path.with_name(f"{path.name}.v{version}.bak"), 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.v{version}.{n}.bak")
    os.close(os.open(backup, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    copy = sqlite3.connect(str(backup))
    try:
        db.backup(copy)
    finally:
        copy.close()
    return backup


class Transaction:
    """``with``: BEGIN IMMEDIATE, then COMMIT (timed, for the metrics) or ROLLBACK.

    Inside another transaction it is a savepoint instead: undone alone when what it
    wraps fails, committed with the outer one.  A group commit (``store_thread.run_jobs``)
    runs many jobs, each with transactions of its own, under one COMMIT."""

    def __init__(self, db, observe_commit):
        self.db = db
        self.observe_commit = observe_commit
        self.nested = False

    def __enter__(self):
        self.nested = self.db.in_transaction
        self.db.execute("SAVEPOINT inner" if self.nested else "BEGIN IMMEDIATE")
        return self

    def __exit__(self, kind, value, tb):
        try:
            if self.nested:
                if kind is not None:
                    self.db.execute("ROLLBACK TO inner")
                self.db.execute("RELEASE inner")
            elif kind is None:
                started = time.perf_counter()
                self.db.execute("COMMIT")  # the fsync: what the metric times
                self.observe_commit(time.perf_counter() - started)
            else:
                self.db.execute("ROLLBACK")
        except sqlite3.Error as e:
            if kind is None:
                raise StoreError(f"database commit failed: {e}")
        return False
