"""How long to wait before the next attempt, after failures in a row: exponential, with
jitter, capped.  Pure: the random source is passed in.  The gateway link and the peer
link both wait this way."""

from collections.abc import Callable


def backoff_delay(failures: int, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Half to all of ``base * 2**(failures-1)``, never more than ``cap``."""
    raw: float = min(cap, base * 2.0 ** max(0, min(failures - 1, 30)))
    return raw * (0.5 + rand() / 2)
