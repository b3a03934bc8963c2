"""The asking side of proofs of work: what a request to a hub needs, and getting it.

A receiver that may ask for work says so in its HubInfo (``meta.pow``, bits); a
rejection may name more (``Outgoing.bits``).  A request with an invite needs none.
Before each request goes out, ``prepare`` draws its nonce and time and, when bits are
asked, starts a ``Work`` for them and tells the request it is ``solving``; once found,
the request is ``solved`` and sent.  A proof is good for one request (its nonce and
time), so each request sent draws again.
"""

import os

from blockhub.hub.work import MAX_SOLVE, Work
from blockhub.proof_of_work import MAX_BITS


def asked_bits(info) -> int | None:
    """The difficulty a HubInfo publishes (None: it asks none, and may not read the
    proof field)."""
    bits = info.meta.get("pow") if info is not None else None
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits <= MAX_BITS:
        return None
    return bits


class Proofs:
    def __init__(self, identity, clock, run_in_thread, window: int, random=os.urandom):
        self.identity = identity
        self.clock = clock
        self.run_in_thread = run_in_thread
        self.window = window
        self.random = random

    def now(self) -> int:
        return int(self.clock.seconds())

    def prepare(self, out, info) -> dict | None:
        """Give ``out`` its nonce and time (``out.draft``); the request's ``seal_request``
        arguments for its invite or proof, or None while a proof is being found (or when
        the request failed: a receiver asking more than ``MAX_SOLVE``)."""
        if out.invite is not None:
            self._draw(out)
            return {"invite_key": out.invite.key}
        published = asked_bits(info)
        bits = max(published or 0, out.bits or 0)
        if published is None and out.bits is None:
            self._draw(out)
            return {}
        if bits == 0:
            self._draw(out)
            return {"pow": 0}
        if bits > MAX_SOLVE:
            out.refused(f"it asks a proof of work of {bits} bits, more than this hub does "
                        f"({MAX_SOLVE})")
            return None
        if out.proof is not None and out.proof[1] >= bits and \
                self.now() - out.draft[1] < self.window // 2:
            return {"pow": out.proof[0]}
        self._solve(out, bits)
        return None

    def _draw(self, out) -> tuple[bytes, int]:
        """A fresh nonce and time for the next request."""
        out.draft = (self.random(16), self.now())
        return out.draft

    def _solve(self, out, bits: int) -> None:
        self.cancel(out)
        nonce, at = self._draw(out)
        out.proof = None
        work: Work = Work(self.run_in_thread, self.identity.id, out.peer, nonce, at, bits,
                    lambda counter: self._found(out, work, counter))
        out.work = work
        out.solving()
        work.start()

    def _found(self, out, work, counter: int) -> None:
        if out.work is not work:
            return
        out.work, out.proof = None, (counter, work.bits)
        out.solved()

    def spent(self, out) -> None:
        """The request went out: its proof and nonce are used."""
        out.draft = out.proof = None

    def cancel(self, out) -> None:
        if out.work is not None:
            out.work.cancel()
            out.work = None
