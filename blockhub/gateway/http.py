"""``GET /gateways``: the gateway's own signed record and the records of others;
``GET /head``: its latest signed presence head (docs/accountability.md).

The gateway's own record names its public address and is re-signed before it expires;
a cluster's node also serves the records of the other live nodes, as their heartbeats
carry them (each verified when read);
the records in ``--gateway-records`` are read at each request (so an operator can
update the file without a restart) and served as they are: hubs verify every record.
"""

import json
from pathlib import Path
from typing import Any

from twisted.logger import Logger
from twisted.web.resource import Resource

from blockhub.gateway_records import make_record, records_of

log = Logger()
OWN_RECORD_DAYS = 7.0
RESIGN_BEFORE = 86400


class GatewaysResource(Resource):
    isLeaf = True

    def __init__(self, identity, clock, ip: str, port: int, records_file=None,
                 cluster=lambda: []):
        super().__init__()
        self.identity = identity
        self.clock = clock
        self.ip, self.port = ip, port
        self.records_file = Path(records_file) if records_file else None
        self._own: dict[str, Any] | None = None
        self.cluster = cluster  # -> the records of the cluster's other live nodes
        self.commitment = None  # to our next key, carried in our record as ``next``

    def rekey(self, keys) -> None:
        """A new key or commitment (``GatewayKeys``): our record is signed anew."""
        self.identity, self.commitment, self._own = keys.identity, keys.commitment, None

    def own_record(self) -> dict:
        now = int(self.clock.seconds())
        if self._own is None or self._own["expires"] - now < RESIGN_BEFORE:
            self._own = make_record(self.identity, self.ip, self.port, now, OWN_RECORD_DAYS,
                                    self.commitment)
        return self._own

    def others(self) -> list:
        if self.records_file is None:
            return []
        try:
            return records_of(json.loads(self.records_file.read_text()))
        except (OSError, ValueError) as e:
            log.warn("cannot serve {path}: {error}", path=str(self.records_file), error=str(e))
            return []

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-cache")
        body = {"gateways": [self.own_record()] + self.cluster() + self.others()}
        return json.dumps(body, indent=1).encode()


class HeadResource(Resource):
    """The latest head, as the hubs got it; 404 before the first."""

    isLeaf = True

    def __init__(self, chain):
        super().__init__()
        self.chain = chain

    def render_GET(self, request):
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-cache")
        latest = self.chain.latest if self.chain is not None else None
        if latest is None:
            request.setResponseCode(404)
            return b'{"head": null}'
        return json.dumps({"head": latest.to_json()}, indent=1).encode()


class Root(Resource):
    def __init__(self, gateways: GatewaysResource, head: HeadResource | None = None):
        super().__init__()
        self.putChild(b"gateways", gateways)
        if head is not None:
            self.putChild(b"head", head)
