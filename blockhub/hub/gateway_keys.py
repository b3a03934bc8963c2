"""What a hub knows of its gateways' keys (docs/accountability.md, "Key succession"):
the commitment each pinned gateway made to its next key, and the successions it
followed.  A succession is followed only from the key we pin, signed by both keys, to
the key committed to before; a second commitment to another key is refused, since
only a thief or a mistake makes one.  The pinned list and the config file are changed
through ``follow`` and ``record`` (``gateway_pins.succeed``, ``ConfigFile.succeed``).
"""

import attrs
from twisted.logger import Logger

from blockhub.errors import ProtocolError
from blockhub.succession import (
    Commitment,
    Succession,
    check_succession,
    refusal,
    verify_commitment,
)

log = Logger()


class GatewayKeyBook:
    def __init__(self, clock, file=None, follow=lambda old, new: None,
                 record=lambda old, new: None):
        """``file``: a ``GatewayKeysFile`` (None: in memory); ``follow(old, new)``
        re-pins the link; ``record(old, new)`` writes the config back."""
        self.clock = clock
        self.file = file
        self.follow = follow
        self.record = record
        self.commitments: dict[str, Commitment] = {}
        self.followed: dict[str, Succession] = {}  # by the old key
        self.refused: dict[str, dict] = {}  # by the gateway: the last thing refused
        if file is not None:
            self.commitments, self.followed = file.load()

    def successor(self, gateway_id: str) -> str:
        """The key we follow for ``gateway_id``: itself, or the end of its successions."""
        seen = {gateway_id}
        while gateway_id in self.followed:
            gateway_id = self.followed[gateway_id].new
            if gateway_id in seen:
                break
            seen.add(gateway_id)
        return gateway_id

    def pinned(self, entries) -> list:
        """The configured gateways with every succession we followed applied (a hub
        started with an old ``--gateway`` still reaches the gateway's new key)."""
        out = []
        for entry in entries:
            new = self.successor(entry.id)
            if new != entry.id:
                log.info("gateway {old} is now {new} (a succession we followed)",
                         old=entry.id, new=new)
                self.record(entry.id, new)
                entry = attrs.evolve(entry, id=new)
            out.append(entry)
        return out

    def _refuse(self, gateway_id: str, what: str, reason: str) -> None:
        log.critical("gateway {gateway}: refusing its {what}: {reason}", gateway=gateway_id,
                     what=what, reason=reason)
        self.refused[gateway_id] = {"what": what, "reason": reason,
                                    "at": int(self.clock.seconds())}

    def heard_commitment(self, pinned: str, value) -> None:
        """The gateway we pin told us the digest of its next key."""
        try:
            commitment = verify_commitment(value)
        except ProtocolError as e:
            return self._refuse(pinned, "commitment", str(e))
        if commitment.gateway != pinned:
            return self._refuse(pinned, "commitment", "it is another key's")
        standing = self.commitments.get(pinned)
        if standing is not None and standing.next != commitment.next:
            return self._refuse(pinned, "commitment", "it names another next key than "
                                "the one it committed to before")
        if standing is None:
            log.info("gateway {gateway} committed to its next key", gateway=pinned)
            self.commitments[pinned] = commitment
            self._save()

    def heard_succession(self, pinned: str, value) -> str | None:
        """The gateway we pin moved to another key: the key we follow now, or None."""
        try:
            succession = check_succession(value)
        except ProtocolError as e:
            self._refuse(pinned, "succession", str(e))
            return None
        reason = refusal(succession, pinned, self.commitments.get(pinned))
        if reason is not None:
            self._refuse(pinned, "succession", reason)
            return None
        self.followed[pinned] = succession
        self._save()
        log.info("gateway {old} moved to its committed key {new}; following it",
                 old=pinned, new=succession.new)
        self.follow(pinned, succession.new)
        self.record(pinned, succession.new)
        return succession.new

    def _save(self) -> None:
        if self.file is not None:
            self.file.save(self.commitments, self.followed)

    def status(self) -> dict:
        """Per gateway: its commitment's digest, whom it became, what we refused."""
        rows: dict[str, dict] = {}
        for gateway_id, commitment in self.commitments.items():
            rows.setdefault(gateway_id, {})["next_committed"] = commitment.next
        for old, succession in self.followed.items():
            rows.setdefault(old, {})["succeeded_by"] = succession.new
        for gateway_id, refused in self.refused.items():
            rows.setdefault(gateway_id, {})["refused"] = refused
        return rows
