"""The hub database's schema files and upgrades, on a real version-1 database kept in tests/data.

``tests/data/hub-v1.sqlite`` was written once by ``tests/data/make_hub_v1.py`` the way a
version-1 hub wrote its database; these tests upgrade copies of it.
"""

import os
import re
import shutil
import sqlite3
from importlib import resources
from pathlib import Path

from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import UserError
from blockhub.hub import db_schemas
from blockhub.hub.db_schemas import SCHEMA_VERSION, schema_script
from blockhub.hub.store import Store, StoreError

KEPT_V1 = Path(__file__).parent / "data" / "hub-v1.sqlite"
V1_TABLES = ("version", "approved_keys", "approved_ranges", "blocked_keys", "seen_nonces",
             "requests", "peers", "outbox", "inbox", "archive", "sqlite_sequence")
ALPHA = "bh43c6spz7nibrryb3w6ftaxbfjyd3ovky3apfq6chylrd6o4cx7qbcg7kbu"
BETA = "bhlqnzkvirtybqel2t3yhjtu25iawjncs4qn7tkierubdldnqo23kmcw7dtq"


def rows(path: Path, table: str, columns: str = "*") -> list[tuple]:
    db = sqlite3.connect(str(path))
    try:
        return sorted(db.execute(f"SELECT {columns} FROM {table}"), key=repr)
    finally:
        db.close()


def v1_rows(path: Path) -> dict[str, list[tuple]]:
    """Every row of every version-1 table, in the columns version 1 had."""
    v1 = sqlite3.connect(":memory:")
    v1.executescript(schema_script("v1.sql"))
    columns = {t: ", ".join(r[1] for r in v1.execute(f"PRAGMA table_info('{t}')"))
               for t in V1_TABLES if t != "sqlite_sequence"}
    columns["sqlite_sequence"] = "name, seq"
    v1.close()
    return {t: rows(path, t, columns[t]) for t in V1_TABLES if t != "version"}


def version_of(path: Path) -> int:
    [(v,)] = rows(path, "version")
    return v


def names(path: Path) -> set[str]:
    return {name for (name,) in rows(path, "sqlite_master", "name")}


def pragma(db: sqlite3.Connection, name: str, argument: str) -> list[tuple]:
    return [tuple(r) for r in db.execute(f"PRAGMA {name}('{argument}')")]


def shape(db: sqlite3.Connection) -> dict:
    """What a schema is, whatever the text it was written in: each table's columns (type,
    NOT NULL, default, key), its indexes and foreign keys and kind; each index's columns
    and uniqueness.  ALTER TABLE leaves other text in ``sqlite_master`` than a CREATE
    with the same column, so the text itself is compared only for indexes, views and
    triggers (whitespace and comments aside)."""
    out = {}
    for kind, name, table, sql in db.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name"):
        if kind == "table":
            out[name] = (
                kind,
                pragma(db, "table_xinfo", name),
                sorted(r[1:] for r in pragma(db, "index_list", name)),
                pragma(db, "foreign_key_list", name),
                pragma(db, "table_list", name))
        else:
            text = " ".join(re.sub(r"--[^\n]*", "", sql or "").split())
            out[name] = (kind, table, text, pragma(db, "index_xinfo", name))
    return out


def shape_of(path: Path) -> dict:
    db = sqlite3.connect(str(path))
    try:
        return shape(db)
    finally:
        db.close()


def full_schema(version: int) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.executescript(schema_script(f"v{version}.sql"))
    return db


class KeptVersion1Tests(SynchronousTestCase):
    """A copy of the kept version-1 file, upgraded as a hub upgrades it at start."""

    def setUp(self):
        self.dir = Path(self.mktemp())
        self.dir.mkdir()
        self.path = self.dir / "hub.sqlite"
        shutil.copyfile(KEPT_V1, self.path)
        self.before = v1_rows(self.path)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def open(self) -> Store:
        store = Store(self.path)
        self.addCleanup(store.close)
        return store

    def test_kept_file_is_version_1_with_rows_in_every_table(self):
        self.assertEqual(version_of(self.path), 1)
        self.assertEqual([t for t, r in self.before.items() if not r], [])
        self.assertNotIn("outbox_unacked", names(self.path))
        self.assertNotIn("gateway_issued", names(self.path))

    def test_upgrade_keeps_every_row_and_adds_what_later_versions_have(self):
        store = self.open()
        self.assertEqual(version_of(self.path), SCHEMA_VERSION)
        self.assertEqual(v1_rows(self.path), self.before)
        self.assertIn("outbox_unacked", names(self.path))
        self.assertEqual(shape(store.db), shape(full_schema(SCHEMA_VERSION)))
        # the data methods read the old rows and write the new columns and tables
        self.assertEqual(store.approved_keys(), {ALPHA})
        self.assertEqual([m["text"] for m in store.unacked(BETA)], ["second, not yet"])
        self.assertEqual([r["how"] for r in store.requests()], [None, None])
        store.set_request_state("in", ALPHA, "awaiting", 2, how="operator")
        self.assertEqual(store.requests("in")[0]["how"], "operator")
        store.set_gateway_issued(BETA, 7)
        self.assertEqual(store.gateway_issued(), {BETA: 7})
        self.assertEqual(store.queue_messages([(BETA, "third")], 3), [3])

    def test_a_copy_is_kept_before_the_upgrade_and_a_log_line_says_where(self):
        self.open().close()
        backup = self.dir / "hub.sqlite.v1.bak"
        self.assertEqual(backup.stat().st_mode & 0o777, 0o600)
        self.assertEqual(version_of(backup), 1)
        self.assertEqual(v1_rows(backup), self.before)
        [line] = [formatEvent(e) for e in self.events if e.get("backup")]
        self.assertIn(str(backup), line)
        self.assertIn(f"from schema 1 to {SCHEMA_VERSION}", line)
        self.open()  # already at the newest: no other copy
        self.assertEqual(sorted(p.name for p in self.dir.glob("*.bak")), ["hub.sqlite.v1.bak"])

    def test_an_earlier_copy_is_never_overwritten(self):
        (self.dir / "hub.sqlite.v1.bak").write_bytes(b"an earlier copy")
        self.open()
        self.assertEqual((self.dir / "hub.sqlite.v1.bak").read_bytes(), b"an earlier copy")
        self.assertEqual(v1_rows(self.dir / "hub.sqlite.v1.2.bak"), self.before)

    def test_the_copy_holds_what_only_the_wal_held(self):
        """A hub killed with writes still in its -wal: the copy has them."""
        crashed = self.dir / "crashed"
        crashed.mkdir()
        db = sqlite3.connect(str(self.path), isolation_level=None)
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("INSERT INTO approved_keys VALUES ('only-in-the-wal', 9)")
        self.assertGreater(os.path.getsize(f"{self.path}-wal"), 0)
        for name in ("hub.sqlite", "hub.sqlite-wal"):
            shutil.copyfile(self.dir / name, crashed / name)
        db.close()
        Store(crashed / "hub.sqlite").close()
        self.assertIn(("only-in-the-wal", 9), rows(crashed / "hub.sqlite.v1.bak",
                                                   "approved_keys"))

    def test_refused_while_another_process_has_it_open(self):
        self.patch(db_schemas, "LOCK_WAIT", 0)
        other = sqlite3.connect(str(self.path))
        other.execute("SELECT * FROM version").fetchall()
        e = self.assertRaises(StoreError, Store, self.path)
        self.assertIn("another process has it open", str(e))
        self.assertNotIn("\n", str(e))
        other.close()
        self.assertEqual((version_of(self.path), list(self.dir.glob("*.bak"))), (1, []))
        self.open()
        self.assertEqual(version_of(self.path), SCHEMA_VERSION)

    def test_newer_than_the_code_is_refused_in_one_line(self):
        db = sqlite3.connect(str(self.path))
        db.execute("UPDATE version SET version = ?", (SCHEMA_VERSION + 1,))
        db.commit()
        db.close()
        e = self.assertRaises(UserError, Store, self.path)
        self.assertEqual(str(e), f"{self.path} was written by a newer blockhub "
                                 f"(schema {SCHEMA_VERSION + 1})")
        self.assertEqual(list(self.dir.glob("*.bak")), [])

    def failing(self, bad_step: int):
        """Make the upgrade to ``bad_step`` do its real work and then fail."""
        def script(name):
            text = schema_script(name)
            if name == f"upgrade-to-v{bad_step}.sql":
                text += "\nINSERT INTO no_such_table VALUES (1);"
            return text
        self.patch(db_schemas, "schema_script", script)

    def test_a_failed_step_leaves_the_version_before(self):
        self.failing(3)
        e = self.assertRaises(StoreError, Store, self.path)
        self.assertNotIn("\n", str(e))
        self.assertIn("left at schema 2", str(e))
        self.assertIn("hub.sqlite.v1.bak", str(e))
        self.assertEqual(version_of(self.path), 2)
        self.assertEqual(shape_of(self.path), shape(full_schema(2)))
        self.assertEqual(v1_rows(self.path), self.before)
        self.unpatch_and_reopen(backup="hub.sqlite.v2.bak")

    def test_a_failed_first_step_leaves_version_1(self):
        self.failing(2)
        e = self.assertRaises(StoreError, Store, self.path)
        self.assertIn("left at schema 1", str(e))
        self.assertEqual(version_of(self.path), 1)
        self.assertEqual(shape_of(self.path), shape(full_schema(1)))
        self.unpatch_and_reopen(backup="hub.sqlite.v1.2.bak")

    def unpatch_and_reopen(self, backup: str):
        self.patch(db_schemas, "schema_script", schema_script)
        self.open()
        self.assertEqual(version_of(self.path), SCHEMA_VERSION)
        self.assertEqual(v1_rows(self.path), self.before)
        self.assertTrue((self.dir / backup).exists())


class SchemaFileTests(SynchronousTestCase):
    """The files cannot drift: each full schema is what the upgrades before it make."""

    def test_upgrading_version_1_gives_each_full_schema(self):
        db = full_schema(1)
        for version in range(2, SCHEMA_VERSION + 1):
            db.executescript(schema_script(f"upgrade-to-v{version}.sql"))
            self.assertEqual(shape(db), shape(full_schema(version)), f"version {version}")

    def test_shape_tells_a_changed_column(self):
        changed = full_schema(SCHEMA_VERSION)
        changed.executescript("ALTER TABLE requests DROP COLUMN how;"
                              "ALTER TABLE requests ADD COLUMN how INTEGER;")
        self.assertNotEqual(shape(changed), shape(full_schema(SCHEMA_VERSION)))

    def test_a_new_database_is_the_newest_full_schema(self):
        path = Path(self.mktemp())
        store = Store(path)
        self.addCleanup(store.close)
        self.assertEqual(path.stat().st_mode & 0o777, 0o600)
        self.assertEqual(version_of(path), SCHEMA_VERSION)
        self.assertEqual(shape(store.db), shape(full_schema(SCHEMA_VERSION)))

    def test_every_version_has_its_files_in_the_package(self):
        folder = resources.files("blockhub.hub").joinpath("db-schemas")
        expected = {f"v{v}.sql" for v in range(1, SCHEMA_VERSION + 1)}
        expected |= {f"upgrade-to-v{v}.sql" for v in range(2, SCHEMA_VERSION + 1)}
        self.assertEqual({f.name for f in folder.iterdir()}, expected)

    def test_upgrade_steps_hold_no_transaction_of_their_own(self):
        """The code puts each step in one transaction with its version bump; a COMMIT
        inside a step would let a failure after it leave half a step done."""
        for version in range(2, SCHEMA_VERSION + 1):
            text = re.sub(r"--[^\n]*", "", schema_script(f"upgrade-to-v{version}.sql"))
            self.assertIsNone(
                re.search(r"\b(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", text, re.I),
                f"upgrade-to-v{version}.sql")


class InMemoryTests(SynchronousTestCase):
    """``Store(None)``: the in-memory test world's database, at the newest schema."""

    def test_newest_schema_and_nothing_on_disk(self):
        before = set(os.listdir("."))
        store = Store(None)
        self.addCleanup(store.close)
        (version,) = store.execute("SELECT version FROM version").fetchone()
        self.assertEqual(version, SCHEMA_VERSION)
        self.assertEqual(store.queue_messages([("bhpeer", "kept")], 1), [1])
        self.assertEqual([m["text"] for m in store.unacked("bhpeer")], ["kept"])
        self.assertEqual(set(os.listdir(".")), before)
