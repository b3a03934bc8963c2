"""The book of this hub's handshake requests: which are open, what the database says
of them, and when each expires.

One ``Outgoing`` machine per hub we asked and one ``Incoming`` per hub that asked us.
Every change of state is written with the others of the same reactor turn, in one
commit (a handshake passes through several states within a turn or two) made with
the store's other commits of the moment (``Store.commit``), together with
what an incoming request was accepted on, so a restart finds each where it was; each
open request has a timer for its TTL.  What a request means is decided elsewhere
(``Handshakes``); this only keeps and restores.  Ended requests stay in view (``status``)
up to ``KEEP_ENDED`` of them, the oldest let go first, so a flood of fresh identities
costs a bounded amount of memory.
"""

import collections

from twisted.logger import Logger

from blockhub.batching import EndOfTurn
from blockhub.errors import StoreError
from blockhub.handshake_bodies import Request
from blockhub.hub.incoming import FINAL as IN_FINAL
from blockhub.hub.incoming import Incoming
from blockhub.hub.outgoing import OPEN as OUT_OPEN
from blockhub.hub.outgoing import Outgoing
from blockhub.invites import decode_invite
from blockhub.timers import cancel

log = Logger()
KEEP_ENDED = 1000

class RequestBook:
    def __init__(self, store, clock):
        self.store = store
        self.clock = clock
        self.outgoing: dict = {}  # hub id -> Outgoing
        self.incoming: dict = {}  # hub id -> Incoming
        self._ended: collections.deque = collections.deque()  # oldest first
        # (direction, machine, state, time), committed together at the end of the turn
        self._writes = EndOfTurn(clock, self._commit)

    def now(self) -> int:
        return int(self.clock.seconds())

    # -- restoring ------------------------------------------------------------------
    def open_rows(self):
        """The requests a restart must bring back, (direction, row) in creation order;
        those whose TTL passed while we were down are marked expired instead."""
        now = self.now()
        for row in self.store.requests():
            direction, state = row["direction"], row["state"]
            if (direction == "in" and state in IN_FINAL) or \
                    (direction == "out" and state not in OUT_OPEN):
                continue
            if row["expires_at"] <= now:
                self.store.set_request_state(direction, row["peer"], "expired", now)
                continue
            yield direction, row

    def restore(self, manager, own_id: str) -> None:
        """Bring back, for ``manager``, what was in flight before a restart: an outgoing
        request is sent again (a fresh nonce, its invite signing it again), an incoming
        one resumes on what it was accepted on."""
        blocked = self.store.blocked_keys()
        for direction, row in self.open_rows():
            if direction == "in":
                request = Request(row["peer"], own_id, row["endpoint"], row["created_at"],
                                  row["nonce"] or "", row["note"], row["observed"])
                inc = Incoming.restored(manager, request, row["observed"], row["state"],
                                        row["how"], blocked=row["peer"] in blocked)
                self.add(inc, row["expires_at"])
                inc.restarted()
            else:
                invite = decode_invite(row["invite"]) if row["invite"] else None
                out = Outgoing(manager, row["peer"], row["note"], invite)
                self.store.set_request_state("out", row["peer"], "requested", self.now())
                self.add(out, row["expires_at"])

    # -- keeping --------------------------------------------------------------------
    def add(self, machine, expires_at: int) -> None:
        """Keep ``machine`` (replacing a finished one for the same hub) until its TTL."""
        book = self.outgoing if isinstance(machine, Outgoing) else self.incoming
        book[machine.peer] = machine
        machine.expires_at = expires_at
        machine.timer = self.clock.callLater(max(0, expires_at - self.now()),
                                             machine.timed_out)

    def state_changed(self, machine, old, new) -> None:
        direction = "out" if isinstance(machine, Outgoing) else "in"
        self._writes.add((direction, machine, new, self.now()))

    def _commit(self, batch) -> None:
        """With the store's other commits of the moment (off the reactor thread), and
        without an fsync of its own: a state that only a crash of the machine loses
        sends a request again or resumes it a step back (the request, its nonce and a
        peering are synced)."""
        writes = [(direction, m.peer, state, now, getattr(m, "how", None))
                  for direction, m, state, now in batch]

        def failed(failure):
            failure.trap(StoreError)
            log.error("cannot record {n} request state(s): {error}", n=len(writes),
                      error=failure.getErrorMessage())

        self.store.commit(lambda store: store.set_request_states(writes),
                          synced=False).addErrback(failed)

    def finished(self, machine) -> None:
        """Its timer is cancelled; an outgoing request's invite code is no longer kept;
        beyond ``KEEP_ENDED`` ended requests, the oldest is let go."""
        machine.timer = cancel(machine.timer)
        self._ended.append(machine)
        while len(self._ended) > KEEP_ENDED:
            old = self._ended.popleft()
            book = self.outgoing if isinstance(old, Outgoing) else self.incoming
            peer, ended = old.peer, not old.is_open()
            if ended and book.get(peer) is old:
                del book[peer]
        if getattr(machine, "invite", None) is not None:
            try:
                self.store.forget_invite(machine.peer)
            except StoreError as e:
                log.error("cannot forget an invite code: {error}", error=str(e))

    def stop(self) -> None:
        """Cancel every timer and write what is still waiting."""
        for m in list(self.outgoing.values()) + list(self.incoming.values()):
            m.timer = cancel(m.timer)
        self._writes.run()

    # -- looking up -----------------------------------------------------------------
    def open_outgoing(self, hub_id: str):
        out = self.outgoing.get(hub_id)
        return out if out is not None and out.is_open() else None

    def open_incoming(self, hub_id: str):
        inc = self.incoming.get(hub_id)
        return inc if inc is not None and inc.is_open() else None

    def knows(self, hub_id: str) -> bool:
        """True while a request to or from ``hub_id`` is still open."""
        return self.open_outgoing(hub_id) is not None or \
            self.open_incoming(hub_id) is not None

    def waiting(self) -> list:
        """The incoming requests waiting for the operator, oldest first."""
        return [m for m in self.incoming.values() if m.waits_for_operator()]

    def status(self) -> list[dict]:
        rows = []
        for m in self.outgoing.values():
            rows.append({"direction": "out", "peer": m.peer, "state": m.state,
                         "note": m.note, "reason": m.reason,
                         "invite": m.invite.id if m.invite else None,
                         "work": m.work.status() if m.work else None})
        for m in self.incoming.values():
            rows.append({"direction": "in", "peer": m.peer, "state": m.state,
                         "note": m.request.note, "how": m.how, "reason": m.reason})
        return rows
