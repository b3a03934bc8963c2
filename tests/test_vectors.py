"""blockhub against every vector of docs/vectors/, and the vectors against the script
that writes them (tools/make_vectors.py), so that neither can drift from the other."""

import base64
import hashlib
import importlib.util
import json
import os

from nacl.public import PrivateKey, SealedBox
from twisted.trial.unittest import SynchronousTestCase

from blockhub import gateway_records, heads, netkey, proof_of_work, succession
from blockhub.errors import BadFrame, BadId, BadMessage
from blockhub.fingerprint import fingerprint
from blockhub.gateway_records import check_record
from blockhub.handshake_bodies import (
    check_peer_hello,
    open_acceptance,
    open_rejection,
    open_request,
)
from blockhub.hubinfo import verify_hubinfo
from blockhub.identity import Identity
from blockhub.ids import decode_id, encode_id
from blockhub.invites import decode_invite
from blockhub.punch_bodies import open_punch
from blockhub.wire import canonical, envelope, messages
from blockhub.wire.framing import FrameDecoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = os.path.join(ROOT, "docs", "vectors")
NOW = 1_700_000_000


def load(name):
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        return json.load(f)


def generator():
    spec = importlib.util.spec_from_file_location(
        "make_vectors", os.path.join(ROOT, "tools", "make_vectors.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def identities() -> dict[str, Identity]:
    return {v["name"]: Identity.from_phrase(v["phrase"])
            for v in load("identity.json")["vectors"]}


class NoDriftTests(SynchronousTestCase):
    def test_the_files_are_what_the_script_writes(self):
        built = generator().build()
        self.assertEqual(sorted(built), sorted(os.listdir(VECTORS)))
        for name, content in built.items():
            self.assertEqual(load(name), json.loads(json.dumps(content)), name)


class IdentityVectorTests(SynchronousTestCase):
    def test_phrase_key_id_fingerprint(self):
        sizes = set()
        for v in load("identity.json")["vectors"]:
            me = Identity.from_phrase(v["phrase"])
            sizes.add(v["words"])
            self.assertEqual(len(v["phrase"].split()), v["words"])
            self.assertEqual(me.private_seed.hex(), v["private_key"])
            self.assertEqual(me.public_key.hex(), v["public_key"])
            self.assertEqual(me.id, v["id"])
            key = bytes.fromhex(v["public_key"])
            checksum = hashlib.blake2b(key, digest_size=4, person=b"blockhub-id").digest()
            self.assertEqual(checksum.hex(), v["checksum"])
            text = "bh" + base64.b32encode(key + checksum).decode().rstrip("=").lower()
            self.assertEqual(text, v["id"])
            self.assertEqual(bytes(me.box_key()).hex(), v["x25519_private_key"])
            self.assertEqual(bytes(me.box_key().public_key).hex(), v["x25519_public_key"])
            self.assertEqual(fingerprint(v["id"]), v["fingerprint"])
            self.assertEqual(hashlib.blake2b(key, digest_size=32, person=b"blockhub-fprint")
                             .hexdigest(), v["fingerprint_digest"])
        self.assertEqual(sizes, {12, 24})

    def test_ids(self):
        v = load("ids.json")
        for good in v["accepted"]:
            self.assertEqual(decode_id(good["id"]).hex(), good["public_key"])
            self.assertEqual(encode_id(bytes.fromhex(good["public_key"])), good["id"])
        for typed in v["typed"]:
            self.assertEqual(decode_id(typed["text"]).hex(), typed["public_key"])
            self.assertRaises(BadMessage, messages.make, "relay-refused", to=typed["text"],
                              reason="x")
        self.assertEqual(len(v["rejected"]), 5)
        for bad in v["rejected"]:
            self.assertRaises(BadId, decode_id, bad["text"])


class CanonicalVectorTests(SynchronousTestCase):
    def test_canonical_bytes(self):
        v = load("canonical.json")
        for case in v["valid"]:
            self.assertEqual(canonical.dumps(case["value"]).decode(), case["canonical"])
            self.assertEqual(canonical.loads(case["canonical"].encode()), case["value"])
        for case in v["refused_when_read"]:
            self.assertRaises(BadFrame, canonical.loads, case["json"].encode())
        for case in v["no_canonical_form"]:
            value = json.loads(case["json"])
            self.assertRaises(BadMessage, canonical.dumps, value)


class EnvelopeVectorTests(SynchronousTestCase):
    def test_each_kind_signs_exactly_these_bytes(self):
        v = load("envelopes.json")
        self.assertEqual(v["domain"].encode(), envelope.DOMAIN)
        kinds = set()
        for case in v["vectors"].values():
            kinds.add(case["kind"])
            key = decode_id(case["signer"])
            data = envelope.signed_bytes(case["kind"], key, case["body"])
            self.assertEqual(data.hex(), case["signed_bytes"])
            self.assertEqual(data, envelope.DOMAIN + case["kind"].encode() + b"\x00" + key
                             + case["canonical_body"].encode())
            self.assertEqual(canonical.dumps(case["body"]).decode(), case["canonical_body"])
            checked = envelope.verify(case["envelope"], case["kind"])
            self.assertEqual(canonical.b64(checked.sig), case["envelope"]["sig"])
            self.assertEqual(canonical.dumps(case["envelope"]).decode(),
                             case["canonical_envelope"])
        self.assertEqual(kinds, set(envelope.KINDS) - {"gateway-record"})
        self.assertEqual(verify_hubinfo(v["vectors"]["hubinfo"]["envelope"]).seq,
                         NOW * 1000)
        self.assertEqual(verify_hubinfo(v["vectors"]["hubinfo-open"]["envelope"]).endpoint,
                         "203.0.113.9:7002")
        hello = v["vectors"]["peer-hello"]
        check_peer_hello(identities()["alice"], hello["envelope"], hello["signer"], NOW)

    def test_sealed_boxes_open_with_the_key_given(self):
        people = identities()
        openers = {"handshake": open_request, "acceptance": open_acceptance,
                   "rejection": open_rejection, "punch": open_punch}
        for kind, case in load("sealed.json")["vectors"].items():
            box = canonical.unb64(case["sealed"])
            self.assertEqual(len(box), case["sealed_length"])
            key = PrivateKey(bytes.fromhex(case["recipient_x25519_private_key"]))
            self.assertEqual(SealedBox(key).decrypt(box).decode(), case["plaintext"])
            me = [p for p in people.values() if p.id == case["recipient"]][0]
            opened = envelope.open_sealed(me, box, kind)
            self.assertEqual(canonical.dumps(opened.to_json()).decode(), case["plaintext"])
            openers[kind](me, box, opened.signer, NOW + 5)
            # The box is what a fixed ephemeral key gives: anyone can make it again.
            self.assertEqual(generator().seal_fixed(case["recipient"],
                                                    case["plaintext"].encode()), box)


class OtherVectorTests(SynchronousTestCase):
    def test_network_key_proof(self):
        v = load("netkey.json")
        key, challenge = bytes.fromhex(v["network_key"]), canonical.unb64(v["challenge"])
        gw, hub = bytes.fromhex(v["gateway_public_key"]), bytes.fromhex(v["hub_public_key"])
        self.assertEqual((decode_id(v["gateway"]), decode_id(v["hub"])), (gw, hub))
        self.assertEqual(netkey.DOMAIN + challenge + gw + hub,
                         bytes.fromhex(v["hmac_message"]))
        proof = netkey.proof(key, challenge, gw, hub)
        self.assertEqual((canonical.b64(proof), proof.hex()), (v["proof"], v["proof_hex"]))
        self.assertTrue(netkey.check_proof(key, challenge, gw, hub, proof))

    def test_gateway_record(self):
        v = load("gateway-record.json")
        record = v["record"]
        for now in (v["valid_from"], v["valid_until"]):
            self.assertIsNone(check_record(record, now))
        self.assertEqual(check_record(record, v["valid_from"] - 1), "issued in the future")
        self.assertEqual(check_record(record, v["valid_until"] + 1), "expired")
        body = {k: record[k] for k in ("pubKey", "IP", "Port", "issued", "expires")}
        self.assertEqual(canonical.dumps(body).decode(), v["signed_body"])
        self.assertEqual(envelope.signed_bytes("gateway-record", decode_id(record["pubKey"]),
                                               body).hex(), v["signed_bytes"])
        self.assertEqual(v["list"], {"gateways": [record]})

    def test_frames_of_every_type(self):
        seen = set()
        for case in load("frames.json")["vectors"]:
            frame = bytes.fromhex(case["frame"])
            [(code, body)] = FrameDecoder().feed(frame)
            self.assertEqual((frame[4], code), (1, case["code"]))
            self.assertEqual(int.from_bytes(frame[:4], "big"), len(frame) - 4)
            if case["type"] == "circuit-data":
                message = messages.decode(code, body)
                self.assertEqual((message["circuit"], message["data"].hex()),
                                 (case["circuit"], case["payload"]))
                self.assertEqual(body[:4], case["circuit"].to_bytes(4, "big"))
                seen.add(case["type"])
                continue
            if case["type"] in ("relay-raw", "deliver-raw"):
                self.check_raw_relay(case, code, body)
                seen.add(case["type"])
                continue
            self.assertEqual(body, canonical.dumps(case["body"]))
            message = messages.decode(code, body)
            self.assertEqual(message.kind, case["type"])
            self.assertEqual(messages.encode(message), frame)
            seen.add(case["type"])
        self.assertEqual(seen, set(messages.SCHEMAS) | {"circuit-data", "relay-raw",
                                                         "deliver-raw"})

    def check_raw_relay(self, case, code, body):
        """raw-relay/1: the key, the kind's byte, the box; the same box as JSON's base64."""
        hub = "to" if case["type"] == "relay-raw" else "from"
        self.assertEqual(body[:32].hex(), case["key"])
        self.assertEqual(decode_id(case[hub]).hex(), case["key"])
        self.assertEqual(body[32], case["kind_byte"])
        self.assertEqual(canonical.b64(body[33:]), case["sealed"])
        message = messages.decode(code, body)
        self.assertEqual((message.kind, message[hub], message["kind"], message["sealed"]),
                         (case["type"], case[hub], case["kind"], body[33:]))
        encode = (messages.encode_relay_raw if hub == "to" else messages.encode_deliver_raw)
        self.assertEqual(encode(case[hub], case["kind"], body[33:]).hex(), case["frame"])


class InviteVectorTests(SynchronousTestCase):
    def test_invite_code_holds_what_it_says(self):
        v = load("invites.json")["invite"]
        invite = decode_invite(v["code"])
        self.assertEqual((invite.inviter, list(invite.gateways), invite.secret.hex()),
                         (v["inviter"], v["gateways"], v["secret"]))
        self.assertEqual(bytes(invite.key).hex(), v["invite_private_seed"])
        self.assertEqual(bytes(invite.key.verify_key).hex(), v["invite_public_key"])
        self.assertEqual(invite.id, v["id"])

    def test_proof_of_work(self):
        v = load("invites.json")["proof_of_work"]
        nonce = canonical.unb64(v["nonce"])
        hashed = bytes.fromhex(v["hashed"])
        self.assertEqual(hashed, decode_id(v["sender"]) + decode_id(v["receiver"]) + nonce
                         + v["at"].to_bytes(8, "big") + v["counter"].to_bytes(8, "big"))
        digest = hashlib.blake2b(hashed, digest_size=32, person=b"blockhub-pow").digest()
        self.assertEqual(digest.hex(), v["digest"])
        self.assertGreaterEqual(v["zero_bits"], v["bits"])
        self.assertTrue(proof_of_work.check(v["sender"], v["receiver"], nonce, v["at"],
                                            v["counter"], v["bits"]))

    def test_invited_request_opens_with_its_invite(self):
        """The invited request, sealed to Bob, opens with both signatures checked; the
        invite signature covers the body without ``invite_sig``."""
        ids = identities()
        case = load("envelopes.json")["vectors"]["handshake-invited"]
        invite_public = bytes.fromhex(load("invites.json")["invite"]["invite_public_key"])
        sealed = envelope.seal(ids["bob"].id, envelope.verify(case["envelope"], "handshake"))
        request = open_request(ids["bob"], sealed, ids["alice"].id, NOW + 8)
        self.assertEqual(canonical.unb64(request.invite), invite_public)
        self.assertEqual(request.pow, case["body"]["pow"])
        by_invite = load("envelopes.json")["vectors"]["invite"]
        rest = {k: v for k, v in case["body"].items() if k != "invite_sig"}
        self.assertEqual(by_invite["body"], rest)
        self.assertEqual(by_invite["envelope"]["sig"], case["body"]["invite_sig"])


class HeadVectorTests(SynchronousTestCase):
    def test_commitments_chain_and_proof(self):
        v = load("heads.json")
        for case in v["set_commitments"]:
            self.assertEqual(heads.set_commitment(case["hubinfos"]).hex(), case["commitment"])
            self.assertEqual(heads.set_commitment(reversed(case["hubinfos"])).hex(),
                             case["commitment"])
        first, second = (heads.verify_head(c["head"]) for c in v["chain"])
        self.assertEqual([first.hash.hex(), second.hash.hex()],
                         [c["hash"] for c in v["chain"]])
        self.assertEqual(second.prev, canonical.b64(first.hash))
        self.assertIsNone(heads.conflict(first, second))
        self.assertIn("two different heads 2", heads.check_proof(v["equivocation"]))

    def test_commitment_and_succession(self):
        v = load("succession.json")
        new_id = v["next_key"]["id"]
        self.assertEqual(succession.next_digest(new_id).hex(), v["next_key"]["digest"])
        commitment = succession.verify_commitment(v["commitment"])
        self.assertTrue(commitment.names(new_id))
        moved = succession.check_succession(v["succession"])
        self.assertEqual(moved.new, new_id)
        self.assertIsNone(succession.refusal(moved, commitment.gateway, commitment))
        for role in ("old", "new"):
            key = decode_id(v["succession"]["body"][role])
            self.assertEqual(envelope.signed_bytes("succession", key,
                                                   v["succession"]["body"]).hex(),
                             v["succession_signed_bytes"][role])
        record = v["record_with_next"]
        self.assertIsNone(gateway_records.check_record(record, record["issued"]))
        self.assertEqual(gateway_records.commitment_of(record), commitment)
