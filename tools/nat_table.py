"""How often two hubs go direct, by NAT topology, measured in the NAT lab (docs/nat.md).

    sudo .venv/bin/python tools/nat_table.py [--tries 20] [--only cone-cone,...]

Each try builds a fresh lab, starts a gateway and two hubs approving each other,
runs ``blockhub connect`` and times the first message to arrive, and notes the path
the peering took.  ``upgrade`` starts with a symmetric NAT on one side (relayed), turns
it into a cone NAT once the first message arrived, and times the move onto a direct
path and the first message after it.  Prints a progress line per try and, at the end,
the Markdown table docs/nat.md shows.  Every try is bounded (60 s per wait) and every
lab is removed, also on Ctrl-C.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.integration.harness import wait_for  # noqa: E402
from tests.netlab.daemons import nat_pair, paths, wait_peered  # noqa: E402
from tests.netlab.lab import Lab, unavailable  # noqa: E402

TOPOLOGIES = {  # name: (NAT of alice, NAT of bob: None for alice's, switch bob's to)
    "cone-cone": ("cone", "cone", None),
    "cone-symmetric": ("cone", "symmetric", None),
    "one-nat": ("cone", None, None),
    "upgrade": ("cone", "symmetric", "cone"),
}
WAIT = 60.0


class _Cleanups:
    """What the harness wants of a test case: somewhere to register its cleanup."""

    def __init__(self):
        self.calls = []

    def addCleanup(self, call, *args):
        self.calls.append((call, args))

    def run(self):
        for call, args in reversed(self.calls):
            call(*args)


def _first_message(sender, receiver, text: str) -> None:
    sender.ctl("send", receiver.id, text, as_json=False)
    wait_for(lambda: any(m["text"] == text for m in receiver.ctl("messages")), WAIT,
             f"{receiver.name} to receive {text!r}")


def one_try(topology: str, n: int) -> dict:
    kind_a, kind_b, later = TOPOLOGIES[topology]
    cleanups, lab = _Cleanups(), Lab()
    try:
        net, _gw, alice, bob = nat_pair(cleanups, lab, kind_a, kind_b, WAIT)
        started = time.monotonic()
        net.blockhub_on(alice, "connect", bob.id)
        wait_peered(alice, bob, WAIT)
        _first_message(alice, bob, f"try {n}")
        row = {"topology": topology, "path": paths(alice, bob)[0]["path"],
               "first": time.monotonic() - started}
        if later:
            lab.set_nat_kind("home2", later)
            switched = time.monotonic()
            wait_for(lambda: all(r["path"] == "direct" and r["connected"]
                                 for r in paths(alice, bob)), WAIT, "a direct path")
            _first_message(alice, bob, f"try {n}, direct")
            row.update(moved=time.monotonic() - switched, path="direct")
        return row
    except Exception as e:  # noqa: BLE001 - a failed try is a figure of the table
        return {"topology": topology, "path": "failed", "error": str(e)[:200]}
    finally:
        cleanups.run()
        lab.close()


def table(rows: list[dict]) -> str:
    lines = ["| topology | tries | direct | relayed | failed | time to the first message, "
             "median (max) | time to move onto a direct path, median (max) |",
             "|---|---|---|---|---|---|---|"]
    for topology in TOPOLOGIES:
        mine = [r for r in rows if r["topology"] == topology]
        if not mine:
            continue
        count = {p: sum(r["path"] == p for r in mine) for p in ("direct", "relayed", "failed")}
        lines.append(f"| {topology} | {len(mine)} | {count['direct']} | {count['relayed']} | "
                     f"{count['failed']} | {_spread(mine, 'first')} | "
                     f"{_spread(mine, 'moved')} |")
    return "\n".join(lines)


def _spread(rows, key) -> str:
    values = [r[key] for r in rows if key in r]
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} s ({max(values):.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--only", default=",".join(TOPOLOGIES))
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        raise SystemExit(f"error: the NAT lab cannot run here: {reason}")
    rows = []
    for topology in args.only.split(","):
        if topology not in TOPOLOGIES:
            raise SystemExit(f"error: no topology {topology!r}; one of {list(TOPOLOGIES)}")
        for n in range(1, args.tries + 1):
            rows.append(one_try(topology, n))
            print(f"{topology} {n}/{args.tries}: {rows[-1]}", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
