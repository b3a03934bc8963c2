"""Invite codes (blockhub/invites.py): what a code carries comes back exactly, and a
mistyped, cut or foreign code is refused with BadInvite in one line, never anything
else (a bounded random fuzz of the parser)."""

import base64
import random

from nacl.signing import SigningKey
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import BadInvite
from blockhub.identity import Identity
from blockhub.invites import (
    MAX_GATEWAYS,
    PREFIX,
    Invite,
    _sum,
    decode_invite,
    encode_invite,
    invite_key,
)

HUB, GW1, GW2 = (Identity(SigningKey(bytes([40 + n]) * 32)).id for n in range(3))
SECRET = bytes(range(16))
INVITE = Invite(HUB, (f"{GW1}@198.51.100.7:6610", f"{GW2}@[2001:db8::1]:6610"), SECRET)


class InviteCodeTests(SynchronousTestCase):

    def test_a_code_gives_back_what_it_carries(self):
        code = encode_invite(INVITE)
        self.assertTrue(code.startswith(PREFIX))
        self.assertRegex(code, r"^[a-z2-7]+$")  # safe to paste: letters and digits
        self.assertEqual(decode_invite(code), INVITE)

    def test_case_and_white_space_do_not_matter(self):
        code = encode_invite(INVITE)
        wrapped = "  " + "\n".join(code[i:i + 20] for i in range(0, len(code), 20)).upper()
        self.assertEqual(decode_invite(wrapped), INVITE)

    def test_a_hostname_gateway_and_the_most_gateways(self):
        gateways = tuple(f"{GW1}@gw{n}.example.net:{6610 + n}" for n in range(MAX_GATEWAYS))
        invite = Invite(HUB, gateways, SECRET)
        self.assertEqual(decode_invite(encode_invite(invite)), invite)
        with self.assertRaises(ValueError):
            encode_invite(Invite(HUB, gateways + gateways[:1], SECRET))
        with self.assertRaises(ValueError):
            encode_invite(Invite(HUB, (), SECRET))
        with self.assertRaises(ValueError):
            encode_invite(Invite(HUB, (f"{GW1}@no port",), SECRET))

    def test_every_mistyped_character_is_caught(self):
        code = encode_invite(INVITE)
        alphabet = "abcdefghijklmnopqrstuvwxyz234567"
        for at in range(len(PREFIX), len(code)):
            wrong = alphabet[(alphabet.index(code[at]) + 1) % len(alphabet)]
            with self.assertRaises(BadInvite, msg=f"position {at}"):
                decode_invite(code[:at] + wrong + code[at + 1:])

    def test_a_code_cut_short_or_of_something_else_is_refused(self):
        code = encode_invite(INVITE)
        for text in (code[:-1], code[:-8], code[:len(PREFIX) + 3], PREFIX, "", HUB,
                     "bhinvite!!!!", "hello there"):
            with self.assertRaises(BadInvite, msg=text):
                decode_invite(text)
        with self.assertRaises(BadInvite):
            decode_invite(None)  # type: ignore[arg-type]

    def test_one_spelling_per_code(self):
        """Where base32's last character has bits no byte uses, setting them is a
        mistake too: one invite has one code."""
        for gateways in ((f"{GW1}@198.51.100.7:6610",), (f"{GW1}@10.0.0.1:1",),
                         (f"{GW1}@gw.example.net:6610",)):
            code = encode_invite(Invite(HUB, gateways, SECRET))
            alphabet = "abcdefghijklmnopqrstuvwxyz234567"
            for other in alphabet.replace(code[-1], ""):
                with self.assertRaises(BadInvite, msg=(gateways, other)):
                    decode_invite(code[:-1] + other)

    def test_the_message_is_one_line_and_says_why(self):
        code = encode_invite(INVITE)
        with self.assertRaises(BadInvite) as caught:
            decode_invite(code[:-2] + ("a" if code[-2] != "a" else "b") + code[-1])
        self.assertIn("mistyped", str(caught.exception))
        self.assertNotIn("\n", str(caught.exception))

    def test_the_key_comes_from_the_secret_and_the_secret_is_not_shown(self):
        self.assertEqual(bytes(INVITE.key), bytes(invite_key(SECRET)))
        self.assertNotEqual(bytes(invite_key(bytes(16))), bytes(INVITE.key))
        self.assertTrue(INVITE.id.startswith("inv"))
        self.assertEqual(INVITE.id, Invite(HUB, INVITE.gateways[:1], SECRET).id)
        self.assertNotIn(SECRET.hex(), repr(INVITE))
        self.assertNotIn(repr(SECRET), repr(INVITE))

    def test_random_damage_is_refused_with_bad_invite_only(self):
        rng = random.Random(17)
        code = encode_invite(INVITE)
        for _ in range(3000):
            chars = list(code)
            for _ in range(rng.randint(1, 6)):
                chars[rng.randrange(len(chars))] = rng.choice("abcxyz2345670 \n!@")
            if rng.random() < 0.3:
                del chars[rng.randrange(len(chars)):]
            text = "".join(chars)
            try:
                decoded = decode_invite(text)
            except BadInvite:
                continue
            self.assertEqual(decoded, INVITE, text)  # only white space was touched

    def test_random_bytes_with_a_good_checksum_are_parsed_or_refused_in_one_line(self):
        """Past the checksum: every structure a hostile code could have (versions,
        counts, lengths, addresses, bytes left over) is refused with BadInvite only, or
        is a real invite that spells itself the same way."""
        rng = random.Random(23)
        body = encode_invite(INVITE)[len(PREFIX):].upper()
        real = base64.b32decode(body + "=" * (-len(body) % 8))
        for n in range(5000):
            if n % 2:
                data = bytearray(real[:-4])
                for _ in range(rng.randint(1, 4)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                data = bytes(data[:rng.randint(1, len(data))])
            else:
                data = bytes([1]) + rng.randbytes(rng.randint(0, 400))
            raw = data + _sum(data)
            code = PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()
            try:
                invite = decode_invite(code)
            except BadInvite as e:
                self.assertNotIn("\n", str(e))
                continue
            self.assertEqual(encode_invite(invite), code)
