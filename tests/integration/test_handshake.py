"""Handshakes and the peer channel, end to end: a private-mode ``twistd`` gateway and
hubs listening on 127.0.0.1, driven and observed through the ``blockhub`` CLI, plus a
handshake spy (``handshake_spy.py``) that relays hand-made sealed requests and records
the plaintext the gateway delivers to it."""

import json
import os
import re
import subprocess
import time

from twisted.trial.unittest import SynchronousTestCase

from blockhub.wire.framing import FrameDecoder
from tests.integration.harness import (
    LISTEN_ANY_PORT,
    LOOPBACK,
    PYTHON,
    Daemon,
    Network,
    cli,
    tail,
    wait_for,
    wait_lists,
)

SPY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "handshake_spy.py")
LISTEN = ("--listen", LISTEN_ANY_PORT)
DELIVER = 11  # the type code of a ``deliver`` frame (docs/protocol.md)


# -- reading a hub through its control socket --------------------------------------------
def request_row(hub: Daemon, direction: str, peer_id: str):
    """The hub's ``status`` row for its request to or from ``peer_id`` (None if absent)."""
    rows = [r for r in hub.status()["requests"]
            if r["direction"] == direction and r["peer"] == peer_id]
    assert len(rows) <= 1, f"{hub.name} has {len(rows)} requests with {peer_id}: {rows}"
    return rows[0] if rows else None


def request_state(hub: Daemon, direction: str, peer_id: str):
    row = request_row(hub, direction, peer_id)
    return row and row["state"]


def peer_row(hub: Daemon, peer_id: str):
    rows = [r for r in hub.ctl("peers") if r["id"] == peer_id]
    assert len(rows) <= 1, f"{hub.name} lists {peer_id} {len(rows)} times as a peer"
    return rows[0] if rows else None


def refusals(hub: Daemon) -> dict:
    return hub.status().get("refusals", {})


def port_of(address: str) -> str:
    return address.rpartition(":")[2]


def has_number(number: str, data) -> bool:
    """``number`` appears in ``data`` on its own, not inside a longer run of digits."""
    if isinstance(data, str):
        data = data.encode()
    return re.search(rb"(?<![0-9])%s(?![0-9])" % number.encode(), data) is not None


class HandshakeHelpers:
    """Starting a network, asking, waiting for peerings and running spies, for every
    test case that drives hubs through their handshakes."""

    def setUp(self):
        self.net = Network(self)

    def bh(self, *args) -> subprocess.CompletedProcess:
        """The real ``blockhub`` binary; a non-zero exit fails the test."""
        return self.net.blockhub(*args)

    def connect(self, asker: Daemon, receiver_id: str, note: str) -> str:
        done = self.bh("connect", "--data-dir", asker.data_dir, receiver_id, "--note", note)
        self.assertTrue(done.stdout.startswith(f"request to {receiver_id}: "), done.stdout)
        return done.stdout

    def wait_peered(self, x: Daemon, y: Daemon, timeout: float = 10, logs=()):
        """Until each of ``x`` and ``y`` lists the other as a connected peer."""
        for hub, other in ((x, y), (y, x)):
            wait_for(lambda hub=hub, other=other: (peer_row(hub, other.id) or {})
                     .get("connected"), timeout,
                     f"{hub.name} to list {other.name} as a connected peer",
                     logs=[x, y, *logs])

    def start_spy(self, name, identity, gateway, *args):
        """Run handshake_spy.py as ``identity``; returns (process, report path, capture
        path, log path)."""
        out, report, log_path = (self.net.path(f"{name}.{ext}") for ext in ("bin", "json", "log"))
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [PYTHON, SPY, "--data-dir", identity.data_dir, "--gateway", gateway.spec,
                 "--out", out, "--report", report, "--name", name, *map(str, args)],
                cwd=self.net.root, env=self.net.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        return proc, report, out, log_path


class HandshakeTests(HandshakeHelpers, SynchronousTestCase):

    # -- 1, 2, 9 and the CLI -----------------------------------------------------------
    def test_auto_accept_by_key_and_by_range_messages_and_no_leak_to_an_archive(self):
        """bravo approves alpha's key and charlie the 127.0.0.0/8 range: alpha's requests
        become peer links with nobody approving.  Messages flow both ways.  charlie, an
        --archive hub, recorded nothing that gives away alpha's or bravo's ports.  The
        JSON of pending, peers and messages has the documented fields; send to a hub
        that is neither a peer nor asked fails with one line."""
        g, a, b, c, ghost = self.net.identities("gw", "alpha", "bravo", "charlie", "ghost")
        gw = self.net.gateway(g)
        alpha, bravo, charlie = self.net.hubs_each(
            [(a, LISTEN), (b, [*LISTEN, "--approve-key", a.id]),
             (c, [*LISTEN, "--approve-ip", "127.0.0.0/8", "--archive"])], gateways=[gw])
        wait_lists(gw, {a.id, b.id, c.id})
        everyone = [gw, alpha, bravo, charlie]

        # 1. By key.
        self.connect(alpha, b.id, "hi")
        self.wait_peered(alpha, bravo, logs=[gw])
        self.assertEqual(bravo.ctl("pending"), [])
        row = request_row(alpha, "out", b.id)
        self.assertEqual((row["state"], row["note"]), ("connected", "hi"))
        row = request_row(bravo, "in", a.id)
        self.assertEqual((row["state"], row["how"], row["note"]), ("connected", "auto", "hi"))
        self.assertEqual(refusals(bravo), {})

        # 2. By address range: charlie has no key approval, only the range.
        self.connect(alpha, c.id, "by range")
        self.wait_peered(alpha, charlie, logs=[gw])
        self.assertEqual(charlie.ctl("pending"), [])
        self.assertEqual(request_state(alpha, "out", c.id), "connected")
        row = request_row(charlie, "in", a.id)
        self.assertEqual((row["state"], row["how"]), ("connected", "auto-range"))
        self.assertIsNone(request_row(bravo, "in", c.id))  # nothing leaked sideways

        # The documented JSON, from the real binary.
        peers = cli("peers", "--data-dir", alpha.data_dir, "--json", inprocess=False,
                    env=self.net.env)
        self.assertIsInstance(peers, list)
        self.assertEqual({p["id"] for p in peers}, {b.id, c.id})
        for p in peers:
            self.assertTrue({"id", "address", "connected"} <= set(p), p)
            self.assertIs(p["connected"], True)
        self.assertEqual(cli("pending", "--data-dir", bravo.data_dir, "--json",
                             inprocess=False, env=self.net.env), [])

        # Messages both ways.
        self.bh("send", "--data-dir", alpha.data_dir, b.id, "hello bravo")
        self.bh("send", "--data-dir", bravo.data_dir, a.id, "hello alpha")
        wait_for(lambda: bravo.ctl("messages"), what="bravo to receive a message",
                 logs=everyone)
        wait_for(lambda: alpha.ctl("messages"), what="alpha to receive a message",
                 logs=everyone)
        for hub, sender, text in ((bravo, a.id, "hello bravo"), (alpha, b.id, "hello alpha")):
            got = cli("messages", "--data-dir", hub.data_dir, "--json", inprocess=False,
                      env=self.net.env)
            self.assertIsInstance(got, list)
            self.assertEqual(len(got), 1, got)
            self.assertTrue({"from", "text", "at"} <= set(got[0]), got[0])
            self.assertEqual((got[0]["from"], got[0]["text"]), (sender, text))
            self.assertIsInstance(got[0]["at"], int)
            self.assertLess(abs(got[0]["at"] - time.time()), 60)
        self.assertEqual(charlie.ctl("messages"), [])

        # send to a hub that is neither a peer nor asked: exit 1, one line on stderr.
        done = self.net.blockhub("send", "--data-dir", alpha.data_dir, ghost.id, "anyone?",
                                 check=False)
        self.assertEqual(done.returncode, 1, done)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
        self.assertIn(ghost.id, done.stderr)
        self.assertEqual(done.stdout, "")
        self.assertNotIn("Traceback", done.stderr)

        # 9. The archive hub kept HubInfo of alpha and bravo, but no address of theirs.
        listen = {h.id: h.status()["listen"] for h in (alpha, bravo)}
        source = {row["id"]: row["address"] for row in gw.hubs()}
        for address in [*listen.values(), *source.values()]:
            self.assertEqual(address.rpartition(":")[0], LOOPBACK)
        ports = {port_of(listen[i]) for i in listen} | {port_of(source[i]) for i in listen}
        # Each gateway link goes out from its hub's listen port (to learn the NAT's
        # mapping of it, docs/nat.md): one port per hub.
        self.assertEqual({i: port_of(source[i]) for i in listen},
                         {i: port_of(listen[i]) for i in listen})
        self.assertEqual(len(ports), 2, (listen, source))
        rows = charlie.ctl("archive")
        self.assertIsInstance(rows, list)
        recorded = {row["hub"] for row in rows if row.get("hubinfo")}
        self.assertTrue({a.id, b.id} <= recorded, rows)
        for row in rows:
            text = json.dumps(row)
            for port in ports:
                self.assertFalse(has_number(port, text), f"port {port} in archive row {row}")
            if row.get("hubinfo"):
                info = json.loads(row["hubinfo"])
                self.assertNotIn("endpoint", info["body"], row)
            self.assertNotIn("endpoint", text)

    # -- 3, 4, 6 and 7 ----------------------------------------------------------------
    def test_manual_approval_across_a_restart_reject_block_and_expiry(self):
        """bravo approves nobody: alpha's and charlie's requests wait in its pending
        list.  bravo rejects and blocks charlie; bravo restarts and still lists alpha,
        approves it, and they connect.  charlie's later request is refused as blocked.
        charlie's request to a hub that is not running expires after its 2 s TTL."""
        g, a, b, c, ghost = self.net.identities("gw", "alpha", "bravo", "charlie", "ghost")
        gw = self.net.gateway(g)
        alpha, bravo, charlie = self.net.hubs_each(
            [(a, LISTEN), (b, LISTEN), (c, [*LISTEN, "--request-ttl", "2"])], gateways=[gw])
        wait_lists(gw, {a.id, b.id, c.id})
        everyone = [gw, alpha, bravo, charlie]

        # 6. A request to a hub that is not online waits, then expires.
        asked_ghost = time.monotonic()
        self.assertIn(": requested", self.connect(charlie, ghost.id, "is anyone there?"))
        self.assertEqual(request_state(charlie, "out", ghost.id), "requested")

        # 3. Requests that need the operator.
        self.connect(alpha, b.id, "alpha asks")
        self.connect(charlie, b.id, "charlie asks")

        def both_pending():
            rows = bravo.ctl("pending")
            return rows if {r["id"] for r in rows} == {a.id, c.id} else None

        rows = wait_for(both_pending, what="bravo to list alpha and charlie as pending",
                        logs=everyone)
        self.assertEqual(len(rows), 2, rows)
        self.assertEqual({r["id"]: r["note"] for r in rows},
                         {a.id: "alpha asks", c.id: "charlie asks"})
        raw = cli("pending", "--data-dir", bravo.data_dir, "--json", inprocess=False,
                  env=self.net.env)
        self.assertIsInstance(raw, list)
        for row in raw:
            self.assertTrue({"id", "note"} <= set(row), row)
        self.assertEqual(request_state(alpha, "out", b.id), "sent")
        self.assertIsNone(peer_row(alpha, b.id))

        # 4. Reject and block charlie.
        self.bh("reject", "--data-dir", bravo.data_dir, c.id, "--block")
        self.assertEqual(request_state(bravo, "in", c.id), "rejected")
        self.assertEqual([r["id"] for r in bravo.ctl("pending")], [a.id])

        # 6, continued: expired within a few seconds, not before the TTL.
        wait_for(lambda: request_state(charlie, "out", ghost.id) == "expired", timeout=8,
                 what="charlie's request to an offline hub to expire", logs=[charlie])
        self.assertGreaterEqual(time.monotonic() - asked_ghost, 1.5)

        # 7. A pending request survives a restart of the receiver.
        self.assertTrue(bravo.stopped_cleanly(), tail(bravo.log))
        self.net.restart(bravo)
        rows = bravo.ctl("pending")
        self.assertEqual([(r["id"], r["note"]) for r in rows], [(a.id, "alpha asks")])
        self.assertEqual(refusals(bravo), {})
        self.bh("approve", "--data-dir", bravo.data_dir, a.id)
        self.wait_peered(alpha, bravo, logs=[gw])
        self.assertEqual(request_state(alpha, "out", b.id), "connected")
        row = request_row(bravo, "in", a.id)
        self.assertEqual((row["state"], row["how"]), ("connected", "operator"))
        self.assertEqual(bravo.ctl("pending"), [])

        # 4, continued: charlie's old request has expired; a new one is refused (blocked).
        wait_for(lambda: request_state(charlie, "out", b.id) == "expired", timeout=8,
                 what="charlie's first request to bravo to expire", logs=[charlie])
        self.connect(charlie, b.id, "charlie asks again")
        wait_for(lambda: refusals(bravo).get("Blocked", 0) >= 1,
                 what="bravo to refuse charlie's new request", logs=everyone)
        self.assertEqual(refusals(bravo), {"Blocked": 1})
        self.assertEqual(bravo.ctl("pending"), [])
        self.assertNotEqual(request_state(bravo, "in", c.id), "pending")
        self.assertIsNone(peer_row(bravo, c.id))
        self.assertIsNone(peer_row(charlie, b.id))

    # -- 5 and the relayed bytes of 9 ---------------------------------------------------
    def test_replayed_forged_and_misaddressed_requests_are_refused(self):
        """A spy hub relays to bravo: a request, then the same sealed bytes again (a
        replay), a request signed by mallory (not the spy the gateway names), and one
        sealed to charlie.  Only the first reaches bravo's pending list; the others are
        counted as refusals.  alpha's request to the spy reaches it with no port of any
        hub in the plaintext the gateway sent, only inside the sealed box."""
        g, a, b, c, s, m = self.net.identities("gw", "alpha", "bravo", "charlie", "spy",
                                               "mallory")
        gw = self.net.gateway(g)
        alpha, bravo, charlie = self.net.hubs_each([(a, LISTEN), (b, LISTEN), (c, LISTEN)],
                                                   gateways=[gw])
        wait_lists(gw, {a.id, b.id, c.id})
        spy, report, capture, spy_log = self.start_spy(
            "spy", s, gw,
            "--relay", json.dumps({"to": b.id, "note": "spy asks", "times": 2}),
            "--relay", json.dumps({"to": b.id, "sign": m.data_dir, "note": "forged"}),
            "--relay", json.dumps({"to": b.id, "seal_to": c.id, "note": "for charlie"}),
            "--deliveries", 1, "--timeout", 20)
        everyone = [gw, alpha, bravo, charlie, spy_log]
        wait_lists(gw, {a.id, b.id, c.id, s.id}, logs=[spy_log])
        self.connect(alpha, s.id, "alpha asks the spy")
        self.assertEqual(spy.wait(30), 0, tail(spy_log))

        wait_for(lambda: sum(refusals(bravo).values()) >= 3,
                 what="bravo to refuse the replay, the forgery and the misaddressed box",
                 logs=everyone)
        self.assertEqual(refusals(bravo), {"Replayed": 1, "BadMessage": 1, "BadSeal": 1})
        rows = bravo.ctl("pending")
        self.assertEqual([(r["id"], r["note"]) for r in rows], [(s.id, "spy asks")])
        self.assertEqual([(r["direction"], r["peer"]) for r in bravo.status()["requests"]],
                         [("in", s.id)])
        # The box sealed to charlie went to bravo only; charlie heard nothing.
        self.assertEqual(charlie.ctl("pending"), [])
        self.assertEqual((refusals(charlie), charlie.status()["requests"]), ({}, []))

        with open(report) as f:
            summary = json.load(f)
        with open(capture, "rb") as f:
            captured = f.read()
        self.assertTrue(summary["admitted"], summary)
        self.assertEqual(summary["hello"]["mode"], "private")
        self.assertEqual(summary["relay_refused"], [])
        self.assertEqual([r["times"] for r in summary["relays"]], [2, 1, 1])
        self.assertEqual(summary["relays"][1]["signer"], m.id)
        [delivery] = summary["deliveries"]
        self.assertEqual((delivery["from"], delivery["kind"]), (a.id, "request"))
        self.assertNotIn("error", delivery)
        alpha_listen = alpha.status()["listen"]
        # Inside the box (only the spy could open it): alpha's endpoint, for dialing back.
        self.assertEqual(delivery["request"]["endpoint"], alpha_listen)
        self.assertEqual(delivery["request"]["note"], "alpha asks the spy")

        # The plaintext the gateway sent: whole frames, a deliver among them ...
        self.assertEqual(len(captured), summary["bytes"])
        decoder = FrameDecoder()
        frames = decoder.feed(captured)
        self.assertEqual(decoder.buffered, 0)
        self.assertEqual([code for code, _ in frames].count(DELIVER), 1)
        self.assertIn(a.id.encode(), captured)
        # ... and no address or port of any other hub in it.
        listen = {h.id: h.status()["listen"] for h in (alpha, bravo, charlie)}
        source = {row["id"]: row["address"] for row in gw.hubs()}
        self.assertNotIn(b"endpoint", captured)
        for hub_id in (a.id, b.id, c.id):
            for address in (listen[hub_id], source[hub_id]):
                self.assertNotIn(address.encode(), captured)
                self.assertFalse(has_number(port_of(address), captured),
                                 f"{hub_id}'s port {port_of(address)} reached the spy")

    # -- 8 -----------------------------------------------------------------------------
    def test_messages_survive_kill_9_of_the_receiver(self):
        """alpha sends bravo 20 messages; bravo is killed with SIGKILL after 10 and
        restarted after the last.  Every send exits 0 (queued), and bravo ends with the
        20 texts in order, each once.  bravo, the side that dialed, reconnects."""
        g, a, b = self.net.identities("gw", "alpha", "bravo")
        gw = self.net.gateway(g)
        alpha, bravo = self.net.hubs_each([(a, LISTEN), (b, [*LISTEN, "--approve-key", a.id])],
                                          gateways=[gw])
        wait_lists(gw, {a.id, b.id})
        self.connect(alpha, b.id, "let us talk")
        self.wait_peered(alpha, bravo, logs=[gw])
        self.assertIs(peer_row(bravo, a.id)["dialer"], True)

        texts = [f"message {i:02d} from alpha" for i in range(1, 21)]
        for i, text in enumerate(texts):
            if i == 10:
                self.assertEqual(bravo.kill(), -9)
            done = self.bh("send", "--data-dir", alpha.data_dir, b.id, text)
            self.assertEqual(done.returncode, 0)
        self.assertFalse((peer_row(alpha, b.id) or {}).get("connected"))
        self.assertGreater(peer_row(alpha, b.id)["unacked"], 0)

        self.net.restart(bravo)
        self.wait_peered(alpha, bravo, timeout=15, logs=[gw])

        def all_arrived():
            got = [m for m in bravo.ctl("messages") if m["from"] == a.id]
            return got if len(got) >= len(texts) else None

        got = wait_for(all_arrived, timeout=15, what="bravo to hold alpha's 20 messages",
                       logs=[gw, alpha, bravo])
        self.assertEqual([m["text"] for m in got], texts)
        self.assertEqual([m["seq"] for m in got], list(range(1, 21)))
        wait_for(lambda: peer_row(alpha, b.id)["unacked"] == 0,
                 what="alpha to see every message acknowledged", logs=[alpha, bravo])

        self.bh("send", "--data-dir", bravo.data_dir, a.id, "bravo is back")
        got = wait_for(lambda: alpha.ctl("messages"), what="alpha to receive bravo's reply",
                       logs=[gw, alpha, bravo])
        self.assertEqual([(m["from"], m["text"]) for m in got], [(b.id, "bravo is back")])
        self.assertEqual(len(bravo.ctl("messages")), len(texts))
