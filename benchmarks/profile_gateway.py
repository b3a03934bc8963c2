"""Profile the real gateway (``twistd --profiler cprofile``) under one load, and print
where its CPU goes.  Not part of ``make bench``; it explains the figures.

  storm   N hubs join from two load processes (the join-storm / capacity load)
  relay   P pairs, each sender relays B sealed requests at once (the relay load)
  update  N hubs, then U HubInfo updates fanned out one after the other

Usage: profile_gateway.py storm|relay|update [--n N] [--pairs P] [--top K]
"""

import argparse
import os
import pstats
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench_presence  # noqa: E402
import common as C  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("scenario", choices=("storm", "relay", "update"))
    p.add_argument("--n", type=int, default=600, help="hubs (storm, update)")
    p.add_argument("--pairs", type=int, default=400, help="pairs (relay)")
    p.add_argument("--burst", type=int, default=10)
    p.add_argument("--updates", type=int, default=100)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--focus", help="also list functions matching this regex, by "
                                   "cumulative time (e.g. 'relay|ratelimit|messages')")
    args = p.parse_args()
    with C.Bench("profile") as bench:
        stats = bench.scratch.path("gateway.pstats")
        gw = C.Gateway(bench.children, bench.scratch, twistd_args=[
            "--profile", stats, "--profiler", "cprofile", "--savestats"]).start()
        workers = C.start_workers(bench.children, bench.scratch, "loadclient.py", 2)
        t0 = time.monotonic()
        if args.scenario in ("storm", "update"):
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
