"""A gateway cluster on Redis (docs/cluster.md): what crossing nodes costs beside one node.

Each repetition starts a real ``redis-server`` (free port, scratch directory, nothing
on disk) and three real ``twistd -n blockhub-gateway --cluster`` nodes (private mode,
127.0.0.1), then, one after the other on that cluster:

storm     N hubs join, a third at each node (one load process per node); the CPU
          (utime+stime) of the three nodes, summed, from the first connect until every
          hub has heard of all N-1 others and the nodes went quiet, per join; Redis's
          CPU beside it.  Compared with the same N on one gateway alone (no
          ``--cluster``), started after the cluster has stopped, same load processes.
commands  Redis commands (``INFO commandstats``, every call, scripts' inner calls too)
          per presence event: K joins at node 1, K updates, K leaves, the background
          (heartbeats) measured over as long and taken off.
fan-out   F hubs on node 1, updater hubs on node 2 and on node 1: an update from a hub
          on node 2 until every hub has it, beside the same from a hub on node 1,
          interleaved; p50 and p99 of U each.
relay     P pairs, senders on node 1 and receivers on node 2, every sender relaying B
          sealed handshake requests at once (within the per-sender burst of 10; fresh
          identities each time), rate = delivered / (last delivery - first send);
          beside senders and receivers both on node 1, same load, and the same load
          on the lone gateway after the storm there; then relay latency one at a time
          (p50, p99) on the same connections.  Redis calls per relay beside each.

Every figure is taken ``--reps`` times and reported as min / median / max; a ratio is
per repetition (cross-node over same-node, cluster over alone).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402
from bench_presence import settle  # noqa: E402

NODES = 3
WORKERS = 3  # load processes: one per node in the storm, the first two elsewhere
DEAD_AFTER = 9  # --cluster-dead-after: heartbeats every 3 s, so nodes find each other fast


class Src:
    """Distinct loopback source addresses for every connect of a run."""

    def __init__(self):
        self.next = 0

    def take(self, n: int) -> int:
        base = self.next
        self.next += n + 10
        return base


def connect(worker, gw, count, src, concurrency=100, timeout=120.0):
    worker.send("connect", system="blockhub", count=count, port=gw.port, gateway=gw.id,
                concurrency=concurrency, src_base=src.take(count), timeout=timeout)


def connected(worker, timeout=180.0):
    e = worker.wait("connected", timeout)
    if e["failed"]:
        raise C.BenchError(f"{worker.name}: {e['failed']} connections failed: "
                           f"{e['errors'][:3]}")
    return e


def wait_lists(workers, n, timeout=180.0):
    """Every connection of every worker has heard of ``n`` others."""
    C.broadcast(workers, "expect_list", "list_done", timeout, n=n)


def close_all(workers, nodes, timeout=60.0):
    t0 = time.monotonic()
    C.broadcast(workers, "close", "closed", timeout)
    t1 = time.monotonic()
    wait_empty(nodes)
    if os.environ.get("BENCH_VERBOSE"):
        print(f"    closed in {t1 - t0:.1f}s, empty {time.monotonic() - t1:.1f}s later",
              flush=True)


def wait_empty(nodes, timeout=60.0):
    """No node holds a hub of its own or believes another node holds one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [gw.status() for gw in nodes]
        if all(s["online"] == 0 and all(n["hubs"] == 0 for n in
                                        s.get("cluster", {}).get("nodes", []))
               for s in statuses):
            return
        time.sleep(0.2)
    raise C.BenchError(f"hubs still listed {timeout:g}s after they closed")


def wait_cluster(nodes, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = True
        for gw in nodes:
            cluster = gw.status().get("cluster", {})
            ok = ok and cluster.get("state") == "connected" and \
                len(cluster.get("nodes", [])) == len(nodes)
        if ok:
            return
        time.sleep(0.2)
    raise C.BenchError(f"the nodes did not all see each other within {timeout:g}s")


def cpu_of(pids) -> float:
    return sum(C.cpu_seconds(pid) for pid in pids)


def check_alive(procs):
    for what, proc in procs:
        if proc.poll() is not None:
            raise C.BenchError(f"{what} exited with status {proc.returncode} during the "
                               f"measurement")


# -- storm ------------------------------------------------------------------------------
def storm(workers, gws, n, src, redis=None):
    """N hubs, split over ``gws`` (one load process each; with one gateway, every load
    process connects to it).  -> seconds, gateway CPU, redis CPU."""
    targets = gws if len(gws) == len(workers) else [gws[0]] * len(workers)
    per = C.split(n, len(workers))
    pids = [gw.pid for gw in gws]
    for gw in gws:
        settle(gw.pid)
    for w, k in zip(workers, per):
        w.send("expect_list", n=n - 1, conns=k)
    each0 = [C.cpu_seconds(pid) for pid in pids]
    cpu0 = sum(each0)
    r0 = C.cpu_seconds(redis.pid) if redis else 0.0
    t0 = time.monotonic()
    for w, gw, k in zip(workers, targets, per):
        connect(w, gw, k, src)
    for w in workers:
        connected(w)
    done = [w.wait("list_done", 300) for w in workers]
    seconds = max(e["t_last"] for e in done) - t0
    cpu_lists = cpu_of(pids) - cpu0
    for gw in gws:
        settle(gw.pid)
    each = [C.cpu_seconds(pid) - c for pid, c in zip(pids, each0)]
    cpu = sum(each)
    return {"storm_s": seconds, "cpu_s": cpu, "cpu_at_lists_s": cpu_lists,
            "cpu_ms_per_join": 1000 * cpu / n,
            "redis_cpu_s": (C.cpu_seconds(redis.pid) - r0) if redis else None,
            "redis_cpu_ms_per_join": (1000 * (C.cpu_seconds(redis.pid) - r0) / n)
            if redis else None,
            "per_node_cpu_s": each}


# -- commands per presence event ----------------------------------------------------------
def calls_since(redis, before) -> dict[str, int]:
    """Redis calls per command since ``before`` (a ``commandstats``), without ours."""
    after = redis.commandstats()
    return {c: n - before.get(c, 0) for c, n in after.items()
            if c not in OURS and n - before.get(c, 0)}


OURS = {"info", "ping"}  # what the benchmark itself sends


def commands_per_event(workers, nodes, redis, k, src):
    """K joins at node 1 (one load process), K updates, K leaves: Redis calls per event
    (every call, scripts' inner ones too), less the background (heartbeats) measured
    over an idle window as long."""
    w = workers[0]

    def joins():
        w.send("expect_list", n=k - 1, conns=k)
        connect(w, nodes[0], k, src, concurrency=20)
        connected(w)
        w.wait("list_done", 120)

    def updates():
        base = nodes[0].status()["counters"]["updates"]
        for i in range(k):
            w.call("update", "sent", 30, index=i)
        deadline = time.monotonic() + 30
        while nodes[0].status()["counters"]["updates"] < base + k:
            if time.monotonic() > deadline:
                raise C.BenchError("node 1 did not take every update")
            time.sleep(0.1)

    def leaves():
        C.broadcast([w], "close", "closed", 60)
        wait_empty(nodes)

    result = {"events_each": k}
    spans = {}
    for name, run in (("join", joins), ("update", updates), ("leave", leaves)):
        before, t0 = redis.commandstats(), time.monotonic()
        run()
        time.sleep(0.5)  # the last event's commands
        result[f"{name}_raw"] = calls_since(redis, before)
        spans[name] = time.monotonic() - t0
    window = max(spans.values())
    before = redis.commandstats()
    time.sleep(window)
    per_s = {c: n / window for c, n in calls_since(redis, before).items()}
    result["background_per_s"] = per_s
    for name, span in spans.items():
        net = {c: (n - per_s.get(c, 0) * span) / k
               for c, n in result[f"{name}_raw"].items()}
        result[f"{name}_calls"] = {c: round(v, 2) for c, v in net.items() if abs(v) > 0.05}
        result[f"{name}_commands"] = sum(net.values())
    return result


# -- fan-out -----------------------------------------------------------------------------
def fanout(workers, nodes, f, updates, src, gap=0.02, timeout=30.0):
    """F hubs on node 1 (two load processes) and M updaters on each of nodes 2 and 1
    (the first load process); -> {cross: [s...], same: [s...]}."""
    w0, w1 = workers[0], workers[1]
    m = max(1, -(-updates // 4))  # each updater within its burst of 5 (the join is free)
    per = C.split(f, 2)
    connect(w0, nodes[0], per[0], src)
    connect(w1, nodes[0], per[1], src)
    for w in (w0, w1):
        connected(w)
    connect(w0, nodes[1], m, src)
    connected(w0)
    connect(w0, nodes[0], m, src)
    connected(w0)
    total = f + 2 * m
    wait_lists([w0, w1], total - 1)
    cross0, same0 = per[0], per[0] + m
    counts = [per[0] + 2 * m - 1, per[1]]
    lat = {"cross": [], "same": []}
    for k in range(updates):
        for kind, first in (("cross", cross0), ("same", same0)):
            sent = w0.call("update", "sent", timeout, index=first + k % m)
            for w, c in zip((w0, w1), counts):
                w.send("expect_update", hub=sent["hub"], seq=sent["seq"], count=c)
            done = [w.wait("update_done", timeout) for w in (w0, w1)]
            lat[kind].append(max(e["t_last"] for e in done) - sent["t"])
            time.sleep(gap)
    close_all([w0, w1], nodes)
    return lat


# -- relay -------------------------------------------------------------------------------
def relay(workers, senders_at, receivers_at, pairs, burst, samples, src, nodes, redis):
    """P pairs over two load processes, receivers connected at ``receivers_at`` and
    senders at ``senders_at``; -> rate, latencies, Redis calls per relay."""
    ws = workers[:2]
    per = C.split(pairs, 2)
    for w, k in zip(ws, per):
        connect(w, receivers_at, k, src, concurrency=50)
    for w in ws:
        connected(w)
    for w, k in zip(ws, per):
        connect(w, senders_at, k, src, concurrency=50)
    for w in ws:
        connected(w)
    wait_lists(ws, 2 * pairs - 1)
    for w, k in zip(ws, per):
        w.call("pair", "paired", 10, senders=k, receivers=0, count=k)
    try:
        # one relay first: the node's first relay after Redis started loads the rate
        # script (EVALSHA, NOSCRIPT, EVAL); a burst as the first would load it per relay
        ws[0].call("pingpong", "pingpong_done", 30, samples=1, per_sender=1, gap=0)
        C.broadcast(ws, "reset", "reset", 10)
        calls0 = redis.commandstats() if redis else {}
        sent = C.broadcast(ws, "burst", "burst_sent", 30, count=burst)
        done = C.broadcast(ws, "expect_deliver", "deliver_done", 60,
                           per_worker=lambda i: {"n": burst * per[i]})
        total = sum(e["n"] for e in done)
        t_first = min(e["t_first"] for e in sent)
        t_last = max(e["t_last"] for e in done)
        refused = sum(e["refused"] for e in done)
        C.broadcast(ws, "reset", "reset", 10)
        lat = ws[0].call("pingpong", "pingpong_done", 120, samples=samples,
                         per_sender=max(1, 10 - burst), gap=0.005)["latencies"]
        calls = calls_since(redis, calls0) if redis else {}
        relays = total + len(lat)
        return {"redis_calls_per_relay": {c: round(n / relays, 2) for c, n in calls.items()},
                "redis_commands_per_relay": sum(calls.values()) / relays,
                "rate": total / (t_last - t_first), "delivered": total,
                "refused": refused, "burst_seconds": t_last - t_first,
                "latencies_s": lat, "p50_s": C.percentile(lat, 50),
                "p99_s": C.percentile(lat, 99)}
    finally:
        close_all(ws, nodes)


# -- one repetition ----------------------------------------------------------------------
def make_nodes(bench):
    profiles = os.environ.get("BENCH_PROFILE")  # DIR: each node under cProfile
    nodes = [C.Gateway(bench.children, bench.scratch, name=f"node{i + 1}",
                       twistd_args=["--profile", os.path.join(os.path.abspath(profiles),
                                                              f"node{i + 1}.pstats"),
                                    "--profiler", "cprofile", "--savestats"]
                       if profiles else ())
             for i in range(NODES)]
    keys = bench.scratch.path("cluster-keys")
    with open(keys, "w") as f:
        f.write("".join(f"{gw.id}\n" for gw in nodes))
    return nodes, keys


def run_cluster(bench, workers, nodes, keys, args, sizes):
    redis = C.Redis(bench.children, bench.scratch).start()
    src = Src()
    try:
        for gw in nodes:
            gw.extra = [*args.gateway_options, "--cluster", redis.url, "--cluster-keys",
                        keys, "--cluster-name", "bench", "--cluster-dead-after",
                        str(DEAD_AFTER)]
            gw.start()
        wait_cluster(nodes)
        procs = [("redis-server", redis.proc)] + [(gw.name, gw.proc) for gw in nodes]
        r = {"storm": storm(workers, nodes, sizes["storm"], src, redis)}
        close_all(workers, nodes)
        check_alive(procs)
        r["commands"] = commands_per_event(workers, nodes, redis, sizes["events"], src)
        check_alive(procs)
        lat = fanout(workers, nodes, sizes["fanout"], sizes["updates"], src)
        for kind in ("cross", "same"):
            r[f"fanout_{kind}_s"] = lat[kind]
            r[f"fanout_{kind}_p50_s"] = C.percentile(lat[kind], 50)
            r[f"fanout_{kind}_p99_s"] = C.percentile(lat[kind], 99)
        check_alive(procs)
        r["relay_cross"] = relay(workers, nodes[0], nodes[1], sizes["pairs"], args.burst,
                                 sizes["samples"], src, nodes, redis)
        r["relay_same"] = relay(workers, nodes[0], nodes[0], sizes["pairs"], args.burst,
                                sizes["samples"], src, nodes, redis)
        check_alive(procs)
        r["refused"] = [gw.status()["cluster"]["refused"] for gw in nodes]
        return r
    finally:
        for gw in nodes:
            gw.stop()
        redis.stop()


def run_alone(bench, workers, args, sizes):
    """The same storm and relay load on one gateway without ``--cluster``."""
    n = sizes["storm"]
    gw = C.Gateway(bench.children, bench.scratch, name="alone",
                   extra=args.gateway_options).start()
    try:
        src = Src()
        r = storm(workers, [gw], n, src)
        close_all(workers, [gw])
        r["relay"] = relay(workers, gw, gw, sizes["pairs"], args.burst, sizes["samples"],
                           src, [gw], None)
        check_alive([("the gateway", gw.proc)])
        return r
    finally:
        gw.stop()


FIGURES = [  # key in the summary, label, unit, scale
    ("fanout_cross_p50_s", "fan-out p50, update from node 2", "ms", 1000),
    ("fanout_same_p50_s", "fan-out p50, update from node 1", "ms", 1000),
    ("fanout_cross_p99_s", "fan-out p99, update from node 2", "ms", 1000),
    ("fanout_same_p99_s", "fan-out p99, update from node 1", "ms", 1000),
    ("relay_cross_rate", "relay rate, node 1 -> node 2", "msg/s", 1),
    ("relay_same_rate", "relay rate, within node 1", "msg/s", 1),
    ("relay_alone_rate", "relay rate, one gateway alone", "msg/s", 1),
    ("relay_cross_p50_s", "relay latency p50, node 1 -> node 2", "ms", 1000),
    ("relay_same_p50_s", "relay latency p50, within node 1", "ms", 1000),
    ("relay_cross_p99_s", "relay latency p99, node 1 -> node 2", "ms", 1000),
    ("relay_same_p99_s", "relay latency p99, within node 1", "ms", 1000),
    ("relay_alone_p99_s", "relay latency p99, one gateway alone", "ms", 1000),
    ("storm_cluster_cpu_ms_per_join", "storm: gateway CPU per join, 3 nodes", "ms", 1),
    ("storm_alone_cpu_ms_per_join", "storm: gateway CPU per join, alone", "ms", 1),
    ("storm_redis_cpu_ms_per_join", "storm: redis-server CPU per join", "ms", 1),
    ("storm_cluster_s", "storm: all lists complete, 3 nodes", "s", 1),
    ("storm_alone_s", "storm: all lists complete, alone", "s", 1),
    ("commands_per_join", "Redis calls per join", "", 1),
    ("commands_per_update", "Redis calls per update", "", 1),
    ("commands_per_leave", "Redis calls per leave", "", 1),
    ("commands_per_cross_relay", "Redis calls per relay, node 1 -> node 2", "", 1),
    ("commands_per_same_relay", "Redis calls per relay, within node 1", "", 1),
]
RATIOS = [  # name, numerator, denominator
    ("fanout_p99_cross_vs_same", "fanout_cross_p99_s", "fanout_same_p99_s"),
    ("fanout_p50_cross_vs_same", "fanout_cross_p50_s", "fanout_same_p50_s"),
    ("relay_rate_cross_vs_same", "relay_cross_rate", "relay_same_rate"),
    ("relay_rate_same_vs_alone", "relay_same_rate", "relay_alone_rate"),
    ("relay_p50_cross_vs_same", "relay_cross_p50_s", "relay_same_p50_s"),
    ("relay_p99_cross_vs_same", "relay_cross_p99_s", "relay_same_p99_s"),
    ("storm_cpu_cluster_vs_alone", "storm_cluster_cpu_ms_per_join",
     "storm_alone_cpu_ms_per_join"),
    ("storm_s_cluster_vs_alone", "storm_cluster_s", "storm_alone_s"),
]


def flatten(cluster, alone) -> dict:
    """One repetition's figures under the summary's keys."""
    rc, rs = cluster["relay_cross"], cluster["relay_same"]
    return {
        "fanout_cross_p50_s": cluster["fanout_cross_p50_s"],
        "fanout_same_p50_s": cluster["fanout_same_p50_s"],
        "fanout_cross_p99_s": cluster["fanout_cross_p99_s"],
        "fanout_same_p99_s": cluster["fanout_same_p99_s"],
        "relay_cross_rate": rc["rate"], "relay_same_rate": rs["rate"],
        "relay_alone_rate": alone["relay"]["rate"],
        "relay_alone_p99_s": alone["relay"]["p99_s"],
        "relay_cross_p50_s": rc["p50_s"], "relay_same_p50_s": rs["p50_s"],
        "relay_cross_p99_s": rc["p99_s"], "relay_same_p99_s": rs["p99_s"],
        "storm_cluster_cpu_ms_per_join": cluster["storm"]["cpu_ms_per_join"],
        "storm_alone_cpu_ms_per_join": alone["cpu_ms_per_join"],
        "storm_redis_cpu_ms_per_join": cluster["storm"]["redis_cpu_ms_per_join"],
        "storm_cluster_s": cluster["storm"]["storm_s"],
        "storm_alone_s": alone["storm_s"],
        "commands_per_join": cluster["commands"]["join_commands"],
        "commands_per_update": cluster["commands"]["update_commands"],
        "commands_per_leave": cluster["commands"]["leave_commands"],
        "commands_per_cross_relay": rc["redis_commands_per_relay"],
        "commands_per_same_relay": rs["redis_commands_per_relay"],
    }


def main():
    p = C.standard_args(__doc__.splitlines()[0])
    p.add_argument("--storm", type=int, help="hubs in the join storm")
    p.add_argument("--fanout", type=int, help="hubs on node 1 for the fan-out")
    p.add_argument("--updates", type=int, help="updates from each node per repetition")
    p.add_argument("--pairs", type=int, help="sender/receiver pairs for the relay")
    p.add_argument("--burst", type=int, default=5,
                   help="relays per sender at once (blockhub allows 10 at once)")
    p.add_argument("--samples", type=int, help="relay latency samples")
    p.add_argument("--events", type=int, help="joins, updates and leaves for the Redis "
                                              "command count")
    args = p.parse_args()
    q = args.quick
    sizes = {"storm": args.storm or (150 if q else 600),
             "fanout": args.fanout or (100 if q else 300),
             "updates": args.updates or (20 if q else 50),
             "pairs": args.pairs or (50 if q else 150),
             "samples": args.samples or (20 if q else 60),
             "events": args.events or (20 if q else 50)}
    sizes["samples"] = min(sizes["samples"], (sizes["pairs"] // 2) * (10 - args.burst))
    args.gateway_options = []
    results = {"sizes": sizes, "reps": args.reps, "burst": args.burst, "nodes": NODES,
               "workers": WORKERS, "dead_after_s": DEAD_AFTER, "reps_raw": []}
    if C.redis_binary() is None:
        raise SystemExit("bench_cluster: redis-server not found (apt-get install "
                         "redis-server)")
    with C.Bench("cluster") as bench:
        if C.gateway_supports("max-hubs", bench.scratch.env):
            biggest = max(sizes["storm"], sizes["fanout"], 2 * sizes["pairs"])
            args.gateway_options += ["--max-hubs", str(biggest + 200)]
        workers = C.start_workers(bench.children, bench.scratch, "loadclient.py", WORKERS)
        nodes, keys = make_nodes(bench)
        flat = []
        for rep in range(args.reps):
            t = time.monotonic()
            cluster = run_cluster(bench, workers, nodes, keys, args, sizes)
            alone = run_alone(bench, workers, args, sizes)
            results["reps_raw"].append({"cluster": cluster, "alone": alone})
            flat.append(flatten(cluster, alone))
            f = flat[-1]
            print(f"  rep {rep + 1}: fan-out p99 {1000 * f['fanout_cross_p99_s']:.1f} ms "
                  f"cross / {1000 * f['fanout_same_p99_s']:.1f} ms same; relay "
                  f"{f['relay_cross_rate']:,.0f} / {f['relay_same_rate']:,.0f} msg/s; "
                  f"storm CPU/join {f['storm_cluster_cpu_ms_per_join']:.2f} / "
                  f"{f['storm_alone_cpu_ms_per_join']:.2f} ms (redis "
                  f"{f['storm_redis_cpu_ms_per_join']:.2f}); calls/join "
                  f"{f['commands_per_join']:.1f} ({time.monotonic() - t:.0f}s)",
                  flush=True)
        for key, *_ in FIGURES:
            results[key] = C.summary([r[key] for r in flat])
        for name, a, b in RATIOS:
            results[name] = C.ratio_summary([r[a] for r in flat], [r[b] for r in flat])
        results["commands_detail"] = [r["cluster"]["commands"] for r in
                                      results["reps_raw"]]
        results["elapsed_s"] = bench.elapsed()
        path = C.write_result("cluster", results, args.quick)
    rows = []
    for key, label, unit, scale in FIGURES:
        s = results[key]
        scaled = {k: (v * scale if k in ("min", "median", "max") and v is not None else v)
                  for k, v in s.items()}
        rows.append([label, C.fmt_summary(scaled, unit)])
    for name, *_ in RATIOS:
        rows.append([name.replace("_", " "), C.fmt_summary(results[name]) + " x"])
    C.print_table(f"cluster: {NODES} nodes on one redis-server (min / median / max of "
                  f"{args.reps})", ["figure", "value"], rows)
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
