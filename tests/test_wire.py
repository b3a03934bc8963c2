import datetime
import json
import os

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import (
    BadFrame,
    BadMessage,
    BadSeal,
    BadSignature,
    FrameTooLarge,
    ProtocolError,
)
from blockhub.hubinfo import verify_hubinfo
from blockhub.identity import Identity, new_phrase
from blockhub.wire import canonical, envelope, messages
from blockhub.wire.canonical import b64
from blockhub.wire.framing import FrameDecoder, encode_frame
from blockhub.wire.schema import MAX_TIME, Dict, Str

ALICE = Identity.from_phrase(new_phrase())
BOB = Identity.from_phrase(new_phrase())
HUBINFO = envelope.sign(ALICE, "hubinfo", {"id": ALICE.id, "name": "a", "seq": 1}).to_json()

SAMPLES = {
    "hello": dict(gateway=BOB.id, observed="127.0.0.1:5000", challenge=b64(os.urandom(32)),
                  mode="private", time=1700000000),
    "join": dict(hubinfo=HUBINFO, proof=b64(os.urandom(32))),
    "welcome": dict(online=3),
    "refused": dict(reason="not on the allow list"),
    "presence": dict(event="joined", hub=ALICE.id, hubinfo=HUBINFO),
    "update": dict(hubinfo=HUBINFO),
    "ping": dict(n=1),
    "pong": dict(n=1),
    "shutdown": dict(reason="stopping"),
    "relay": dict(to=BOB.id, kind="request", sealed=b64(b"x" * 100)),
    "deliver": dict(**{"from": ALICE.id, "kind": "acceptance", "sealed": b64(b"x" * 100)}),
    "relay-refused": dict(to=BOB.id, reason="offline"),
    "circuit-open": dict(to=BOB.id),
    "circuit-ready": dict(circuit=1, peer=BOB.id),
    "circuit-credit": dict(circuit=1, bytes=65536),
    "circuit-close": dict(circuit=1, reason="idle"),
    "circuit-refused": dict(to=BOB.id, reason="not online here"),
    "peer-hello": dict(hello=HUBINFO),
    "peer-request": dict(sealed=b64(b"y" * 10)),
    "peer-ready": dict(status="pending", reason=None),
    "message": dict(seq=1, text="héllo", at=5),
    "ack": dict(seq=1),
    "error": dict(reason="bad", fatal=True),
    "head": dict(head=HUBINFO),  # an envelope: the frame checks its shape only
    "kept": dict(seq=1700000000000),
    "peer-head": dict(head=HUBINFO),
    "next-key": dict(commitment=HUBINFO),  # shape only, like head
    "succession": dict(succession={"body": {}}),  # checked by blockhub.succession
}


def roundtrip(frame):
    [(code, body)] = FrameDecoder().feed(frame)
    return messages.decode(code, body)


class MessageTests(SynchronousTestCase):
    def test_every_kind_has_a_sample(self):
        self.assertEqual(set(SAMPLES), set(messages.SCHEMAS))

    @given(st.sampled_from(sorted(SAMPLES)))
    def test_round_trip(self, kind):
        msg = messages.make(kind, **SAMPLES[kind])
        self.assertEqual(roundtrip(messages.encode(msg)), msg)

    @given(st.sampled_from(sorted(SAMPLES)), st.data())
    def test_split_anywhere(self, kind, data):
        frame = messages.encode(messages.make(kind, **SAMPLES[kind])) * 2
        cut = data.draw(st.integers(0, len(frame)))
        decoder = FrameDecoder()
        got = decoder.feed(frame[:cut]) + decoder.feed(frame[cut:])
        self.assertEqual(len(got), 2)

    @given(st.sampled_from(sorted(SAMPLES)), st.data())
    def test_truncated_frame_is_incomplete_then_rejected(self, kind, data):
        frame = messages.encode(messages.make(kind, **SAMPLES[kind]))
        cut = data.draw(st.integers(0, len(frame) - 1))
        decoder = FrameDecoder()
        self.assertEqual(decoder.feed(frame[:cut]), [])
        self.assertEqual(decoder.buffered, cut)

    @settings(max_examples=300)
    @given(st.sampled_from(sorted(SAMPLES)), st.data())
    def test_bit_flip_is_rejected_or_harmless(self, kind, data):
        frame = bytearray(messages.encode(messages.make(kind, **SAMPLES[kind])))
        pos = data.draw(st.integers(0, len(frame) - 1))
        frame[pos] ^= 1 << data.draw(st.integers(0, 7))
        try:
            for code, body in FrameDecoder().feed(bytes(frame)):
                messages.decode(code, body)
        except ProtocolError:
            pass  # the specific errors are all ProtocolErrors

    def test_oversized_header_rejected_before_body(self):
        decoder = FrameDecoder(max_frame=1000)
        e = self.assertRaises(FrameTooLarge, decoder.feed, b"\x00\x00\x03\xe9")
        self.assertIn("1001", str(e))
        self.assertRaises(FrameTooLarge, encode_frame, 1, b"x" * 1000, 1000)

    def test_bad_version_and_type(self):
        self.assertRaises(BadFrame, FrameDecoder().feed, b"\x00\x00\x00\x02\x09\x01")
        self.assertRaises(BadFrame, FrameDecoder().feed, b"\x00\x00\x00\x01\x01")
        self.assertRaises(BadFrame, messages.decode, 250, b"{}")

    def test_bad_bodies(self):
        for body in [b"[]", b"{", b"\xff", b'{"n":1.5}', b'{"n":"1"}', b'{"n":-1}',
                     b'{}', b'{"n":1,"x":2}', b'{"n":true}']:
            self.assertRaises((BadFrame, BadMessage), messages.decode, 7, body)

    @given(st.binary(max_size=300))
    def test_random_bytes_never_crash(self, junk):
        try:
            for code, body in FrameDecoder(4096).feed(junk):
                messages.decode(code, body)
        except ProtocolError:
            pass


SENDER = Identity.from_phrase(new_phrase())


class DeliverFastPathTests(SynchronousTestCase):
    @settings(max_examples=60)
    @given(st.sampled_from(messages.RELAYED.choices), st.binary(max_size=2048))
    def test_the_deliver_frame_is_the_canonical_one(self, kind, sealed):
        sender = SENDER.id
        fields = {"from": sender, "kind": kind, "sealed": b64(sealed)}
        self.assertEqual(messages.encode_deliver(sender, kind, b64(sealed)),
                         messages.encode(messages.make("deliver", **fields)))


class PingPongFastPathTests(SynchronousTestCase):
    """A ping is read, and its pong written, without the general decoder and encoder."""

    @given(st.integers(0, canonical.MAX_INT))
    def test_the_same_as_the_general_path(self, n):
        ping = messages.encode(messages.make("ping", n=n))
        self.assertEqual(messages.ping_number(ping[6:]), n)
        self.assertEqual(messages.encode_pong(n), messages.encode(messages.make("pong", n=n)))

    def test_any_other_body_goes_through_the_decoder(self):
        self.assertEqual(messages.ping_number(b'{"n": 5}'), 5)  # JSON, if not canonical
        for body in (b'{"n":05}', b'{"n":-1}', b'{"n":1.0}', b'{"n":9007199254740992}',
                     b'{"m":1}', b'{"n":1,"n":1}', b'', b'{"n":1}x'):
            self.assertRaises(ProtocolError, messages.ping_number, body)


class EnvelopeTests(SynchronousTestCase):
    def test_sign_verify(self):
        env = envelope.sign(ALICE, "handshake", {"to": BOB.id, "n": 1})
        got = envelope.verify(env.to_json(), "handshake")
        self.assertEqual(got.signer, ALICE.id)
        self.assertEqual(got.body, {"to": BOB.id, "n": 1})

    def test_domain_separation(self):
        env = envelope.sign(ALICE, "handshake", {"n": 1}).to_json()
        self.assertRaises(BadSignature, envelope.verify, env, "hubinfo")
        env["kind"] = "hubinfo"
        self.assertRaises(BadSignature, envelope.verify, env, "hubinfo")

    def test_tampered_body_or_signer(self):
        env = envelope.sign(ALICE, "hubinfo", {"n": 1}).to_json()
        self.assertRaises(BadSignature, envelope.verify, dict(env, body={"n": 2}), "hubinfo")
        self.assertRaises(BadSignature, envelope.verify, dict(env, signer=BOB.id), "hubinfo")

    def test_seal_only_recipient_opens(self):
        env = envelope.sign(ALICE, "handshake", {"to": BOB.id})
        box = envelope.seal(BOB.id, env)
        self.assertEqual(envelope.open_sealed(BOB, box, "handshake").signer, ALICE.id)
        self.assertRaises(BadSeal, envelope.open_sealed, ALICE, box, "handshake")
        flipped = bytes([box[0] ^ 1]) + box[1:]
        self.assertRaises(BadSeal, envelope.open_sealed, BOB, flipped, "handshake")


def _text_fields(spec):
    """The names of a schema's text fields (``Str``, optional or not)."""
    for name, field in spec.items():
        inner = getattr(field, "inner", field)
        if isinstance(inner, Str):
            yield name


LONE = "\ud800"


class TextTests(SynchronousTestCase):
    """A lone surrogate has no UTF-8 form: refused at the schema as a BadMessage."""

    def test_every_text_field_refuses_a_lone_surrogate(self):
        checked = 0
        for kind, (code, spec) in messages.SCHEMAS.items():
            for name in _text_fields(spec):
                body = dict(SAMPLES[kind], **{name: "ok" + LONE})
                self.assertRaises(BadMessage, messages.make, kind, **body)
                # As a peer would send it: JSON escapes, which json.loads turns into
                # the surrogate.
                wire = json.dumps({k: v for k, v in body.items() if v is not None})
                self.assertRaises(BadMessage, messages.decode, code, wire.encode())
                checked += 1
        self.assertGreater(checked, 5)

    def test_message_text(self):
        body = json.dumps({"seq": 1, "text": "hi \udfff", "at": 5}).encode()
        self.assertRaises(BadMessage, messages.decode, 23, body)
        # A real pair, written as escapes, is fine.
        body = json.dumps({"seq": 1, "text": "\U0001f600", "at": 5}).encode()
        self.assertEqual(messages.decode(23, body)["text"], "\U0001f600")

    def test_canonical_dumps_raises_bad_message(self):
        self.assertRaises(BadMessage, canonical.dumps, {"a": [LONE]})
        self.assertRaises(BadMessage, canonical.dumps, {LONE: 1})

    def test_dict_fields_refuse_lone_surrogates_at_any_depth(self):
        for value in ({"k": LONE}, {LONE: "v"}, {"k": {"deeper": [1, LONE]}}):
            self.assertRaises(BadMessage, Dict().check, "meta", value)
        self.assertEqual(Dict().check("meta", {"k": ["é"]}), {"k": ["é"]})

    def _hubinfo_with(self, **body):
        """A correctly signed HubInfo envelope whose body holds a lone surrogate (signed
        over the bytes a lax encoder would give it)."""
        body = dict({"id": ALICE.id, "name": "a", "meta": {}, "seq": 1}, **body)
        data = (envelope.DOMAIN + b"hubinfo\x00" + ALICE.public_key
                + json.dumps(body, sort_keys=True, separators=(",", ":"),
                             ensure_ascii=False).encode("utf-8", "surrogatepass"))
        return {"kind": "hubinfo", "signer": ALICE.id, "body": body,
                "sig": b64(ALICE.sign(data))}

    def test_hubinfo_name_and_meta(self):
        for body in ({"name": LONE}, {"meta": {"k": LONE}}, {"meta": {LONE: "v"}}):
            self.assertRaises(BadMessage, verify_hubinfo, self._hubinfo_with(**body))
            self.assertRaises(BadMessage, messages.make, "join",
                              hubinfo=self._hubinfo_with(**body), proof=None)
        self.assertEqual(verify_hubinfo(self._hubinfo_with(name="é")).name, "é")


class TimeTests(SynchronousTestCase):
    def test_times_past_what_datetime_shows_are_refused(self):
        for at in (2**48, MAX_TIME + 1):
            self.assertRaises(BadMessage, messages.make, "message", seq=1, text="x", at=at)
        self.assertEqual(messages.make("message", seq=1, text="x", at=MAX_TIME)["at"],
                         MAX_TIME)

    @given(st.integers(messages.TIME.low, messages.TIME.high))
    def test_every_time_the_schema_allows_can_be_shown(self, at):
        for t in (at, messages.TIME.low, messages.TIME.high):
            datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


class CircuitDataTests(SynchronousTestCase):
    """The one binary frame: a circuit number and raw bytes, checked for size."""

    def test_round_trip_of_any_bytes(self):
        payload = bytes(range(256)) * 4
        [(code, body)] = FrameDecoder().feed(messages.encode_circuit_data(9, payload))
        message = messages.decode(code, body)
        self.assertEqual((message.kind, message["circuit"], message["data"]),
                         ("circuit-data", 9, payload))

    def test_empty_oversized_and_numberless_frames_are_refused(self):
        for body in (b"\x00\x00\x00\x01", b"\x00\x00\x00\x01" + b"x" * (messages.MAX_CHUNK + 1),
                     b"\x00\x00\x00\x00x", b"\x01"):
            self.assertRaises(ProtocolError, messages.decode, messages.CIRCUIT_DATA, body)
        self.assertRaises(ValueError, messages.encode_circuit_data, 1, b"")
