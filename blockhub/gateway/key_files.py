"""The gateway's keys on disk (docs/accountability.md, "Key succession").

``DATA_DIR/next-key.json`` holds the signed commitment to the next key
(``blockhub commit-next``); ``DATA_DIR/succession.json`` the succession of the last
rotation (``blockhub rotate-key``), whose old identity file is kept, sealed as it
was, in ``DATA_DIR/retired/OLD_ID/`` to be served during the grace.  A rotation writes
the retired copy, then the succession, then the new identity, each atomically, so
that running it again after a crash finishes it.
"""

import json
from pathlib import Path

from blockhub import keystore
from blockhub.errors import ProtocolError, UserError
from blockhub.gateway.keys import GatewayKeys
from blockhub.identity import Identity
from blockhub.succession import (
    Commitment,
    Succession,
    check_succession,
    make_commitment,
    make_succession,
    verify_commitment,
)

NEXT_FILE = "next-key.json"
SUCCESSION_FILE = "succession.json"
RETIRED_DIR = "retired"


def retired_dir(data_dir: Path, old_id: str) -> Path:
    return Path(data_dir) / RETIRED_DIR / old_id


def _read(path: Path, field: str, check):
    try:
        return check(json.loads(path.read_text())[field])
    except (OSError, ValueError, KeyError, TypeError, ProtocolError) as e:
        raise UserError(f"cannot read {path}: {e}")


def read_commitment(data_dir: Path, gateway_id: str) -> Commitment | None:
    """Our standing commitment; None when there is none, or it is an older key's."""
    path = Path(data_dir) / NEXT_FILE
    if not path.exists():
        return None
    commitment = _read(path, "commitment", verify_commitment)
    return commitment if commitment.gateway == gateway_id else None


def read_succession(data_dir: Path) -> Succession | None:
    path = Path(data_dir) / SUCCESSION_FILE
    return _read(path, "succession", check_succession) if path.exists() else None


def load_keys(data_dir: Path, grace: float, now: float) -> GatewayKeys:
    """The gateway's keys as its data directory holds them; ``UserError`` in one line
    when they do not fit together (a rotation left half done)."""
    data_dir = Path(data_dir)
    identity = keystore.load_identity(data_dir)
    succession = read_succession(data_dir)
    if succession is None:
        return GatewayKeys(identity, read_commitment(data_dir, identity.id))
    if succession.new != identity.id:
        if succession.old == identity.id:
            raise UserError(f"the rotation of {data_dir} to {succession.new} was not "
                            "finished; run blockhub rotate-key again")
        raise UserError(f"{data_dir / SUCCESSION_FILE} moves {succession.old} to "
                        f"{succession.new}, not to this gateway's key {identity.id}")
    until = succession.at + grace
    old = keystore.load_identity(retired_dir(data_dir, succession.old)) \
        if now < until else None
    return GatewayKeys(identity, read_commitment(data_dir, identity.id), succession, old,
                       until)


def commit_next(data_dir: Path, identity: Identity, next_id: str, now: int,
                replace: bool = False) -> Commitment:
    """Write our commitment to ``next_id``; a standing one to another key is replaced
    only when asked, since hubs that saw it will follow no other."""
    standing = read_commitment(data_dir, identity.id)
    if standing is not None and not standing.names(next_id) and not replace:
        raise UserError("this gateway already committed to another next key; hubs that "
                        "saw it will refuse a succession to any other (give --replace "
                        "to commit anew all the same)")
    try:
        commitment = make_commitment(identity, next_id, now)
    except ValueError as e:
        raise UserError(str(e))
    keystore.write_json(Path(data_dir) / NEXT_FILE, {"commitment": commitment.to_json()}, 1)
    return commitment


def rotate(data_dir: Path, old: Identity, new: Identity, phrase: str, now: int,
           passphrase: str | None) -> Succession:
    """Move the gateway in ``data_dir`` from ``old`` to ``new`` (its phrase sealed as
    ``old``'s was: under ``passphrase``, or a new key ring entry), which ``old`` must
    have committed to; ``UserError`` saying why not."""
    data_dir = Path(data_dir)
    commitment = read_commitment(data_dir, old.id)
    if commitment is None:
        raise UserError(f"gateway {old.id} has no commitment to a next key; run "
                        "blockhub commit-next first, and rotate once its hubs have seen it")
    if not commitment.names(new.id):
        raise UserError(f"gateway {old.id} committed to another next key than {new.id}")
    succession = make_succession(old, new, now)
    retired = keystore.ensure_private_dir(retired_dir(data_dir, old.id))
    keystore.write_private(retired / keystore.IDENTITY_FILE,
                           (data_dir / keystore.IDENTITY_FILE).read_bytes())
    keystore.write_json(data_dir / SUCCESSION_FILE, {"succession": succession.to_json()}, 1)
    name = keystore.read_record(data_dir).get("name", "")
    keystore.create_identity(data_dir, phrase, name, passphrase=passphrase, replace=True)
    (data_dir / NEXT_FILE).unlink(missing_ok=True)
    return succession
