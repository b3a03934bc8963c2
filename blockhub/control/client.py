"""The CLI's end of the control socket: one blocking AMP call, no reactor needed.

The box is built and its answer decoded by the ``Call`` command itself; only the
framing (2-byte lengths, keys and values, an empty key to end the box) is done here.
"""

import json
import socket
import struct
from pathlib import Path

from blockhub.control.commands import Call
from blockhub.control.server import socket_path
from blockhub.errors import UserError


class NoDaemon(UserError):
    """Nothing answers on the data directory's control socket: the daemon is stopped."""


def _read_exact(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise UserError("the daemon closed the control connection")
        data += chunk
    return data


def _read_box(sock) -> dict[bytes, bytes]:
    box: dict[bytes, bytes] = {}
    while True:
        (klen,) = struct.unpack(">H", _read_exact(sock, 2))
        if klen == 0:
            return box
        key = _read_exact(sock, klen)
        (vlen,) = struct.unpack(">H", _read_exact(sock, 2))
        box[key] = _read_exact(sock, vlen)


def _write_box(box: dict[bytes, bytes]) -> bytes:
    out = []
    for key, value in box.items():
        out.append(struct.pack(">H", len(key)) + key + struct.pack(">H", len(value)) + value)
    return b"".join(out) + b"\x00\x00"


def call(data_dir, op: str, timeout: float = 30.0, **args):
    """Run ``op`` in the daemon serving ``data_dir``; return its JSON result.  Every way
    the call can fail (no daemon, a reset or broken connection, an answer that does not
    parse) is a ``UserError`` of one line."""
    path = socket_path(Path(data_dir))
    no_daemon = f"no blockhub daemon is running with data directory {data_dir}"
    try:
        exists = path.exists()
    except OSError as e:
        raise UserError(f"cannot reach {path}: {e.strerror or e}")
    if not exists:
        raise NoDaemon(no_daemon)
    try:
        answer = _exchange(path, no_daemon, timeout, op, args)
    except TimeoutError:
        raise UserError(f"the daemon did not answer within {timeout:g}s")
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        raise UserError("the daemon closed the control connection before answering")
    except OSError as e:
        raise UserError(f"control socket {path}: {e.strerror or e}")
    if b"_error" in answer:
        raise UserError(answer.get(b"_error_description", b"failed").decode("utf-8", "replace"))
    try:
        return json.loads(Call.parseResponse(answer, None)["result"])
    except (KeyError, ValueError, RecursionError):
        raise UserError("the daemon's answer could not be read")


def _exchange(path: Path, no_daemon: str, timeout: float, op: str, args: dict):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            raise NoDaemon(no_daemon)
        except PermissionError:
            raise UserError(f"permission denied on {path} (run as the daemon's user)")
        box = Call.makeArguments({"op": op, "args": json.dumps(args)}, None)
        request = {b"_command": b"Call", b"_ask": b"1"}
        request.update(box)
        sock.sendall(_write_box(request))
        return _read_box(sock)
    finally:
        sock.close()
