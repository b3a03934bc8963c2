"""Where a hub keeps what it knows of its gateways' keys (``gateway_keys.py``): one
0600 JSON file in its data directory, written atomically and synced, so that a hub
that restarts still holds each commitment it saw and follows each succession."""

import json
from pathlib import Path

from twisted.logger import Logger

from blockhub.errors import ProtocolError
from blockhub.keystore import write_json
from blockhub.succession import check_succession, verify_commitment

KEYS_FILE = "gateway-keys.json"
log = Logger()


class GatewayKeysFile:
    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> tuple[dict, dict]:
        """(commitments by gateway, successions by old key), each checked again; a file
        that cannot be read, or holds one entry that does not check, is set aside with
        an error (the hub starts knowing none)."""
        if not self.path.exists():
            return {}, {}
        try:
            data = json.loads(self.path.read_text())
            commitments = {gid: verify_commitment(v)
                           for gid, v in data.get("commitments", {}).items()}
            followed = {old: check_succession(v)
                        for old, v in data.get("successions", {}).items()}
        except (OSError, ValueError, AttributeError, ProtocolError) as e:
            log.error("cannot read {path}: {error}; starting without it", path=str(self.path),
                      error=str(e))
            return {}, {}
        return ({g: c for g, c in commitments.items() if c.gateway == g},
                {o: s for o, s in followed.items() if s.old == o})

    def save(self, commitments: dict, followed: dict) -> None:
        document = {"commitments": {g: c.to_json() for g, c in commitments.items()},
                    "successions": {o: s.to_json() for o, s in followed.items()}}
        try:
            write_json(self.path, document, 1)
        except OSError as e:
            log.error("cannot write {path}: {error}", path=str(self.path), error=str(e))
