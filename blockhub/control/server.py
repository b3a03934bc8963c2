"""The daemon's end of the control socket.

``Call(op, args)`` runs the target's ``control_<op>`` method with the JSON arguments
and answers with its JSON result.  A ``UserError`` becomes a ``ControlError`` the CLI
prints as one line; anything else is logged here and reported as an internal error.
"""

import json
import re
from pathlib import Path

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.defer import maybeDeferred
from twisted.internet.endpoints import UNIXServerEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols import amp

from blockhub.control.commands import Call, ControlError
from blockhub.errors import ProtocolError, UserError

SOCKET_NAME = "control.sock"
MAX_UNIX_PATH = 100
_OP = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
log = Logger()


class ControlProtocol(amp.AMP):
    def __init__(self, target):
        super().__init__()
        self.target = target

    def makeConnection(self, transport):
        # AMP logs every connection; a CLI call is not news.
        amp.BinaryBoxProtocol.makeConnection(self, transport)

    def connectionLost(self, reason):
        amp.BinaryBoxProtocol.connectionLost(self, reason)
        self.transport = None

    @Call.responder
    def call(self, op, args):
        method = getattr(self.target, f"control_{op}", None) if _OP.match(op) else None
        if method is None:
            raise ControlError(f"this daemon has no operation {op!r}")
        try:
            kwargs = json.loads(args or "{}")
            if not isinstance(kwargs, dict):
                raise ValueError("arguments must be an object")
        except ValueError as e:
            raise ControlError(f"bad arguments: {e}")
        d = maybeDeferred(method, **kwargs)
        d.addCallbacks(lambda result: {"result": json.dumps(result)}, self._failed,
                       errbackArgs=(op,))
        return d

    def _failed(self, failure, op):
        if failure.check(UserError, ControlError, ProtocolError):
            # ProtocolError: an argument the wire format refuses (text with no UTF-8
            # form, say), the caller's mistake, said in one line.
            raise ControlError(str(failure.value))
        log.failure("control operation {op} failed", failure, op=op)
        raise ControlError(f"internal error in {op}; see the daemon's log")


def socket_path(data_dir) -> Path:
    return Path(data_dir).absolute() / SOCKET_NAME


def control_service(reactor, data_dir, target) -> StreamServerEndpointService:
    """Serve ``target`` on ``DATA_DIR/control.sock`` (0600; a stale socket is replaced)."""
    path = socket_path(data_dir)
    if len(str(path)) > MAX_UNIX_PATH:
        raise UserError(f"the data directory path is too long for a control socket "
                        f"({len(str(path))} > {MAX_UNIX_PATH} characters): {path}")
    endpoint = UNIXServerEndpoint(reactor, str(path), mode=0o600, wantPID=True)
    factory = Factory.forProtocol(lambda: ControlProtocol(target))
    factory.noisy = False
    return StreamServerEndpointService(endpoint, factory)
