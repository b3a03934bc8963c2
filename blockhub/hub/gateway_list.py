"""Fetching the public gateway list with treq, and following gateways that moved.

HTTPS is verified against the system trust store, or only the certificates in
``--ca-file``, with the host name checked (Twisted's browser-like policy, which uses
service-identity).  A fetch is bounded as a whole (one deadline, one size limit) and
never follows a redirect.  Every record is checked alone; only records for gateways
pinned in the hub's config are used, and only when newer than any taken before, even
before a restart.  A list that cannot be fetched changes nothing: the hub keeps
working from its config.
"""

import json
from typing import Any

import treq
from twisted.internet import ssl
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.protocol import Protocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH

from blockhub.errors import UserError
from blockhub.gateway_records import check_record, records_of
from blockhub.hub.gateway_pins import move
from blockhub.timers import cancel

log = Logger()
MAX_LIST_BYTES = 1024 * 1024
DEFAULT_INTERVAL = 3600.0
FETCH_TIMEOUT = 20  # seconds for a whole fetch: connection, headers and body


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


class FetchError(Exception):
    """A list that could not be fetched; the message says why, in one line."""


class FetchTimedOut(FetchError):
    pass


class ListTooLarge(FetchError):
    pass


class _Body(Protocol):
    """Collects a response body, counting its bytes as they arrive (never re-adding
    what came before), and stops the transfer once it passes the limit or is abandoned."""

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0
        self.chunks: list[bytes] = []
        self.done: Deferred[bytes] = Deferred()

    def dataReceived(self, data: bytes):
        if self.done.called:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.abandon(ListTooLarge(f"the list is larger than {self.limit} bytes"))
            return
        self.chunks.append(data)

    def connectionLost(self, reason=None):
        if self.done.called:
            return
        if reason is not None and reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.chunks))
        else:
            self.done.errback(reason)

    def abandon(self, error: Exception):
        if self.done.called:
            return
        self.chunks = []
        if self.transport is not None:
            # The response body's transport is also its producer.
            self.transport.stopProducing()  # type: ignore[attr-defined]
        self.done.errback(error)


class _Fetch:
    """One GET of a list, bounded as a whole: a single deadline covers the connection,
    the headers and the last byte of the body, so a server that trickles cannot hold a
    refresh open; a single count bounds the size.  Redirects are refused, never
    followed: the list's address is the operator's choice, and following one could
    leave https (a downgrade) or the host the operator named."""

    def __init__(self, client, url: str, clock, timeout: float, max_bytes: int):
        self.client, self.url, self.clock = client, url, clock
        self.timeout, self.max_bytes = timeout, max_bytes
        self.body: _Body | None = None
        self.expired = False

    def start(self) -> Deferred:
        self.timer = self.clock.callLater(self.timeout, self._expire)
        # maybeDeferred: a URL treq cannot parse fails this fetch, not the caller.
        self.request = maybeDeferred(self.client.get, self.url, allow_redirects=False,
                                     unbuffered=True)
        d = self.request
        d.addCallback(self._got_response)
        d.addBoth(self._finished)
        d.addCallback(_parse)
        return d

    def _got_response(self, response):
        if 300 <= response.code < 400:
            raise FetchError(f"HTTP {response.code}: redirects are not followed "
                             f"(give the list's final https address)")
        if response.code != 200:
            raise FetchError(f"HTTP {response.code}")
        if response.length is not UNKNOWN_LENGTH and response.length > self.max_bytes:
            raise ListTooLarge(f"the list is larger than {self.max_bytes} bytes")
        self.body = _Body(self.max_bytes)
        response.deliverBody(self.body)
        return self.body.done

    def _timed_out(self) -> FetchTimedOut:
        return FetchTimedOut(f"no complete list within {self.timeout:g}s")

    def _expire(self):
        self.expired = True
        if self.body is not None:
            self.body.abandon(self._timed_out())
        else:
            self.request.cancel()

    def _finished(self, result):
        self.timer = cancel(self.timer)
        if isinstance(result, Failure) and self.expired and not result.check(FetchError):
            return Failure(self._timed_out())
        return result


def _parse(body: bytes):
    try:
        return json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise FetchError(f"the list is not JSON: {e}")


def fetch(client, url: str, clock, timeout: float = FETCH_TIMEOUT,
          max_bytes: int = MAX_LIST_BYTES) -> Deferred:
    """GET ``url`` and parse the JSON list: at most ``max_bytes`` of body, the whole
    fetch within ``timeout`` seconds of ``clock``, no redirect; else ``FetchError``."""
    return _Fetch(client, url, clock, timeout, max_bytes).start()


def fetch_blocking(url: str, ca_file=None):
    """For the CLI: fetch one list with a reactor of our own, or raise ``UserError``."""
    from twisted.internet import reactor

    client = http_client(reactor, ca_file)
    outcome: list[Any] = []

    def start():
        # Started once the reactor runs, so a fetch that fails at once can still stop it.
        d = maybeDeferred(fetch, client, url, reactor)
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    if not outcome:
        raise KeyboardInterrupt()  # the reactor stopped on a signal
    result = outcome[0]
    if isinstance(result, Failure):
        raise UserError(f"cannot fetch {url}: {result.getErrorMessage() or result.type.__name__}")
    return result


class GatewayList:
    """Fetches each list at start and on the interval; updates pinned gateways.

    "Newest ``issued`` wins" must survive a restart, or an older record that has not
    expired (a rollback) would be taken again: with ``issued`` (the hub's store, with
    ``gateway_issued()`` and ``set_gateway_issued(key, issued)``) the newest per key is
    loaded here and written before a newer record is used."""

    def __init__(self, reactor, urls, interval, client, link, on_moved=None, issued=None,
                 on_commitment=None):
        self.reactor = reactor
        self.urls = list(urls)
        self.interval = interval
        self.client = client
        self.link = link
        self.on_moved = on_moved  # called with the updated GatewayEntry
        # called with (gateway id, commitment) of a record that carries ``next``
        self.on_commitment = on_commitment
        self.issued = issued
        self.newest: dict[str, int] = dict(issued.gateway_issued()) if issued else {}
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
        used = sum(1 for record in records if self._take(record, url, pinned, now))
        self.last[url] = f"ok: {len(records)} records, {used} used"

    def _take(self, record, url, pinned, now) -> bool:
        """Judge one record alone (a bad one never stops the others); True when used."""
        problem = check_record(record, now)
        if problem:
            key = record.get("pubKey") if isinstance(record, dict) else None
            log.warn("ignoring a gateway record from {url} ({key!r}): {problem}", url=url,
                     key=key if isinstance(key, str) else None, problem=problem)
            return False
        key = record["pubKey"].lower()
        if key not in pinned:
            log.info("ignoring a record for {key}: not a gateway in our config", key=key)
            return False
        if record["issued"] <= self.newest.get(key, -1):
            return False
        if self.issued is not None:
            try:
                self.issued.set_gateway_issued(key, record["issued"])
            except UserError as e:
                log.warn("cannot record the gateway record of {key}: {error}; not using it",
                         key=key, error=str(e))
                return False
        self.newest[key] = record["issued"]
        if "next" in record and self.on_commitment is not None:
            self.on_commitment(key, record["next"])
        entry = move(self.link, key, record["IP"], record["Port"])
        if entry is not None:
            log.info("gateway {key} is now at {address} (from {url})", key=key,
                     address=entry.address, url=url)
            if self.on_moved is not None:
                self.on_moved(entry)
        return True
