"""The peer channel: durable, acknowledged messages between two hubs, beside a TLS
stream with no storage.

Two real hubs (hubworker.py, one per process) peer through a real gateway, then one
sends to the other through ``Peers.send``: each message is committed to the sender's
SQLite outbox (WAL, synchronous=FULL), sent (at most the hub's ``max_inflight`` on the
wire), committed by the receiver to its inbox, acknowledged, and marked acknowledged
in the sender's outbox.  The clock runs from the first send to the last
acknowledgement.  Small: 100-character messages; large: 60 KiB (the most
``blockhub send`` accepts; 64 KiB frames are the wire limit).

The ceiling: a load process streams frames of the same sizes over TLS 1.3 to the
ceiling program, which acknowledges each (no storage), with the same window.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

SMALL = 100
LARGE = 60 * 1024
WINDOW = 256  # blockhub's default max_inflight


def main():
    p = C.standard_args(__doc__.splitlines()[0])
    p.add_argument("--small", type=int, help="small messages per repetition")
    p.add_argument("--large", type=int, help="60 KiB messages per repetition")
    args = p.parse_args()
    n_small = args.small or (500 if args.quick else 3000)
    n_large = args.large or (50 if args.quick else 300)
    results = {"small_count": n_small, "small_chars": SMALL, "large_count": n_large,
               "large_chars": LARGE, "window": WINDOW, "reps": args.reps}
    with C.Bench("peer") as bench:
        gw = C.Gateway(bench.children, bench.scratch).start()
        a = C.Worker(bench.children, bench.scratch, "hubworker.py", "hubA",
                     args=["--root", bench.scratch.path("a")])
        b = C.Worker(bench.children, bench.scratch, "hubworker.py", "hubB",
                     args=["--root", bench.scratch.path("b")])
        a.wait("ready", 60)
        b.wait("ready", 60)
        ceiling = C.Worker(bench.children, bench.scratch, "ceiling_server.py", "ceiling")
        port = ceiling.wait("ready", 30)["port"]
        client = C.Worker(bench.children, bench.scratch, "loadclient.py", "streamer")
        client.wait("ready", 60)
        client.call("connect", "connected", 30, system="ceiling", count=1, port=port)
        # a blockhub message frame carries {"at", "seq", "text"} around the text
        overhead = len('{"at":1700000000,"seq":100000,"text":""}')
        reps = []
        for rep in range(args.reps):
            # A fresh pair of hubs each repetition: the outbox's history slows it down
            # (measured separately below as "small_again").
            a_id = a.call("hubs", "hubs", 60, count=1, gateway=gw.spec, prefix="a")["ids"][0]
            b_id = b.call("hubs", "hubs", 60, count=1, gateway=gw.spec, prefix="b")["ids"][0]
            b.call("approve", "approved", 10, ids=[a_id])
            a.call("connect", "connecting", 10, pairs=[[rep, b_id]])
            a.wait("attached", 30, match=lambda e: e["peer"] == b_id)
            b.wait("attached", 30, match=lambda e: e["peer"] == a_id)
            r = {}
            for label, count, size in (("small", n_small, SMALL), ("large", n_large, LARGE),
                                       ("small_again", n_small, SMALL)):
                cpu_a, cpu_b = C.cpu_seconds(a.proc.pid), C.cpu_seconds(b.proc.pid)
                ev = a.call("send", "send_done", 300, index=rep, peer=b_id, count=count,
                            size=size, window=4 * WINDOW)
                dt = ev["t_last"] - ev["t_first"]
                r[f"{label}_msgs_s"] = count / dt
                r[f"{label}_MB_s"] = count * size / dt / 1e6
                r[f"{label}_sender_cpu"] = (C.cpu_seconds(a.proc.pid) - cpu_a) / dt
                r[f"{label}_receiver_cpu"] = (C.cpu_seconds(b.proc.pid) - cpu_b) / dt
                if label == "small_again":
                    continue
                ev = client.call("stream", "stream_done", 300, count=count,
                                 size=size + overhead, window=WINDOW)
                dt = ev["t_last"] - ev["t_first"]
                r[f"ceiling_{label}_msgs_s"] = count / dt
                r[f"ceiling_{label}_MB_s"] = count * size / dt / 1e6
            reps.append(r)
            print(f"  rep {rep + 1}: small {r['small_msgs_s']:,.0f} msg/s (ceiling "
                  f"{r['ceiling_small_msgs_s']:,.0f}); 60 KiB {r['large_MB_s']:.1f} MB/s "
                  f"(ceiling {r['ceiling_large_MB_s']:.1f})", flush=True)
        results["reps_detail"] = reps
        for key in reps[0]:
            results[key] = C.summary([r[key] for r in reps])
        results["small_again_ratio"] = C.ratio_summary(
            [r["small_again_msgs_s"] for r in reps], [r["small_msgs_s"] for r in reps])
        for label in ("small_msgs_s", "large_MB_s"):
            results[label + "_ratio"] = C.ratio_summary(
                [r[label] for r in reps], [r["ceiling_" + label] for r in reps])
        results["elapsed_s"] = bench.elapsed()
        path = C.write_result("peer", results, args.quick)
    R = results
    C.print_table(f"peer channel: durable acknowledged messages, one sender, window "
                  f"{WINDOW} (min / median / max of {args.reps})",
                  ["figure", "blockhub", "ceiling (TLS, no storage)", "ratio"],
                  [[f"{SMALL}-char messages", C.fmt_summary(R["small_msgs_s"], "msg/s"),
                    C.fmt_summary(R["ceiling_small_msgs_s"], "msg/s"),
                    C.fmt_summary(R["small_msgs_s_ratio"]) + " x"],
                   [f"{SMALL}-char, after {n_small} small + {n_large} large sent",
                    C.fmt_summary(R["small_again_msgs_s"], "msg/s"), "",
                    C.fmt_summary(R["small_again_ratio"]) + " x the first batch"],
                   ["60 KiB messages", C.fmt_summary(R["large_MB_s"], "MB/s"),
                    C.fmt_summary(R["ceiling_large_MB_s"], "MB/s"),
                    C.fmt_summary(R["large_MB_s_ratio"]) + " x"],
                   ["sender CPU (small)", C.fmt_summary(
                       {k: (v * 100 if isinstance(v, float) else v)
                        for k, v in R["small_sender_cpu"].items()}, "%"), "", ""],
                   ["receiver CPU (small)", C.fmt_summary(
                       {k: (v * 100 if isinstance(v, float) else v)
                        for k, v in R["small_receiver_cpu"].items()}, "%"), "", ""]])
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
