"""End-to-end handshakes: from ``connect`` to an established, authenticated peer link.

R requester hubs run in one process and V receiver hubs in another (hubworker.py: the
real hub service, each hub with its own sealed identity, SQLite store, gateway link and
peer listener), all admitted at one real ``twistd blockhub-gateway``.  Every receiver
has approved every requester's key (as ``--approve-key`` does), so requests are
accepted automatically.  One handshake is everything the CLI's ``blockhub connect``
sets off: the requester signs and seals the request and stores it; the gateway checks
the rate limit and relays it; the receiver opens it, checks signature, addressee,
freshness and nonce (stored), decides by policy, stores the request, dials the
requester over key-pinned TLS 1.3 with a signed peer-hello; the requester checks it
and answers peer-ready; both record the peering.  The clock stops when both hubs have
attached the link (the later of the two, each timed in its own process).

sequential  one handshake at a time: p50 and p99
burst       K handshakes started at once (different pairs): handshakes per second =
            K / (last link up - first connect), and their p50/p99 under that load
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402


def run_pairs(req, rcv, items, timeout=60.0):
    """Wait for both sides of each (requester, receiver, t0); per-handshake seconds and
    the time of the last link."""
    out, last = [], 0.0
    for hub, peer, t0 in items:
        a = req.wait("attached", timeout, match=lambda e: e["hub"] == hub and e["peer"] == peer)
        b = rcv.wait("attached", timeout, match=lambda e: e["hub"] == peer and e["peer"] == hub)
        t = max(a["t"], b["t"])
        out.append(t - t0)
        last = max(last, t)
    return out, last


def main():
    p = C.standard_args(__doc__.splitlines()[0])
    p.add_argument("--requesters", type=int)
    p.add_argument("--receivers", type=int)
    p.add_argument("--sequential", type=int, help="sequential handshakes per repetition")
    p.add_argument("--burst", type=int, help="handshakes started at once per repetition")
    args = p.parse_args()
    R = args.requesters or (10 if args.quick else 40)
    V = args.receivers or (10 if args.quick else 20)
    S = args.sequential or (10 if args.quick else 40)
    K = args.burst or (20 if args.quick else 60)
    total = args.reps * (S + K)
    if total > R * min(V, 10):
        raise SystemExit(f"{total} handshakes need more pairs than {R} x min({V}, 10)")
    results = {"requesters": R, "receivers": V, "sequential": S, "burst": K,
               "reps": args.reps}
    with C.Bench("handshake") as bench:
        extra = []
        if C.gateway_supports("max-unauthenticated-per-ip", bench.scratch.env):
            pass  # the hub workers start their hubs in batches below the default
        gw = C.Gateway(bench.children, bench.scratch, extra=extra).start()
        # BENCH_PROFILE=DIR writes cProfile statistics of both hub processes there (of
        # the bursts only).
        profile = os.environ.get("BENCH_PROFILE")

        def worker_args(name):
            extra = ["--profile", os.path.join(profile, f"{name}.prof")] if profile else []
            return ["--root", bench.scratch.path(name[:3]), *extra]

        req = C.Worker(bench.children, bench.scratch, "hubworker.py", "requesters",
                       args=worker_args("requesters"))
        rcv = C.Worker(bench.children, bench.scratch, "hubworker.py", "receivers",
                       args=worker_args("receivers"))
        req.wait("ready", 60)
        rcv.wait("ready", 60)
        req.send("hubs", count=R, gateway=gw.spec, prefix="r")
        rcv.send("hubs", count=V, gateway=gw.spec, prefix="v")
        req_ids = req.wait("hubs", 120)["ids"]
        rcv_ids = rcv.wait("hubs", 120)["ids"]
        rcv.call("approve", "approved", 30, ids=req_ids)
        k = 0

        def next_pairs(n):
            nonlocal k
            out = [[i % R, rcv_ids[i // R]] for i in range(k, k + n)]
            k += n
            return out

        reps = []
        for rep in range(args.reps):
            seq = []
            for pair in next_pairs(S):
                items = req.call("connect", "connecting", 30, pairs=[pair])["items"]
                lat, _ = run_pairs(req, rcv, items)
                seq += lat
                time.sleep(0.01)
            if profile:  # only the bursts
                req.call("profile", "profiling", 10, on=True)
                rcv.call("profile", "profiling", 10, on=True)
            procs = {"requesters": req.proc.pid, "gateway": gw.pid, "receivers": rcv.proc.pid}
            cpu0 = {n: C.cpu_seconds(pid) for n, pid in procs.items()}
            items = req.call("connect", "connecting", 30, pairs=next_pairs(K))["items"]
            burst_lat, last = run_pairs(req, rcv, items)
            cpu = {n: 1000 * (C.cpu_seconds(pid) - cpu0[n]) / K for n, pid in procs.items()}
            if profile:
                req.call("profile", "profiling", 10, on=False)
                rcv.call("profile", "profiling", 10, on=False)
            first = min(t0 for _h, _p, t0 in items)
            r = {"sequential_s": seq, "seq_p50_s": C.percentile(seq, 50),
                 "seq_p99_s": C.percentile(seq, 99), "burst_s": burst_lat,
                 "burst_p50_s": C.percentile(burst_lat, 50),
                 "burst_p99_s": C.percentile(burst_lat, 99),
                 "rate": K / (last - first), "cpu_ms_per_handshake": cpu}
            reps.append(r)
            print(f"  rep {rep + 1}: sequential p50 {1000 * r['seq_p50_s']:.1f} ms p99 "
                  f"{1000 * r['seq_p99_s']:.1f} ms; burst of {K}: {r['rate']:.0f}/s, p99 "
                  f"{1000 * r['burst_p99_s']:.0f} ms; CPU ms each: "
                  + ", ".join(f"{n} {v:.1f}" for n, v in cpu.items()), flush=True)
        results["reps_detail"] = reps
        for key in ("seq_p50_s", "seq_p99_s", "burst_p50_s", "burst_p99_s", "rate"):
            results[key] = C.summary([r[key] for r in reps])
        results["gateway_counters"] = gw.status().get("counters")
        results["elapsed_s"] = bench.elapsed()
        path = C.write_result("handshake", results, args.quick)
    ms = lambda x: {k: (v * 1000 if isinstance(v, float) else v) for k, v in x.items()}  # noqa: E731
    C.print_table(f"handshake: connect -> peer link up on both sides, auto-accept "
                  f"(min / median / max of {args.reps})",
                  ["figure", "value"],
                  [["sequential p50", C.fmt_summary(ms(results["seq_p50_s"]), "ms")],
                   ["sequential p99", C.fmt_summary(ms(results["seq_p99_s"]), "ms")],
                   [f"burst of {K}: handshakes/s", C.fmt_summary(results["rate"], "/s")],
                   [f"burst of {K}: p50", C.fmt_summary(ms(results["burst_p50_s"]), "ms")],
                   [f"burst of {K}: p99", C.fmt_summary(ms(results["burst_p99_s"]), "ms")]])
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
