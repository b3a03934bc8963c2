"""One direct hub-to-hub connection's life, as an Automat machine (the typed API).

tls (TLS under way) -> opening (the dialer has sent peer-hello or peer-request and
waits for peer-ready; the acceptor waits for that first frame; a deadline runs either
way, since pings would keep the idle timer happy forever) -> linked (messages and acks
flow) or refused (told no, or the deadline passed) -> closed.

The acceptor asks its opener (the handshakes) for a verdict, at once or once a peering
is durable (a Deferred), answers peer-ready when it comes (``decided``) and gives it
to itself as an input (``accepted`` or ``turned_away``); Automat holds such an input
until the transition that sent it is done.  The dialer's ``ready`` Deferred fires once, with
(status, reason) when decided or a ``Refused`` failure when the connection goes first.
Each transition records the name of the state it enters in ``PeerSession.state``.
"""

from __future__ import annotations

from typing import Protocol

import attrs
from automat import TypeMachineBuilder
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger

from blockhub import machines
from blockhub.errors import BadMessage, Refused
from blockhub.timers import cancel
from blockhub.wire import features
from blockhub.wire.messages import Message

log = Logger()

FIRST_FRAME_TIMEOUT = "FirstFrameTimeout"


class Inputs(Protocol):
    def secured(self) -> None:
        "TLS is up; the other hub's key is known"

    def frame(self, message: Message) -> None:
        "a frame arrived (pings aside)"

    def accepted(self) -> None:
        "verdict: the link is up"

    def turned_away(self, status: str, reason: str | None) -> None:
        "verdict: pending or rejected; the connection closes"

    def decided(self, status: str, reason: str | None) -> None:
        "the opener's verdict on the first frame (at once, or once it is durable)"

    def deadline(self) -> None:
        "the opening did not finish in time"

    def drained(self) -> None:
        "the transport took everything that waited"

    def lost(self, reason: str) -> None:
        "the connection is gone"


@attrs.frozen
class Opening:
    """What exists only while opening: its deadline."""

    deadline: IDelayedCall


class PeerSession:
    """The connection's state beside its bytes: the machine, the listener's place it
    holds until it opened (``slot``), and the dialer's ``ready``."""

    def __init__(self, conn, peers, opener, first, clock, timeout: float, count,
                 spoken: tuple[str, ...] | None = None):
        self.conn = conn
        self.peers = peers  # carries messages once linked
        self.opener = opener  # decides an accepted connection's first frame
        self.first = first  # (kind, fields) for the dialer; None when accepting
        self.clock = clock
        self.timeout = timeout
        self.count = count  # called with a refusal kind, for the listener's figures
        self.spoken = spoken  # the features we list (None: no list, as before them)
        self.features = features.NONE  # what the other hub listed
        self.deciding = False  # the acceptor judged the first frame: no other may come
        self.state = "tls"
        self.slot = None
        self.ready: Deferred | None = Deferred() if first is not None else None
        self._machine = _Machine(self)

    @property
    def dialer(self) -> bool:
        return self.first is not None

    def secured(self) -> None:
        self._machine.secured()

    def frame(self, message: Message) -> None:
        self._machine.frame(message)

    def drained(self) -> None:
        self._machine.drained()

    def lost(self, reason: str) -> None:
        self._machine.lost(reason)

    def peer_error(self, message: Message) -> None:
        """The other hub's ``error``: a fatal one ends the connection, another is news."""
        if message["fatal"]:
            self.conn.close(f"peer error: {message['reason']}")
        else:
            log.info("peer {peer} says: {reason}", peer=self.conn.peer_id,
                     reason=message["reason"])

    def opened(self) -> None:
        """The opening is over: give back the listener's place."""
        if self.slot is not None:
            self.slot.release()
            self.slot = None

    def answer(self, result) -> None:
        """Tell the dialer how the opening ended: (status, reason), or the error."""
        if self.ready is not None:
            ready, self.ready = self.ready, None
            ready.errback(result) if isinstance(result, Exception) else ready.callback(result)


_builder = TypeMachineBuilder(Inputs, PeerSession)


def _listing(fields: dict, spoken: list[str] | None) -> dict:
    """A frame's fields with our feature list, when we send one."""
    return fields if spoken is None else dict(fields, features=spoken)


def _opening(machine: Inputs, session: PeerSession) -> Opening:
    """Entering opening: the deadline, and the dialer's first frame."""
    deadline = session.clock.callLater(session.timeout, machine.deadline)
    if session.dialer:
        kind, fields = session.first
        session.conn.send(kind, **_listing(fields, features.ours(session.spoken)))
    return Opening(deadline)


tls = _builder.state("tls")
opening = _builder.state("opening", _opening)
linked = _builder.state("linked")
refused = _builder.state("refused")
closed = _builder.state("closed")
_on = machines.on


@_on(tls, [Inputs.secured], opening)
def _secured(machine: Inputs, session: PeerSession) -> None:
    """The first frame went out as the opening was made (``_opening``)."""


@_on(opening, [Inputs.frame], opening)
def _first_frame(machine: Inputs, session: PeerSession, state: Opening,
                 message: Message) -> None:
    kind = message.kind
    if kind == "error":
        session.peer_error(message)
        return
    if session.dialer:
        if kind != "peer-ready":
            raise BadMessage(f"expected peer-ready, got {kind!r}")
        session.features = features.parse(message.fields.get("features"))
        status, reason = message["status"], message["reason"]
    elif kind in ("peer-hello", "peer-request") and not session.deciding:
        session.features = features.parse(message.fields.get("features"))
        session.deciding = True
        verdict = session.opener.inbound(session.conn, message)  # or once it is durable
        verdict = verdict if isinstance(verdict, Deferred) else succeed(verdict)
        verdict.addCallback(lambda v: machine.decided(*v)).addErrback(
            lambda f: log.failure("deciding a peer's opening", f))
        return
    else:
        raise BadMessage(f"a peer must open with peer-hello or peer-request (once), not {kind!r}")
    _verdict(machine, status, reason)


def _verdict(machine: Inputs, status: str, reason: str | None) -> None:
    if status == "connected":
        machine.accepted()
    else:
        machine.turned_away(status, reason)


@_on(opening, [Inputs.decided], opening)
def _tell_dialer(machine: Inputs, session: PeerSession, state: Opening, status: str,
                 reason: str | None) -> None:
    # Our list only to a dialer that sent one (an older one refuses the field).
    spoken = features.ours(session.spoken) if session.features.listed else None
    session.conn.send("peer-ready", **_listing({"status": status, "reason": reason},
                                               spoken))
    _verdict(machine, status, reason)


@_on(refused, [Inputs.decided], refused)
@_on(closed, [Inputs.decided], closed)
def _decided_too_late(machine: Inputs, session: PeerSession, status: str,
                      reason: str | None) -> None:
    """Too late to tell: a peering it recorded stays, and the dialer comes again."""


@_on(opening, [Inputs.accepted], linked)
def _linked(machine: Inputs, session: PeerSession, state: Opening) -> None:
    cancel(state.deadline)
    session.opened()
    session.peers.attach(session.conn)
    session.answer(("connected", None))


@_on(opening, [Inputs.turned_away], refused)
def _turned_away(machine: Inputs, session: PeerSession, state: Opening, status: str,
                 reason: str | None) -> None:
    cancel(state.deadline)
    session.opened()
    session.answer((status, reason))
    session.conn.close(f"peer link {status}" + (f": {reason}" if reason else ""))


@_on(opening, [Inputs.deadline], refused)
def _too_slow(machine: Inputs, session: PeerSession, state: Opening) -> None:
    conn = session.conn
    expected = "peer-ready" if session.dialer else "peer-hello or peer-request"
    reason = f"no {expected} within {session.timeout:g}s of TLS"
    session.count(FIRST_FRAME_TIMEOUT)
    log.warn("peer connection from {address} ({peer}): {reason}", address=conn.address,
             peer=conn.peer_id, reason=reason)
    session.opened()
    conn.send("error", reason=reason, fatal=True)
    conn.close(reason)


@_on(linked, [Inputs.frame], linked)
def _carry(machine: Inputs, session: PeerSession, message: Message) -> None:
    kind = message.kind
    if kind == "message":
        session.peers.message_received(session.conn, message)
    elif kind == "ack":
        session.peers.acked(session.conn, message["seq"])
    elif kind == "error":
        session.peer_error(message)
    elif kind == "peer-head" and session.features.peer_has(features.HEADS) and \
            features.HEADS in (session.spoken or ()):
        session.peers.head_heard(session.conn, message["head"])
    else:
        raise BadMessage(f"unexpected {kind!r} on an established peer link")


@_on(linked, [Inputs.drained], linked)
def _send_on(machine: Inputs, session: PeerSession) -> None:
    session.peers.drained(session.conn)


@_on(tls, [Inputs.drained], tls)
@_on(refused, [Inputs.drained], refused)
@_on(closed, [Inputs.drained], closed)
def _nothing_to_send(machine: Inputs, session: PeerSession) -> None:
    """Only a linked connection has messages waiting for the transport."""


@_on(opening, [Inputs.drained], opening)
def _nothing_yet(machine: Inputs, session: PeerSession, state: Opening) -> None:
    """The opening frames need no pacing."""


@_on(refused, [Inputs.frame], refused)
def _after_refusal(machine: Inputs, session: PeerSession, message: Message) -> None:
    raise BadMessage(f"{message.kind!r} after the link was refused")


@_on(tls, [Inputs.frame], tls)
def _before_tls(machine: Inputs, session: PeerSession, message: Message) -> None:
    raise BadMessage(f"{message.kind!r} before the TLS handshake completed")


@_on(linked, [Inputs.lost], closed)
def _unlinked(machine: Inputs, session: PeerSession, reason: str) -> None:
    session.peers.detach(session.conn, reason)


@_on(opening, [Inputs.lost], closed)
def _gone_opening(machine: Inputs, session: PeerSession, state: Opening,
                  reason: str) -> None:
    cancel(state.deadline)
    session.opened()
    session.answer(Refused(reason))


@_on(tls, [Inputs.lost], closed)
@_on(refused, [Inputs.lost], closed)
def _gone(machine: Inputs, session: PeerSession, reason: str) -> None:
    session.opened()
    session.answer(Refused(reason))


_Machine = _builder.build()
