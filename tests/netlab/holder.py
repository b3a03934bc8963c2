"""A process that builds a small lab and then waits, fails or exits, for the cleanup
tests (test_cleanup.py) to kill or watch: ``python -m tests.netlab.holder MODE``.

It prints one JSON line, ``{"prefix": ..., "sleeper": PID}`` (the lab's namespace
prefix, and a process it started inside the lab), then: ``wait`` waits up to 60 s for a
signal; ``fail`` raises and ``exit`` returns once a line (or the end) comes on stdin.
It never closes the lab itself: what removes it is what the lab promises on every way
out.
"""

import json
import sys
import time

from tests.netlab.lab import Lab

WAIT = 60.0


def main(mode: str) -> int:
    lab = Lab()
    lab.add_nat("home", kind="symmetric")
    lab.add_host("pub")
    lab.add_host("alice", behind="home")
    sleeper = lab.popen("alice", [sys.executable, "-c", "import time; time.sleep(60)"])
    print(json.dumps({"prefix": lab.prefix, "sleeper": sleeper.pid}), flush=True)
    if mode in ("fail", "exit"):
        sys.stdin.readline()
    if mode == "fail":
        raise RuntimeError("a scenario failed with the lab up")
    if mode == "wait":
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
