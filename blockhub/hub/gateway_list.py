"""Fetching the public gateway list with treq, and following gateways that moved.

HTTPS is verified against the system trust store, or only the certificates in
``--ca-file``, with the host name checked (Twisted's browser-like policy, which uses
service-identity).  Every record is checked; only records for gateways pinned in the
hub's config are used, and only when newer than what we already know.  A list that
cannot be fetched changes nothing: the hub keeps working from its config.
"""

import json

import treq
from twisted.internet import ssl
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS

from blockhub.errors import UserError
from blockhub.gateway_records import check_record, records_of

log = Logger()
MAX_LIST_BYTES = 1024 * 1024
DEFAULT_INTERVAL = 3600.0
FETCH_TIMEOUT = 20


def trust_root(ca_file=None):
    if ca_file is None:
        return ssl.platformTrust()
    try:
        text = open(ca_file).read()
    except OSError as e:
        raise UserError(f"cannot read --ca-file {ca_file}: {e.strerror}")
    marker = "-----END CERTIFICATE-----"
    pems = [part + marker for part in text.split(marker) if "-----BEGIN" in part]
    if not pems:
        raise UserError(f"--ca-file {ca_file} holds no PEM certificate")
    try:
        return ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(p) for p in pems])
    except Exception as e:
        raise UserError(f"--ca-file {ca_file}: {e}")


def http_client(reactor, ca_file=None) -> treq.client.HTTPClient:
    policy = BrowserLikePolicyForHTTPS(trustRoot=trust_root(ca_file))
    return treq.client.HTTPClient(Agent(reactor, contextFactory=policy, connectTimeout=10))


class _TooLarge(Exception):
    pass


def fetch(client, url: str, reactor) -> Deferred:
    """GET ``url`` and parse the JSON list, refusing bodies over 1 MiB."""
    chunks = []

    def collect(data):
        chunks.append(data)
        if sum(map(len, chunks)) > MAX_LIST_BYTES:
            raise _TooLarge()

    def got(response):
        if response.code != 200:
            raise ValueError(f"HTTP {response.code}")
        return treq.collect(response, collect)

    def parse(_):
        return json.loads(b"".join(chunks).decode("utf-8"))

    d = client.get(url, timeout=FETCH_TIMEOUT, reactor=reactor)
    d.addCallback(got)
    d.addCallback(parse)
    return d


def fetch_blocking(url: str, ca_file=None):
    """For the CLI: fetch one list with a reactor of our own, or raise ``UserError``."""
    from twisted.internet import reactor

    outcome = []
    d = fetch(http_client(reactor, ca_file), url, reactor)
    d.addBoth(outcome.append)
    d.addBoth(lambda _: reactor.stop())
    reactor.run()
    result = outcome[0]
    if hasattr(result, "getErrorMessage"):
        raise UserError(f"cannot fetch {url}: {result.getErrorMessage() or result.type.__name__}")
    return result


class GatewayList:
    """Fetches each list at start and on the interval; updates pinned gateways."""

    def __init__(self, reactor, urls, interval, client, link, on_moved=None, issued=None):
        self.reactor = reactor
        self.urls = list(urls)
        self.interval = interval
        self.client = client
        self.link = link
        self.on_moved = on_moved  # called with the updated GatewayEntry
        # Persists the newest ``issued`` per key (gateway_issued / set_gateway_issued).
        self.issued = issued
        self.newest: dict[str, int] = {}
        self.last: dict[str, str] = {}  # url -> "ok: N records" or the error
        self._loop = LoopingCall(self.fetch_all)
        self._loop.clock = reactor

    def start(self):
        self._loop.start(self.interval, now=True)

    def stop(self):
        if self._loop.running:
            self._loop.stop()

    def fetch_all(self) -> Deferred:
        """Fetch every list; the Deferred fires when all are done (never fails)."""
        attempts = []
        for url in self.urls:
            d = fetch(self.client, url, self.reactor)
            d.addCallback(self.apply, url)
            d.addErrback(self._failed, url)
            attempts.append(d)
        return gatherResults(attempts)

    def _failed(self, failure, url):
        reason = failure.getErrorMessage() or failure.type.__name__
        self.last[url] = f"error: {reason}"
        log.warn("cannot fetch gateway list {url}: {reason}; keeping the known addresses",
                 url=url, reason=reason)

    def apply(self, document, url="(list)"):
        try:
            records = records_of(document)
        except ValueError as e:
            self.last[url] = f"error: {e}"
            log.warn("gateway list {url} is malformed: {error}", url=url, error=str(e))
            return
        pinned = {entry.id for entry in self.link.gateways}
        now = int(self.reactor.seconds())
        used = 0
        for record in records:
            problem = check_record(record, now)
            key = record.get("pubKey") if isinstance(record, dict) else None
            if problem:
                log.warn("ignoring a gateway record from {url} ({key}): {problem}", url=url,
                         key=key, problem=problem)
                continue
            key = key.lower()
            if key not in pinned:
                log.info("ignoring a record for {key}: not a gateway in our config", key=key)
                continue
            if record["issued"] <= self.newest.get(key, -1):
                continue
            self.newest[key] = record["issued"]
            used += 1
            entry = self.link.move(key, record["IP"], record["Port"])
            if entry is not None:
                log.info("gateway {key} is now at {address} (from {url})", key=key,
                         address=entry.address, url=url)
                if self.on_moved is not None:
                    self.on_moved(entry)
        self.last[url] = f"ok: {len(records)} records, {used} used"
