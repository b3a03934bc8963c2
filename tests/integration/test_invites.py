"""Invites and proofs of work end to end: ``twistd`` gateways and hubs on 127.0.0.1,
driven through the real ``blockhub`` binary as a user would."""

import json
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.harness import (
    LISTEN_ANY_PORT,
    tail,
    wait_for,
    wait_lists,
    wait_online,
)
from tests.integration.test_handshake import HandshakeHelpers, refusals, request_row

LISTEN = ("--listen", LISTEN_ANY_PORT)


def invite(test, hub, *args) -> dict:
    done = test.bh("invite", "create", "--data-dir", hub.data_dir, "--json", *args)
    return json.loads(done.stdout)


def use(test, hub, code: str) -> str:
    return test.bh("connect", "--data-dir", hub.data_dir, "--invite", code,
                   "--note", "invited").stdout


class InviteTests(HandshakeHelpers, SynchronousTestCase):
    def test_one_use_n_uses_revoke_and_a_mistyped_code(self):
        """A code connects alpha to bravo with nobody approving; charlie, with the same
        one-use code, is refused and counted; a two-use code takes charlie and delta
        and refuses echo; a revoked code is refused; a mistyped one never leaves the
        command.  ``invite list --json`` shows the uses left."""
        g, a, b, c, d, e = self.net.identities("gw", "alpha", "bravo", "charlie", "delta",
                                               "echo")
        gw = self.net.gateway(g)
        hubs = self.net.hubs([a, b, c, d, e], *LISTEN, gateways=[gw])
        alpha, bravo, charlie, delta, echo = hubs
        wait_lists(gw, {a.id, b.id, c.id, d.id, e.id})

        made = invite(self, bravo)
        self.assertTrue({"code", "id", "expires", "uses"} <= set(made), made)
        self.assertTrue(made["code"].startswith("bhinvite"))
        self.assertEqual(made["uses"], 1)
        out = use(self, alpha, made["code"])
        self.assertIn(f"request to {b.id}", out)
        self.wait_peered(alpha, bravo, logs=[gw])
        self.assertEqual(bravo.ctl("pending"), [])
        self.assertEqual(request_row(bravo, "in", a.id)["how"], "invite")

        use(self, charlie, made["code"])
        wait_for(lambda: refusals(bravo).get("InviteUsedUp"), what="charlie refused",
                 logs=[bravo, charlie])
        wait_for(lambda: request_row(charlie, "out", b.id)["state"] == "rejected",
                 what="charlie told", logs=[bravo, charlie])

        two = invite(self, bravo, "--uses", "2", "--ttl", "600", "--note", "for two")
        for hub in (charlie, delta):
            self.bh("connect", "--data-dir", hub.data_dir, "--invite", two["code"])
            self.wait_peered(hub, bravo, logs=[gw])
        use(self, echo, two["code"])
        wait_for(lambda: refusals(bravo).get("InviteUsedUp") == 2, what="echo refused",
                 logs=[bravo, echo])

        revoked = invite(self, bravo)
        self.assertEqual(self.bh("invite", "revoke", "--data-dir", bravo.data_dir,
                                 revoked["id"]).stdout.strip(),
                         f"revoked invite {revoked['id']}")
        use(self, echo, revoked["code"])
        wait_for(lambda: refusals(bravo).get("InviteRevoked"), what="the revoked refused",
                 logs=[bravo, echo])

        listed = {i["id"]: i for i in json.loads(self.bh(
            "invite", "list", "--data-dir", bravo.data_dir, "--json").stdout)}
        self.assertEqual({i: (listed[i]["uses"], listed[i]["state"])
                          for i in (made["id"], two["id"], revoked["id"])},
                         {made["id"]: (0, "used"), two["id"]: (0, "used"),
                          revoked["id"]: (1, "revoked")})
        for row in listed.values():
            self.assertNotIn("code", row)  # shown once, never kept

        code = made["code"]
        typo = code[:12] + ("a" if code[12] != "a" else "b") + code[13:]
        done = self.net.blockhub("connect", "--data-dir", echo.data_dir, "--invite", typo,
                                 check=False)
        self.assertEqual(done.returncode, 1)
        self.assertEqual(len(done.stderr.strip().splitlines()), 1, done.stderr)
        self.assertIn("checksum", done.stderr)

    def test_a_replayed_invited_request_spends_no_use(self):
        """A spy hub relays the same invited request twice: the first is accepted on the
        invite, the second refused as a replay, and one use of two is left."""
        g, b, s = self.net.identities("gw", "bravo", "spy")
        gw = self.net.gateway(g)
        bravo = self.net.hub(b, *LISTEN, gateways=[gw])
        code = invite(self, bravo, "--uses", "2")["code"]
        spy, report, capture, spy_log = self.start_spy(
            "spy", s, gw, "--relay", json.dumps({"to": b.id, "invite": code, "times": 2}),
            "--timeout", 20)
        self.assertEqual(spy.wait(30), 0, tail(spy_log))
        wait_for(lambda: refusals(bravo).get("Replayed") == 1, what="the replay refused",
                 logs=[bravo, spy_log])
        self.assertEqual(request_row(bravo, "in", s.id)["how"], "invite")
        [listed] = json.loads(self.bh("invite", "list", "--data-dir", bravo.data_dir,
                                      "--json").stdout)
        self.assertEqual((listed["uses"], listed["used_by"]), (1, [s.id]))

    def test_a_hub_at_another_gateway_moves_to_the_invites(self):
        """bravo is at gateway two only, alpha at gateway one only: alpha pins gateway
        two from the code (in its config file, marked), moves there and peers."""
        g1, g2, a, b = self.net.identities("gw1", "gw2", "alpha", "bravo")
        one, two = self.net.gateway(g1), self.net.gateway(g2)
        alpha = self.net.hub(a, *LISTEN, gateways=[one])
        bravo = self.net.hub(b, *LISTEN, gateways=[two])
        wait_online(alpha, one)
        wait_online(bravo, two)
        made = invite(self, bravo)
        out = use(self, alpha, made["code"])
        self.assertIn(f"pinned gateway {g2.id}", out)
        self.wait_peered(alpha, bravo, timeout=30, logs=[one, two])
        self.assertEqual(alpha.status()["gateway"], g2.id)
        with open(os.path.join(alpha.data_dir, "config.json")) as f:
            [entry] = json.load(f)["Hub"]["Gateways"]
        self.assertEqual((entry["pubKey"], entry["fromInvite"]), (g2.id, made["id"]))


class DifficultyTests(HandshakeHelpers, SynchronousTestCase):
    def test_a_request_without_an_invite_does_the_work_asked(self):
        """bravo asks 16 bits: its HubInfo says so, alpha's connect does the work and
        the request reaches bravo's operator; an invited request needs none."""
        g, a, b, c = self.net.identities("gw", "alpha", "bravo", "charlie")
        gw = self.net.gateway(g)
        alpha, charlie = self.net.hubs([a, c], *LISTEN, gateways=[gw])
        bravo = self.net.hub(b, *LISTEN, "--request-difficulty", "16", gateways=[gw])
        wait_lists(gw, {a.id, b.id, c.id})
        wait_for(lambda: [h for h in alpha.hubs() if h["id"] == b.id], what="bravo listed")
        [listed] = [h for h in alpha.hubs() if h["id"] == b.id]
        self.assertEqual(listed.get("meta"), {"pow": 16}, listed)
        out = self.connect(alpha, b.id, "worked for it")
        wait_for(lambda: [p for p in bravo.ctl("pending") if p["id"] == a.id],
                 what="alpha's request pending at bravo", logs=[alpha, bravo])
        self.assertEqual(refusals(bravo), {}, out)
        use(self, charlie, invite(self, bravo)["code"])
        self.wait_peered(charlie, bravo, logs=[gw])
