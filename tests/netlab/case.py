"""What every lab test module shares: a test case that builds a fresh lab (removed
after the test), and the module hook that keeps the whole lab to one SKIPPED line.

When the lab cannot run here (not root, no ``ip`` or ``nft``, no namespaces), every
lab module's ``testSuite`` is empty and only ``test_available`` reports, skipped with
the reason.  A lab test named on the command line still skips on its own (``setUp``).
"""

import sys

from twisted.trial import runner
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.netlab.lab import Lab, unavailable


class LabCase(SynchronousTestCase):
    """A test with its own lab in ``self.lab``, closed when the test ends."""

    def setUp(self):
        reason = unavailable()
        if reason:
            raise SkipTest(reason)
        self.lab = Lab()
        self.addCleanup(self.lab.close)


def suite_of(module_name: str):
    """A module's ``testSuite``: its test classes when the lab can run, else nothing."""
    def testSuite():
        loader = runner.TestLoader()
        suite = loader.suiteFactory()
        if unavailable() is None:
            for case in loader.findTestClasses(sys.modules[module_name]):
                suite.addTest(loader.loadClass(case))
        return suite
    return testSuite
