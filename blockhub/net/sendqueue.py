"""The frames a connection has written that its transport could not take yet, in order.

A connection writes straight to its transport while the transport keeps up; once the
transport asks it to pause, later frames wait here until it drains.  Two kinds of
entry: a frame made for this connection (its bytes count against the connection's
bound), and a run of frames held elsewhere and shared (a gateway's welcome list: the
presence table already holds every hub's frame), which costs only a reference and is
pulled a chunk at a time as the transport drains.  Pure: no transport, no clock.
"""

import collections
from collections.abc import Iterable


class SendQueue:
    def __init__(self):
        self._entries: collections.deque = collections.deque()  # bytes or an iterator
        self.bytes = 0  # bytes of the frames made for this connection, waiting here

    def __bool__(self) -> bool:
        return bool(self._entries)

    def append(self, frame: bytes) -> None:
        self._entries.append(frame)
        self.bytes += len(frame)

    def append_shared(self, frames: Iterable[bytes]) -> None:
        """Queue frames owned by someone else, read only when their turn comes."""
        self._entries.append(iter(frames))

    def take(self, budget: int) -> list[bytes]:
        """The next frames, in order, about ``budget`` bytes of them (at least one
        frame when any is waiting)."""
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
        return out

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
