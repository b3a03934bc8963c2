"""The hub's side of its gateway connection: frames in, calls on the link, the hub, the
handshakes (``relays``: what the gateway delivers or could not relay) and the relay
circuits out.  It keeps what the gateway said it speaks (``features``, from its hello)."""

from blockhub.errors import BadMessage
from blockhub.net.framed import FramedProtocol
from blockhub.wire import features

_CIRCUIT = {"circuit-ready": "ready", "circuit-credit": "credit",
            "circuit-close": "closed", "circuit-refused": "refused"}


class HubGatewayProtocol(FramedProtocol):
    # Something to the gateway every half of our idle timeout (30 s): its idle timeout
    # is the same, and 10,000 hubs pinging every 20 s would cost it 4 % of a core.
    PING_AFTER = 1 / 2
    def __init__(self, link, hub, relays, circuits, pin=None, keys=None, **kw):
        super().__init__(**kw)
        self.keys = keys  # a GatewayKeyBook: commitments and successions heard
        self.link = link
        self.hub = hub
        self.relays = relays
        self.circuits = circuits
        self.admitted = False
        self.features = features.NONE  # what the gateway listed in its hello
        self.pin = pin  # the PinnedClientCreator of this connection, to explain a refusal

    def messageReceived(self, message):
        kind = message.kind
        if kind == "hello":
            self.features = features.parse(message.fields.get("features"))
            self.link.hello(self, message)
        elif kind == "welcome":
            self.admitted = True
            self.link.welcome(self, message)
        elif kind == "refused":
            self.link.refused(self, message["reason"])
        elif kind == "succession":  # before admission too: we asked for the old key
            self._needs(features.SUCCESSION, kind)
            if self.keys is not None:
                self.keys.heard_succession(self._pinned(), message["succession"])
        elif kind == "shutdown":
            self.log.info("gateway {address} is shutting down: {reason}",
                          address=self.address, reason=message["reason"])
            self.link.shutting_down(self, message["reason"])
        elif not self.admitted:
            raise BadMessage(f"gateway sent {kind!r} before admitting us")
        elif kind == "presence":
            self.hub.presence(message)
        elif kind in ("deliver", "deliver-raw"):
            if kind == "deliver-raw":
                self._needs(features.RAW_RELAY, kind)
            needs = features.RELAYED_KIND.get(message["kind"])
            if needs is not None and not self.hub.speaks(needs):
                raise BadMessage(f"deliver kind {message['kind']!r} needs {needs}, "
                                 "which we did not list")
            self.relays.delivered(message)
        elif kind == "relay-refused":
            self.relays.relay_refused(message)
        elif kind in ("head", "kept"):
            if not self.hub.speaks(features.HEADS):
                raise BadMessage(f"{kind!r} needs {features.HEADS}, which we did not list")
            if kind == "head":
                self.hub.head(message["head"])
            else:
                self.hub.kept_update(message["seq"])
        elif kind == "next-key":
            self._needs(features.SUCCESSION, kind)
            if self.keys is not None:
                self.keys.heard_commitment(self._pinned(), message["commitment"])
        elif kind == "circuit-data":
            self.circuits.data(message)
        elif kind in _CIRCUIT:
            getattr(self.circuits, _CIRCUIT[kind])(message)
        else:
            raise BadMessage(f"a gateway may not send {kind!r}")

    def _pinned(self) -> str:
        """The key this connection pinned (the link may have moved on since)."""
        return self.pin.expected_id if self.pin is not None else self.link.current.id

    def _needs(self, feature: str, kind: str) -> None:
        if not (self.hub.speaks(feature) and self.features.peer_has(feature)):
            raise BadMessage(f"{kind!r} needs {feature}, which we or the gateway did not list")

    def lost(self, reason):
        pin = self.pin
        if pin is not None and pin.mismatch:
            reason = (f"the server at {self.address} does not hold the pinned key "
                      f"{pin.expected_id} (it presented {pin.mismatch})")
        self.link.lost(self, reason)
