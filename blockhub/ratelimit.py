"""Token buckets: keyed by who is asking, a burst, then a steady rate per minute; and a
bucket of bytes per second that may be overdrawn (a relay circuit's rate).

Pure: the caller passes the time.  Buckets that have refilled completely carry no
information and are forgotten, so memory stays bounded by the busy keys.
"""


class RateLimiter:
    def __init__(self, per_minute: float, burst: int):
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, now: float) -> bool:
        """Take one token for ``key``; False when none is left."""
        buckets = self._buckets
        entry = buckets.get(key)
        if entry is None:
            tokens = self.burst
            if len(buckets) >= 10000:
                self._forget_full(now)
        else:
            tokens = entry[0] + (now - entry[1]) * self.rate
            if tokens > self.burst:
                tokens = self.burst
        if tokens < 1.0:
            buckets[key] = (tokens, now)
            return False
        buckets[key] = (tokens - 1.0, now)
        return True

    def drain(self, key: str, now: float) -> None:
        """``key`` has no token left now (a budget shared elsewhere says so)."""
        self._buckets[key] = (0.0, now)

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)

    def _forget_full(self, now: float) -> None:
        for key, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class TokenBucket:
    """One bucket of bytes: a steady ``rate`` per second, up to ``burst`` saved up.

    A take may overdraw it: what was taken already happened (a relay circuit's data is
    within its credit and goes on at once), and the debt is paid back by waiting
    (``wait``), which is how a circuit's sender is slowed: its credit waits."""

    def __init__(self, rate: float, burst: float, now: float):
        self.rate = float(rate)
        self.burst = float(burst)
        self.tokens = float(burst)
        self.last = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.last)  # a clock set back refills nothing
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.last = now

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.tokens -= amount

    def wait(self, now: float) -> float:
        """Seconds until the bucket is out of debt: 0 when less than a byte is owed,
        else at least a millisecond (a wait shorter than the clock's resolution at
        today's time would come back at once, owing the same)."""
        self._refill(now)
        return 0.0 if self.tokens > -1.0 else max(0.001, -self.tokens / self.rate)
