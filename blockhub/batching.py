"""Work that arrives during one reactor turn, done together at the end of it.

Several of the hub's writes are cheap to make one at a time and expensive to commit
one at a time (an fsync each): messages received, messages queued to send, changes of
request state.  An ``EndOfTurn`` collects them and hands the whole batch to its
``flush`` once the reactor has finished what it was doing (a ``callLater(0)`` on the
injected clock).
"""

from blockhub.timers import cancel


class EndOfTurn:
    def __init__(self, clock, flush):
        self.clock = clock
        self.flush = flush  # called with the list of items of one turn
        self.items: list = []
        self._call = None

    def add(self, item) -> None:
        self.items.append(item)
        if self._call is None:
            self._call = self.clock.callLater(0, self.run)

    def keep(self, wanted) -> None:
        """Forget the waiting items for which ``wanted(item)`` is false."""
        self.items = [item for item in self.items if wanted(item)]

    def run(self) -> None:
        """Flush now (what waits, if anything); the turn's call is no longer needed."""
        self._call = cancel(self._call)
        items, self.items = self.items, []
        if items:
            self.flush(items)
