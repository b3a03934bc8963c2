"""``make fuzz``: the full-size fuzz run (a million inputs by default), with a report.

    python tools/fuzz.py [COUNT] [SEED]

Progress and the time left go to standard output as it runs (tools/progress.py); it
writes no files, and its last line is the verdict, with the seed to rerun it.
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
from tools.progress import Progress, duration  # noqa: E402

WARM_UP = 10_000


def main():
    # Without an observer, twisted.logger keeps the first 64K events, and each event
    # refers to the protocol that logged it: that would show as growth below.
    globalLogBeginner.beginLoggingTo([], redirectStandardIO=False)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else int(time.time())
    # Small steps, so that the progress line moves; each ends with a collection and
    # a memory reading.
    step = max(1_000, min(10_000, count // 100))
    progress = Progress(f"fuzz ({count + WARM_UP:,} inputs)", count + WARM_UP)
    with tempfile.TemporaryDirectory(prefix="bh-fuzz-") as path:
        target = Target(path)
        warmed = 0
        while warmed < WARM_UP:  # caches and the database, before memory is measured
            n = min(step, WARM_UP - warmed)
            target.run(n, seed=seed + 1 + warmed)
            warmed += n
            progress.update(warmed, "warming up")
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        done = 0
        grown = 0
        while done < count:
            n = min(step, count - done)
            target.run(n, seed=seed + done)
            done += n
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
            rate = (WARM_UP + done) / progress.elapsed()
            progress.update(WARM_UP + done, f"{done:,} inputs  {rate:.0f}/s  "
                                             f"memory +{grown / 1024:.0f} KiB")
        progress.finish(f"{count:,} inputs  memory +{grown / 1024:.0f} KiB")
        tracemalloc.stop()
        target.check()
        covered = target.covered()
        target.close()
    print("limits hit: " + ", ".join(f"{name} {hits:,}" for name, hits in covered.items()))
    missed = [name for name, hits in covered.items() if not hits]
    if missed:
        raise SystemExit(f"fuzz: these limits were never hit: {', '.join(missed)}")
    # Nothing is written: the temporary database is gone, and this line is the result.
    print(f"fuzz: {count:,} inputs (seed {seed}) into the gateway, hub and peer protocols "
          f"and floods of kept connections in {duration(progress.elapsed())}: no unhandled "
          f"error, no leaked state, memory +{grown / 1024:.0f} KiB after the warm-up "
          f"(rerun: python tools/fuzz.py {count} {seed})")

if __name__ == "__main__":
    main()
