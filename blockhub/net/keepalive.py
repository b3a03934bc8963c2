"""Every connection's keepalive and idle timeout on one timer (issue 20).

A gateway holds thousands of idle connections.  A looping call and an idle timer per
connection cost two heap entries each, moved at every frame received.  Here a
connection only notes when it last heard anything; one looping call per clock visits,
every ``RESOLUTION`` seconds, the connections whose time may have come, each about
once per keepalive period, and asks each what to do (``Keepalive.keepalive``, which
``FramedProtocol`` mixes in): nothing yet, ping, or close.  A connection that heard
something since it was filed is filed again further on, so a busy connection costs
nothing but the note.
"""

import math
import weakref

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()

RESOLUTION = 0.25  # seconds: how late a ping or an idle timeout may come


class KeepaliveWheel:
    def __init__(self, clock, resolution: float = RESOLUTION):
        self.clock = clock
        self.resolution = resolution
        self._slots: dict[int, list] = {}  # slot number -> connections due in it
        self._done = math.floor(clock.seconds() / resolution)  # slots visited up to here
        self._loop = LoopingCall(self._tick)
        self._loop.clock = clock

    def watch(self, conn, due: float) -> None:
        """Ask ``conn.keepalive(now)`` once ``due`` has come; it answers when next."""
        slot = max(math.ceil(due / self.resolution), self._done + 1)
        self._slots.setdefault(slot, []).append(conn)
        conn.keepalive_slot = slot
        if not self._loop.running:
            self._done = max(self._done, math.floor(self.clock.seconds() / self.resolution))
            self._loop.start(self.resolution, now=False)

    def unwatch(self, conn) -> None:
        """A connection that closed: let it go now, not at its next visit (it holds its
        TLS state, tens of KiB, until then)."""
        slot = getattr(conn, "keepalive_slot", None)
        if slot is None:
            return
        waiting = self._slots.get(slot)
        if waiting is not None and conn in waiting:
            waiting.remove(conn)
            if not waiting:
                del self._slots[slot]

    def _tick(self) -> None:
        now = self.clock.seconds()
        current = math.floor(now / self.resolution)
        due = sorted(slot for slot in self._slots if slot <= current)
        self._done = current
        for slot in due:
            for conn in self._slots.pop(slot):
                try:
                    following = conn.keepalive(now)
                except Exception:  # one connection's bug must not stop every keepalive
                    log.failure("keepalive of {conn!r} failed", conn=conn)
                    continue
                if following is not None:
                    self.watch(conn, following)
        if not self._slots and self._loop.running:
            self._loop.stop()  # nothing to watch: the reactor (or a test's Clock) rests


class Keepalive:
    """What a connection does at the wheel's visits (``FramedProtocol`` mixes it in:
    it notes ``_heard`` at every read and ``_sent`` at every write).

    By default a side pings when it has *sent* nothing for a third of its idle timeout,
    so its peer hears from it that often whatever it hears back.  A side with
    ``PING_UNHEARD`` (the gateway) pings instead once it has *heard* nothing for
    ``PING_AFTER`` of its idle timeout: a peer that keeps to the first rule is never
    pinged, and each period costs the gateway one pong."""

    PING_AFTER = 1 / 3  # of the idle timeout
    PING_UNHEARD = False
    idle_timeout: float
    closing_reason: str | None
    _heard: float
    _sent: float
    _pinged: float
    _secured: bool
    _ping_n: int

    def timeoutConnection(self):
        self.close(f"silent for {self.idle_timeout:g}s (idle timeout)")  # type: ignore

    def _ping_after(self) -> float:
        return max(self.idle_timeout * self.PING_AFTER, 0.05)

    def keepalive(self, now: float) -> float | None:
        """The wheel's visit: close after the idle timeout, ping when it is time;
        when to visit next (None: gone)."""
        if not getattr(self, "connected", False) or self.closing_reason:
            return None
        if now - self._heard >= self.idle_timeout:
            self.timeoutConnection()
            return None
        ping_at = self._next_ping()
        if now >= ping_at and self._secured:  # before TLS there is nothing to ping with
            self._pinged = now
            self._ping()
            ping_at = self._next_ping()
        elif now >= ping_at:
            ping_at = math.inf
        return min(ping_at, self._heard + self.idle_timeout)

    def _next_ping(self) -> float:
        if not self.PING_UNHEARD:
            return self._sent + self._ping_after()
        if self._pinged >= self._heard:
            return math.inf  # pinged once in this silence: the idle timeout decides
        return self._heard + self._ping_after()

    def _ping(self):
        self._ping_n += 1
        self.send("ping", n=self._ping_n)  # type: ignore[attr-defined]


_wheels: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def wheel_for(clock) -> KeepaliveWheel:
    """The one wheel of ``clock`` (the reactor, or a test's Clock)."""
    wheel = _wheels.get(clock)
    if wheel is None:
        wheel = _wheels[clock] = KeepaliveWheel(clock)
    return wheel
