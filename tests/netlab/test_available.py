"""The lab's one line in a test run: passes when the NAT lab can run here, and is the
only lab test reported (SKIPPED, with the reason) when it cannot."""

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.netlab.lab import unavailable


class NATLab(SynchronousTestCase):
    def test_the_lab_can_run_here(self):
        """Root, ``ip``, ``nft``, a namespace and the routers' rules loaded in it."""
        reason = unavailable()
        if reason:
            raise SkipTest(reason)
