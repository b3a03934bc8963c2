"""The gateway's decisions about a hub connection: may it take an unauthenticated
place, may its key join, is its join acceptable, and how it is told no.

Each hub connection's session machine (``session.py``) asks these questions at the
right moment and acts on the verdict; a refusal is the exception ``NotAdmitted`` with the
reason the hub is told.  Nothing here keeps per-connection state or touches a socket
except through a connection's ``send`` and ``close``.
"""

import attrs
from twisted.logger import Logger

from blockhub.gateway.admission import Admission
from blockhub.gateway.circuits import Circuits
from blockhub.gateway.counters import Counters
from blockhub.gateway.presence import Presence
from blockhub.hubinfo import HubInfo, verify_hubinfo
from blockhub.identity import Identity
from blockhub.ids import decode_id
from blockhub.limits import Limits
from blockhub.net.opening import Openings, Slot
from blockhub.when import utc
from blockhub.wire import features
from blockhub.wire.canonical import b64, unb64

log = Logger()


class NotAdmitted(Exception):
    """A hub turned away; ``reason`` is the one line it is told."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Gateway:
    def __init__(self, identity: Identity, admission: Admission, clock, limits: Limits,
                 presence: Presence, counters: Counters, unauthenticated: Openings,
                 circuits: Circuits, spoken: tuple[str, ...] | None = features.SPOKEN,
                 bans=None):
        self.identity = identity
        self.spoken = spoken  # the features we list in hello (None: no list, as of old)
        self.admission = admission
        self.clock = clock
        self.limits = limits
        self.presence = presence
        self.counters = counters
        self.unauthenticated = unauthenticated  # connections that have not joined yet
        self.circuits = circuits  # its status only; circuit frames go from the session
        self.bans = bans  # the operator's bans (bans.py), or None

    def take_slot(self, conn) -> Slot:
        """A place among the connections that have not joined, counted per address;
        too many from one address are refused before TLS costs us anything more."""
        if self.unauthenticated.refuse(conn.host):
            self.counters.refused_unauthenticated += 1
            log.warn("too many unauthenticated connections from {host}; dropping one",
                     host=conn.host)
            raise NotAdmitted("too many unauthenticated connections from this address")
        return self.unauthenticated.enter(conn.host)

    def check_key(self, conn) -> None:
        """Refuse a hub whose key may not join, before it says anything."""
        reason = self.admission.refuse_key(conn.peer_id)
        if reason:
            self.counters.refused_key += 1
            raise NotAdmitted(reason)
        until = self.bans.until(conn.peer_id) if self.bans is not None else None
        if until is not None:
            self.counters.refused_banned += 1
            raise NotAdmitted(f"banned by this gateway's operator until {utc(until)}")

    def hello(self, conn, challenge: bytes) -> None:
        conn.send("hello", gateway=self.identity.id, observed=conn.address,
                  challenge=b64(challenge), mode=self.admission.mode,
                  time=int(self.clock.seconds()), features=features.ours(self.spoken))

    def speaks(self, feature: str) -> bool:
        return feature in (self.spoken or ())

    def judge_join(self, conn, message, challenge: bytes) -> HubInfo:
        """The joining hub's checked HubInfo, or ``NotAdmitted``; a HubInfo that is not
        the connected hub's, or that breaks the mode, is a protocol error."""
        info = self.checked_info(conn, message["hubinfo"])
        proof = message["proof"] and unb64(message["proof"])
        reason = self.admission.refuse_proof(challenge, self.identity.public_key,
                                             decode_id(conn.peer_id), proof)
        if reason:
            self.counters.refused_proof += 1
            raise NotAdmitted(reason)
        presence = self.presence
        if len(presence.hubs) >= self.limits.max_hubs and info.id not in presence.hubs:
            self.counters.refused_full += 1
            raise NotAdmitted("the gateway is full; try another gateway")
        if not self._listed(info.id) and presence.over_address_cap(info.id, conn.host):
            self.counters.refused_per_address += 1
            raise NotAdmitted("too many hubs from this address are online here; "
                          "try another gateway")
        if not presence.allow_join(info.id, self.clock.seconds()):
            self.counters.joins_refused += 1
            raise NotAdmitted("this hub joins or updates too often; wait a minute "
                          "before joining again")
        return info

    def _listed(self, hub_id: str) -> bool:
        """Hubs on the allow list are the operator's own: no per-address cap."""
        keys = self.admission.allow_keys
        return keys is not None and hub_id in keys

    def checked_info(self, conn, value) -> HubInfo:
        info = verify_hubinfo(value)
        self.presence.check(conn, info, conn.host)
        return info

    def refuse(self, conn, reason: str) -> None:
        self.counters.refused += 1
        log.warn("refusing hub {hub} from {address}: {reason}", hub=conn.peer_id,
                 address=conn.address, reason=reason)
        conn.close(reason, refuse=True)

    def missed_join(self, conn) -> None:
        """A hub that completes TLS but never joins would hold a slot forever (its
        pongs keep the idle timer happy), so joining has a deadline of its own."""
        timeout = self.limits.join_timeout
        self.counters.refused += 1
        self.counters.join_timeouts += 1
        log.warn("hub {hub} from {address} did not join within {timeout}s",
                 hub=conn.peer_id, address=conn.address, timeout=timeout)
        conn.close(f"no join within {timeout:g}s", refuse=True)

    def shutdown(self, reason: str = "gateway stopping") -> None:
        self.presence.shutdown(reason)

    def status(self) -> dict:
        return {"role": "gateway", "id": self.identity.id, "mode": self.admission.mode,
                "restricted": self.admission.restricted,
                "online": len(self.presence.hubs),
                "circuits": self.circuits.status(),
                "counters": attrs.asdict(self.counters)}
