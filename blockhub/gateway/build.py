"""The gateway's object graph, built in one place.

Every object gets its collaborators in its constructor: one ``Counters``, the presence
table, the relay, the relay circuits, the decisions (``Gateway``) with its count of
unauthenticated connections, and a factory whose every protocol is built with its own
session machine.
The twistd service, the in-memory test world and the fuzzer all build a gateway here.
"""

import os
from collections.abc import Callable

import attrs

from blockhub.gateway.admission import Admission
from blockhub.gateway.bans import Bans
from blockhub.gateway.circuits import Circuits
from blockhub.gateway.cluster.bridge import CircuitBridge
from blockhub.gateway.cluster.node import ClusterNode
from blockhub.gateway.counters import Counters
from blockhub.gateway.gateway import Gateway
from blockhub.gateway.head_chain import DEFAULT_INTERVAL as DEFAULT_HEAD_INTERVAL
from blockhub.gateway.head_chain import HeadChain
from blockhub.gateway.head_file import HeadFile
from blockhub.gateway.keys import GatewayKeys
from blockhub.gateway.presence import Presence
from blockhub.gateway.protocol import GatewayFactory, GatewayProtocol
from blockhub.gateway.relay import Relay
from blockhub.gateway.session import GatewaySession
from blockhub.identity import Identity
from blockhub.limits import DEFAULT, Limits
from blockhub.net.opening import Openings
from blockhub.net.tls import ServerCreator, SlicedTLSFactory
from blockhub.wire import features


@attrs.frozen
class ClusterSettings:
    """What a node needs to join a cluster (docs/cluster.md); the backend is its
    Redis (or, in tests, the in-memory fake of the same contract)."""
    name: str
    keys: frozenset[str]        # the ids of the cluster's nodes (--cluster-keys)
    backend: object
    dead_after: float
    record: Callable[[], dict | None] = lambda: None  # our signed gateway record


@attrs.frozen
class GatewayGraph:
    gateway: Gateway
    presence: Presence
    relay: Relay
    circuits: Circuits
    counters: Counters
    factory: GatewayFactory           # plain protocols, each with its session
    tls_factory: SlicedTLSFactory  # what the listener serves: TLS around ``factory``
    cluster: ClusterNode | None = None
    bans: Bans | None = None
    heads: HeadChain | None = None  # started by the service, like the cluster


def _node(identity, cluster: ClusterSettings, clock, limits, presence, circuits,
          deliver, bans) -> tuple[CircuitBridge, ClusterNode]:
    """The node's part in its cluster: presence and relays (``ClusterNode``) and
    relay circuits to other nodes' hubs (``CircuitBridge``)."""
    bridge = CircuitBridge(identity, cluster.keys, cluster.backend, clock, circuits,
                           presence)
    node = ClusterNode(identity, cluster.name, cluster.keys, cluster.backend, clock,
                       presence, deliver, limits, cluster.dead_after, cluster.record, bridge,
                       bans)
    return bridge, node


def _factories(identity, gateway, presence, relay, circuits, clock, limits, counters,
               random) -> tuple[GatewayFactory, SlicedTLSFactory]:
    """The listener's factories: each protocol with its own session machine, bare and
    under TLS."""
    def make_session(conn) -> GatewaySession:
        return GatewaySession(conn, gateway, presence, relay, clock, limits.join_timeout,
                              random, circuits=circuits)

    def make_protocol() -> GatewayProtocol:
        return GatewayProtocol(make_session, counters, clock=clock, limits=limits)

    def certificate(server_name: str | None):
        """After a rotation, the old key's certificate to hubs that name it."""
        return gateway.keys.for_server_name(server_name, clock.seconds())

    factory = GatewayFactory(make_protocol)
    # Hubs' TLS goes through OpenSSL 4 KiB at a time (net/tls.py SLICE): each idle hub
    # then keeps about 14 KiB less of the gateway's memory, for some 15 % more CPU in a
    # join storm's welcome lists (issue 20).
    return factory, SlicedTLSFactory(ServerCreator(identity, certificate), False, factory,
                                     clock=clock)


def build_gateway(identity: Identity, admission: Admission, clock, limits: Limits = DEFAULT,
                  random=os.urandom, spoken: tuple[str, ...] | None = features.SPOKEN,
                  cluster: ClusterSettings | None = None, bans_path=None,
                  observe_fanout: Callable[[float], None] | None = None,
                  heads_path=None, head_interval: float = DEFAULT_HEAD_INTERVAL,
                  keys: GatewayKeys | None = None) -> GatewayGraph:
    """``clock``: the reactor or a test's Clock; ``random(n)`` makes challenges;
    ``spoken``: the features we list (tests play older gateways); ``cluster``: we are
    a node (not started here); ``bans_path``: the bans' file; ``observe_fanout``;
    ``heads_path``: where the chain of heads is kept (None: in memory); ``keys``: ours
    with a commitment or a succession (``key_files.load_keys``), else just ``identity``."""
    counters = Counters()

    def gone(conn) -> None:
        """A hub left the presence table (or a newer connection replaced it)."""
        circuits.leave(conn)

    # Callables naming objects made below: our hubs' changes and our operator's bans
    # go to the other nodes; their relays and their departing hubs come to us.
    def told(*change) -> None:
        return None if node is None else node.told(*change)

    def banned(*record) -> None:
        return None if node is None else node.ban_told(*record)

    def deliver(*relayed) -> bool:
        return relay.deliver(*relayed)

    bans = Bans(bans_path, clock, banned)
    presence = Presence(admission.mode, limits, clock, counters, gone, told,
                        lambda hub_id: circuits.remote_gone(hub_id), fanout=observe_fanout)
    circuits: Circuits = Circuits(presence, counters, clock, limits, bridge=lambda: bridge)
    bridge: CircuitBridge | None = None
    node: ClusterNode | None = None
    if cluster is not None:
        bridge, node = _node(identity, cluster, clock, limits, presence, circuits, deliver,
                             bans)
    gateway = Gateway(keys or GatewayKeys(identity), admission, clock, limits, presence, counters,
                      Openings(limits.unauthenticated_per_ip), circuits, spoken, bans)
    relay: Relay = Relay(presence, counters, clock, limits, cluster=node,
                         speaks=gateway.speaks)
    factory, tls_factory = _factories(identity, gateway, presence, relay, circuits, clock,
                                      limits, counters, random)
    succeeded = {gateway.keys.succession.old} if gateway.keys.succession else set()
    heads = HeadChain(identity, clock, presence,
                      HeadFile(heads_path, succeeded) if heads_path else None, head_interval)
    return GatewayGraph(gateway, presence, relay, circuits, counters, factory, tls_factory,
                        node, bans, heads)
