"""The fuzzer at a size that keeps ``make test`` quick; ``make fuzz`` runs a million."""

import gc
import os
import tracemalloc

from twisted.trial.unittest import SynchronousTestCase

from tests.fuzz import Target

COUNT = int(os.environ.get("BLOCKHUB_FUZZ_COUNT", "6000"))


class FuzzTests(SynchronousTestCase):
    def test_junk_never_escapes_and_leaves_no_state(self):
        path = self.mktemp()
        os.makedirs(path)
        target = Target(path)
        self.addCleanup(target.close)
        target.run(COUNT, seed=1)
        target.check()
        missed = [limit for limit, hits in target.covered().items() if not hits]
        self.assertEqual(missed, [], f"limits never hit: {target.covered()}")

    def test_memory_does_not_grow_with_bad_inputs(self):
        path = self.mktemp()
        os.makedirs(path)
        target = Target(path)
        self.addCleanup(target.close)
        target.run(COUNT // 3, seed=2)  # warm up caches and the database
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            target.run(COUNT, seed=3)
            gc.collect()  # closed connections are reference cycles; count what survives
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        target.check()
        self.assertLess(grown, 256 * 1024, f"grew by {grown} bytes over {COUNT} inputs")
