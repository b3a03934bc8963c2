"""Connections that have not finished their opening, counted per source address and in
total.

A listener accepts anyone who can reach it, and until a connection has said who it is
and what it wants (a gateway's join, a hub peer's first frame) it costs a descriptor
and TLS state for nothing.  The gateway and the hub's peer listener both cap such
connections with one ``Openings``: a connection asks ``refuse`` when it is accepted
(over a cap it is dropped at once, and the caller counts it), otherwise takes a slot
with ``enter`` and gives it back once it has opened or is gone.
"""

import collections

import attrs

PER_ADDRESS = "TooManyFromAddress"
TOTAL = "TooManyUnopened"


@attrs.define(eq=False)
class Slot:
    """One connection's place in the count; ``release`` is safe to call twice."""

    openings: "Openings"
    host: str
    held: bool = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.openings._release(self.host)


class Openings:
    def __init__(self, per_address: int, total: int = 0):
        self.per_address = per_address  # 0: no cap
        self.total = total              # 0: no cap
        self.by_address: collections.Counter = collections.Counter()
        self.count = 0

    def refuse(self, host: str) -> str | None:
        """Which cap a new connection from ``host`` would break (``PER_ADDRESS`` or
        ``TOTAL``), or None."""
        if self.per_address and self.by_address[host] >= self.per_address:
            return PER_ADDRESS
        if self.total and self.count >= self.total:
            return TOTAL
        return None

    def enter(self, host: str) -> Slot:
        """Count a connection just accepted from ``host`` (after ``refuse``)."""
        self.by_address[host] += 1
        self.count += 1
        return Slot(self, host)

    def _release(self, host: str) -> None:
        self.count -= 1
        self.by_address[host] -= 1
        if self.by_address[host] <= 0:
            del self.by_address[host]

    def __len__(self) -> int:
        return self.count

    def status(self) -> dict:
        return {"unopened": self.count, "addresses": len(self.by_address)}
