"""Who may join a gateway: the mode, the allow list and the network key.

Pure decisions; the protocol asks and acts on the answer.  Open mode shares hub
endpoints, so it is refused at start unless admission is restricted (the
denial-of-service case of docs/design.md).
"""

from pathlib import Path

import attrs

from blockhub import netkey
from blockhub.errors import BadId, UserError
from blockhub.ids import decode_id

MODES = ("private", "open")


def load_allow_keys(path: Path) -> frozenset[str]:
    """Read hub ids, one per line; blank lines and ``#`` comments ignored."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise UserError(f"cannot read allow list {path}: {e.strerror}")
    ids = set()
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            decode_id(text)
        except BadId as e:
            raise UserError(f"{path}:{number}: {e}")
        ids.add(text.lower())
    return frozenset(ids)


@attrs.frozen
class Admission:
    mode: str = "private"
    allow_keys: frozenset[str] | None = None
    network_key: bytes | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self):
        if self.mode not in MODES:
            raise UserError(f"--mode must be one of: {', '.join(MODES)}")
        if self.mode == "open" and self.allow_keys is None and self.network_key is None:
            raise UserError("--mode open shares every hub's address, so it needs "
                            "--allow-keys or --network-key to restrict who may join")

    @property
    def restricted(self) -> bool:
        return self.allow_keys is not None or self.network_key is not None

    def refuse_key(self, hub_id: str) -> str | None:
        """A reason to refuse ``hub_id`` before it says anything, or None."""
        if self.allow_keys is not None and hub_id not in self.allow_keys:
            return "this hub is not on the gateway's allow list"
        return None

    def refuse_proof(self, challenge: bytes, gateway_key: bytes, hub_key: bytes,
                     proof: bytes | None) -> str | None:
        """A reason to refuse a join whose network-key proof is missing or wrong."""
        if self.network_key is None:
            return None
        if not netkey.check_proof(self.network_key, challenge, gateway_key, hub_key, proof):
            return "missing or wrong network key proof"
        return None
