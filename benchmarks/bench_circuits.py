"""Relay circuits: how long a relayed peering takes to come up, and what an idle
circuit costs the gateway in memory.

Each repetition starts a fresh real ``twistd blockhub-gateway`` and two fresh hub
processes (hubworker.py: the real hub service per hub).  The relay-only hubs run
``--peer-path relay``: every peering over a circuit through the gateway.  Receivers
have approved every requester's key (auto-accept, as ``--approve-key``).

set-up     S pairs one at a time, each from ``connect`` to the peer link attached on
           both sides: relay-only pairs, and for comparison S pairs of direct hubs
           (listening, dialing).  For a relayed pair, also the circuit's own part: from
           the requester (the TLS client) asking the gateway for the circuit
           (``Circuits.connect``, which sends ``circuit-open``) to the link attached on
           both sides (the gateway joining the two requests, ``circuit-ready``, TLS 1.3
           and peer-hello / peer-ready inside the circuit).
memory     A requesters x B receivers, all relay-only and all online; the gateway's RSS
           once it is quiet, then every requester connects to every receiver (N = A x
           B circuits, in B waves so that no hub has more than A / B circuits opening at once);
           once every link is up on both sides, shows ``relayed`` and the
           gateway is quiet again, its RSS again: (after - before) / N.  The hubs are
           online in both readings, so only the circuits (and what opening them left
           in the gateway's heap) count.

The gateway's limits are raised only where this load would meet them (circuits per
hub, relays per hub per minute); each hub keeps its default of everything else.
"""

import os
import queue
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402
from bench_presence import settle  # noqa: E402


def gateway_options(a, b):
    most = max(a, b) + 8
    return ["--max-circuits-per-hub", str(most), "--relay-burst", str(4 * most),
            "--relay-per-minute", str(60 * most)]


def drain(worker, ev, match):
    """Every ``ev`` event matching so far, taken out of the worker's queue."""
    while True:
        try:
            worker.pending.append(worker.events.get_nowait())
        except queue.Empty:
            break
    found = [e for e in worker.pending if e.get("ev") == ev and match(e)]
    worker.pending = [e for e in worker.pending if e not in found]
    return found


def peer_up(req, rcv, hub, peer, timeout=60.0):
    """The time both sides attached the link between hub and peer, and its path."""
    try:
        a = req.wait("attached", timeout,
                     match=lambda e: e["hub"] == hub and e["peer"] == peer)
        b = rcv.wait("attached", timeout,
                     match=lambda e: e["hub"] == peer and e["peer"] == hub)
    except C.BenchError as e:
        failed = drain(req, "circuit_failed", lambda e: e["hub"] == hub)
        raise C.BenchError(f"{hub} -> {peer} never peered; that hub's failed circuits: "
                           f"{[(f['peer'][:12], f['reason']) for f in failed]}\n{e}")
    if a["path"] != b["path"]:
        raise C.BenchError(f"{hub} -> {peer}: paths differ: {a['path']}, {b['path']}")
    return max(a["t"], b["t"]), a["path"]


def setup_times(req, rcv, pairs, path):
    """One pair at a time: connect -> both attached; for a relayed pair also the
    circuit's part (the last ask before the link came up)."""
    total, circuit, asks = [], [], []
    for index, hub, peer in pairs:
        t0 = req.call("connect", "connecting", 30, pairs=[[index, peer]])["items"][0][2]
        t, got = peer_up(req, rcv, hub, peer)
        if got != path:
            raise C.BenchError(f"a {path} pair {hub} -> {peer} came up {got}")
        total.append(t - t0)
        if path == "relayed":
            asked = [e["t"] for e in drain(req, "circuit_asked",
                                           lambda e: e["hub"] == hub and e["peer"] == peer)]
            if not asked:
                raise C.BenchError(f"relayed pair {hub} -> {peer}: no circuit asked for")
            asks.append(len(asked))
            circuit.append(t - max(x for x in asked if x <= t))
        time.sleep(0.01)
    return total, circuit, asks


def check_relayed(gw, hubs_dirs, want, timeout=5.0):
    """Every relay-only hub's ``peers`` (as ``blockhub peers --json``) lists its
    peerings connected, relayed, via this gateway, with no address, within ``timeout``
    (a link is attached just before its record is committed)."""
    from blockhub.control.client import call
    deadline = time.monotonic() + timeout
    while True:
        links = 0
        for data_dir in hubs_dirs:
            for row in call(data_dir, "peers", timeout=30):
                if not row["connected"] or row["path"] != "relayed" \
                        or row["via"] != gw.id or row["address"]:
                    raise C.BenchError(f"{data_dir}: a peering is not relayed: {row}")
                links += 1
        if links == want:
            return
        if time.monotonic() > deadline:
            raise C.BenchError(f"{links} relayed links listed, {want} expected")
        time.sleep(0.05)


def one_rep(bench, rep, args):
    A, B, S = args.requesters, args.receivers, args.sequential
    gw = C.Gateway(bench.children, bench.scratch, name=f"gateway{rep}",
                   extra=gateway_options(A, B)).start()
    req = C.Worker(bench.children, bench.scratch, "hubworker.py", f"req{rep}",
                   args=["--root", bench.scratch.path(f"req{rep}")])
    rcv = C.Worker(bench.children, bench.scratch, "hubworker.py", f"rcv{rep}",
                   args=["--root", bench.scratch.path(f"rcv{rep}")])
    try:
        req.wait("ready", 60)
        rcv.wait("ready", 60)
        made = {}
        for w, name, count, peer_path in ((req, "da", S, "auto"), (rcv, "db", S, "auto"),
                                          (req, "ra", A + S, "relay"),
                                          (rcv, "rb", B + 1, "relay")):
            made[name] = w.call("hubs", "hubs", 120, count=count, gateway=gw.spec,
                                prefix=name, peer_path=peer_path)
        rcv.call("approve", "approved", 30, ids=made["da"]["ids"] + made["ra"]["ids"])

        def pairs(a, b, n):
            return [(made[a]["first"] + i, made[a]["ids"][i], made[b]["ids"][i % len(
                made[b]["ids"])]) for i in range(n)]

        r = {}
        direct, _, _ = setup_times(req, rcv, pairs("da", "db", S), "direct")
        # the relay set-up pairs: the first S requesters, each with the spare receiver
        spare = made["rb"]["ids"][B]
        seq = [(made["ra"]["first"] + A + i, made["ra"]["ids"][A + i], spare)
               for i in range(S)]
        relayed, circuit, asks = setup_times(req, rcv, seq, "relayed")
        for name, values in (("direct_setup", direct), ("relayed_setup", relayed),
                             ("circuit_setup", circuit)):
            r[f"{name}_p50_s"] = C.percentile(values, 50)
            r[f"{name}_p99_s"] = C.percentile(values, 99)
            r[f"{name}_s"] = values
        r["circuit_asks"] = asks
        # memory: A x B idle circuits
        settle(gw.pid)
        before = C.rss_kib(gw.pid)
        circuits0 = gw.status()["circuits"]["count"]
        t0 = time.monotonic()
        for wave in range(B):
            # Each receiver takes A / B new circuits at a time: a hub drops peer
            # connections beyond --max-unopened-per-ip (8) still opening from one
            # address, and every circuit's address is "circuit".
            grid = [[made["ra"]["first"] + i, made["rb"]["ids"][(i + wave) % B]]
                    for i in range(A)]
            items = req.call("connect", "connecting", 30, pairs=grid)["items"]
            for hub, peer, _t in items:
                _t, path = peer_up(req, rcv, hub, peer, timeout=args.timeout)
                if path != "relayed":
                    raise C.BenchError(f"{hub} -> {peer} came up {path}")
        r["open_all_s"] = time.monotonic() - t0
        n = gw.status()["circuits"]["count"] - circuits0
        if n != A * B:
            raise C.BenchError(f"the gateway carries {n} new circuits, {A * B} expected")
        check_relayed(gw, made["ra"]["dirs"][:A], A * B)
        settle(gw.pid)
        after = C.rss_kib(gw.pid)
        r.update(n_circuits=n, rss_before_kib=before, rss_after_kib=after,
                 rss_per_circuit_kib=(after - before) / n,
                 gateway_counters=gw.status().get("counters"))
        return r
    finally:
        for proc in (req.proc, rcv.proc):
            C.Children.stop(proc)
            if proc in bench.children.procs:
                bench.children.procs.remove(proc)
        gw.stop()


def main():
    p = C.standard_args(__doc__.splitlines()[0])
    p.add_argument("--requesters", type=int, help="A: relay-only requesters (memory)")
    p.add_argument("--receivers", type=int, help="B: relay-only receivers (memory)")
    p.add_argument("--sequential", type=int, help="S: pairs timed one at a time, each path")
    p.add_argument("--timeout", type=float, default=120.0)
    args = p.parse_args()
    args.requesters = args.requesters or (10 if args.quick else 20)
    args.receivers = args.receivers or (5 if args.quick else 10)
    args.sequential = args.sequential or (5 if args.quick else 15)
    results = {"requesters": args.requesters, "receivers": args.receivers,
               "circuits": args.requesters * args.receivers,
               "sequential": args.sequential, "reps": args.reps}
    with C.Bench("circuits") as bench:
        reps = []
        for rep in range(args.reps):
            r = one_rep(bench, rep, args)
            reps.append(r)
            print(f"  rep {rep + 1}: connect -> peered p50 direct "
                  f"{1000 * r['direct_setup_p50_s']:.1f} ms, relayed "
                  f"{1000 * r['relayed_setup_p50_s']:.1f} ms (circuit asked -> peered "
                  f"{1000 * r['circuit_setup_p50_s']:.1f} ms); {r['n_circuits']} idle "
                  f"circuits: {r['rss_per_circuit_kib']:.1f} KiB each "
                  f"({r['rss_before_kib']} -> {r['rss_after_kib']} KiB)", flush=True)
        results["reps_detail"] = reps
        for key, value in reps[0].items():
            if isinstance(value, (int, float)):
                results[key] = C.summary([r[key] for r in reps])
        for kind in ("p50", "p99"):
            results[f"relayed_vs_direct_{kind}"] = C.ratio_summary(
                [r[f"relayed_setup_{kind}_s"] for r in reps],
                [r[f"direct_setup_{kind}_s"] for r in reps])
        results["elapsed_s"] = bench.elapsed()
        path = C.write_result("circuits", results, args.quick)
    ms = lambda x: {k: (v * 1000 if isinstance(v, float) else v)  # noqa: E731
                    for k, v in x.items()}
    R = results
    C.print_table(f"relay circuits (min / median / max of {args.reps})",
                  ["figure", "value", "comparison", "ratio"],
                  [["connect -> peered, relayed, p50",
                    C.fmt_summary(ms(R["relayed_setup_p50_s"]), "ms"),
                    C.fmt_summary(ms(R["direct_setup_p50_s"]), "ms (direct)"),
                    C.fmt_summary(R["relayed_vs_direct_p50"]) + " x"],
                   ["connect -> peered, relayed, p99",
                    C.fmt_summary(ms(R["relayed_setup_p99_s"]), "ms"),
                    C.fmt_summary(ms(R["direct_setup_p99_s"]), "ms (direct)"),
                    C.fmt_summary(R["relayed_vs_direct_p99"]) + " x"],
                   ["circuit asked -> peered, p50",
                    C.fmt_summary(ms(R["circuit_setup_p50_s"]), "ms"), "", ""],
                   ["circuit asked -> peered, p99",
                    C.fmt_summary(ms(R["circuit_setup_p99_s"]), "ms"), "", ""],
                   [f"gateway RSS per idle circuit, N={R['circuits']}",
                    C.fmt_summary(R["rss_per_circuit_kib"], "KiB"), "", ""],
                   [f"opening {R['circuits']} relayed peerings, {R['receivers']} waves",
                    C.fmt_summary(R["open_all_s"], "s"), "", ""]])
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
