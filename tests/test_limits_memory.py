"""Each limit, hit on purpose in memory: a clear refusal, and everyone else unaffected."""

from twisted.trial.unittest import SynchronousTestCase

from blockhub.hub.store import StoreError
from blockhub.limits import DEFAULT, Limits, limits_from_options
from blockhub.ratelimit import RateLimiter
from tests.memory import World


class LimitsTests(SynchronousTestCase):
    def test_options_override_defaults(self):
        limits = limits_from_options({"max-hubs": "5", "idle-timeout": 9.0, "max-frame": None})
        self.assertEqual((limits.max_hubs, limits.idle_timeout, limits.max_frame),
                         (5, 9.0, DEFAULT.max_frame))

    def test_rate_limiter(self):
        limiter = RateLimiter(per_minute=60, burst=2)
        self.assertEqual([limiter.allow("a", 0) for _ in range(3)], [True, True, False])
        self.assertTrue(limiter.allow("b", 0))
        self.assertTrue(limiter.allow("a", 1.0))
        self.assertFalse(limiter.allow("a", 1.0))

    def test_rate_limiter_forgets_full_buckets(self):
        """Memory is bounded by the busy keys: refilled buckets go once there are many,
        and a busy one keeps its count."""
        limiter = RateLimiter(per_minute=60, burst=2)
        limiter.allow("busy", 0)
        limiter.allow("busy", 0)
        for n in range(10_000):
            limiter.allow(f"k{n}", 0)
        self.assertEqual(len(limiter), 10_001)
        limiter.allow("new", 1.0)  # every bucket of time 0 has refilled, but busy's
        self.assertEqual(len(limiter), 2)
        self.assertEqual([limiter.allow("busy", 1.0) for _ in range(2)], [True, False])

    def test_gateway_full(self):
        world = World(limits=Limits(max_hubs=2))
        hubs = [world.add_hub(n) for n in "abc"]
        self.assertEqual([h.link.state for h in hubs[:2]], ["online", "online"])
        self.assertNotEqual(hubs[2].link.state, "online")
        self.assertIn("full", hubs[2].link.last_error[world.identity.id])
        self.assertEqual(world.gateway.counters.refused_full, 1)

    def test_unauthenticated_per_address(self):
        world = World(limits=Limits(unauthenticated_per_ip=1))
        first = world.add_hub("a", start=False)
        first.send_join = lambda proto, entry, hello: None  # stays unauthenticated
        first.link.start()
        second = world.add_hub("b")
        world.flush()
        self.assertNotEqual(second.link.state, "online")
        self.assertEqual(world.gateway.counters.refused_unauthenticated, 1)
        world.clock.advance(10)  # the first one misses its join deadline and is released
        world.flush()
        first.link.stop()
        for _ in range(8):
            world.clock.advance(5)
            world.flush()
        self.assertEqual(second.link.state, "online")

    def test_hubinfo_update_rate(self):
        world = World(limits=Limits(updates_per_minute=1, updates_burst=2))
        a, b = world.add_hub("a"), world.add_hub("b")
        for n in range(4):
            world.clock.advance(0.001)
            a.publish(name=f"a{n}")
        world.flush()
        self.assertEqual(b.hubs()[0]["name"], "a1")
        self.assertEqual(world.gateway.counters.updates_refused, 2)
        self.assertEqual(a.link.state, "online")

    def test_relay_rate(self):
        world = World(limits=Limits(relay_per_minute=1, relay_burst=1))
        a, b = world.full_hub(self, "a"), world.full_hub(self, "b")
        for peer in range(3):
            a.operator.connect(b.id) if peer == 0 else a.link.proto.send(
                "relay", to=b.id, kind="request", sealed="AAAA")
        world.flush()
        self.assertEqual(world.gateway.counters.relayed, 1)
        self.assertEqual(world.gateway.counters.relay_refused, 2)

    def test_pending_limit(self):
        # A full list drops its oldest request from a stranger to make room (see
        # tests/test_handshake_security.py); a list full of requests from hubs b knows
        # (here: one b asked itself) refuses the newcomer instead.
        world = World(limits=Limits(max_pending=1))
        b = world.full_hub(self, "b")
        askers = [world.full_hub(self, n) for n in ("a", "c")]
        b.operator.connect(askers[0].id)
        world.flush()
        for asker in askers:
            asker.operator.connect(b.id)
            world.flush()
        self.assertEqual(len(b.operator.pending()), 1)
        self.assertEqual(b.handshakes.refusals["TooManyPending"], 1)

    def test_inflight_window_keeps_order_and_delivers_all(self):
        world = World(limits=Limits(max_inflight=3))
        a, b = world.full_hub(self, "a"), world.full_hub(self, "b")
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id)
        world.flush()
        proto = a.peers.connections[b.id]
        sent = []
        original = proto.send

        def spy(kind, /, **fields):
            if kind == "message":
                sent.append(fields["seq"])
                inflight = len([s for s in sent if s > acked()])
                self.assertLessEqual(inflight, 3)
            original(kind, **fields)

        def acked():  # what b acknowledged (a records it in its outbox a turn later)
            return proto.acked_seq

        proto.send = spy
        for n in range(10):
            a.peers.send(b.id, f"m{n}")
        world.flush()
        self.assertEqual([m["text"] for m in b.store.messages()], [f"m{n}" for n in range(10)])
        self.assertEqual(a.store.unacked(b.id), [])

    def test_disk_refusing_a_write_loses_nothing(self):
        world = World()
        a, b = world.full_hub(self, "a"), world.full_hub(self, "b")
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id)
        world.flush()
        real = b.store.store_received_many

        def broken(*args):
            raise StoreError("database error: disk I/O error")

        b.store.store_received_many = broken
        a.peers.send(b.id, "precious")
        world.flush()
        self.assertEqual(b.peers.storage_errors, 1)
        self.assertEqual(len(a.store.unacked(b.id)), 1)  # not acknowledged, still held
        b.store.store_received_many = real
        world.clock.advance(5)  # b dialed, so b reconnects; a resends
        world.flush()
        self.assertEqual([m["text"] for m in b.store.messages()], ["precious"])
        self.assertEqual(a.store.unacked(b.id), [])

    def test_tls_handshake_timeout(self):
        world = World(limits=Limits(tls_timeout=5))
        hub = world.add_hub("a", start=False)
        hub.link.start()  # the pump is never run: TLS cannot finish
        server = world.pumps[0].server
        world.clock.advance(5)
        world.flush()
        self.assertEqual(world.gateway.counters.tls_timeouts, 1)
        self.assertIsNotNone(server)

