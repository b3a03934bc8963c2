"""Commits that take what arrived over several reactor turns, one commit at a time.

``EndOfTurn`` gathers one turn's items; a ``GroupCommit`` hands them to its
``commit`` at once when no commit is under way, and otherwise keeps them until the
one under way is done, then hands over everything that waited, in one.  While the
store's writer thread fsyncs one batch, the reactor reads the next, and the batches
grow with the time a commit takes (one fsync for many messages).  Only one commit is
ever under way, so they happen in the order the items arrived.  With a ``size`` (an
item's bytes) and ``max_bytes``, a commit takes only the oldest items up to that many
bytes (at least one), so that the first of a large burst go out after a short commit
instead of all of them after a long one.
"""

from twisted.logger import Logger

from blockhub.batching import EndOfTurn

log = Logger()


class GroupCommit:
    def __init__(self, clock, commit, size=None, max_bytes: int = 0):
        self.commit = commit  # (items) -> Deferred that fires once they are dealt with
        self.size = size
        self.max_bytes = max_bytes
        self._turn = EndOfTurn(clock, self._arrived)
        self.waiting: list = []  # gathered while a commit was under way
        self.busy = False

    def add(self, item) -> None:
        self._turn.add(item)

    def keep(self, wanted) -> None:
        """Forget the items not committed yet for which ``wanted(item)`` is false."""
        self._turn.keep(wanted)
        self.waiting = [item for item in self.waiting if wanted(item)]

    def drain(self) -> list:
        """Everything not handed to ``commit`` yet, taken away (closing: the caller
        commits it however it still can)."""
        self._turn.run()
        items, self.waiting = self.waiting, []
        return items

    def _arrived(self, items) -> None:
        self.waiting.extend(items)
        self._next()

    def _next(self) -> None:
        if self.busy or not self.waiting:
            return
        items, self.waiting = self._take(self.waiting)
        self.busy = True
        self.commit(items).addErrback(self._bug).addBoth(self._done)

    def _take(self, waiting):
        """(what the next commit takes, what still waits)."""
        if self.size is None:
            return waiting, []
        total = 0
        for n, item in enumerate(waiting):
            total += self.size(item)
            if total > self.max_bytes and n:
                return waiting[:n], waiting[n:]
        return waiting, []

    @staticmethod
    def _bug(failure) -> None:
        log.failure("bug in a group commit's handling", failure)

    def _done(self, _) -> None:
        self.busy = False
        self._next()
