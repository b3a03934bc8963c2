"""Make ``hub-v1.sqlite``: a hub database at schema version 1, with rows in every table.

It was made once and is kept in the repository, so the upgrade test opens a file written
the way a version-1 hub wrote it (WAL, full sync, the v1 schema file), not one made by
today's code.  Run it again only to remake that file: ``python tests/data/make_hub_v1.py``.
"""

import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "..", "..", "blockhub", "hub", "db-schemas", "v1.sql")
T = 1_800_000_000
ALPHA = "bh43c6spz7nibrryb3w6ftaxbfjyd3ovky3apfq6chylrd6o4cx7qbcg7kbu"
BETA = "bhlqnzkvirtybqel2t3yhjtu25iawjncs4qn7tkierubdldnqo23kmcw7dtq"
GAMMA = "bhoznvq5qua7wqpisfuulavbjx6yggicc7wdvuv6qxjh3k6jvqumxdb6yrmm"
GATEWAY = "bhcagajylzfzb27wbfq4eih35wwxqndzmjy2zh6acxgqh26wnoch7qfittwm"

ROWS = {
    "version": [(1,)],
    "approved_keys": [(ALPHA, T)],
    "approved_ranges": [("10.0.0.0/8", T + 1)],
    "blocked_keys": [(GAMMA, T + 2)],
    "seen_nonces": [("AAECAwQFBgcICQoLDA0ODw==", T + 3)],
    "requests": [
        ("out", BETA, "connected", "hello beta", "127.0.0.1:7001", None, None, T + 4, T + 9,
         T + 304),
        ("in", ALPHA, "pending", "from alpha", None, "127.0.0.1", "EBESExQVFhcYGRobHB0eHw==",
         T + 5, T + 5, T + 305),
    ],
    "peers": [(BETA, "127.0.0.1:7001", 1, T + 9)],
    "outbox": [(BETA, 1, "first, acknowledged", T + 10, 1),
               (BETA, 2, "second, not yet", T + 11, 0)],
    "inbox": [(1, BETA, 1, "hi from beta", T + 12, T + 13)],
    "archive": [(1, T + 14, GATEWAY, "joined", BETA, '{"id":"%s","name":"beta"}' % BETA)],
}


def make(path: str):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    with open(SCHEMA) as f:
        db.executescript(f.read())
    for table, rows in ROWS.items():
        marks = ",".join("?" * len(rows[0]))
        db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    db.close()  # the last connection: checkpointed, the -wal removed


if __name__ == "__main__":
    make(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "hub-v1.sqlite"))
