"""The public gateway list with real processes: a gateway moves to a new port, a
signed record says so, and the hub follows it, writing the new address back into its
config; a record for a key the hub does not pin changes nothing; after a restart, an
older record than one already taken is not taken again."""

import json
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.harness import LOOPBACK, Network, wait_for


def online_at(hub, gateway_id):
    return hub.status().get("gateway") == gateway_id


class GatewayListTests(SynchronousTestCase):
    def test_hub_follows_a_gateway_that_moved(self):
        net = Network(self)
        g, lister, stranger, a = net.identities("gw", "lister", "stranger", "alpha")
        gw = net.gateway(g)
        old_port = gw.port
        # Another gateway publishes the list; its records file is re-read at each GET.
        records = net.write("records.json", json.dumps({"gateways": []}))
        lst = net.gateway(lister, "--http", "tcp:0:interface=127.0.0.1",
                          "--public-address", f"{LOOPBACK}:1", "--gateway-records", records)
        http = lst.status()["http"]
        config = net.write("alpha.json", json.dumps({"Hub": {"Gateways": [
            {"name": "home", "pubKey": g.id, "lastKnownIP": LOOPBACK, "port": old_port}]}}))
        alpha = net.hub(a, "--config", config, "--gateway-list", f"http://{http}/gateways",
                        "--gateway-list-interval", "1")
        wait_for(lambda: online_at(alpha, g.id), what="alpha online at its gateway",
                 logs=[gw, alpha])

        gw.stop()
        gw = net.restart(gw, listen="tcp:0:interface=127.0.0.1")
        new_port = gw.port
        self.assertNotEqual(new_port, old_port)
        moved = json.loads(net.blockhub("gateway-record", "--data-dir", g.data_dir,
                                        "--ip", LOOPBACK, "--port", new_port).stdout)
        lie = json.loads(net.blockhub("gateway-record", "--data-dir", stranger.data_dir,
                                      "--ip", LOOPBACK, "--port", 9).stdout)
        tampered = dict(moved, Port=9)
        with open(records, "w") as f:
            json.dump({"gateways": [lie, tampered, moved]}, f)

        wait_for(lambda: online_at(alpha, g.id), timeout=40,
                 what="alpha to follow the record to the new port", logs=[gw, alpha])
        row = alpha.status()["gateways"][0]
        self.assertEqual(row["address"], f"{LOOPBACK}:{new_port}")
        saved = json.load(open(config))["Hub"]["Gateways"]
        self.assertEqual(len(saved), 1)  # the stranger's record added nothing
        self.assertEqual((saved[0]["lastKnownIP"], saved[0]["port"]), (LOOPBACK, new_port))
        self.assertEqual(saved[0]["name"], "home")
        lists = alpha.status()["gateway_lists"]
        self.assertTrue(all(v.startswith("ok") for v in lists.values()), lists)

    def test_an_older_record_is_not_taken_again_after_a_restart(self):
        """Finding 9: the newest record issued per key survives a restart of the hub, so
        an older one that has not expired (a rollback to a dead address) is ignored."""
        net = Network(self)
        g, lister, a = net.identities("gw", "lister", "alpha")
        gw = net.gateway(g)
        older = json.loads(net.blockhub("gateway-record", "--data-dir", g.data_dir,
                                        "--ip", LOOPBACK, "--port", 9).stdout)
        records = net.write("records.json", json.dumps({"gateways": []}))
        lst = net.gateway(lister, "--http", "tcp:0:interface=127.0.0.1",
                          "--public-address", f"{LOOPBACK}:1", "--gateway-records", records)
        # Records are issued in whole seconds: the current one must be the newer.
        wait_for(lambda: int(time.time()) > older["issued"], timeout=5,
                 what="a second to pass")
        current = json.loads(net.blockhub("gateway-record", "--data-dir", g.data_dir,
                                          "--ip", LOOPBACK, "--port", gw.port).stdout)
        with open(records, "w") as f:
            json.dump({"gateways": [current]}, f)
        config = net.write("alpha.json", json.dumps({"Hub": {"Gateways": [
            {"name": "home", "pubKey": g.id, "lastKnownIP": LOOPBACK, "port": gw.port}]}}))
        url = f"http://{lst.status()['http']}/gateways"
        alpha = net.hub(a, "--config", config, "--gateway-list", url,
                        "--gateway-list-interval", "1")
        wait_for(lambda: alpha.status()["gateway_lists"].get(url) == "ok: 2 records, 1 used",
                 what="alpha to take the current record", logs=[alpha, lst])

        alpha.stop()
        with open(records, "w") as f:
            json.dump({"gateways": [older]}, f)
        alpha = net.restart(alpha)
        wait_for(lambda: alpha.status()["gateway_lists"].get(url) == "ok: 2 records, 0 used",
                 what="alpha to read the older record after its restart", logs=[alpha, lst])
        wait_for(lambda: online_at(alpha, g.id), what="alpha online at its gateway",
                 logs=[gw, alpha])
        self.assertEqual(alpha.status()["gateways"][0]["address"], f"{LOOPBACK}:{gw.port}")
        saved = json.load(open(config))["Hub"]["Gateways"]
        self.assertEqual((saved[0]["lastKnownIP"], saved[0]["port"]), (LOOPBACK, gw.port))
