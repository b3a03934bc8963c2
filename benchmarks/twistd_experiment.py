"""``twistd`` with ``experiments.apply()`` first: how the benchmarks start the gateway
when BENCH_EXPERIMENT is set (see experiments.py)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import experiments  # noqa: E402

if __name__ == "__main__":
    experiments.apply()
    from twisted.scripts.twistd import run
    run()
