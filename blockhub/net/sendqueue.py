"""The frames a connection has written that its transport could not take yet, in order.

A connection writes straight to its transport while the transport keeps up; once the
transport asks it to pause, later frames wait here until it drains.  Two kinds of
entry: a frame made for this connection (its bytes count against the connection's
bound), and a run of frames held elsewhere and shared (a gateway's welcome list: the
presence table already holds every hub's frame), which costs only a reference and is
pulled a chunk at a time as the transport drains.

A second, low lane holds frames that yield to every other (a relay circuit's data):
they go only once nothing waits in the first lane, so presence and handshakes never
wait behind them.  Low frames of one key (a circuit) keep their order, and a frame the
queue's ``merge`` can join to its key's last waiting frame takes no entry of its own.
Pure: no transport, no clock.  A lane's deque exists only while something waits in
it: an idle connection, the common case on a gateway, holds none (760 bytes each).
"""

import collections
from collections.abc import Callable, Hashable, Iterable

# Join the second frame to the first, waiting one, in place; False when they cannot be.
Merge = Callable[[bytearray, bytes], bool]


class SendQueue:
    def __init__(self, merge: Merge | None = None):
        self._entries: collections.deque | None = None  # bytes or an iterator
        self.bytes = 0  # bytes of the frames made for this connection, waiting here
        self._low: collections.deque | None = None  # (key, bytearray)
        self._last: dict[Hashable, bytearray] = {}  # key -> its last low frame waiting
        self.low_bytes = 0  # bytes waiting in the low lane
        self.merge = merge

    def __bool__(self) -> bool:
        return bool(self._entries or self._low)

    def append(self, frame: bytes) -> None:
        if self._entries is None:
            self._entries = collections.deque()
        self._entries.append(frame)
        self.bytes += len(frame)

    def append_shared(self, frames: Iterable[bytes]) -> None:
        """Queue frames owned by someone else, read only when their turn comes."""
        if self._entries is None:
            self._entries = collections.deque()
        self._entries.append(iter(frames))

    def append_low(self, frame: bytes, key: Hashable = None) -> None:
        """Queue a frame behind everything of the first lane, now and later."""
        last = self._last.get(key) if key is not None else None
        if last is not None and self.merge is not None:
            before = len(last)
            if self.merge(last, frame):
                self.low_bytes += len(last) - before
                return
        entry = bytearray(frame)
        if self._low is None:
            self._low = collections.deque()
        self._low.append((key, entry))
        self.low_bytes += len(entry)
        if key is not None:
            self._last[key] = entry

    def waiting(self, key: Hashable) -> bool:
        """Does a low frame of ``key`` still wait?"""
        return key in self._last

    def drop_low(self, key: Hashable) -> None:
        """Forget the low frames of ``key`` still waiting (a circuit that ended)."""
        if self._last.pop(key, None) is not None:
            kept = [(k, entry) for k, entry in self._low or () if k != key]
            self.low_bytes = sum(len(entry) for _k, entry in kept)
            self._low = collections.deque(kept) if kept else None

    def take(self, budget: int) -> list[bytes]:
        """The next frames, in order, about ``budget`` bytes of them (at least one
        frame when any is waiting): the first lane's, then the low lane's."""
        out = self._take_first(budget)
        size = sum(len(frame) for frame in out)
        low = self._low
        while low and size < budget:
            key, entry = low.popleft()
            if key is not None and self._last.get(key) is entry:
                del self._last[key]
            self.low_bytes -= len(entry)
            out.append(bytes(entry))
            size += len(entry)
        if not low:
            self._low = None
        return out

    def _take_first(self, budget: int) -> list[bytes]:
        out: list[bytes] = []
        size = 0
        entries = self._entries
        while entries and size < budget:
            entry = entries[0]
            if isinstance(entry, bytes):
                entries.popleft()
                self.bytes -= len(entry)
                out.append(entry)
                size += len(entry)
                continue
            for frame in entry:
                out.append(frame)
                size += len(frame)
                if size >= budget:
                    break
            else:
                entries.popleft()  # that run is done
        if not entries:
            self._entries = None
        return out

    def clear(self) -> None:
        self._entries = self._low = None
        self.bytes = 0
        self._last.clear()
        self.low_bytes = 0
