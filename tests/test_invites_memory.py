"""Invites and proofs of work between hubs in memory (real TLS and boxes, one Clock)."""

import attrs
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import UserError
from blockhub.hub import request_book
from blockhub.hub.request_cost import GRACE, PUBLISH_INTERVAL
from blockhub.hub.work import MAX_SOLVE
from blockhub.invites import decode_invite
from blockhub.wire.canonical import b64
from tests.memory import FullHub, World, new_identity
from tests.test_handshake_memory import Captured, state


def later(world, seconds):
    """Let ``seconds`` pass a second at a time, the links keeping alive."""
    for _ in range(int(seconds)):
        world.clock.advance(1)
        world.flush()


def relayed(captured, kind):
    """What a hub relayed of ``kind`` (a ``Captured`` of its gateway link)."""
    return [fields for frame, fields in captured.frames
            if frame == "relay" and fields["kind"] == kind]


class InviteTests(SynchronousTestCase):
    def setUp(self):
        self.world = World()
        self.b = self.world.full_hub(self, "b")
        self.gateway = f"{self.world.identity.id}@127.0.0.1:6610"

    def invite(self, **kw):
        return self.b.handshakes.invites.create(self.b.id, [self.gateway], **kw)

    def hub(self, name):
        return self.world.full_hub(self, name)

    def use(self, hub, code):
        result = hub.operator.connect_invite(code, "from the invite")
        self.world.flush()
        return result

    def test_one_use_connects_at_once_and_is_spent(self):
        a = self.hub("a")
        made = self.invite()
        result = self.use(a, made["code"])
        self.assertEqual((result["peer"], result["invite"]), (self.b.id, made["id"]))
        self.assertEqual(state(a, "out", self.b), "connected")
        self.assertEqual(state(self.b, "in", a), "connected")
        self.assertEqual(self.b.handshakes.book.incoming[a.id].how, "invite")
        self.assertEqual(self.b.operator.pending(), [])
        [listed] = self.b.handshakes.invites.all()
        self.assertEqual((listed["uses"], listed["state"], listed["used_by"]),
                         (0, "used", [a.id]))
        self.assertIn(a.id, self.b.store.approved_keys())

    def test_the_code_and_its_secret_reach_no_log_and_are_not_kept(self):
        made = self.invite()
        secret = decode_invite(made["code"]).secret
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        a = self.hub("a")
        self.use(a, made["code"])
        self.assertEqual(state(a, "out", self.b), "connected")
        text = "\n".join(formatEvent(e) + repr(e) for e in events)
        for needle in (made["code"], made["code"][8:40], secret.hex(), b64(secret),
                       b64(bytes(decode_invite(made["code"]).key))):
            self.assertNotIn(needle, text)
        for hub in (a, self.b):
            dump = "\n".join(hub.store.db.iterdump())
            self.assertNotIn(made["code"][8:40], dump)
            self.assertNotIn(b64(secret), dump)

    def test_a_second_hub_is_refused_and_told(self):
        a, c = self.hub("a"), self.hub("c")
        code = self.invite()["code"]
        self.use(a, code)
        self.use(c, code)
        self.assertEqual(self.b.handshakes.refusals["InviteUsedUp"], 1)
        self.assertIsNone(state(self.b, "in", c))
        self.assertEqual(state(c, "out", self.b), "rejected")

    def test_n_uses(self):
        code = self.invite(uses=2)["code"]
        hubs = [self.hub(name) for name in "acd"]
        for hub in hubs:
            self.use(hub, code)
        self.assertEqual([state(self.b, "in", h) for h in hubs],
                         ["connected", "connected", None])
        self.assertEqual(self.b.handshakes.refusals["InviteUsedUp"], 1)

    def test_a_request_waiting_for_the_operator_is_accepted_on_an_invite(self):
        a = self.hub("a")
        a.operator.connect(self.b.id, "asking first")
        self.world.flush()
        self.assertEqual(state(self.b, "in", a), "pending")
        self.use(a, self.invite()["code"])
        self.assertEqual(state(self.b, "in", a), "connected")
        self.assertEqual(self.b.handshakes.book.incoming[a.id].how, "invite")

    def test_expired(self):
        code = self.invite(ttl=100)["code"]
        a = self.hub("a")
        later(self.world, 101)
        self.use(a, code)
        self.assertEqual(self.b.handshakes.refusals["InviteExpired"], 1)
        self.assertEqual(self.b.handshakes.invites.all()[0]["state"], "expired")
        self.assertIsNone(state(self.b, "in", a))

    def test_revoked(self):
        made = self.invite()
        self.b.handshakes.invites.revoke(made["id"])
        self.use(self.hub("a"), made["code"])
        self.assertEqual(self.b.handshakes.refusals["InviteRevoked"], 1)
        self.assertRaises(UserError, self.b.handshakes.invites.revoke, "invnosuch")

    def test_an_unknown_invite_key(self):
        other = self.world.full_hub(self, "other")
        code = other.handshakes.invites.create(self.b.id, [self.gateway])["code"]
        self.use(self.hub("a"), code)  # names b, but b never made it
        self.assertEqual(self.b.handshakes.refusals["InviteUnknown"], 1)

    def test_a_replayed_invited_request_is_refused(self):
        a = self.hub("a")
        captured = Captured(a)
        self.use(a, self.invite(uses=5)["code"])
        [request] = relayed(captured, "request")
        self.b.operator.unpeer(a.id)
        self.b.store.write("DELETE FROM approved_keys")
        a.link.proto.send("relay", **request)  # the same box again
        self.world.flush()
        self.assertEqual(self.b.handshakes.refusals["Replayed"], 1)
        self.assertEqual(self.b.handshakes.invites.all()[0]["uses"], 4)

    def test_the_invite_survives_a_restart_of_the_invited_hub(self):
        """B is away when A uses the code; A's request waits, and after A restarts it
        goes out signed by the invite again."""
        code, b = self.invite()["code"], self.b
        b.stop()
        a = self.hub("a")
        self.use(a, code)
        self.assertEqual(state(a, "out", b), "requested")
        a.stop()
        again = FullHub(self.world, "a", a.path, None, identity=a.identity).start()
        b = FullHub(self.world, "b", b.path, b.hub.listen_port, identity=b.identity).start()
        self.world.flush()
        self.assertEqual(state(again, "out", b), "connected")
        self.assertEqual(b.handshakes.book.incoming[again.id].how, "invite")

    def test_its_own_invite_or_a_mistyped_code(self):
        code = self.invite()["code"]
        self.assertRaises(UserError, self.b.operator.connect_invite, code)
        typo = code[:20] + ("b" if code[20] == "a" else "a") + code[21:]
        self.assertRaises(UserError, self.hub("a").operator.connect_invite, typo)


class InviteGatewayTests(SynchronousTestCase):
    """The invited hub pins the invite's gateways and moves to one it is not at."""

    def test_moves_to_the_invites_gateway(self):
        world = World()
        other = new_identity()
        world.add_gateway(other)
        b = FullHub(world, "b", self.mktemp(), 7001, gateways=[other.id]).start()
        a = world.full_hub(self, "a")  # at the world's first gateway only
        code = b.handshakes.invites.create(b.id, [f"{other.id}@127.0.0.1:6610"])["code"]
        result = a.operator.connect_invite(code)
        self.assertEqual(result["pinned"], [other.id])
        for _ in range(5):
            world.clock.advance(1)
            world.flush()
        self.assertEqual(a.hub.gateway.id, other.id)
        self.assertEqual(state(a, "out", b), "connected")
        self.assertEqual([e.id for e in a.link.gateways], [world.identity.id, other.id])

    def test_stays_when_already_at_one(self):
        world = World()
        b, a = world.full_hub(self, "b"), world.full_hub(self, "a")
        code = b.handshakes.invites.create(b.id, [f"{world.identity.id}@127.0.0.1:6610"])
        result = a.operator.connect_invite(code["code"])
        world.flush()
        self.assertEqual((result["pinned"], a.link.state), ([], "online"))
        self.assertEqual(state(a, "out", b), "connected")


class ProofOfWorkTests(SynchronousTestCase):
    def setUp(self):
        self.world = World()

    def pair(self, difficulty):
        b = FullHub(self.world, "b", self.mktemp(), 7001,
                    request_difficulty=difficulty).start()
        return self.world.full_hub(self, "a"), b

    def test_the_difficulty_is_published_and_a_proof_gets_the_request_kept(self):
        a, b = self.pair(8)
        self.assertEqual(a.hub.directory.hubs[b.id].meta, {"pow": 8})
        a.operator.connect(b.id, "with work")
        self.world.flush()
        self.assertEqual(state(b, "in", a), "pending")
        self.assertEqual(b.handshakes.refusals, {})

    def test_a_request_without_a_proof_is_refused_before_it_is_stored(self):
        a, b = self.pair(8)
        hubs = a.hub.directory.hubs  # as if b's HubInfo had not said so yet
        hubs[b.id] = attrs.evolve(hubs[b.id], meta={})
        a.operator.connect(b.id)
        self.world.flush()
        self.assertEqual(b.handshakes.refusals["NotEnoughWork"], 1)
        self.assertEqual(b.store.requests(), [])
        (seen,) = b.store.execute("SELECT COUNT(*) FROM seen_nonces").fetchone()
        self.assertEqual(seen, 0)

    def test_too_little_work_is_answered_with_the_difficulty_and_done_again(self):
        a, b = self.pair(1)
        b.handshakes.cost.published = 12  # raised, and not yet in b's HubInfo
        # A 1-bit proof has 12 by chance once in 2048 times: then ask from another hub.
        for asker in [a] + [self.world.full_hub(self, f"x{i}") for i in range(2)]:
            asker.operator.connect(b.id)
            self.world.flush()
            if b.handshakes.refusals["NotEnoughWork"]:
                break
        self.assertEqual(b.handshakes.refusals["NotEnoughWork"], 1)
        self.assertEqual(state(b, "in", asker), "pending")
        self.assertEqual(asker.handshakes.book.outgoing[b.id].bits, 12)

    def test_hubs_we_know_and_invited_hubs_need_no_work(self):
        a, b = self.pair(20)
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id)
        self.world.flush()
        self.assertEqual(state(b, "in", a), "connected")
        c = self.world.full_hub(self, "c")
        code = b.handshakes.invites.create(b.id, [f"{self.world.identity.id}@127.0.0.1:6610"])
        c.operator.connect_invite(code["code"])
        self.world.flush()
        self.assertEqual(state(b, "in", c), "connected")

    def test_a_receiver_asking_too_much_is_refused_by_the_sender(self):
        a, b = self.pair(8)
        b.handshakes.cost.published = MAX_SOLVE + 1
        a.operator.connect(b.id)
        self.world.flush()
        self.assertEqual(state(a, "out", b), "rejected")
        self.assertIn("more than this hub does", a.handshakes.book.outgoing[b.id].reason)

    def test_auto_raises_the_difficulty_and_keeps_the_old_one_for_a_while(self):
        a, b = self.pair(None)
        self.assertEqual(a.hub.directory.hubs[b.id].meta, {"pow": 0})
        strangers = [self.world.full_hub(self, f"s{i}", listen=False) for i in range(4)]
        for hub in strangers:
            hub.operator.connect(b.id)
        self.world.flush()
        self.assertEqual(len(b.operator.pending()), 4)
        self.world.clock.advance(PUBLISH_INTERVAL)
        self.world.flush()
        self.assertEqual(b.handshakes.cost.published, 12)
        self.assertEqual(a.hub.directory.hubs[b.id].meta, {"pow": 12})
        self.assertEqual(b.handshakes.cost.required(), 0)  # the grace
        later(self.world, GRACE)
        self.assertEqual(b.handshakes.cost.required(), 12)
        a.operator.connect(b.id)
        self.world.flush()
        self.assertEqual(state(b, "in", a), "pending")
        for hub in strangers:
            b.operator.reject(hub.id)
        self.world.clock.advance(PUBLISH_INTERVAL)
        self.world.flush()
        self.assertEqual(b.handshakes.cost.published, 0)


class EndedRequestsTests(SynchronousTestCase):
    def test_a_flood_of_refused_strangers_leaves_a_bounded_book(self):
        """Requests that ended stay in view up to KEEP_ENDED, so throwaway ids that are
        dropped one after another do not make the book grow without end."""
        world = World()
        b = world.full_hub(self, "b")
        self.patch(request_book, "KEEP_ENDED", 3)
        strangers = [world.full_hub(self, f"s{i}", listen=False) for i in range(6)]
        for hub in strangers:
            hub.operator.connect(b.id)
            world.flush()
            b.operator.reject(hub.id)
        self.assertEqual(len(b.handshakes.book.incoming), 3)
        self.assertEqual(set(b.handshakes.book.incoming), {h.id for h in strangers[-3:]})
