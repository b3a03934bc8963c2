"""Capacity, join storm and presence fan-out of one gateway process, beside the ceiling.

For each size N and each repetition, on a freshly started server (a real ``twistd
blockhub-gateway``, then the ceiling program):

1. join storm: the load processes open N hub connections (at most ``--concurrency``
   TLS handshakes in flight per process, each from its own 127.x.y.z address) and the
   time runs from the first connect until every hub has heard of all N-1 others;
2. capacity: after a short settle, the server's VmRSS minus its VmRSS before the storm,
   per admitted hub; then its CPU time (utime+stime) over one keepalive period with
   everything at rest (keepalives running both ways);
3. fan-out: U hubs in turn (a different one each time, below the update rate limit)
   send a new signed HubInfo; the time from the send until the last of the other N-1
   hubs has received it, p50 and p99 over the U updates.

Each figure is taken ``--reps`` times (fresh server each time) and reported as
min / median / max; ratios to the ceiling are per repetition (same run, interleaved).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

WORKERS = 2


BIG = 5000
# Two of the gateway's heap checks (blockhub.net.heap.INTERVAL): a storm's end is
# trimmed at the second after its last join.
HEAP_WAIT = 11.0


def settle(pid, quiet_for=0.5, timeout=20.0):
    """Wait until the process used almost no CPU for ``quiet_for`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c0 = C.cpu_seconds(pid)
        time.sleep(quiet_for)
        if C.cpu_seconds(pid) - c0 < 0.1 * quiet_for:
            return
    print(f"  (process {pid} did not settle within {timeout:g}s)", flush=True)


def storm(workers, system, n, port, gateway_id, concurrency, timeout):
    """Connect N hubs; return (storm seconds, admitted, failed, errors)."""
    per = C.split(n, len(workers))
    for w, k in zip(workers, per):
        w.send("expect_list", n=n - 1, conns=k)
    t0 = time.monotonic()
    for i, (w, k) in enumerate(zip(workers, per)):
        w.send("connect", system=system, count=k, port=port, gateway=gateway_id,
               concurrency=concurrency, src_base=i * 1_000_000, timeout=timeout)
    connected = [w.wait("connected", timeout + 30) for w in workers]
    retried = sum(e.get("retried", 0) for e in connected)
    if retried:
        print(f"  ({retried} hubs dropped before admission tried again)", flush=True)
    ok = sum(e["ok"] for e in connected)
    failed = sum(e["failed"] for e in connected)
    errors = [x for e in connected for x in e["errors"]][:5]
    if failed:
        return None, ok, failed, errors, connected
    done = [w.wait("list_done", timeout) for w in workers]
    return max(e["t_last"] for e in done) - t0, ok, failed, errors, connected


def fanout(workers, connected, n, updates, timeout=30.0, gap=0.02):
    """U updates from distinct hubs; list of seconds until all others have each."""
    per = [len(e["ids"]) for e in connected]
    latencies = []
    for k in range(updates):
        wi = k % len(workers)
        index = (k // len(workers)) % per[wi]
        sent = workers[wi].call("update", "sent", timeout, index=index)
        for j, w in enumerate(workers):
            w.send("expect_update", hub=sent["hub"], seq=sent["seq"],
                   count=per[j] - (1 if j == wi else 0))
        done = [w.wait("update_done", timeout) for w in workers]
        latencies.append(max(e["t_last"] for e in done) - sent["t"])
        time.sleep(gap)
    return latencies


def close_all(workers, timeout=60.0):
    C.broadcast(workers, "close", "closed", timeout)


class ServerDied(C.BenchError):
    """The server under test exited during a repetition (not by our hand)."""


def attempt(what, run, *a):
    """Run one repetition; once more if its server died under it (the machine is shared:
    say so in the output rather than lose the figure)."""
    try:
        return run(*a)
    except C.BenchError as e:
        if not isinstance(e, ServerDied) and "exited" not in str(e):
            raise
        print(f"  !! {what}: {str(e).splitlines()[0]}; repeating this repetition", flush=True)
        return run(*a)


def check_alive(proc, what):
    if proc.poll() is not None:
        raise ServerDied(f"{what} exited with status {proc.returncode} during the "
                         f"measurement")


def run_blockhub(bench, workers, n, args, idle, window, updates):
    gw = C.Gateway(bench.children, bench.scratch, name="gateway", idle_timeout=idle,
                   extra=args.gateway_options).start()
    try:
        time.sleep(0.3)
        rss0 = C.rss_kib(gw.pid)
        cpu0 = C.cpu_seconds(gw.pid)
        seconds, ok, failed, errors, connected = storm(
            workers, "blockhub", n, gw.port, gw.id, args.concurrency, args.timeout)
        storm_cpu = C.cpu_seconds(gw.pid) - cpu0
        if seconds is None:
            raise C.BenchError(f"blockhub N={n}: {failed} of {n} hubs not admitted: {errors}")
        online = gw.status()["online"]
        settle(gw.pid)
        time.sleep(HEAP_WAIT)  # the gateway gives a storm's freed heap back (net/heap.py)
        rss1 = C.rss_kib(gw.pid)
        c0, t0 = C.cpu_seconds(gw.pid), time.monotonic()
        time.sleep(window)
        rest = (C.cpu_seconds(gw.pid) - c0) / (time.monotonic() - t0)
        check_alive(gw.proc, "the gateway")
        try:
            lat = fanout(workers, connected, n, updates) if updates else []
        except C.BenchError:
            check_alive(gw.proc, "the gateway")
            raise
        return {"storm_s": seconds, "storm_cpu_s": storm_cpu, "online": online,
                "retried": sum(e.get("retried", 0) for e in connected),
                "rss_before_kib": rss0, "rss_after_kib": rss1,
                "rss_per_hub_kib": (rss1 - rss0) / n, "cpu_rest_frac": rest,
                "fanout_s": lat, "fanout_p50_s": C.percentile(lat, 50) if lat else None,
                "fanout_p99_s": C.percentile(lat, 99) if lat else None}
    finally:
        gw.stop()
        close_all(workers)


def run_ceiling(bench, workers, n, args, updates):
    server = C.Worker(bench.children, bench.scratch, "ceiling_server.py", "ceiling")
    try:
        port = server.wait("ready", 30)["port"]
        pid = server.proc.pid
        time.sleep(0.3)
        rss0 = C.rss_kib(pid)
        cpu0 = C.cpu_seconds(pid)
        seconds, ok, failed, errors, connected = storm(
            workers, "ceiling", n, port, None, args.concurrency, args.timeout)
        storm_cpu = C.cpu_seconds(pid) - cpu0
        if seconds is None:
            raise C.BenchError(f"ceiling N={n}: {failed} of {n} not admitted: {errors}")
        settle(pid)
        rss1 = C.rss_kib(pid)
        check_alive(server.proc, "the ceiling server")
        lat = fanout(workers, connected, n, updates) if updates else []
        return {"storm_s": seconds, "storm_cpu_s": storm_cpu, "rss_before_kib": rss0,
                "rss_after_kib": rss1, "rss_per_hub_kib": (rss1 - rss0) / n,
                "fanout_s": lat, "fanout_p50_s": C.percentile(lat, 50) if lat else None,
                "fanout_p99_s": C.percentile(lat, 99) if lat else None}
    finally:
        C.Children.stop(server.proc)
        close_all(workers)


FIGURES = [  # key, label, unit, scale
    ("storm_s", "join storm: all lists complete", "s", 1),
    ("storm_cpu_s", "join storm: server CPU", "s", 1),
    ("rss_per_hub_kib", "RSS per admitted hub", "KiB", 1),
    ("cpu_rest_frac", "CPU at rest (keepalives)", "%", 100),
    ("fanout_p50_s", "fan-out p50", "ms", 1000),
    ("fanout_p99_s", "fan-out p99", "ms", 1000),
]


def measure_size(bench, workers, n, args, idle, window, updates, bh, ce):
    """The repetitions of one size, appended to ``bh`` and ``ce`` as they complete."""
    for rep in range(args.reps if n < args.big else 1):
        t = time.monotonic()
        bh.append(attempt(f"blockhub N={n}", run_blockhub, bench, workers, n, args,
                          idle, window, updates))
        print(f"  N={n} rep {rep + 1}: blockhub storm {bh[-1]['storm_s']:.2f}s "
              f"rss/hub {bh[-1]['rss_per_hub_kib']:.0f} KiB "
              f"p99 {1000 * (bh[-1]['fanout_p99_s'] or 0):.1f} ms "
              f"({time.monotonic() - t:.0f}s)", flush=True)
        if not args.no_ceiling:
            ce.append(attempt(f"ceiling N={n}", run_ceiling, bench, workers, n,
                              args, updates))
            print(f"  N={n} rep {rep + 1}: ceiling  storm {ce[-1]['storm_s']:.2f}s "
                  f"rss/conn {ce[-1]['rss_per_hub_kib']:.0f} KiB "
                  f"p99 {1000 * (ce[-1]['fanout_p99_s'] or 0):.1f} ms", flush=True)


def main():
    p = C.standard_args(__doc__.splitlines()[0])
    p.add_argument("--sizes", help="comma-separated hub counts (default by mode)")
    p.add_argument("--updates", type=int, help="HubInfo updates per repetition")
    p.add_argument("--concurrency", type=int, default=100,
                   help="TLS handshakes in flight per load process")
    p.add_argument("--timeout", type=float, default=900.0)
    p.add_argument("--no-ceiling", action="store_true")
    p.add_argument("--fanout-max", type=int, default=2000,
                   help="measure fan-out only up to this N (capacity only above)")
    p.add_argument("--big", type=int, default=BIG,
                   help="from this N on, one repetition (a storm of 10,000 takes minutes)")
    args = p.parse_args()
    if args.sizes:
        sizes = [int(x) for x in args.sizes.split(",")]
    else:
        sizes = [100, 300] if args.quick else [100, 300, 1000, 10000]
    updates = args.updates or (20 if args.quick else 50)
    # Hubs ping their gateway after idle/2 s of silence, as blockhub's do; CPU at rest is
    # read over exactly one such period.  The full run uses the default keepalive (idle
    # 60 s), as issue 20's target says.
    idle = 6.0 if args.quick else 60.0
    window = idle / 2.0
    args.gateway_options = []
    results = {"sizes": sizes, "reps": args.reps, "updates": updates,
               "idle_timeout_s": idle, "cpu_window_s": window, "workers": WORKERS,
               "concurrency": args.concurrency, "blockhub": {}, "ceiling": {}}
    with C.Bench("presence") as bench:
        if C.gateway_supports("max-hubs", bench.scratch.env):
            args.gateway_options += ["--max-hubs", str(max(sizes) + 100)]
        workers = C.start_workers(bench.children, bench.scratch, "loadclient.py", WORKERS)
        for n in sizes:
            u = updates if n <= args.fanout_max else 0
            bh, ce = [], []
            try:
                measure_size(bench, workers, n, args, idle, window, u, bh, ce)
            except C.BenchError as e:
                # A size that could not be measured (hubs not admitted on a slow machine)
                # loses its own figures only; the run goes on and fails at its end.
                print(f"  !! N={n}: not measured: {str(e).splitlines()[0][:300]}", flush=True)
                results.setdefault("errors", {})[str(n)] = str(e)[:1000]
            results["blockhub"][str(n)] = {"reps": bh}
            results["ceiling"][str(n)] = {"reps": ce}
            for key, *_ in FIGURES:
                results["blockhub"][str(n)][key] = C.summary([r.get(key) for r in bh])
                if ce and key in ce[0]:
                    results["ceiling"][str(n)][key] = C.summary([r.get(key) for r in ce])
                    results["blockhub"][str(n)][key + "_ratio"] = C.ratio_summary(
                        [r.get(key) for r in bh], [r.get(key) for r in ce])
        results["elapsed_s"] = bench.elapsed()
        path = C.write_result("presence", results, args.quick)
        failed = results.get("errors")
    rows = []
    for n in sizes:
        b, c = results["blockhub"][str(n)], results["ceiling"][str(n)]
        for key, label, unit, scale in FIGURES:
            if b[key]["median"] is None:
                continue
            scaled = {k: (v * scale if isinstance(v, float | int) and k != "n" else v)
                      for k, v in b[key].items()}
            cs = c.get(key)
            ceiling = ({k: (v * scale if isinstance(v, float | int) and k != "n" else v)
                        for k, v in cs.items()} if cs else None)
            ratio = b.get(key + "_ratio")
            rows.append([n, label, C.fmt_summary(scaled, unit),
                         C.fmt_summary(ceiling, unit) if ceiling else "-",
                         C.fmt_summary(ratio) + " x" if ratio and ratio["median"] else "-"])
    C.print_table(f"presence: capacity, join storm, fan-out (min / median / max of "
                  f"{args.reps}; blockhub / ceiling per repetition)",
                  ["N", "figure", "blockhub", "ceiling", "ratio"], rows)
    print(f"\nwritten {path}")
    if failed:
        sys.exit(f"not measured: N={', '.join(failed)}")


if __name__ == "__main__":
    main()
