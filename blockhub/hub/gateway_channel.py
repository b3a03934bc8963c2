"""The hub's one way to write to its gateway: a send method per kind of frame.

The gateway link decides which connection is the admitted one and hands it here
(``attach``) or takes it back (``detach``); everything else that has something for the
gateway (a HubInfo update, a relayed handshake) calls a method below and learns from
its answer whether it went out.  Nothing waits here for a gateway that is not there:
the callers keep their own state (a request stays ``requested`` until it is sent).
"""

from blockhub.wire.canonical import b64
from blockhub.wire.features import CIRCUIT, RAW_RELAY, RELAYED_KIND
from blockhub.wire.messages import encode_circuit_data, encode_relay_raw


class GatewayChannel:
    def __init__(self):
        self.gateway = None  # the GatewayEntry we are admitted at, or None
        self._proto = None

    @property
    def online(self) -> bool:
        return self._proto is not None

    def attach(self, entry, proto) -> None:
        self.gateway, self._proto = entry, proto

    def detach(self) -> None:
        self.gateway = self._proto = None

    @staticmethod
    def join(proto, hubinfo: dict, proof: str | None, spoken: list[str] | None) -> None:
        """Answer a gateway's hello on the connection being admitted (not attached yet:
        the gateway has not said welcome), with the features we speak."""
        proto.send("join", hubinfo=hubinfo, proof=proof, features=spoken)

    def update(self, hubinfo: dict) -> bool:
        return self._send("update", hubinfo=hubinfo)

    def relay(self, to: str, kind: str, sealed: bytes) -> bool:
        """Ask the gateway to deliver a sealed handshake box to ``to``; a kind that needs
        a feature goes only to a gateway that listed it (False: not sent)."""
        needs = RELAYED_KIND.get(kind)
        if needs is not None and not self.speaks(needs):
            return False
        if self.speaks(RAW_RELAY):
            return self._send_frame(encode_relay_raw(to, kind, sealed))
        return self._send("relay", to=to, kind=kind, sealed=b64(sealed))

    def speaks(self, feature: str) -> bool:
        """Whether our gateway listed ``feature``."""
        return self._proto is not None and self._proto.features.peer_has(feature)

    @property
    def carries_circuits(self) -> bool:
        """Whether our gateway said it speaks relay circuits (``circuit/1``)."""
        return self.speaks(CIRCUIT)

    def circuit_open(self, to: str) -> bool:
        return self.carries_circuits and self._send("circuit-open", to=to)

    def circuit_data(self, circuit: int, data: bytes) -> bool:
        return self._send_frame(encode_circuit_data(circuit, data))

    def circuit_credit(self, circuit: int, amount: int) -> bool:
        return self._send("circuit-credit", circuit=circuit, bytes=amount)

    def circuit_close(self, circuit: int, reason: str) -> bool:
        return self._send("circuit-close", circuit=circuit, reason=reason)

    def _send_frame(self, frame: bytes) -> bool:
        if self._proto is None:
            return False
        self._proto.send_frame(frame)
        return True

    def _send(self, frame_kind: str, /, **fields) -> bool:
        if self._proto is None:
            return False
        self._proto.send(frame_kind, **fields)
        return True
