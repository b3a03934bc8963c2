"""Handshakes, approval and the peer channel between hubs in memory (real TLS, Clock)."""

from twisted.trial.unittest import SynchronousTestCase

from blockhub.gateway.admission import Admission
from blockhub.handshake_bodies import seal_request
from blockhub.wire import messages
from blockhub.wire.canonical import b64
from tests.memory import FullHub, World, new_identity


def state(hub, direction, peer):
    rows = [r for r in hub.operator.status()
            if r["direction"] == direction and r["peer"] == peer.id]
    return rows[0]["state"] if rows else None


class Captured:
    """Records what a hub relays through the gateway."""

    def __init__(self, hub):
        self.frames = []
        proto = hub.link.proto
        original = proto.send

        def send(kind, /, **fields):
            self.frames.append((kind, fields))
            original(kind, **fields)

        proto.send = send
        original_frame = proto.send_frame

        def send_frame(frame):
            """A relay-raw frame (raw-relay/1) is recorded as the relay it stands for."""
            if frame[5] == messages.RELAY_RAW:
                raw = messages.decode(frame[5], frame[6:]).fields
                self.frames.append(("relay", {**raw, "sealed": b64(raw["sealed"])}))
            original_frame(frame)

        proto.send_frame = send_frame


class PrivateModeTests(SynchronousTestCase):
    def setUp(self):
        self.world = World()
        self.a = self.world.full_hub(self, "a")
        self.b = self.world.full_hub(self, "b")

    def connect(self, note="hi"):
        self.a.operator.connect(self.b.id, note)
        self.world.flush()

    def test_manual_approval_then_b_dials_a(self):
        self.connect("please")
        self.assertEqual(state(self.a, "out", self.b), "sent")
        self.assertEqual(state(self.b, "in", self.a), "pending")
        [pending] = self.b.operator.pending()
        self.assertEqual((pending["id"], pending["note"]), (self.a.id, "please"))
        self.b.operator.approve(self.a.id)
        self.world.flush()
        self.assertEqual(state(self.a, "out", self.b), "connected")
        self.assertEqual(state(self.b, "in", self.a), "connected")
        self.assertEqual(self.b.store.peer(self.a.id)["dialer"], 1)
        self.assertEqual(self.a.store.peer(self.b.id)["dialer"], 0)
        self.assertIn(self.a.id, self.b.peers.connections)

    def test_messages_both_ways_are_stored_and_acked(self):
        self.b.store.add_approved_key(self.a.id, 0)
        self.connect()
        self.a.peers.send(self.b.id, "one")
        self.a.peers.send(self.b.id, "two")
        self.b.peers.send(self.a.id, "back")
        self.world.flush()
        self.assertEqual([m["text"] for m in self.b.store.messages()], ["one", "two"])
        self.assertEqual([m["text"] for m in self.a.store.messages()], ["back"])
        self.assertEqual(self.a.store.unacked(self.b.id), [])

    def test_message_queued_while_disconnected_is_delivered_on_reconnect(self):
        self.b.store.add_approved_key(self.a.id, 0)
        self.connect()
        self.a.peers.connections[self.b.id].close("test cut")
        self.world.flush()
        self.assertNotIn(self.b.id, self.a.peers.connections)
        queued = []
        self.a.peers.send(self.b.id, "later").addCallback(queued.append)
        self.assertEqual(queued, [])  # committed at the end of this reactor turn
        self.world.clock.advance(0)
        self.assertEqual(queued, [1])
        self.assertEqual(len(self.a.store.unacked(self.b.id)), 1)
        self.world.clock.advance(2)  # b is the dialer: its link redials
        self.world.flush()
        self.assertEqual([m["text"] for m in self.b.store.messages()], ["later"])
        self.assertEqual(self.a.store.unacked(self.b.id), [])

    def test_duplicates_are_dropped(self):
        self.b.store.add_approved_key(self.a.id, 0)
        self.connect()
        proto = self.a.peers.connections[self.b.id]
        proto.send("message", seq=1, text="x", at=1)
        proto.send("message", seq=1, text="x", at=1)
        self.world.flush()
        self.assertEqual(len(self.b.store.messages()), 1)

    def test_auto_accept_by_key(self):
        self.b.store.add_approved_key(self.a.id, 0)
        self.connect()
        self.assertEqual(state(self.b, "in", self.a), "connected")
        self.assertEqual(self.b.handshakes.book.incoming[self.a.id].how, "auto")

    def test_auto_accept_by_address_range(self):
        self.b.store.add_approved_range("127.0.0.0/8", 0)
        self.connect()
        self.assertEqual(state(self.b, "in", self.a), "connected")

    def test_other_range_does_not_match(self):
        self.b.store.add_approved_range("10.0.0.0/8", 0)
        self.connect()
        self.assertEqual(state(self.b, "in", self.a), "pending")

    def test_reject_and_block(self):
        self.connect()
        self.b.operator.reject(self.a.id, block=True)
        self.assertEqual(state(self.b, "in", self.a), "rejected")
        self.world.clock.advance(1)
        self.connect()  # asking again sends a fresh request, which is refused
        self.assertEqual(state(self.a, "out", self.b), "sent")
        self.assertEqual(state(self.b, "in", self.a), "rejected")
        self.assertEqual(self.b.handshakes.refusals["Blocked"], 1)
        self.assertEqual(self.b.operator.pending(), [])

    def test_replayed_request_is_refused(self):
        captured = Captured(self.a)
        self.connect()
        kind, fields = [f for f in captured.frames if f[0] == "relay"][0]
        self.b.operator.reject(self.a.id)
        self.a.link.proto.send("relay", **fields)
        self.world.flush()
        self.assertEqual(self.b.handshakes.refusals["Replayed"], 1)
        self.assertEqual(state(self.b, "in", self.a), "rejected")

    def test_wrongly_addressed_request_is_refused(self):
        c = self.world.full_hub(self, "c")
        sealed = seal_request(self.a.identity, c.id, None, int(self.world.clock.seconds()),
                              b"\x01" * 16, "for c")
        # Sealed to c but relayed to b: b cannot open it.
        self.a.link.proto.send("relay", to=self.b.id, kind="request",
                                      sealed=b64(sealed))
        self.world.flush()
        self.assertEqual(self.b.handshakes.refusals["BadSeal"], 1)
        self.assertEqual(self.b.operator.pending(), [])

    def test_request_naming_another_receiver_is_refused(self):
        from blockhub.wire import envelope
        body = {"from": self.a.id, "to": new_identity().id, "at":
                int(self.world.clock.seconds()), "nonce": b64(b"\x02" * 16), "note": ""}
        sealed = envelope.seal(self.b.id, envelope.sign(self.a.identity, "handshake", body))
        self.a.link.proto.send("relay", to=self.b.id, kind="request",
                                      sealed=b64(sealed))
        self.world.flush()
        self.assertEqual(self.b.handshakes.refusals["BadMessage"], 1)

    def test_forged_sender_is_refused(self):
        mallory = new_identity()
        sealed = seal_request(mallory, self.b.id, None, int(self.world.clock.seconds()),
                              b"\x03" * 16, "i am a")
        # a relays a request signed by someone else: signer != authenticated sender.
        self.a.link.proto.send("relay", to=self.b.id, kind="request",
                                      sealed=b64(sealed))
        self.world.flush()
        self.assertEqual(self.b.handshakes.refusals["BadMessage"], 1)
        self.assertEqual(self.b.operator.pending(), [])

    def test_stale_request_is_refused(self):
        sealed = seal_request(self.a.identity, self.b.id, None,
                              int(self.world.clock.seconds()) - 3600, b"\x04" * 16, "old")
        self.a.link.proto.send("relay", to=self.b.id, kind="request",
                                      sealed=b64(sealed))
        self.world.flush()
        self.assertEqual(self.b.handshakes.refusals["StaleMessage"], 1)

    def test_unsolicited_inbound_is_dropped(self):
        c = self.world.full_hub(self, "c")
        result = []
        d = c.peers.dial(self.a.id, f"127.0.0.1:{self.a.hub.listen_port}",
                         c.peers.hello_for(self.a.id))
        d.addBoth(result.append)
        self.world.flush()
        self.assertEqual(result[0][0], "rejected")
        self.assertNotIn(c.id, self.a.peers.connections)
        self.assertEqual(self.a.handshakes.refusals["unsolicited"], 1)

    def test_pending_survives_restart(self):
        self.connect("remember me")
        self.b.stop()
        again = FullHub(self.world, "b", self.b.path, self.b.hub.listen_port,
                        identity=self.b.identity).start()
        self.assertEqual([p["note"] for p in again.operator.pending()], ["remember me"])
        again.operator.approve(self.a.id)
        self.world.flush()
        self.assertEqual(state(self.a, "out", again), "connected")

    def test_pending_expires(self):
        self.connect()
        self.world.clock.advance(3601)
        self.assertEqual(state(self.b, "in", self.a), "expired")
        self.assertEqual(state(self.a, "out", self.b), "expired")
        self.assertEqual(self.b.store.requests("in")[0]["state"], "expired")


class OfflineAndNatTests(SynchronousTestCase):
    def test_request_to_offline_hub_waits_then_expires(self):
        world = World()
        a = world.full_hub(self, "a")
        ghost = new_identity()
        a.operator.connect(ghost.id, "anyone?")
        world.flush()
        self.assertEqual(a.handshakes.book.outgoing[ghost.id].state, "requested")
        world.clock.advance(3601)
        self.assertEqual(a.handshakes.book.outgoing[ghost.id].state, "expired")

    def test_request_is_sent_when_the_hub_comes_online(self):
        world = World()
        a = world.full_hub(self, "a")
        b_identity = new_identity()
        a.operator.connect(b_identity.id)
        world.flush()
        b = world.full_hub(self, "b", identity=b_identity)
        world.flush()
        self.assertEqual(state(b, "in", a), "pending")

    def test_requester_behind_nat_is_told_where_to_dial(self):
        world = World()
        a = world.full_hub(self, "a", listen=False)  # cannot be reached
        b = world.full_hub(self, "b")
        b.store.add_approved_key(a.id, 0)
        a.operator.connect(b.id)
        world.flush()
        self.assertEqual(state(a, "out", b), "connected")
        self.assertEqual(state(b, "in", a), "connected")
        self.assertEqual(a.store.peer(b.id)["dialer"], 1)


class OpenModeTests(SynchronousTestCase):
    def setUp(self):
        key = b"n" * 32
        self.world = World(Admission(mode="open", network_key=key))
        self.a = self.world.full_hub(self, "a", network_key=key)
        self.b = self.world.full_hub(self, "b", network_key=key)

    def test_direct_request_auto_accepted_on_the_same_connection(self):
        self.b.store.add_approved_key(self.a.id, 0)
        captured = Captured(self.a)
        self.a.operator.connect(self.b.id)
        self.world.flush()
        self.assertEqual(state(self.a, "out", self.b), "connected")
        self.assertEqual(state(self.b, "in", self.a), "connected")
        self.assertEqual([f for f in captured.frames if f[0] == "relay"], [])

    def test_direct_request_pending_then_b_dials_a(self):
        self.a.operator.connect(self.b.id)
        self.world.flush()
        self.assertEqual(state(self.b, "in", self.a), "pending")
        self.assertEqual(self.b.peers.connections, {})
        self.b.operator.approve(self.a.id)
        self.world.flush()
        self.assertEqual(state(self.a, "out", self.b), "connected")
