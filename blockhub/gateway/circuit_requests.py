"""The circuit requests a gateway holds until the other hub asks too.

A hub's ``circuit-open`` naming another hub waits here for at most the pending
timeout, until that hub asks for the asker; a repeat refreshes the wait.  Nothing is
sent to the hub a request names: it learns of a circuit only when it asked for it
too.  Indexed both ways, so a hub that leaves finds its own requests and those that
name it without a scan.  What a request means is decided in ``circuits.py``; this only
keeps them and says when one expired.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from twisted.internet.interfaces import IDelayedCall

from blockhub.timers import cancel


@attrs.define
class Request:
    conn: object  # the asker's gateway connection
    asker: str
    target: str
    deadline: IDelayedCall | None = None


class Requests:
    def __init__(self, clock, timeout: float, expired: Callable[[Request], None]):
        self.clock = clock
        self.timeout = timeout
        self.expired = expired  # told of each request that waited too long, once gone
        self.waiting: dict[tuple[str, str], Request] = {}  # (asker, target) -> request
        self.asked_by: dict[str, set[str]] = {}   # asker -> the hubs it waits for
        self.naming: dict[str, set[str]] = {}     # target -> the hubs waiting for it

    def __len__(self) -> int:
        return len(self.waiting)

    def targets(self, asker: str) -> set[str]:
        return self.asked_by.get(asker, set())

    def hold(self, conn, target: str) -> None:
        """Keep (or refresh) ``conn``'s hub's request for ``target``."""
        asker = conn.peer_id
        request = self.waiting.get((asker, target))
        if request is None:
            request = self.waiting[asker, target] = Request(conn, asker, target)
            self.asked_by.setdefault(asker, set()).add(target)
            self.naming.setdefault(target, set()).add(asker)
        cancel(request.deadline)
        request.conn = conn
        request.deadline = self.clock.callLater(self.timeout, self._expire, request)

    def take(self, asker: str, target: str) -> Request | None:
        """Remove and return ``asker``'s request for ``target``, if it waits."""
        request = self.waiting.pop((asker, target), None)
        if request is not None:
            request.deadline = cancel(request.deadline)
            _discard(self.asked_by, asker, target)
            _discard(self.naming, target, asker)
        return request

    def gone(self, conn) -> tuple[list[Request], list[Request]]:
        """``conn``'s hub left: remove its own requests and those naming it, and return
        both (the first were never told to anyone; the second's askers are waiting)."""
        hub = conn.peer_id
        own = [self.waiting[hub, target] for target in list(self.targets(hub))
               if self.waiting[hub, target].conn is conn]
        naming = [self.waiting[asker, hub] for asker in list(self.naming.get(hub, ()))]
        for request in own + naming:
            self.take(request.asker, request.target)
        return own, naming

    def _expire(self, request: Request) -> None:
        request.deadline = None
        if self.waiting.get((request.asker, request.target)) is request:
            self.take(request.asker, request.target)
            self.expired(request)


def _discard(index: dict[str, set[str]], key: str, value: str) -> None:
    values = index.get(key)
    if values is not None:
        values.discard(value)
        if not values:
            del index[key]
