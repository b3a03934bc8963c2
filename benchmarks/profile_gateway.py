"""Profile the real gateway (``twistd --profiler cprofile``) under one load, and print
where its CPU goes.  Not part of ``make bench``; it explains the figures.

  storm   N hubs join from two load processes (the join-storm / capacity load)
  relay   P pairs, each sender relays B sealed requests at once (the relay load)
  update  N hubs, then U HubInfo updates fanned out one after the other
  circuit two relay-only hubs (hubworker.py, --peer-path relay) peered over a circuit;
          one sends M messages of S characters to the other (bench_peer's relayed
          run); --hub-profiles DIR also profiles both hub processes

Usage: profile_gateway.py storm|relay|update|circuit [--n N] [--pairs P] [--top K]
"""

import argparse
import os
import pstats
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_peer  # noqa: E402
import bench_presence  # noqa: E402
import common as C  # noqa: E402


def circuit(bench, gw, args):
    """bench_peer's relayed pair; returns when the measured phase started."""
    hubs = []
    for name in ("hubA", "hubB"):
        extra = (["--profile", os.path.join(os.path.abspath(args.hub_profiles),
                                            f"{name}.prof")] if args.hub_profiles else [])
        hubs.append(C.Worker(bench.children, bench.scratch, "hubworker.py", name,
                             args=["--root", bench.scratch.path(name), *extra]))
    for hub in hubs:
        hub.wait("ready", 60)
    a, b = hubs
    pair = bench_peer.make_pair(a, b, gw, 0, "relayed")
    t0 = time.monotonic()
    r = {}
    bench_peer.send(a, b, pair, args.messages, args.size, r, "relayed", gw=gw)
    print(f"{args.messages} messages of {args.size}: {r['relayed_MB_s']:.1f} MB/s; gateway "
          f"{r['relayed_gateway_cpu_ms_per_MiB']:.1f} ms CPU per MiB, "
          f"{100 * r['relayed_gateway_cpu']:.0f} % busy; sender "
          f"{100 * r['relayed_sender_cpu']:.0f} %, receiver "
          f"{100 * r['relayed_receiver_cpu']:.0f} %")
    if args.hub_profiles:
        os.makedirs(args.hub_profiles, exist_ok=True)
        for hub in hubs:  # hubworker writes its profile when its stdin closes
            hub.proc.stdin.close()
            hub.proc.wait(60)
    return t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", choices=("storm", "relay", "update", "circuit"))
    p.add_argument("--n", type=int, default=600, help="hubs (storm, update)")
    p.add_argument("--pairs", type=int, default=400, help="pairs (relay)")
    p.add_argument("--burst", type=int, default=10)
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--messages", type=int, default=600, help="messages (circuit)")
    p.add_argument("--size", type=int, default=60 * 1024, help="characters (circuit)")
    p.add_argument("--hub-profiles", help="directory for the hub processes' profiles "
                                          "(circuit)")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--focus", help="also list functions matching this regex, by "
                                   "cumulative time (e.g. 'relay|ratelimit|messages')")
    args = p.parse_args()
    with C.Bench("profile") as bench:
        stats = bench.scratch.path("gateway.pstats")
        extra = bench_peer.UNLIMITED_CIRCUITS if args.scenario == "circuit" else []
        gw = C.Gateway(bench.children, bench.scratch, extra=extra, twistd_args=[
            "--profile", stats, "--profiler", "cprofile", "--savestats"]).start()
        if args.scenario != "circuit":
            workers = C.start_workers(bench.children, bench.scratch, "loadclient.py", 2)
        t0 = time.monotonic()
        if args.scenario == "circuit":
            t0 = circuit(bench, gw, args)
        elif args.scenario in ("storm", "update"):
            seconds, ok, failed, errors, connected = bench_presence.storm(
                workers, "blockhub", args.n, gw.port, gw.id, 100, 600)
            print(f"storm of {args.n}: {seconds:.2f}s ({failed} failed {errors})")
            if args.scenario == "update":
                t0 = time.monotonic()
                lat = bench_presence.fanout(workers, connected, args.n, args.updates)
                print(f"{args.updates} updates: p50 {1000 * C.percentile(lat, 50):.1f} ms "
                      f"p99 {1000 * C.percentile(lat, 99):.1f} ms")
        else:
            per = C.split(args.pairs, 2)
            C.broadcast(workers, "connect", "connected", 300,
                        per_worker=lambda i: {"count": 2 * per[i], "src_base": i * 1_000_000},
                        system="blockhub", port=gw.port, gateway=gw.id, pairs=True)
            t0 = time.monotonic()
            C.broadcast(workers, "burst", "burst_sent", 60, count=args.burst)
            done = C.broadcast(workers, "expect_deliver", "deliver_done", 120,
                               per_worker=lambda i: {"n": args.burst * per[i]})
            print(f"relayed {sum(e['n'] for e in done)} in {time.monotonic() - t0:.2f}s")
        print(f"measured phase: {time.monotonic() - t0:.2f}s wall")
        os.kill(gw.pid, signal.SIGTERM)  # twistd writes the statistics as it stops
        gw.proc.wait(120)
        s = pstats.Stats(stats)
        s.sort_stats("tottime").print_stats(args.top)
        s.sort_stats("cumulative").print_stats("blockhub", args.top)
        if args.focus:
            s.sort_stats("cumulative").print_stats(args.focus, args.top)


if __name__ == "__main__":
    main()
