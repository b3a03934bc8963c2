"""``make flood``: honest hubs keep working while a gateway is flooded with junk.

Starts a gateway and three hubs on 127.0.0.1 in a temporary directory, then times the
honest work (alice asks bob and carol to connect, they accept automatically, and 50
messages go each way) twice: once quietly, once while separate flood processes keep up
to thousands of unauthenticated connections open to the gateway from many loopback
addresses, sending junk.  Everything is bounded in count and time, talks only to
loopback addresses, and stops by itself.

    python tools/flood.py [--connections 2000] [--seconds 60] [--messages 50]

Progress and the time left go to standard output as it runs (tools/progress.py); it
keeps no files (the daemons' directories are removed), and its last lines are the
result: the two timings, their ratio and the gateway's counters under the flood.
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
from tools.progress import Progress, duration  # noqa: E402

NODES = ("gateway", "alice", "bob", "carol")


def steps_per_run(messages: int) -> int:
    """Units of progress in one run: each daemon started and the three hubs online,
    two handshakes, then each message sent and each delivered."""
    return len(NODES) + 1 + 2 + 2 * 4 * messages


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


def honest_work(demo: Demo, ids, messages: int, report) -> float:
    """alice asks bob and carol; auto-accepted; messages both ways; returns seconds.
    ``report(steps, note)`` is told how far it got (steps counted from 0)."""
    started = time.monotonic()
    for other in ("bob", "carol"):
        demo.blockhub("connect", "--data-dir", demo.path("alice"), ids[other])

    def linked():
        connected = sum(p["connected"] for p in demo.query("alice", "peers"))
        report(connected, f"handshakes {connected}/2")
        return connected == 2

    demo.wait("the peer links", linked, timeout=120)
    sent, total = 0, 4 * messages
    for n in range(messages):
        for other in ("bob", "carol"):
            demo.blockhub("send", "--data-dir", demo.path("alice"), ids[other], f"a{n}")
            demo.blockhub("send", "--data-dir", demo.path(other), ids["alice"], f"{other}{n}")
            sent += 2
            report(2 + sent, f"messages sent {sent}/{total}")

    def delivered():
        got = {name: len(demo.query(name, "messages")) for name in ("alice", "bob", "carol")}
        count = sum(got.values())
        report(2 + total + count, f"messages delivered {count}/{total}")
        return got == {"alice": 2 * messages, "bob": messages, "carol": messages}

    demo.wait("every message", delivered, timeout=180)
    return time.monotonic() - started


def start_network(demo: Demo, ids, report):
    for name in NODES:
        if name not in ids:
            demo.blockhub("init", "--data-dir", demo.path(name), "--name", name)
            ids[name] = demo.blockhub("id", "--data-dir", demo.path(name)).strip()
    demo.start("gateway", "gateway", "--listen", "tcp:0:interface=127.0.0.1")
    report(1, "gateway started")
    address = demo.query("gateway", "status")["listen"]
    for n, name in enumerate(("alice", "bob", "carol"), start=2):
        demo.start(name, "hub", "--gateway", f"{ids['gateway']}@{address}", "--listen",
                   "tcp:0:interface=127.0.0.1", "--approve-key", ids["alice"])
        report(n, f"{name} started")
    demo.wait("three hubs online", lambda: len(demo.query("gateway", "hubs")) == 3)
    report(len(NODES) + 1, "three hubs online")
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
    per_run = steps_per_run(args.messages)
    progress = Progress(f"flood (2 runs of {4 * args.messages} messages)", 2 * per_run)
    for index, run in enumerate(("quiet", "flooded")):
        def report(steps, note, base=index * per_run, run=run):
            progress.update(base + steps, f"{run}: {note}")

        demo = Demo()
        ids = {}
        workers = []
        try:
            port = start_network(demo, ids, report)
            if run == "flooded":
                per = args.connections // 2
                for w in range(2):
                    workers.append(subprocess.Popen(
                        [sys.executable, __file__, "--seconds", str(args.seconds), "--worker",
                         str(port), str(per), str(w * 200), "200"],
                        stdout=subprocess.PIPE, text=True, start_new_session=True))
                time.sleep(2)  # let the flood build up
            offset = len(NODES) + 1
            results[run] = honest_work(demo, ids, args.messages,
                                       lambda steps, note, report=report, offset=offset:
                                       report(offset + steps, note))
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
    progress.finish()
    quiet, flooded = results["quiet"], results["flooded"]
    print(f"honest work (2 handshakes, {4 * args.messages} messages): "
          f"{quiet:.1f}s quiet, {flooded:.1f}s under a flood of up to "
          f"{args.connections} junk connections  (x{flooded / quiet:.2f})")
    print("gateway counters under the flood:", json.dumps(results["flooded_gateway"]))
    if results.get("flood"):
        opened = sum(s["opened"] for s in results["flood"])
        print(f"flood connections opened: {opened}")
    print(f"flood: in {duration(progress.elapsed())}, every handshake and message of the "
          f"honest hubs went through under the flood, x{flooded / quiet:.2f} the quiet time "
          f"(nothing is kept on disk; these lines are the result)")


if __name__ == "__main__":
    main()
