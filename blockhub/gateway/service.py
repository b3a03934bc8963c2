"""The gateway daemon from its options: identity and admission, the object graph
(``build.py``), the TLS listener, the HTTP record, the metrics, the manhole and the
control socket, as one MultiService."""

import time
from pathlib import Path

import attrs
from twisted.application.internet import TimerService
from twisted.application.service import MultiService
from twisted.internet.defer import gatherResults
from twisted.logger import Logger
from twisted.web.server import Site

from blockhub import keystore
from blockhub.control.commands import ControlError
from blockhub.control.server import control_service
from blockhub.errors import BadId, BadMessage, UserError
from blockhub.fingerprint import fingerprint
from blockhub.gateway.admission import Admission, load_allow_keys
from blockhub.gateway.build import ClusterSettings, build_gateway
from blockhub.gateway.gateway import Gateway
from blockhub.gateway.head_file import HEADS_FILE
from blockhub.gateway.http import GatewaysResource, HeadResource, Root
from blockhub.gateway.key_files import load_keys
from blockhub.gateway.metrics import GatewayMetrics
from blockhub.hubinfo import parse_endpoint
from blockhub.ids import normalise_id
from blockhub.limits import limits_from_options
from blockhub.manhole import manhole_service
from blockhub.net.heap import INTERVAL as HEAP_INTERVAL
from blockhub.net.heap import HeapTrim
from blockhub.net.listening import ListeningService
from blockhub.net.metrics import metrics_service
from blockhub.when import utc

log = Logger()


class GatewayService(MultiService):
    """The root service; its ``control_*`` methods answer the CLI."""

    def __init__(self, gateway: Gateway, listener: ListeningService, cluster=None,
                 bans=None, heads=None, resource: GatewaysResource | None = None,
                 load_keys=None):
        super().__init__()
        self.gateway = gateway
        self.heads = heads  # the chain of signed presence heads
        self.listener = listener
        self.cluster = cluster  # our ClusterNode, or None alone
        self.bans = bans        # the operator's bans (bans.py)
        self.http: ListeningService | None = None
        self.metrics: ListeningService | None = None  # --metrics
        self.resource = resource  # GET /gateways, with our record
        self.load_keys = load_keys or (lambda: gateway.keys)  # -> GatewayKeys from disk

    def startService(self):
        super().startService()
        log.info("gateway {id} listening on {address} in {mode} mode; fingerprint "
                 "{fingerprint}", id=self.gateway.identity.id, address=self.listener.address,
                 mode=self.gateway.admission.mode,
                 fingerprint=fingerprint(self.gateway.identity.id))
        if self.cluster is not None:
            self.cluster.start()
        if self.heads is not None:
            self.heads.start()

    def stopService(self):
        if self.heads is not None:
            self.heads.stop()
        self.gateway.shutdown("gateway stopping")
        stopped = super().stopService()
        if self.cluster is None:
            return stopped
        return gatherResults([stopped, self.cluster.stop()], consumeErrors=True)

    def control_status(self):
        status = dict(self.gateway.status(), listen=self.listener.address,
                      fingerprint=fingerprint(self.gateway.identity.id))
        if self.http is not None:
            status["http"] = self.http.address
        if self.metrics is not None:
            status["metrics"] = self.metrics.address
        if self.cluster is not None:
            status["cluster"] = self.cluster.status()
        latest = self.heads.latest if self.heads is not None else None
        status["head"] = {"seq": latest.seq, "count": latest.count, "at": latest.at} \
            if latest is not None else None
        return status

    def control_reload_keys(self):
        """``blockhub commit-next`` or ``rotate-key`` changed the keys in our data
        directory: serve them from now on (``Gateway.rekeyed``)."""
        try:
            keys = self.load_keys()
        except UserError as e:
            raise ControlError(str(e))
        rotated = keys.identity.id != self.gateway.identity.id
        if rotated and self.cluster is not None:
            raise ControlError("a cluster node rotates its key only while stopped: stop "
                               "it, add the new id to every node's --cluster-keys, start it")
        if rotated and self.heads is not None:
            self.heads.rekey(keys.identity)
        if self.resource is not None:
            self.resource.rekey(keys)
        self.gateway.rekeyed(keys)
        log.info("gateway keys reloaded: serving {id}{rotated}", id=keys.identity.id,
                 rotated=f" (succeeded {keys.succession.old})" if rotated and
                 keys.succession else "")
        return self.gateway.keys.status(self.gateway.clock.seconds())

    def control_hubs(self):
        return self.gateway.presence.snapshot()

    def control_limits(self):
        return attrs.asdict(self.gateway.limits)

    def control_kick(self, hub: str, ban: float | None = None):
        """Close a hub's connection wherever in the cluster it is; with ``ban``
        (seconds), refuse it until then, at every node."""
        hub = _hub_id(hub)
        until = None
        if ban is not None:
            if not 0 < ban <= 10 * 365 * 86400:
                raise ControlError("--ban wants 1 second to 10 years")
            until = self.bans.ban(hub, ban) // 1000
        why = "kicked by this gateway's operator"
        if until is not None:
            why = f"banned by this gateway's operator until {utc(until)}"
        kicked = self.gateway.presence.kick(hub, why) or (
            self.cluster is not None and self.cluster.kick(hub))
        if not kicked and until is None:
            raise ControlError(f"hub {hub} is not online here")
        return {"id": hub, "kicked": kicked, "until": until}

    def control_bans(self):
        return self.bans.active()

    def control_unban(self, hub: str):
        hub = _hub_id(hub)
        if not self.bans.unban(hub):
            raise ControlError(f"hub {hub} is not banned")
        return {"id": hub}


def _hub_id(text: str) -> str:
    try:
        return normalise_id(text)
    except BadId as e:
        raise ControlError(f"not a hub id: {e}")



def _public_address(text: str) -> tuple[str, int]:
    try:
        return parse_endpoint(text)
    except BadMessage:
        raise UserError(f"--public-address wants IP:PORT (IPv6 in brackets), not {text!r}")


def _cluster(options, identity, reactor, resource) -> ClusterSettings:
    """The node's cluster from its options: Redis, its password, the nodes' keys."""
    from blockhub.gateway.cluster.redis_backend import RedisBackend
    from blockhub.gateway.cluster.redis_url import parse_redis_url
    password = None
    if options["cluster-password-file"]:
        path = Path(options["cluster-password-file"])
        try:
            password = path.read_bytes().strip()
        except OSError as e:
            raise UserError(f"cannot read --cluster-password-file {path}: {e.strerror}")
        if not password:
            raise UserError(f"--cluster-password-file {path} is empty")
    keys = load_allow_keys(options["cluster-keys"])
    if identity.id not in keys:
        log.warn("our own id {id} is not in --cluster-keys; the other nodes will refuse "
                 "what we tell them", id=identity.id)
    name = options["cluster-name"]
    backend = RedisBackend(reactor, parse_redis_url(options["cluster"]), password, name)
    record = resource.own_record if resource is not None else (lambda: None)
    return ClusterSettings(name, keys, backend, options["cluster-dead-after"], record)


def _admission(options) -> Admission:
    return Admission(
        mode=options["mode"],
        allow_keys=load_allow_keys(options["allow-keys"]) if options["allow-keys"] else None,
        network_key=(keystore.load_network_key(options["network-key"])
                     if options["network-key"] else None))


def _around(top: GatewayService, options, graph, metrics, reactor, data_dir) -> None:
    """The services beside the listener: metrics, HTTP, the manhole, the control socket."""
    if metrics is not None:
        metrics.watch(graph, per_peer=options["metrics-per-peer"])
        top.metrics = metrics_service(reactor, options["metrics"], metrics.registry)
        top.metrics.setServiceParent(top)
    if top.resource is not None:
        top.http = ListeningService(reactor, options["http"],
                                    Site(Root(top.resource, HeadResource(graph.heads))),
                                    what="http")
        top.http.setServiceParent(top)
    if options["manhole"]:
        namespace = {"service": top, "reactor": reactor, "gateway": graph.gateway,
                     "presence": graph.presence, "relay": graph.relay,
                     "circuits": graph.circuits, "counters": graph.counters,
                     "cluster": graph.cluster}
        manhole_service(reactor, options["manhole"], options["manhole-keys"], data_dir,
                        namespace).setServiceParent(top)
    control_service(reactor, data_dir, top).setServiceParent(top)


def make_gateway_service(options, reactor) -> GatewayService:
    data_dir = Path(options["data-dir"])

    def read_keys():
        """Our keys as the data directory holds them (the grace by the wall clock)."""
        return load_keys(data_dir, options["succession-grace"], time.time())

    keys = read_keys()
    identity = keys.identity
    graph = None

    def cluster_records() -> list:
        """The other live nodes' records, once the graph exists."""
        node = graph.cluster if graph is not None else None
        return node.records() if node is not None else []

    resource = None
    if options["http"]:
        ip, port = _public_address(options["public-address"])
        resource = GatewaysResource(identity, reactor, ip, port, options["gateway-records"],
                                    cluster_records)
        resource.rekey(keys)
    cluster = _cluster(options, identity, reactor, resource) if options["cluster"] else None
    metrics = GatewayMetrics() if options["metrics"] else None
    graph = build_gateway(identity, _admission(options), reactor,
                          limits_from_options(options), cluster=cluster,
                          bans_path=data_dir / "bans.json",
                          observe_fanout=metrics.fanout.observe if metrics else None,
                          heads_path=data_dir / HEADS_FILE,
                          head_interval=options["head-interval"], keys=keys)
    listener = ListeningService(reactor, options["listen"], graph.tls_factory)
    top = GatewayService(graph.gateway, listener, graph.cluster, graph.bans, graph.heads,
                         resource, read_keys)
    listener.setServiceParent(top)
    counters = graph.counters
    trim = HeapTrim(lambda: counters.joined + counters.left + counters.refused)
    trimmer = TimerService(HEAP_INTERVAL, trim.check)
    trimmer.clock = reactor
    trimmer.setServiceParent(top)
    _around(top, options, graph, metrics, reactor, data_dir)
    return top
