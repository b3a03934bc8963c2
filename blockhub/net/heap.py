"""Give the heap that a burst freed back to the system (issue 20).

A join storm makes and drops many short-lived buffers (every welcome list, every TLS
handshake); glibc keeps the freed pages, so the gateway's resident memory stays at its
peak long after.  ``malloc_trim`` returns them: about 25 KiB per admitted hub after a
storm of 1,000, for about a millisecond.  The service calls ``HeapTrim.check`` every
``INTERVAL`` seconds; it trims when enough connections came or went since the last
time, and once more when a burst ends (something came or went since the last trim, and
nothing in the last interval), so what a storm's end freed is given back too and the
memory a settled gateway shows does not depend on where in the burst the last trim
fell.  A gateway at rest does nothing.  A C library without ``malloc_trim`` (not
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
        self._last = self._seen = churn()  # at the last trim, and at the last check

    def check(self) -> bool:
        """Trim if enough changed since the last trim, or a burst has ended; True when
        it did."""
        now, seen = self.churn(), self._seen
        self._seen = now
        moved = now - self._last
        if self.trim is None or not (moved >= self.after or (moved and now == seen)):
            return False
        self._last = now
        self.trim(0)
        return True
