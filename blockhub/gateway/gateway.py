"""The gateway's decisions: admit or refuse a hub, check what it sends, hand presence
to the table and handshakes to the relay.  Protocols call in; nothing here touches a
socket except through a connection's ``send`` and ``close``."""

import os

import attrs
from automat import NoTransition
from twisted.logger import Logger

from blockhub.errors import BadMessage
from blockhub.gateway.admission import Admission
from blockhub.gateway.presence import Presence
from blockhub.gateway.relay import Relay
from blockhub.gateway.session import GatewaySession
from blockhub.identity import Identity
from blockhub.ids import decode_id
from blockhub.limits import DEFAULT, Limits
from blockhub.net.opening import Openings
from blockhub.records import verify_hubinfo
from blockhub.wire.canonical import b64, unb64

log = Logger()


class Gateway:
    def __init__(self, identity: Identity, admission: Admission, clock, random=os.urandom,
                 limits: Limits = DEFAULT):
        self.identity = identity
        self.admission = admission
        self.clock = clock
        self.random = random
        self.presence = Presence(admission.mode, limits)
        self.counters = self.presence.counters
        self.limits = limits
        self.relay_handler = Relay(self.presence, clock, limits.relay_per_minute,
                                   limits.relay_burst)
        self.join_timeout = limits.join_timeout
        self.unauthenticated = Openings(limits.unauthenticated_per_ip)

    def connection_made(self, conn) -> None:
        """Count connections that have not joined yet, per address; too many from one
        address are dropped before TLS costs us anything more."""
        if self.unauthenticated.refuse(conn.host):
            self.counters.refused_unauthenticated += 1
            log.warn("too many unauthenticated connections from {host}; dropping one",
                     host=conn.host)
            conn.close("too many unauthenticated connections from this address", abort=True)
            return
        conn.opening = self.unauthenticated.enter(conn.host)

    def _release(self, conn) -> None:
        if conn.opening is not None:
            conn.opening.release()
            conn.opening = None

    def connection_secured(self, conn) -> None:
        reason = self.admission.refuse_key(conn.peer_id)
        if reason:
            self._refuse(conn, reason)
            return
        conn.session = GatewaySession(conn, self)
        conn.challenge = self.random(32)
        # A hub that completes TLS but never joins would hold a slot forever (its pongs
        # keep the idle timer happy), so joining has a deadline of its own.
        self.clock.callLater(self.join_timeout, self._join_deadline, conn)
        conn.send("hello", gateway=self.identity.id, observed=conn.address,
                  challenge=b64(conn.challenge), mode=self.admission.mode,
                  time=int(self.clock.seconds()))

    def received(self, conn, message) -> None:
        session = getattr(conn, "session", None)
        if session is None:
            raise BadMessage(f"{message.kind} before the TLS handshake completed")
        try:
            if message.kind == "join":
                info = self._checked_info(conn, message["hubinfo"])
                proof = message["proof"] and unb64(message["proof"])
                reason = self.admission.refuse_proof(conn.challenge, self.identity.public_key,
                                                     decode_id(conn.peer_id), proof)
                if reason:
                    self._refuse(conn, reason)
                    return
                if (len(self.presence.hubs) >= self.limits.max_hubs
                        and info.id not in self.presence.hubs):
                    self.counters.refused_full += 1
                    self._refuse(conn, "the gateway is full; try another gateway")
                    return
                if not self._listed(info.id) and self.presence.over_address_cap(info.id,
                                                                                conn.host):
                    self.counters.refused_per_address += 1
                    self._refuse(conn, "too many hubs from this address are online here; "
                                       "try another gateway")
                    return
                if not self.presence.allow_join(info.id, self.clock.seconds()):
                    self.counters.joins_refused += 1
                    self._refuse(conn, "this hub joins or updates too often; wait a minute "
                                       "before joining again")
                    return
                self._release(conn)
                session.join(info)
            elif message.kind == "update":
                session.update(self._checked_info(conn, message["hubinfo"]))
            elif message.kind == "relay":
                session.relay(message)
            else:
                raise BadMessage(f"a hub may not send {message.kind!r} to a gateway")
        except NoTransition:
            raise BadMessage(f"{message.kind!r} is not allowed in state {session.state}")

    def _listed(self, hub_id: str) -> bool:
        """Hubs on the allow list are the operator's own: no per-address cap."""
        keys = self.admission.allow_keys
        return keys is not None and hub_id in keys

    def _join_deadline(self, conn) -> None:
        if conn.connected and conn.session.state == "greeted":
            self.counters.refused += 1
            log.warn("hub {hub} from {address} did not join within {timeout}s",
                     hub=conn.peer_id, address=conn.address, timeout=self.join_timeout)
            conn.close(f"no join within {self.join_timeout:g}s", refuse=True)

    def connection_lost(self, conn, reason: str) -> None:
        self._release(conn)
        session = getattr(conn, "session", None)
        if session is not None:
            session.lost(reason)

    def relay(self, conn, message) -> None:
        self.relay_handler.relay(conn, message)

    def _checked_info(self, conn, value):
        info = verify_hubinfo(value)
        self.presence.check(conn, info, conn.transport.getPeer().host)
        return info

    def _refuse(self, conn, reason: str) -> None:
        self.counters.refused += 1
        log.warn("refusing hub {hub} from {address}: {reason}", hub=conn.peer_id,
                 address=conn.address, reason=reason)
        conn.close(reason, refuse=True)

    def shutdown(self, reason: str = "gateway stopping") -> None:
        self.presence.shutdown(reason)

    def status(self) -> dict:
        return {"role": "gateway", "id": self.identity.id, "mode": self.admission.mode,
                "restricted": self.admission.restricted,
                "online": len(self.presence.hubs),
                "counters": attrs.asdict(self.counters)}
