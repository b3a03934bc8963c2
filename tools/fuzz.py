"""``make fuzz``: the full-size fuzz run (a million inputs by default), with a report.

    python tools/fuzz.py [COUNT] [SEED]
"""

import gc
import os
import sys
import tempfile
import time
import tracemalloc

from twisted.logger import globalLogBeginner

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.fuzz import Target  # noqa: E402


def main():
    # Without an observer, twisted.logger keeps the first 64K events, and each event
    # refers to the protocol that logged it: that would show as growth below.
    globalLogBeginner.beginLoggingTo([], redirectStandardIO=False)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time())
    with tempfile.TemporaryDirectory(prefix="bh-fuzz-") as path:
        target = Target(path)
        started = time.monotonic()
        target.run(10_000, seed=seed + 1)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        done = 0
        step = 100_000
        while done < count:
            n = min(step, count - done)
            target.run(n, seed=seed + done)
            done += n
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
            print(f"{done:>9,} inputs  {done / (time.monotonic() - started):8.0f}/s  "
                  f"memory +{grown / 1024:.0f} KiB", flush=True)
        tracemalloc.stop()
        target.check()
        covered = target.covered()
        target.close()
    print("limits hit: " + ", ".join(f"{name} {hits:,}" for name, hits in covered.items()))
    missed = [name for name, hits in covered.items() if not hits]
    if missed:
        raise SystemExit(f"fuzz: these limits were never hit: {', '.join(missed)}")
    print(f"fuzz: {count:,} inputs (seed {seed}) into the gateway, hub and peer protocols "
          f"and floods of kept connections: no unhandled error, no leaked state")


if __name__ == "__main__":
    main()
