"""Relay circuits at the gateway (docs/circuits.md): two admitted hubs that each asked
for a circuit to the other are joined, and the gateway forwards their opaque bytes.

``received`` takes every circuit frame of an admitted hub.  A ``circuit-open`` is
refused (``circuit-refused``) when circuits are off, the other hub is not online here
or the asker is at its limit; otherwise it waits (``circuit_requests.py``) until the
other hub asks for the asker, and then both get ``circuit-ready`` with the same new
number; a circuit already open between the two is replaced.  Data goes on at once
within the sender's credit, in its connection's low lane (everything else goes
first); credit goes back to the sender when its rate, and the total of all circuits,
allow it: a sender over its rate is slowed by waiting for its credit, never by the
gateway holding data.  A hub that leaves, a circuit without data for the idle timeout
and a broken flow control end circuits, both members told (the one that closed is
not).  Data and credit for a circuit that is not the sender's are dropped and counted.
Only hub ids and circuit numbers are logged, never what a circuit carries.
"""

from twisted.logger import Logger

from blockhub.gateway.circuit import Circuit, Member
from blockhub.gateway.circuit_requests import Request, Requests
from blockhub.gateway.circuits_remote import RemoteCircuits
from blockhub.gateway.counters import Counters
from blockhub.limits import Limits
from blockhub.ratelimit import TokenBucket
from blockhub.wire import features, messages

log = Logger()

LAST_NUMBER = 2**31 - 1  # circuit numbers run 1..LAST_NUMBER, then start again


class Circuits(RemoteCircuits):
    def __init__(self, presence, counters: Counters, clock, limits: Limits,
                 bridge=lambda: None):
        self.presence = presence
        self.bridge = bridge  # -> the cluster's CircuitBridge, or None alone
        self.counters = counters
        self.clock = clock
        self.limits = limits
        self.requests = Requests(clock, limits.circuit_pending_timeout, self._expired)
        self.table: dict[int, Circuit] = {}        # number -> circuit
        self.by_pair: dict[frozenset, Circuit] = {}
        self.peers: dict[str, set[str]] = {}       # hub -> the hubs it has a circuit with
        # What all circuits together may carry; its burst is a circuit's.
        self.total = TokenBucket(limits.circuit_bandwidth, limits.circuit_burst,
                                 clock.seconds())
        self.carried = 0  # payload bytes carried, ever
        self._next = 1
        self._handlers = {"circuit-open": self.open, "circuit-data": self.data,
                          "circuit-credit": self.credit, "circuit-close": self.close}

    def received(self, conn, message: messages.Message) -> None:
        """A circuit frame from an admitted hub."""
        self._handlers[message.kind](conn, message)

    # -- opening -------------------------------------------------------------------
    def open(self, conn, message: messages.Message) -> None:
        asker, target = conn.peer_id, message["to"]
        reason = self._refusal(asker, target)
        if reason is not None:
            self._refuse(conn, target, reason)
            return
        waiting = self.requests.take(target, asker)
        if waiting is not None:
            self._join(waiting.conn, conn)
            return
        self.requests.hold(conn, target)
        node = self._elsewhere(target)
        if node is not None:
            self.bridge().open(node, asker, target)

    def _refusal(self, asker: str, target: str) -> str | None:
        most = self.limits.max_circuits_per_hub
        if not most:
            return "this gateway carries no circuits"
        other = self.presence.connection_for(target)
        if target == asker or (other is None and self._elsewhere(target) is None):
            return "that hub is not online here"
        if other is not None and not self._takes_circuits(other):
            return "that hub does not take circuits"
        slots = self.requests.targets(asker) | self.peers.get(asker, set())
        if target not in slots and len(slots) >= most:
            return f"too many circuits: at most {most} per hub, open or asked for"
        return None

    def _takes_circuits(self, conn) -> bool:
        """The one place that asks whether a hub takes circuits: a hub that did not
        list "circuit/1" in its join is never sent circuit frames (and its own
        circuit frames are refused before they reach here)."""
        return conn.session.features.peer_has(features.CIRCUIT)

    def _refuse(self, conn, target: str, reason: str) -> None:
        self.counters.circuits_refused += 1
        conn.send("circuit-refused", to=target, reason=reason)

    def _expired(self, request: Request) -> None:
        timeout = self.limits.circuit_pending_timeout
        self._refuse(request.conn, request.target,
                     f"that hub did not ask for this circuit within {timeout:g}s")

    def _join(self, first, second) -> Circuit:
        """``first`` asked for ``second`` before ``second`` asked for it."""
        old = self.by_pair.get(frozenset((first.peer_id, second.peer_id)))
        if old is not None:
            self.counters.circuits_replaced += 1
            self._end(old, "replaced", old.members)
        now = self.clock.seconds()
        circuit = Circuit(self._number(), first, second, self.limits, now)
        self.table[circuit.number] = circuit
        self.by_pair[circuit.pair] = circuit
        for one, two in (first, second), (second, first):
            self.peers.setdefault(one.peer_id, set()).add(two.peer_id)
        circuit.idle_timer = self.clock.callLater(self.limits.circuit_idle_timeout,
                                                  self._idle, circuit)
        self.counters.circuits_opened += 1
        log.info("circuit {circuit} opened between {first} and {second}",
                 circuit=circuit.number, first=first.peer_id, second=second.peer_id)
        first.send("circuit-ready", circuit=circuit.number, peer=second.peer_id)
        second.send("circuit-ready", circuit=circuit.number, peer=first.peer_id)
        return circuit

    def _number(self) -> int:
        while True:
            number, self._next = self._next, self._next % LAST_NUMBER + 1
            if number not in self.table:
                return number

    # -- carrying ------------------------------------------------------------------
    def _ends(self, conn, message: messages.Message) -> tuple[Circuit, Member, Member] | None:
        circuit = self.table.get(message["circuit"])
        ends = circuit.ends(conn) if circuit is not None else None
        if circuit is None or ends is None:
            return None
        return circuit, ends[0], ends[1]

    def data(self, conn, message: messages.Message) -> None:
        found = self._ends(conn, message)
        if found is None:
            self.counters.circuit_unknown += 1
            return
        circuit, sender, receiver = found
        payload: bytes = message["data"]
        if not sender.flow.sent(len(payload)):
            self._violated(circuit, sender, "data beyond its credit")
            return
        now = self.clock.seconds()
        sender.rate.take(len(payload), now)
        self.total.take(len(payload), now)
        circuit.last_data = now
        self.carried += len(payload)
        receiver.conn.send_circuit_data(circuit.number, payload)

    def credit(self, conn, message: messages.Message) -> None:
        found = self._ends(conn, message)
        if found is None:
            self.counters.circuit_unknown += 1
            return
        circuit, receiver, sender = found
        if not sender.flow.credited(message["bytes"]):
            self._violated(circuit, receiver, "credit beyond what it was sent")
            return
        self._pass_credit(circuit, sender)

    def _pass_credit(self, circuit: Circuit, sender: Member) -> None:
        """Give ``sender`` the credit held for it at the end of this reactor turn (all
        the credit of a turn in one frame, so a flood of tiny credits costs the
        sender's connection one frame), or later while it, or all circuits together,
        is over its rate: then one frame for all that waited."""
        if sender.credit_timer is not None or not sender.flow.held:
            return
        now = self.clock.seconds()
        wait = max(sender.rate.wait(now), self.total.wait(now))
        if wait > 0:
            self.counters.circuit_credit_delayed += 1
        sender.credit_timer = self.clock.callLater(wait, self._credit_due, circuit, sender)

    def _credit_due(self, circuit: Circuit, sender: Member) -> None:
        sender.credit_timer = None
        if self.table.get(circuit.number) is not circuit:
            return
        now = self.clock.seconds()
        if max(sender.rate.wait(now), self.total.wait(now)) > 0:
            self._pass_credit(circuit, sender)  # others took the total meanwhile
        else:
            sender.conn.send("circuit-credit", circuit=circuit.number,
                             bytes=sender.flow.release())

    # -- ending --------------------------------------------------------------------
    def close(self, conn, message: messages.Message) -> None:
        """A member closes: the other is told, with its reason.  A close for a circuit
        that already ended (both closed at once) is nothing to count."""
        found = self._ends(conn, message)
        if found is not None:
            circuit, closer, other = found
            log.info("circuit {circuit} closed by {hub}", circuit=circuit.number,
                     hub=closer.hub)
            self._end(circuit, message["reason"], (other,))

    def _violated(self, circuit: Circuit, culprit: Member, what: str) -> None:
        self.counters.circuit_violations += 1
        log.warn("circuit {circuit}: hub {hub} sent {what}; closing it",
                 circuit=circuit.number, hub=culprit.hub, what=what)
        self._end(circuit, "flow control violated", circuit.members)

    def _idle(self, circuit: Circuit) -> None:
        timeout = self.limits.circuit_idle_timeout
        quiet = self.clock.seconds() - circuit.last_data
        if quiet < timeout:
            circuit.idle_timer = self.clock.callLater(timeout - quiet, self._idle, circuit)
            return
        circuit.idle_timer = None
        self.counters.circuits_idle += 1
        log.info("circuit {circuit} carried no data for {timeout}s; closing it",
                 circuit=circuit.number, timeout=timeout)
        self._end(circuit, f"no data for {timeout:g}s", circuit.members)

    def leave(self, conn) -> None:
        """``conn``'s hub left (or a newer connection replaced it): its requests are
        forgotten, those naming it refused, its circuits closed, the others told."""
        _own, naming = self.requests.gone(conn)
        for request in naming:
            self._refuse(request.conn, request.target, "that hub left")
        for peer in list(self.peers.get(conn.peer_id, ())):
            circuit = self.by_pair.get(frozenset((conn.peer_id, peer)))
            ends = circuit.ends(conn) if circuit is not None else None
            if circuit is not None and ends is not None:
                self._end(circuit, "the other hub left", (ends[1],))

    def _end(self, circuit: Circuit, reason: str, tell) -> None:
        """Forget ``circuit`` and its data not written yet; tell ``tell`` why."""
        del self.table[circuit.number]
        del self.by_pair[circuit.pair]
        one, two = (member.hub for member in circuit.members)
        for hub, peer in (one, two), (two, one):
            self.peers[hub].discard(peer)
            if not self.peers[hub]:
                del self.peers[hub]
        circuit.stop()
        for member in circuit.members:
            member.conn.drop_low(circuit.number)
        for member in tell:
            member.conn.send("circuit-close", circuit=circuit.number,
                             reason=reason[:messages.MAX_REASON])

    def status(self) -> dict:
        return {"count": len(self.table), "pending": len(self.requests),
                "bytes": self.carried}
