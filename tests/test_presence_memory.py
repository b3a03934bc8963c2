"""Gateway and hubs talking over real TLS in memory: admission, presence, faults."""

from twisted.trial.unittest import SynchronousTestCase

from blockhub.gateway.admission import Admission
from blockhub.hub.gateway_pins import gateway_rows
from blockhub.hubinfo import make_hubinfo
from blockhub.wire import messages
from tests.memory import World, new_identity


def ids(hub):
    return sorted(h["id"] for h in hub.hubs())


class PresenceTests(SynchronousTestCase):
    def test_hubs_see_each_other(self):
        world = World()
        a, b, c = (world.add_hub(n) for n in "abc")
        for hub in (a, b, c):
            self.assertEqual(hub.link.state, "online")
            self.assertEqual(len(hub.hubs()), 2)
        self.assertEqual(ids(a), sorted([b.identity.id, c.identity.id]))
        self.assertEqual({h["name"] for h in a.hubs()}, {"b", "c"})
        self.assertEqual(len(world.gateway.presence.hubs), 3)
        self.assertEqual(a.observed.split(":")[0], "127.0.0.1")

    def test_departure_is_announced(self):
        world = World()
        a, b = world.add_hub("a"), world.add_hub("b")
        b.link.stop()
        world.flush()
        self.assertEqual(a.hubs(), [])
        self.assertEqual(world.gateway.counters.left, 1)

    def test_update_reaches_others(self):
        world = World()
        a, b = world.add_hub("a"), world.add_hub("b")
        world.clock.advance(1)
        a.publish(name="renamed")
        world.flush()
        self.assertEqual(b.hubs()[0]["name"], "renamed")

    def test_spoofed_gateway_is_refused_before_the_hub_speaks(self):
        world = World()
        hub = world.add_hub("a", pin=new_identity().id)
        self.assertNotEqual(hub.link.state, "online")
        self.assertEqual(world.gateway.counters.joined, 0)
        self.assertEqual(world.gateway.presence.hubs, {})
        error = hub.link.last_error[hub.link.gateways[0].id]
        self.assertIn("does not hold the pinned key", error)
        self.assertIn(world.identity.id, error)

    def test_a_hub_that_never_joins_is_dropped(self):
        world = World(idle_timeout=60)
        hub = world.add_hub("a", start=False)
        hub.send_join = lambda proto, entry, hello: None  # completes TLS, then says nothing
        hub.link.start()
        world.flush()
        self.assertEqual(hub.link.state, "authenticating")
        world.clock.advance(10)
        world.flush()
        self.assertNotEqual(hub.link.state, "authenticating")
        self.assertIn("no join within 10s", hub.link.last_error[world.identity.id])

    def test_lost_gateway_leaves_a_reason_and_no_stale_address(self):
        world = World()
        a = world.add_hub("a")
        world.gateway.shutdown("maintenance")
        world.flush()
        self.assertIn("maintenance", gateway_rows(a.link)[0]["last_error"])
        self.assertIsNone(a.status()["observed"])

    def test_allow_list(self):
        listed = new_identity()
        world = World(Admission(allow_keys=frozenset({listed.id})))
        ok = world.add_hub("ok", identity=listed)
        bad = world.add_hub("bad")
        self.assertEqual(ok.link.state, "online")
        self.assertNotEqual(bad.link.state, "online")
        self.assertIn("allow list", bad.link.last_error[world.identity.id])
        self.assertEqual(world.gateway.counters.refused, 1)

    def test_network_key(self):
        key = b"k" * 32
        world = World(Admission(mode="open", network_key=key))
        good = world.add_hub("good", network_key=key)
        wrong = world.add_hub("wrong", network_key=b"x" * 32)
        none = world.add_hub("none")
        self.assertEqual(good.link.state, "online")
        for hub in (wrong, none):
            self.assertIn("network key", hub.link.last_error[world.identity.id])
        self.assertEqual(list(world.gateway.presence.hubs), [good.identity.id])

    def test_open_mode_shares_endpoints_private_does_not(self):
        key = b"k" * 32
        world = World(Admission(mode="open", network_key=key))
        a = world.add_hub("a", network_key=key, listen_port=7001)
        b = world.add_hub("b", network_key=key)
        self.assertEqual(b.hubs()[0]["endpoint"], "127.0.0.1:7001")
        private = World()
        private.add_hub("a", listen_port=7001)
        other = private.add_hub("b")
        self.assertIsNone(other.hubs()[0]["endpoint"])
        self.assertEqual(a.link.state, "online")

    def test_open_mode_needs_restriction(self):
        from blockhub.errors import UserError
        self.assertRaises(UserError, Admission, mode="open")

    def test_private_gateway_refuses_hubinfo_with_endpoint(self):
        world = World()
        a = world.add_hub("a")
        b = world.add_hub("b")
        info = make_hubinfo(a.identity, "a", 10**13, endpoint="127.0.0.1:9")
        a.link.proto.send("update", hubinfo=info.to_json())
        world.flush()
        self.assertEqual(b.hubs(), [])
        self.assertNotEqual(a.link.state, "online")

    def test_hubinfo_of_another_hub_is_refused(self):
        world = World()
        a = world.add_hub("a")
        forged = make_hubinfo(new_identity(), "x", 10**13)
        a.link.proto.send("update", hubinfo=forged.to_json())
        world.flush()
        self.assertNotEqual(a.link.state, "online")

    def test_junk_closes_only_that_connection(self):
        world = World()
        a, b = world.add_hub("a"), world.add_hub("b")
        a.link.proto.transport.write(b"\xff\xff\xff\xff junk")
        world.flush()
        self.assertNotEqual(a.link.state, "online")
        self.assertEqual(b.link.state, "online")
        self.assertEqual(len(world.gateway.presence.hubs), 1)

    def test_oversized_frame_closes(self):
        world = World()
        a = world.add_hub("a")
        a.link.proto.transport.write(b"\x10\x00\x00\x00")
        world.flush()
        self.assertNotEqual(a.link.state, "online")

    def test_join_twice_is_a_protocol_error(self):
        world = World()
        a = world.add_hub("a")
        a.link.proto.send("join", hubinfo=a.hubinfo().to_json(), proof=None)
        world.flush()
        self.assertNotEqual(a.link.state, "online")

    def test_idle_peer_is_dropped_and_announced(self):
        world = World(idle_timeout=30)
        a = world.add_hub("a")
        world.add_hub("b")
        # b goes silent: nothing it writes reaches the gateway any more.
        world.pumps[1].clientIO.write = lambda data: None
        steps = 0
        while world.gateway.counters.left == 0 and steps < 10:
            world.clock.advance(5)
            world.flush()
            steps += 1
        self.assertEqual(world.gateway.counters.left, 1)
        self.assertTrue(25 <= steps * 5 <= 35, steps)
        self.assertEqual(a.hubs(), [])
        self.assertEqual(a.link.state, "online")

    def test_keepalive_keeps_a_quiet_link_up(self):
        world = World(idle_timeout=30)
        a = world.add_hub("a")
        for _ in range(20):
            world.clock.advance(5)
            world.flush()
        self.assertEqual(a.link.state, "online")

    def test_same_hub_reconnecting_replaces_old_connection(self):
        world = World()
        ident = new_identity()
        first = world.add_hub("a", identity=ident)
        second = world.add_hub("a2", identity=ident)
        self.assertEqual(second.link.state, "online")
        self.assertEqual(world.gateway.counters.replaced, 1)
        self.assertEqual(len(world.gateway.presence.hubs), 1)
        self.assertNotEqual(first.link.state, "online")

    def test_shutdown_notice(self):
        world = World()
        a = world.add_hub("a")
        world.gateway.shutdown()
        world.flush()
        self.assertEqual(a.link.state, "backing_off")

    def test_message_kinds_a_gateway_may_not_send(self):
        world = World()
        a = world.add_hub("a")
        conn = world.gateway.presence.connection_for(a.identity.id)
        conn.transport.write(messages.encode(messages.make("ack", seq=1)))
        world.flush()
        self.assertNotEqual(a.link.state, "online")
