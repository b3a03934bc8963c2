"""Signed gateway records, fingerprints, and hubs following the public list over HTTPS."""

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor, ssl
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import ResponseDone
from twisted.web.iweb import UNKNOWN_LENGTH
from twisted.web.resource import Resource
from twisted.web.server import Site
from twisted.web.util import Redirect

from blockhub.fingerprint import fingerprint
from blockhub.gateway.http import GatewaysResource, Root
from blockhub.gateway_records import check_record, make_record
from blockhub.hub.config import GatewayEntry, load_config
from blockhub.hub.gateway_link import GatewayLink
from blockhub.hub.gateway_list import (
    FETCH_TIMEOUT,
    MAX_LIST_BYTES,
    FetchError,
    FetchTimedOut,
    GatewayList,
    ListTooLarge,
    fetch,
    http_client,
)
from blockhub.hub.store import Store
from blockhub.ids import encode_id
from blockhub.succession import make_commitment
from blockhub.wire import canonical, envelope
from tests.certs import make_ca_and_server
from tests.memory import new_identity

GW = new_identity()
OTHER = new_identity()
NOW = 1_800_000_000


class RecordTests(SynchronousTestCase):
    def test_valid(self):
        record = make_record(GW, "192.0.2.1", 6610, NOW)
        self.assertIsNone(check_record(record, NOW + 10))
        self.assertEqual(set(record), {"pubKey", "IP", "Port", "issued", "expires",
                                       "signature"})

    def test_tampered_fields(self):
        record = make_record(GW, "192.0.2.1", 6610, NOW)
        for field, value in [("IP", "192.0.2.2"), ("Port", 6611), ("expires", NOW + 10**8),
                             ("pubKey", OTHER.id)]:
            self.assertEqual(check_record(dict(record, **{field: value}), NOW), "bad signature")

    def test_expired_and_future(self):
        record = make_record(GW, "192.0.2.1", 6610, NOW, days=0.5)
        self.assertEqual(check_record(record, NOW + 43200), "expired")
        self.assertEqual(check_record(make_record(GW, "192.0.2.1", 1, NOW + 1000), NOW),
                         "issued in the future")

    def test_malformed(self):
        self.assertEqual(check_record([], NOW), "not an object")
        self.assertIn("missing", check_record({"pubKey": GW.id}, NOW))
        record = make_record(GW, "192.0.2.1", 6610, NOW)
        self.assertEqual(check_record(dict(record, IP="nowhere"), NOW), "malformed field")
        self.assertEqual(check_record(dict(record, signature="!!"), NOW), "malformed field")


def signed(identity, **fields):
    """A record with any field values, correctly signed (for fields no make_record
    would write)."""
    body = {"pubKey": identity.id, "IP": "192.0.2.1", "Port": 6610, "issued": NOW,
            "expires": NOW + 86400}
    body.update(fields)
    # A lax encoder's bytes: the canonical form refuses an integer past 2**53 - 1.
    data = (envelope.DOMAIN + b"gateway-record\x00" + identity.public_key
            + json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
    return dict(body, signature=canonical.b64(identity.sign(data)))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8)


class MalformedRecordTests(SynchronousTestCase):
    """Finding 12: check_record answers for any JSON value, never raises."""

    def test_wrong_types_are_problems_not_exceptions(self):
        record = make_record(GW, "192.0.2.1", 6610, NOW)
        for field, value in [("signature", 5), ("signature", None), ("signature", ["x"]),
                             ("pubKey", 5), ("pubKey", {"a": 1}), ("IP", 5), ("IP", None),
                             ("Port", True), ("Port", 6610.0), ("issued", True),
                             ("expires", 1e20), ("expires", "soon"), ("signature", "\ud800"),
                             ("signature", "é" * 88)]:
            problem = check_record(dict(record, **{field: value}), NOW)
            self.assertIsInstance(problem, str, (field, value))

    def test_times_past_year_9999_are_refused(self):
        # Correctly signed, but no date can show it (verify-gateways divided it into days).
        self.assertEqual(check_record(signed(GW, expires=10**400), NOW),
                         "bad issued or expires")
        self.assertRaises(ValueError, make_record, GW, "192.0.2.1", 6610, NOW, days=1e300)

    @settings(max_examples=300)
    @given(st.sampled_from(["pubKey", "IP", "Port", "issued", "expires", "signature"]), JSON)
    def test_any_value_in_any_field(self, field, value):
        record = dict(make_record(GW, "192.0.2.1", 6610, NOW), **{field: value})
        problem = check_record(record, NOW)
        self.assertTrue(problem is None or isinstance(problem, str))

    @given(JSON)
    def test_any_record(self, value):
        problem = check_record(value, NOW)
        self.assertTrue(problem is None or isinstance(problem, str))


class FingerprintTests(SynchronousTestCase):
    def test_shape_and_stability(self):
        fp = fingerprint(GW.id)
        words = fp.split()
        self.assertEqual(len(words), 7)
        self.assertEqual(len(words[-1]), 4)
        self.assertEqual(fp, fingerprint(GW.id.upper()))

    @settings(max_examples=200)
    @given(st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=2, unique=True))
    def test_different_keys_differ(self, keys):
        a, b = (fingerprint(encode_id(k)) for k in keys)
        self.assertNotEqual(a, b)


def config_file(case, entries):
    path = Path(case.mktemp())
    path.write_text(json.dumps({"Hub": {"Gateways": entries}, "Other": {"keep": True}}))
    return path


class ApplyTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.dials = []
        self.path = config_file(self, [{"name": "g", "pubKey": GW.id,
                                        "lastKnownIP": "127.0.0.1", "port": 6610}])
        entries = load_config(self.path)

        def dial(entry):
            self.dials.append(entry)
            return defer.fail(ConnectionRefusedError())

        self.link = GatewayLink(entries, dial, None, self.clock, rand=lambda: 1.0)
        self.moved = []

        def remember(entry):
            from blockhub.hub.config import record_last_known_ip
            record_last_known_ip(self.path, entry.id, entry.host, entry.port)
            self.moved.append(entry)

        self.glist = GatewayList(self.clock, [], 3600, None, self.link, on_moved=remember)

    def test_moved_gateway_is_followed_at_once(self):
        self.link.start()
        self.assertEqual(self.link.state, "backing_off")
        self.glist.apply({"gateways": [make_record(GW, "127.0.0.2", 7000, NOW)]})
        self.assertEqual((self.dials[-1].host, self.dials[-1].port), ("127.0.0.2", 7000))
        saved = json.loads(self.path.read_text())
        self.assertEqual(saved["Hub"]["Gateways"][0]["lastKnownIP"], "127.0.0.2")
        self.assertEqual(saved["Hub"]["Gateways"][0]["port"], 7000)
        self.assertEqual(saved["Other"], {"keep": True})

    def test_tampered_unknown_and_older_records_are_ignored(self):
        good = make_record(GW, "127.0.0.2", 7000, NOW)
        tampered = dict(make_record(GW, "127.0.0.3", 7000, NOW + 5), IP="127.0.0.9")
        unknown = make_record(OTHER, "127.0.0.4", 7000, NOW + 5)
        older = make_record(GW, "127.0.0.5", 7000, NOW - 100)
        self.glist.apply({"gateways": [good, tampered, unknown, older]})
        self.assertEqual([e.host for e in self.link.gateways], ["127.0.0.2"])
        self.assertEqual(len(self.moved), 1)

    def test_a_records_commitment_reaches_the_book(self):
        heard = []
        self.glist.on_commitment = lambda key, value: heard.append((key, value))
        commitment = make_commitment(GW, OTHER.id, NOW)
        self.glist.apply({"gateways": [make_record(GW, "127.0.0.2", 7000, NOW, 7,
                                                   commitment)]})
        self.assertEqual(heard, [(GW.id, commitment.to_json())])

    def test_malformed_list_changes_nothing(self):
        self.glist.apply({"nope": 1})
        self.glist.apply({"gateways": ["x", 3]})
        self.assertEqual(self.link.gateways[0].host, "127.0.0.1")

    def test_one_malformed_record_does_not_stop_the_others(self):
        good = make_record(GW, "127.0.0.2", 7000, NOW)
        bad = [dict(good, signature=5), dict(good, IP=5), dict(good, pubKey=[]),
               dict(good, Port=True), signed(GW, expires=10**400)]
        self.glist.apply({"gateways": bad + [good]}, "https://list.example/")
        self.assertEqual([(e.host, e.port) for e in self.link.gateways], [("127.0.0.2", 7000)])
        self.assertEqual(self.glist.last["https://list.example/"], "ok: 6 records, 1 used")


class RollbackTests(SynchronousTestCase):
    """Finding 9: the newest ``issued`` taken per key survives a restart."""

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.store = Store(Path(self.mktemp()))
        self.addCleanup(self.store.db.close)

    def hub(self):
        """A hub as it starts: its config address, a new GatewayList on the same store."""
        link = GatewayLink([GatewayEntry(GW.id, "127.0.0.1", 6610)],
                           lambda entry: defer.Deferred(), None, self.clock)
        return link, GatewayList(self.clock, [], 3600, None, link, issued=self.store)

    def test_an_older_record_is_not_taken_again_after_a_restart(self):
        link, glist = self.hub()
        glist.apply({"gateways": [make_record(GW, "127.0.0.2", 7000, NOW)]})
        self.assertEqual(link.gateways[0].host, "127.0.0.2")
        self.assertEqual(self.store.gateway_issued(), {GW.id: NOW})

        link, glist = self.hub()  # restarted; the config still says 127.0.0.1
        older = make_record(GW, "127.0.0.66", 6666, NOW - 100)  # unexpired, signed
        self.assertIsNone(check_record(older, NOW))
        glist.apply({"gateways": [older]})
        self.assertEqual(link.gateways[0].host, "127.0.0.1")

        glist.apply({"gateways": [make_record(GW, "127.0.0.3", 7000, NOW + 10)]})
        self.assertEqual(link.gateways[0].host, "127.0.0.3")
        self.assertEqual(self.store.gateway_issued(), {GW.id: NOW + 10})

    def test_without_a_store_newest_is_in_memory(self):
        link = GatewayLink([GatewayEntry(GW.id, "127.0.0.1", 6610)],
                           lambda entry: defer.Deferred(), None, self.clock)
        glist = GatewayList(self.clock, [], 3600, None, link)
        glist.apply({"gateways": [make_record(GW, "127.0.0.2", 7000, NOW)]})
        glist.apply({"gateways": [make_record(GW, "127.0.0.5", 7000, NOW - 1)]})
        self.assertEqual(link.gateways[0].host, "127.0.0.2")


class CountedBytes(bytes):
    """A chunk that counts how often its length is asked for."""

    calls = 0

    def __len__(self):
        CountedBytes.calls += 1
        return super().__len__()


class FakeProducer:
    """The transport a response body is delivered over (an IPushProducer)."""

    def __init__(self):
        self.stopped = False

    def stopProducing(self):
        self.stopped = True

    def pauseProducing(self):
        pass

    def resumeProducing(self):
        pass


class FakeResponse:
    def __init__(self, code=200, length=UNKNOWN_LENGTH, headers=None):
        self.code, self.length = code, length
        self.headers = headers
        self.transport = FakeProducer()
        self.body = None

    def deliverBody(self, protocol):
        self.body = protocol
        protocol.makeConnection(self.transport)

    def send(self, data: bytes):
        self.body.dataReceived(data)

    def finish(self):
        self.body.connectionLost(Failure(ResponseDone()))


class FakeClient:
    """treq's HTTPClient as fetch uses it: ``get`` returns a Deferred the test fires."""

    def __init__(self):
        self.calls = []
        self.cancelled = []

    def get(self, url, **kwargs):
        d = defer.Deferred(lambda d: self.cancelled.append(url))
        self.calls.append((url, kwargs, d))
        return d

    def respond(self, response, n=-1):
        self.calls[n][2].callback(response)
        return response


class FetchBoundsTests(SynchronousTestCase):
    """Finding 8: the body is counted incrementally and the whole fetch is bounded in
    time and size, on the injected clock; no network."""

    URL = "https://list.example/gateways"

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(NOW)
        self.client = FakeClient()

    def outcome(self, d):
        results = []
        d.addBoth(results.append)
        return results

    def test_one_byte_chunks_are_counted_once_each(self):
        document = {"gateways": [make_record(GW, "192.0.2.1", 6610, NOW)]}
        data = json.dumps(document, indent=8).encode() + b" " * 2000
        got = self.outcome(fetch(self.client, self.URL, self.clock))
        response = self.client.respond(FakeResponse())
        CountedBytes.calls = 0
        for i in range(len(data)):
            response.send(CountedBytes(data[i:i + 1]))
        response.finish()
        self.assertEqual(got, [document])
        # Summing every chunk so far on every chunk asked len() n*(n+1)/2 times.
        self.assertLessEqual(CountedBytes.calls, 2 * len(data))

    def test_a_trickling_body_is_abandoned_at_the_deadline(self):
        got = self.outcome(fetch(self.client, self.URL, self.clock))
        self.clock.advance(1)
        response = self.client.respond(FakeResponse())
        for _ in range(int(FETCH_TIMEOUT) - 2):
            response.send(b" ")
            self.clock.advance(1)
        self.assertEqual(got, [])
        self.clock.advance(1)
        [failure] = got
        self.assertTrue(failure.check(FetchTimedOut), failure)
        self.assertIn(f"within {FETCH_TIMEOUT:g}s", failure.getErrorMessage())
        self.assertTrue(response.transport.stopped)
        response.send(b"late")  # a body still arriving after we gave up is ignored
        response.finish()
        self.assertEqual(len(got), 1)

    def test_a_response_that_never_comes_is_cancelled_at_the_deadline(self):
        got = self.outcome(fetch(self.client, self.URL, self.clock))
        self.clock.advance(FETCH_TIMEOUT - 0.5)
        self.assertEqual(got, [])
        self.clock.advance(0.5)
        self.assertEqual(self.client.cancelled, [self.URL])
        self.assertTrue(got[0].check(FetchTimedOut), got[0])

    def test_a_finished_fetch_leaves_no_timer(self):
        d = fetch(self.client, self.URL, self.clock)
        response = self.client.respond(FakeResponse())
        response.send(b'{"gateways": []}')
        response.finish()
        self.assertEqual(self.successResultOf(d), {"gateways": []})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_size_is_bounded_while_the_body_arrives(self):
        got = self.outcome(fetch(self.client, self.URL, self.clock))
        response = self.client.respond(FakeResponse())
        chunk = b" " * 65536
        for _ in range(MAX_LIST_BYTES // len(chunk)):
            response.send(chunk)
        self.assertEqual(got, [])
        response.send(b" ")
        self.assertTrue(got[0].check(ListTooLarge), got[0])
        self.assertTrue(response.transport.stopped)
        self.assertEqual(response.body.chunks, [])  # what came is not kept

    def test_a_declared_length_over_the_limit_is_refused_unread(self):
        d = fetch(self.client, self.URL, self.clock)
        response = self.client.respond(FakeResponse(length=MAX_LIST_BYTES + 1))
        self.failureResultOf(d, ListTooLarge)
        self.assertIsNone(response.body)

    def test_redirects_are_neither_asked_for_nor_followed(self):
        d = fetch(self.client, self.URL, self.clock)
        [(_url, kwargs, _d)] = self.client.calls
        self.assertIs(kwargs.get("allow_redirects"), False)
        self.client.respond(FakeResponse(code=302))
        self.assertIn("redirects are not followed",
                      self.failureResultOf(d, FetchError).getErrorMessage())

    def test_a_url_the_client_refuses_at_once_is_an_error_of_that_url(self):
        class Refusing:
            def get(self, url, **kwargs):
                raise ValueError(f"invalid host in url: {url!r}")

        link = GatewayLink([GatewayEntry(GW.id, "127.0.0.1", 6610)],
                           lambda e: defer.Deferred(), None, self.clock)
        glist = GatewayList(self.clock, ["https://[bad/", self.URL], 3600, Refusing(), link)
        self.successResultOf(glist.fetch_all())
        self.assertEqual(sorted(glist.last), sorted(["https://[bad/", self.URL]))
        self.assertTrue(all(v.startswith("error: invalid host") for v in glist.last.values()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_the_refresh_keeps_the_known_addresses(self):
        entry = GatewayEntry(GW.id, "127.0.0.1", 6610)
        link = GatewayLink([entry], lambda e: defer.Deferred(), None, self.clock)
        glist = GatewayList(self.clock, [self.URL], 3600, self.client, link)
        done = glist.fetch_all()
        response = self.client.respond(FakeResponse())
        response.send(b'{"gateways": [')
        self.clock.advance(FETCH_TIMEOUT)
        self.successResultOf(done)
        self.assertEqual(link.gateways, [entry])
        self.assertEqual(glist.last[self.URL],
                         f"error: no complete list within {FETCH_TIMEOUT:g}s")


class HttpsTests(TestCase):
    """A real twisted.web server on 127.0.0.1 with a certificate from a test CA."""

    def serve(self, hostname):
        ca_pem, server_pem = make_ca_and_server(hostname)
        ca_file = Path(self.mktemp())
        ca_file.write_bytes(ca_pem)
        cert = ssl.PrivateCertificate.loadPEM(server_pem)
        resource = GatewaysResource(GW, reactor, "127.0.0.1", 6610)
        port = reactor.listenSSL(0, Site(Root(resource)), cert.options(),
                                 interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return ca_file, port.getHost().port

    @defer.inlineCallbacks
    def test_fetch_verified_list(self):
        ca_file, port = self.serve("localhost")
        client = http_client(reactor, ca_file)
        document = yield fetch(client, f"https://localhost:{port}/gateways", reactor)
        [record] = document["gateways"]
        self.assertIsNone(check_record(record, int(reactor.seconds())))
        self.assertEqual((record["pubKey"], record["Port"]), (GW.id, 6610))

    @defer.inlineCallbacks
    def test_wrong_host_name_is_refused(self):
        ca_file, port = self.serve("gateways.example")
        client = http_client(reactor, ca_file)
        d = fetch(client, f"https://localhost:{port}/gateways", reactor)
        yield self.assertFailure(d, Exception)

    @defer.inlineCallbacks
    def test_untrusted_ca_is_refused(self):
        _, port = self.serve("localhost")
        other_ca, _ = make_ca_and_server("localhost")
        path = Path(self.mktemp())
        path.write_bytes(other_ca)
        d = fetch(http_client(reactor, path), f"https://localhost:{port}/gateways", reactor)
        yield self.assertFailure(d, Exception)

    @defer.inlineCallbacks
    def test_redirect_off_https_is_not_followed(self):
        """Finding 9: an https list that redirects to plain http (serving a valid list)
        is an error, not a downgrade."""
        plain = reactor.listenTCP(0, Site(Root(GatewaysResource(GW, reactor, "127.0.0.1",
                                                                6610))),
                                  interface="127.0.0.1")
        self.addCleanup(plain.stopListening)
        target = f"http://127.0.0.1:{plain.getHost().port}/gateways".encode()
        ca_pem, server_pem = make_ca_and_server("localhost")
        ca_file = Path(self.mktemp())
        ca_file.write_bytes(ca_pem)
        root = Resource()
        root.putChild(b"gateways", Redirect(target))
        port = reactor.listenSSL(0, Site(root), ssl.PrivateCertificate.loadPEM(
            server_pem).options(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = http_client(reactor, ca_file)
        d = fetch(client, f"https://localhost:{port.getHost().port}/gateways", reactor)
        failure = yield self.assertFailure(d, FetchError)
        self.assertIn("HTTP 302", str(failure))

    @defer.inlineCallbacks
    def test_unreachable_list_keeps_config(self):
        entry = GatewayEntry(GW.id, "127.0.0.1", 6610)
        link = GatewayLink([entry], lambda e: defer.Deferred(), None, Clock())
        ca_file, port = self.serve("localhost")
        glist = GatewayList(reactor, [f"https://localhost:{port + 1}/gateways"], 3600,
                            http_client(reactor, ca_file), link)
        yield glist.fetch_all()
        self.assertEqual(link.gateways, [entry])
        self.assertTrue(glist.last[glist.urls[0]].startswith("error"))
