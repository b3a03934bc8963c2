"""Typed errors, so each one is caught and reported once, in the right place.

``UserError`` is a mistake the operator can fix (the CLI prints it as one line).
``ProtocolError`` and its children are what a peer did wrong: the protocol that meets
one logs it and closes that peer's connection, and nothing else.
"""


class BlockhubError(Exception):
    """Base of every error blockhub raises on purpose."""


class UserError(BlockhubError):
    """A mistake in how blockhub was invoked or configured; shown as one line."""


class BadId(UserError, ValueError):
    """A hub or gateway id that is malformed or fails its checksum."""


class BadInvite(UserError, ValueError):
    """An invite code that is malformed or fails its checksum (mistyped, cut short)."""


class StoreError(UserError):
    """The hub's database refused a read or a write; reported in one line.  Here, below
    every layer, so the decisions that meet it need not import the storage."""


class ProtocolError(BlockhubError):
    """A peer sent something that breaks the protocol; its connection is closed."""


class FrameTooLarge(ProtocolError):
    """A frame header announced more bytes than the limit allows."""


class BadFrame(ProtocolError):
    """A frame is truncated, has an unknown version or type, or a body that does not parse."""


class BadMessage(ProtocolError):
    """A frame parsed but its fields are missing, of the wrong type, or out of bounds."""


class BadSignature(ProtocolError):
    """A signature does not verify for the claimed key and message kind."""


class BadSeal(ProtocolError):
    """A sealed box cannot be opened with our key (wrong recipient or tampered)."""


class StaleMessage(ProtocolError):
    """A signed message whose timestamp falls outside the freshness window."""


class Replayed(BadMessage):
    """A handshake whose nonce was seen before."""


class Blocked(BadMessage):
    """A request from a hub the operator blocked."""


class TooManyPending(BadMessage):
    """A request that would take the pending list past its limit."""


class InviteRefused(BadMessage):
    """A request with an invite this hub cannot honour; the subclass says why."""


class InviteUnknown(InviteRefused):
    """The invite key is not one of ours."""


class InviteExpired(InviteRefused):
    """The invite's time ran out."""


class InviteRevoked(InviteRefused):
    """The operator revoked the invite."""


class InviteUsedUp(InviteRefused):
    """The invite has no uses left."""


class NotEnoughWork(BadMessage):
    """An unsolicited request whose proof of work is below the difficulty asked."""


class Refused(ProtocolError):
    """The other side refused us, with a reason we should show the operator."""
