"""The hub's own state and decisions about its gateway link: what HubInfo to publish,
how to answer the gateway's hello, and the list of online hubs it hears about.

It writes to the gateway only through the ``GatewayChannel`` and tells the rest of the
hub what happened through the callables it was built with (``on_online`` when a
gateway admits us, ``on_joined`` when a hub appears), so it needs no other object."""

from twisted.logger import Logger

from blockhub import netkey
from blockhub.errors import BadMessage
from blockhub.hub.directory import Directory
from blockhub.hubinfo import (
    HubInfo,
    format_address,
    format_endpoint,
    make_hubinfo,
    parse_endpoint,
)
from blockhub.identity import Identity
from blockhub.ids import decode_id
from blockhub.wire import features
from blockhub.wire.canonical import b64, unb64


def _nothing(*args):
    pass

log = Logger()


class Hub:
    def __init__(self, identity: Identity, name: str, clock, channel,
                 network_key: bytes | None = None, listen_port: int | None = None,
                 meta: dict | None = None, remember_gateway=None, archive=None,
                 on_online=_nothing, on_joined=_nothing, on_offline=_nothing,
                 spoken: tuple[str, ...] | None = features.SPOKEN, on_head=_nothing):
        self.identity = identity
        self.spoken = spoken  # the features we list (None: no list, as of old)
        self.name = name
        self.clock = clock
        self.channel = channel
        self.network_key = network_key
        self.listen_port = listen_port
        self.meta = meta or {}
        self.remember_gateway = remember_gateway
        self.directory = Directory(identity.id, observer=self._presence_changed)
        self.archive = archive  # called with (gateway id, event, hub id, HubInfo | None)
        self.on_online = on_online  # called with nothing once a gateway admitted us
        self.on_joined = on_joined  # called with the id of a hub that appeared
        self.on_offline = on_offline  # called with nothing once that gateway is gone
        self.on_head = on_head  # called with (gateway id, head) our gateway signed
        self.kept: HubInfo | None = None  # ours as the gateway keeps it (heads commit to it)
        self._sent: dict[int, HubInfo] = {}  # updates sent, by seq, until kept
        self.observed: str | None = None  # our gateway link's address, as the gateway saw it
        self.local: str | None = None  # and as we see it: our side of that link
        self.listen_host: str | None = None  # the interface --listen bound, if one
        self.mode: str | None = None
        self._seq = 0

    def _next_seq(self) -> int:
        self._seq = max(self._seq + 1, int(self.clock.seconds() * 1000))
        return self._seq

    def peer_endpoint(self) -> str | None:
        """Where other hubs can reach us: the address our gateway sees, our listen port."""
        if not (self.listen_port and self.observed):
            return None
        return format_endpoint(parse_endpoint(self.observed)[0], self.listen_port)

    def hubinfo(self):
        endpoint = self.peer_endpoint() if self.mode == "open" else None
        return make_hubinfo(self.identity, self.name, self._next_seq(), self.meta, endpoint)

    # -- called by the gateway link machine --------------------------------------------
    def send_join(self, proto, entry, hello) -> None:
        if hello["gateway"] != entry.id:
            raise BadMessage("hello names another gateway than the one we pinned")
        self.observed, self.mode = hello["observed"], hello["mode"]
        self.local = format_address(proto.transport.getHost())
        proof = None
        if self.network_key is not None:
            proof = b64(netkey.proof(self.network_key, unb64(hello["challenge"]),
                                     decode_id(entry.id), self.identity.public_key))
        # Our list goes only to a gateway that sent one: one from before negotiation
        # would refuse the field.
        spoken = features.ours(self.spoken) if proto.features.listed else None
        info = self.kept = self.hubinfo()  # what a welcome will have taken
        self._sent = {}
        self.channel.join(proto, info.to_json(), proof, spoken)

    def speaks(self, feature: str) -> bool:
        return feature in (self.spoken or ())

    @property
    def gateway(self):
        """The gateway we are admitted at, or None."""
        return self.channel.gateway

    def online(self, entry, proto) -> None:
        self.channel.attach(entry, proto)
        if self.remember_gateway is not None:
            self.remember_gateway(entry)
        self.on_online()

    def offline(self, entry) -> None:
        self.channel.detach()
        self.observed = self.local = self.mode = None
        if self.archive is not None:
            for hub_id in list(self.directory.hubs):
                self.archive(entry.id, "lost", hub_id, None)
        self.directory.clear()
        self.on_offline()

    def _presence_changed(self, event, hub_id, info):
        if self.archive is not None:
            self.archive(self.gateway.id if self.gateway else None, event, hub_id, info)
        if event == "joined":
            self.on_joined(hub_id)

    # -- called by the gateway protocol ----------------------------------------------
    def presence(self, message) -> None:
        self.directory.apply(message)

    def publish(self, name: str | None = None, meta: dict | None = None) -> None:
        """Change what we share and send the new HubInfo if we are online."""
        if name is not None:
            self.name = name
        if meta is not None:
            self.meta = meta
        if self.channel.online:
            info = self.hubinfo()
            if len(self._sent) >= 16:  # never kept: the gateway dropped them
                del self._sent[min(self._sent)]
            self._sent[info.seq] = info
            self.channel.update(info.to_json())

    def kept_update(self, seq: int) -> None:
        """The gateway took our update ``seq`` (a dropped one is never named)."""
        info = self._sent.pop(seq, None)
        if info is None:
            raise BadMessage(f"the gateway says it keeps a HubInfo {seq} we never sent")
        self.kept = info
        self._sent = {s: i for s, i in self._sent.items() if s > seq}

    def head(self, value) -> None:
        if self.gateway is None:
            raise BadMessage("a head before we are admitted")
        self.on_head(self.gateway.id, value)

    def told_set(self) -> list:
        """Every HubInfo our gateway showed us, and ours as it keeps it."""
        told = list(self.directory.hubs.values())
        return told + ([self.kept] if self.kept is not None else [])

    # -- for the operator -----------------------------------------------------------
    def status(self) -> dict:
        return {"role": "hub", "id": self.identity.id, "name": self.name,
                "gateway": self.gateway.id if self.gateway else None,
                "observed": self.observed, "mode": self.mode,
                "online_hubs": len(self.directory.hubs),
                "endpoint": self.peer_endpoint()}

    def hubs(self) -> list[dict]:
        return self.directory.snapshot()
