"""Gateway and presence, end to end: real ``twistd`` gateways and hubs on 127.0.0.1,
observed only through the ``blockhub`` CLI (and, for the wire, a spying hub)."""

import json
import os
import re
import socket
import stat
import subprocess
import time

from twisted.trial.unittest import SynchronousTestCase

from blockhub.wire.framing import FrameDecoder
from tests.integration.harness import (
    LOOPBACK,
    PYTHON,
    TWISTD,
    Network,
    TCPRecorder,
    cli,
    gateway_row,
    listed_ids,
    online_at,
    tail,
    tls_records,
    wait_for,
    wait_lists,
    wait_online,
)

SPY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spy_hub.py")


class PresenceTests(SynchronousTestCase):
    def setUp(self):
        self.net = Network(self)

    def test_three_hubs_see_each_other_and_a_leaver(self):
        """Every hub lists the other two, by id and name; the gateway lists all three;
        each hub is online at the gateway; a hub that stops vanishes from every list.
        All daemons run from the same working directory, each with its own pid file."""
        g, a, b, c = self.net.identities("gw", "alpha", "bravo", "charlie")
        gw = self.net.gateway(g)
        hubs = self.net.hubs([a, b, c], gateways=[gw])
        everyone = {h.id: h.name for h in hubs}

        for hub in hubs:
            others = {i: n for i, n in everyone.items() if i != hub.id}
            rows = wait_lists(hub, set(others), logs=[gw])
            self.assertEqual({row["id"]: row["name"] for row in rows}, others)
            for row in rows:
                self.assertIsNone(row["endpoint"])  # private mode: no address shared
            status = wait_online(hub, gw)
            self.assertEqual(status["role"], "hub")
            self.assertEqual(status["id"], hub.id)
            self.assertEqual(status["online_hubs"], 2)
            self.assertEqual(gateway_row(status, gw.id)["address"], f"{LOOPBACK}:{gw.port}")
            self.assertNotIn("last_error", gateway_row(status, gw.id))

        rows = wait_lists(gw, set(everyone))
        self.assertEqual({row["id"]: row["name"] for row in rows}, everyone)
        status = gw.status()
        self.assertEqual((status["role"], status["id"], status["mode"], status["online"]),
                         ("gateway", gw.id, "private", 3))
        self.assertEqual(status["counters"]["joined"], 3)
        self.assertEqual(status["counters"]["refused"], 0)

        # The real binary says the same as the in-process CLI.
        self.assertEqual(cli("status", "--data-dir", hubs[0].data_dir, "--json",
                             inprocess=False, env=self.net.env)["gateway"], gw.id)

        # Side by side from one working directory: each pid file in its own data dir.
        self.assertFalse(os.path.exists(self.net.path("twistd.pid")))
        for daemon in [gw, *hubs]:
            with open(os.path.join(daemon.data_dir, "twistd.pid")) as f:
                self.assertEqual(int(f.read().strip()), daemon.proc.pid)

        leaver, stay = hubs[2], hubs[:2]
        self.assertTrue(leaver.stopped_cleanly(), tail(leaver.log))
        for hub in stay:
            rows = wait_lists(hub, {h.id for h in stay if h is not hub}, logs=[gw])
            self.assertNotIn(leaver.id, {row["id"] for row in rows})
            self.assertEqual(online_at(hub, gw.id)["online_hubs"], 1)
        wait_lists(gw, {h.id for h in stay})
        counters = gw.status()["counters"]
        self.assertEqual((counters["joined"], counters["left"]), (3, 1))

    def test_spoofed_gateway_key_is_never_joined(self):
        """A hub dialing the right address where the gateway has another key than the
        pinned one never goes online, never joins, and never even completes TLS.

        The gateway has an allow list without this hub: it counts a refusal as soon as
        a TLS handshake completes (it then knows the hub's key), so ``refused`` staying
        0 shows the hub gave up inside the handshake, before presenting its own
        certificate or sending a byte of protocol.  (Only the pin stops a real spoofer;
        the hub's check of the hello's gateway id is no defence, as a spoofer can put
        any id there.)"""
        g, other, h = self.net.identities("gw", "other", "hub")
        allow = self.net.write("allow.txt", f"{other.id}\n")
        gw = self.net.gateway(g, "--allow-keys", allow)
        hub = self.net.hub(h, gateways=[f"{other.id}@{LOOPBACK}:{gw.port}"])
        states = []

        def attempts_failed(n):
            status = hub.status()
            row = gateway_row(status, other.id)
            states.append((row["state"], status["gateway"]))
            attempts = tail(hub.log, 500).count(f"connecting to gateway {other.id}")
            return row if row.get("last_error") and attempts >= n else None

        row = wait_for(lambda: attempts_failed(1), what="the hub to report a failed attempt",
                       logs=[hub, gw])
        self.assertIn(row["state"], ("connecting", "backing_off"))
        self.assertTrue(row["last_error"].strip())
        # It tries again, and again nothing gets through.
        wait_for(lambda: attempts_failed(2), what="a second failed attempt", logs=[hub, gw])
        self.assertNotIn("online", [state for state, _ in states])
        self.assertEqual({gateway for _, gateway in states}, {None})
        status = hub.status()
        self.assertEqual((status["online_hubs"], status["observed"]), (0, None))
        self.assertEqual(hub.hubs(), [])
        counters = gw.status()["counters"]
        self.assertEqual((counters["joined"], counters["refused"]), (0, 0))
        self.assertEqual(gw.hubs(), [])
        self.assertTrue(hub.running and gw.running)

    def test_allow_keys_admits_listed_and_refuses_others(self):
        g, listed, unlisted = self.net.identities("gw", "listed", "unlisted")
        allow = self.net.write("allow.txt", f"# hubs allowed here\n\n{listed.id}  # listed\n")
        gw = self.net.gateway(g, "--allow-keys", allow)
        ok, bad = self.net.hubs([listed, unlisted], gateways=[gw])

        wait_online(ok, gw)

        def refused():
            row = gateway_row(bad.status(), gw.id)
            return row if "allow list" in row.get("last_error", "") else None

        row = wait_for(refused, what="the unlisted hub's last_error to mention the allow list",
                       logs=[bad, gw])
        self.assertNotEqual(row["state"], "online")
        wait_for(lambda: gw.status()["counters"]["refused"] >= 1,
                 what="the gateway to count a refusal", logs=[gw])
        self.assertEqual(listed_ids(gw), {ok.id})
        self.assertEqual(gw.status()["counters"]["joined"], 1)
        self.assertIsNone(bad.status()["gateway"])
        self.assertEqual(bad.hubs(), [])
        self.assertEqual(ok.hubs(), [])  # the refused hub never appeared to anyone

    def test_network_key_admits_only_hubs_that_know_it(self):
        g, same, other, none = self.net.identities("gw", "same", "otherkey", "nokey")
        key = self.net.network_key("net.key")
        wrong = self.net.network_key("wrong.key")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        gw = self.net.gateway(g, "--network-key", key)
        ok = self.net.hub(same, "--network-key", key, gateways=[gw], ready=False)
        bad = self.net.hub(other, "--network-key", wrong, gateways=[gw], ready=False)
        bare = self.net.hub(none, gateways=[gw], ready=False)
        for hub in (ok, bad, bare):
            hub.wait_ready()

        wait_online(ok, gw)
        for hub in (bad, bare):
            row = wait_for(lambda hub=hub: gateway_row(hub.status(), gw.id).get("last_error"),
                           what=f"{hub.name} to report its refusal", logs=[hub, gw])
            self.assertIn("network key", row)
            self.assertIsNone(hub.status()["gateway"])
        wait_for(lambda: gw.status()["counters"]["refused"] >= 2,
                 what="the gateway to count both refusals", logs=[gw])
        self.assertEqual(listed_ids(gw), {ok.id})
        self.assertEqual(ok.hubs(), [])

    def test_open_mode_without_restriction_refuses_to_start(self):
        (g,) = self.net.identities("gw")
        done = subprocess.run(
            [TWISTD, "-n", "blockhub-gateway", "--data-dir", g.data_dir,
             "--listen", f"tcp:0:interface={LOOPBACK}", "--mode", "open"],
            cwd=self.net.root, env=self.net.daemon_env, capture_output=True, text=True,
            timeout=30, stdin=subprocess.DEVNULL)
        self.assertNotEqual(done.returncode, 0)
        lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, f"expected one line, got: {lines}")
        self.assertTrue(lines[0].startswith("error: "), lines[0])
        self.assertRegex(lines[0], r"--allow-keys|--network-key")
        self.assertFalse(os.path.exists(os.path.join(g.data_dir, "control.sock")))
        self.assertFalse(os.path.exists(os.path.join(g.data_dir, "twistd.pid")))

    def test_private_mode_sends_no_hub_address(self):
        """A spying hub, admitted like any other, receives the other hubs' ids (both on
        joining and as they arrive) but never their source ports nor any endpoint."""
        g, a, b, s = self.net.identities("gw", "alpha", "bravo", "spy")
        gw = self.net.gateway(g)
        alpha = self.net.hub(a, gateways=[gw])
        wait_online(alpha, gw)

        out, report = self.net.path("spy.bytes"), self.net.path("spy.json")
        with open(self.net.path("spy.log"), "wb") as log:
            spy = subprocess.Popen(
                [PYTHON, SPY, "--data-dir", s.data_dir, "--gateway", gw.spec, "--out", out,
                 "--report", report, "--expect", a.id, "--expect", b.id, "--timeout", "20"],
                cwd=self.net.root, env=self.net.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        self.addCleanup(lambda: spy.poll() is None and (spy.kill(), spy.wait()))

        # The spy is admitted while alpha is online; bravo arrives after it.
        wait_lists(gw, {a.id, s.id}, logs=[self.net.path("spy.log")])
        bravo = self.net.hub(b, gateways=[gw])
        wait_online(bravo, gw)
        addresses = {row["id"]: row["address"] for row in wait_lists(gw, {a.id, b.id, s.id})}
        self.assertEqual(spy.wait(30), 0, tail(self.net.path("spy.log")))

        with open(report) as f:
            summary = json.load(f)
        with open(out, "rb") as f:
            captured = f.read()
        self.assertTrue(summary["admitted"], summary)
        self.assertEqual(summary["hello"]["mode"], "private")
        self.assertEqual(summary["hello"]["gateway"], gw.id)
        self.assertIn("presence", summary["kinds"])
        self.assertEqual(set(summary["seen"]), {a.id, b.id})
        self.assertEqual(summary["endpoints"], [None] * len(summary["endpoints"]))
        self.assertEqual(len(captured), summary["bytes"])
        # Inside TLS the stream is whole frames, each body one JSON object.
        decoder = FrameDecoder()
        frames = decoder.feed(captured)
        self.assertEqual(decoder.buffered, 0)
        presence_code = 5
        self.assertEqual(sum(kind == presence_code for kind, _ in frames),
                         summary["kinds"].count("presence"))
        for _code, body in frames:
            self.assertIsInstance(json.loads(body), dict)
        # The capture is the plaintext the spy decoded: the others' ids are in it.
        for hub_id in (a.id, b.id):
            self.assertIn(hub_id.encode(), captured)

        self.assertNotIn(b"endpoint", captured)
        for hub_id in (a.id, b.id):
            host, _, port = addresses[hub_id].rpartition(":")
            self.assertEqual(host, LOOPBACK)
            self.assertFalse(addresses[hub_id].encode() in captured,
                             f"{hub_id}'s address {addresses[hub_id]} reached the spy")
            self.assertIsNone(re.search(rb"(?<![0-9])%s(?![0-9])" % port.encode(), captured),
                              f"{hub_id}'s port {port} appears in what the spy received")
        # The only address the spy learned is its own, in the gateway's hello.
        self.assertEqual(summary["hello"]["observed"].rpartition(":")[0], LOOPBACK)

    def test_restarted_gateway_on_same_port_is_rejoined(self):
        g, a, b = self.net.identities("gw", "alpha", "bravo")
        gw = self.net.gateway(g)
        alpha, bravo = self.net.hubs([a, b], gateways=[gw])
        for hub, other in ((alpha, bravo), (bravo, alpha)):
            wait_lists(hub, {other.id}, logs=[gw])
        port = gw.port

        self.assertTrue(gw.stopped_cleanly(), tail(gw.log))
        for hub in (alpha, bravo):
            status = wait_for(lambda hub=hub: (s := hub.status())["gateway"] is None and s,
                              what=f"{hub.name} to notice the gateway left", logs=[hub])
            self.assertNotEqual(gateway_row(status, gw.id)["state"], "online")
            self.assertEqual(hub.hubs(), [])

        self.net.restart(gw, listen=f"tcp:{port}:interface={LOOPBACK}")
        self.assertEqual(gw.port, port)
        for hub, other in ((alpha, bravo), (bravo, alpha)):
            wait_online(hub, gw, timeout=20)
            rows = wait_lists(hub, {other.id}, logs=[gw])
            self.assertEqual(rows[0]["name"], other.name)
        wait_lists(gw, {a.id, b.id})
        self.assertEqual(gw.status()["counters"]["joined"], 2)

    def test_failover_to_second_gateway_and_config_write_back(self):
        """Two gateways in a config file: online at the first; when it stops, online at
        the second.  The first entry had no lastKnownIP (its address came from
        --gateway); the hub writes it back and leaves the rest of the file alone."""
        g1, g2, h = self.net.identities("gw1", "gw2", "hub")
        gw1, gw2 = self.net.gateway(g1), self.net.gateway(g2)
        config = {
            "Comment": "kept as is",
            "Hub": {"Gateways": [
                {"name": "first", "pubKey": gw1.id, "port": gw1.port, "note": "no ip yet"},
                {"name": "second", "pubKey": gw2.id, "lastKnownIP": LOOPBACK,
                 "port": gw2.port},
            ], "Other": [1, 2]},
        }
        path = self.net.write("hub-config.json", json.dumps(config))
        os.chmod(path, 0o640)
        hub = self.net.hub(h, "--config", path, gateways=[gw1])

        status = wait_online(hub, gw1)
        self.assertEqual(gateway_row(status, gw2.id)["state"], "standby")
        self.assertEqual(gateway_row(status, gw2.id)["name"], "second")
        self.assertEqual(listed_ids(gw1), {hub.id})

        def written_back():
            with open(path) as f:
                data = json.load(f)
            return data if data["Hub"]["Gateways"][0].get("lastKnownIP") else None

        data = wait_for(written_back, what="lastKnownIP written back", logs=[hub])
        expected = json.loads(json.dumps(config))
        expected["Hub"]["Gateways"][0]["lastKnownIP"] = LOOPBACK
        self.assertEqual(data, expected)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o640)

        self.assertTrue(gw1.stopped_cleanly(), tail(gw1.log))
        status = wait_online(hub, gw2, timeout=15)
        self.assertEqual(status["gateway"], gw2.id)
        self.assertNotEqual(gateway_row(status, gw1.id)["state"], "online")
        wait_lists(gw2, {hub.id})
        with open(path) as f:
            self.assertEqual(json.load(f), expected)

    def test_presence_crosses_the_wire_only_inside_tls(self):
        """What an observer of the hub-gateway TCP connection sees is TLS records only:
        no name, id or JSON of any hub, though presence flowed through it."""
        g, a, b = self.net.identities("gw", "alpha-observed", "bravo-observed")
        gw = self.net.gateway(g)
        tap = TCPRecorder(gw.port)
        self.addCleanup(tap.close)
        alpha = self.net.hub(a, gateways=[f"{gw.id}@{LOOPBACK}:{tap.port}"])
        bravo = self.net.hub(b, gateways=[gw])
        rows = wait_lists(alpha, {bravo.id}, logs=[gw])
        self.assertEqual(rows[0]["name"], b.name)
        wait_lists(bravo, {alpha.id}, logs=[gw])
        # The gateway saw alpha come from the tap's own connection: the tap carried it.
        address = {row["id"]: row["address"] for row in gw.hubs()}[alpha.id]
        self.assertIn(address, tap.outgoing)

        up, down = tap.snapshot()
        for stream in (up, down):
            records = tls_records(stream)
            self.assertEqual(records[0][0], 22)  # a handshake record comes first
            self.assertIn(23, [kind for kind, _ in records])  # then application data
            for secret in (a.name, b.name, a.id, b.id, "hubinfo", '"event"', '"mode"'):
                self.assertNotIn(secret.encode(), stream)
        self.assertGreater(len(down), 500)

    def test_idle_timeout_drops_silent_connections_only(self):
        """With --idle-timeout 1 a TCP client that never speaks is dropped after about a
        second, while a real hub (which answers pings) stays online."""
        g, a = self.net.identities("gw", "alpha")
        gw = self.net.gateway(g, "--idle-timeout", "1")
        alpha = self.net.hub(a, gateways=[gw])
        wait_online(alpha, gw)

        silent = socket.create_connection((LOOPBACK, gw.port), timeout=5)
        self.addCleanup(silent.close)
        silent.settimeout(0.1)
        opened = time.monotonic()

        def closed():
            try:
                return silent.recv(1024) == b""
            except TimeoutError:
                return False
            except ConnectionResetError:
                return True

        wait_for(closed, timeout=5, what="the gateway to drop a silent connection",
                 logs=[gw])
        self.assertGreaterEqual(time.monotonic() - opened, 0.8)
        self.assertTrue(online_at(alpha, gw.id))
        self.assertEqual(listed_ids(gw), {alpha.id})
        self.assertEqual(gw.status()["counters"]["left"], 0)

    def test_rotation_moves_between_gateways(self):
        """With --rotate-interval the hub leaves one gateway for the next on schedule,
        and comes back round; each gateway lists it only while it is there."""
        g1, g2, h = self.net.identities("gw1", "gw2", "hub")
        gw1, gw2 = self.net.gateway(g1, ready=False), self.net.gateway(g2, ready=False)
        gw1.wait_ready()
        gw2.wait_ready()
        hub = self.net.hub(h, "--rotate-interval", "1", gateways=[gw1, gw2])
        wait_online(hub, gw1, logs=[gw2])
        status = wait_online(hub, gw2, logs=[gw1])
        self.assertEqual(gateway_row(status, gw1.id)["state"], "standby")
        wait_lists(gw1, set())
        wait_online(hub, gw1, logs=[gw2])
        wait_lists(gw2, set())
        # It keeps rotating while we look, so compare counts, not exact values.
        for gw, at_least in ((gw1, 2), (gw2, 1)):
            counters = gw.status()["counters"]
            self.assertGreaterEqual(counters["joined"], at_least)
            self.assertIn(counters["joined"] - counters["left"], (0, 1))
            self.assertEqual(counters["refused"], 0)
