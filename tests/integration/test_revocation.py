"""Trust that must hold against real daemons (issue 11, findings 1 and 3): an address a
relayed request only claims never earns an approval by range, and a block or an unpeer
ends a peering for good, driven through the ``blockhub`` command as an operator would."""

import json
import os
import subprocess

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.harness import LISTEN_ANY_PORT, PYTHON, tail, wait_for, wait_lists
from tests.integration.test_handshake import (
    HandshakeHelpers,
    peer_row,
    refusals,
    request_state,
)

DIAL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "peer_dial.py")
LISTEN = ("--listen", LISTEN_ANY_PORT)
RANGE = "127.0.0.64/26"
CLAIMED = "127.0.0.99"  # in RANGE; every process here really is at 127.0.0.1


class RevocationTests(HandshakeHelpers, SynchronousTestCase):
    def dial(self, identity, hub, *args) -> dict:
        """``identity`` dials ``hub``'s peer listener with peer-hello (peer_dial.py)."""
        done = subprocess.run(
            [PYTHON, DIAL, "--data-dir", identity.data_dir, "--to", hub.id,
             "--address", hub.status()["listen"], *args],
            cwd=self.net.root, env=self.net.env, capture_output=True, text=True, timeout=30,
            stdin=subprocess.DEVNULL)
        self.assertEqual(done.returncode, 0, done.stderr)
        return json.loads(done.stdout)

    def test_a_claimed_address_in_the_approved_range_earns_nothing(self):
        """mallory relays a request claiming 127.0.0.99, inside bravo's --approve-ip
        range, with an endpoint there.  bravo cannot confirm it, so it waits for the
        operator, who is told the address is only a claim; mallory then dials bravo
        from 127.0.0.1 and is refused; nothing of it is stored."""
        g, b, m = self.net.identities("gw", "bravo", "mallory")
        gw = self.net.gateway(g)
        bravo = self.net.hub(b, *LISTEN, "--approve-ip", RANGE, gateways=[gw])
        claim = {"to": b.id, "note": "trust my address", "address": CLAIMED,
                 "endpoint": f"{CLAIMED}:7999"}
        spy, _report, _capture, spy_log = self.start_spy("mallory", m, gw, "--relay",
                                                         json.dumps(claim))
        self.assertEqual(spy.wait(30), 0, tail(spy_log))
        wait_for(lambda: request_state(bravo, "in", m.id) == "pending", what=
                 "bravo to hand the unconfirmed request to its operator", logs=[bravo])
        [row] = bravo.ctl("pending")
        self.assertEqual((row["address"], row["address_source"]), (CLAIMED, "claimed"))
        text = self.bh("pending", "--data-dir", bravo.data_dir).stdout
        self.assertIn(CLAIMED, text)
        self.assertIn("claim", text)

        answer = self.dial(m, bravo, "--send", "i am in")
        self.assertEqual(answer["status"], "rejected", answer)
        self.assertIsNone(peer_row(bravo, m.id))
        self.assertEqual(bravo.ctl("messages"), [])
        self.assertEqual(request_state(bravo, "in", m.id), "pending")
        self.assertEqual(refusals(bravo).get("unsolicited"), 1)

    def test_block_and_unpeer_end_peerings_for_good(self):
        """bravo peers with alpha (approved by hand) and charlie (by key).  reject
        --block alpha closes the link at once; alpha's next message is never stored,
        and its hellos are refused.  unpeer charlie ends that peering too; charlie may
        ask again, since it is not blocked."""
        g, a, b, c = self.net.identities("gw", "alpha", "bravo", "charlie")
        gw = self.net.gateway(g)
        alpha, bravo, charlie = self.net.hubs_each(
            [(a, LISTEN), (b, [*LISTEN, "--approve-key", c.id]), (c, LISTEN)],
            gateways=[gw])
        wait_lists(gw, {a.id, b.id, c.id})
        everyone = [gw, alpha, bravo, charlie]
        self.connect(alpha, b.id, "alpha here")
        wait_for(lambda: bravo.ctl("pending"), what="alpha's request at bravo", logs=everyone)
        self.bh("approve", "--data-dir", bravo.data_dir, a.id)
        self.connect(charlie, b.id, "charlie here")
        self.wait_peered(alpha, bravo, logs=everyone)
        self.wait_peered(charlie, bravo, logs=everyone)
        self.bh("send", "--data-dir", alpha.data_dir, b.id, "one")
        wait_for(lambda: bravo.ctl("messages"), what="alpha's first message", logs=everyone)

        done = self.bh("reject", "--data-dir", bravo.data_dir, a.id, "--block")
        self.assertIn("block", done.stdout)
        self.assertIsNone(peer_row(bravo, a.id))
        wait_for(lambda: not (peer_row(alpha, b.id) or {}).get("connected"),
                 what="alpha to see its link to bravo closed", logs=everyone)
        self.bh("send", "--data-dir", alpha.data_dir, b.id, "two")
        self.assertEqual(self.dial(a, bravo, "--send", "three")["status"], "rejected")
        self.assertEqual(refusals(bravo).get("Blocked"), 1)
        self.assertEqual([m["text"] for m in bravo.ctl("messages")], ["one"])
        self.assertIsNone(peer_row(bravo, a.id))

        done = self.bh("unpeer", "--data-dir", bravo.data_dir, c.id)
        self.assertIn(c.id, done.stdout)
        self.assertIsNone(peer_row(bravo, c.id))
        self.assertEqual(self.dial(c, bravo)["status"], "rejected")
        again = self.net.blockhub("unpeer", "--data-dir", bravo.data_dir, c.id, check=False)
        self.assertEqual(again.returncode, 1, again)
        self.assertEqual(len(again.stderr.strip().splitlines()), 1, again.stderr)
        wait_for(lambda: not (peer_row(charlie, b.id) or {}).get("connected"),
                 what="charlie to see its link to bravo closed", logs=everyone)
        self.connect(charlie, b.id, "again")  # approved key, not blocked: back at once
        self.wait_peered(charlie, bravo, logs=everyone)
