"""Punching direct paths through NAT with hubs we agreed to peer with (docs/nat.md).

Each hub learns the public address and port its router maps its listen port to: it
connects to its gateway from that port, and the gateway's hello says where it saw the
connection come from.  The side that will be the TLS client (the requester of a
handshake, the dialer of a peering) asks (``punch``, a ``PunchAttempt``): it sends its
addresses in an ``offer``, sealed to the peer through the gateway; the peer answers
with its own; the asker sends ``go`` and, half the measured round trip later (about
when ``go`` reaches the peer), dials the peer's addresses from its listen port while
the peer dials the asker's public one from its own.  Each router takes the other's dial
for the answer to its own, and the two dials meet as one TCP connection (a
simultaneous open), the asker its TLS client.  A peer on the same network is reached
at its local address instead, which only the asker dials, so that the roles hold.

No address goes to a hub we have not agreed to peer with, and none at all from a hub
run ``--peer-path relay``, one not listening, or one whose gateway link did not come
from its listen port (the public port is then unknown): such a hub answers with no
address, and the asker goes on to a relay circuit.
"""

import collections
import os

from twisted.internet.protocol import Factory
from twisted.logger import Logger

from blockhub.errors import BadMessage
from blockhub.handshake_bodies import DEFAULT_WINDOW
from blockhub.hub.punch_attempt import PunchAttempt
from blockhub.hubinfo import format_endpoint, parse_endpoint
from blockhub.punch_bodies import open_punch, seal_punch
from blockhub.timers import cancel
from blockhub.wire.canonical import unb64
from blockhub.wire.features import PUNCH

log = Logger()

GO_WAIT = 10.0  # seconds an answer waits for the asker's go


class Punching:
    def __init__(self, identity, clock, channel, hub, connect, client_tls, server_tls,
                 dialer_protocol, hello_for, expects, relay_only: bool = False,
                 random=os.urandom, window: int = DEFAULT_WINDOW):
        self.identity = identity
        self.clock = clock
        self.channel = channel  # relays the boxes; knows our gateway's features
        self.hub = hub  # where we listen (listen_host, listen_port), observed, local
        self.connect = connect  # (address, bind, factory) -> Deferred: TCP from a port
        self.client_tls = client_tls  # (peer id, protocol) -> TLS pinned to the peer
        self.server_tls = server_tls  # (address) -> a TLS protocol as the listener's
        self.dialer_protocol = dialer_protocol  # (opening frame) -> a PeerProtocol
        self.hello_for = hello_for  # (peer id) -> our peer-hello for it
        self.expects = expects  # (peer id) -> whether we agreed to peer with it
        self.relay_only = relay_only
        self.random = random
        self.window = window
        self.attempts: dict[str, PunchAttempt] = {}  # ours, by peer
        # theirs: peer -> (attempt, its outside addresses, timer)
        self._answered: dict[str, tuple] = {}
        self.counts: collections.Counter = collections.Counter()  # tried, direct, failed
        # Peers whose direct link was punched (not dialed at a local address): their
        # port opens only to a punch, so a lost link comes back over a circuit first.
        self.punched: set[str] = set()

    # -- where we can be reached ----------------------------------------------------------
    def addresses(self) -> tuple[str | None, str | None]:
        """(public, local) for a peer: the address and port our router maps our listen
        port to, and our own address with that port; (None, None) when we do not take
        part."""
        port, observed, local = self.hub.listen_port, self.hub.observed, self.hub.local
        if self.relay_only or not (port and observed and local):
            return None, None
        try:
            local_host, local_port = parse_endpoint(local)
            parse_endpoint(observed)
        except BadMessage:  # not IP addresses (a test's transport)
            return None, None
        if local_port != port or ":" in local_host:  # IPv4 only, from our listen port
            return None, None
        return observed, format_endpoint(local_host, port)

    def possible(self) -> bool:
        """Whether we can offer a punch now (our gateway carries them, we take part)."""
        return (self.addresses()[0] is not None and self.channel.gateway is not None
                and self.channel.speaks(PUNCH))

    @property
    def _bind(self) -> tuple[str, int]:
        host = self.hub.listen_host
        return ("0.0.0.0" if host in (None, "", "::") else host, self.hub.listen_port)

    # -- asking ---------------------------------------------------------------------------
    def punch(self, peer: str):
        """One attempt at a direct path to ``peer`` as its TLS client: a Deferred that
        fires with (peer protocol, address to record or None), or fails with Refused."""
        old = self.attempts.get(peer)
        if old is not None:
            old.failed("replaced by a newer attempt")
        attempt = PunchAttempt(self, peer, self.random(16))
        self.attempts[peer] = attempt
        self.counts["tried"] += 1
        attempt.result.addCallbacks(self._count, self._count, callbackArgs=("direct",),
                                    errbackArgs=("failed",))
        attempt.start()
        return attempt.result

    def stop(self) -> None:
        """End every attempt and forget every answer: the hub is stopping."""
        for attempt in list(self.attempts.values()):
            attempt.failed("hub stopping")
        for peer in list(self._answered):
            self._forget(peer)

    def _count(self, result, outcome: str):
        self.counts[outcome] += 1
        if outcome == "direct":
            peer = result[0].peer_id
            (self.punched.add if result[1] is None else self.punched.discard)(peer)
        return result

    def send(self, peer: str, step: str, number: bytes) -> bool:
        """Our box of ``step``: an offer with our addresses, a go without."""
        return self._box(peer, step, number,
                         *(self.addresses() if step != "go" else (None, None)))

    def _box(self, peer: str, step: str, number: bytes, public: str | None,
             local: str | None) -> bool:
        sealed = seal_punch(self.identity, peer, step, number, int(self.clock.seconds()),
                            public, local)
        return self.channel.relay(peer, "punch", sealed)

    def ended(self, attempt: PunchAttempt) -> None:
        if self.attempts.get(attempt.peer) is attempt:
            del self.attempts[attempt.peer]
        if attempt.state == "failed":
            log.info("no direct path to {peer} by punching: {reason}", peer=attempt.peer,
                     reason=attempt.reason)

    def log_dial(self, peer: str, address: str, error: str) -> None:
        log.debug("punch dial to {peer} at {address} failed: {error}", peer=peer,
                  address=address, error=error)

    def dial_from_listen_port(self, address: str, factory):
        return self.connect(address, self._bind, factory)

    def refused(self, peer: str, reason: str) -> bool:
        """The gateway did not deliver a box to ``peer``: True if it was our punch's."""
        attempt = self.attempts.get(peer)
        if attempt is None or attempt.state not in ("offering", "going"):
            return False
        attempt.failed(f"the gateway did not deliver it: {reason}")
        return True

    # -- hearing from the gateway -----------------------------------------------------------
    def delivered(self, sender: str, sealed: bytes) -> None:
        """A punch box (ProtocolError if it is bad, for the caller to count)."""
        punch = open_punch(self.identity, sealed, sender, int(self.clock.seconds()),
                           self.window)
        if not self.expects(sender):
            raise BadMessage("a punch from a hub we did not agree to peer with")
        if punch.step == "offer":
            self._offered(punch)
        elif punch.step == "answer":
            attempt = self.attempts.get(sender)
            if attempt is not None and unb64(punch.attempt) == attempt.number:
                attempt.answered(punch)
        else:
            self._go(punch)

    def _offered(self, punch) -> None:
        self._forget(punch.sender)
        public, local = self.addresses()
        self._box(punch.sender, "answer", unb64(punch.attempt), public, local)
        if public is None and local is None:
            return
        timer = self.clock.callLater(GO_WAIT, self._forget, punch.sender)
        self._answered[punch.sender] = (punch.attempt, punch.outside, timer)

    def _forget(self, peer: str) -> None:
        entry = self._answered.pop(peer, None)
        if entry is not None:
            cancel(entry[2])

    def _go(self, punch) -> None:
        entry = self._answered.get(punch.sender)
        if entry is None or entry[0] != punch.attempt:
            return
        self._forget(punch.sender)
        for address in entry[1]:
            d = self.connect(address, self._bind, _ServerSide(self.server_tls))
            d.addErrback(lambda f, address=address: self.log_dial(
                punch.sender, address, f.getErrorMessage()))


class _ServerSide(Factory):
    """Our dial at a punch carries TLS as the server: the peer door judges the hello."""

    def __init__(self, server_tls):
        self.server_tls = server_tls

    def buildProtocol(self, addr):
        return self.server_tls(addr)

