"""``make flood``, second part: fresh identities flood one hub with requests to peer,
against ``--request-difficulty auto``, while honest hubs still get through.

Starts a gateway and three hubs on 127.0.0.1 in a temporary directory: bob runs with
``--request-difficulty auto``; alice holds an invite from bob; carol holds nothing.  A
flood process then brings up fresh identities, one after another, each joining the
gateway from its own loopback address and asking bob to peer, with the proof of work
bob's HubInfo asks at that moment (an attacker that does the work; one that does not is
refused at no cost).  Meanwhile alice connects with her code and carol asks plainly.
Everything is bounded in count and time, talks only to loopback addresses, keeps no
files and stops by itself; the last lines are the result.

    python tools/request_flood.py [--identities 400] [--seconds 60] [--rate 20]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.demo import Demo  # noqa: E402

WARMUP = 15.0  # seconds of flood before the honest hubs ask


def flood_worker(port: int, gateway_id: str, target_id: str, count: int, seconds: float,
                 rate: float) -> None:
    """One process: ``count`` fresh identities at ``rate`` a second, until the deadline;
    prints a JSON line of what it did."""
    from nacl.signing import SigningKey
    from twisted.internet import reactor
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS

    from blockhub import proof_of_work
    from blockhub.handshake_bodies import seal_request
    from blockhub.hubinfo import make_hubinfo
    from blockhub.identity import Identity
    from blockhub.net.framed import FramedProtocol
    from blockhub.net.tls import PinnedClientCreator
    from blockhub.wire.canonical import b64

    deadline = time.monotonic() + seconds
    stats = {"asked": 0, "bits": {}, "solving_seconds": 0.0, "refused_joins": 0}
    known = {"bits": None}

    class Asker(FramedProtocol):
        def __init__(self, identity):
            super().__init__(clock=reactor)
            self.identity = identity

        def messageReceived(self, message):
            if message.kind == "hello":
                info = make_hubinfo(self.identity, "flood", int(time.time() * 1000), {})
                self.send("join", hubinfo=info.to_json())
            elif message.kind == "presence" and message["hub"] == target_id:
                info = message.fields.get("hubinfo") or {}
                bits = info.get("body", {}).get("meta", {}).get("pow")
                if isinstance(bits, int):
                    known["bits"] = bits
                if message["event"] in ("joined", "updated"):
                    self.ask()
            elif message.kind == "refused":
                stats["refused_joins"] += 1

        def ask(self):
            bits, nonce, at = known["bits"] or 0, os.urandom(16), int(time.time())
            started = time.monotonic()
            counter = proof_of_work.solve(self.identity.id, target_id, nonce, at, bits)
            stats["solving_seconds"] += time.monotonic() - started
            sealed = seal_request(self.identity, target_id, None, at, nonce, "flood",
                                  pow=counter)
            self.send("relay", to=target_id, kind="request", sealed=b64(sealed))
            stats["asked"] += 1
            stats["bits"][str(bits)] = stats["bits"].get(str(bits), 0) + 1
            reactor.callLater(0.5, self.close, "done")

    def one(n: int) -> None:
        if n >= count or time.monotonic() >= deadline:
            return
        identity = Identity(SigningKey(os.urandom(32)))
        a = 2 + n
        source = (f"127.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}", 0)
        endpoint = wrapClientTLS(PinnedClientCreator(identity, gateway_id),
                                 TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=10,
                                                    bindAddress=source))
        connectProtocol(endpoint, Asker(identity)).addErrback(lambda f: None)
        reactor.callLater(1 / rate, one, n + 1)

    reactor.callWhenRunning(one, 0)
    reactor.callLater(seconds, reactor.stop)
    reactor.run()
    print(json.dumps(stats), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--identities", type=int, default=400)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.identities = max(1, min(args.identities, 2000))
    args.seconds = max(WARMUP + 10, min(args.seconds, 300))
    args.rate = max(1.0, min(args.rate, 100.0))
    if args.worker:
        port, gateway_id, target_id = args.worker
        flood_worker(int(port), gateway_id, target_id, args.identities, args.seconds,
                     args.rate)
        return
    demo, worker = Demo(), None
    try:
        result = run(demo, args)
    finally:
        worker = getattr(demo, "flood", None)
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
        demo.stop_all()
        shutil.rmtree(demo.root, ignore_errors=True)
    report(args, result)


def start(demo: Demo) -> dict:
    ids = {}
    for name in ("gateway", "alice", "bob", "carol"):
        demo.blockhub("init", "--data-dir", demo.path(name), "--name", name)
        ids[name] = demo.blockhub("id", "--data-dir", demo.path(name)).strip()
    demo.start("gateway", "gateway", "--listen", "tcp:0:interface=127.0.0.1")
    address = demo.query("gateway", "status")["listen"]
    ids["address"] = address
    for name in ("alice", "bob", "carol"):
        extra = ("--request-difficulty", "auto") if name == "bob" else ()
        demo.start(name, "hub", "--gateway", f"{ids['gateway']}@{address}", "--listen",
                   "tcp:0:interface=127.0.0.1", *extra)
    demo.wait("three hubs online", lambda: len(demo.query("gateway", "hubs")) == 3)
    return ids


def run(demo: Demo, args) -> dict:
    ids = start(demo)
    code = json.loads(demo.blockhub("invite", "create", "--data-dir", demo.path("bob"),
                                    "--json"))["code"]
    port = ids["address"].rsplit(":", 1)[1]
    print(f"request flood: {args.identities} fresh identities at {args.rate:g}/s for at "
          f"most {args.seconds:g}s against bob (--request-difficulty auto)", flush=True)
    demo.flood = subprocess.Popen(
        [sys.executable, __file__, "--identities", str(args.identities), "--seconds",
         str(args.seconds), "--rate", str(args.rate), "--worker", port, ids["gateway"],
         ids["bob"]], stdout=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(WARMUP)
    during = demo.query("bob", "status")["request_difficulty"]
    started = time.monotonic()
    demo.blockhub("connect", "--data-dir", demo.path("alice"), "--invite", code)
    demo.wait("alice's invited peering", lambda: any(
        p["connected"] for p in demo.query("alice", "peers")), timeout=60)
    invited = time.monotonic() - started
    started = time.monotonic()
    demo.blockhub("connect", "--data-dir", demo.path("carol"), "--no-wait", ids["bob"])
    demo.wait("carol's request at bob", lambda: any(
        p["id"] == ids["carol"] for p in demo.query("bob", "pending")), timeout=120)
    plain = time.monotonic() - started
    flood = json.loads(demo.flood.communicate(timeout=args.seconds + 30)[0] or "{}")
    status = demo.query("bob", "status")
    return {"during": during, "invited": invited, "plain": plain, "flood": flood,
            "after": status["request_difficulty"], "refusals": status["refusals"],
            "pending": len(demo.query("bob", "pending")),
            "carol_kept": any(p["id"] == ids["carol"] for p in demo.query("bob", "pending"))}


def report(args, r: dict) -> None:
    flood = r["flood"]
    print(f"flood: {flood.get('asked', 0)} requests from fresh identities, by difficulty "
          f"(bits: count) {json.dumps(flood.get('bits', {}), sort_keys=True)}, "
          f"{flood.get('solving_seconds', 0):.1f}s of the flooder's CPU on proofs")
    print(f"bob while flooded: asking {r['during']['published']} bits after {WARMUP:g}s; "
          f"{r['pending']} pending at the end (the list keeps at most 100); refusals "
          f"{json.dumps(r['refusals'], sort_keys=True)}")
    print(f"alice with an invite: peered in {r['invited']:.1f}s under the flood")
    print(f"carol without one: her request reached bob's operator in {r['plain']:.1f}s "
          f"(its proof included); still pending at the end: {r['carol_kept']}")
    print(f"request flood: the invited hub got through under the flood, and the honest "
          f"stranger paid {r['during']['published']} bits to be heard")


if __name__ == "__main__":
    main()
