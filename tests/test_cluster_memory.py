"""Gateway nodes of one cluster, in memory: real gateways and hubs over TLS (iosim) on
one Clock, their Redis the in-memory fake of the backend contract
(tests/test_cluster_backend.py runs that contract against a real redis-server)."""

import json

from twisted.trial.unittest import SynchronousTestCase

from blockhub.gateway.build import ClusterSettings
from blockhub.gateway.cluster.node import ClusterNode
from blockhub.gateway.cluster.records import Signer
from blockhub.gateway.presence import REMOTE_WINDOW
from blockhub.wire.canonical import b64
from tests.fake_cluster import FakeBackend, FakeRedis
from tests.memory import World, new_identity

DEAD_AFTER = 15.0


def ids(hub):
    return sorted(h["id"] for h in hub.hubs())


class Cluster:
    """``n`` gateway nodes on one fake Redis; ``world.graphs`` holds them in order."""

    def __init__(self, n=2, name="blockhub", keys=None, **world_kw):
        self.identities = [new_identity() for _ in range(n)]
        self.keys = keys if keys is not None else frozenset(i.id for i in self.identities)
        self.redis = FakeRedis(None)
        self.name = name
        self.world = World(gateway_identity=self.identities[0],
                           cluster=self.settings(self.identities[0]), **world_kw)
        self.redis.clock = self.world.clock
        for identity in self.identities[1:]:
            self.world.add_gateway(identity, cluster=self.settings(identity))
        self.nodes: list[ClusterNode] = [self.world.graphs[i.id].cluster
                                         for i in self.identities]
        for node in self.nodes:
            node.start()
        self.flush()

    def settings(self, identity):
        return ClusterSettings(self.name, self.keys, FakeBackend(self.redis, self.name),
                               DEAD_AFTER)

    def gw(self, i):
        return self.identities[i].id

    def hub(self, name, *nodes, **kw):
        return self.world.add_hub(name, gateways=[self.gw(i) for i in nodes], **kw)

    def flush(self):
        """Everything in flight, other nodes' events held for REMOTE_WINDOW included."""
        for _ in range(3):
            self.world.flush()
            self.world.clock.advance(REMOTE_WINDOW)
        self.world.flush()

    def advance(self, seconds, step=1.0):
        while seconds > 0:
            self.world.clock.advance(min(step, seconds))
            seconds -= step
            self.flush()


def watch(hub):
    """Every presence change the hub's directory reports, in order."""
    seen = []
    directory = hub.directory
    previous = directory.observer

    def observe(event, hub_id, info):
        seen.append((event, hub_id))
        if previous is not None:
            previous(event, hub_id, info)
    directory.observer = observe
    return seen


class PresenceAcrossNodesTests(SynchronousTestCase):
    def test_hubs_on_two_nodes_see_each_other(self):
        c = Cluster()
        a, b = c.hub("a", 0), c.hub("b", 1)
        c.flush()
        self.assertEqual([n.state for n in c.nodes], ["connected", "connected"])
        self.assertEqual(ids(a), [b.identity.id])
        self.assertEqual(ids(b), [a.identity.id])
        listed = {h["id"]: h for h in c.world.graphs[c.gw(0)].presence.snapshot()}
        self.assertEqual(listed[b.identity.id]["node"], c.gw(1))
        self.assertIsNone(listed[b.identity.id]["address"])

    def test_a_newcomer_gets_the_other_nodes_hubs(self):
        c = Cluster()
        b = c.hub("b", 1)
        a = c.hub("a", 0)
        c.flush()
        self.assertEqual(ids(a), [b.identity.id])

    def test_updates_and_departures_cross_nodes(self):
        c = Cluster(n=3)
        a, b = c.hub("a", 0), c.hub("b", 2)
        c.flush()
        c.world.clock.advance(1)
        b.publish(name="renamed")
        c.flush()
        self.assertEqual(a.hubs()[0]["name"], "renamed")
        b.link.stop()
        c.flush()
        self.assertEqual(a.hubs(), [])

    def test_status_lists_every_node_with_its_hubs(self):
        c = Cluster(n=3)
        c.hub("a", 0), c.hub("b", 1), c.hub("b2", 1)
        c.advance(DEAD_AFTER / 3)
        status = c.nodes[0].status()
        self.assertEqual(status["state"], "connected")
        self.assertEqual({n["id"]: n["hubs"] for n in status["nodes"]},
                         {c.gw(0): 1, c.gw(1): 2, c.gw(2): 0})

    def test_several_clusters_share_one_redis_by_name(self):
        c = Cluster()
        other = ClusterSettings("other", c.keys, FakeBackend(c.redis, "other"), DEAD_AFTER)
        graph = c.world.add_gateway(new_identity(), cluster=other)
        graph.cluster.start()
        a = c.hub("a", 0)
        b = c.world.add_hub("b", gateways=[list(c.world.graphs)[-1]])
        c.flush()
        self.assertEqual(ids(a), [])
        self.assertEqual(ids(b), [])


class DeadNodeTests(SynchronousTestCase):
    def test_a_dead_nodes_hubs_leave_within_dead_after(self):
        c = Cluster()
        a, b = c.hub("a", 0), c.hub("b", 1)
        c.flush()
        c.world.kill_gateway(c.gw(1))
        self.assertEqual(ids(a), [b.identity.id])  # nothing said yet
        c.advance(DEAD_AFTER + DEAD_AFTER / 3 + 1)
        self.assertEqual(ids(a), [])

    def test_a_hub_that_moves_to_another_node_shows_no_flap(self):
        c = Cluster(n=3)
        a = c.hub("a", 0)
        b = c.hub("b", 1, 2)  # pins node 1, then node 2
        c.flush()
        seen = watch(a)
        c.world.kill_gateway(c.gw(1))
        c.advance(DEAD_AFTER * 3)
        self.assertEqual(b.link.state, "online")
        self.assertEqual(ids(a), [b.identity.id])
        self.assertNotIn(("left", b.identity.id), seen)
        listed = {h["id"]: h for h in c.world.graphs[c.gw(0)].presence.snapshot()}
        self.assertEqual(listed[b.identity.id]["node"], c.gw(2))

    def test_a_newer_connection_at_another_node_replaces_ours_without_a_leave(self):
        c = Cluster()
        a = c.hub("a", 0)
        identity = new_identity()
        first = c.hub("b", 1, identity=identity)
        c.flush()
        seen = watch(a)
        c.world.clock.advance(1)
        c.hub("b", 0, identity=identity)
        c.flush()
        self.assertNotEqual(first.link.state, "online")  # node 1 closed it
        self.assertNotIn(("left", identity.id), seen)
        self.assertIn(identity.id, c.world.graphs[c.gw(0)].presence.hubs)
        self.assertNotIn(identity.id, c.world.graphs[c.gw(1)].presence.hubs)


class StoreAwayTests(SynchronousTestCase):
    def test_redis_away_and_back_loses_and_duplicates_nothing(self):
        c = Cluster()
        a, b = c.hub("a", 0), c.hub("b", 1)
        c.flush()
        seen = watch(a)
        c.redis.stop()
        c.flush()
        self.assertEqual(c.nodes[0].status()["state"], "disconnected")
        self.assertEqual(a.link.state, "online")  # still served
        late = c.hub("late", 1)  # joins while the store is away
        b.link.stop()            # and b leaves meanwhile
        c.advance(2)
        c.redis.start()
        c.advance(2)
        self.assertEqual(c.nodes[0].status()["state"], "connected")
        self.assertEqual(ids(a), [late.identity.id])
        self.assertEqual(seen.count(("joined", late.identity.id)), 1)
        self.assertEqual(seen.count(("left", b.identity.id)), 1)

    def test_other_nodes_hubs_are_forgotten_when_the_store_stays_away(self):
        c = Cluster()
        a, b = c.hub("a", 0), c.hub("b", 1)
        c.flush()
        c.redis.stop()
        c.advance(DEAD_AFTER + 1)
        self.assertEqual(ids(a), [])
        c.redis.start()
        c.advance(DEAD_AFTER / 3 + 1)  # at the latest, the next heartbeat finds node 1
        self.assertEqual(ids(a), [b.identity.id])


class TrustTests(SynchronousTestCase):
    def test_an_entry_signed_by_a_stranger_is_refused_and_counted(self):
        c = Cluster()
        a = c.hub("a", 0)
        c.flush()
        stranger = new_identity()
        hub = new_identity()
        from blockhub.hubinfo import make_hubinfo
        info = make_hubinfo(hub, "forged", 1)
        value = Signer(stranger, "blockhub").make("presence", c.world.clock.seconds(),
                                                  seq=1, event="joined", hub=hub.id,
                                                  hubinfo=info.to_json(), since=1)
        c.redis.publish("blockhub:presence", value)
        c.flush()
        self.assertEqual(ids(a), [])
        self.assertEqual(c.nodes[0].status()["refused"], 1)

    def test_an_altered_table_entry_is_refused_and_never_reaches_a_hub(self):
        c = Cluster()
        a, b = c.hub("a", 0), c.hub("b", 1)
        c.flush()
        key = f"blockhub:hubs:{c.gw(1)}"
        table, expires = c.redis.values[key]
        entry = json.loads(table[b.identity.id])
        entry["body"]["hubinfo"]["body"]["name"] = "mallory"
        table[b.identity.id] = json.dumps(entry).encode()
        c.nodes[0].others.where.clear()  # as if node 0 just started: it reads the table
        c.nodes[0].presence.remote.clear()
        c.redis.stop()
        c.flush()
        c.redis.start()
        c.flush()
        self.assertNotIn("mallory", [h["name"] for h in a.hubs()])
        self.assertGreaterEqual(c.nodes[0].status()["refused"], 1)

    def test_private_mode_writes_no_address_to_redis(self):
        c = Cluster(n=3)
        for i in range(3):
            c.hub(f"h{i}", i)
        c.advance(DEAD_AFTER)
        everything = repr(c.redis.values)
        self.assertIn("hubinfo", everything)
        self.assertNotIn("127.0.0.1", everything)


class RelayAcrossNodesTests(SynchronousTestCase):
    def test_the_relay_budget_is_the_clusters(self):
        c = Cluster()
        sender = new_identity().id
        burst = c.world.limits.relay_burst
        answers = []
        for i in range(burst + 2):
            c.nodes[i % 2].take(sender).addCallback(answers.append)
        c.flush()
        self.assertEqual(answers, [True] * burst + [False, False])

    def test_handshake_and_messages_between_hubs_on_two_nodes(self):
        c = Cluster()
        world = c.world
        alice = world.full_hub(self, "alice", gateways=[c.gw(0)])
        bob = world.full_hub(self, "bob", gateways=[c.gw(1)])
        c.flush()
        alice.operator.connect(bob.id, "hi from node 0")
        c.flush()
        [pending] = bob.operator.pending()
        self.assertEqual((pending["id"], pending["note"]), (alice.id, "hi from node 0"))
        bob.operator.approve(alice.id)
        c.flush()
        self.assertIn(alice.id, bob.peers.connections)
        for i in range(100):
            alice.peers.send(bob.id, f"m{i}")
            bob.peers.send(alice.id, f"r{i}")
        c.flush()
        self.assertEqual([m["text"] for m in bob.store.messages()],
                         [f"m{i}" for i in range(100)])
        self.assertEqual([m["text"] for m in alice.store.messages()],
                         [f"r{i}" for i in range(100)])


class CircuitsAcrossNodesTests(SynchronousTestCase):
    """Hubs that cannot reach each other, at two nodes: a circuit crosses the nodes."""

    def setUp(self):
        self.c = c = Cluster()
        self.a = c.world.full_hub(self, "a", listen=False, gateways=[c.gw(0)])
        self.b = c.world.full_hub(self, "b", listen=False, gateways=[c.gw(1)])
        self.b.store.add_approved_key(self.a.id, 0)
        self.a.operator.connect(self.b.id, "across the cluster")
        c.advance(3)

    def row(self, hub, other):
        [row] = [r for r in hub.peers.snapshot() if r["id"] == other.id]
        return row

    def test_unreachable_hubs_at_two_nodes_peer_over_one_circuit(self):
        for hub, other, node in ((self.a, self.b, 0), (self.b, self.a, 1)):
            row = self.row(hub, other)
            self.assertEqual((row["path"], row["via"], row["address"], row["connected"]),
                             ("relayed", self.c.gw(node), None, True))
        for i in range(2):
            self.assertEqual(self.c.world.graphs[self.c.gw(i)].circuits.status()["count"], 1)

    def test_messages_cross_exactly_once_in_order_past_the_window(self):
        big = "x" * 60000
        for n in range(100):
            self.a.peers.send(self.b.id, f"a{n}")
            self.b.peers.send(self.a.id, f"b{n}")
        for _ in range(10):
            self.a.peers.send(self.b.id, big)
        self.c.advance(5)
        got = [m["text"] for m in self.b.store.messages()]
        self.assertEqual(got, [f"a{n}" for n in range(100)] + [big] * 10)
        self.assertEqual([m["text"] for m in self.a.store.messages()],
                         [f"b{n}" for n in range(100)])

    def test_the_store_sees_ciphertext_only(self):
        seen = []
        publish = self.c.redis.publish
        self.c.redis.publish = lambda channel, payload: seen.append(payload) or publish(
            channel, payload)
        self.a.peers.send(self.b.id, "a secret between hubs")
        self.c.advance(2)
        self.assertEqual([m["text"] for m in self.b.store.messages()],
                         ["a secret between hubs"])
        self.assertTrue(seen)
        self.assertFalse(any(b"secret" in p for p in seen))

    def test_the_other_node_dying_ends_the_circuit_and_nothing_is_lost(self):
        self.c.world.kill_gateway(self.c.gw(1))
        self.a.peers.send(self.b.id, "while b's node is gone")
        self.c.advance(DEAD_AFTER + 6)
        self.assertEqual(self.c.world.graphs[self.c.gw(0)].circuits.status()["count"], 0)
        self.assertFalse(self.row(self.a, self.b)["connected"])
        self.assertEqual(self.b.store.messages(), [])

    def test_a_replayed_circuit_message_is_dropped_and_counted(self):
        seen = []
        publish = self.c.redis.publish
        self.c.redis.publish = lambda channel, payload: seen.append((channel, payload)) or \
            publish(channel, payload)
        self.a.peers.send(self.b.id, "once")
        self.c.advance(1)
        channel, payload = [s for s in seen if s[0].startswith("blockhub:circuit:")][0]
        publish(channel, payload)
        self.c.advance(1)
        self.assertEqual([m["text"] for m in self.b.store.messages()], ["once"])
        self.assertGreaterEqual(sum(n.status()["refused"] for n in self.c.nodes), 1)


class ReplayTests(SynchronousTestCase):
    def test_a_replayed_heartbeat_does_not_keep_a_dead_node_alive(self):
        c = Cluster()
        a, b = c.hub("a", 0), c.hub("b", 1)
        c.flush()
        self.assertEqual(ids(a), [b.identity.id])
        key = f"blockhub:node:{c.gw(1)}"
        last = c.redis.get(key)
        c.world.kill_gateway(c.gw(1))
        for _ in range(20):  # whoever holds Redis writes the last heartbeat again
            c.redis.set(key, last, DEAD_AFTER)
            c.advance(5)
        self.assertEqual(ids(a), [])
        self.assertGreaterEqual(c.nodes[0].status()["refused"], 1)

    def test_a_relayed_request_published_twice_is_delivered_once(self):
        c = Cluster()
        world = c.world
        alice = world.full_hub(self, "alice", gateways=[c.gw(0)])
        bob = world.full_hub(self, "bob", gateways=[c.gw(1)])
        c.flush()
        seen = []
        publish = c.redis.publish
        c.redis.publish = lambda channel, payload: seen.append((channel, payload)) or \
            publish(channel, payload)
        alice.operator.connect(bob.id, "once")
        c.flush()
        [(channel, payload)] = [s for s in seen if s[0] == f"blockhub:node:{c.gw(1)}"]
        delivered = world.graphs[c.gw(1)].counters.relayed
        publish(channel, payload)
        c.flush()
        self.assertEqual(world.graphs[c.gw(1)].counters.relayed, delivered)
        self.assertEqual(len(bob.operator.pending()), 1)


class BansAcrossNodesTests(SynchronousTestCase):
    def test_a_ban_at_one_node_kicks_the_hub_at_another_and_it_cannot_fail_over(self):
        c = Cluster(n=3)
        b = c.hub("b", 1, 2)  # pins node 1, then node 2
        c.flush()
        until = c.world.graphs[c.gw(0)].bans.ban(b.identity.id, 600) / 1000
        c.flush()
        self.assertNotIn(b.identity.id, c.world.graphs[c.gw(1)].presence.hubs)
        c.advance(120, step=5)
        for i in range(3):
            self.assertNotIn(b.identity.id, c.world.graphs[c.gw(i)].presence.hubs)
            self.assertEqual(c.world.graphs[c.gw(i)].bans.until(b.identity.id), until)
        self.assertIn("banned", b.link.last_error[c.gw(1)])

    def test_a_kick_reaches_the_hubs_node_and_the_hub_may_come_back(self):
        c = Cluster()
        b = c.hub("b", 1)
        c.flush()
        self.assertTrue(c.nodes[0].kick(b.identity.id))
        c.flush()
        self.assertIn("kicked by the operator", b.link.last_error[c.gw(1)])
        c.advance(60, step=5)
        self.assertEqual(b.link.state, "online")

    def test_a_node_that_was_away_learns_the_ban_from_a_heartbeat(self):
        c = Cluster()
        hub = new_identity().id
        c.nodes[1].backend.kill()  # node 1 hears nothing for a while
        c.world.graphs[c.gw(0)].bans.ban(hub, 600)
        c.flush()
        self.assertIsNone(c.world.graphs[c.gw(1)].bans.until(hub))
        c.nodes[1].backend.revive()
        c.advance(DEAD_AFTER)
        self.assertIsNotNone(c.world.graphs[c.gw(1)].bans.until(hub))


class RelayBudgetTests(SynchronousTestCase):
    def test_a_sender_over_its_cluster_budget_is_stopped_after_one_relay(self):
        c = Cluster()
        a, b = c.hub("a", 0), c.hub("b", 1)
        c.flush()
        for _ in range(c.world.limits.relay_burst):  # spent at the other node
            c.nodes[1].take(a.identity.id)
        c.flush()
        for _ in range(3):
            a.link.proto.send("relay", to=b.identity.id, kind="request", sealed=b64(b"\x01" * 64))
            c.flush()
        counters = c.world.graphs[c.gw(0)].counters
        self.assertEqual(counters.relayed, 1)           # the one sent before Redis said no
        self.assertEqual(counters.relay_refused, 2)
        self.assertGreaterEqual(counters.relay_cluster_limited, 1)


class RemoteBatchTests(SynchronousTestCase):
    """Other nodes' events go to each of our hubs together, in order with our own."""

    class Conn:
        def __init__(self, hub):
            self.peer_id, self.host, self.address = hub, "127.0.0.1", "127.0.0.1:1"
            self.writes = []

        def send(self, kind, **fields):
            pass

        def send_frame(self, frame):
            self.writes.append((frame,))

        def send_frames(self, frames):
            self.writes.append(tuple(frames))

    def test_a_windows_remote_events_are_one_write_and_precede_our_next_frame(self):
        from twisted.internet.task import Clock

        from blockhub.gateway.counters import Counters
        from blockhub.gateway.presence import Presence
        from blockhub.hubinfo import make_hubinfo
        from blockhub.limits import DEFAULT
        clock = Clock()
        presence = Presence("private", DEFAULT, clock, Counters(), lambda conn: None)
        ours = [new_identity() for _ in range(2)]
        conns = [self.Conn(i.id) for i in ours]
        presence.join(conns[0], make_hubinfo(ours[0], "ours", 1))
        conns[0].writes.clear()
        remote = [make_hubinfo(new_identity(), f"r{n}", 1) for n in range(3)]
        for info in remote:
            presence.remote_put("node2", info, 0.0)
        self.assertEqual(conns[0].writes, [])          # held for the window
        presence.join(conns[1], make_hubinfo(ours[1], "late", 1))  # our own frame
        [batch, own] = conns[0].writes
        self.assertEqual(len(batch), 3)                # one write, before ours
        self.assertIn(b"late", own[0])
        self.assertEqual(len(conns[1].writes), 1)      # the newcomer's list has them all
        clock.advance(REMOTE_WINDOW)
        self.assertEqual(len(conns[0].writes), 2)      # nothing is written twice


class HeadsAcrossNodesTests(SynchronousTestCase):
    """Each node signs its own chain over the cluster's online set, with its own key:
    hubs at two nodes, peered, gossip both chains, and churn, updates and a hub moving
    between nodes raise no alarm."""

    def test_two_nodes_chains_gossiped_with_churn_raise_no_alarm(self):
        c = Cluster()
        world = c.world
        alice = world.full_hub(self, "alice", gateways=[c.gw(0), c.gw(1)])
        bob = world.full_hub(self, "bob", gateways=[c.gw(1), c.gw(0)])
        c.flush()
        bob.store.add_approved_key(alice.id, 0)
        alice.operator.connect(bob.id, "")
        c.advance(12)
        carol = world.full_hub(self, "carol", listen=False, gateways=[c.gw(0)])
        c.advance(12)
        for n in range(8):  # over the rate limit
            alice.hub.publish(meta={"n": n})
        c.advance(12)
        carol.stop()
        c.advance(12)
        bob.link.go_to(1)  # bob moves to node 0
        c.advance(25)
        self.assertEqual(bob.hub.gateway.id, c.gw(0))
        for hub in (alice, bob):
            seen = hub.graph.heads.heads
            self.assertTrue(seen.get(c.gw(0)) and seen.get(c.gw(1)), hub.hub.name)
            self.assertEqual(hub.graph.heads.alarms, [], hub.hub.name)
        heads = [world.graphs[c.gw(i)].heads.latest for i in range(2)]
        self.assertEqual({h.count for h in heads}, {2})  # both commit to alice and bob
        self.assertEqual(heads[0].set, heads[1].set)
