"""Dial a hub's peer listener as some identity and say how it answered.

Stands in for a hub that dials another on its own: it opens key-pinned TLS to
``HOST:PORT`` expecting ``--to``, sends a signed ``peer-hello`` (blockhub's own
``Peers.hello_for``), and prints the ``peer-ready`` answer as JSON:
``{"status": "connected" | "pending" | "rejected" | "error", "reason": ...}``.
With ``--send TEXT`` and a connected answer it also sends one message and waits
briefly for its ``ack`` (``"acked": true``).  It exits by itself within
``--timeout`` seconds.

Usage: python peer_dial.py --data-dir DIR --to HUBID --address HOST:PORT
       [--send TEXT] [--timeout S]
"""

import argparse
import json
import sys
import time

from twisted.internet import defer, task
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS

from blockhub import keystore
from blockhub.hub.peer_protocol import PeerProtocol
from blockhub.hub.peers import Peers
from blockhub.hubinfo import parse_endpoint
from blockhub.limits import DEFAULT
from blockhub.net.tls import PinnedClientCreator


class _Recorder:
    """The few calls a dialing PeerProtocol makes on its peers manager; the hello is
    made by the real ``Peers``."""

    def __init__(self, identity, reactor):
        self.hello_for = Peers(identity, None, reactor, None, None, None, None).hello_for
        self.acked_seq = defer.Deferred()

    def attach(self, proto):
        pass

    def detach(self, proto, reason):
        pass

    def message_received(self, proto, message):
        pass

    def drained(self, proto):
        pass

    def acked(self, proto, seq):
        if not self.acked_seq.called:
            self.acked_seq.callback(seq)


@defer.inlineCallbacks
def main(reactor, *argv):
    p = argparse.ArgumentParser(prog="peer_dial")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--to", required=True)
    p.add_argument("--address", required=True)
    p.add_argument("--send", default=None)
    p.add_argument("--timeout", type=float, default=10.0)
    args = p.parse_args(argv)
    identity = keystore.load_identity(args.data_dir)
    recorder = _Recorder(identity, reactor)
    proto = PeerProtocol(recorder, None, first=recorder.hello_for(args.to), clock=reactor,
                         limits=DEFAULT)
    host, port = parse_endpoint(args.address)
    endpoint = wrapClientTLS(PinnedClientCreator(identity, args.to),
                             HostnameEndpoint(reactor, host, port, timeout=args.timeout))
    result = {"status": "error", "reason": "timed out"}
    ready = proto.ready
    ready.addTimeout(args.timeout, reactor)
    try:
        yield connectProtocol(endpoint, proto)
        status, reason = yield ready
        result = {"status": status, "reason": reason}
        if status == "connected" and args.send is not None:
            proto.send("message", seq=1, text=args.send, at=int(time.time()))
            recorder.acked_seq.addTimeout(2, reactor)
            try:
                yield recorder.acked_seq
                result["acked"] = True
            except Exception:
                result["acked"] = False
    except Exception as e:
        result = {"status": "error", "reason": str(e) or type(e).__name__}
    if proto.transport is not None:
        proto.transport.loseConnection()
    print(json.dumps(result))


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
