"""Sealed storage of the recovery phrase: the data-protection key ring and identity file.

The design keeps the phrase encrypted on disk under a key held apart from it
(docs/design.md).  Here the phrase is sealed with a NaCl SecretBox under a random key
kept in a per-user key ring directory, apart from the data directory, so a copy of
the data directory alone reveals nothing.  Hosts without a key ring can seal under a
passphrase instead (Argon2id).  Every file here is 0600 in a 0700 directory, and the
loaders refuse files that group or others can read or write.
"""

import json
import os
import secrets
import stat
from pathlib import Path

from nacl import pwhash, secret
from nacl.exceptions import CryptoError

from blockhub.errors import UserError
from blockhub.identity import Identity
from blockhub.wire.canonical import b64, unb64

IDENTITY_FILE = "identity.json"
KEYRING_ENV = "BLOCKHUB_KEYRING"
PASSPHRASE_ENV = "BLOCKHUB_PASSPHRASE"
FORMAT_VERSION = 1


class InsecurePermissions(UserError):
    """A key file or its directory is open to group or others."""


def default_keyring() -> Path:
    """The key ring directory: ``$BLOCKHUB_KEYRING``, else under the XDG data home."""
    if os.environ.get(KEYRING_ENV):
        return Path(os.environ[KEYRING_ENV]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "blockhub" / "keyring"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) as 0700 if missing; tighten an existing one we own."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, 0o700)
    return path


def check_private(path: Path) -> None:
    """Refuse a file or directory that group or others can read or write."""
    mode = stat.S_IMODE(Path(path).stat().st_mode)
    if mode & 0o066:
        fix = "700" if Path(path).is_dir() else "600"
        raise InsecurePermissions(
            f"{path} is readable or writable by group or others (mode {mode:04o}); "
            f"run: chmod {fix} {path}")


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, as a 0600 file, durably: the file and then
    its directory are synced, so that after a crash the rename is there too."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise


def write_json(path: Path, document, indent: int | None = None) -> None:
    """``document`` as a JSON file, one line ending it, as ``write_private`` writes."""
    write_private(path, (json.dumps(document, indent=indent) + "\n").encode())


def _passphrase_key(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return pwhash.argon2id.kdf(secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"),
                               salt, opslimit=ops, memlimit=mem)


def has_identity(data_dir: Path) -> bool:
    return (Path(data_dir) / IDENTITY_FILE).exists()


def create_identity(data_dir: Path, phrase: str, name: str = "",
                    keyring: Path | None = None, passphrase: str | None = None,
                    replace: bool = False) -> Identity:
    """Seal ``phrase`` into a new identity in ``data_dir``; never overwrite one, unless
    ``replace`` (a gateway moving to its next key: ``gateway/key_files.py``)."""
    identity = Identity.from_phrase(phrase)
    data_dir = ensure_private_dir(Path(data_dir))
    target = data_dir / IDENTITY_FILE
    if target.exists() and not replace:
        raise UserError(f"{data_dir} already holds an identity; refusing to overwrite it")
    record = {"version": FORMAT_VERSION, "id": identity.id, "name": name}
    if passphrase is not None:
        if not passphrase:
            raise UserError("the passphrase is empty")
        salt = secrets.token_bytes(pwhash.argon2id.SALTBYTES)
        ops, mem = pwhash.argon2id.OPSLIMIT_INTERACTIVE, pwhash.argon2id.MEMLIMIT_INTERACTIVE
        key = _passphrase_key(passphrase, salt, ops, mem)
        record["protection"] = {"kind": "passphrase", "salt": b64(salt),
                                "opslimit": ops, "memlimit": mem}
    else:
        ring = ensure_private_dir(keyring or default_keyring())
        entry = secrets.token_hex(16)
        key = secrets.token_bytes(secret.SecretBox.KEY_SIZE)
        write_private(ring / f"{entry}.key", key)
        record["protection"] = {"kind": "keyring", "entry": entry}
    record["sealed_phrase"] = b64(bytes(secret.SecretBox(key).encrypt(phrase.encode())))
    write_private(target, json.dumps(record, indent=2).encode() + b"\n")
    return identity


def read_record(data_dir: Path) -> dict:
    """The identity file's public fields (id, name, protection kind)."""
    path = Path(data_dir) / IDENTITY_FILE
    if not path.exists():
        raise UserError(f"no identity in {data_dir}; create one with: blockhub init "
                        f"--data-dir {data_dir}")
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"cannot read {path}: {e}")
    if not isinstance(record, dict) or record.get("version") != FORMAT_VERSION:
        raise UserError(f"{path} is not a blockhub identity file of a known version")
    return record


def load_phrase(data_dir: Path, keyring: Path | None = None,
                passphrase: str | None = None, strict: bool = True) -> str:
    """Unseal the recovery phrase.  ``strict`` refuses loose file permissions."""
    data_dir = Path(data_dir)
    record = read_record(data_dir)
    if strict:
        check_private(data_dir)
        check_private(data_dir / IDENTITY_FILE)
    protection = record.get("protection") or {}
    try:
        if protection.get("kind") == "passphrase":
            if passphrase is None:
                passphrase = os.environ.get(PASSPHRASE_ENV)
            if not passphrase:
                raise UserError(f"the identity in {data_dir} is sealed with a passphrase; "
                                f"set {PASSPHRASE_ENV}")
            key = _passphrase_key(passphrase, unb64(protection["salt"]),
                                  int(protection["opslimit"]), int(protection["memlimit"]))
        elif protection.get("kind") == "keyring":
            ring = Path(keyring or default_keyring())
            key_path = ring / f"{protection['entry']}.key"
            if not key_path.exists():
                raise UserError(f"the data-protection key for {data_dir} is missing from the "
                                f"key ring {ring} (set {KEYRING_ENV}?)")
            if strict:
                check_private(ring)
                check_private(key_path)
            key = key_path.read_bytes()
        else:
            raise UserError(f"unknown protection in {data_dir / IDENTITY_FILE}")
        phrase = secret.SecretBox(key).decrypt(unb64(record["sealed_phrase"])).decode()
    except CryptoError:
        raise UserError(f"cannot unseal the identity in {data_dir}: wrong passphrase or key")
    except (KeyError, ValueError, TypeError) as e:
        raise UserError(f"damaged identity file in {data_dir}: {e}")
    return phrase


def load_identity(data_dir: Path, keyring: Path | None = None,
                  passphrase: str | None = None, strict: bool = True) -> Identity:
    """Unseal and derive the identity; check that it matches the recorded id."""
    identity = Identity.from_phrase(load_phrase(data_dir, keyring, passphrase, strict))
    if identity.id != read_record(data_dir)["id"]:
        raise UserError(f"identity file in {data_dir} does not match its sealed phrase")
    return identity


def load_network_key(path: Path) -> bytes:
    """The shared network key in ``path`` (64 hex characters, 0600), or ``UserError``."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"network key file {path} does not exist "
                        f"(make one with: blockhub network-key --out {path})")
    check_private(path)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise UserError(f"{path} is not a network key (64 hex characters expected)")
    return key
