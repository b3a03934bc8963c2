"""Feature negotiation: the lists and their checks alone, then nodes of this version
beside nodes that lack a feature, or that send no list at all (as before negotiation),
over real TLS in memory."""

import attrs
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import BadMessage
from blockhub.limits import DEFAULT
from blockhub.wire import features, messages
from blockhub.wire.canonical import b64
from blockhub.wire.features import REJECTION, SPOKEN, FeatureList, Features
from tests.memory import World
from tests.test_handshake_memory import state

THIS_VERSION = Features(frozenset(SPOKEN), listed=True)


class ListTests(SynchronousTestCase):
    def test_names(self):
        names = ["rejection/1", "circuit/1", "some-future-thing/12"]
        self.assertEqual(FeatureList().check("f", names), names)
        for bad in ("Circuit/1", "circuit", "circuit/0", "circuit/01", "/1", "a b/1",
                    "x" * 31 + "/1", 7, None, "é/1"):
            self.assertRaises(BadMessage, FeatureList().check, "f", [bad])
        self.assertRaises(BadMessage, FeatureList().check, "f", "rejection/1")
        too_many = [f"f{n}/1" for n in range(features.MAX_FEATURES + 1)]
        self.assertRaises(BadMessage, FeatureList().check, "f", too_many)

    def test_an_unknown_name_is_kept_and_means_nothing(self):
        seen = features.parse(["warp-drive/3", REJECTION])
        self.assertTrue(seen.peer_has(REJECTION))
        self.assertFalse(seen.peer_has(features.CIRCUIT))
        self.assertTrue(seen.listed)

    def test_no_list_means_no_features(self):
        self.assertEqual(features.parse(None), features.NONE)
        self.assertFalse(features.NONE.listed)
        self.assertFalse(features.NONE.peer_has(REJECTION))
        self.assertEqual(features.parse([]), Features(frozenset(), listed=True))

    def test_the_same_list_is_kept_once_and_the_table_is_bounded(self):
        """Thousands of hubs listing the same features share one ``Features``; a peer
        sending ever new lists gets a correct answer each time and grows nothing."""
        self.patch(features, "_shared", {})  # the table is the process's: start it empty
        first = features.parse(list(SPOKEN))
        self.assertIs(features.parse(list(reversed(SPOKEN))), first)
        for n in range(3 * features._SHARED_LISTS):
            seen = features.parse([f"made-up-{n}/1", REJECTION])
            self.assertTrue(seen.peer_has(f"made-up-{n}/1"))
            self.assertFalse(seen.peer_has(f"made-up-{n + 1}/1"))
        self.assertLessEqual(len(features._shared), features._SHARED_LISTS)
        self.assertIs(features.parse(list(SPOKEN)), first)

    def test_what_we_send(self):
        self.assertEqual(features.ours(), sorted(SPOKEN))
        self.assertEqual(features.ours(["b/1", "a/1", "b/1"]), ["a/1", "b/1"])
        self.assertIsNone(features.ours(None))
        self.assertIn(features.CIRCUIT, SPOKEN)  # relay circuits, spoken from issue 14 on

    def test_every_opening_and_answer_may_carry_a_list_and_no_other_frame_may(self):
        carrying = {kind for kind, (_code, spec) in messages.SCHEMAS.items()
                    if "features" in spec}
        self.assertEqual(carrying, {"hello", "join", "peer-hello", "peer-request",
                                    "peer-ready"})
        frame = messages.encode(messages.make("peer-ready", status="pending",
                                              features=["x/1"]))
        self.assertIn(b'"features":["x/1"]', frame)
        self.assertNotIn(b"features", messages.encode(messages.make(
            "peer-ready", status="pending")))


def gateway_session(world, hub):
    return world.gateway.presence.hubs[hub.identity.id][0].session


class GatewaySessionTests(SynchronousTestCase):
    def test_this_version_on_both_sides(self):
        world = World()
        hub = world.add_hub("a")
        self.assertEqual(gateway_session(world, hub).features, THIS_VERSION)
        self.assertEqual(hub.link.proto.features, THIS_VERSION)

    def test_a_hub_that_sends_no_list_joins_and_is_treated_as_speaking_none(self):
        world = World()
        old, new = world.add_hub("old", spoken=None), world.add_hub("new")
        self.assertEqual((old.link.state, new.link.state), ("online", "online"))
        self.assertEqual([h["name"] for h in old.hubs()], ["new"])
        self.assertEqual([h["name"] for h in new.hubs()], ["old"])
        self.assertEqual(gateway_session(world, old).features, features.NONE)
        self.assertEqual(old.link.proto.features, THIS_VERSION)

    def test_a_gateway_that_sends_no_list_gets_none_back(self):
        """A gateway from before negotiation would refuse ``features`` in a join."""
        world = World(spoken=None)
        hub = world.add_hub("a")
        self.assertEqual(hub.link.state, "online")
        self.assertEqual(hub.link.proto.features, features.NONE)
        self.assertEqual(gateway_session(world, hub).features, features.NONE)
        self.assertFalse(hub.channel.relay(hub.identity.id, "rejection", b"x" * 48))
        self.assertTrue(hub.channel.relay(hub.identity.id, "request", b"x" * 48))


class RejectionFeatureTests(SynchronousTestCase):
    """``rejection/1``: the receiver of a request it did not keep tells the requester,
    only through a gateway, and only to a requester, that listed it."""

    def crowd(self, world, **first):
        """A full pending list at b (3 places): the first of four requesters is told."""
        b = world.full_hub(self, "b")
        hubs = []
        for n in range(4):
            hub = world.full_hub(self, f"r{n}", listen=False, **(first if n == 0 else {}))
            hub.operator.connect(b.id, f"r{n}")
            world.flush()
            world.clock.advance(1)
            hubs.append(hub)
        self.assertEqual(state(b, "in", hubs[0]), "dropped")
        return b, hubs[0]

    def limits(self):
        return attrs.evolve(DEFAULT, max_pending=3)

    def test_both_speak_it(self):
        world = World(limits=self.limits())
        b, first = self.crowd(world)
        self.assertEqual(state(first, "out", b), "rejected")
        self.assertEqual(world.gateway.counters.relay_dropped, 0)

    def test_a_requester_without_it_is_not_sent_it_and_keeps_its_link(self):
        for spoken in ((), None):
            world = World(limits=self.limits())
            b, first = self.crowd(world, spoken=spoken)
            self.assertEqual(state(first, "out", b), "sent")  # it will expire, as before
            self.assertEqual(world.gateway.counters.relay_dropped, 1)
            self.assertEqual(first.link.state, "online")
            self.assertEqual(world.gateway.counters.protocol_errors, 0)

    def test_a_gateway_without_it_is_not_sent_it(self):
        world = World(limits=self.limits(), spoken=())
        b, first = self.crowd(world)
        self.assertEqual(state(first, "out", b), "sent")
        self.assertEqual((world.gateway.counters.relay_dropped,
                          world.gateway.counters.protocol_errors), (0, 0))
        self.assertEqual(b.link.state, "online")

    def test_a_gateway_without_it_refuses_it_and_says_why(self):
        world = World(spoken=())
        a, b = world.full_hub(self, "a"), world.full_hub(self, "b")
        a.hub.channel._send("relay", to=b.id, kind="rejection", sealed=b64(b"x" * 48))
        world.flush()
        self.assertEqual(world.gateway.counters.protocol_errors, 1)
        self.assertIn(f"needs {REJECTION}", a.link.last_error[world.identity.id])


class PeerSessionFeatureTests(SynchronousTestCase):
    def link(self, a_spoken=SPOKEN, b_spoken=SPOKEN):
        """a asks b, b approves and dials a (b is the dialer); a message each way."""
        world = World()
        a = world.full_hub(self, "a", spoken=a_spoken)
        b = world.full_hub(self, "b", spoken=b_spoken)
        a.operator.connect(b.id, "hi")
        world.flush()
        b.operator.approve(a.id)
        world.flush()
        a.peers.send(b.id, "to b")
        b.peers.send(a.id, "to a")
        world.flush()
        self.assertEqual([m["text"] for m in b.store.messages()], ["to b"])
        self.assertEqual([m["text"] for m in a.store.messages()], ["to a"])
        self.assertEqual((a.store.unacked(b.id), b.store.unacked(a.id)), ([], []))
        return (a.peers.connections[b.id].session.features,
                b.peers.connections[a.id].session.features)

    def test_this_version_on_both_sides(self):
        self.assertEqual(self.link(), (THIS_VERSION, THIS_VERSION))

    def test_a_dialer_that_sends_no_list_gets_none_back(self):
        heard_by_acceptor, heard_by_dialer = self.link(b_spoken=None)
        self.assertEqual(heard_by_acceptor, features.NONE)
        self.assertEqual(heard_by_dialer, features.NONE)

    def test_an_acceptor_without_the_feature(self):
        heard_by_acceptor, heard_by_dialer = self.link(a_spoken=())
        self.assertEqual(heard_by_acceptor, THIS_VERSION)
        self.assertEqual(heard_by_dialer, Features(frozenset(), listed=True))
