"""One relay circuit the gateway carries: its number, its two members, and for each
member the flow of what it sends (its credit, ``circuit_flow.Flow``), its rate (a
token bucket) and the credit that waits for that rate.

A plain object: ``circuits.py`` decides what each frame does to it; this holds the
state and its timers, which are cancelled in one place (``stop``) when it ends.
"""

from __future__ import annotations

from twisted.internet.interfaces import IDelayedCall

from blockhub.circuit_flow import Flow
from blockhub.limits import Limits
from blockhub.ratelimit import TokenBucket
from blockhub.timers import cancel


class Member:
    """One end of a circuit: a hub's gateway connection and what that hub sends."""

    def __init__(self, conn, limits: Limits, now: float):
        self.conn = conn
        self.hub: str = conn.peer_id
        self.flow = Flow()
        self.rate = TokenBucket(limits.circuit_rate, limits.circuit_burst, now)
        self.credit_timer: IDelayedCall | None = None  # credit held back for the rate


class Circuit:
    def __init__(self, number: int, first, second, limits: Limits, now: float):
        self.number = number
        self.members = (Member(first, limits, now), Member(second, limits, now))
        self.pair = frozenset(member.hub for member in self.members)
        self.opened = now
        self.last_data = now
        self.idle_timer: IDelayedCall | None = None

    def __repr__(self) -> str:
        return f"<Circuit {self.number}>"

    def ends(self, conn) -> tuple[Member, Member] | None:
        """(the member on ``conn``, the other), or None when ``conn`` is no member."""
        one, two = self.members
        if one.conn is conn:
            return one, two
        if two.conn is conn:
            return two, one
        return None

    @property
    def carried(self) -> int:
        """Payload bytes carried, both ways."""
        return sum(member.flow.carried for member in self.members)

    def stop(self) -> None:
        self.idle_timer = cancel(self.idle_timer)
        for member in self.members:
            member.credit_timer = cancel(member.credit_timer)
