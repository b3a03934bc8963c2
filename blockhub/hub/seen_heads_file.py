"""Where a hub keeps the heads it has seen and the alarms it raised (``HeadWatch``):
one 0600 JSON file in its data directory, written atomically and synced at the end of
each turn that saw a new head, so a fork that spans a restart of the hub is still
caught, and ``status`` still lists the alarms of before."""

import json
from pathlib import Path

from twisted.logger import Logger

from blockhub.errors import ProtocolError
from blockhub.heads import Head, verify_head
from blockhub.keystore import write_json

SEEN_HEADS_FILE = "heads-seen.json"
log = Logger()


class SeenHeadsFile:
    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> tuple[dict[str, dict[int, Head]], list[dict]]:
        """(heads by gateway and seq, alarms); a head that does not verify is dropped,
        a file that cannot be read is set aside with an error (nothing stops the hub)."""
        if not self.path.exists():
            return {}, []
        try:
            data = json.loads(self.path.read_text())
            heads: dict[str, dict[int, Head]] = {}
            for value in data.get("heads", []):
                try:
                    head = verify_head(value)
                except ProtocolError:
                    continue
                heads.setdefault(head.gateway, {})[head.seq] = head
            alarms = [a for a in data.get("alarms", []) if isinstance(a, dict)]
        except (OSError, ValueError, AttributeError, TypeError) as e:
            log.error("cannot read {path}: {error}; starting without the heads seen before",
                      path=str(self.path), error=str(e))
            return {}, []
        return heads, alarms

    def save(self, heads: dict[str, dict[int, Head]], alarms: list[dict]) -> None:
        document = {"heads": [h.to_json() for seqs in heads.values() for h in seqs.values()],
                    "alarms": alarms}
        try:
            write_json(self.path, document)
        except OSError as e:
            log.error("cannot write {path}: {error}", path=str(self.path), error=str(e))
