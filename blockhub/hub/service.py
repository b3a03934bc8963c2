"""Wire a hub together from its options: identity, config, the gateway link machine,
the peer listener and the control socket, as one MultiService."""

from pathlib import Path

from twisted.application.service import MultiService
from twisted.internet.endpoints import HostnameEndpoint, connectProtocol, wrapClientTLS
from twisted.logger import Logger

from blockhub import keystore, netkey
from blockhub.control.server import control_service
from blockhub.errors import UserError
from blockhub.hub import config as hubconfig
from blockhub.hub.gateway_link import GatewayLink
from blockhub.hub.gateway_protocol import HubGatewayProtocol
from blockhub.hub.hub import Hub
from blockhub.net.tls import PinnedClientCreator
from blockhub.wire.framing import DEFAULT_MAX_FRAME

log = Logger()
CONNECT_TIMEOUT = 10


class HubService(MultiService):
    """The root service; its ``control_*`` methods answer the CLI."""

    def __init__(self, hub: Hub, link: GatewayLink):
        super().__init__()
        self.hub = hub
        self.link = link
        self.listener = None

    def startService(self):
        super().startService()
        log.info("hub {id} ({name}) starting with {n} gateway(s)", id=self.hub.identity.id,
                 name=self.hub.name, n=len(self.link.gateways))
        self.link.start()

    def stopService(self):
        self.link.stop()
        return super().stopService()

    def control_status(self):
        status = self.hub.status()
        status["listen"] = self.listener.address if self.listener else None
        return status

    def control_hubs(self):
        return self.hub.hubs()


def gateways_from_options(options, data_dir: Path):
    config_path = options["config"]
    if config_path is None and (data_dir / "config.json").exists():
        config_path = data_dir / "config.json"
    entries = hubconfig.load_config(config_path) if config_path else []
    for text in options["gateway"]:
        entries.append(hubconfig.parse_gateway_arg(text))
    unique = {}
    for entry in entries:  # --gateway overrides the file's address for the same gateway
        unique[entry.id] = entry if entry.host or entry.id not in unique else unique[entry.id]
    if not unique:
        raise UserError("no gateway configured: give --gateway ID@HOST:PORT or a --config "
                        "file with Hub.Gateways")
    return list(unique.values()), config_path


def make_hub_service(options, reactor) -> HubService:
    data_dir = Path(options["data-dir"])
    identity = keystore.load_identity(data_dir)
    record = keystore.read_record(data_dir)
    gateways, config_path = gateways_from_options(options, data_dir)
    network_key = (netkey.load_network_key(options["network-key"])
                   if options["network-key"] else None)

    def remember(entry):
        if config_path is not None and entry.host:
            try:
                if hubconfig.record_last_known_ip(config_path, entry.id, entry.host):
                    log.info("recorded lastKnownIP {ip} for gateway {gateway} in {path}",
                             ip=entry.host, gateway=entry.id, path=str(config_path))
            except (OSError, ValueError) as e:
                log.warn("could not update {path}: {error}", path=str(config_path),
                         error=str(e))

    hub = Hub(identity, options["name"] or record.get("name", ""), reactor,
              network_key=network_key, remember_gateway=remember)
    idle = options["idle-timeout"]

    def dial(entry):
        endpoint = wrapClientTLS(PinnedClientCreator(identity, entry.id),
                                 HostnameEndpoint(reactor, entry.host, entry.port,
                                                  timeout=CONNECT_TIMEOUT))
        proto = HubGatewayProtocol(link, hub, clock=reactor, max_frame=DEFAULT_MAX_FRAME,
                                   idle_timeout=idle)
        return connectProtocol(endpoint, proto)

    link = GatewayLink(gateways, dial, hub, reactor,
                       rotate_interval=options["rotate-interval"] or None)
    hub.link = link
    top = HubService(hub, link)
    control_service(reactor, data_dir, top).setServiceParent(top)
    return top
