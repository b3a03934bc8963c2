"""What a cluster node needs from the shared store, and nothing more.

``RedisBackend`` (``redis_backend.py``) is the real one; ``tests/fake_cluster.py``
holds the same contract in memory, and ``tests/test_cluster_backend.py`` runs one
suite against both, so the in-memory cluster tests test what Redis does.

Every name given here (node ids, hub ids, channels, keys) is short; the backend puts
the cluster name in front of each (``NAME:...``), so several networks can share one
Redis.  Values are bytes the node signed; the store is trusted to keep them available,
never to keep them intact, so the caller verifies everything it reads.

Every method returns a Deferred.  While the backend is not connected each fails at once
with ``ClusterUnavailable``: nothing queues while Redis is away.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from twisted.internet.defer import Deferred


class ClusterUnavailable(Exception):
    """The shared store cannot be reached now (or answered too slowly)."""


class Backend(Protocol):
    connected: bool

    def start(self, subscriptions: Mapping[str, Sequence[str]],
              on_message: Callable[[str, bytes], None],
              on_state: Callable[[bool], None]) -> None:
        """Connect and keep connecting, with backoff.  ``subscriptions`` maps a group
        name to its channels; each group has a subscriber connection of its own, so a
        busy group (circuit data) being dropped by Redis never costs another
        (presence).  ``on_message(channel, payload)`` gets every message of every
        channel.  ``on_state(True)`` once the commands connection is up and every
        group is subscribed (after AUTH and SELECT, on every reconnect);
        ``on_state(False)`` when any of them is lost."""

    def stop(self) -> Deferred:
        """Disconnect and stop reconnecting."""

    def set_node(self, node: str, record: bytes, ttl: float) -> Deferred:
        """Write ``node``'s heartbeat record, alive for ``ttl`` seconds, add ``node`` to
        the set of nodes ever seen, and keep ``node``'s hub table for ``ttl`` too."""

    def nodes(self) -> Deferred:
        """-> ``dict[node, record]`` of every node whose record has not expired."""

    def put_hubs(self, node: str, entries: Mapping[str, bytes]) -> Deferred:
        """Set some entries of ``node``'s hub table (hub id -> entry)."""

    def drop_hubs(self, node: str, hubs: Sequence[str]) -> Deferred:
        """Remove some entries of ``node``'s hub table."""

    def replace_hubs(self, node: str, entries: Mapping[str, bytes], ttl: float) -> Deferred:
        """Make ``node``'s hub table exactly ``entries`` in one step (no reader sees it
        empty in between), kept for ``ttl`` seconds."""

    def hubs(self, node: str) -> Deferred:
        """-> ``dict[hub, entry]``: ``node``'s hub table (empty when it has none)."""

    def publish(self, channel: str, payload: bytes) -> Deferred:
        """Send ``payload`` to every subscriber of ``channel``; -> how many got it."""

    def take(self, key: str, per_minute: float, burst: int) -> Deferred:
        """Take one token from the cluster-wide bucket ``key`` (``burst`` tokens,
        refilled at ``per_minute``), on the store's clock so that nodes' clocks do not
        matter.  -> True when there was one."""
