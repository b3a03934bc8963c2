"""Punch bodies: how two hubs that agreed to peer tell each other, sealed through the
gateway, where each can be reached directly and when to dial (docs/nat.md).

One attempt is three boxes with the same random ``attempt`` number: the dialing side's
``offer`` (its addresses), the other side's ``answer`` (its own), and the dialing side's
``go``, after which both dial at once.  ``public`` is the address and port the NAT maps
the hub's listen port to (what its gateway saw it connect from, from that port);
``local`` is the hub's own address on its network with its listen port, for a peer on
the same network, and from which the peer also guesses the public address with the
listen port itself (a router that keeps ports maps it so; one that did not when the
gateway link was made may do now).  An answer with neither says the other side does
not take part.
Signed by the sender and sealed to the receiver like a handshake request, so the
gateway carries them without reading them.  Pure code: the time is passed in.
"""

import attrs

from blockhub.handshake_bodies import DEFAULT_WINDOW, open_body
from blockhub.hubinfo import format_endpoint, parse_endpoint
from blockhub.identity import Identity
from blockhub.wire import canonical, envelope
from blockhub.wire.schema import MAX_TIME, Bytes, Id, Int, Optional, Str

STEPS = ("offer", "answer", "go")
_PUNCH = {"from": Id(), "to": Id(), "at": Int(0, MAX_TIME), "attempt": Bytes(16, 16),
          "step": Str(8, STEPS), "public": Optional(Str(64)), "local": Optional(Str(64))}


@attrs.frozen
class Punch:
    sender: str
    step: str
    attempt: str  # base64 of the attempt's 16 random bytes
    public: str | None = None  # HOST:PORT
    local: str | None = None

    @property
    def outside(self) -> tuple[str, ...]:
        """Where the sender's router may let a punch in: ``public``, and its host with
        the listen port."""
        if not self.public:
            return ()
        if not self.local:
            return (self.public,)
        guess = format_endpoint(parse_endpoint(self.public)[0], parse_endpoint(self.local)[1])
        return tuple(dict.fromkeys((self.public, guess)))

    @property
    def candidates(self) -> tuple[str, ...]:
        """Every address to dial: ``local`` first, then the outside ones."""
        return tuple(dict.fromkeys(a for a in (self.local, *self.outside) if a))


def seal_punch(identity: Identity, to_id: str, step: str, attempt: bytes, now: int,
               public: str | None = None, local: str | None = None) -> bytes:
    body = {"from": identity.id, "to": to_id, "at": now, "attempt": canonical.b64(attempt),
            "step": step}
    for name, value in (("public", public), ("local", local)):
        if value:
            parse_endpoint(value)  # ours: a mistake here is a bug, not a peer's fault
            body[name] = value
    return envelope.seal(to_id, envelope.sign(identity, "punch", body))


def open_punch(identity: Identity, sealed: bytes, sender: str | None, now: int,
               window: int = DEFAULT_WINDOW) -> Punch:
    """Open and check a punch box for ``identity`` from ``sender``: seal, signature,
    addressee, freshness, and that each address is an IP and a port."""
    b = open_body(identity, sealed, "punch", _PUNCH, sender, now, window)
    for name in ("public", "local"):
        if b.get(name) is not None:
            parse_endpoint(b[name])  # BadMessage unless an IP and a port
    return Punch(b["from"], b["step"], b["attempt"], b.get("public"), b.get("local"))
