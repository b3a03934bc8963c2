"""Write the test vectors of docs/vectors/ (docs/protocol.md, "Test vectors").

Every value is fixed (phrases from fixed entropy, fixed times and nonces, and a sealed
box made with a fixed ephemeral key, so it too comes out the same every time), so
running this again gives the same files; tests/test_vectors.py checks blockhub against
each vector and that this script still writes exactly what is committed.

    .venv/bin/python tools/make_vectors.py          # rewrite docs/vectors/*.json
"""

import hashlib
import json
import os
import sys

from mnemonic import Mnemonic
from nacl.public import Box, PrivateKey

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from blockhub import netkey, proof_of_work, slip10  # noqa: E402
from blockhub.fingerprint import fingerprint  # noqa: E402
from blockhub.gateway_records import SIGNED_FIELDS, make_record  # noqa: E402
from blockhub.handshake_bodies import sign_peer_hello  # noqa: E402
from blockhub.heads import conflict, make_head, proof_document, set_commitment  # noqa: E402
from blockhub.hubinfo import make_hubinfo  # noqa: E402
from blockhub.identity import Identity, box_public_key_for  # noqa: E402
from blockhub.ids import encode_id  # noqa: E402
from blockhub.invites import Invite, encode_invite  # noqa: E402
from blockhub.succession import make_commitment, make_succession, next_digest  # noqa: E402
from blockhub.wire import canonical, envelope, features, messages  # noqa: E402
from blockhub.wire.canonical import b64, unb64  # noqa: E402

OUT = os.path.join(ROOT, "docs", "vectors")
NOW = 1_700_000_000  # 2023-11-14T22:13:20Z: every time in the vectors
ENTROPY = {"alice": bytes(16), "bob": bytes(range(32)), "gateway": b"\x7f" * 16,
           "gateway-next": b"\x3c" * 16}
NETWORK_KEY = bytes.fromhex("a0" * 16 + "5b" * 16)
CHALLENGE = bytes(range(100, 132))
EPHEMERAL = bytes(range(200, 232))  # a real sender draws a fresh one for every box
NONCES = {"request": bytes(range(16)), "acceptance": bytes(range(16, 32)),
          "rejection": bytes(range(32, 48)), "punch": bytes(range(48, 64)),
          "invited": bytes(range(64, 80))}
INVITE_SECRET = bytes(range(80, 96))
POW_BITS = 8  # low, so the script finds the proof at once


def phrase(name: str) -> str:
    return Mnemonic("english").to_mnemonic(ENTROPY[name])


def ident(name: str) -> Identity:
    return Identity.from_phrase(phrase(name))


def identity_vector(name: str) -> dict:
    words = phrase(name)
    seed = Mnemonic.to_seed(words, passphrase="")
    key, chain = slip10.derive(seed, slip10.IDENTITY_PATH)
    me = Identity.from_phrase(words)
    digest = hashlib.blake2b(me.public_key, digest_size=32, person=b"blockhub-fprint")
    return {
        "name": name, "words": len(words.split()), "entropy": ENTROPY[name].hex(),
        "phrase": words, "bip39_seed": seed.hex(), "path": slip10.IDENTITY_PATH,
        "private_key": key.hex(), "chain_code": chain.hex(),
        "public_key": me.public_key.hex(),
        "checksum": hashlib.blake2b(me.public_key, digest_size=4,
                                    person=b"blockhub-id").digest().hex(),
        "id": me.id,
        "x25519_private_key": bytes(me.box_key()).hex(),
        "x25519_public_key": bytes(box_public_key_for(me.id)).hex(),
        "fingerprint_digest": digest.hexdigest(),
        "fingerprint": fingerprint(me.id),
    }


def ids_vectors() -> dict:
    good = ident("alice").id
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    flipped = good[:10] + alphabet[(alphabet.index(good[10]) + 1) % 32] + good[11:]
    last = alphabet.index(good[-1])
    return {
        "about": "ids as text; 'typed' spellings are forgiven where a person types an id "
                 "(command line, config) and refused on the wire",
        "accepted": [{"id": ident(n).id, "public_key": ident(n).public_key.hex()}
                     for n in ENTROPY],
        "typed": [{"text": "  " + good.upper() + "\n", "public_key":
                   ident("alice").public_key.hex()}],
        "rejected": [
            {"text": flipped, "why": "checksum does not match"},
            {"text": good[:-1] + alphabet[last | 1], "why": "the last character's two "
             "unused bits are not zero"},
            {"text": "bx" + good[2:], "why": "prefix is not bh"},
            {"text": good[:-1], "why": "59 characters, not 60"},
            {"text": good[:20] + "1" + good[21:], "why": "1 is not in the base32 alphabet"},
        ],
    }


def envelope_vector(env: envelope.Envelope, signer: Identity) -> dict:
    data = envelope.signed_bytes(env.kind, signer.public_key, env.body)
    return {"kind": env.kind, "signer": signer.id, "body": env.body,
            "canonical_body": canonical.dumps(env.body).decode("utf-8"),
            "signed_bytes": data.hex(), "envelope": env.to_json(),
            "canonical_envelope": canonical.dumps(env.to_json()).decode("utf-8")}


def invite() -> Invite:
    """Bob's invite to Alice: his id, his gateway, a fixed secret."""
    return Invite(ident("bob").id, (f"{ident('gateway').id}@198.51.100.1:6610",),
                  INVITE_SECRET)


def invited_request() -> tuple[dict, dict]:
    """Alice's request to Bob with his invite and a proof of work: the body the invite
    key signs (everything but ``invite_sig``), and the request's whole body."""
    alice, bob, key = ident("alice"), ident("bob"), invite().key
    nonce = NONCES["invited"]
    counter = proof_of_work.solve(alice.id, bob.id, nonce, NOW + 8, POW_BITS)
    body = {"from": alice.id, "to": bob.id, "at": NOW + 8, "nonce": b64(nonce),
            "note": "", "pow": counter, "invite": b64(bytes(key.verify_key))}
    signed = envelope.signed_bytes("invite", bytes(key.verify_key), body)
    return body, dict(body, invite_sig=b64(key.sign(signed).signature))


def heads():
    """The gateway's first head (no hub online), its second (Alice online), and another
    second head (Alice and Bob online) that cannot be on one chain with it."""
    gateway, alice, bob = ident("gateway"), ident("alice"), ident("bob")
    alice_info = make_hubinfo(alice, "Alice's hub", NOW * 1000, {}).to_json()
    bob_info = make_hubinfo(bob, "Bob", NOW * 1000 + 1, {}).to_json()
    first = make_head(gateway, 1, NOW * 1000 + 8, 0, set_commitment([]), None)
    second = make_head(gateway, 2, NOW * 1000 + 9, 1, set_commitment([alice_info]),
                       first.hash)
    other = make_head(gateway, 2, NOW * 1000 + 9, 2,
                      set_commitment([bob_info, alice_info]), first.hash)
    return first, second, other, [alice_info, bob_info]


def heads_vectors() -> dict:
    first, second, other, infos = heads()
    return {"set_commitments": [
                {"hubinfos": [], "commitment": set_commitment([]).hex()},
                {"hubinfos": infos[:1], "commitment": set_commitment(infos[:1]).hex()},
                {"hubinfos": infos, "commitment": set_commitment(infos).hex(),
                 "note": "hashed in the order of the signers' ids, whatever the order here"}],
            "chain": [{"head": h.to_json(), "hash": h.hash.hex()} for h in (first, second)],
            "equivocation": proof_document(second, other, conflict(second, other) or "")}


def succession_vectors() -> dict:
    """The gateway commits to its next key, then moves to it (docs/accountability.md)."""
    old, new = ident("gateway"), ident("gateway-next")
    commitment = make_commitment(old, new.id, NOW)
    succession = make_succession(old, new, NOW + 86400)
    body = succession.document["body"]
    return {"next_key": {"id": new.id, "public_key": new.public_key.hex(),
                         "digest": next_digest(new.id).hex()},
            "commitment": commitment.to_json(),
            "succession": succession.to_json(),
            "succession_signed_bytes": {
                role: envelope.signed_bytes("succession", key.public_key, body).hex()
                for role, key in (("old", old), ("new", new))},
            "record_with_next": make_record(old, "192.0.2.10", 6610, NOW, 7, commitment)}


def bodies() -> dict[str, envelope.Envelope]:
    alice, bob = ident("alice"), ident("bob")
    request = {"from": alice.id, "to": bob.id, "at": NOW,
               "nonce": b64(NONCES["request"]), "note": "Hi Bob, it's Alice ☕",
               "address": "198.51.100.7", "endpoint": "198.51.100.7:7001"}
    acceptance = {"from": bob.id, "to": alice.id, "at": NOW + 5,
                  "nonce": b64(NONCES["acceptance"]), "request": b64(NONCES["request"]),
                  "endpoint": "203.0.113.9:7002"}
    rejection = {"from": bob.id, "to": alice.id, "at": NOW + 5,
                 "nonce": b64(NONCES["rejection"]), "request": b64(NONCES["request"]),
                 "reason": "the pending list was full"}
    meta = {"region": "eu-west", "ünïcode": "✓", "\U0001f600": "astral key",
            "\ue000": "private-use key", "list": [1, -2, 9007199254740991]}
    return {
        "hubinfo": make_hubinfo(alice, "Alice's hub", NOW * 1000, meta).signed,
        "hubinfo-open": make_hubinfo(bob, "Bob", NOW * 1000 + 1, {},
                                     "203.0.113.9:7002").signed,
        "handshake": envelope.sign(alice, "handshake", request),
        "acceptance": envelope.sign(bob, "acceptance", acceptance),
        "rejection": envelope.sign(bob, "rejection", rejection),
        "peer-hello": sign_peer_hello(bob, alice.id, NOW + 6),
        # The invite key's signature over Alice's invited request, and that request.
        "invite": _by_invite(invited_request()[0]),
        "handshake-invited": envelope.sign(alice, "handshake", invited_request()[1]),
        # The gateway's second head: Alice online, after a first head of no one.
        "head": heads()[1].signed,
        # The gateway's commitment to its next key (succession.json has the rest).
        "key-commitment": make_commitment(ident("gateway"), ident("gateway-next").id,
                                          NOW).signed,
        # The old key's signature of the succession in succession.json (its old_sig).
        "succession": envelope.sign(ident("gateway"), "succession",
                                    succession_vectors()["succession"]["body"]),
        "rejection-difficulty": envelope.sign(bob, "rejection", dict(
            rejection, reason="a proof of work of 20 bits is needed", difficulty=20)),
        # Alice offers Bob a punch (docs/nat.md): her router's mapping of her listen
        # port, and her own address with it.
        "punch": envelope.sign(alice, "punch", {
            "from": alice.id, "to": bob.id, "at": NOW + 7, "attempt": b64(NONCES["punch"]),
            "step": "offer", "public": "198.51.100.7:7001", "local": "192.168.1.20:7001"}),
        # A gateway node telling its cluster that Alice joined it (docs/cluster.md).
        "cluster": envelope.sign(ident("gateway"), "cluster", {
            "type": "presence", "cluster": "blockhub", "node": ident("gateway").id,
            "time": NOW * 1000 + 7, "seq": NOW * 1000000, "event": "joined",
            "hub": alice.id, "since": NOW * 1000 + 7,
            "hubinfo": make_hubinfo(alice, "Alice's hub", NOW * 1000, meta).to_json()}),
    }


def _by_invite(body: dict) -> envelope.Envelope:
    key = invite().key
    data = envelope.signed_bytes("invite", bytes(key.verify_key), body)
    return envelope.Envelope("invite", encode_id(bytes(key.verify_key)), body,
                             key.sign(data).signature)


class _Key:
    """An invite key where an envelope vector wants a signer."""

    def __init__(self, public_key: bytes):
        self.public_key, self.id = public_key, encode_id(public_key)


def envelopes_vectors() -> dict:
    signers = {"hubinfo": "alice", "hubinfo-open": "bob", "handshake": "alice",
               "acceptance": "bob", "rejection": "bob", "peer-hello": "bob",
               "punch": "alice", "cluster": "gateway", "handshake-invited": "alice",
               "rejection-difficulty": "bob", "head": "gateway",
               "key-commitment": "gateway", "succession": "gateway"}
    invite_key = _Key(bytes(invite().key.verify_key))
    return {"domain": envelope.DOMAIN.decode("ascii"),
            "vectors": {name: envelope_vector(env, ident(signers[name]) if name in signers
                                              else invite_key)
                        for name, env in bodies().items()}}


def invites_vectors() -> dict:
    """An invite code with what it holds, and the proof of work of the invited request."""
    inv, (_, request) = invite(), invited_request()
    prefix = (ident("alice").public_key + ident("bob").public_key + NONCES["invited"]
              + (NOW + 8).to_bytes(8, "big"))
    digest = hashlib.blake2b(prefix + request["pow"].to_bytes(8, "big"), digest_size=32,
                             person=b"blockhub-pow").digest()
    return {"invite": {"code": encode_invite(inv), "inviter": inv.inviter,
                       "gateways": list(inv.gateways), "secret": inv.secret.hex(),
                       "invite_private_seed": bytes(inv.key).hex(),
                       "invite_public_key": bytes(inv.key.verify_key).hex(),
                       "id": inv.id},
            "proof_of_work": {"sender": request["from"], "receiver": request["to"],
                              "nonce": request["nonce"], "at": request["at"],
                              "counter": request["pow"], "bits": POW_BITS,
                              "hashed": (prefix + request["pow"].to_bytes(8, "big")).hex(),
                              "digest": digest.hex(),
                              "zero_bits": proof_of_work.zero_bits(digest)}}


def seal_fixed(recipient_id: str, plain: bytes) -> bytes:
    """crypto_box_seal with a fixed ephemeral key: ephemeral public key, then
    crypto_box(plain) under the nonce BLAKE2b-192(ephemeral pk || recipient pk)."""
    ephemeral = PrivateKey(EPHEMERAL)
    recipient = box_public_key_for(recipient_id)
    nonce = hashlib.blake2b(bytes(ephemeral.public_key) + bytes(recipient),
                            digest_size=24).digest()
    return bytes(ephemeral.public_key) + Box(ephemeral, recipient).encrypt(
        plain, nonce).ciphertext


def sealed_vectors() -> dict:
    out = {}
    for name, to in (("handshake", "bob"), ("acceptance", "alice"), ("rejection", "alice"),
                     ("punch", "bob")):
        env = bodies()[name]
        plain = canonical.dumps(env.to_json())
        box = seal_fixed(ident(to).id, plain)
        out[name] = {"recipient": ident(to).id,
                     "recipient_x25519_private_key": bytes(ident(to).box_key()).hex(),
                     "ephemeral_private_key": EPHEMERAL.hex(),
                     "plaintext": plain.decode("utf-8"), "sealed": b64(box),
                     "sealed_length": len(box)}
    return {"about": "crypto_box_seal boxes; the ephemeral key is fixed only so that the "
                     "vector is reproducible: a sender MUST draw a fresh one per box",
            "vectors": out}


def netkey_vector() -> dict:
    gw, alice = ident("gateway"), ident("alice")
    proof = netkey.proof(NETWORK_KEY, CHALLENGE, gw.public_key, alice.public_key)
    return {"network_key": NETWORK_KEY.hex(), "challenge": b64(CHALLENGE),
            "gateway": gw.id, "gateway_public_key": gw.public_key.hex(),
            "hub": alice.id, "hub_public_key": alice.public_key.hex(),
            "hmac_message": (netkey.DOMAIN + CHALLENGE + gw.public_key
                             + alice.public_key).hex(),
            "proof": b64(proof), "proof_hex": proof.hex()}


def record_vector() -> dict:
    gw = ident("gateway")
    record = make_record(gw, "192.0.2.10", 6610, NOW, days=7)
    body = {name: record[name] for name in SIGNED_FIELDS}
    return {"record": record, "signed_body": canonical.dumps(body).decode("utf-8"),
            "signed_bytes": envelope.signed_bytes("gateway-record", gw.public_key,
                                                  body).hex(),
            "valid_from": record["issued"] - 300, "valid_until": record["expires"] - 1,
            "list": {"gateways": [record]}}


def frame_samples() -> list[tuple[str, dict]]:
    alice, bob, gw = ident("alice"), ident("bob"), ident("gateway")
    env = bodies()
    sealed = sealed_vectors()["vectors"]
    spoken = features.ours()
    info, info_json = env["hubinfo"], env["hubinfo"].to_json()
    return [
        ("hello", dict(gateway=gw.id, observed="198.51.100.7:40001", challenge=b64(CHALLENGE),
                       mode="private", time=NOW, features=spoken)),
        ("join", dict(hubinfo=info_json, proof=netkey_vector()["proof"], features=spoken)),
        ("welcome", dict(online=1)),
        ("refused", dict(reason="protocol error: join: missing field 'hubinfo'")),
        ("presence", dict(event="joined", hub=alice.id, hubinfo=info_json)),
        ("presence", dict(event="left", hub=alice.id)),
        ("update", dict(hubinfo=info.to_json())),
        ("ping", dict(n=1)), ("pong", dict(n=1)),
        ("shutdown", dict(reason="gateway stopping")),
        ("relay", dict(to=bob.id, kind="request", sealed=sealed["handshake"]["sealed"])),
        ("deliver", {"from": alice.id, "kind": "request",
                     "sealed": sealed["handshake"]["sealed"]}),
        ("relay", dict(to=bob.id, kind="punch", sealed=sealed["punch"]["sealed"])),
        ("relay-refused", dict(to=bob.id, reason="that hub is not online here")),
        ("circuit-open", dict(to=bob.id)),
        ("circuit-ready", dict(circuit=1, peer=bob.id)),
        ("circuit-credit", dict(circuit=1, bytes=262144)),
        ("circuit-close", dict(circuit=1, reason="replaced")),
        ("circuit-refused", dict(to=bob.id, reason="that hub is not online here")),
        ("head", dict(head=env["head"].to_json())),
        ("kept", dict(seq=NOW * 1000 + 2)),
        ("next-key", dict(commitment=env["key-commitment"].to_json())),
        ("succession", dict(succession=succession_vectors()["succession"])),
        ("peer-head", dict(head=env["head"].to_json())),
        ("peer-hello", dict(hello=env["peer-hello"].to_json(), features=spoken)),
        ("peer-request", dict(sealed=sealed["handshake"]["sealed"], features=spoken)),
        ("peer-ready", dict(status="connected", features=spoken)),
        ("peer-ready", dict(status="pending", reason="waiting for the operator's approval")),
        ("message", dict(seq=1, text="hello, Bob ☕", at=NOW + 7)),
        ("ack", dict(seq=1)),
        ("error", dict(reason="protocol error: unexpected 'peer-hello' on an established "
                              "peer link", fatal=True)),
    ]


def frames_vectors() -> dict:
    out = []
    for kind, fields in frame_samples():
        frame = messages.encode(messages.make(kind, **fields))
        out.append({"type": kind, "code": messages.SCHEMAS[kind][0], "body": fields,
                    "frame": frame.hex()})
    payload = bytes.fromhex("170303001a") + bytes(range(26))  # the shape of a TLS record
    out.append({"type": "circuit-data", "code": messages.CIRCUIT_DATA,
                "circuit": 1, "payload": payload.hex(),
                "frame": messages.encode_circuit_data(1, payload).hex()})
    out += raw_relay_vectors()
    return {"about": "each frame: 4-byte length, version 1, type code, canonical body; "
                     "circuit-data, relay-raw and deliver-raw are binary: circuit-data a "
                     "4-byte circuit number, then payload; relay-raw and deliver-raw a "
                     "hub's raw 32-byte key, one kind byte, then the sealed box",
            "vectors": out}


def raw_relay_vectors() -> list[dict]:
    """raw-relay/1: the relay and deliver of frames.json's first relay, in binary."""
    alice, bob = ident("alice"), ident("bob")
    sealed = unb64(sealed_vectors()["vectors"]["handshake"]["sealed"])
    out = []
    for kind, code, hub, field, encode in (
            ("relay-raw", messages.RELAY_RAW, bob, "to", messages.encode_relay_raw),
            ("deliver-raw", messages.DELIVER_RAW, alice, "from", messages.encode_deliver_raw)):
        out.append({"type": kind, "code": code, field: hub.id,
                    "key": hub.public_key.hex(), "kind": "request",
                    "kind_byte": messages.RAW_KINDS.index("request"),
                    "sealed": b64(sealed), "frame": encode(hub.id, "request", sealed).hex()})
    return out


def canonical_vectors() -> dict:
    values = [
        {"b": 1, "a": [True, False, None], "": "empty key"},
        {"\ue000": 1, "\U0001f600": 2, "é": 3, "z": 4},
        {"controls": "\x00\x08\t\n\x0c\r\x1f", "quote": "\"\\/", "other": "\x7f\u2028é☕"},
        {"max": 9007199254740991, "min": -9007199254740991, "zero": 0},
    ]
    return {"valid": [{"value": v, "canonical": canonical.dumps(v).decode("utf-8")}
                      for v in values],
            "refused_when_read": [
                {"json": '{"a":1,"a":2}', "why": "a repeated key"},
                {"json": '{"a":1.0}', "why": "a number with a fraction"},
                {"json": '{"a":1e2}', "why": "a number with an exponent"}],
            "no_canonical_form": [
                {"json": '{"a":9007199254740992}', "why": "an integer beyond 2^53 - 1"},
                {"json": '{"a":"\\ud800"}', "why": "a lone surrogate"}]}


def build() -> dict[str, dict]:
    """Every vector file, by name."""
    return {
        "identity.json": {"vectors": [identity_vector(n) for n in ENTROPY]},
        "ids.json": ids_vectors(),
        "canonical.json": canonical_vectors(),
        "envelopes.json": envelopes_vectors(),
        "sealed.json": sealed_vectors(),
        "netkey.json": netkey_vector(),
        "gateway-record.json": record_vector(),
        "frames.json": frames_vectors(),
        "invites.json": invites_vectors(),
        "heads.json": heads_vectors(),
        "succession.json": succession_vectors(),
    }


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    for name, content in build().items():
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump(content, f, indent=2, ensure_ascii=False)
            f.write("\n")
    print(f"wrote {len(build())} files to {os.path.relpath(OUT, ROOT)}/")


if __name__ == "__main__":
    main()
