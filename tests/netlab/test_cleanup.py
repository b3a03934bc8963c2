"""The lab is removed on every way out: a holder process (holder.py) builds a lab with
a process running inside it, and is then interrupted (SIGINT, as Ctrl-C), terminated
(SIGTERM), fails with an exception or just exits; no namespace with its prefix and no
process it started may remain.  A run killed with SIGKILL cannot clean up: ``sweep``
then removes its namespaces, and leaves the labs of live runs alone."""

import json
import os
import select
import signal
import subprocess
import sys
import time

from tests.integration.harness import REPO
from tests.netlab import lab as netlab
from tests.netlab.case import LabCase, suite_of

DEADLINE = 20.0


class Holder:
    def __init__(self, case, mode: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.netlab.holder", mode], cwd=REPO,
            env=dict(os.environ, PYTHONPATH=REPO), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        case.addCleanup(self.reap)
        ready, _, _ = select.select([self.proc.stdout], [], [], DEADLINE)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.reap()
            raise AssertionError(f"the holder did not build its lab: {self.proc.stderr.read()}")
        report = json.loads(line)
        self.prefix, self.sleeper = report["prefix"], report["sleeper"]

    def namespaces(self) -> list[str]:
        return [ns for ns in netlab.list_namespaces() if ns.startswith(self.prefix)]

    def wait(self) -> int:
        try:
            return self.proc.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the holder did not exit within {DEADLINE:g} s")

    def reap(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


def alive(pid: int) -> bool:
    return netlab._alive(pid)


class Cleanup(LabCase):

    def check_removed_after(self, mode: str, sig=None) -> tuple[int, str]:
        holder = Holder(self, mode)
        self.assertEqual(len(holder.namespaces()), 4, holder.namespaces())  # inet, 3 nodes
        self.assertTrue(alive(holder.sleeper))
        if sig is not None:
            holder.proc.send_signal(sig)
        holder.proc.stdin.close()  # the go of "fail" and "exit"
        code = holder.wait()
        self.assertEqual(holder.namespaces(), [])
        deadline = time.monotonic() + DEADLINE
        while alive(holder.sleeper) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(alive(holder.sleeper), "the process in the lab outlived it")
        return code, holder.proc.stderr.read()

    def test_ctrl_c(self):
        code, _ = self.check_removed_after("wait", signal.SIGINT)
        self.assertEqual(code, -signal.SIGINT)

    def test_sigterm(self):
        code, _ = self.check_removed_after("wait", signal.SIGTERM)
        self.assertEqual(code, -signal.SIGTERM)

    def test_exception(self):
        code, err = self.check_removed_after("fail")
        self.assertEqual(code, 1)
        self.assertIn("RuntimeError: a scenario failed", err)

    def test_normal_exit(self):
        code, _ = self.check_removed_after("exit")
        self.assertEqual(code, 0)

    def test_sweep_removes_a_killed_runs_lab_and_leaves_live_ones(self):
        self.lab.add_host("mine")  # this test's own lab: its process is alive
        holder = Holder(self, "wait")
        holder.proc.kill()
        holder.wait()
        left = holder.namespaces()
        self.assertEqual(len(left), 4, left)
        self.assertEqual(sorted(netlab.sweep()), sorted(left))
        self.assertEqual(holder.namespaces(), [])
        mine = [ns for ns in netlab.list_namespaces() if ns.startswith(self.lab.prefix)]
        self.assertEqual(len(mine), 2, mine)  # inet and mine


testSuite = suite_of(__name__)
