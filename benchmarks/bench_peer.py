"""The peer channel, direct and over a relay circuit: durable, acknowledged messages
between two hubs, beside a TLS stream with no storage and beside a bare TLS splice.

Two real hubs (hubworker.py, one per process) peer through a real gateway, then one
sends to the other through ``Peers.send``: each message is committed to the sender's
SQLite outbox (WAL, synchronous=FULL), sent (at most the hub's ``max_inflight`` on the
wire), committed by the receiver to its inbox, acknowledged, and marked acknowledged
in the sender's outbox.  The clock runs from the first send to the last
acknowledgement.  Small: 100-character messages; large: 60 KiB (the most
``blockhub send`` accepts; 64 KiB frames are the wire limit).

Each repetition does this twice, on a fresh pair each time: **direct** (both hubs
listen and one dials the other) and **relayed** (both hubs run ``--peer-path relay``,
so their peering runs over a relay circuit through the gateway, with the peer TLS
inside it).  Both pairs' ``peers`` (what ``blockhub peers --json`` shows) must say
the path asked for, else the benchmark fails.  During the relayed 60 KiB run the
gateway's CPU time is taken, divided by the MiB its ``status`` says the circuits
carried.  The gateway runs with its circuit rate limits raised out of the way (the
defaults hold a circuit to 1 MiB/s by design); everything else is default.

The ceilings: a load process streams frames of the same sizes over TLS 1.3 to the
ceiling program, which acknowledges each (no storage), with the same window; and the
same stream end to end over TLS 1.3 between two load processes through
``ceiling_splice.py``, which terminates each one's TLS and copies bytes across.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

SMALL = 100
LARGE = 60 * 1024
WINDOW = 256  # blockhub's default max_inflight
MIB = 1024 * 1024
# Far above what one circuit carries here: the benchmark measures the relaying, not
# the rate limits (docs/circuits.md: 1 MiB/s per circuit and 20 MiB/s in all by default).
UNLIMITED_CIRCUITS = ["--circuit-rate", str(1 << 30), "--circuit-burst", str(1 << 26),
                      "--circuit-bandwidth", str(1 << 30)]
# a blockhub message frame carries {"at", "seq", "text"} around the text
OVERHEAD = len('{"at":1700000000,"seq":100000,"text":""}')


def check_path(a, b, pair, path, gw, timeout=5.0):
    """Both hubs' ``peers`` (as ``blockhub peers --json``) show the peering on ``path``
    (relayed: via this gateway, no address) within ``timeout`` (a link is attached
    before its record is committed); otherwise stop the benchmark."""
    from blockhub.control.client import call
    for worker, data_dir, peer in ((a, pair["a_dir"], pair["b_id"]),
                                   (b, pair["b_dir"], pair["a_id"])):
        deadline = time.monotonic() + timeout
        while True:
            rows = [r for r in call(data_dir, "peers", timeout=30) if r["id"] == peer]
            row = rows[0] if rows else None
            bad = (row is None or not row["connected"] or row["path"] != path
                   or (path == "relayed" and (row["via"] != gw.id or row["address"])))
            if not bad:
                break
            if time.monotonic() > deadline:
                raise C.BenchError(f"hub {worker.name}: the peering was to be {path}, "
                                   f"but peers --json shows {row}")
            time.sleep(0.05)


def make_pair(a, b, gw, rep, path):
    """A fresh pair of hubs, ``a`` dialing ``b``, peered on ``path``."""
    peer_path = "relay" if path == "relayed" else "auto"
    made_a = a.call("hubs", "hubs", 60, count=1, gateway=gw.spec, prefix=f"a{path[0]}",
                    peer_path=peer_path)
    made_b = b.call("hubs", "hubs", 60, count=1, gateway=gw.spec, prefix=f"b{path[0]}",
                    peer_path=peer_path)
    pair = {"a": made_a["first"], "a_id": made_a["ids"][0], "a_dir": made_a["dirs"][0],
            "b_id": made_b["ids"][0], "b_dir": made_b["dirs"][0]}
    b.call("approve", "approved", 10, ids=[pair["a_id"]])
    t0 = a.call("connect", "connecting", 10, pairs=[[pair["a"], pair["b_id"]]])["items"][0][2]
    ends = [a.wait("attached", 60, match=lambda e: e["peer"] == pair["b_id"]),
            b.wait("attached", 60, match=lambda e: e["peer"] == pair["a_id"])]
    if any(e["path"] != path for e in ends):
        raise C.BenchError(f"rep {rep + 1}: a {path} pair attached "
                           f"{[e['path'] for e in ends]}")
    check_path(a, b, pair, path, gw)
    pair["peered_s"] = max(e["t"] for e in ends) - t0
    return pair


def send(a, b, pair, count, size, r, label, gw=None):
    cpu_a, cpu_b = C.cpu_seconds(a.proc.pid), C.cpu_seconds(b.proc.pid)
    if gw is not None:
        carried = gw.status()["circuits"]["bytes"]
        cpu_gw = C.cpu_seconds(gw.pid)
    ev = a.call("send", "send_done", 300, index=pair["a"], peer=pair["b_id"], count=count,
                size=size, window=4 * WINDOW)
    dt = ev["t_last"] - ev["t_first"]
    if gw is not None:
        cpu_gw = C.cpu_seconds(gw.pid) - cpu_gw
        mib = (gw.status()["circuits"]["bytes"] - carried) / MIB
        r[f"{label}_gateway_cpu_ms_per_MiB"] = 1000 * cpu_gw / mib if mib else None
        r[f"{label}_gateway_MiB"] = mib
        r[f"{label}_gateway_cpu"] = cpu_gw / dt
    r[f"{label}_msgs_s"] = count / dt
    r[f"{label}_MB_s"] = count * size / dt / 1e6
    r[f"{label}_sender_cpu"] = (C.cpu_seconds(a.proc.pid) - cpu_a) / dt
    r[f"{label}_receiver_cpu"] = (C.cpu_seconds(b.proc.pid) - cpu_b) / dt


def stream(worker, count, size, r, label, observed=None):
    """The stream through a ceiling program; ``observed`` (the splice) has its CPU
    taken and divided by the MiB it copied."""
    if observed is not None:
        cpu = C.cpu_seconds(observed.proc.pid)
        carried = observed.call("stats", "stats", 10)["carried"]
    ev = worker.call("stream", "stream_done", 300, count=count, size=size + OVERHEAD,
                     window=WINDOW)
    dt = ev["t_last"] - ev["t_first"]
    if observed is not None:
        cpu = C.cpu_seconds(observed.proc.pid) - cpu
        mib = (observed.call("stats", "stats", 10)["carried"] - carried) / MIB
        r[f"{label}_cpu_ms_per_MiB"] = 1000 * cpu / mib if mib else None
    r[f"{label}_msgs_s"] = count / dt
    r[f"{label}_MB_s"] = count * size / dt / 1e6


def start_splice(bench):
    splice = C.Worker(bench.children, bench.scratch, "ceiling_splice.py", "splice")
    port = splice.wait("ready", 30)["port"]
    ends = [C.Worker(bench.children, bench.scratch, "splice_end.py", name)
            for name in ("splice-streamer", "splice-acker")]
    for end in ends:
        end.wait("ready", 60)
    key = os.urandom(32).hex()
    ends[1].call("connect", "connected", 30, port=port, key=key, role="ack")
    ends[0].call("connect", "connected", 30, port=port, key=key, role="stream")
    return splice, ends[0]


def main():
    p = C.standard_args(__doc__.splitlines()[0])
    p.add_argument("--small", type=int, help="small messages per repetition")
    p.add_argument("--large", type=int, help="60 KiB messages per repetition")
    args = p.parse_args()
    n_small = args.small or (500 if args.quick else 3000)
    n_large = args.large or (50 if args.quick else 300)
    results = {"small_count": n_small, "small_chars": SMALL, "large_count": n_large,
               "large_chars": LARGE, "window": WINDOW, "reps": args.reps,
               "gateway_options": UNLIMITED_CIRCUITS}
    with C.Bench("peer") as bench:
        gw = C.Gateway(bench.children, bench.scratch, extra=UNLIMITED_CIRCUITS).start()
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
        splice, spliced = start_splice(bench)
        reps = []
        for rep in range(args.reps):
            # A fresh pair of hubs each repetition and path: the outbox's history slows
            # it down (measured separately below as "small_again").
            r = {}
            direct = make_pair(a, b, gw, rep, "direct")
            send(a, b, direct, n_small, SMALL, r, "small")
            send(a, b, direct, n_large, LARGE, r, "large")
            send(a, b, direct, n_small, SMALL, r, "small_again")
            relayed = make_pair(a, b, gw, rep, "relayed")
            send(a, b, relayed, n_small, SMALL, r, "relayed_small")
            send(a, b, relayed, n_large, LARGE, r, "relayed_large", gw=gw)
            check_path(a, b, relayed, "relayed", gw)  # still relayed after the load
            for label, count, size in (("small", n_small, SMALL), ("large", n_large, LARGE)):
                stream(client, count, size, r, f"ceiling_{label}")
                stream(spliced, count, size, r, f"splice_{label}", observed=splice)
            reps.append(r)
            print(f"  rep {rep + 1}: small {r['small_msgs_s']:,.0f} msg/s, relayed "
                  f"{r['relayed_small_msgs_s']:,.0f} (ceiling {r['ceiling_small_msgs_s']:,.0f},"
                  f" splice {r['splice_small_msgs_s']:,.0f}); 60 KiB {r['large_MB_s']:.1f}"
                  f" MB/s, relayed {r['relayed_large_MB_s']:.1f} (ceiling "
                  f"{r['ceiling_large_MB_s']:.1f}, splice {r['splice_large_MB_s']:.1f}); "
                  f"gateway {r['relayed_large_gateway_cpu_ms_per_MiB']:.1f} ms CPU/MiB "
                  f"(splice {r['splice_large_cpu_ms_per_MiB']:.1f})", flush=True)
        results["reps_detail"] = reps
        for key in reps[0]:
            results[key] = C.summary([r[key] for r in reps])
        ratios = {"small_again_ratio": ("small_again_msgs_s", "small_msgs_s"),
                  "small_msgs_s_ratio": ("small_msgs_s", "ceiling_small_msgs_s"),
                  "large_MB_s_ratio": ("large_MB_s", "ceiling_large_MB_s"),
                  "relayed_small_vs_direct": ("relayed_small_msgs_s", "small_msgs_s"),
                  "relayed_large_vs_direct": ("relayed_large_MB_s", "large_MB_s"),
                  "relayed_large_vs_splice": ("relayed_large_MB_s", "splice_large_MB_s"),
                  "relayed_small_vs_splice": ("relayed_small_msgs_s", "splice_small_msgs_s"),
                  "relayed_cpu_vs_splice": ("relayed_large_gateway_cpu_ms_per_MiB",
                                            "splice_large_cpu_ms_per_MiB")}
        for name, (num, den) in ratios.items():
            results[name] = C.ratio_summary([r[num] for r in reps], [r[den] for r in reps])
        results["gateway_counters"] = gw.status().get("counters")
        results["elapsed_s"] = bench.elapsed()
        path = C.write_result("peer", results, args.quick)
    print_table(results, args, n_small, n_large)
    print(f"\nwritten {path}")


def print_table(R, args, n_small, n_large):
    pct = lambda s: {k: (v * 100 if isinstance(v, float) else v)  # noqa: E731
                     for k, v in s.items()}
    C.print_table(f"peer channel: durable acknowledged messages, one sender, window "
                  f"{WINDOW} (min / median / max of {args.reps})",
                  ["figure", "blockhub", "comparison", "ratio"],
                  [[f"{SMALL}-char messages", C.fmt_summary(R["small_msgs_s"], "msg/s"),
                    C.fmt_summary(R["ceiling_small_msgs_s"], "msg/s (TLS, no storage)"),
                    C.fmt_summary(R["small_msgs_s_ratio"]) + " x"],
                   [f"{SMALL}-char, after {n_small} small + {n_large} large sent",
                    C.fmt_summary(R["small_again_msgs_s"], "msg/s"), "fresh pair",
                    C.fmt_summary(R["small_again_ratio"]) + " x"],
                   ["60 KiB messages", C.fmt_summary(R["large_MB_s"], "MB/s"),
                    C.fmt_summary(R["ceiling_large_MB_s"], "MB/s (TLS, no storage)"),
                    C.fmt_summary(R["large_MB_s_ratio"]) + " x"],
                   [f"{SMALL}-char messages, relayed",
                    C.fmt_summary(R["relayed_small_msgs_s"], "msg/s"), "direct",
                    C.fmt_summary(R["relayed_small_vs_direct"]) + " x"],
                   ["60 KiB messages, relayed", C.fmt_summary(R["relayed_large_MB_s"], "MB/s"),
                    C.fmt_summary(R["splice_large_MB_s"], "MB/s (TLS splice)"),
                    C.fmt_summary(R["relayed_large_vs_splice"]) + " x"],
                   ["gateway CPU per relayed MiB (60 KiB)",
                    C.fmt_summary(R["relayed_large_gateway_cpu_ms_per_MiB"], "ms"),
                    C.fmt_summary(R["splice_large_cpu_ms_per_MiB"], "ms (splice)"),
                    C.fmt_summary(R["relayed_cpu_vs_splice"]) + " x"],
                   ["gateway CPU during relayed 60 KiB",
                    C.fmt_summary(pct(R["relayed_large_gateway_cpu"]), "%"), "", ""],
                   ["sender CPU (small)", C.fmt_summary(pct(R["small_sender_cpu"]), "%"),
                    "", ""],
                   ["receiver CPU (small)", C.fmt_summary(pct(R["small_receiver_cpu"]), "%"),
                    "", ""]])


if __name__ == "__main__":
    main()
