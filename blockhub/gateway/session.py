"""One hub's connection to the gateway, as an Automat machine (the typed API).

new -> securing (TLS under way; holds an unauthenticated place) -> greeted (hello
sent, join deadline running) -> admitted (in the presence table) -> closed.  A
connection turned away (at the door, for its key, its join or a missed deadline) is
refused until it is gone.  Only ``join`` is allowed once greeted, ``update``,
``relay`` and the relay circuits' frames only once admitted; anything else raises,
and the protocol turns that into a protocol error for this connection alone.

Relays and relay circuits' frames are the gateway's busiest, and Automat's dispatch
(a scan of every transition, comparing states) cost a relay more than relaying it: so
entering admitted hands them to their behaviours directly (``_admitted_frames``), and
leaving it takes that back; the machine still alone decides when they are allowed.

The machine asks ``Gateway`` for a verdict and gives it to itself as an input (``drop``,
``greet``, ``admit``, ``refuse``); Automat queues such an input until the transition
that sent it is done, so no output runs inside another.  The typed API has no state
accessor, so every transition records the name of the state it enters in
``GatewaySession.state`` (the manhole and error texts show it).
"""

from __future__ import annotations

from typing import Protocol

import attrs
from automat import NoTransition, TypeMachineBuilder
from twisted.internet.interfaces import IDelayedCall

from blockhub import machines
from blockhub.errors import BadMessage
from blockhub.gateway.gateway import NotAdmitted
from blockhub.hubinfo import HubInfo
from blockhub.ids import encode_id
from blockhub.timers import cancel
from blockhub.wire import features
from blockhub.wire.messages import RELAY_RAW, Message, raw_parts


class Inputs(Protocol):
    def connected(self) -> None:
        "TCP accepted (the protocol's connectionMade)"

    def drop(self, reason: str) -> None:
        "verdict: no unauthenticated place is left for its address"

    def secured(self) -> None:
        "TLS is up; the hub's key is known"

    def greet(self) -> None:
        "verdict: its key may join"

    def join(self, message: Message) -> None:
        "a join frame arrived"

    def admit(self, info: HubInfo) -> None:
        "verdict: the join is accepted"

    def refuse(self, reason: str) -> None:
        "verdict: turned away, with the reason it is told"

    def update(self, message: Message) -> None:
        "a HubInfo update arrived"

    def relay(self, message: Message) -> None:
        "a sealed handshake to relay arrived"

    def circuit(self, message: Message) -> None:
        "a relay circuit's frame arrived (circuit-open, -data, -credit, -close)"

    def join_timed_out(self) -> None:
        "the join deadline passed"

    def lost(self, reason: str) -> None:
        "the connection is gone"


@attrs.frozen
class Greeting:
    """What exists only while greeted: the challenge sent and the join deadline."""

    challenge: bytes = attrs.field(repr=False)
    deadline: IDelayedCall


class GatewaySession:
    """The per-connection state: the machine, the place it holds among unauthenticated
    connections and the name of its state.  The protocol calls ``connected``,
    ``secured``, ``received`` and ``lost``; nothing else writes here."""

    def __init__(self, conn, gateway, presence, relay, clock, join_timeout: float,
                 random, *, circuits):
        self.conn = conn
        self.gateway = gateway
        self.presence = presence
        self.relay = relay
        self.circuits = circuits
        self.clock = clock
        self.join_timeout = join_timeout
        self.random = random
        self.state = "new"
        self.features = features.NONE  # what the hub listed in its join
        self.slot = None  # a blockhub.net.opening.Slot from connected until joined or gone
        self._machine = _Machine(self)
        self._direct = _NOTHING_DIRECT  # kind -> behaviour(session, message), admitted

    def _admitted_frames(self, admitted: bool) -> None:
        """Entering admitted (True) or leaving it: its frames go straight to their
        behaviour, or back through the machine (tables shared: a table each cost 2 KiB)."""
        self._direct = _ADMITTED_DIRECT if admitted else _NOTHING_DIRECT
        raw = admitted and self.gateway.speaks(features.RAW_RELAY)
        self.conn.raw_frames = {RELAY_RAW: self._relay_raw} if raw else {}

    def _relay_raw(self, body: bytes) -> None:
        """A relay-raw frame once admitted, from the framed layer: no Message."""
        target, kind, sealed = raw_parts("relay-raw", body)
        self.relay.relay_box(self.conn, encode_id(target), kind, sealed)

    def connected(self) -> None:
        self._machine.connected()

    def secured(self) -> None:
        self._machine.secured()

    def received(self, message: Message) -> None:
        if message.kind == "refused":  # the hub found fault with us, and says why
            self.conn.close(f"the hub refused: {message['reason']}")
            return
        direct = self._direct.get(message.kind)
        if direct is not None:
            direct(self, message)
            return
        name = _INPUT_OF.get(message.kind)
        if name is None:
            raise BadMessage(f"a hub may not send {message.kind!r} to a gateway")
        try:
            getattr(self._machine, name)(message)
        except NoTransition:
            raise BadMessage(f"{message.kind!r} is not allowed in state {self.state}")

    def lost(self, reason: str) -> None:
        self._machine.lost(reason)

    def release(self) -> None:
        """Give the unauthenticated place back (joined, or gone)."""
        if self.slot is not None:
            self.slot.release()
            self.slot = None


_RELAYED = ("relay", "relay-raw")
_CIRCUIT = ("circuit-open", "circuit-data", "circuit-credit", "circuit-close")
# The machine's input for each kind a hub may send (the machine decides when).
_INPUT_OF = {"join": "join", "update": "update",
             **{kind: "relay" for kind in _RELAYED},
             **{kind: "circuit" for kind in _CIRCUIT}}
_builder = TypeMachineBuilder(Inputs, GatewaySession)


def _greeting(machine: Inputs, session: GatewaySession) -> Greeting:
    """Entering greeted: a fresh challenge, the join deadline, and the hello."""
    challenge = session.random(32)
    deadline = session.clock.callLater(session.join_timeout, machine.join_timed_out)
    session.gateway.hello(session.conn, challenge)
    return Greeting(challenge, deadline)


new = _builder.state("new")
securing = _builder.state("securing")
greeted = _builder.state("greeted", _greeting)
admitted = _builder.state("admitted")
refused = _builder.state("refused")
closed = _builder.state("closed")


_on = machines.on


@_on(new, [Inputs.connected], securing)
def _enter(machine: Inputs, session: GatewaySession) -> None:
    try:
        session.slot = session.gateway.take_slot(session.conn)
    except NotAdmitted as refusal:
        machine.drop(refusal.reason)


@_on(securing, [Inputs.drop], refused)
def _drop(machine: Inputs, session: GatewaySession, reason: str) -> None:
    session.conn.close(reason, abort=True)


@_on(securing, [Inputs.secured], securing)
def _check_key(machine: Inputs, session: GatewaySession) -> None:
    try:
        session.gateway.check_key(session.conn)
    except NotAdmitted as refusal:
        machine.refuse(refusal.reason)
    else:
        machine.greet()


@_on(securing, [Inputs.greet], greeted)
def _greeted(machine: Inputs, session: GatewaySession) -> None:
    """The hello went out as the greeting was made (``_greeting``)."""


@_on(securing, [Inputs.join, Inputs.update, Inputs.relay, Inputs.circuit], securing)
def _too_early(machine: Inputs, session: GatewaySession, message: Message) -> None:
    raise BadMessage(f"{message.kind} before the TLS handshake completed")


@_on(greeted, [Inputs.join], greeted)
def _judge(machine: Inputs, session: GatewaySession, greeting: Greeting,
           message: Message) -> None:
    session.features = features.parse(message.fields.get("features"))
    try:
        session.gateway.old_key(session.conn, session.features)
        info = session.gateway.judge_join(session.conn, message, greeting.challenge)
    except NotAdmitted as refusal:
        machine.refuse(refusal.reason)
    else:
        machine.admit(info)


@_on(greeted, [Inputs.admit], admitted)
def _admit(machine: Inputs, session: GatewaySession, greeting: Greeting,
           info: HubInfo) -> None:
    cancel(greeting.deadline)
    session.release()
    session.presence.join(session.conn, info)
    session.gateway.admitted(session.conn, session.features)
    session._admitted_frames(True)


@_on(greeted, [Inputs.refuse], refused)
def _refuse_greeted(machine: Inputs, session: GatewaySession, greeting: Greeting,
                    reason: str) -> None:
    cancel(greeting.deadline)
    session.gateway.refuse(session.conn, reason)


@_on(securing, [Inputs.refuse], refused)
def _refuse(machine: Inputs, session: GatewaySession, reason: str) -> None:
    session.gateway.refuse(session.conn, reason)


@_on(greeted, [Inputs.join_timed_out], refused)
def _missed_join(machine: Inputs, session: GatewaySession, greeting: Greeting) -> None:
    session.gateway.missed_join(session.conn)


@_on(admitted, [Inputs.update], admitted)
def _update(machine: Inputs, session: GatewaySession, message: Message) -> None:
    info = session.gateway.checked_info(session.conn, message["hubinfo"])
    if session.presence.update(session.conn, info) and \
            session.features.peer_has(features.HEADS):
        session.conn.send("kept", seq=info.seq)  # what our heads will commit to


def _relay(session: GatewaySession, message: Message) -> None:
    """A relay, once admitted (straight from ``GatewaySession.received``)."""
    if message.kind == "relay-raw" and not session.gateway.speaks(features.RAW_RELAY):
        raise BadMessage(f"relay-raw needs {features.RAW_RELAY}, which this gateway did "
                         "not list")
    session.relay.relay_box(session.conn, message["to"], message["kind"], message["sealed"])


def _circuit(session: GatewaySession, message: Message) -> None:
    """A circuit frame, once admitted (straight from ``GatewaySession.received``)."""
    if not (session.gateway.speaks(features.CIRCUIT)
            and session.features.peer_has(features.CIRCUIT)):
        raise BadMessage(f"{message.kind} needs {features.CIRCUIT}, which this gateway "
                         "or this hub did not list")
    session.circuits.received(session.conn, message)


_ADMITTED_DIRECT = {**{kind: _relay for kind in _RELAYED}, **{kind: _circuit for kind in _CIRCUIT}}
_NOTHING_DIRECT: dict = {}


@_on(admitted, [Inputs.lost], closed)
def _leave(machine: Inputs, session: GatewaySession, reason: str) -> None:
    session._admitted_frames(False)
    session.presence.leave(session.conn, reason)


@_on(greeted, [Inputs.lost], closed)
def _gone_greeted(machine: Inputs, session: GatewaySession, greeting: Greeting,
                  reason: str) -> None:
    cancel(greeting.deadline)
    session.release()


@_on(securing, [Inputs.lost], closed)
@_on(refused, [Inputs.lost], closed)
def _gone(machine: Inputs, session: GatewaySession, reason: str) -> None:
    session.release()


_Machine = _builder.build()
