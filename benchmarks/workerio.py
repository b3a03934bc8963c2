"""The line protocol every benchmark load process speaks with the orchestrator:
JSON commands on stdin (``{"cmd": NAME, ...}`` calls ``worker.cmd_NAME``), JSON events
on stdout (``emit``), written through the reactor once it runs."""

import json
import sys
import traceback

from twisted.internet import reactor, stdio
from twisted.protocols.basic import LineReceiver

_out = []  # the control connection's transport, once there is one


def emit(ev: str, **fields):
    """One event line on stdout, through the reactor (stdout is non-blocking)."""
    line = (json.dumps(dict(fields, ev=ev)) + "\n").encode()
    if _out:
        _out[0].write(line)
    else:
        sys.stdout.buffer.write(line)
        sys.stdout.flush()


class Control(LineReceiver):
    delimiter = b"\n"
    MAX_LENGTH = 1 << 26

    def __init__(self, worker):
        self.worker = worker

    def connectionMade(self):
        _out.append(self.transport)

    def lineReceived(self, line):
        try:
            cmd = json.loads(line)
            getattr(self.worker, "cmd_" + cmd["cmd"])(**cmd)
        except Exception as e:
            traceback.print_exc()
            emit("error", error=f"{type(e).__name__}: {e}")

    def connectionLost(self, reason):
        if reactor.running:
            reactor.stop()


def serve(worker):
    """Take commands for ``worker`` from stdin; the reactor stops when stdin closes."""
    stdio.StandardIO(Control(worker))
