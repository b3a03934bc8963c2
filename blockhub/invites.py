"""Invite codes: one line that lets a friend's hub find and ask this hub (issue 18).

A code carries the inviter's hub id, the gateways it can be found at
(``ID@HOST:PORT``, at most ``MAX_GATEWAYS``) and a fresh 16-byte secret.  The secret
seeds the invite's own Ed25519 key pair: the inviter keeps the public key only, and
the invited hub signs its request with the private one, so the secret itself never
travels.  Text form: ``bhinvite`` and lowercase RFC 4648 base32 (no padding) of

    version (1) | inviter key (32) | secret (16) | gateway count (1)
    | per gateway: key (32) | length (1) | HOST:PORT (ASCII) | checksum (4)

where the checksum is BLAKE2b-32 of everything before it, so a mistyped or truncated
code is refused locally, in one line, instead of naming someone else.  White space
anywhere in the code (a chat client's line breaks) and letter case are ignored.
Pure code.
"""

import base64
import hashlib
import re

import attrs
from nacl.signing import SigningKey

from blockhub.errors import BadId, BadInvite
from blockhub.ids import decode_id, encode_id

PREFIX = "bhinvite"
VERSION = 1
SECRET_SIZE = 16
MAX_GATEWAYS = 8
MAX_ADDRESS = 64  # characters of one gateway's HOST:PORT
_CHECKSUM = 4
_ADDRESS = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")
_WHITE = re.compile(r"\s+")


@attrs.frozen
class Invite:
    inviter: str  # the inviting hub's id
    gateways: tuple[str, ...]  # "ID@HOST:PORT" each
    secret: bytes = attrs.field(repr=False)

    @property
    def key(self) -> SigningKey:
        """The invite's signing key, derived from the secret."""
        return invite_key(self.secret)

    @property
    def id(self) -> str:
        return invite_id(bytes(self.key.verify_key))


def invite_key(secret: bytes) -> SigningKey:
    return SigningKey(hashlib.blake2b(secret, digest_size=32,
                                      person=b"blockhub-invkey").digest())


def invite_id(public_key: bytes) -> str:
    """A short name for an invite (``invite list``, ``invite revoke``), from its key."""
    digest = hashlib.blake2b(public_key, digest_size=10, person=b"blockhub-invid").digest()
    return "inv" + base64.b32encode(digest).decode("ascii").lower()


def _sum(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=_CHECKSUM, person=b"blockhub-invite").digest()


def encode_invite(invite: Invite) -> str:
    if len(invite.secret) != SECRET_SIZE:
        raise ValueError(f"an invite secret is {SECRET_SIZE} bytes")
    if not 0 < len(invite.gateways) <= MAX_GATEWAYS:
        raise ValueError(f"an invite names 1 to {MAX_GATEWAYS} gateways")
    out = bytearray([VERSION]) + decode_id(invite.inviter) + invite.secret
    out.append(len(invite.gateways))
    for spec in invite.gateways:
        gateway, address = _split(spec)
        out += decode_id(gateway) + bytes([len(address)]) + address.encode("ascii")
    out += _sum(bytes(out))
    return PREFIX + base64.b32encode(bytes(out)).decode("ascii").rstrip("=").lower()


def _split(spec: str) -> tuple[str, str]:
    gateway, sep, address = spec.partition("@")
    if not sep or len(address) > MAX_ADDRESS or not _ADDRESS.fullmatch(address):
        raise ValueError(f"not ID@HOST:PORT: {spec[:100]!r}")
    return gateway, address


def decode_invite(text: str) -> Invite:
    """The invite a code names, or ``BadInvite`` with why, in one line."""
    if not isinstance(text, str):
        raise BadInvite("an invite code is text")
    code = _WHITE.sub("", text).lower()
    if not code.startswith(PREFIX):
        raise BadInvite(f"not an invite code (it starts with {PREFIX!r}): {code[:40]!r}")
    body = code[len(PREFIX):].upper()
    try:
        raw = base64.b32decode(body + "=" * (-len(body) % 8))
    except ValueError:
        raise BadInvite("not an invite code: bad characters (mistyped?)")
    data, check = raw[:-_CHECKSUM], raw[-_CHECKSUM:]
    if len(raw) <= _CHECKSUM or _sum(data) != check:
        raise BadInvite("the invite code's checksum does not match (mistyped or cut short?)")
    try:
        invite = _parse(data)
    except (IndexError, UnicodeDecodeError, ValueError) as e:
        raise BadInvite(f"the invite code is malformed: {e}")
    if encode_invite(invite) != code:  # the last character's unused bits, as for ids
        raise BadInvite("not an invite code: mistyped last character?")
    return invite


def _parse(data: bytes) -> Invite:
    if data[0] != VERSION:
        raise ValueError(f"version {data[0]}, and this blockhub reads version {VERSION}")
    inviter, secret, count = data[1:33], data[33:33 + SECRET_SIZE], data[33 + SECRET_SIZE]
    if len(secret) != SECRET_SIZE or not 0 < count <= MAX_GATEWAYS:
        raise ValueError(f"{count} gateways, or no secret")
    at, gateways = 34 + SECRET_SIZE, []
    for _ in range(count):
        key, length = data[at:at + 32], data[at + 32]
        address = data[at + 33:at + 33 + length].decode("ascii")
        if len(key) != 32 or len(address) != length or not _ADDRESS.fullmatch(address):
            raise ValueError("a gateway is not ID@HOST:PORT")
        gateways.append(f"{encode_id(key)}@{address}")
        at += 33 + length
    if at != len(data):
        raise ValueError("bytes left over after the gateways")
    try:
        return Invite(encode_id(inviter), tuple(gateways), bytes(secret))
    except BadId as e:
        raise ValueError(str(e))
