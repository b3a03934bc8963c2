"""The hubs a gateway's operator banned (``blockhub kick HUBID --ban SECONDS``), kept
across restarts and, in a cluster, shared by every node.

Each hub has one record, ``(until, set)`` in Unix milliseconds: banned while ``until``
is ahead; an unban is a record with ``until`` 0.  Of two records for a hub the one set
later wins, so nodes that hear of bans and unbans in any order, or again, end with the
same table; a record is forgotten once it no longer bans (its ``until`` has passed)
and its unban is old enough that no node can still hold the ban it undid.  The table
is written to ``bans.json`` in the data directory (0600, atomically) at each change.
"""

import json
from pathlib import Path

from twisted.logger import Logger

from blockhub.errors import BadId, UserError
from blockhub.ids import decode_id
from blockhub.keystore import write_private

log = Logger()

MOST = 256                 # records kept: a heartbeat carries them all
KEEP_UNBAN_MS = 86_400_000  # an unban is kept a day, to outlive the ban it undid


class Bans:
    def __init__(self, path: Path | None, clock, changed=lambda hub, until, set_ms: None):
        self.path = Path(path) if path is not None else None
        self.clock = clock
        self.changed = changed  # told of each record we set here (for the cluster)
        self.records: dict[str, tuple[int, int]] = {}
        if self.path is not None and self.path.exists():
            self._load()

    def _now(self) -> int:
        return int(self.clock.seconds() * 1000)

    def _load(self) -> None:
        assert self.path is not None
        try:
            table = json.loads(self.path.read_text())
            for hub, (until, set_ms) in table.items():
                decode_id(hub)
                self.records[hub] = (int(until), int(set_ms))
        except (OSError, ValueError, TypeError, BadId) as e:
            raise UserError(f"cannot read the bans in {self.path}: {e}")

    def _save(self) -> None:
        self._prune()
        if self.path is not None:
            table = {hub: list(record) for hub, record in sorted(self.records.items())}
            write_private(self.path, json.dumps(table, indent=1).encode())

    def _prune(self) -> None:
        now = self._now()
        for hub, (until, set_ms) in list(self.records.items()):
            if until <= now and set_ms + KEEP_UNBAN_MS <= now and until + KEEP_UNBAN_MS <= now:
                del self.records[hub]

    # -- what the operator does -----------------------------------------------------
    def ban(self, hub: str, seconds: float) -> int:
        """Ban ``hub`` for ``seconds``; -> until (Unix ms)."""
        now = self._now()
        if hub not in self.records and len(self.records) >= MOST:
            self._prune()
            if len(self.records) >= MOST:
                raise UserError(f"at most {MOST} bans are kept; unban some first")
        until = now + int(seconds * 1000)
        self._set(hub, until, now)
        return until

    def unban(self, hub: str) -> bool:
        """-> whether ``hub`` was banned."""
        was = self.until(hub) is not None
        self._set(hub, 0, self._now())
        return was

    def _set(self, hub: str, until: int, set_ms: int) -> None:
        previous = self.records.get(hub)
        if previous is not None and previous[1] >= set_ms:
            set_ms = previous[1] + 1  # ours is the newer, even if the clock is behind
        self.records[hub] = (until, set_ms)
        self._save()
        self.changed(hub, until, set_ms)

    # -- what other nodes tell us ---------------------------------------------------
    def merge(self, hub: str, until: int, set_ms: int) -> bool:
        """Take another node's record if it is newer; -> whether it is and bans."""
        previous = self.records.get(hub)
        if previous is not None and previous[1] >= set_ms:
            return False
        if previous is None and len(self.records) >= MOST:
            self._prune()
            if len(self.records) >= MOST:
                log.warn("a ban from the cluster is dropped: {most} are kept", most=MOST)
                return False
        self.records[hub] = (until, set_ms)
        self._save()
        return until > self._now()

    def table(self) -> dict[str, list[int]]:
        """Every record, for our heartbeat."""
        return {hub: list(record) for hub, record in self.records.items()}

    # -- questions --------------------------------------------------------------------
    def until(self, hub: str) -> float | None:
        """When ``hub``'s ban ends (Unix seconds), if it is banned now."""
        record = self.records.get(hub)
        if record is None or record[0] <= self._now():
            return None
        return record[0] / 1000

    def active(self) -> list[dict]:
        now = self._now()
        return [{"id": hub, "until": until // 1000}
                for hub, (until, _set) in sorted(self.records.items()) if until > now]
