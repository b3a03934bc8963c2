"""Wire a hub together from its options: identity, config, the gateway link machine,
the peer listener, the metrics and the control socket, as one MultiService."""

from pathlib import Path

import attrs
from twisted.application.service import MultiService
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from blockhub import keystore
from blockhub.control.server import control_service
from blockhub.errors import UserError
from blockhub.fingerprint import fingerprint
from blockhub.hub import config as hubconfig
from blockhub.hub.build import HubGraph, HubSettings, build_hub
from blockhub.hub.connectors import tls_connectors
from blockhub.hub.gateway_keys_file import KEYS_FILE, GatewayKeysFile
from blockhub.hub.gateway_list import GatewayList, http_client
from blockhub.hub.gateway_pins import gateway_rows
from blockhub.hub.metrics import HubMetrics, message_counts
from blockhub.hub.store import Store
from blockhub.ids import normalise_id
from blockhub.limits import limits_from_options
from blockhub.manhole import manhole_service
from blockhub.net.listening import ListeningService
from blockhub.net.metrics import metrics_service
from blockhub.policy import parse_cidr
from blockhub.wire import canonical

log = Logger()


class HubService(MultiService):
    """The root service; its ``control_*`` methods answer the CLI."""

    def __init__(self, graph: HubGraph, listener: ListeningService | None = None,
                 gateway_list: GatewayList | None = None):
        super().__init__()
        self.hub = graph.hub
        self.link = graph.link
        self.peers = graph.peers
        self.circuits = graph.circuits
        self.handshakes = graph.handshakes
        self.operator = graph.operator
        self.store = graph.store
        self.upgrades = graph.paths.upgrades
        self.punching = graph.paths.punching
        self.heads = graph.heads
        self.keys = graph.keys
        self.listener = listener
        # The listener's PeerFactory, for what it refused; None when not listening.
        self.peer_factory = graph.peer_factory if listener is not None else None
        self.gateway_list = gateway_list
        self.metrics: ListeningService | None = None  # --metrics
        if listener is not None:
            listener.setServiceParent(self)

    def startService(self):
        super().startService()
        log.info("hub {id} ({name}) starting with {n} gateway(s); peers at {listen}",
                 id=self.hub.identity.id, name=self.hub.name, n=len(self.link.gateways),
                 listen=self.listener.address if self.listener else "(not listening)")
        log.info("hub fingerprint: {fingerprint}", fingerprint=fingerprint(self.hub.identity.id))
        self.handshakes.start()
        self.peers.start()
        self.link.start()
        if self.gateway_list is not None:
            self.gateway_list.start()

    def stopService(self):
        if self.gateway_list is not None:
            self.gateway_list.stop()
        self.link.stop()
        if self.upgrades is not None:
            self.upgrades.stop()
        if self.punching is not None:
            self.punching.stop()
        self.handshakes.stop()
        self.peers.stop()
        d = super().stopService()
        d.addBoth(lambda result: (self.store.close(), result)[1])
        return d

    # -- the control socket's operations --------------------------------------------
    def control_status(self):
        status = self.hub.status()
        status["gateways"] = gateway_rows(self.link)
        status["listen"] = self.listener.address if self.listener else None
        status["requests"] = self.operator.status()
        status["peers"] = len(self.store.peers())
        status["connected_peers"] = len(self.peers.connections)
        status["circuits"] = self.circuits.status()
        punching = self.punching
        status["punches"] = (dict({"tried": 0, "direct": 0, "failed": 0}, **punching.counts,
                                  possible=punching.possible())
                             if punching is not None else None)
        status["messages"] = message_counts(self.store)
        status["refusals"] = dict(self.handshakes.refusals)
        status["request_difficulty"] = self.handshakes.cost.status()
        status["alarms"] = list(self.heads.alarms)
        status["gateway_keys"] = self.keys.status()
        if self.peers.storage_errors:
            status["refusals"]["storage errors"] = self.peers.storage_errors
        if self.peer_factory is not None:
            listener = self.peer_factory.status()
            status["refusals"].update(listener.pop("refusals"))
            status["peer_listener"] = listener
        for row in status["gateways"]:
            row["fingerprint"] = fingerprint(row["id"])
        if self.hub.gateway is not None:
            status["gateway_fingerprint"] = fingerprint(self.hub.gateway.id)
        if self.gateway_list is not None:
            status["gateway_lists"] = dict(self.gateway_list.last)
        if self.metrics is not None:
            status["metrics"] = self.metrics.address
        return status

    def control_hubs(self):
        return self.hub.hubs()

    def control_connect(self, hub=None, note="", invite=None):
        """Answered once the request is durable (it commits off the reactor thread)."""
        if invite is not None:
            result = self.operator.connect_invite(invite, note)
        else:
            result = self.operator.connect(_hub_id(hub), note)
        return self.store.durable().addCallback(lambda _: result)

    def control_invite_create(self, uses=1, ttl=86400, note=""):
        """An invite to this hub at the gateways it knows an address of, current first."""
        gateways = sorted((e for e in self.link.gateways if e.address),
                          key=lambda e: e.id != self.link.current.id)
        return self.handshakes.invites.create(
            self.hub.identity.id, [f"{e.id}@{e.address}" for e in gateways], int(uses),
            int(ttl), note)

    def control_invite_list(self):
        return self.handshakes.invites.all()

    def control_invite_revoke(self, id):
        return self.handshakes.invites.revoke(id)

    def control_pending(self):
        return self.operator.pending()

    def control_approve(self, hub):
        return self.operator.approve(_hub_id(hub))

    def control_reject(self, hub, block=False):
        return self.operator.reject(_hub_id(hub), bool(block))

    def control_unpeer(self, hub, block=False):
        return self.operator.unpeer(_hub_id(hub), bool(block))

    def control_peers(self):
        return self.peers.snapshot()

    def control_send(self, hub, text):
        d = self.operator.send(_hub_id(hub), text)
        return d.addCallback(lambda seq: {"peer": hub, "seq": seq})

    def control_messages(self):
        return self.store.messages()

    def control_archive(self):
        return self.store.archived()


def _hub_id(text) -> str:
    return normalise_id(text)


def gateways_from_options(options, data_dir: Path):
    config_path = options["config"]
    if config_path is None and (data_dir / "config.json").exists():
        config_path = data_dir / "config.json"
    entries = hubconfig.load_config(config_path) if config_path else []
    for text in options["gateway"]:
        entries.append(hubconfig.parse_gateway_arg(text))
    unique: dict[str, hubconfig.GatewayEntry] = {}
    for entry in entries:  # --gateway overrides the file's address, keeping its name
        old = unique.get(entry.id)
        if old is not None:
            entry = attrs.evolve(old, host=entry.host or old.host, port=entry.port)
        unique[entry.id] = entry
    if not unique:
        raise UserError("no gateway configured: give --gateway ID@HOST:PORT or a --config "
                        "file with Hub.Gateways")
    return list(unique.values()), config_path


def _open_store(options, data_dir: Path, now: int, reactor, observe_commit=None) -> Store:
    """The hub's database, with the approvals given on the command line added; the
    message path commits on a thread of its own (``store_thread``)."""
    store = Store.in_dir(data_dir, reactor, observe_commit)
    for key in options["approve-key"]:
        store.add_approved_key(_hub_id(key), now)
    for cidr in options["approve-ip"]:
        store.add_approved_range(parse_cidr(cidr), now)
    return store


def _listener(reactor, description, graph, listening: list) -> ListeningService | None:
    """The --listen service; once it listens, ``listening`` holds its (host, port) if
    our own sockets may dial from that port (IPv4 only)."""
    if not description:
        return None

    def on_listening(address, shared: bool):
        graph.hub.listen_port, graph.hub.listen_host = address.port, address.host
        if shared and address.type == "TCP" and ":" not in address.host:
            listening.append((address.host, address.port))

    return ListeningService(reactor, description, graph.peer_tls,
                            on_listening=on_listening, shared=True)


def _manhole_namespace(top: HubService, graph: HubGraph, reactor) -> dict:
    return {"service": top, "reactor": reactor, "hub": graph.hub, "link": graph.link,
            "handshakes": graph.operator, "requests": graph.handshakes.book,
            "handshaking": graph.handshakes, "peers": graph.peers, "store": graph.store,
            "directory": graph.hub.directory}


def _settings(options, record: dict, data_dir: Path) -> HubSettings:
    return HubSettings(
        name=options["name"] or record.get("name", ""),
        network_key=(keystore.load_network_key(options["network-key"])
                     if options["network-key"] else None),
        request_ttl=int(options["request-ttl"]),
        rotate_interval=options["rotate-interval"] or None,
        limits=limits_from_options(options), peer_path=options["peer-path"],
        request_difficulty=options["request-difficulty"], alarm_dir=data_dir,
        on_equivocation=options["on-equivocation"])


def make_hub_service(options, reactor) -> HubService:
    data_dir = Path(options["data-dir"])
    identity = keystore.load_identity(data_dir)
    gateways, config_path = gateways_from_options(options, data_dir)
    config_file = hubconfig.ConfigFile(config_path, data_dir)
    remember = config_file.remember
    metrics = HubMetrics(reactor) if options["metrics"] else None
    store = _open_store(options, data_dir, int(reactor.seconds()), reactor,
                        metrics.commit.observe if metrics else None)

    def archive(gateway_id, event, hub_id, info):
        store.archive(int(reactor.seconds()), gateway_id, event, hub_id,
                      canonical.dumps(info.to_json()).decode() if info else None)

    settings = _settings(options, keystore.read_record(data_dir), data_dir)
    listening: list = []  # (host, port) of our listener, once it listens with reuse

    connect_peer, connect_gateway, connect_punch = tls_connectors(
        identity, reactor, lambda: listening[0] if listening else None)
    graph = build_hub(identity, store, reactor, gateways, connect_peer, connect_gateway,
                      settings, remember_gateway=remember,
                      archive=archive if options["archive"] else None,
                      watch_requests=metrics.requests.changed if metrics else None,
                      connect_punch=connect_punch, run_in_thread=deferToThread,
                      record_pinned=config_file.pin,
                      keys_file=GatewayKeysFile(data_dir / KEYS_FILE),
                      record_succession=config_file.succeed)
    gateway_list = None
    listener = _listener(reactor, options["listen"], graph, listening)
    if options["gateway-list"]:
        gateway_list = GatewayList(reactor, options["gateway-list"],
                                   options["gateway-list-interval"],
                                   http_client(reactor, options["ca-file"]), graph.link,
                                   on_moved=remember, issued=store,
                                   on_commitment=graph.keys.heard_commitment)
    top = HubService(graph, listener, gateway_list)
    if metrics is not None:
        metrics.watch(graph, per_peer=options["metrics-per-peer"])
        top.metrics = metrics_service(reactor, options["metrics"], metrics.registry)
        top.metrics.setServiceParent(top)
    if options["manhole"]:
        manhole_service(reactor, options["manhole"], options["manhole-keys"], data_dir,
                        _manhole_namespace(top, graph, reactor)).setServiceParent(top)
    control_service(reactor, data_dir, top).setServiceParent(top)
    return top
