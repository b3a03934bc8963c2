"""Signed gateway records, fingerprints, and hubs following the public list over HTTPS."""

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor, ssl
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.server import Site

from blockhub.fingerprint import fingerprint
from blockhub.gateway.http import GatewaysResource, Root
from blockhub.gateway_records import check_record, make_record
from blockhub.hub.config import GatewayEntry, load_config
from blockhub.hub.gateway_link import GatewayLink
from blockhub.hub.gateway_list import GatewayList, fetch, http_client
from blockhub.ids import encode_id
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

    def test_malformed_list_changes_nothing(self):
        self.glist.apply({"nope": 1})
        self.glist.apply({"gateways": ["x", 3]})
        self.assertEqual(self.link.gateways[0].host, "127.0.0.1")


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
    def test_unreachable_list_keeps_config(self):
        entry = GatewayEntry(GW.id, "127.0.0.1", 6610)
        link = GatewayLink([entry], lambda e: defer.Deferred(), None, Clock())
        ca_file, port = self.serve("localhost")
        glist = GatewayList(reactor, [f"https://localhost:{port + 1}/gateways"], 3600,
                            http_client(reactor, ca_file), link)
        yield glist.fetch_all()
        self.assertEqual(link.gateways, [entry])
        self.assertTrue(glist.last[glist.urls[0]].startswith("error"))
