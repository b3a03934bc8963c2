"""The hub's JSON config file (``Hub.Gateways``, see docs/design.md), and the
``--gateway`` option.

``{"Hub": {"Gateways": [{"name", "pubKey", "lastKnownIP", "port"}]}}``.  ``pubKey`` is
the gateway's id.  When the hub learns where a gateway is, it writes ``lastKnownIP``
back atomically, keeping everything else in the file as it was.
"""

import json
import os
from pathlib import Path

import attrs

from blockhub.errors import BadId, UserError
from blockhub.hubinfo import format_endpoint
from blockhub.ids import normalise_id
from blockhub.keystore import write_private

DEFAULT_PORT = 6610


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
        mode = os.stat(path).st_mode & 0o777
        write_private(path, (json.dumps(data, indent=2) + "\n").encode())
        os.chmod(path, mode)
    return changed
