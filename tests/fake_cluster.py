"""The cluster backend's contract (``blockhub/gateway/cluster/backend.py``) held in
memory, for in-memory cluster tests; ``tests/test_cluster_backend.py`` runs the same
suite against it and against a real redis-server.

One ``FakeRedis`` is the shared store; each node gets its own ``FakeBackend`` on it.
Messages and state changes are delivered by ``clock.callLater(0, ...)``, never inside
the call that caused them, as a network would.
"""

from twisted.internet.defer import fail, succeed

from blockhub.gateway.cluster.backend import ClusterUnavailable


class FakeRedis:
    def __init__(self, clock):
        self.clock = clock
        self.values: dict[str, tuple[object, float | None]] = {}  # key -> (value, expires)
        self.backends: list[FakeBackend] = []
        self.up = True
        self.commands = 0

    def get(self, key):
        entry = self.values.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires is not None and expires <= self.clock.seconds():
            del self.values[key]
            return None
        return value

    def set(self, key, value, ttl=None):
        self.values[key] = (value, None if ttl is None else self.clock.seconds() + ttl)

    def expire(self, key, ttl):
        value = self.get(key)
        if value is not None:
            self.set(key, value, ttl)

    def stop(self):
        """Redis goes away: every backend loses its connections."""
        self.up = False
        for backend in self.backends:
            backend._lost()

    def start(self):
        self.up = True
        for backend in self.backends:
            backend._reconnect()

    def publish(self, channel, payload) -> int:
        receivers = [b for b in self.backends if b.connected and channel in b._channels]
        for backend in receivers:
            self.clock.callLater(0, backend._deliver, channel, payload)
        return len(receivers)


class FakeBackend:
    def __init__(self, redis: FakeRedis, name: str = "blockhub"):
        self.redis = redis
        self.name = name
        self.connected = False
        self._started = False
        self._channels: set[str] = set()
        self._names: dict[str, str] = {}  # full channel -> short
        redis.backends.append(self)

    # -- connection -----------------------------------------------------------------
    def start(self, subscriptions, on_message, on_state):
        self._on_message, self._on_state = on_message, on_state
        for channels in subscriptions.values():
            for channel in channels:
                self._names[self._key(channel)] = channel
        self._started = True
        self._reconnect()

    def stop(self):
        self._started = False
        self._lost()
        return succeed(None)

    def _reconnect(self):
        if self._started and self.redis.up and not self.connected:
            self.redis.clock.callLater(0, self._up)

    def _up(self):
        if self._started and self.redis.up and not self.connected:
            self.connected = True
            self._channels = set(self._names)
            self._on_state(True)

    def _lost(self):
        if self.connected:
            self.connected = False
            self._channels = set()
            self.redis.clock.callLater(0, self._on_state, False)

    def _deliver(self, channel, payload):
        if self.connected:
            self._on_message(self._names[channel], payload)

    # -- commands -------------------------------------------------------------------
    def _key(self, short: str) -> str:
        return f"{self.name}:{short}"

    def _run(self, what):
        if not self.connected:
            return fail(ClusterUnavailable("the cluster store is not connected"))
        self.redis.commands += 1
        return succeed(what())

    def set_node(self, node, record, ttl):
        def run():
            r = self.redis
            r.set(self._key(f"node:{node}"), record, ttl)
            seen = r.get(self._key("nodes")) or set()
            r.set(self._key("nodes"), seen | {node})
            r.expire(self._key(f"hubs:{node}"), ttl)
        return self._run(run)

    def nodes(self):
        def run():
            r = self.redis
            found = {}
            for node in sorted(r.get(self._key("nodes")) or ()):
                record = r.get(self._key(f"node:{node}"))
                if record is not None:
                    found[node] = record
            return found
        return self._run(run)

    def _table(self, node):
        return dict(self.redis.get(self._key(f"hubs:{node}")) or {})

    def _keep(self, node, table):
        key = self._key(f"hubs:{node}")
        entry = self.redis.values.get(key)
        expires = entry[1] if entry else None
        if table:
            self.redis.values[key] = (table, expires)
        else:
            self.redis.values.pop(key, None)

    def put_hubs(self, node, entries):
        def run():
            table = self._table(node)
            table.update(entries)
            self._keep(node, table)
        return self._run(run)

    def drop_hubs(self, node, hubs):
        def run():
            table = self._table(node)
            for hub in hubs:
                table.pop(hub, None)
            self._keep(node, table)
        return self._run(run)

    def replace_hubs(self, node, entries, ttl):
        def run():
            key = self._key(f"hubs:{node}")
            self.redis.values.pop(key, None)
            if entries:
                self.redis.set(key, dict(entries), ttl)
        return self._run(run)

    def hubs(self, node):
        return self._run(lambda: self._table(node))

    def publish(self, channel, payload):
        return self._run(lambda: self.redis.publish(self._key(channel), payload))

    def take(self, key, per_minute, burst):
        def run():
            r, now = self.redis, self.redis.clock.seconds()
            full = self._key(f"rate:{key}")
            tokens, then = r.get(full) or (float(burst), now)
            tokens = min(float(burst), tokens + (now - then) * per_minute / 60.0)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            r.set(full, (tokens, now), ttl=60.0 * burst / per_minute + 1)
            return allowed
        return self._run(run)
