"""The hub's JSON config file (``Hub.Gateways``, see docs/design.md), and the
``--gateway`` option.

``{"Hub": {"Gateways": [{"name", "pubKey", "lastKnownIP", "port"}]}}``.  ``pubKey`` is
the gateway's id.  When the hub learns where a gateway is, it writes ``lastKnownIP``
back atomically, keeping everything else in the file as it was; a gateway an invite
brought is added the same way, marked ``"fromInvite": INVITE_ID``, and a gateway that
moved to its next key gets it as ``pubKey`` (the old one listed in ``formerKeys``).
"""

import json
import os
from pathlib import Path

import attrs
from twisted.logger import Logger

from blockhub.errors import BadId, UserError
from blockhub.hubinfo import format_endpoint
from blockhub.ids import normalise_id
from blockhub.keystore import write_json

DEFAULT_PORT = 6610
log = Logger()


@attrs.frozen
class GatewayEntry:
    id: str
    host: str | None
    port: int
    name: str = ""

    @property
    def address(self) -> str | None:
        if self.host is None:
            return None
        return format_endpoint(self.host, self.port)


def _check_id(text, where: str) -> str:
    try:
        return normalise_id(text)
    except BadId as e:
        raise UserError(f"{where}: {e}")


def _port(value, where: str) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = -1
    if not 0 < port < 65536:
        raise UserError(f"{where}: port must be a number from 1 to 65535, not {value!r}")
    return port


def parse_gateway_arg(text: str) -> GatewayEntry:
    """``ID@HOST:PORT`` (IPv6 host in brackets) from the command line."""
    gid, sep, address = text.partition("@")
    if not sep:
        raise UserError(f"--gateway wants ID@HOST:PORT, not {text!r}")
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
    else:
        host, sep, port = address.rpartition(":")
    if not sep or not host:
        raise UserError(f"--gateway wants ID@HOST:PORT, not {text!r}")
    return GatewayEntry(_check_id(gid, "--gateway"), host, _port(port, "--gateway"))


def load_config(path: Path) -> list[GatewayEntry]:
    """The gateways listed in a config file; a clear error for every mistake."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read config {path}: {e.strerror}")
    except ValueError as e:
        raise UserError(f"config {path} is not valid JSON: {e}")
    hub = data.get("Hub") if isinstance(data, dict) else None
    gateways = hub.get("Gateways", []) if isinstance(hub, dict) else None
    if not isinstance(gateways, list):
        raise UserError(f"config {path}: expected {{\"Hub\": {{\"Gateways\": [...]}}}}")
    entries = []
    for n, item in enumerate(gateways, 1):
        where = f"config {path}, gateway {n}"
        if not isinstance(item, dict) or "pubKey" not in item:
            raise UserError(f"{where}: each gateway needs a pubKey")
        host = item.get("lastKnownIP") or None
        if host is not None and not isinstance(host, str):
            raise UserError(f"{where}: lastKnownIP must be text")
        entries.append(GatewayEntry(_check_id(item["pubKey"], where), host,
                                    _port(item.get("port", DEFAULT_PORT), where),
                                    str(item.get("name", ""))))
    return entries


def _write_back(path: Path, data, mode: int) -> None:
    write_json(path, data, 2)
    os.chmod(path, mode)


def pin_from_invite(path: Path, entries, invite_id: str) -> None:
    """Add ``entries`` (GatewayEntry) to the config file, marked as from the invite;
    the file is made (0600) when there is none yet."""
    path = Path(path)
    data: dict = {"Hub": {"Gateways": []}}
    mode = 0o600
    if path.exists():
        data, mode = json.loads(path.read_text()), os.stat(path).st_mode & 0o777
    gateways = data.setdefault("Hub", {}).setdefault("Gateways", [])
    known = {str(item.get("pubKey", "")).strip().lower() for item in gateways}
    for entry in entries:
        if entry.id not in known:
            gateways.append({"name": entry.name or f"from invite {invite_id}",
                             "pubKey": entry.id, "lastKnownIP": entry.host,
                             "port": entry.port, "fromInvite": invite_id})
    _write_back(path, data, mode)


def record_last_known_ip(path: Path, gateway_id: str, host: str,
                         port: int | None = None) -> bool:
    """Write ``lastKnownIP`` (and ``port``, when given) for ``gateway_id`` into the file,
    atomically, keeping everything else as it was; True when it changed."""
    path = Path(path)
    data = json.loads(path.read_text())
    changed = False
    for item in data.get("Hub", {}).get("Gateways", []):
        if str(item.get("pubKey", "")).strip().lower() != gateway_id:
            continue
        if item.get("lastKnownIP") != host:
            item["lastKnownIP"] = host
            changed = True
        if port is not None and item.get("port", DEFAULT_PORT) != port:
            item["port"] = port
            changed = True
    if changed:
        _write_back(path, data, os.stat(path).st_mode & 0o777)
    return changed


def record_succession(path: Path, old_id: str, new_id: str) -> bool:
    """Pin ``new_id`` where the file pins ``old_id`` (listing the old one under
    ``formerKeys``), atomically, keeping everything else; True when it changed."""
    path = Path(path)
    data = json.loads(path.read_text())
    changed = False
    for item in data.get("Hub", {}).get("Gateways", []):
        if str(item.get("pubKey", "")).strip().lower() == old_id:
            item["pubKey"] = new_id
            item["formerKeys"] = list(item.get("formerKeys", [])) + [old_id]
            changed = True
    if changed:
        _write_back(path, data, os.stat(path).st_mode & 0o777)
    return changed


class ConfigFile:
    """The config file a running hub writes back to: ``--config``, else
    DATA_DIR/config.json (once it exists, for addresses: an invite makes it)."""

    def __init__(self, path: Path | None, data_dir: Path):
        self.path = Path(path) if path else None
        self.default = Path(data_dir) / "config.json"

    def remember(self, entry: GatewayEntry) -> None:
        """A gateway admitted us or moved: write its address back."""
        path = self.path or (self.default if self.default.exists() else None)
        if path is None or not entry.host:
            return
        try:
            if record_last_known_ip(path, entry.id, entry.host, entry.port):
                log.info("recorded lastKnownIP {ip} for gateway {gateway} in {path}",
                         ip=entry.host, gateway=entry.id, path=str(path))
        except (OSError, ValueError) as e:
            log.warn("could not update {path}: {error}", path=str(path), error=str(e))

    def succeed(self, old_id: str, new_id: str) -> None:
        """A gateway we pin moved to its next key: pin that one in the file."""
        path = self.path or (self.default if self.default.exists() else None)
        if path is None:
            return
        try:
            if record_succession(path, old_id, new_id):
                log.info("pinned {new} in place of {old} in {path}", new=new_id, old=old_id,
                         path=str(path))
        except (OSError, ValueError) as e:
            log.warn("could not update {path}: {error}; the new key is pinned in "
                     "gateway-keys.json", path=str(path), error=str(e))

    def pin(self, entries, invite_id: str) -> None:
        """An invite brought gateways: add them."""
        path = self.path or self.default
        try:
            pin_from_invite(path, entries, invite_id)
            log.info("pinned {n} gateway(s) from invite {invite} in {path}", n=len(entries),
                     invite=invite_id, path=str(path))
        except (OSError, ValueError) as e:
            log.warn("could not add the invite's gateways to {path}: {error}; they are "
                     "pinned for this run only", path=str(path), error=str(e))
