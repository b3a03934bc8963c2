"""A gateway operator's commands with real processes: ``blockhub hubs`` with
``since``, ``kick``, ``kick --ban`` (the hub is told why and refused, also after the
gateway restarts), ``bans``, ``unban``, and one-line errors."""

import json
import time

from twisted.trial.unittest import TestCase

from tests.integration.harness import CLIError, Network, wait_for, wait_lists, wait_online


class AdminTests(TestCase):
    timeout = 180

    def setUp(self):
        self.net = Network(self)
        gw_id, a_id, b_id = self.net.identities("gw", "a", "b")
        self.gw = self.net.gateway(gw_id)
        self.a, self.b = self.net.hubs([a_id, b_id], gateways=[self.gw])
        wait_lists(self.a, {self.b.id}, logs=[self.gw])

    def bh(self, *args):
        return self.net.blockhub(*args, "--data-dir", self.gw.data_dir)

    def test_hubs_on_a_gateway_show_since_and_address(self):
        rows = {h["id"]: h for h in self.gw.hubs()}
        self.assertEqual(set(rows), {self.a.id, self.b.id})
        for row in rows.values():
            self.assertLessEqual(abs(row["since"] - time.time()), 120)
            self.assertTrue(row["address"].startswith("127.0.0.1:"))

    def test_kick_then_ban_survives_a_restart_and_unban(self):
        done = self.bh("kick", self.b.id)
        self.assertEqual(done.stdout.strip(), f"kicked {self.b.id}")
        wait_online(self.b, self.gw, timeout=60)  # a kick alone: it may come back
        done = self.bh("kick", self.b.id, "--ban", "3600", "--json")
        result = json.loads(done.stdout)
        self.assertEqual((result["id"], result["kicked"]), (self.b.id, True))
        wait_lists(self.a, set(), logs=[self.gw])
        bans = json.loads(self.bh("bans", "--json").stdout)
        self.assertEqual(bans, [{"id": self.b.id, "until": result["until"]}])
        wait_for(lambda: "banned by this gateway's operator" in json.dumps(
            self.b.status()), 30, "b to be told why", logs=[self.gw, self.b])
        self.gw.stop()
        self.net.restart(self.gw, listen=f"tcp:{self.gw.port}:interface=127.0.0.1")
        wait_online(self.a, self.gw, timeout=60)
        self.assertEqual(json.loads(self.bh("bans", "--json").stdout)[0]["id"], self.b.id)
        wait_for(lambda: self.gw.status()["counters"]["refused_banned"] >= 1, 60,
                 "b to be refused after the restart", logs=[self.gw, self.b])
        self.assertNotIn(self.b.id, {h["id"] for h in self.gw.hubs()})
        self.assertEqual(self.bh("unban", self.b.id).stdout.strip(), f"unbanned {self.b.id}")
        self.assertEqual(self.bh("bans").stdout.strip(), "no hub is banned")
        wait_online(self.b, self.gw, timeout=90)

    def test_unknown_or_malformed_ids_are_one_line_errors(self):
        cases = ((("kick", self.gw.id), "is not online here"),   # a valid id, not online
                 (("kick", "nonsense"), "not a hub id"),
                 (("unban", self.a.id), "is not banned"),
                 (("kick", self.a.id, "--ban", "-5"), "--ban wants"))
        for args, expected in cases:
            with self.assertRaises(CLIError) as caught:
                self.bh(*args)
            err = caught.exception.err.strip()
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn(expected, err)
