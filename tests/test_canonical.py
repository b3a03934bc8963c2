"""The canonical form is RFC 8785 (JCS): checked byte for byte against an independent
implementation (the ``rfc8785`` package) over generated values, so that a signer using
any language's JCS library makes the bytes blockhub verifies."""

import json

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from blockhub.errors import BadFrame, BadMessage
from blockhub.wire import canonical
from blockhub.wire.canonical import MAX_DEPTH, MAX_INT

# Text from every plane, the characters where UTF-16 and code point order part ways
# (U+E000-U+FFFF against anything above U+FFFF) and the controls JSON must escape.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8) | st.text(
    st.sampled_from("a\x00\x1f\x7f\"\\/\u2028\ue000\uffff\U00010000\U0010ffffé"),
    max_size=6)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-MAX_INT, MAX_INT) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=5),
    max_leaves=20)


class JCSTests(SynchronousTestCase):
    @settings(max_examples=1000)
    @given(VALUES)
    def test_same_bytes_as_rfc8785(self, value):
        self.assertEqual(canonical.dumps(value), rfc8785.dumps(value))

    @settings(max_examples=300)
    @given(st.dictionaries(TEXT, st.integers(-MAX_INT, MAX_INT), max_size=8))
    def test_reading_gives_back_the_value(self, value):
        self.assertEqual(canonical.loads(canonical.dumps(value)), value)

    def test_keys_sort_by_utf16_code_units(self):
        value = {"\ue000": 1, "\U00010000": 2, "a": 3}
        # By code point U+E000 comes first; in UTF-16 U+10000 is D800 DC00, before E000.
        self.assertEqual(canonical.dumps(value),
                         '{"a":3,"\U00010000":2,"\ue000":1}'.encode())
        self.assertEqual(canonical.dumps(value), rfc8785.dumps(value))

    def test_integer_bounds(self):
        for n in (MAX_INT, -MAX_INT, 0):
            self.assertEqual(canonical.dumps({"n": n}), rfc8785.dumps({"n": n}))
        for n in (MAX_INT + 1, -MAX_INT - 1, 10**100):
            self.assertRaises(BadMessage, canonical.dumps, {"n": n})
            self.assertRaises(rfc8785.IntegerDomainError, rfc8785.dumps, {"n": n})

    def test_what_has_no_canonical_form(self):
        self.assertRaises(BadMessage, canonical.dumps, {"x": 1.5})
        self.assertRaises(BadMessage, canonical.dumps, {1: "x"})
        deep: list = []
        for _ in range(MAX_DEPTH):
            deep = [deep]
        self.assertRaises(BadMessage, canonical.dumps, deep)
        canonical.dumps(deep[0])

    def test_reading_refuses_what_jcs_cannot_carry(self):
        for text in (b'{"a":1,"a":2}', b'{"a":1.0}', b'{"a":1e3}', b'{"a":NaN}',
                     b'{"a":"\xff"}', b'{"a":[{"b":1,"b":1}]}'):
            self.assertRaises(BadFrame, canonical.loads, text)
        self.assertEqual(canonical.loads(b'{"a" : -0}'), {"a": 0})

    def test_escapes(self):
        value = {"s": "\x00\x08\t\n\x0c\r\x1f\"\\/\x7f\u2028é\U0001f600"}
        self.assertEqual(canonical.dumps(value), rfc8785.dumps(value))
        self.assertEqual(json.loads(canonical.dumps(value)), value)
