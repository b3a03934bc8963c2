"""Progress and the time left for the long runs (``make fuzz``, ``make flood``).

On a terminal one line is rewritten in place; otherwise (a log, a CI job) a line is
printed each time another tenth of the work is done, so the log stays readable.
"""

import sys
import time


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h07m``: short enough for a status line."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """``total`` units of work; ``update(done, note)`` as they complete.

    The time left assumes the rest goes at the average pace so far."""

    def __init__(self, what: str, total: float, stream=None, clock=time.monotonic,
                 tty: bool | None = None):
        self.what = what
        self.total = max(total, 1)
        self.stream = stream or sys.stdout
        self.clock = clock
        self.started = clock()
        self.tty = self.stream.isatty() if tty is None else tty
        self._tenths = 0  # tenths already reported (not on a terminal)
        self._width = 0   # length of the line on screen (on a terminal)

    def elapsed(self) -> float:
        return self.clock() - self.started

    def line(self, done: float, note: str = "") -> str:
        fraction = min(max(done / self.total, 0.0), 1.0)
        elapsed = self.elapsed()
        if 0 < fraction < 1:
            left = f"{duration(elapsed * (1 - fraction) / fraction)} left"
        elif fraction >= 1:
            left = f"done in {duration(elapsed)}"
        else:
            left = "time left unknown"
        text = f"{self.what}: {fraction:4.0%}  {left}"
        return f"{text}  {note}" if note else text

    def update(self, done: float, note: str = "") -> None:
        if self.tty:
            text = self.line(done, note)
            pad = " " * max(0, self._width - len(text))
            self.stream.write(f"\r{text}{pad}")
            self._width = len(text)
            self.stream.flush()
            return
        tenths = int(10 * min(done / self.total, 1.0))
        if tenths > self._tenths:
            self._tenths = tenths
            print(self.line(done, note), file=self.stream, flush=True)

    def say(self, text: str) -> None:
        """A line of its own, above the progress line on a terminal."""
        self._clear()
        print(text, file=self.stream, flush=True)

    def finish(self, note: str = "") -> None:
        """Leave the final state on a line of its own."""
        if self.tty:
            self.update(self.total, note)
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
        elif self._tenths < 10:
            self.update(self.total, note)

    def _clear(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
