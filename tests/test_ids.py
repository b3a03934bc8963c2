from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import BadId
from blockhub.ids import TEXT_LENGTH, decode_id, encode_id, is_id

keys = st.binary(min_size=32, max_size=32)


class IdTests(SynchronousTestCase):
    @given(keys)
    def test_round_trip(self, key):
        text = encode_id(key)
        self.assertEqual(len(text), TEXT_LENGTH)
        self.assertTrue(text.startswith("bh"))
        self.assertEqual(decode_id(text), key)
        self.assertEqual(decode_id("  " + text.upper() + "\n"), key)

    @given(keys, st.data())
    def test_one_changed_character_is_refused(self, key, data):
        text = encode_id(key)
        pos = data.draw(st.integers(2, len(text) - 1))
        alphabet = "abcdefghijklmnopqrstuvwxyz234567"
        new = data.draw(st.sampled_from([c for c in alphabet if c != text[pos]]))
        typo = text[:pos] + new + text[pos + 1:]
        # Either the checksum catches it or the last character's unused bits changed.
        if decode_ok(typo):
            self.assertEqual(pos, len(text) - 1)
        else:
            self.assertRaises(BadId, decode_id, typo)

    def test_malformed(self):
        for bad in ["", "bh", "xx" + "a" * 58, "bh" + "1" * 58, "bh" + "a" * 57]:
            self.assertRaises(BadId, decode_id, bad)
        self.assertFalse(is_id(12))

    @given(keys)
    def test_the_last_characters_unused_bits_must_be_zero(self, key):
        """58 characters hold 290 bits for 288: only the spelling encode_id gives."""
        text = encode_id(key)
        alphabet = "abcdefghijklmnopqrstuvwxyz234567"
        last = alphabet.index(text[-1])
        self.assertEqual(last & 3, 0)
        for bits in (1, 2, 3):
            self.assertRaises(BadId, decode_id, text[:-1] + alphabet[last | bits])

    def test_wrong_length_key(self):
        self.assertRaises(ValueError, encode_id, b"\x00" * 31)


def decode_ok(text):
    try:
        decode_id(text)
    except BadId:
        return False
    return True
