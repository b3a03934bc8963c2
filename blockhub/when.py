"""Times as operators and hubs read them in one line: UTC, to the second."""

import time


def utc(seconds: float) -> str:
    """``2026-12-02 01:15:26Z`` for Unix ``seconds``."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))
