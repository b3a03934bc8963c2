"""A spying hub: joins a gateway like a real hub and records every plaintext byte the
gateway sends it after TLS, so a test can check what a hub learns about the others.

It is built from blockhub's own pieces (the key-pinned TLS client, the framed protocol,
signed HubInfo) and speaks the protocol as the real hub does: on ``hello`` it sends a
``join``, then reads ``welcome`` and ``presence``.  It exits by itself: once it has
seen presence for every ``--expect`` id (plus ``--linger`` seconds to catch what
follows), when the gateway refuses or drops it, or after ``--timeout`` seconds.

Outputs: ``--out`` gets the raw bytes, in order, as ``dataReceived`` got them;
``--report`` gets a JSON summary (admitted, message kinds, hubs seen, hello fields).
The exit status is 0 when every expected hub was seen, 2 otherwise.

Usage: python spy_hub.py --data-dir DIR --gateway ID@HOST:PORT --out FILE
       --report FILE [--expect ID]... [--name NAME] [--timeout S] [--linger S]
       [--no-join]
"""

import argparse
import json
import sys
import time

from twisted.internet import defer, task
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS

from blockhub import keystore
from blockhub.hub.config import parse_gateway_arg
from blockhub.hubinfo import make_hubinfo, verify_hubinfo
from blockhub.net.framed import FramedProtocol
from blockhub.net.tls import PinnedClientCreator


class BaseSpy:
    """What every spy does: record the plaintext it receives, join when greeted (unless
    silent), note admission and refusal, and finish once, closing its connection."""

    def __init__(self, reactor, identity, name, out, linger, report, silent=False):
        self.reactor = reactor
        self.identity = identity
        self.name = name
        self.capture = out
        self.linger = linger
        self.silent = silent
        self.done = defer.Deferred()
        self.proto = None
        self._finishing = False
        self.report = dict({"id": identity.id, "admitted": False, "kinds": [],
                            "hello": None, "refused": None, "lost": None, "bytes": 0},
                           **report)

    def record(self, data: bytes):
        self.capture.write(data)
        self.capture.flush()
        self.report["bytes"] += len(data)

    def greet(self, proto, message) -> bool:
        """Handle the gateway's own messages; True when ``message`` was one of them."""
        self.report["kinds"].append(message.kind)
        if message.kind == "hello":
            self.report["hello"] = {k: message[k] for k in ("gateway", "observed", "mode")}
            if not self.silent:
                info = make_hubinfo(self.identity, self.name, int(time.time() * 1000), {})
                proto.send("join", hubinfo=info.to_json())
        elif message.kind == "welcome":
            self.report["admitted"] = True
        elif message.kind == "refused":
            self.report["refused"] = message["reason"]
        else:
            return False
        return True

    def finish_after_linger(self, why):
        if not self._finishing:
            self._finishing = True
            self.reactor.callLater(self.linger, self.finish, why)

    def lost(self, reason):
        self.report["lost"] = reason
        self.finish(f"connection lost: {reason}")

    def finish(self, why):
        if self.done.called:
            return
        self.report["finished"] = why
        if self.proto is not None and self.proto.connected:
            self.proto.close("spy done")
        self.done.callback(None)


class Spy(BaseSpy):
    def __init__(self, reactor, identity, name, expect, out, linger, silent=False):
        super().__init__(reactor, identity, name, out, linger,
                         {"seen": [], "endpoints": []}, silent=silent)
        self.expect = set(expect)

    def message(self, proto, message):
        if not self.greet(proto, message) and message.kind == "presence":
            if message["hubinfo"] is not None:
                info = verify_hubinfo(message["hubinfo"])
                self.report["endpoints"].append(info.endpoint)
            if message["hub"] not in self.report["seen"]:
                self.report["seen"].append(message["hub"])
        if self.expect <= set(self.report["seen"]):
            self.finish_after_linger("saw every expected hub")


class SpyProtocol(FramedProtocol):
    def __init__(self, spy, **kw):
        super().__init__(**kw)
        self.spy = spy

    def dataReceived(self, data):
        self.spy.record(data)  # plaintext: TLS is already removed below us
        super().dataReceived(data)

    def messageReceived(self, message):
        self.spy.message(self, message)

    def lost(self, reason):
        self.spy.lost(reason)


def parse(argv):
    p = argparse.ArgumentParser(prog="spy_hub")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--gateway", required=True, help="ID@HOST:PORT")
    p.add_argument("--out", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--expect", action="append", default=[])
    p.add_argument("--name", default="spy")
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--linger", type=float, default=0.5)
    p.add_argument("--no-join", action="store_true",
                   help="never answer the hello (but still answer pings)")
    return p.parse_args(argv)


@defer.inlineCallbacks
def join_until_done(reactor, identity, entry, spy, timeout):
    """Join the gateway as ``spy`` over pinned TLS and wait until it finishes (or the
    timeout passes); then give the close a moment to reach the gateway."""
    timer = reactor.callLater(timeout, spy.finish, "timed out")
    endpoint = wrapClientTLS(PinnedClientCreator(identity, entry.id),
                             HostnameEndpoint(reactor, entry.host, entry.port, timeout=5))
    try:
        spy.proto = yield connectProtocol(endpoint, SpyProtocol(spy, clock=reactor))
    except Exception as e:
        spy.finish(f"cannot connect: {e}")
    yield spy.done
    if timer.active():
        timer.cancel()
    yield task.deferLater(reactor, 0.05, lambda: None)


@defer.inlineCallbacks
def main(reactor, *argv):
    args = parse(argv)
    identity = keystore.load_identity(args.data_dir)
    entry = parse_gateway_arg(args.gateway)
    with open(args.out, "wb") as out:
        spy = Spy(reactor, identity, args.name, args.expect, out, args.linger,
                  silent=args.no_join)
        yield join_until_done(reactor, identity, entry, spy, args.timeout)
    with open(args.report, "w") as f:
        json.dump(spy.report, f, indent=2)
    if not set(args.expect) <= set(spy.report["seen"]):
        raise SystemExit(2)


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
