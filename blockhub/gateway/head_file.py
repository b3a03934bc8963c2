"""Where a gateway keeps its chain of heads: the last head it signed, in one 0600 file
written atomically and synced before the head is sent (``HeadChain``)."""

import json
from pathlib import Path

from blockhub.errors import ProtocolError, UserError
from blockhub.heads import Head, verify_head
from blockhub.keystore import write_json

HEADS_FILE = "heads.json"


class HeadFile:
    def __init__(self, path: Path, succeeded=()):
        self.path = Path(path)
        self.succeeded = set(succeeded)  # keys we rotated away from: their chains ended

    def load(self, gateway_id: str) -> Head | None:
        """The last head this gateway signed (None: there is none yet).  A file that
        cannot be read, or holds another key's head, stops the gateway in one line: a
        new chain would fork the old one."""
        if not self.path.exists():
            return None
        try:
            head = verify_head(json.loads(self.path.read_text())["latest"])
        except (OSError, ValueError, KeyError, TypeError, ProtocolError) as e:
            raise UserError(f"cannot read the head chain in {self.path}: {e}; it must be "
                            "repaired or moved away by hand (a new chain would fork the "
                            "old one)")
        if head.gateway in self.succeeded:
            return None  # our new key starts its own chain
        if head.gateway != gateway_id:
            raise UserError(f"{self.path} holds the heads of gateway {head.gateway}, "
                            "not ours")
        return head

    def save(self, head: Head) -> None:
        """Durably, or ``OSError``."""
        write_json(self.path, {"latest": head.to_json()})
