"""One suite for the cluster backend's contract (``blockhub/gateway/cluster/backend.py``),
run against the in-memory ``FakeBackend`` on a ``Clock`` and against ``RedisBackend`` on
a real redis-server (``tests/redis_server.py``), so that the fake the cluster tests use
behaves as Redis does.  Then what only the real one has: AUTH, timeouts, the pending
bound, error replies, databases and unix sockets; and the ``--cluster`` URL parser.

Without redis-server only ``RedisAvailable`` reports the Redis part, skipped with the
reason (one line in a test run); the fake's half and the URL tests still run.
"""

import sys

from twisted.internet import reactor, task
from twisted.internet.defer import DeferredList, inlineCallbacks, maybeDeferred, succeed
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import runner
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from blockhub.gateway.cluster.backend import ClusterUnavailable
from blockhub.gateway.cluster.redis_backend import RedisBackend
from blockhub.gateway.cluster.redis_url import parse_redis_url
from tests.fake_cluster import FakeBackend, FakeRedis
from tests.redis_server import start_redis, unavailable


class Recorder:
    """What a started backend told its node."""

    def __init__(self):
        self.messages: list[tuple[str, bytes]] = []
        self.states: list[bool] = []

    def on_message(self, channel, payload):
        self.messages.append((channel, payload))

    def on_state(self, up):
        self.states.append(up)


GROUPS = {"presence": ["presence"], "data": ["circuit:a", "circuit:b"]}


class Helpers:
    """A subclass gives ``backend(name, **options)`` (a new one, not started),
    ``now()`` and ``wait(seconds)``."""

    timeout = 10.0

    @inlineCallbacks
    def until(self, check, what="the condition", timeout=None):
        """Poll ``check`` (a value or a Deferred) until it is true, with a deadline."""
        deadline = self.now() + (timeout or self.timeout)
        while True:
            value = yield maybeDeferred(check)
            if value:
                return value
            if self.now() > deadline:
                self.fail(f"{what} did not happen in {timeout or self.timeout} s")
            yield self.wait(0.02)

    @inlineCallbacks
    def started(self, name="blockhub", subscriptions=GROUPS, **kw):
        backend = self.backend(name, **kw)
        seen = Recorder()
        backend.start(subscriptions, seen.on_message, seen.on_state)
        yield self.until(lambda: backend.connected, f"{name} connecting")
        return backend, seen

    def assert_unavailable(self, backend):
        calls = [backend.set_node("n", b"r", 5), backend.nodes(),
                 backend.put_hubs("n", {"h": b"e"}), backend.put_hubs("n", {}),
                 backend.drop_hubs("n", ["h"]), backend.replace_hubs("n", {"h": b"e"}, 5),
                 backend.hubs("n"), backend.publish("presence", b"x"),
                 backend.take("k", 60, 1)]
        for d in calls:
            # At once: nothing queues while the store is away.
            self.assertIsInstance(self.failureResultOf(d).value, ClusterUnavailable)


class Contract(Helpers):
    """The contract; a subclass also gives ``store_down()`` and ``store_up()``."""

    def test_unavailable_before_start(self):
        self.assert_unavailable(self.backend("blockhub"))

    @inlineCallbacks
    def test_node_records_expire(self):
        b, _ = yield self.started()
        yield b.set_node("n1", b"record 1", 0.3)
        yield b.set_node("n2", b"record 2", 60)
        self.assertEqual((yield b.nodes()), {"n1": b"record 1", "n2": b"record 2"})
        yield self.until(lambda: b.nodes().addCallback(lambda n: n == {"n2": b"record 2"}),
                         "n1's record expiring")
        yield b.set_node("n2", b"record 2 again", 60)
        self.assertEqual((yield b.nodes()), {"n2": b"record 2 again"})

    @inlineCallbacks
    def test_hub_table(self):
        b, _ = yield self.started()
        self.assertEqual((yield b.hubs("n1")), {})
        yield b.put_hubs("n1", {"h1": b"e1", "h2": b"e2"})
        yield b.put_hubs("n1", {"h2": b"e2'", "h3": b"\x00\xff"})
        yield b.put_hubs("n1", {})
        self.assertEqual((yield b.hubs("n1")), {"h1": b"e1", "h2": b"e2'", "h3": b"\x00\xff"})
        yield b.drop_hubs("n1", ["h1", "nobody"])
        yield b.drop_hubs("n1", [])
        self.assertEqual((yield b.hubs("n1")), {"h2": b"e2'", "h3": b"\x00\xff"})
        yield b.drop_hubs("n1", ["h2", "h3"])
        self.assertEqual((yield b.hubs("n1")), {})
        self.assertEqual((yield b.hubs("n2")), {})

    @inlineCallbacks
    def test_heartbeat_keeps_the_hub_table_for_its_ttl(self):
        b, _ = yield self.started()
        yield b.put_hubs("n1", {"h1": b"e1"})
        yield b.set_node("n1", b"record", 0.3)
        self.assertEqual((yield b.hubs("n1")), {"h1": b"e1"})
        yield self.until(lambda: b.hubs("n1").addCallback(lambda t: t == {}),
                         "the hub table expiring with the record")

    @inlineCallbacks
    def test_replace_hubs(self):
        b, _ = yield self.started()
        yield b.put_hubs("n1", {"old": b"o"})
        yield b.replace_hubs("n1", {"h1": b"e1", "h2": b"e2"}, 60)
        self.assertEqual((yield b.hubs("n1")), {"h1": b"e1", "h2": b"e2"})
        yield b.replace_hubs("n1", {}, 60)
        self.assertEqual((yield b.hubs("n1")), {})
        yield b.replace_hubs("n1", {"h3": b"e3"}, 0.3)
        yield b.put_hubs("n1", {"h4": b"e4"})  # keeps the table's expiry
        self.assertEqual((yield b.hubs("n1")), {"h3": b"e3", "h4": b"e4"})
        yield self.until(lambda: b.hubs("n1").addCallback(lambda t: t == {}),
                         "the replaced table expiring")

    @inlineCallbacks
    def test_replace_is_atomic(self):
        """A reader on another connection sees the old table or the new, never an
        empty or a partial one."""
        writer, _ = yield self.started("blockhub")
        reader, _ = yield self.started("blockhub")
        tables = [{f"a{i}": b"a" for i in range(20)}, {f"b{i}": b"b" for i in range(20)}]
        yield writer.replace_hubs("n1", tables[0], 60)
        # All in flight at once, on two connections.
        writes = [writer.replace_hubs("n1", tables[i % 2], 60) for i in range(1, 41)]
        reads = [reader.hubs("n1") for _ in range(40)]
        yield DeferredList(writes, fireOnOneErrback=True)
        for read in reads:
            self.assertIn((yield read), tables)

    @inlineCallbacks
    def test_publish_reaches_the_group_subscribers(self):
        a, seen_a = yield self.started(subscriptions=GROUPS)
        b, seen_b = yield self.started(subscriptions={"presence": ["presence"]})
        self.assertEqual((yield a.publish("presence", b"hello")), 2)
        self.assertEqual((yield b.publish("circuit:b", b"\x00data")), 1)
        self.assertEqual((yield b.publish("nobody", b"lost")), 0)
        yield self.until(lambda: len(seen_a.messages) == 2 and len(seen_b.messages) == 1,
                         "the messages arriving")
        yield self.wait(0.05)
        self.assertEqual(sorted(seen_a.messages),
                         [("circuit:b", b"\x00data"), ("presence", b"hello")])
        self.assertEqual(seen_b.messages, [("presence", b"hello")])

    @inlineCallbacks
    def test_cluster_names_do_not_meet(self):
        one, seen_one = yield self.started("one")
        two, seen_two = yield self.started("two")
        self.assertEqual((yield one.publish("presence", b"one's")), 1)
        yield one.set_node("n1", b"one's node", 60)
        yield one.put_hubs("n1", {"h": b"one's hub"})
        self.assertEqual((yield one.take("k", 1, 1)), True)
        self.assertEqual((yield two.nodes()), {})
        self.assertEqual((yield two.hubs("n1")), {})
        self.assertEqual((yield two.take("k", 1, 1)), True)
        self.assertEqual((yield one.take("k", 1, 1)), False)
        yield self.until(lambda: seen_one.messages, "one's message")
        yield self.wait(0.05)
        self.assertEqual(seen_two.messages, [])

    @inlineCallbacks
    def test_take_burst_then_refusal_then_refill(self):
        b, _ = yield self.started()
        taken = []
        for _ in range(4):
            taken.append((yield b.take("hello", 1.0, 3)))
        self.assertEqual(taken, [True, True, True, False])
        # 600 a minute: a token every 0.1 s.
        self.assertEqual((yield b.take("fast", 600.0, 1)), True)
        self.assertEqual((yield b.take("fast", 600.0, 1)), False)
        yield self.until(lambda: b.take("fast", 600.0, 1), "a token coming back")
        # None a minute: the burst, and never again.
        taken = []
        for _ in range(3):
            taken.append((yield b.take("never", 0.0, 2)))
        self.assertEqual(taken, [True, True, False])

    @inlineCallbacks
    def test_store_going_away_and_coming_back(self):
        a, seen_a = yield self.started()
        b, seen_b = yield self.started()
        self.assertEqual(seen_a.states, [True])
        self.store_down()
        yield self.until(lambda: not a.connected and not b.connected, "losing the store")
        yield self.until(lambda: seen_a.states == [True, False], "on_state(False)")
        self.assert_unavailable(a)
        yield self.store_up()
        yield self.until(lambda: a.connected and b.connected, "reconnecting")
        self.assertEqual(seen_a.states, [True, False, True])
        # Subscribed again: a publish after the restart arrives.
        yield self.until(lambda: a.publish("circuit:a", b"again").addCallback(
            lambda n: n == 2), "both subscribed again")
        yield self.until(lambda: ("circuit:a", b"again") in seen_b.messages,
                         "the message after the restart")

    @inlineCallbacks
    def test_stop(self):
        b, seen = yield self.started()
        yield b.stop()
        yield self.wait(0.05)
        self.assertFalse(b.connected)
        self.assertEqual(seen.states, [True, False])
        self.assert_unavailable(b)


class FakeBackendContract(Contract, TestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.redis = FakeRedis(self.clock)

    def backend(self, name, **kw):
        return FakeBackend(self.redis, name)

    def now(self):
        return self.clock.seconds()

    def wait(self, seconds):
        self.clock.advance(seconds)
        return succeed(None)

    def store_down(self):
        self.redis.stop()

    def store_up(self):
        self.redis.start()
        return succeed(None)


class RealRedis:
    """A test case on a real redis-server of its own (``self.server``)."""

    needs_redis = True
    password: str | None = None

    def setUp(self):
        self.server = start_redis(self, self.password)

    def backend(self, name, password=..., url=None, **kw):
        kw.setdefault("base_delay", 0.05)
        kw.setdefault("max_delay", 0.3)
        if password is ...:  # the server's
            password = None if self.password is None else self.password.encode()
        backend = RedisBackend(reactor, parse_redis_url(url or self.server.url), password,
                               name, **kw)
        self.addCleanup(backend.stop)
        return backend

    def now(self):
        return reactor.seconds()

    def wait(self, seconds):
        return task.deferLater(reactor, seconds, lambda: None)

    def store_down(self):
        self.server.stop()

    def store_up(self):
        self.server.start()
        return succeed(None)


class RedisBackendContract(RealRedis, Contract, TestCase):
    pass


class RedisBackendWithPassword(RealRedis, Helpers, TestCase):
    password = "correct horse battery"

    def setUp(self):
        super().setUp()
        self.events: list[dict] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    @inlineCallbacks
    def test_auth_on_every_connection(self):
        """AUTH on the commands connection and on each subscriber: a publish is
        received, on every group."""
        b, seen = yield self.started()
        self.assertEqual((yield b.publish("presence", b"p")), 1)
        self.assertEqual((yield b.publish("circuit:b", b"c")), 1)
        yield self.until(lambda: len(seen.messages) == 2, "both messages")

    def never_up(self, password):
        b = self.backend("blockhub", password=password)
        seen = Recorder()
        b.start(GROUPS, seen.on_message, seen.on_state)
        return b, seen

    def assert_secret_not_logged(self, *secrets):
        for event in self.events:
            text = formatEvent(event) + repr(event)
            for secret in secrets:
                self.assertNotIn(secret, text)

    @inlineCallbacks
    def test_wrong_password(self):
        b, seen = self.never_up(b"not the password")

        def refused():
            return [e for e in self.events if e.get("log_level") is not None
                    and e["log_level"].name == "error" and "refused" in formatEvent(e)]
        yield self.until(lambda: len(refused()) >= 2, "the refusal logged")
        self.assertIn("WRONGPASS", formatEvent(refused()[0]))
        yield self.wait(0.2)
        self.assertFalse(b.connected)
        self.assertEqual(seen.states, [])
        self.assert_unavailable(b)
        self.assert_secret_not_logged("not the password", self.password)

    @inlineCallbacks
    def test_no_password(self):
        b, seen = self.never_up(None)
        # By every connection: SELECT and each group's SUBSCRIBE are refused.
        yield self.until(lambda: len({e.get("link") for e in self.events
                                      if "NOAUTH" in formatEvent(e)}) == 3,
                         "the refusals logged")
        self.assertEqual(seen.states, [])
        self.assert_secret_not_logged(self.password)


class RedisBackendOnly(RealRedis, Helpers, TestCase):
    """What the fake has no notion of."""

    @inlineCallbacks
    def test_keys_and_channels_carry_the_name(self):
        b, _ = yield self.started("net1")
        yield b.set_node("n1", b"r", 60)
        yield b.put_hubs("n1", {"h": b"e"})
        yield b.take("k", 60, 1)
        keys = sorted(self.server.command("KEYS", "*"))
        self.assertEqual(keys, [b"net1:hubs:n1", b"net1:node:n1", b"net1:nodes",
                                b"net1:rate:k"])
        channels = sorted(self.server.command("PUBSUB", "CHANNELS", "*"))
        self.assertEqual(channels, [b"net1:circuit:a", b"net1:circuit:b", b"net1:presence"])
        # The record's TTL is in milliseconds, as given.
        self.assertTrue(59000 < self.server.command("PTTL", "net1:node:n1") <= 60000)

    @inlineCallbacks
    def test_error_reply_is_unavailable_not_a_crash(self):
        b, seen = yield self.started("net")
        self.server.command("SET", "net:hubs:n1", "not a hash")
        failure = yield self.assertFailure(b.hubs("n1"), ClusterUnavailable)
        self.assertIn("WRONGTYPE", str(failure))
        self.assertTrue(b.connected)
        self.assertEqual((yield b.nodes()), {})

    @inlineCallbacks
    def test_script_cache_flushed(self):
        b, _ = yield self.started()
        self.assertTrue((yield b.take("k", 60, 5)))
        self.server.command("SCRIPT", "FLUSH")
        self.assertTrue((yield b.take("k", 60, 5)))

    @inlineCallbacks
    def test_slow_command_times_out_and_reconnects(self):
        b, seen = yield self.started(command_timeout=0.3)
        self.server.pause()
        try:
            started = reactor.seconds()
            yield self.assertFailure(b.nodes(), ClusterUnavailable)
            self.assertLess(reactor.seconds() - started, 2.0)
            yield self.until(lambda: not b.connected, "dropping the connection")
        finally:
            self.server.resume()
        yield self.until(lambda: b.connected, "reconnecting")
        self.assertEqual(seen.states, [True, False, True])
        self.assertEqual((yield b.nodes()), {})

    @inlineCallbacks
    def test_large_values(self):
        """Circuit data and big hub tables pass whole (txredisapi reads them in parts)."""
        b, seen = yield self.started()
        big = bytes(range(256)) * 1024  # 256 KiB, every byte value
        yield b.put_hubs("n1", {f"h{i}": big[i:] for i in range(8)})
        table = yield b.hubs("n1")
        self.assertEqual(table, {f"h{i}": big[i:] for i in range(8)})
        self.assertEqual((yield b.publish("circuit:a", big)), 1)
        yield self.until(lambda: seen.messages, "the big message")
        self.assertEqual(seen.messages, [("circuit:a", big)])

    @inlineCallbacks
    def test_pending_bound(self):
        b, _ = yield self.started(max_pending=2)
        first, second, third = b.nodes(), b.nodes(), b.nodes()
        self.assertIsInstance(self.failureResultOf(third).value, ClusterUnavailable)
        self.assertEqual((yield first), {})
        self.assertEqual((yield second), {})
        self.assertEqual((yield b.nodes()), {})

    @inlineCallbacks
    def test_database_and_unix_socket(self):
        b, seen = yield self.started(url=f"unix://{self.server.unix_path}?db=3")
        yield b.set_node("n1", b"r", 60)
        self.assertEqual(self.server.command("KEYS", "*"), [])
        self.assertEqual(sorted(self.server.command("KEYS", "*", db=3)),
                         [b"blockhub:node:n1", b"blockhub:nodes"])
        c, _ = yield self.started(url=f"{self.server.url}/3")
        self.assertEqual((yield c.nodes()), {"n1": b"r"})
        self.assertEqual((yield c.publish("presence", b"x")), 2)  # db does not split pubsub
        yield self.until(lambda: seen.messages == [("presence", b"x")], "the message")


class RedisAvailable(SynchronousTestCase):
    """The Redis part's one line in a test run when it cannot run here."""

    def test_redis_server_is_here(self):
        reason = unavailable()
        if reason:
            raise SkipTest(reason)


class RedisURLs(SynchronousTestCase):
    def test_tcp(self):
        u = parse_redis_url("redis://127.0.0.1:7000/2")
        self.assertEqual((u.endpoint, u.db), ("tcp:host=127.0.0.1:port=7000", 2))
        u = parse_redis_url("redis://redis.example")
        self.assertEqual((u.endpoint, u.db), ("tcp:host=redis.example:port=6379", 0))
        self.assertEqual(parse_redis_url("redis://h:1/").db, 0)

    def test_ipv6_is_escaped(self):
        u = parse_redis_url("redis://[::1]:7000/1")
        self.assertEqual((u.endpoint, u.db), ("tcp:host=\\:\\:1:port=7000", 1))
        from twisted.internet.endpoints import clientFromString
        endpoint = clientFromString(reactor, u.endpoint)
        self.assertEqual((endpoint._host, endpoint._port), ("::1", 7000))

    def test_unix(self):
        u = parse_redis_url("unix:///run/redis/redis.sock")
        self.assertEqual((u.endpoint, u.db), ("unix:path=/run/redis/redis.sock", 0))
        self.assertEqual(parse_redis_url("unix:///r.sock?db=4").db, 4)

    def test_refused(self):
        for url in ["x", "", "http://h", "rediss://h", "redis://", "redis://h:99999",
                    "redis://h:port", "redis://h/x", "redis://h/-1", "redis://h?db=1",
                    "unix://host/r.sock", "unix:///r.sock?db=x", "unix:///r.sock?x=1",
                    "unix:///", "redis://[::1:7000"]:
            with self.assertRaises(ValueError, msg=url) as caught:
                parse_redis_url(url)
            self.assertEqual(len(str(caught.exception).splitlines()), 1)
            self.assertIn("--cluster", str(caught.exception))
        self.assertEqual(
            str(self.assertRaises(ValueError, parse_redis_url, "x")),
            "--cluster wants redis://HOST:PORT[/DB] or unix:///PATH, not 'x'")

    def test_no_password_in_the_url(self):
        for url in ["redis://:pw@h", "redis://user:pw@h:6379/0", "redis://:p:w@h"]:
            message = str(self.assertRaises(ValueError, parse_redis_url, url))
            self.assertIn("--cluster-password-file", message)
            self.assertNotIn("pw", message.replace("password", ""))


def testSuite():
    """Every class here, but without redis-server only ``RedisAvailable`` stands for the
    Redis part (one SKIPPED line, not one per test)."""
    loader = runner.TestLoader()
    suite = loader.suiteFactory()
    missing = unavailable() is not None
    for case in loader.findTestClasses(sys.modules[__name__]):
        if not (missing and getattr(case, "needs_redis", False)):
            suite.addTest(loader.loadClass(case))
    return suite

