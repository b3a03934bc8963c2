"""``make bench`` / ``make bench-quick``: run every benchmark script, one after the other,
each in its own process group with a deadline, then print one summary table (each
blockhub figure, its comparison measured in the same run, the ratio and the issue's
target) and draw the fan-out plot.

Usage: run.py [--quick] [--only presence,relay,...] [--plot PATH] [--summary-only]
              [--markdown]
Results: benchmarks/results/NAME[-quick].json, summary[-quick].json, fanout[-quick].png
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common as C  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(C.BENCH), "tools"))
from progress import duration  # noqa: E402  (tools/progress.py: make fuzz and flood too)

# name, script, deadline in seconds (quick, full)
SCRIPTS = [
    ("presence", "bench_presence.py", (100, 2700)),  # full: a storm of 10,000 is minutes
    ("relay", "bench_relay.py", (120, 600)),  # quick: 30-60 s, more on a busy machine
    ("handshake", "bench_handshake.py", (40, 300)),
    ("peer", "bench_peer.py", (90, 600)),
    ("circuits", "bench_circuits.py", (90, 400)),
    ("cluster", "bench_cluster.py", (200, 900)),  # skipped where redis-server is missing
]


def run_script(name, script, deadline, quick):
    argv = [C.PYTHON, os.path.join(C.BENCH, script)] + (["--quick"] if quick else [])
    print(f"\n=== {name}: {' '.join(os.path.basename(a) for a in argv[1:])} "
          f"(deadline {deadline}s)", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(argv, start_new_session=True)
    try:
        code = proc.wait(deadline)
    except subprocess.TimeoutExpired:
        print(f"!!! {name} passed its deadline of {deadline}s; stopping it", flush=True)
        code = None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # it stops its own children on SIGTERM
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    elapsed = time.monotonic() - started
    print(f"=== {name}: {'ok' if code == 0 else f'FAILED ({code})'} in {elapsed:.0f}s",
          flush=True)
    return {"code": code, "elapsed_s": elapsed}


def _durations_path(quick):
    return os.path.join(C.RESULTS, f"durations{'-quick' if quick else ''}.json")


def _last_durations(quick) -> dict:
    try:
        with open(_durations_path(quick)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def expected_durations(quick, chosen) -> dict:
    """Each script's time in the last run (``known``), else its deadline."""
    last = _last_durations(quick)
    known = all(isinstance(last.get(n), (int, float)) for n, *_ in chosen)
    times = {n: (last[n] if known else deadline) for n, _s, deadline in chosen}
    return dict(times, known=known)


def remember_durations(quick, runs) -> None:
    last = _last_durations(quick)
    last.update({n: r["elapsed_s"] for n, r in runs.items() if r["code"] == 0})
    with open(_durations_path(quick), "w") as f:
        json.dump(last, f, indent=1)


def load(name, quick):
    path = os.path.join(C.RESULTS, f"{name}{'-quick' if quick else ''}.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def scaled(s, factor):
    if not s or s.get("median") is None:
        return None
    return {k: (v * factor if k in ("min", "median", "max") else v) for k, v in s.items()}


def verdict(value, target, higher_is_better):
    if value is None:
        return "not measured"
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "MISSED"


def markdown(rows) -> str:
    """The summary as a Markdown table (for docs/performance.md)."""
    lines = ["| figure | blockhub (min / median / max) | comparison, same run | ratio | "
             "target | verdict |", "|---|---|---|---|---|---|"]
    for r in rows:
        comparison = (C.fmt_summary(r["comparison"], r["comparison_unit"])
                      if r["comparison"] else "")
        ratio = (C.fmt_summary(r["ratio"]) + " x") if r["ratio"] and \
            r["ratio"].get("median") else ""
        lines.append(f"| {r['figure']} | {C.fmt_summary(r['blockhub'], r['unit'])} | "
                     f"{comparison} | {ratio} | {r['target'] or ''} | "
                     f"{r['verdict'] or ''} |")
    return "\n".join(lines)


def _median(summary):
    return (summary or {}).get("median")


def _presence_at(presence, n, key):
    return _median(((presence or {}).get("blockhub", {}).get(str(n)) or {}).get(key))


def target_rows(presence, relay, handshake, peer):
    """Issue 20's targets for one gateway at its limit, each with the median measured in
    this run: (target, measured, verdict).  A figure this run did not measure (a quick
    run has no N=10,000) is said so."""
    rows = []

    def judge(target, value, limit, higher, fmt):
        rows.append([target, fmt(value) if value is not None else "-",
                     verdict(value, limit, higher)])

    def kib(v):
        return f"{v:.1f} KiB"

    def pct(v):
        return f"{100 * v:.2f} %"

    def times(v):
        return f"{v:.2f}x"

    idle = (presence or {}).get("idle_timeout_s")
    default_keepalive = idle == 60.0
    judge("RSS per admitted hub, N=1,000: <= 50 KiB",
          _presence_at(presence, 1000, "rss_per_hub_kib"), 50, False, kib)
    judge("RSS per hub after a 10,000-hub storm: <= 60 KiB",
          _presence_at(presence, 10000, "rss_per_hub_kib"), 60, False, kib)
    rest = _presence_at(presence, 10000, "cpu_rest_frac") if default_keepalive else None
    judge("CPU at rest, 10,000 hubs, default keepalive: <= 3 % of a core", rest, 0.03,
          False, pct)
    judge("join storm of 10,000: <= 2x the ceiling's",
          _presence_at(presence, 10000, "storm_s_ratio"), 2.0, False, times)
    h = handshake or {}
    judge("handshakes per second, 60 at once: >= 300/s",
          _median(h.get("rate")) if h.get("burst") == 60 else None, 300, True,
          lambda v: f"{v:.0f}/s")
    judge("handshake p99, one at a time: < 20 ms",
          (_median(h.get("seq_p99_s")) or 0) * 1000 or None, 20, False,
          lambda v: f"{v:.1f} ms")
    r = ((relay or {}).get("systems") or {}).get("blockhub", {})
    judge("relay at saturation, 250 pairs: >= 0.6x the ceiling",
          _median(r.get("rate_vs_ceiling")) if (relay or {}).get("pairs") == 250 else None,
          0.6, True, times)
    judge("(no regression) fan-out p99, N=1,000: <= 2x the ceiling",
          _presence_at(presence, 1000, "fanout_p99_s_ratio"), 2.0, False, times)
    p = peer or {}
    judge("(no regression) peer channel, small msgs: >= 5,000 msg/s",
          _median(p.get("small_msgs_s")), 5000, True, lambda v: f"{v:.0f} msg/s")
    return rows


def cluster_rows(c, add):
    """bench_cluster.py's figures: across nodes beside within one, cluster beside alone."""
    n, f, p = c["sizes"]["storm"], c["sizes"]["fanout"], c["sizes"]["pairs"]
    add(f"cluster fan-out p50, {f} hubs on node 1, update from node 2",
        scaled(c["fanout_cross_p50_s"], 1000), "ms", scaled(c["fanout_same_p50_s"], 1000),
        "ms (update from node 1)", c["fanout_p50_cross_vs_same"])
    add(f"cluster fan-out p99, {f} hubs on node 1, update from node 2",
        scaled(c["fanout_cross_p99_s"], 1000), "ms", scaled(c["fanout_same_p99_s"], 1000),
        "ms (update from node 1)", c["fanout_p99_cross_vs_same"], "<= 2x same node",
        (c["fanout_p99_cross_vs_same"] or {}).get("median"), (2.0, False))
    add(f"cluster relay rate, {p} pairs, node 1 -> node 2", c["relay_cross_rate"], "msg/s",
        c["relay_same_rate"], "msg/s (within node 1)", c["relay_rate_cross_vs_same"],
        ">= 0.5x same node", (c["relay_rate_cross_vs_same"] or {}).get("median"),
        (0.5, True))
    add("cluster relay rate within node 1 vs one gateway alone", c["relay_same_rate"],
        "msg/s", c["relay_alone_rate"], "msg/s (alone)", c["relay_rate_same_vs_alone"])
    add("cluster relay latency p99, node 1 -> node 2", scaled(c["relay_cross_p99_s"], 1000),
        "ms", scaled(c["relay_same_p99_s"], 1000), "ms (within node 1)",
        c["relay_p99_cross_vs_same"])
    add(f"cluster join storm, N={n} over 3 nodes: gateway CPU per join",
        c["storm_cluster_cpu_ms_per_join"], "ms", c["storm_alone_cpu_ms_per_join"],
        "ms (one gateway alone)", c["storm_cpu_cluster_vs_alone"], "<= 1.5x one node",
        (c["storm_cpu_cluster_vs_alone"] or {}).get("median"), (1.5, False))
    add(f"cluster join storm, N={n}: redis-server CPU per join",
        c["storm_redis_cpu_ms_per_join"], "ms")
    add(f"cluster join storm, N={n} over 3 nodes: all lists complete", c["storm_cluster_s"],
        "s", c["storm_alone_s"], "s (one gateway alone)", c["storm_s_cluster_vs_alone"])
    for event in ("join", "update", "leave"):
        add(f"cluster Redis calls per {event}", c[f"commands_per_{event}"], "")
    add("cluster Redis calls per relay, node 1 -> node 2", c["commands_per_cross_relay"], "",
        c["commands_per_same_relay"], "(within node 1)")


def summarize(quick, runs, as_markdown=False):
    presence, relay = load("presence", quick), load("relay", quick)
    handshake, peer = load("handshake", quick), load("peer", quick)
    circuits = load("circuits", quick)
    cluster = load("cluster", quick)
    rows, out = [], []

    def add(figure, value, unit, comparison=None, cunit="", ratio=None, target=None,
            judged=None, higher=True, note=""):
        row = {"figure": figure, "blockhub": value, "unit": unit, "comparison": comparison,
               "comparison_unit": cunit, "ratio": ratio, "target": target,
               "verdict": verdict(judged, *higher) if isinstance(higher, tuple)
               else None, "note": note}
        out.append(row)
        rows.append([figure, C.fmt_summary(value, unit),
                     C.fmt_summary(comparison, cunit) if comparison else "-",
                     (C.fmt_summary(ratio) + " x") if ratio and ratio.get("median") else "-",
                     target or "", row["verdict"] or ""])

    if presence:
        sizes = presence["sizes"]
        big = str(max(sizes))
        bh, ce = presence["blockhub"], presence["ceiling"]
        for n in map(str, sizes):
            b, c = bh[n], ce.get(n, {})
            add(f"RSS per admitted hub, N={n}", b["rss_per_hub_kib"], "KiB",
                c.get("rss_per_hub_kib"), "KiB (ceiling, per TLS conn)",
                b.get("rss_per_hub_kib_ratio"))  # its targets: the table of issue 20
        for n in map(str, sizes):
            b = bh[n]
            add(f"CPU at rest, N={n} (keepalive every {presence['idle_timeout_s'] / 2:g}s)",
                scaled(b["cpu_rest_frac"], 100), "%")
        for n in map(str, sizes):
            b, c = bh[n], ce.get(n, {})
            add(f"join storm until every list complete, N={n}", b["storm_s"], "s",
                c.get("storm_s"), "s (ceiling)", b.get("storm_s_ratio"))
        for n in map(str, sizes):
            b, c = bh[n], ce.get(n, {})
            if b["fanout_p99_s"]["median"] is None:
                continue
            is_ref = n == "1000" or (n == big and "1000" not in map(str, sizes))
            add(f"fan-out p50, N={n}", scaled(b["fanout_p50_s"], 1000), "ms",
                scaled(c.get("fanout_p50_s"), 1000), "ms (ceiling)",
                b.get("fanout_p50_s_ratio"))
            add(f"fan-out p99, N={n}", scaled(b["fanout_p99_s"], 1000), "ms",
                scaled(c.get("fanout_p99_s"), 1000), "ms (ceiling)",
                b.get("fanout_p99_s_ratio"),
                "<= 2x ceiling at N=1000" if is_ref else None,
                (b.get("fanout_p99_s_ratio") or {}).get("median") if is_ref else None,
                (2.0, False) if is_ref else True)
    if relay:
        s = relay["systems"]
        b = s.get("blockhub", {})
        if b.get("rate"):
            add("relay rate at saturation", b["rate"], "msg/s",
                s.get("ceiling", {}).get("rate"), "msg/s (ceiling)", b.get("rate_vs_ceiling"),
                ">= 0.5x ceiling", (b.get("rate_vs_ceiling") or {}).get("median"),
                (0.5, True))
            add("relay rate vs the wormhole mailbox", b["rate"], "msg/s",
                s.get("mailbox", {}).get("rate"), "msg/s (mailbox)",
                b.get("rate_vs_mailbox"), note=s.get("mailbox", {}).get("error", ""))
            for key, label in (("p50_s", "p50"), ("p99_s", "p99")):
                add(f"relay latency {label}, light load", scaled(b[key], 1000), "ms",
                    scaled(s.get("ceiling", {}).get(key), 1000), "ms (ceiling)",
                    b.get(f"{key}_vs_ceiling"))
                add(f"relay latency {label} vs the wormhole mailbox", scaled(b[key], 1000),
                    "ms", scaled(s.get("mailbox", {}).get(key), 1000), "ms (mailbox)",
                    b.get(f"{key}_vs_mailbox"))
    if handshake:
        h = handshake
        add("handshake p50, one at a time", scaled(h["seq_p50_s"], 1000), "ms")
        add("handshake p99, one at a time", scaled(h["seq_p99_s"], 1000), "ms",
            target="< 50 ms", judged=h["seq_p99_s"]["median"] * 1000, higher=(50, False))
        add(f"handshakes per second, {h['burst']} at once", h["rate"], "/s",
            target=">= 200/s", judged=h["rate"]["median"], higher=(200, True))
        add(f"handshake p99 with {h['burst']} at once", scaled(h["burst_p99_s"], 1000), "ms")
    if peer:
        p = peer
        add("peer channel, small durable acked msgs", p["small_msgs_s"], "msg/s",
            p["ceiling_small_msgs_s"], "msg/s (TLS, no storage)", p["small_msgs_s_ratio"],
            ">= 5,000 msg/s", p["small_msgs_s"]["median"], (5000, True))
        add("peer channel, small msgs after some history", p["small_again_msgs_s"], "msg/s",
            p["small_msgs_s"], "msg/s (fresh pair)", p["small_again_ratio"])
        add("peer channel, 60 KiB msgs", p["large_MB_s"], "MB/s", p["ceiling_large_MB_s"],
            "MB/s (TLS stream)", p["large_MB_s_ratio"], ">= 0.25x raw TLS stream",
            (p["large_MB_s_ratio"] or {}).get("median"), (0.25, True))
        if "relayed_small_msgs_s" in p:
            add("relayed peer channel, small msgs", p["relayed_small_msgs_s"], "msg/s",
                p["small_msgs_s"], "msg/s (direct)", p["relayed_small_vs_direct"],
                ">= 0.5x direct", (p["relayed_small_vs_direct"] or {}).get("median"),
                (0.5, True))
            add("relayed peer channel, 60 KiB msgs", p["relayed_large_MB_s"], "MB/s",
                p["splice_large_MB_s"], "MB/s (TLS splice)", p["relayed_large_vs_splice"],
                ">= 0.5x ceiling splice", (p["relayed_large_vs_splice"] or {}).get("median"),
                (0.5, True))
            add("relayed peer channel, 60 KiB msgs vs direct", p["relayed_large_MB_s"],
                "MB/s", p["large_MB_s"], "MB/s (direct)", p["relayed_large_vs_direct"])
            add("gateway CPU per relayed MiB (60 KiB msgs)",
                p["relayed_large_gateway_cpu_ms_per_MiB"], "ms",
                p["splice_large_cpu_ms_per_MiB"], "ms (splice)", p["relayed_cpu_vs_splice"])
    if circuits:
        c = circuits
        for kind in ("p50", "p99"):
            add(f"relayed peering set-up {kind}, connect -> peered",
                scaled(c[f"relayed_setup_{kind}_s"], 1000), "ms",
                scaled(c[f"direct_setup_{kind}_s"], 1000), "ms (direct)",
                c[f"relayed_vs_direct_{kind}"])
        for kind in ("p50", "p99"):
            add(f"circuit set-up {kind}, circuit asked -> peered",
                scaled(c[f"circuit_setup_{kind}_s"], 1000), "ms")
        add(f"gateway RSS per idle circuit, N={c['circuits']}", c["rss_per_circuit_kib"],
            "KiB", target="<= 16 KiB", judged=c["rss_per_circuit_kib"]["median"],
            higher=(16, False))
    if cluster:
        try:
            cluster_rows(cluster, add)
        except KeyError as e:
            print(f"(cluster results lack {e}: made by an older bench_cluster.py; rerun it)")
    C.print_table(f"blockhub benchmarks{' (quick)' if quick else ''}: min / median / max "
                  f"of 3 repetitions; ratio = blockhub / comparison, per repetition",
                  ["figure", "blockhub", "comparison (same run)", "ratio", "target",
                   "verdict"], rows)
    targets = target_rows(presence, relay, handshake, peer)
    C.print_table("one gateway at its limit (issue 20): each target, the median of this "
                  "run, met or missed", ["target", "measured (median)", "verdict"], targets)
    doc = {"quick": quick, "runs": runs, "rows": out, "commit": C.git_commit(),
           "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
           "targets": [dict(zip(("target", "measured", "verdict"), t)) for t in targets]}
    path = os.path.join(C.RESULTS, f"summary{'-quick' if quick else ''}.json")
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"\nwritten {path}")
    if as_markdown:
        print("\n" + markdown(out))
    return presence


def plot(presence, path, quick):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib missing: no plot)")
        return
    if not presence:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"blockhub": ("tab:blue", "o"), "ceiling": ("tab:gray", "s")}
    for system in ("blockhub", "ceiling"):
        pts = sorted((int(n), v) for n, v in presence[system].items()
                     if v.get("fanout_p99_s", {}).get("median") is not None)
        if not pts:
            continue
        ns = [n for n, _ in pts]
        color, marker = styles[system]
        for key, ls, label in (("fanout_p50_s", "--", "p50"), ("fanout_p99_s", "-", "p99")):
            med = [v[key]["median"] * 1000 for _, v in pts]
            lo = [v[key]["median"] * 1000 - v[key]["min"] * 1000 for _, v in pts]
            hi = [v[key]["max"] * 1000 - v[key]["median"] * 1000 for _, v in pts]
            ax.errorbar(ns, med, yerr=[lo, hi], color=color, marker=marker, linestyle=ls,
                        capsize=3, label=f"{system} {label}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("hubs admitted (N)")
    ax.set_ylabel("update -> every hub has it (ms)")
    ax.set_title("Presence fan-out latency vs N"
                 + (" (quick run)" if quick else "")
                 + "\nmedian of 3 repetitions, bars = min..max")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"written {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", help="comma-separated subset of: "
                                  + ",".join(n for n, *_ in SCRIPTS))
    p.add_argument("--plot", help="where to draw the fan-out plot "
                                  "(default benchmarks/results/fanout[-quick].png)")
    p.add_argument("--summary-only", action="store_true",
                   help="do not run anything; summarise the last results")
    p.add_argument("--markdown", action="store_true",
                   help="also print the summary as a Markdown table")
    args = p.parse_args()
    C.install_signal_handlers()
    C.raise_nofile()
    os.makedirs(C.RESULTS, exist_ok=True)
    started = time.monotonic()
    runs = {}
    only = set(args.only.split(",")) if args.only else None
    if not args.summary_only:
        chosen = [(n, s, d[0 if args.quick else 1]) for n, s, d in SCRIPTS
                  if not only or n in only]
        expected = expected_durations(args.quick, chosen)
        for i, (name, script, deadline) in enumerate(chosen):
            left = sum(expected[n] for n, *_ in chosen[i:])
            basis = "from the last run" if expected["known"] else "at most: the deadlines"
            print(f"\n--- bench: {i} of {len(chosen)} scripts done, "
                  f"{time.monotonic() - started:.0f}s so far, about {duration(left)} left "
                  f"({basis})", flush=True)
            runs[name] = run_script(name, script, deadline, args.quick)
        remember_durations(args.quick, runs)
    presence = summarize(args.quick, runs, args.markdown)
    plot(presence, args.plot or os.path.join(
        C.RESULTS, f"fanout{'-quick' if args.quick else ''}.png"), args.quick)
    failed = [n for n, r in runs.items() if r["code"] != 0]
    print(f"\nall done in {time.monotonic() - started:.0f}s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    print(f"results: {C.RESULTS}/ (one JSON file per script, summary"
          f"{'-quick' if args.quick else ''}.json, the fan-out plot)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
