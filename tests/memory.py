"""In-memory gateway and hubs over real TLS, pumped by hand with iosim and a Clock."""

import itertools
import os

import attrs
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test import iosim

from blockhub.gateway.admission import Admission
from blockhub.gateway.build import build_gateway
from blockhub.hub.build import HubSettings, build_hub
from blockhub.hub.config import GatewayEntry
from blockhub.hub.gateway_keys_file import KEYS_FILE, GatewayKeysFile
from blockhub.hub.store import Store
from blockhub.identity import Identity, new_phrase
from blockhub.limits import DEFAULT
from blockhub.net.tls import PinnedClientCreator
from blockhub.wire import features


def new_identity() -> Identity:
    return Identity.from_phrase(new_phrase())


class World:
    """One gateway and any number of hubs, all in memory, on one Clock."""

    def __init__(self, admission=None, idle_timeout=60.0, gateway_identity=None,
                 limits=None, spoken=features.SPOKEN, cluster=None, observe_fanout=None):
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.identity = gateway_identity or new_identity()
        self.limits = attrs.evolve(limits or DEFAULT, idle_timeout=idle_timeout)
        self.graphs = {}  # gateway id -> its graph: hubs dial the one their entry pins
        self.down = set()  # ids of gateways that refuse connections (killed nodes)
        self.pumps_of = {}  # gateway id -> the pumps of the connections made to it
        graph = self.add_gateway(self.identity, admission, spoken, cluster, observe_fanout)
        self.graph = graph
        self.gateway = graph.gateway
        self.idle_timeout = idle_timeout
        self.server_factory = graph.tls_factory  # TLS batches writes on our Clock
        self.pumps = []
        self.next_port = 40000
        self.listeners = {}  # "127.0.0.1:PORT" -> TLS server factory of a hub's peers
        self.peer_ports = itertools.count(7000)
        self.random = os.urandom
        self.expect_alarms = False  # a test of lying gateways sets it

    def add_gateway(self, identity, admission=None, spoken=features.SPOKEN, cluster=None,
                    observe_fanout=None, heads_path=None):
        """Another gateway on the same clock (a cluster's node, with ``cluster``);
        ``heads_path``: its chain of heads on disk, so that it can be restarted."""
        graph = build_gateway(identity, admission or Admission(), self.clock, self.limits,
                              random=lambda n: b"\x07" * n, spoken=spoken, cluster=cluster,
                              observe_fanout=observe_fanout, heads_path=heads_path)
        self.graphs[identity.id] = graph
        graph.heads.start()  # signs its first head now, then every 10 s of the Clock
        return graph

    def add_hub(self, name="hub", identity=None, network_key=None, pin=None,
                listen_port=None, start=True, spoken=features.SPOKEN, gateways=None,
                keys_file=None):
        """A hub for presence tests, built by ``build_hub`` with its database in memory
        and no listener; ``hub.link`` is its gateway link, for the tests' eyes only.
        ``gateways``: the ids of the gateways it pins, in order (default: the first);
        ``keys_file``: where it keeps its gateways' keys (None: in memory)."""
        identity = identity or new_identity()
        entries = [GatewayEntry(gw, "127.0.0.1", 6610, f"gw{i}")
                   for i, gw in enumerate(gateways or [pin or self.identity.id])]
        settings = HubSettings(name=name, network_key=network_key, listen_port=listen_port,
                               limits=self.limits, spoken=spoken)
        graph = build_hub(identity, Store(None), self.clock, entries,
                          lambda *args: fail(ConnectionRefusedError("no peers here")),
                          lambda e, make: self._dial(identity, e, make), settings,
                          random=self.random, keys_file=keys_file)
        hub, link = graph.hub, graph.link
        hub.link, hub.keys, hub.heads = link, graph.keys, graph.heads
        if start:
            link.start()
            self.flush()
        return hub

    def _dial(self, identity, entry, make_protocol):
        creator = PinnedClientCreator(identity, entry.id)
        proto = make_protocol(creator)
        client = TLSMemoryBIOFactory(creator, True, Factory.forProtocol(lambda: proto),
                                     clock=self.clock)
        self.next_port += 1
        hub_addr = IPv4Address("TCP", "127.0.0.1", self.next_port)
        gw_addr = IPv4Address("TCP", "127.0.0.1", 6610)
        graph = self.graphs.get(entry.id)
        if entry.id in self.down:
            return fail(ConnectionRefusedError("that gateway is down"))
        factory = self.server_factory if graph is None else graph.tls_factory
        server_proto = factory.buildProtocol(hub_addr)
        client_proto = client.buildProtocol(gw_addr)
        server_transport = iosim.FakeTransport(server_proto, True, gw_addr, hub_addr)
        client_transport = iosim.FakeTransport(client_proto, False, hub_addr, gw_addr)
        pump = iosim.connect(server_proto, server_transport, client_proto, client_transport,
                             greet=False)
        self.pumps.append(pump)
        self.pumps_of.setdefault(entry.id, []).append(pump)
        proto.server_tls = server_proto
        return succeed(proto)

    def full_hub(self, case, name, listen=True, **kw):
        """A hub with store, handshakes and peers, started; listening unless told not."""
        port = next(self.peer_ports) if listen else None
        hub = FullHub(self, name, case.mktemp(), port, **kw).start()
        case.addCleanup(self.no_false_alarm, case, hub)
        return hub

    def no_false_alarm(self, case, hub):
        """No hub raised an alarm in normal operation, unless the test expected it."""
        if not self.expect_alarms:
            case.assertEqual(hub.graph.heads.alarms, [], hub.hub.name)

    def connect_peer(self, identity, hub_id, server_factory, proto, host="127.0.0.1"):
        """Dial a hub's peer listener from ``host`` (the address the listener sees)."""
        client = TLSMemoryBIOFactory(PinnedClientCreator(identity, hub_id), True,
                                     Factory.forProtocol(lambda: proto), clock=self.clock)
        self.next_port += 1
        near = IPv4Address("TCP", host, self.next_port)
        far = IPv4Address("TCP", "127.0.0.1", 7999)
        server_proto = server_factory.buildProtocol(near)
        client_proto = client.buildProtocol(far)
        pump = iosim.connect(server_proto, iosim.FakeTransport(server_proto, True, far, near),
                             client_proto, iosim.FakeTransport(client_proto, False, near, far),
                             greet=False)
        self.pumps.append(pump)
        return succeed(proto)

    def kill_gateway(self, gateway_id):
        """The gateway's process dies: its connections drop, it takes no new ones and
        (a cluster's node) says nothing more to the store."""
        self.down.add(gateway_id)
        self.graphs[gateway_id].heads.stop()  # a dead process signs nothing more
        node = self.graphs[gateway_id].cluster
        if node is not None:
            node.backend.kill()
        for pump in self.pumps_of.pop(gateway_id, []):
            pump.client.transport.loseConnection()
            pump.server.transport.loseConnection()
        self.flush()

    def flush(self):
        for _ in range(50):
            self.clock.advance(0)
            moved = False
            for pump in list(self.pumps):
                moved = pump.pump() or moved
            if not moved:
                break


class FullHub:
    """A hub with its store, handshakes and peers, for handshake tests in memory."""

    def __init__(self, world, name, path, listen_port, network_key=None, identity=None,
                 request_ttl=3600, spoken=features.SPOKEN, peer_path="auto", gateways=None,
                 observe_commit=None, watch_requests=None, request_difficulty=0):
        self.world = world
        self.path = path
        identity = identity or new_identity()
        self.identity = identity

        def connect_peer(hub_id, address, proto):
            target = world.listeners.get(address)
            if target is None:
                return fail(ConnectionRefusedError(f"nothing listens at {address}"))
            return world.connect_peer(identity, hub_id, target, proto)

        data_dir = os.path.dirname(os.path.abspath(path))
        settings = HubSettings(name=name, network_key=network_key, listen_port=listen_port,
                               request_ttl=request_ttl, limits=world.limits, spoken=spoken,
                               peer_path=peer_path, request_difficulty=request_difficulty,
                               alarm_dir=data_dir)
        entries = [GatewayEntry(gw, "127.0.0.1", 6610, f"gw{i}")
                   for i, gw in enumerate(gateways or [world.identity.id])]
        store = Store(path, observe_commit=observe_commit)
        self.graph = build_hub(identity, store, world.clock, entries,
                               connect_peer, lambda e, make: world._dial(identity, e, make),
                               settings, random=world.random, watch_requests=watch_requests,
                               keys_file=GatewayKeysFile(os.path.join(data_dir, KEYS_FILE)))
        self.hub, self.link, self.store = self.graph.hub, self.graph.link, self.graph.store
        self.peers, self.handshakes = self.graph.peers, self.graph.handshakes
        self.operator = self.graph.operator
        if listen_port:
            world.listeners[f"127.0.0.1:{listen_port}"] = self.graph.peer_tls
        self.id = identity.id

    def start(self):
        world = self.world
        self.handshakes.start()
        self.peers.start()
        self.link.start()
        world.flush()
        return self

    def stop(self):
        """The process stops: its listener too."""
        for address, factory in list(self.world.listeners.items()):
            if factory is self.graph.peer_tls:
                del self.world.listeners[address]
        self.link.stop()
        self.handshakes.stop()
        self.peers.stop()
        self.world.flush()
        self.store.close()

