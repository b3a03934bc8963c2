"""Solving one request's proof of work off the reactor thread, in rounds.

Each round is ``ROUND`` tries in a thread (``run_in_thread(f, *args)``: a Deferred of
``f(*args)``; ``deferToThread`` in the daemon, at once in tests); between rounds the
reactor sees how far it got (``tries``, against ``expected``, for ``status``) and may
cancel it.  A round is short (about 0.1 s here), so a cancelled or stopped hub waits
for at most one.
"""

from twisted.logger import Logger

from blockhub import proof_of_work

log = Logger()

ROUND = 1 << 16
MAX_SOLVE = 28  # bits this hub will work for; a receiver asking more is refused


class Work:
    def __init__(self, run_in_thread, sender: str, receiver: str, nonce: bytes, at: int,
                 bits: int, done, round_size: int = ROUND):
        """``done(counter)`` is called on the reactor thread once a proof is found."""
        self.run_in_thread = run_in_thread
        self.request = (sender, receiver, nonce, at)
        self.bits = bits
        self.done = done
        self.round_size = round_size
        self.tries = 0
        self.cancelled = False

    @property
    def expected(self) -> int:
        """Tries a proof takes on average."""
        return 2 ** self.bits

    def start(self) -> None:
        self._round()

    def cancel(self) -> None:
        self.cancelled = True

    def status(self) -> dict:
        return {"bits": self.bits, "tries": self.tries, "expected": self.expected}

    def _round(self) -> None:
        d = self.run_in_thread(proof_of_work.solve, *self.request, self.bits, self.tries,
                               self.round_size)
        d.addCallbacks(self._ended, self._failed)

    def _ended(self, counter) -> None:
        if self.cancelled:
            return
        if counter is None:
            self.tries += self.round_size
            self._round()
            return
        self.tries = counter + 1
        self.done(counter)

    def _failed(self, failure) -> None:
        log.failure("proof of work stopped", failure)
