"""The per-key budget of a hub's joins and HubInfo updates at a gateway."""

from blockhub.ratelimit import RateLimiter


class JoinBudget(RateLimiter):
    """The per-key budget of joins and updates.  A hub the gateway holds no budget for
    (new, or quiet long enough for its bucket to refill and be forgotten) joins for
    free with a full bucket; every later join and every update takes a token.  Buckets
    outlive a leave, so the sweep of refilled buckets is amortized: a join storm can
    hold more buckets than the sweep threshold, all still refilling, and sweeping on
    every call would then cost the whole table each time."""

    SWEEP_AT = 10000

    def __init__(self, per_minute, burst):
        super().__init__(per_minute, burst)
        self._sweep_at = self.SWEEP_AT

    def join(self, key: str, now: float) -> bool:
        if key not in self._buckets:
            self._buckets[key] = (self.burst, now)
            self._forget_full(now)
            return True
        return self.allow(key, now)

    def _forget_full(self, now):
        if len(self) < self._sweep_at:
            return
        super()._forget_full(now)
        self._sweep_at = max(self.SWEEP_AT, 2 * len(self))
