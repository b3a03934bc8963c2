"""twistd plugins ``blockhub-gateway`` and ``blockhub-hub``.

Only option parsing lives here; the package is imported inside ``makeService`` so
``twistd --help`` stays fast and a broken import in one service cannot hide the other.
"""

import os

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer


def _positive(value):
    number = float(value)
    if number <= 0:
        raise ValueError("must be greater than zero")
    return number


def _default_pidfile(options):
    """Keep each daemon's pid file in its own data directory, so several run side by
    side from one working directory (twistd's default is ./twistd.pid)."""
    parent = getattr(options, "parent", None)
    if parent is not None and parent.get("pidfile") == "twistd.pid":
        parent["pidfile"] = os.path.join(os.path.abspath(options["data-dir"]), "twistd.pid")


_MANHOLE = [
    ["manhole", None, None,
     "Twisted endpoint for an SSH manhole (e.g. tcp:2222:interface=127.0.0.1); off unless given"],
    ["manhole-keys", None, None,
     "OpenSSH authorized_keys file of the keys allowed into the manhole"],
]


def _limit(name, help_text, kind=float):
    # Defaults live in blockhub.limits (shown there and in docs/security.md); None here
    # means "keep the default", so this module stays free of package imports.
    return [name, None, None, help_text + " (default: see docs/security.md)", kind]


_COMMON_LIMITS = [
    _limit("max-frame", "largest frame accepted, in bytes", int),
    _limit("tls-timeout", "seconds a connection may take to finish TLS"),
    _limit("max-send-queue", "bytes queued for a peer that stops reading before it is "
           "dropped", int),
    _limit("close-timeout", "seconds a closing connection may take to drain before it is "
           "aborted"),
]
_GATEWAY_LIMITS = [
    _limit("join-timeout", "seconds from TLS to a valid join"),
    _limit("max-unauthenticated-per-ip", "connections one address may hold before joining",
           int),
    _limit("max-hubs", "admitted hubs", int),
    _limit("max-hubs-per-ip", "admitted hubs from one address, allow-listed keys exempt "
           "(0: no cap)", int),
    _limit("relay-per-minute", "relayed requests per hub per minute", int),
    _limit("relay-burst", "relayed requests a hub may send at once", int),
    _limit("updates-per-minute", "HubInfo updates per hub per minute", int),
    _limit("updates-burst", "HubInfo updates a hub may send at once", int),
]
_HUB_LIMITS = [
    _limit("max-pending", "incoming requests waiting for the operator", int),
    _limit("max-inflight", "unacknowledged messages on the wire per peer", int),
    _limit("first-frame-timeout", "seconds from TLS to a peer's opening frame"),
    _limit("max-unopened-per-ip", "peer connections one address may hold before opening",
           int),
    _limit("max-unopened", "peer connections not yet opened, in total", int),
]


class _Common(usage.Options):
    def postOptions(self):
        if not self["data-dir"]:
            raise usage.UsageError("--data-dir is required")
        if self["manhole"] and not self["manhole-keys"]:
            raise usage.UsageError("--manhole needs --manhole-keys FILE (public keys only)")
        _default_pidfile(self)


class GatewayOptions(_Common):
    synopsis = "--data-dir DIR --listen ENDPOINT [options]"
    longdesc = ("Run a blockhub gateway: hubs connect to it over key-pinned TLS 1.3, "
                "publish signed HubInfo and relay handshakes.")
    optParameters = [
        ["data-dir", "d", None, "the gateway's data directory (from: blockhub init)"],
        ["listen", "l", "tcp:6610:interface=127.0.0.1",
         "Twisted endpoint where hubs connect"],
        ["mode", "m", "private",
         "private: no hub address is ever shared (default); open: endpoints are shared "
         "among admitted hubs (needs --allow-keys or --network-key)"],
        ["allow-keys", None, None, "file of hub ids allowed to join, one per line"],
        ["network-key", None, None, "shared network key file; only hubs that know it join"],
        ["idle-timeout", None, 60.0, "drop a hub silent for this many seconds", _positive],
        ["http", None, None,
         "Twisted endpoint serving GET /gateways (use ssl:... for HTTPS)"],
        ["public-address", None, None,
         "IP:PORT hubs should use for this gateway, signed into its own record"],
        ["gateway-records", None, None,
         "JSON file of other signed gateway records to serve beside our own"],
    ] + _MANHOLE + _COMMON_LIMITS + _GATEWAY_LIMITS

    def postOptions(self):
        super().postOptions()
        if self["mode"] not in ("private", "open"):
            raise usage.UsageError("--mode must be private or open")
        if self["http"] and not self["public-address"]:
            raise usage.UsageError("--http needs --public-address IP:PORT for our record")


class HubOptions(_Common):
    synopsis = "--data-dir DIR [--gateway ID@HOST:PORT]... [options]"
    longdesc = ("Run a blockhub hub: it joins a gateway, keeps the list of online hubs, "
                "and makes and answers handshakes to open direct peer links.")
    optParameters = [
        ["data-dir", "d", None, "the hub's data directory (from: blockhub init)"],
        ["config", "c", None,
         "JSON config with Hub.Gateways (default: DATA_DIR/config.json if present)"],
        ["listen", "l", None, "Twisted endpoint where this hub accepts peers"],
        ["name", "n", None, "display name shared in HubInfo (default: the name from init)"],
        ["network-key", None, None, "shared network key file, as given to the gateway"],
        ["idle-timeout", None, 60.0, "drop a peer or gateway silent this long (seconds)",
         _positive],
        ["rotate-interval", None, 0.0,
         "move to the next configured gateway every SECONDS (0: never)", float],
        ["request-ttl", None, 86400.0,
         "seconds before an unanswered handshake request expires", _positive],
        ["gateway-list-interval", None, 3600.0,
         "seconds between fetches of the --gateway-list URLs", _positive],
        ["ca-file", None, None,
         "PEM certificates to trust for --gateway-list HTTPS (default: the system store)"],
    ] + _MANHOLE + _COMMON_LIMITS + _HUB_LIMITS
    optFlags = [
        ["archive", None, "record every HubInfo and presence change seen (blockhub archive)"],
    ]

    def __init__(self):
        super().__init__()
        self["gateway"] = []
        self["approve-key"] = []
        self["approve-ip"] = []
        self["gateway-list"] = []

    def opt_gateway_list(self, url):
        """URL of a signed public gateway list to follow pinned gateways (repeatable)"""
        if not url.startswith(("http://", "https://")):
            raise usage.UsageError(f"--gateway-list wants an http(s) URL, not {url!r}")
        self["gateway-list"].append(url)

    def opt_gateway(self, value):
        """a gateway as ID@HOST:PORT, for this run only (repeatable)"""
        self["gateway"].append(value)

    def opt_approve_key(self, value):
        """accept requests from this hub id automatically; persists (repeatable)"""
        self["approve-key"].append(value)

    def opt_approve_ip(self, value):
        """accept requests from this address range (CIDR) automatically; persists
        (repeatable)"""
        self["approve-ip"].append(value)

    def postOptions(self):
        super().postOptions()
        if self["rotate-interval"] < 0:
            raise usage.UsageError("--rotate-interval must be 0 or more")


def _one_line_errors(make):
    def wrapper(options):
        from twisted.internet import reactor

        from blockhub.errors import UserError
        try:
            return make(options, reactor)
        except UserError as e:
            raise SystemExit(f"error: {e}")
    return wrapper


@implementer(IPlugin, IServiceMaker)
class _Maker:
    def __init__(self, tapname, description, options, loader):
        self.tapname = tapname
        self.description = description
        self.options = options
        self._loader = loader

    def makeService(self, options):
        return _one_line_errors(self._loader())(options)


def _gateway():
    from blockhub.gateway.service import make_gateway_service
    return make_gateway_service


def _hub():
    from blockhub.hub.service import make_hub_service
    return make_hub_service


gateway = _Maker("blockhub-gateway", "A blockhub gateway (hubs connect here)",
                 GatewayOptions, _gateway)
hub = _Maker("blockhub-hub", "A blockhub hub (joins gateways, peers with hubs)",
             HubOptions, _hub)
