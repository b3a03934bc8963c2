"""The inviter's book of invites, the invite's signature on a request, and the config
entries an invite adds."""

import json
import os

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import (
    BadMessage,
    BadSignature,
    InviteExpired,
    InviteRevoked,
    InviteUnknown,
    InviteUsedUp,
    Replayed,
    UserError,
)
from blockhub.handshake_bodies import open_request, seal_request
from blockhub.hub.config import GatewayEntry, load_config, pin_from_invite
from blockhub.hub.invite_book import InviteBook
from blockhub.hub.store import Store
from blockhub.invites import decode_invite
from blockhub.wire import canonical, envelope
from tests.memory import new_identity

A, B, G = new_identity(), new_identity(), new_identity()
GATEWAY = f"{G.id}@127.0.0.1:6610"


class BookTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)
        self.store = Store(None)
        self.book = InviteBook(self.store, self.clock)

    def key(self, made):
        return canonical.b64(bytes(decode_invite(made["code"]).key.verify_key))

    def test_create_keeps_the_public_key_only(self):
        made = self.book.create(B.id, [GATEWAY], uses=3, ttl=60, note="for Alice")
        invite = decode_invite(made["code"])
        self.assertEqual((invite.inviter, invite.gateways), (B.id, (GATEWAY,)))
        self.assertEqual((made["id"], made["expires"], made["uses"]), (invite.id, 1060, 3))
        [row] = [dict(r) for r in self.store.execute("SELECT * FROM invites")]
        self.assertEqual(row["key"], self.key(made))
        self.assertNotIn(invite.secret.hex(), json.dumps(row))
        self.assertNotIn(canonical.b64(invite.secret), json.dumps(row))

    def test_bad_arguments_are_one_line_errors(self):
        for kw in ({"uses": 0}, {"ttl": 0}, {"note": "x" * 201}):
            self.assertRaises(UserError, self.book.create, B.id, [GATEWAY], **kw)
        self.assertRaises(UserError, self.book.create, B.id, [])

    def test_each_use_is_spent_and_the_key_approved_then_it_is_used_up(self):
        made = self.book.create(B.id, [GATEWAY], uses=2)
        self.assertEqual(self.book.use(self.key(made), A.id, "n1"), made["id"])
        self.assertIn(A.id, self.store.approved_keys())
        self.book.use(self.key(made), B.id, "n2")
        self.assertRaises(InviteUsedUp, self.book.use, self.key(made), G.id, "n3")
        [listed] = self.book.all()
        self.assertEqual((listed["state"], listed["uses"], listed["used_by"]),
                         ("used", 0, [A.id, B.id]))

    def test_a_nonce_is_spent_once(self):
        made = self.book.create(B.id, [GATEWAY], uses=5)
        self.book.use(self.key(made), A.id, "n1")
        self.assertRaises(Replayed, self.book.use, self.key(made), A.id, "n1")
        self.assertEqual(self.book.all()[0]["uses"], 4)  # the refused use wrote nothing

    def test_expired_revoked_unknown(self):
        made = self.book.create(B.id, [GATEWAY], ttl=10)
        self.clock.advance(10)
        self.assertRaises(InviteExpired, self.book.check, self.key(made))
        other = self.book.create(B.id, [GATEWAY])
        self.assertEqual(self.book.revoke(other["id"].upper())["state"], "revoked")
        self.assertRaises(InviteRevoked, self.book.use, self.key(other), A.id, "n")
        self.assertRaises(InviteUnknown, self.book.check, canonical.b64(b"\x00" * 32))
        self.assertEqual([i["state"] for i in self.book.all()], ["expired", "revoked"])


class InvitedRequestTests(SynchronousTestCase):
    """The invite key signs the request; a box with a signature that does not cover
    this request, or half an invite, is refused."""

    def setUp(self):
        self.invite = decode_invite(InviteBook(Store(None), Clock()).create(
            B.id, [GATEWAY])["code"])

    def test_the_invite_signature_is_checked(self):
        sealed = seal_request(A, B.id, None, 100, b"\x01" * 16, "hi",
                              invite_key=self.invite.key, pow=7)
        request = open_request(B, sealed, A.id, 100)
        self.assertEqual(canonical.unb64(request.invite), bytes(self.invite.key.verify_key))
        self.assertEqual(request.pow, 7)
        self.assertNotIn(self.invite.secret, sealed)

    def tampered(self, change):
        sealed = seal_request(A, B.id, None, 100, b"\x01" * 16, "hi",
                              invite_key=self.invite.key)
        env = envelope.open_sealed(B, sealed, "handshake")
        body = dict(env.body)
        change(body)
        return envelope.seal(B.id, envelope.sign(A, "handshake", body))

    def test_a_signature_over_another_request_or_half_an_invite_is_refused(self):
        changed = self.tampered(lambda body: body.update(note="changed"))
        self.assertRaises(BadSignature, open_request, B, changed, A.id, 100)
        half = self.tampered(lambda body: body.pop("invite_sig"))
        self.assertRaises(BadMessage, open_request, B, half, A.id, 100)


class ConfigTests(SynchronousTestCase):
    def test_pinned_gateways_are_added_marked_and_read_back(self):
        path = os.path.join(self.mktemp())
        entry = GatewayEntry(G.id, "127.0.0.1", 6611)
        pin_from_invite(path, [entry], "invabc")
        pin_from_invite(path, [entry], "invabc")  # once only
        data = json.loads(open(path).read())
        self.assertEqual(data["Hub"]["Gateways"], [
            {"name": "from invite invabc", "pubKey": G.id, "lastKnownIP": "127.0.0.1",
             "port": 6611, "fromInvite": "invabc"}])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        [loaded] = load_config(path)
        self.assertEqual((loaded.id, loaded.host, loaded.port), (G.id, "127.0.0.1", 6611))
