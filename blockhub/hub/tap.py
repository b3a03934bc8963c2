"""``twistd blockhub-hub``: the hub's options, and ``makeService``, which hands them to
the hub's wiring in ``service.py``.  twistd imports this module only when the
sub-command is named, and the service modules only when it runs, so ``--help`` stays
fast and a broken import here cannot hide the gateway."""

from twisted.python import usage

from blockhub import tap_common
from blockhub.hub.request_cost import parse_difficulty
from blockhub.limits import HUB


class Options(tap_common.DaemonOptions):
    synopsis = "--data-dir DIR [--gateway ID@HOST:PORT]... [options]"
    longdesc = ("Run a blockhub hub: it joins a gateway, keeps the list of online hubs, "
                "and makes and answers handshakes to open direct peer links.")
    optParameters = [
        tap_common.data_dir("the hub's"),
        ["config", "c", None,
         "JSON config with Hub.Gateways (default: DATA_DIR/config.json if present)"],
        ["listen", "l", None, "Twisted endpoint where this hub accepts peers"],
        ["peer-path", None, "auto",
         "how peerings are made: auto (directly when possible, else over a relay circuit "
         "through the gateway) or relay (only relay circuits: no peer learns this hub's "
         "address, and it neither dials nor listens)"],
        ["name", "n", None, "display name shared in HubInfo (default: the name from init)"],
        ["network-key", None, None, "shared network key file, as given to the gateway"],
        ["rotate-interval", None, 0.0,
         "move to the next configured gateway every SECONDS (0: never)", float],
        ["request-ttl", None, 86400.0,
         "seconds before an unanswered handshake request expires", tap_common.positive],
        ["gateway-list-interval", None, 3600.0,
         "seconds between fetches of the --gateway-list URLs", tap_common.positive],
        ["ca-file", None, None,
         "PEM certificates to trust for --gateway-list HTTPS (default: the system store)"],
        ["on-equivocation", None, "alarm",
         "when a gateway is caught signing two histories: alarm (log it, show it in status, "
         "keep the proof) or disconnect (also drop that gateway and fail over)"],
        ["request-difficulty", None, "0",
         "proof of work (bits, 0 to 24) asked of requests without an invite from hubs not "
         "approved, or auto: more as requests wait for you (published in HubInfo meta.pow)"],
    ] + tap_common.MANHOLE + tap_common.METRICS + tap_common.limit_parameters(HUB)
    optFlags = [
        ["archive", None, "record every HubInfo and presence change seen (blockhub archive)"],
    ] + tap_common.METRICS_FLAGS

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
        if self["peer-path"] not in ("auto", "relay"):
            raise usage.UsageError(f"--peer-path is auto or relay, not {self['peer-path']!r}")
        try:
            self["request-difficulty"] = parse_difficulty(self["request-difficulty"])
        except ValueError as e:
            raise usage.UsageError(str(e))
        if self["on-equivocation"] not in ("alarm", "disconnect"):
            raise usage.UsageError("--on-equivocation is alarm or disconnect, not "
                                   f"{self['on-equivocation']!r}")
        if self["peer-path"] == "relay" and self["listen"]:
            raise usage.UsageError("--peer-path relay takes no --listen: such a hub accepts "
                                   "no direct peer connections")


def makeService(options, reactor=None):
    from blockhub.hub.service import make_hub_service
    return tap_common.make_service(make_hub_service, options, reactor)
