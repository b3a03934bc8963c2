"""Catching a gateway that lies, end to end (docs/accountability.md): real ``twistd``
gateways and hubs on 127.0.0.1, driven through the ``blockhub`` binary.

A thief copies an honest gateway's data directory (the key ring is the network's, as
a thief with the machine would have it) and starts it at another address; some hubs
move to it, as if the old address had been taken over.  Two hubs peered across the two
halves exchange the heads they saw, and each raises an equivocation alarm whose proof
``blockhub verify-equivocation`` accepts on its own.  Restarting and killing the
honest gateway raises none.
"""

import json
import os
import shutil

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.harness import (
    LISTEN_ANY_PORT,
    Identity,
    wait_for,
    wait_lists,
    wait_online,
)
from tests.integration.test_handshake import HandshakeHelpers

INTERVAL = "1"  # --head-interval: heads come quickly in a test
LISTEN = ("--listen", LISTEN_ANY_PORT)


def alarms(hub) -> list:
    return hub.status().get("alarms", [])


class AccountabilityTests(HandshakeHelpers, SynchronousTestCase):
    def peered_pair(self, gw):
        a, c = self.net.identities("alpha", "charlie")
        alpha, charlie = self.net.hubs_each(
            [(a, [*LISTEN, "--approve-key", c.id]), (c, [*LISTEN, "--approve-key", a.id])],
            gateways=[gw])
        wait_lists(gw, {a.id, c.id})
        self.connect(alpha, c.id, "peers across what comes")
        self.wait_peered(alpha, charlie, logs=[gw])
        wait_for(lambda: gw.status().get("head"), what="a first head", logs=[gw])
        return alpha, charlie

    def test_a_thief_gateway_is_caught_by_hubs_peered_across_the_halves(self):
        [g] = self.net.identities("gw")
        honest = self.net.gateway(g, "--head-interval", INTERVAL)
        alpha, charlie = self.peered_pair(honest)
        # The thief: the honest gateway's directory, copied while it runs.
        copy = self.net.path("thief")
        shutil.copytree(g.data_dir, copy,
                        ignore=shutil.ignore_patterns("twistd.pid", "*.sock", "control*"))
        thief = self.net.gateway(Identity("thief", copy, g.id), "--head-interval", INTERVAL)
        self.assertEqual(thief.status()["id"], g.id)
        # charlie now finds "the gateway" at the thief's address.
        charlie.stop()
        charlie.argv[charlie.argv.index("--gateway") + 1] = thief.spec
        self.net.restart(charlie)
        wait_online(charlie, thief)
        self.wait_peered(alpha, charlie, timeout=30, logs=[honest, thief])
        for hub in (alpha, charlie):
            wait_for(lambda hub=hub: [a for a in alarms(hub) if a["kind"] == "equivocation"],
                     timeout=10, what=f"{hub.name}'s equivocation alarm",
                     logs=[hub, honest, thief])
            [alarm] = [a for a in alarms(hub) if a["kind"] == "equivocation"]
            self.assertEqual(alarm["gateway"], g.id)
            self.assertEqual(os.path.basename(alarm["proof"]), f"equivocation-{g.id}.json")
            done = self.bh("verify-equivocation", alarm["proof"])
            self.assertIn(f"gateway {g.id} equivocated", done.stdout)
        with open(alarm["proof"]) as f:
            proof = json.load(f)
        tampered = self.net.write("tampered.json", json.dumps(
            dict(proof, heads=[proof["heads"][0], proof["heads"][0]])))
        done = self.net.blockhub("verify-equivocation", tampered, check=False)
        self.assertEqual(done.returncode, 1)

    def test_restarts_and_kill_9_raise_no_alarm(self):
        [g] = self.net.identities("gw")
        gw = self.net.gateway(g, "--head-interval", INTERVAL)
        alpha, charlie = self.peered_pair(gw)
        first = gw.status()["head"]["seq"]
        port = gw.port
        gw.kill()
        self.net.restart(gw, listen=f"tcp:{port}:interface=127.0.0.1")
        for hub in (alpha, charlie):
            wait_online(hub, gw, timeout=40)
        charlie.stop()
        self.net.restart(charlie)
        wait_online(charlie, gw)
        self.wait_peered(alpha, charlie, timeout=30, logs=[gw])
        wait_for(lambda: gw.status()["head"]["seq"] > first, timeout=20,
                 what="the chain to go on", logs=[gw])
        for hub in (alpha, charlie):
            self.assertEqual(alarms(hub), [], hub.name)
        with open(os.path.join(g.data_dir, "heads.json")) as f:
            self.assertEqual(json.load(f)["latest"]["body"]["seq"], gw.status()["head"]["seq"])
