"""Key succession end to end (docs/accountability.md, "Key succession"): real ``twistd``
processes on 127.0.0.1 and the ``blockhub`` binary.

The operator makes the next identity apart (here another data directory), has the
running gateway commit to it, and rotates it while it runs.  A hub that was online
follows at once and rewrites its config; a hub that was stopped follows when it comes
back within the grace, after the gateway itself restarted; a hub that never saw the
commitment does not follow, and says why.
"""

import json

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.harness import wait_for, wait_lists
from tests.integration.test_handshake import HandshakeHelpers

INTERVAL = "1"


def online_at_key(hub, key_id):
    status = hub.status()
    rows = [r for r in status["gateways"] if r["id"] == key_id]
    return status if status["gateway"] == key_id and rows and rows[0]["state"] == "online" \
        else None


class SuccessionTests(HandshakeHelpers, SynchronousTestCase):
    def test_hubs_online_and_back_from_offline_follow_a_rotation(self):
        g, nxt, a, b, c = self.net.identities("gw", "next", "alpha", "bravo", "carol")
        gw = self.net.gateway(g, "--head-interval", INTERVAL)
        config = self.net.write("alpha.json", json.dumps({"Hub": {"Gateways": [
            {"name": "home", "pubKey": g.id, "lastKnownIP": "127.0.0.1", "port": gw.port}]}}))
        alpha = self.net.hub(a, "--config", config)
        bravo = self.net.hub(b, gateways=[gw])
        wait_lists(gw, {a.id, b.id})

        done = self.bh("commit-next", "--data-dir", g.data_dir, "--next", nxt.id)
        self.assertIn("its hubs hear of it now", done.stdout)
        for hub in (alpha, bravo):
            wait_for(lambda hub=hub: hub.status()["gateway_keys"].get(g.id, {}).get(
                "next_committed"), what=f"{hub.name} to hear the commitment",
                logs=[hub, gw])
        bravo.stop()

        done = self.bh("rotate-key", "--data-dir", g.data_dir, "--next", nxt.data_dir,
                       "--json")
        self.assertEqual(json.loads(done.stdout)["running"], True)
        self.assertEqual(gw.status()["id"], nxt.id)
        wait_for(lambda: online_at_key(alpha, nxt.id), timeout=20,
                 what="alpha online at the new key", logs=[alpha, gw])
        with open(config) as f:
            [entry] = json.load(f)["Hub"]["Gateways"]
        self.assertEqual((entry["pubKey"], entry["formerKeys"], entry["name"]),
                         (nxt.id, [g.id], "home"))

        # The gateway restarts on its new key, still serving the old one in the grace.
        gw.stop()
        self.net.restart(gw, listen=f"tcp:{gw.port}:interface=127.0.0.1")
        keys = gw.status()["keys"]
        self.assertEqual((keys["id"], keys["succeeded"]["old"]), (nxt.id, g.id))
        self.assertTrue(keys["succeeded"]["serving_old"])
        self.net.restart(bravo)  # still started with --gateway OLD_ID@...
        wait_for(lambda: online_at_key(bravo, nxt.id), timeout=30,
                 what="bravo online at the new key", logs=[bravo, gw])
        wait_for(lambda: online_at_key(alpha, nxt.id), timeout=40,
                 what="alpha back at the new key", logs=[alpha, gw])
        self.assertEqual(bravo.status()["gateway_keys"][g.id]["succeeded_by"], nxt.id)

        carol = self.net.hub(c, "--gateway", f"{g.id}@127.0.0.1:{gw.port}")
        wait_for(lambda: carol.status()["gateway_keys"].get(g.id, {}).get("refused"),
                 what="carol to refuse the succession", logs=[carol, gw])
        status = carol.status()
        self.assertIn("never committed", status["gateway_keys"][g.id]["refused"]["reason"])
        self.assertEqual(status["gateways"][0]["id"], g.id)
        self.assertIn(nxt.id, status["gateways"][0].get("last_error", ""))
        wait_for(lambda: gw.status()["head"] and gw.status()["head"]["seq"] >= 2,
                 what="the new key's chain", logs=[gw])
        for hub in (alpha, bravo, carol):
            self.assertEqual(hub.status()["alarms"], [], hub.name)
