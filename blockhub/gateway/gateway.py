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
from blockhub.gateway.keys import GatewayKeys
from blockhub.gateway.presence import Presence
from blockhub.hubinfo import HubInfo, verify_hubinfo
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
    def __init__(self, keys: GatewayKeys, admission: Admission, clock, limits: Limits,
                 presence: Presence, counters: Counters, unauthenticated: Openings,
                 circuits: Circuits, spoken: tuple[str, ...] | None = features.SPOKEN,
                 bans=None):
        self.keys = keys  # ours, our commitment to the next, the one we succeeded
        self.spoken = spoken  # the features we list in hello (None: no list, as of old)
        self._speaks = frozenset(spoken or ())  # asked of every relay
        self.admission = admission
        self.clock = clock
        self.limits = limits
        self.presence = presence
        self.counters = counters
        self.unauthenticated = unauthenticated  # connections that have not joined yet
        self.circuits = circuits  # its status only; circuit frames go from the session
        self.bans = bans  # the operator's bans (bans.py), or None

    @property
    def identity(self):
        return self.keys.identity

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
        served = getattr(conn, "served_id", None)  # the old key, to a hub that named it
        conn.send("hello", gateway=served if self.keys.is_old(served) else self.identity.id,
                  observed=conn.address,
                  challenge=b64(challenge), mode=self.admission.mode,
                  time=int(self.clock.seconds()), features=features.ours(self.spoken))

    def speaks(self, feature: str) -> bool:
        return feature in self._speaks

    def _both(self, hub_features, feature: str) -> bool:
        return self.speaks(feature) and hub_features.peer_has(feature)

    def old_key(self, conn, hub_features) -> None:
        """A hub that still pins the key we succeeded (during the grace, the TLS
        server name got it that key's certificate): give it the succession to follow,
        and refuse it, saying what our key is now."""
        if not self.keys.is_old(getattr(conn, "served_id", None)):
            return
        succession = self.keys.succession
        if succession is not None and self._both(hub_features, features.SUCCESSION):
            conn.send("succession", succession=succession.to_json())
        self.counters.refused_old_key += 1
        raise NotAdmitted(f"this gateway's key is now {self.identity.id}, which succeeded "
                          f"{conn.served_id}: pin the new key")

    def admitted(self, conn, hub_features) -> None:
        """Tell a hub that reads it our commitment to our next key, if we made one."""
        commitment = self.keys.commitment
        if commitment is not None and self._both(hub_features, features.SUCCESSION):
            conn.send("next-key", commitment=commitment.to_json())

    def rekeyed(self, keys: GatewayKeys) -> None:
        """The operator committed to a next key or rotated: hubs admitted under a key
        we no longer hold get the succession and are closed, to come back pinning the
        new one; the others hear of a new commitment."""
        before, self.keys = self.keys, keys
        for conn, _info in list(self.presence.hubs.values()):
            hub_features = conn.session.features
            if keys.is_old(conn.served_id):
                try:
                    self.old_key(conn, hub_features)
                except NotAdmitted as refusal:
                    self.refuse(conn, refusal.reason)
            elif keys.commitment != before.commitment:
                self.admitted(conn, hub_features)

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
                "keys": self.keys.status(self.clock.seconds()),
                "restricted": self.admission.restricted,
                "online": len(self.presence.hubs),
                "circuits": self.circuits.status(),
                "counters": attrs.asdict(self.counters)}
