"""A handshake spy: joins a gateway like a real hub, relays hand-made sealed requests,
and records every plaintext byte the gateway sends it (after TLS).

It stands in for a hub in the handshake tests, in two ways:

- as a *requester*, it relays requests built with blockhub's own code
  (``blockhub.handshake_bodies.seal_request``, ``blockhub.wire.canonical.b64``, the ``relay``
  message with ``to``/``kind``/``sealed``), possibly odd ones: the same sealed bytes
  relayed twice (a replay), a request signed by another identity than the spy's own (a
  forgery: the gateway stamps the spy's id on it), or one sealed to a third hub but
  relayed to the target (wrongly addressed);
- as a *receiver*, it waits for ``deliver`` frames the gateway relays to it, opens the
  sealed requests (they are addressed to it) and reports what they said, while the
  capture shows exactly which bytes the gateway let through.

Each ``--relay`` is a JSON object: ``to`` (the hub the gateway should deliver to),
``seal_to`` (the hub the box is sealed and addressed to; default ``to``), ``sign``
(a data directory whose identity signs the request; default the spy's own), ``note``,
``times`` (how often the same sealed bytes are relayed; default 1), ``address`` and
``endpoint`` (what the request claims; default neither), and ``invite`` (an invite code
whose key signs the request; default none).  Relays are
sent in order once the spy is admitted and has seen every ``to`` hub online.

Outputs: ``--out`` gets the raw plaintext bytes as ``dataReceived`` got them;
``--report`` gets a JSON summary (admitted, kinds, hello, relays sent, relay-refused
frames, deliveries and the opened requests).  The spy exits once every relay is sent
and ``--deliveries`` deliver frames have arrived (plus ``--linger`` seconds), when the
gateway refuses or drops it, or after ``--timeout`` seconds; the exit status is 0 when
everything planned happened, 2 otherwise.

Usage: python handshake_spy.py --data-dir DIR --gateway ID@HOST:PORT --out FILE
       --report FILE [--relay JSON]... [--deliveries N] [--name NAME] [--timeout S]
       [--linger S]
"""

import argparse
import json
import os
import sys
import time

from twisted.internet import defer, task

from blockhub import keystore
from blockhub.errors import ProtocolError
from blockhub.handshake_bodies import open_request, seal_request
from blockhub.hub.config import parse_gateway_arg
from blockhub.invites import decode_invite
from blockhub.wire.canonical import b64, unb64
from tests.integration.spy_hub import BaseSpy, join_until_done


class HandshakeSpy(BaseSpy):
    def __init__(self, reactor, identity, name, relays, deliveries, out, linger):
        super().__init__(reactor, identity, name, out, linger,
                         {"relays": [], "relay_refused": [], "deliveries": []})
        self.relays = relays
        self.deliveries_wanted = deliveries
        self.sent_relays = False
        self.seen: set[str] = set()

    # -- called by SpyProtocol ---------------------------------------------------------
    def message(self, proto, message):
        if self.greet(proto, message):
            pass
        elif message.kind == "presence":
            if message["event"] == "left":
                self.seen.discard(message["hub"])
            else:
                self.seen.add(message["hub"])
        elif message.kind == "relay-refused":
            self.report["relay_refused"].append({"to": message["to"],
                                                 "reason": message["reason"]})
        elif message.kind == "deliver":
            self.delivered(message)
        if self.report["admitted"] and not self.sent_relays and \
                {r["to"] for r in self.relays} <= self.seen:
            self.sent_relays = True
            self.send_relays(proto)
        self.maybe_finish()

    # -- relaying ----------------------------------------------------------------------
    def send_relays(self, proto):
        for plan in self.relays:
            seal_to = plan.get("seal_to", plan["to"])
            signer = self.identity
            if plan.get("sign"):
                signer = keystore.load_identity(plan["sign"])
            invite = decode_invite(plan["invite"]).key if plan.get("invite") else None
            sealed = seal_request(signer, seal_to, plan.get("endpoint"), int(time.time()),
                                  os.urandom(16), plan.get("note", ""), plan.get("address"),
                                  invite_key=invite)
            for _ in range(plan.get("times", 1)):
                proto.send("relay", to=plan["to"], kind="request", sealed=b64(sealed))
            self.report["relays"].append({"to": plan["to"], "seal_to": seal_to,
                                          "signer": signer.id,
                                          "times": plan.get("times", 1)})

    def delivered(self, message):
        row = {"from": message["from"], "kind": message["kind"]}
        if message["kind"] == "request":
            try:
                request = open_request(self.identity, unb64(message["sealed"]),
                                       message["from"], int(time.time()))
            except ProtocolError as e:
                row["error"] = f"{type(e).__name__}: {e}"
            else:
                row["request"] = {"from": request.sender, "to": request.receiver,
                                  "endpoint": request.endpoint, "address": request.address,
                                  "note": request.note}
        self.report["deliveries"].append(row)

    # -- ending ------------------------------------------------------------------------
    def complete(self) -> bool:
        return self.sent_relays and \
            len(self.report["deliveries"]) >= self.deliveries_wanted

    def maybe_finish(self):
        if self.complete():
            self.finish_after_linger("did everything planned")


def parse(argv):
    p = argparse.ArgumentParser(prog="handshake_spy")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--gateway", required=True, help="ID@HOST:PORT")
    p.add_argument("--out", required=True)
    p.add_argument("--report", required=True)
    p.add_argument("--relay", action="append", default=[], type=json.loads,
                   help="a JSON object: to, seal_to, sign, note, times")
    p.add_argument("--deliveries", type=int, default=0,
                   help="wait for this many deliver frames")
    p.add_argument("--name", default="handshake-spy")
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--linger", type=float, default=0.3)
    return p.parse_args(argv)


@defer.inlineCallbacks
def main(reactor, *argv):
    args = parse(argv)
    identity = keystore.load_identity(args.data_dir)
    entry = parse_gateway_arg(args.gateway)
    with open(args.out, "wb") as out:
        spy = HandshakeSpy(reactor, identity, args.name, args.relay, args.deliveries, out,
                           args.linger)
        yield join_until_done(reactor, identity, entry, spy, args.timeout)
    with open(args.report, "w") as f:
        json.dump(spy.report, f, indent=2)
    if not spy.complete():
        raise SystemExit(2)


if __name__ == "__main__":
    task.react(main, sys.argv[1:])
