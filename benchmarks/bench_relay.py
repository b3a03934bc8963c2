"""Relayed handshake requests through one gateway, beside the ceiling and the
magic-wormhole mailbox server.

P pairs of clients (sender, receiver) connect to each server from two load processes.
blockhub: every sender is its own hub (own key, own 127.x.y.z address) and relays a
real sealed handshake request (signed, sealed to the receiver; the gateway cannot open
it) to its partner; the gateway checks the sender's rate limit and delivers it (the
gateway runs with ``--relay-burst`` B + 10, so that the limit lets every burst and the
latency samples through).  The ceiling forwards opaque frames of the same size between
the same pairs.  The mailbox: each pair allocates and claims a nameplate, both open the
mailbox, and the sender ``add``s messages whose body is the same number of bytes (hex,
as the mailbox protocol wants); the server stores each in SQLite and sends it to both
sides.

saturation  every sender sends B messages at once (B = 40: 10,000 relays at 250
            pairs, a few hundred milliseconds; with the default burst of 10 a run
            lasted 20-50 ms and one pause of the scheduler moved the figure twice
            over); rate = messages delivered / (last delivery - first send)
latency     then, on the same connections, one message at a time from L senders in
            turn, each sent after the previous arrived: p50 and p99 of send -> deliver

Each repetition uses new connections (and so new identities and fresh rate-limit
buckets) and runs the three systems one after the other; ratios are per repetition.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

WORKERS = 2
LATENCY_ROOM = 10  # relays each sender may still make after its burst


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_mailbox(bench):
    port = free_port()
    log = bench.scratch.path("mailbox.log")
    argv = [C.TWISTD, "-n", "--pidfile", "", "wormhole-mailbox",
            "--port", f"tcp:{port}:interface=127.0.0.1",
            "--channel-db", bench.scratch.path("mailbox-channel.sqlite")]
    proc = bench.children.spawn(argv, log, env=bench.scratch.env, cwd=bench.scratch.root)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise C.BenchError(f"the mailbox server exited:\n{C.tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    raise C.BenchError(f"the mailbox server did not listen:\n{C.tail(log)}")


def one_rep(workers, system, port, gateway_id, pairs, burst, lat_senders, samples):
    per = C.split(pairs, len(workers))
    has_presence = system != "mailbox"
    if has_presence:
        for w, k in zip(workers, per):
            w.send("expect_list", n=2 * pairs - 1, conns=2 * k)
    for i, (w, k) in enumerate(zip(workers, per)):
        w.send("connect", system=system, count=2 * k, port=port, gateway=gateway_id,
               concurrency=50, src_base=i * 1_000_000 + int(time.time() * 1000) % 500_000,
               timeout=120, pairs=True)
    connected = [w.wait("connected", 150) for w in workers]
    failed = sum(e["failed"] for e in connected)
    if failed:
        raise C.BenchError(f"{system}: {failed} connections failed: "
                           f"{[x for e in connected for x in e['errors']][:3]}")
    if has_presence:
        for w in workers:
            w.wait("list_done", 120)
    try:
        C.broadcast(workers, "reset", "reset", 10)
        sent = C.broadcast(workers, "burst", "burst_sent", 30, count=burst)
        done = C.broadcast(workers, "expect_deliver", "deliver_done", 60,
                           per_worker=lambda i: {"n": burst * per[i]})
        total = sum(e["n"] for e in done)
        t_first = min(e["t_first"] for e in sent)
        t_last = max(e["t_last"] for e in done)
        refused = sum(e["refused"] for e in done)
        rate = total / (t_last - t_first)
        C.broadcast(workers, "reset", "reset", 10)
        lat = workers[0].call("pingpong", "pingpong_done", 120, samples=samples,
                              per_sender=LATENCY_ROOM, gap=0.005,
                              )["latencies"] if samples else []
        return {"rate": rate, "delivered": total, "refused": refused,
                "burst_seconds": t_last - t_first, "latencies_s": lat,
                "p50_s": C.percentile(lat, 50) if lat else None,
                "p99_s": C.percentile(lat, 99) if lat else None}
    finally:
        C.broadcast(workers, "close", "closed", 60)


def main():
    p = C.standard_args(__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, help="sender/receiver pairs (saturation)")
    p.add_argument("--burst", type=int, default=40, help="messages per sender at saturation")
    p.add_argument("--samples", type=int, help="latency samples per repetition")
    p.add_argument("--systems", default="blockhub,ceiling,mailbox")
    args = p.parse_args()
    pairs = args.pairs or (100 if args.quick else 250)
    samples = args.samples or (30 if args.quick else 100)
    lat_senders = min(pairs // WORKERS, 40)
    samples = min(samples, lat_senders * LATENCY_ROOM)
    systems = args.systems.split(",")
    results = {"pairs": pairs, "burst": args.burst, "samples": samples,
               "latency_senders": lat_senders, "reps": args.reps, "workers": WORKERS,
               "systems": {s: {"reps": []} for s in systems}}
    with C.Bench("relay") as bench:
        workers = C.start_workers(bench.children, bench.scratch, "loadclient.py", WORKERS)
        servers = {}
        gw = None
        if "blockhub" in systems:
            extra = []
            if C.gateway_supports("max-hubs", bench.scratch.env):
                extra += ["--max-hubs", str(4 * pairs + 100)]
            if C.gateway_supports("relay-burst", bench.scratch.env):
                extra += ["--relay-burst", str(args.burst + LATENCY_ROOM)]
            gw = C.Gateway(bench.children, bench.scratch, extra=extra).start()
            servers["blockhub"] = (gw.port, gw.id, gw.pid)
        if "ceiling" in systems:
            ceiling = C.Worker(bench.children, bench.scratch, "ceiling_server.py", "ceiling")
            servers["ceiling"] = (ceiling.wait("ready", 30)["port"], None, ceiling.proc.pid)
        if "mailbox" in systems:
            try:
                proc, port = start_mailbox(bench)
                servers["mailbox"] = (port, None, proc.pid)
            except (C.BenchError, OSError) as e:
                print(f"  mailbox server unavailable: {e}", flush=True)
                results["systems"]["mailbox"]["error"] = str(e)[:500]
                systems.remove("mailbox")
        sizes = workers[0].call("sizes", "sizes", 10)
        results["frame_bytes"] = sizes
        for rep in range(args.reps):
            for system in systems:
                port, gid, pid = servers[system]
                cpu0 = C.cpu_seconds(pid)
                try:
                    r = one_rep(workers, system, port, gid, pairs, args.burst, lat_senders,
                                samples)
                except C.BenchError as e:
                    if system != "mailbox":
                        raise
                    print(f"  mailbox failed: {e}", flush=True)
                    results["systems"]["mailbox"]["error"] = str(e)[:500]
                    continue
                r["server_cpu_s"] = C.cpu_seconds(pid) - cpu0
                results["systems"][system]["reps"].append(r)
                print(f"  rep {rep + 1} {system:8s}: {r['rate']:,.0f} msg/s "
                      f"(refused {r['refused']}), latency p50 "
                      f"{1000 * (r['p50_s'] or 0):.2f} ms p99 {1000 * (r['p99_s'] or 0):.2f} ms",
                      flush=True)
        if gw is not None:
            results["gateway_counters"] = gw.status().get("counters")
        for system in results["systems"]:
            reps = results["systems"][system]["reps"]
            for key in ("rate", "p50_s", "p99_s"):
                results["systems"][system][key] = C.summary([r[key] for r in reps])
        bh = results["systems"].get("blockhub", {}).get("reps", [])
        for other in ("ceiling", "mailbox"):
            o = results["systems"].get(other, {}).get("reps", [])
            if bh and o:
                for key in ("rate", "p50_s", "p99_s"):
                    results["systems"]["blockhub"][f"{key}_vs_{other}"] = C.ratio_summary(
                        [r[key] for r in bh], [r[key] for r in o])
        results["elapsed_s"] = bench.elapsed()
        path = C.write_result("relay", results, args.quick)
    rows = []
    for system in results["systems"]:
        s = results["systems"][system]
        if not s.get("reps"):
            rows.append([system, "-", "-", "-", s.get("error", "")[:60]])
            continue
        ms = lambda x: {k: (v * 1000 if isinstance(v, float) else v) for k, v in x.items()}  # noqa: E731
        note = ""
        if system == "blockhub":
            note = ", ".join(f"{k.split('_vs_')[0].replace('_s', '')}/{k.split('_vs_')[1]} "
                             f"{C.fmt(v['median'])}" for k, v in s.items()
                             if "_vs_" in k and v.get("median"))
        rows.append([system, C.fmt_summary(s["rate"], "msg/s"),
                     C.fmt_summary(ms(s["p50_s"]), "ms"), C.fmt_summary(ms(s["p99_s"]), "ms"),
                     note])
    C.print_table(f"relay: {pairs} pairs x {args.burst} at once; latency one at a time "
                  f"(min / median / max of {args.reps})",
                  ["system", "saturation rate", "latency p50", "latency p99",
                   "blockhub / other (median ratio)"], rows)
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
