"""``make flood``: honest hubs keep working while a gateway is flooded with junk.

Starts a gateway and three hubs on 127.0.0.1 in a temporary directory, then times the
honest work (alice asks bob and carol to connect, they accept automatically, and 50
messages go each way) twice: once quietly, once while separate flood processes keep up
to thousands of unauthenticated connections open to the gateway from many loopback
addresses, sending junk.  Everything is bounded in count and time, talks only to
loopback addresses, and stops by itself.

    python tools/flood.py [--connections 2000] [--seconds 60] [--messages 50]
"""

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tools.demo import Demo  # noqa: E402


def flood_worker(port: int, connections: int, seconds: float, first_ip: int, ips: int):
    """One flood process: keep ``connections`` junk connections open until the deadline."""
    from twisted.internet import reactor
    from twisted.internet.protocol import ClientFactory, Protocol

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    deadline = time.monotonic() + seconds
    stats = {"opened": 0, "junk_bytes": 0}
    rng = random.Random(first_ip)

    class Junk(Protocol):
        def connectionMade(self):
            stats["opened"] += 1
            junk = rng.choice([os.urandom(rng.randint(1, 600)),
                               b"\x16\x03\x01" + os.urandom(300),      # a broken ClientHello
                               b"\x00\x10\x00\x00" + b"\x01" * 64])    # a huge frame header
            stats["junk_bytes"] += len(junk)
            self.transport.write(junk)

    class Again(ClientFactory):
        protocol = Junk

        def __init__(self, ip):
            self.ip = ip

        def clientConnectionLost(self, connector, reason):
            self._again(connector)

        def clientConnectionFailed(self, connector, reason):
            self._again(connector)

        def _again(self, connector):
            if time.monotonic() < deadline:
                reactor.callLater(rng.uniform(0.01, 0.2), connector.connect)

    for n in range(connections):
        ip = f"127.0.{(first_ip + n % ips) // 250}.{2 + (first_ip + n % ips) % 250}"
        reactor.connectTCP("127.0.0.1", port, Again(ip), timeout=5, bindAddress=(ip, 0))
    reactor.callLater(seconds, reactor.stop)
    reactor.run()
    print(json.dumps(stats), flush=True)


def honest_work(demo: Demo, ids, messages: int) -> float:
    """alice asks bob and carol; auto-accepted; messages both ways; returns seconds."""
    started = time.monotonic()
    for other in ("bob", "carol"):
        demo.blockhub("connect", "--data-dir", demo.path("alice"), ids[other])
    demo.wait("the peer links", lambda: sum(p["connected"] for p in demo.query("alice", "peers"))
              == 2, timeout=120)
    for n in range(messages):
        for other in ("bob", "carol"):
            demo.blockhub("send", "--data-dir", demo.path("alice"), ids[other], f"a{n}")
            demo.blockhub("send", "--data-dir", demo.path(other), ids["alice"], f"{other}{n}")
    demo.wait("every message", lambda: len(demo.query("alice", "messages")) == 2 * messages
              and all(len(demo.query(o, "messages")) == messages for o in ("bob", "carol")),
              timeout=180)
    return time.monotonic() - started


def start_network(demo: Demo, ids):
    for name in ("gateway", "alice", "bob", "carol"):
        if name not in ids:
            demo.blockhub("init", "--data-dir", demo.path(name), "--name", name)
            ids[name] = demo.blockhub("id", "--data-dir", demo.path(name)).strip()
    demo.start("gateway", "gateway", "--listen", "tcp:0:interface=127.0.0.1")
    address = demo.query("gateway", "status")["listen"]
    for name in ("alice", "bob", "carol"):
        demo.start(name, "hub", "--gateway", f"{ids['gateway']}@{address}", "--listen",
                   "tcp:0:interface=127.0.0.1", "--approve-key", ids["alice"])
    demo.wait("three hubs online", lambda: len(demo.query("gateway", "hubs")) == 3)
    return int(address.rsplit(":", 1)[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--worker", nargs=4, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        port, connections, first_ip, ips = map(int, args.worker)
        flood_worker(port, connections, args.seconds, first_ip, ips)
        return
    args.connections = min(args.connections, 5000)
    args.seconds = min(args.seconds, 300)
    results = {}
    for run in ("quiet", "flooded"):
        demo = Demo()
        ids = {}
        workers = []
        try:
            port = start_network(demo, ids)
            if run == "flooded":
                per = args.connections // 2
                for w in range(2):
                    workers.append(subprocess.Popen(
                        [sys.executable, __file__, "--seconds", str(args.seconds), "--worker",
                         str(port), str(per), str(w * 200), "200"],
                        stdout=subprocess.PIPE, text=True, start_new_session=True))
                time.sleep(2)  # let the flood build up
            results[run] = honest_work(demo, ids, args.messages)
            status = demo.query("gateway", "status")
            results[run + "_gateway"] = status["counters"]
        finally:
            for w in workers:
                if w.poll() is None:
                    os.killpg(w.pid, signal.SIGTERM)
            flood_stats = [w.communicate(timeout=30)[0].strip() for w in workers]
            demo.stop_all()
            shutil.rmtree(demo.root, ignore_errors=True)
        if flood_stats:
            results["flood"] = [json.loads(s) for s in flood_stats if s]
    quiet, flooded = results["quiet"], results["flooded"]
    print(f"honest work (2 handshakes, {4 * args.messages} messages): "
          f"{quiet:.1f}s quiet, {flooded:.1f}s under a flood of up to "
          f"{args.connections} junk connections  (x{flooded / quiet:.2f})")
    print("gateway counters under the flood:", json.dumps(results["flooded_gateway"]))
    if results.get("flood"):
        opened = sum(s["opened"] for s in results["flood"])
        print(f"flood connections opened: {opened}")


if __name__ == "__main__":
    main()
