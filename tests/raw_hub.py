"""A hub's gateway connection reduced to frames, for in-memory tests of what a gateway
does with frames the hub side does not send yet (relay circuits) or never sends
(broken ones): it joins when greeted (unless told not to), keeps every message it is
sent, and sends whatever a test gives it, raw bytes included, over real TLS."""

from types import SimpleNamespace

from blockhub.hubinfo import make_hubinfo
from blockhub.net.framed import FramedProtocol
from blockhub.wire import features, messages
from tests.memory import new_identity


class RawHubProtocol(FramedProtocol):
    def __init__(self, identity, name: str, join: bool, **kw):
        super().__init__(**kw)
        self.identity = identity
        self.name = name
        self.join = join
        self.received: list[messages.Message] = []
        self.closed: str | None = None

    def messageReceived(self, message):
        self.received.append(message)
        if message.kind == "hello" and self.join:
            info = make_hubinfo(self.identity, self.name, 1).to_json()
            self.send("join", hubinfo=info, proof=None, features=features.ours())

    def lost(self, reason):
        self.closed = reason

    # -- what tests look at and do -------------------------------------------------
    @property
    def id(self) -> str:
        return self.identity.id

    def kinds(self) -> list[str]:
        return [m.kind for m in self.received]

    def last(self, kind: str) -> messages.Message:
        return [m for m in self.received if m.kind == kind][-1]

    def of(self, *kinds: str) -> list[messages.Message]:
        return [m for m in self.received if m.kind in kinds]

    def send_data(self, circuit: int, payload: bytes) -> None:
        """``payload`` as circuit-data frames of at most a chunk each."""
        for at in range(0, len(payload), messages.MAX_CHUNK):
            self.send_frame(messages.encode_circuit_data(
                circuit, payload[at:at + messages.MAX_CHUNK]))

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are, framed or not, through TLS to the gateway."""
        self.transport.write(data)

    def gateway_side(self):
        """The gateway's protocol for this connection (under its TLS)."""
        return self.server_tls.wrappedProtocol


def raw_hub(world, name: str = "raw", identity=None, join: bool = True) -> RawHubProtocol:
    """A raw hub connected to ``world``'s gateway, greeted and (unless ``join`` is
    false) admitted once the world is flushed."""
    identity = identity or new_identity()

    def make_protocol(creator):
        return RawHubProtocol(identity, name, join, clock=world.clock, limits=world.limits)

    made = []
    world._dial(identity, SimpleNamespace(id=world.identity.id),
                make_protocol).addCallback(made.append)
    world.flush()
    return made[0]
