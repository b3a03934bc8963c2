"""``twistd blockhub-gateway``: the gateway's options, and ``makeService``, which hands
them to the gateway's wiring in ``service.py``.  twistd imports this module only when
the sub-command is named, and the service modules only when it runs, so ``--help``
stays fast and a broken import here cannot hide the hub."""

from twisted.python import usage

from blockhub import tap_common
from blockhub.limits import GATEWAY


class Options(tap_common.DaemonOptions):
    synopsis = "--data-dir DIR --listen ENDPOINT [options]"
    longdesc = ("Run a blockhub gateway: hubs connect to it over key-pinned TLS 1.3, "
                "publish signed HubInfo and relay handshakes.")
    optParameters = [
        tap_common.data_dir("the gateway's"),
        ["listen", "l", "tcp:6610:interface=127.0.0.1",
         "Twisted endpoint where hubs connect"],
        ["mode", "m", "private",
         "private: no hub address is ever shared (default); open: endpoints are shared "
         "among admitted hubs (needs --allow-keys or --network-key)"],
        ["allow-keys", None, None, "file of hub ids allowed to join, one per line"],
        ["network-key", None, None, "shared network key file; only hubs that know it join"],
        ["http", None, None,
         "Twisted endpoint serving GET /gateways (use ssl:... for HTTPS)"],
        ["public-address", None, None,
         "IP:PORT hubs should use for this gateway, signed into its own record"],
        ["gateway-records", None, None,
         "JSON file of other signed gateway records to serve beside our own"],
    ] + tap_common.MANHOLE + tap_common.limit_parameters(GATEWAY)

    def postOptions(self):
        super().postOptions()
        if self["mode"] not in ("private", "open"):
            raise usage.UsageError("--mode must be private or open")
        if self["http"] and not self["public-address"]:
            raise usage.UsageError("--http needs --public-address IP:PORT for our record")


def makeService(options, reactor=None):
    from blockhub.gateway.service import make_gateway_service
    return tap_common.make_service(make_gateway_service, options, reactor)
