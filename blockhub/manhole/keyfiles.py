"""The manhole's key files: the OpenSSH ``authorized_keys`` file of the keys allowed in,
the persistent host key, and key fingerprints as ``ssh`` shows them.

Parsing is strict where a mistake could let more in than the file's owner wrote: a line
with options (``from=``, ``command=``, ``restrict``...) is skipped with a reason, since
the manhole cannot enforce them; a key type Twisted cannot use is skipped the same way;
a line that is not a public key at all is an error naming the line, never its content.
The host key is an Ed25519 key kept 0600 in the data directory, so clients see the same
host key after a restart.  Nothing here logs key material, only fingerprints.
"""

import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch.ssh import keys
from twisted.logger import Logger

from blockhub import keystore
from blockhub.errors import UserError

HOST_KEY_FILE = "manhole_host_key"
# The first field of an authorized_keys line, when the line has no options.
_KEY_TYPE = re.compile(rb"^(ssh-|ecdsa-sha2-|sk-)[A-Za-z0-9@.+-]+$")
# The namespace the manhole has always logged under, whichever of its modules logs.
log = Logger(namespace="blockhub.manhole")


def ssh_fingerprint(key: keys.Key) -> str:
    """The fingerprint ``ssh`` and ``ssh-keygen -l`` show: ``SHA256:`` + unpadded base64."""
    return "SHA256:" + key.fingerprint(keys.FingerprintFormats.SHA256_BASE64).rstrip("=")


# --- the authorized keys file ---------------------------------------------------------


def parse_authorized_keys(data: bytes, where: str) -> tuple[list[keys.Key], list[str]]:
    """Read OpenSSH ``authorized_keys`` text: ``(usable keys, reasons lines were skipped)``.

    Blank lines and ``#`` comments are ignored.  Raises ``UserError`` for a line that is
    not a public key at all; the message names the line, never its content.
    """
    found, skipped = [], []
    for number, raw in enumerate(data.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        fields = line.split()
        if not _KEY_TYPE.match(fields[0]):
            if any(_KEY_TYPE.match(field) for field in fields[1:]):
                skipped.append(f"line {number}: key options (from=, command=, restrict...) "
                               f"cannot be enforced by the manhole")
                continue
            hint = (" (it looks like a private key; give the public half or an "
                    "authorized_keys file)" if line.startswith(b"-----BEGIN") else "")
            raise UserError(f"{where}, line {number}: not an OpenSSH public key{hint}")
        kind = fields[0].decode("ascii")
        try:
            key = keys.Key.fromString(line, type="public_openssh")
        except Exception:  # BadKeyError, or a decoding error from a damaged line
            skipped.append(f"line {number}: cannot use this {kind} key")
            continue
        if not key.isPublic():
            raise UserError(f"{where}, line {number}: not an OpenSSH public key")
        if key.sshType() != fields[0]:  # OpenSSH refuses such a line too
            skipped.append(f"line {number}: the key is not of the type the line names")
            continue
        found.append(key)
    return found, skipped


def read_authorized_keys(path) -> tuple[list[keys.Key], list[str]]:
    """Parse the file at ``path``; ``UserError`` if it is missing, unreadable or bad."""
    path = Path(path).expanduser()
    where = f"manhole keys file {path}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{where} does not exist")
    except OSError as e:
        raise UserError(f"cannot read {where}: {e.strerror or e}")
    found, skipped = parse_authorized_keys(data, where)
    if not found:
        why = f" ({'; '.join(skipped)})" if skipped else ""
        raise UserError(f"{where} holds no usable public key{why}")
    return found, skipped


# --- the host key -----------------------------------------------------------------------


def load_or_create_host_key(data_dir) -> keys.Key:
    """The manhole's SSH host key from ``DATA_DIR/manhole_host_key``, made (0600) if absent."""
    path = Path(data_dir) / HOST_KEY_FILE
    if path.exists():
        keystore.check_private(path)
        try:
            key = keys.Key.fromString(path.read_bytes())
        except OSError as e:
            raise UserError(f"cannot read the manhole host key {path}: {e.strerror or e}")
        except Exception:
            raise UserError(f"{path} is not a private key the manhole can read; "
                            f"move it aside and a new host key will be made")
        if key.isPublic():
            raise UserError(f"{path} holds a public key; the manhole needs its private key")
        log.info("manhole host key {kind} {fingerprint}", kind=key.sshType().decode(),
                 fingerprint=ssh_fingerprint(key))
        return key
    key = keys.Key(ed25519.Ed25519PrivateKey.generate())
    try:
        keystore.write_private(path, key.toString("openssh"))
    except OSError as e:
        raise UserError(f"cannot write the manhole host key {path}: {e.strerror or e}")
    log.info("manhole host key {kind} {fingerprint} (new, in {path})",
             kind=key.sshType().decode(), fingerprint=ssh_fingerprint(key), path=str(path))
    return key
