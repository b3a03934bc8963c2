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
         "Twisted endpoint serving GET /gateways and GET /head (use ssl:... for HTTPS)"],
        ["head-interval", None, 10.0,
         "seconds between signed presence heads, at most one each (docs/accountability.md)",
         tap_common.positive],
        ["succession-grace", None, 30 * 86400.0,
         "seconds after a key rotation during which hubs that ask for the old key get it "
         "and the succession (docs/accountability.md)", tap_common.positive],
        ["public-address", None, None,
         "IP:PORT hubs should use for this gateway, signed into its own record"],
        ["gateway-records", None, None,
         "JSON file of other signed gateway records to serve beside our own"],
        ["cluster", None, None,
         "be one node of a cluster sharing this Redis: redis://HOST:PORT[/DB] or "
         "unix:///PATH/redis.sock (docs/cluster.md)"],
        ["cluster-name", None, "blockhub",
         "the cluster's name, before every Redis key and channel (several networks "
         "can share one Redis)"],
        ["cluster-keys", None, None,
         "file of the ids of the cluster's nodes, one per line (needed with --cluster)"],
        ["cluster-password-file", None, None, "file holding the Redis password"],
        ["cluster-dead-after", None, 15.0,
         "seconds after which a silent node counts as dead and its hubs leave", float],
    ] + tap_common.MANHOLE + tap_common.METRICS + tap_common.limit_parameters(GATEWAY)
    optFlags = tap_common.METRICS_FLAGS

    def postOptions(self):
        super().postOptions()
        if self["mode"] not in ("private", "open"):
            raise usage.UsageError("--mode must be private or open")
        if self["http"] and not self["public-address"]:
            raise usage.UsageError("--http needs --public-address IP:PORT for our record")
        self._check_cluster()

    def _check_cluster(self):
        if not self["cluster"]:
            for option in ("cluster-keys", "cluster-password-file"):
                if self[option]:
                    raise usage.UsageError(f"--{option} needs --cluster")
            return
        from blockhub.gateway.cluster.redis_url import parse_redis_url
        try:
            parse_redis_url(self["cluster"])
        except ValueError as e:
            raise usage.UsageError(str(e))
        if not self["cluster-keys"]:
            raise usage.UsageError("--cluster needs --cluster-keys FILE: the ids of the "
                                   "cluster's nodes, one per line")
        name = self["cluster-name"]
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
            raise usage.UsageError("--cluster-name wants 1 to 64 letters, digits, '-', '_' "
                                   f"or '.', not {name!r}")
        if not 1 <= self["cluster-dead-after"] <= 3600:
            raise usage.UsageError("--cluster-dead-after wants 1 to 3600 seconds")


def makeService(options, reactor=None):
    from blockhub.gateway.service import make_gateway_service
    return tap_common.make_service(make_gateway_service, options, reactor)
