"""A gateway cluster with real processes: a real redis-server, three ``twistd
blockhub-gateway --cluster`` nodes and hubs spread over them, driven and observed
through the ``blockhub`` CLI (docs/cluster.md).  Skipped, with one SKIPPED line, where
redis-server is missing."""

import json
import urllib.request

from twisted.trial.unittest import TestCase

from tests.integration.harness import Network, wait_for, wait_lists, wait_online
from tests.redis_server import start_redis

DEAD_AFTER = 3  # seconds: short, so a dead node is noticed quickly


class ClusterHelpers:
    def start_cluster(self, nodes=3, name="blockhub", password=None, extra=lambda i: ()):
        self.redis = start_redis(self, password=password)
        self.net = Network(self)
        self.gw_ids = self.net.identities(*[f"gw{i}" for i in range(nodes)])
        self.keys = self.net.write("cluster-keys", "".join(f"{g.id}\n" for g in self.gw_ids))
        self.options = ["--cluster", self.redis.url, "--cluster-keys", self.keys,
                        "--cluster-name", name, "--cluster-dead-after", str(DEAD_AFTER)]
        if password is not None:
            self.options += ["--cluster-password-file",
                             self.net.write("redis-password", password + "\n")]
        self.gws = [self.net.gateway(g, *self.options, *extra(i))
                    for i, g in enumerate(self.gw_ids)]
        for gw in self.gws:
            self.wait_cluster(gw, nodes)
        return self.gws

    def wait_cluster(self, gw, nodes, timeout=30):
        def ready():
            cluster = gw.status().get("cluster", {})
            return cluster.get("state") == "connected" and len(cluster["nodes"]) == nodes
        wait_for(ready, timeout, f"{gw.name} to see {nodes} nodes", logs=[gw])

    def hubs_at(self, names, *gws, options=()):
        """Hubs pinning ``gws`` in order (the first is where they go)."""
        identities = self.net.identities(*names)
        return [self.net.hub(i, "--listen", "tcp:0:interface=127.0.0.1", *options,
                             gateways=gws) for i in identities]


class ClusterPresenceTests(ClusterHelpers, TestCase):
    timeout = 180

    def test_hubs_on_three_nodes_see_each_other_and_status_shows_the_cluster(self):
        gws = self.start_cluster(3)
        hubs = [self.hubs_at([f"h{i}"], gw)[0] for i, gw in enumerate(gws)]
        everyone = {h.id for h in hubs}
        for hub in hubs:
            wait_lists(hub, everyone - {hub.id}, logs=gws + hubs)
        status = gws[0].status()["cluster"]
        self.assertEqual(status["name"], "blockhub")
        self.assertEqual(status["state"], "connected")
        self.assertEqual({n["id"] for n in status["nodes"]}, {g.id for g in gws})
        wait_for(lambda: all(n["hubs"] == 1 for n in gws[0].status()["cluster"]["nodes"]),
                 20, "every node to count its hub", logs=gws)
        listed = {h["id"]: h for h in gws[0].hubs()}
        self.assertEqual(listed[hubs[1].id]["node"], gws[1].id)
        self.assertIsNone(listed[hubs[1].id]["address"])
        # private mode: no address of any hub (all are on loopback) is in Redis
        values = b"".join(self.values()).decode("utf-8", "replace")
        self.assertIn(hubs[1].id, values)
        self.assertNotIn("127.0.0.1", values)

    def values(self):
        for key in self.redis.command("KEYS", "*"):
            kind = self.redis.command("TYPE", key)
            if kind == "string":
                yield self.redis.command("GET", key)
            elif kind == "hash":
                yield b"".join(self.redis.command("HGETALL", key))
            elif kind == "set":
                yield b"".join(self.redis.command("SMEMBERS", key))

    def test_a_record_tampered_with_in_redis_is_refused(self):
        gws = self.start_cluster(2)
        a, = self.hubs_at(["a"], gws[0])
        b, = self.hubs_at(["b"], gws[1])
        wait_lists(a, {b.id}, logs=gws)
        key = f"blockhub:hubs:{gws[1].id}"
        entry = json.loads(self.redis.command("HGET", key, b.id))
        entry["body"]["hubinfo"]["body"]["name"] = "mallory"
        self.redis.command("HSET", key, b.id, json.dumps(entry))
        gws[0].stop()
        gws[0].start()
        gws[0].wait_ready()
        self.wait_cluster(gws[0], 2)
        wait_for(lambda: gws[0].status()["cluster"]["refused"] >= 1, 20,
                 "the tampered entry to be refused", logs=gws)
        self.assertNotIn("mallory", json.dumps(gws[0].hubs()))


    def test_every_node_serves_every_live_nodes_record_and_redis_needs_the_password(self):
        def http(i):
            return ["--http", "tcp:0:interface=127.0.0.1",
                    "--public-address", f"127.0.0.1:{6610 + i}"]
        gws = self.start_cluster(2, password="s3cret-redis-pw", extra=http)

        def records(gw):
            url = f"http://{gw.status()['http']}/gateways"
            with urllib.request.urlopen(url, timeout=10) as answer:
                return {r["pubKey"] for r in json.load(answer)["gateways"]}
        for gw in gws:
            wait_for(lambda gw=gw: records(gw) == {g.id for g in gws}, 30,
                     f"{gw.name} to serve both records", logs=gws)
        for gw in gws:
            with open(gw.log, errors="replace") as f:
                self.assertNotIn("s3cret-redis-pw", f.read())


class ClusterFailureTests(ClusterHelpers, TestCase):
    timeout = 240

    def test_a_killed_node_leaves_and_its_hubs_move_keeping_their_peer_link(self):
        gws = self.start_cluster(3)
        a, = self.hubs_at(["a"], gws[0])
        b, = self.hubs_at(["b"], gws[1], gws[2])
        wait_lists(a, {b.id}, logs=gws + [a, b])
        self.peer(a, b)
        self.send(a, b, [f"before {n}" for n in range(50)])
        gws[1].kill()
        # b moves to node 2; a sees it all along or again, and the peer link survives
        wait_online(b, gws[2], timeout=60, logs=gws + [b])
        wait_for(lambda: len(gws[0].status()["cluster"]["nodes"]) == 2, 30,
                 "node 0 to drop the dead node", logs=gws)
        wait_lists(a, {b.id}, logs=gws + [a, b])
        self.send(a, b, [f"after {n}" for n in range(50)])
        texts = [m["text"] for m in b.ctl("messages") if m["from"] == a.id]
        self.assertEqual(texts, [f"before {n}" for n in range(50)]
                         + [f"after {n}" for n in range(50)])
        # Each node signs its own chain; a node's death and the failover are no alarm.
        for hub in (a, b):
            self.assertEqual(hub.status()["alarms"], [], hub.name)

    def test_relay_only_hubs_on_two_nodes_peer_over_a_circuit_across_them(self):
        gws = self.start_cluster(2)
        a = self.net.hub(self.net.identities("a")[0], "--peer-path", "relay",
                         gateways=[gws[0]])
        b = self.net.hub(self.net.identities("b")[0], "--peer-path", "relay",
                         gateways=[gws[1]])
        wait_lists(a, {b.id}, logs=gws)
        self.peer(a, b)
        [row] = [p for p in a.ctl("peers") if p["id"] == b.id]
        self.assertEqual((row["path"], row["via"], row["address"]),
                         ("relayed", gws[0].id, None))
        self.assertEqual(gws[1].status()["circuits"]["count"], 1)
        self.send(a, b, [f"m{n}" for n in range(100)])
        self.send(b, a, [f"r{n}" for n in range(100)])
        self.assertEqual([m["text"] for m in b.ctl("messages")],
                         [f"m{n}" for n in range(100)])
        self.assertEqual([m["text"] for m in a.ctl("messages")],
                         [f"r{n}" for n in range(100)])

    def test_redis_stopped_and_restarted_under_load(self):
        gws = self.start_cluster(2)
        a, = self.hubs_at(["a"], gws[0])
        b, = self.hubs_at(["b"], gws[1])
        wait_lists(a, {b.id}, logs=gws)
        self.redis.stop()
        wait_for(lambda: gws[0].status()["cluster"]["state"] == "disconnected", 20,
                 "node 0 to notice", logs=gws)
        c, = self.hubs_at(["c"], gws[1])       # joins while Redis is away
        wait_lists(c, {b.id}, logs=gws)        # its own node still serves it
        self.redis.start()
        for gw in gws:
            self.wait_cluster(gw, 2)
        wait_lists(a, {b.id, c.id}, timeout=30, logs=gws)
        wait_lists(c, {a.id, b.id}, timeout=30, logs=gws)

    # -- helpers ----------------------------------------------------------------------
    def peer(self, a, b):
        self.net.blockhub("connect", "--data-dir", a.data_dir, b.id, "--note", "hi")
        wait_for(lambda: any(p["id"] == a.id for p in b.ctl("pending")), 30,
                 "b to hold a's request", logs=self.gws + [a, b])
        self.net.blockhub("approve", "--data-dir", b.data_dir, a.id)
        wait_for(lambda: any(p["id"] == b.id and p["connected"] for p in a.ctl("peers")),
                 30, "a and b to peer", logs=self.gws + [a, b])

    def send(self, a, b, texts):
        before = len(b.ctl("messages"))
        for text in texts:  # in this process: the real CLI code, without a start-up each
            a.ctl("send", b.id, text, as_json=False)
        wait_for(lambda: len(b.ctl("messages")) >= before + len(texts), 60,
                 "the messages to arrive", logs=self.gws + [a, b])
