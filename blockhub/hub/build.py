"""The hub's object graph, built in one place with every collaborator in a constructor.

The twistd service, the in-memory test world and the fuzzer all call ``build_hub``;
they differ only in how bytes move (``connect_peer``, ``connect_gateway``) and in the
clock.  Where two objects need each other (the hub tells the handshakes when a gateway
admits us; the peer protocols ask the handshakes whether to accept a link), the
callable handed to the first refers to the second by name, bound here once it exists,
so no object is patched after it is built.

``build_hub``'s ``connect_peer(hub_id, "HOST:PORT", protocol)``, ``connect_gateway(entry,
make)`` (``make(pin)``: the protocol for a TLS pin) and ``connect_punch`` (``_punching``)
return Deferreds that fire once connected; ``watch_requests`` is the metrics';
``run_in_thread(f, *args)`` a Deferred of ``f(*args)``, for proofs of work (a thread in
the daemon); ``record_pinned(entries, invite_id)`` keeps an invite's gateways in the
config; ``keys_file`` what we learn of our gateways' keys (``gateway_keys``), and
``record_succession(old, new)`` pins a gateway's next key in the config.
"""

import os
from pathlib import Path

import attrs
from twisted.internet.defer import maybeDeferred
from twisted.protocols.tls import TLSMemoryBIOFactory

from blockhub.handshake_bodies import DEFAULT_WINDOW
from blockhub.hub.circuits import Circuits
from blockhub.hub.config import parse_gateway_arg
from blockhub.hub.gateway_channel import GatewayChannel
from blockhub.hub.gateway_keys import GatewayKeyBook
from blockhub.hub.gateway_link import GatewayLink
from blockhub.hub.gateway_pins import drop, pin, succeed
from blockhub.hub.gateway_protocol import HubGatewayProtocol
from blockhub.hub.handshakes import DEFAULT_TTL, Handshakes
from blockhub.hub.head_watch import ALARM, HeadWatch
from blockhub.hub.hub import Hub
from blockhub.hub.operator import Operator
from blockhub.hub.peer_door import PeerDoor
from blockhub.hub.peer_paths import AUTO, RELAY, PeerPaths
from blockhub.hub.peer_protocol import PeerFactory, PeerProtocol
from blockhub.hub.peers import Peers
from blockhub.hub.proof_files import ProofFiles
from blockhub.hub.punching import Punching
from blockhub.hub.request_cost import RequestCost
from blockhub.hub.seen_heads_file import SEEN_HEADS_FILE, SeenHeadsFile
from blockhub.hub.upgrades import Upgrades
from blockhub.limits import DEFAULT, Limits
from blockhub.net.tls import ServerCreator, client_over
from blockhub.wire import features


@attrs.frozen
class HubGraph:
    hub: Hub
    channel: GatewayChannel
    store: object
    peers: Peers
    handshakes: Handshakes
    door: PeerDoor
    operator: Operator
    link: GatewayLink
    peer_factory: PeerFactory  # builds the protocols of accepted peer links
    peer_tls: TLSMemoryBIOFactory  # those under TLS: the --listen endpoint's factory
    circuits: Circuits
    paths: PeerPaths  # and its upgrades: None when the hub does not punch
    heads: HeadWatch  # the gateways' signed heads, checked, and alarms
    keys: GatewayKeyBook  # our gateways' commitments to next keys, successions followed


@attrs.frozen
class HubSettings:
    """What the operator chose, beside the identity and the gateways."""

    name: str = ""
    network_key: bytes | None = attrs.field(default=None, repr=False)
    listen_port: int | None = None
    request_ttl: int = DEFAULT_TTL
    rotate_interval: float | None = None
    window: int = DEFAULT_WINDOW
    limits: Limits = DEFAULT
    peer_path: str = AUTO  # or "relay": every peering over a relay circuit
    request_difficulty: int | None = 0  # bits asked of unsolicited requests; None: auto
    alarm_dir: Path | None = None  # where alarms, their proofs and heads seen are kept
    on_equivocation: str = ALARM  # or DISCONNECT: drop that gateway
    # The features the hub lists to its gateway and its peers (tests play older hubs
    # with fewer, or with None: no list at all).
    spoken: tuple[str, ...] | None = features.SPOKEN


def _accepting(identity, clock, peers, door, settings):
    """The accepted peer links' protocols, bare and under TLS (the --listen endpoint's
    factory, and the one a relay circuit we did not ask to dial is handed to)."""
    factory = PeerFactory(peers, door, clock, settings.limits, settings.spoken)
    return factory, TLSMemoryBIOFactory(ServerCreator(identity), False, factory,
                                        clock=clock)


def _each(*calls):
    """One callback that calls each of ``calls``, in order, with what it is given."""
    def call(*args):
        for one in calls:
            one(*args)
    return call


def _punching(identity, channel, hub, connect_punch, circuits, peers, expects, settings,
              random) -> tuple[Punching | None, Upgrades | None]:
    """Punching through NAT and moving relayed peerings onto it, when we can dial:
    ``connect_punch("HOST:PORT", (host, port), factory)``, TCP from our listen port."""
    if connect_punch is None:
        return None, None
    punching = Punching(identity, peers.clock, channel, hub, connect_punch,
                        circuits.client_tls, circuits.server_tls, circuits.dialer_protocol,
                        peers.hello_for, expects, relay_only=settings.peer_path == RELAY,
                        random=random, window=settings.window)
    return punching, Upgrades(peers.clock, punching, peers.store, peers.connections,
                              peers.established)


def _handshakes(identity, store, clock, hub, channel, peers, paths, settings, random,
                watch, run_in_thread) -> Handshakes:
    """The handshakes, with the proof of work we ask published in our HubInfo."""
    cost = RequestCost(clock, settings.request_difficulty,
                       lambda meta: hub.publish(meta=dict(hub.meta, **meta)))
    hub.meta = dict(hub.meta, **cost.meta())
    return Handshakes(identity, store, clock, hub, channel, peers, paths, random=random,
                      request_ttl=settings.request_ttl, window=settings.window,
                      max_pending=settings.limits.max_pending, watch=watch, cost=cost,
                      run_in_thread=run_in_thread)


def _gateway_link(gateways, connect_gateway, hub, handshakes, circuits, clock,
                  settings, keys_file, record_succession
                  ) -> tuple[GatewayLink, GatewayKeyBook]:
    """The link to our gateways, which follows their key successions (``keys``)."""
    link: GatewayLink

    def dial(entry):
        return connect_gateway(entry, lambda pin: HubGatewayProtocol(
            link, hub, handshakes, circuits, pin=pin, keys=keys, clock=clock,
            limits=settings.limits))

    keys = GatewayKeyBook(clock, keys_file, lambda old, new: succeed(link, old, new),
                          record_succession or (lambda old, new: None))
    link = GatewayLink(keys.pinned(gateways), dial, hub, clock,
                       rotate_interval=settings.rotate_interval)
    return link, keys


def _head_watch(clock, hub, peers, settings, drop_gateway) -> HeadWatch:
    """The gateways' heads checked; the proofs, the heads seen and the alarms kept in
    the data directory (``alarm_dir``), when there is one."""
    where = Path(settings.alarm_dir) if settings.alarm_dir else None
    return HeadWatch(clock, hub, peers, where and ProofFiles(where), settings.on_equivocation,
                     drop_gateway, where and SeenHeadsFile(where / SEEN_HEADS_FILE))


def _pinning(link, record):
    """Pin an invite's gateways (``ID@HOST:PORT`` each) on the link; ``record`` keeps them."""
    return lambda specs, invite_id: pin(link, [parse_gateway_arg(s) for s in specs],
                                        invite_id, record)


def build_hub(identity, store, clock, gateways, connect_peer, connect_gateway,
              settings: HubSettings = HubSettings(), remember_gateway=None, archive=None,
              random=os.urandom, watch_requests=None, connect_punch=None,
              run_in_thread=maybeDeferred, record_pinned=None, keys_file=None,
              record_succession=None) -> HubGraph:
    """The hub's objects, wired (the arguments: the module's docstring)."""
    peer_kw = dict(clock=clock, limits=settings.limits)
    handshakes: Handshakes  # made below; the callables given to Hub call it later
    door: PeerDoor  # likewise, for the protocols of the links we dial
    circuits: Circuits  # and the same for the rest
    peer_tls: TLSMemoryBIOFactory
    paths: PeerPaths
    heads: HeadWatch
    channel = GatewayChannel()
    hub = Hub(identity, settings.name, clock, channel, settings.network_key,
              settings.listen_port, remember_gateway=remember_gateway, archive=archive,
              spoken=settings.spoken, on_head=lambda g, v: heads.from_gateway(g, v),
              on_online=_each(lambda: handshakes.gateway_online(),
                              lambda: circuits.gateway_online()),
              on_joined=_each(lambda hub_id: handshakes.hub_appeared(hub_id),
                              lambda hub_id: circuits.hub_appeared(hub_id)),
              on_offline=lambda: circuits.gateway_lost())

    def dialer_protocol(first):
        return PeerProtocol(peers, door, first, spoken=settings.spoken, **peer_kw)

    circuits = Circuits(channel, clock,
                        lambda peer, proto: client_over(identity, peer, proto, clock),
                        lambda address: peer_tls.buildProtocol(address), dialer_protocol)
    peers = Peers(identity, store, clock, connect_peer, dialer_protocol,
                  lambda peer, made: paths.attempt(peer, made), circuits, settings.limits,
                  on_path=_each(lambda h, p: paths.path_changed(h, p),
                                lambda h, p: heads.link_up(h, p)),
                  on_head=lambda hub_id, value: heads.from_peer(hub_id, value))
    punching, upgrades = _punching(identity, channel, hub, connect_punch, circuits, peers,
                                   lambda hub_id: door.expects(hub_id), settings, random)
    paths = PeerPaths(peers, circuits, store, settings.peer_path, punching, upgrades)
    handshakes = _handshakes(identity, store, clock, hub, channel, peers, paths, settings,
                             random, watch_requests, run_in_thread)
    door = PeerDoor(identity, store, clock, settings.window, handshakes, peers)
    peer_factory, peer_tls = _accepting(identity, clock, peers, door, settings)
    link, keys = _gateway_link(gateways, connect_gateway, hub, handshakes, circuits, clock,
                               settings, keys_file, record_succession)
    operator = Operator(identity, store, clock, handshakes.book, handshakes, peers,
                        _pinning(link, record_pinned))
    heads = _head_watch(clock, hub, peers, settings, lambda gateway_id: drop(link, gateway_id))
    return HubGraph(hub, channel, store, peers, handshakes, door, operator, link,
                    peer_factory, peer_tls, circuits, paths, heads, keys)
