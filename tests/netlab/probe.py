"""A tiny TCP probe the lab's self-tests run inside namespaces (no blockhub involved).

``probe.py serve ADDR PORT [LIFETIME]`` listens, prints ``ready``, and answers each
connection with the address it came from (``HOST PORT``), printing ``accepted HOST
PORT`` for each; it exits after LIFETIME seconds (30) at the latest.

``probe.py connect ADDR PORT [FROM_PORT] [TIMEOUT]`` prints one JSON object:
``{"result": "ok", "local": L, "seen": "HOST:PORT"}`` (the server's answer) or
``{"result": "timeout" | "refused" | "error", "error": ...}``.
"""

import json
import socket
import sys
import time


def serve(addr: str, port: int, lifetime: float = 30.0) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((addr, port))
    listener.listen(16)
    listener.settimeout(0.2)
    print("ready", flush=True)
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        try:
            conn, (host, peer_port) = listener.accept()
        except TimeoutError:
            continue
        print(f"accepted {host} {peer_port}", flush=True)
        with conn:
            conn.sendall(f"{host} {peer_port}\n".encode())


def connect(addr: str, port: int, from_port: int = 0, timeout: float = 2.0) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.settimeout(timeout)
    try:
        sock.bind(("0.0.0.0", from_port))
        sock.connect((addr, port))
        local = sock.getsockname()[1]
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                break
            answer += chunk
        host, seen_port = answer.decode().split()
        return {"result": "ok", "local": local, "seen": f"{host}:{seen_port}"}
    except TimeoutError as e:
        return {"result": "timeout", "error": str(e)}
    except ConnectionRefusedError as e:
        return {"result": "refused", "error": str(e)}
    except (OSError, ValueError) as e:
        return {"result": "error", "error": str(e)}
    finally:
        sock.close()


def main(argv) -> int:
    if argv[:1] == ["serve"] and len(argv) in (3, 4):
        serve(argv[1], int(argv[2]), *map(float, argv[3:]))
        return 0
    if argv[:1] == ["connect"] and 3 <= len(argv) <= 5:
        extra = [int(argv[3])] if len(argv) > 3 else []
        extra += [float(argv[4])] if len(argv) > 4 else []
        print(json.dumps(connect(argv[1], int(argv[2]), *extra)), flush=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
