"""The gateway's keys as they stand (docs/accountability.md, "Key succession"): the
key it serves, its commitment to the next one, and, after a rotation, the key it
succeeded with the signed succession, which it still serves during the grace to hubs
that ask for the old key by name (TLS server name), so that they can follow.

Read from the data directory by ``key_files.py``; replaced whole when the operator
commits to a next key or rotates (``Gateway.rekeyed``).
"""

import attrs

from blockhub.identity import Identity
from blockhub.succession import Commitment, Succession


@attrs.frozen
class GatewayKeys:
    identity: Identity
    commitment: Commitment | None = None  # to our next key, made by ``identity``
    succession: Succession | None = None  # from ``old`` to ``identity``
    old: Identity | None = attrs.field(default=None, repr=False)
    grace_until: float = 0.0  # until when ``old`` is served

    def serving_old(self, now: float) -> bool:
        return self.old is not None and now < self.grace_until

    def for_server_name(self, name: str | None, now: float) -> Identity:
        """Whose certificate a connection that asked for ``name`` gets: the old key's
        during the grace, when asked by its id; ours otherwise."""
        if name is not None and self.old is not None and name == self.old.id \
                and self.serving_old(now):
            return self.old
        return self.identity

    def is_old(self, served_id: str | None) -> bool:
        """Was this connection served under the key we succeeded?"""
        return served_id is not None and served_id != self.identity.id

    def status(self, now: float) -> dict:
        status: dict = {"id": self.identity.id,
                        "next_committed": self.commitment.next if self.commitment else None}
        if self.succession is not None:
            status["succeeded"] = {"old": self.succession.old, "at": self.succession.at,
                                   "grace_until": int(self.grace_until),
                                   "serving_old": self.serving_old(now)}
        return status
