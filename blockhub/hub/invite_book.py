"""The invites this hub made, in its database: create, list, revoke, and use.

The hub keeps each invite's public key, never its secret (that is in the code, which
only the operator sees once).  A use is recorded, with the invited hub's key approved,
in one transaction, and only then is the request accepted: after a crash the use is
either counted or the request was never accepted.  Why an invite is refused is the
error's type (``InviteUnknown``, ``InviteExpired``, ``InviteRevoked``, ``InviteUsedUp``),
which the handshakes count under ``refusals``.
"""

import os

from blockhub.errors import (
    InviteExpired,
    InviteRevoked,
    InviteUnknown,
    InviteUsedUp,
    Replayed,
    UserError,
)
from blockhub.invites import MAX_GATEWAYS, Invite, encode_invite
from blockhub.wire.canonical import b64

DEFAULT_USES = 1
DEFAULT_TTL = 86400
MAX_USES = 10_000
MAX_INVITE_NOTE = 200


def _state(row, now: int) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if row["expires_at"] <= now:
        return "expired"
    return "active" if row["uses"] > 0 else "used"


class InviteBook:
    def __init__(self, store, clock, random=os.urandom):
        self.store = store
        self.clock = clock
        self.random = random

    def now(self) -> int:
        return int(self.clock.seconds())

    def create(self, inviter: str, gateways: list[str], uses: int = DEFAULT_USES,
               ttl: int = DEFAULT_TTL, note: str = "") -> dict:
        """A new invite to this hub (``inviter``) at ``gateways`` (``ID@HOST:PORT``,
        the first ``MAX_GATEWAYS``): its code, shown once, and what ``list`` shows."""
        if not 0 < uses <= MAX_USES:
            raise UserError(f"--uses is 1 to {MAX_USES}, not {uses}")
        if ttl <= 0:
            raise UserError(f"--ttl is a number of seconds above 0, not {ttl}")
        if len(note) > MAX_INVITE_NOTE:
            raise UserError(f"--note is longer than {MAX_INVITE_NOTE} characters")
        if not gateways:
            raise UserError("this hub knows no gateway address to put in an invite")
        invite = Invite(inviter, tuple(gateways[:MAX_GATEWAYS]), self.random(16))
        code = encode_invite(invite)
        now = self.now()
        self.store.write("INSERT INTO invites (id, key, note, created_at, expires_at, uses) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (invite.id, b64(bytes(invite.key.verify_key)), note, now,
                          now + ttl, uses))
        return {"code": code, "id": invite.id, "expires": now + ttl, "uses": uses,
                "note": note, "gateways": list(invite.gateways)}

    def all(self) -> list[dict]:
        now = self.now()
        return [{"id": r["id"], "expires": r["expires_at"], "uses": r["uses"],
                 "note": r["note"], "created": r["created_at"], "state": _state(r, now),
                 "used_by": self._users(r["id"])}
                for r in self.store.execute("SELECT * FROM invites ORDER BY created_at")]

    def _users(self, invite_id: str) -> list[str]:
        return [r[0] for r in self.store.execute(
            "SELECT peer FROM invite_uses WHERE invite = ? ORDER BY at", (invite_id,))]

    def revoke(self, invite_id: str) -> dict:
        """Refuse every later use of the invite; uses already made stand."""
        row = self.store.execute("SELECT * FROM invites WHERE id = ?",
                                 (invite_id.strip().lower(),)).fetchone()
        if row is None:
            raise UserError(f"no invite {invite_id!r} on this hub (see: blockhub invite list)")
        if row["revoked_at"] is None:
            self.store.write("UPDATE invites SET revoked_at = ? WHERE id = ?",
                             (self.now(), row["id"]))
        return {"id": row["id"], "state": "revoked", "uses": row["uses"]}

    def _active(self, key: str):
        """The row of the usable invite whose public key is ``key``, or why not."""
        row = self.store.execute("SELECT * FROM invites WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise InviteUnknown("the request's invite is not one of this hub's")
        state = _state(row, self.now())
        if state != "active":
            error = {"revoked": InviteRevoked, "expired": InviteExpired,
                     "used": InviteUsedUp}[state]
            raise error(f"invite {row['id']} is {state}")
        return row

    def check(self, key: str) -> None:
        """Whether the invite could be used now; read-only."""
        self._active(key)

    def use(self, key: str, peer: str, nonce: str) -> str:
        """Spend one use of the invite whose public key is ``key`` (base64) on ``peer``'s
        request ``nonce``, approving ``peer``'s key, durably; the invite's id, or an
        ``InviteRefused`` that says why not (nothing is written then)."""
        now = self.now()
        with self.store.transaction():
            row = self._active(key)
            if self.store.execute("SELECT 1 FROM invite_uses WHERE nonce = ?",
                                  (nonce,)).fetchone():
                raise Replayed("replayed invited request (its nonce was used before)")
            self.store.execute("UPDATE invites SET uses = uses - 1 WHERE id = ?", (row["id"],))
            self.store.execute("INSERT INTO invite_uses VALUES (?, ?, ?, ?)",
                               (row["id"], peer, nonce, now))
            self.store.execute("INSERT OR IGNORE INTO approved_keys VALUES (?, ?)", (peer, now))
        return row["id"]
