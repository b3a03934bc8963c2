"""A short, human-comparable form of a key, for checking it with its owner by voice.

A taken-over gateway is found out only by checking its key with its owner
(docs/design.md).  Six words from the BIP39 English list (66 bits) and a group of four hex
digits (16 more bits), all taken from a hash of the key: 82 bits, so two keys do not
share a fingerprint by accident, and words that are easy to read aloud.
"""

import hashlib

from mnemonic import Mnemonic

from blockhub.ids import decode_id

_WORDS = Mnemonic("english").wordlist


def fingerprint(hub_id: str) -> str:
    digest = hashlib.blake2b(decode_id(hub_id), digest_size=32,
                             person=b"blockhub-fprint").digest()
    number = int.from_bytes(digest[:11], "big")  # 88 bits: 66 for words, 16 for hex
    words = [_WORDS[(number >> (77 - 11 * i)) & 0x7FF] for i in range(6)]
    return " ".join(words) + " " + format(number & 0xFFFF, "04x")
