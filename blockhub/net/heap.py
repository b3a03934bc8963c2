"""Give the heap that a burst freed back to the system (issue 20).

A join storm makes and drops many short-lived buffers (every welcome list, every TLS
handshake); glibc keeps the freed pages, so the gateway's resident memory stays at its
peak long after.  ``malloc_trim`` returns them: about 25 KiB per admitted hub after a
storm of 1,000, for about a millisecond.  The service calls ``HeapTrim.check`` every
``INTERVAL`` seconds; it trims only when enough connections came or went since the
last time, so a gateway at rest does nothing.  A C library without ``malloc_trim`` (not
glibc) makes this a no-op.
"""

import ctypes
import ctypes.util

from twisted.logger import Logger

log = Logger()
INTERVAL = 5.0
AFTER = 100  # connections come or gone since the last trim


def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):
        return None


class HeapTrim:
    def __init__(self, churn, after: int = AFTER, trim=None):
        """``churn()``: a count that grows as connections come and go."""
        self.churn = churn
        self.after = after
        self.trim = trim if trim is not None else _malloc_trim()
        self._last = churn()

    def check(self) -> bool:
        """Trim if enough changed since the last time; True when it did."""
        now = self.churn()
        if self.trim is None or now - self._last < self.after:
            return False
        self._last = now
        self.trim(0)
        return True
