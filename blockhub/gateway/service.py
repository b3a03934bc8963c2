"""The gateway daemon from its options: identity and admission, the object graph
(``build.py``), the TLS listener, the HTTP record, the manhole and the control socket,
as one MultiService."""

from pathlib import Path

import attrs
from twisted.application.service import MultiService
from twisted.logger import Logger
from twisted.web.server import Site

from blockhub import keystore
from blockhub.control.server import control_service
from blockhub.errors import BadMessage, UserError
from blockhub.fingerprint import fingerprint
from blockhub.gateway.admission import Admission, load_allow_keys
from blockhub.gateway.build import build_gateway
from blockhub.gateway.gateway import Gateway
from blockhub.gateway.http import GatewaysResource, Root
from blockhub.hubinfo import parse_endpoint
from blockhub.limits import limits_from_options
from blockhub.manhole import manhole_service
from blockhub.net.listening import ListeningService

log = Logger()


class GatewayService(MultiService):
    """The root service; its ``control_*`` methods answer the CLI."""

    def __init__(self, gateway: Gateway, listener: ListeningService):
        super().__init__()
        self.gateway = gateway
        self.listener = listener
        self.http: ListeningService | None = None

    def startService(self):
        super().startService()
        log.info("gateway {id} listening on {address} in {mode} mode; fingerprint "
                 "{fingerprint}", id=self.gateway.identity.id, address=self.listener.address,
                 mode=self.gateway.admission.mode,
                 fingerprint=fingerprint(self.gateway.identity.id))

    def stopService(self):
        self.gateway.shutdown("gateway stopping")
        return super().stopService()

    def control_status(self):
        status = dict(self.gateway.status(), listen=self.listener.address,
                      fingerprint=fingerprint(self.gateway.identity.id))
        if self.http is not None:
            status["http"] = self.http.address
        return status

    def control_hubs(self):
        return self.gateway.presence.snapshot()

    def control_limits(self):
        return attrs.asdict(self.gateway.limits)


def _public_address(text: str) -> tuple[str, int]:
    try:
        return parse_endpoint(text)
    except BadMessage:
        raise UserError(f"--public-address wants IP:PORT (IPv6 in brackets), not {text!r}")


def make_gateway_service(options, reactor) -> GatewayService:
    data_dir = Path(options["data-dir"])
    identity = keystore.load_identity(data_dir)
    admission = Admission(
        mode=options["mode"],
        allow_keys=load_allow_keys(options["allow-keys"]) if options["allow-keys"] else None,
        network_key=(keystore.load_network_key(options["network-key"])
                     if options["network-key"] else None))
    graph = build_gateway(identity, admission, reactor, limits_from_options(options))
    listener = ListeningService(reactor, options["listen"], graph.tls_factory)
    top = GatewayService(graph.gateway, listener)
    listener.setServiceParent(top)
    if options["http"]:
        ip, port = _public_address(options["public-address"])
        resource = GatewaysResource(identity, reactor, ip, port, options["gateway-records"])
        top.http = ListeningService(reactor, options["http"], Site(Root(resource)), what="http")
        top.http.setServiceParent(top)
    if options["manhole"]:
        namespace = {"service": top, "reactor": reactor, "gateway": graph.gateway,
                     "presence": graph.presence, "relay": graph.relay,
                     "circuits": graph.circuits, "counters": graph.counters}
        manhole_service(reactor, options["manhole"], options["manhole-keys"], data_dir,
                        namespace).setServiceParent(top)
    control_service(reactor, data_dir, top).setServiceParent(top)
    return top
