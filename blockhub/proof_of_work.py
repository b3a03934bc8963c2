"""Proof of work bound to a handshake request (issue 18: making unsolicited requests
cost something).

A proof is an 8-byte counter such that BLAKE2b-256 (personalised ``blockhub-pow``) of

    sender key (32) | receiver key (32) | request nonce (16) | request time (8, big-endian)
    | counter (8, big-endian)

starts with at least ``bits`` zero bits.  Finding one takes about 2^bits hashes on
average; checking it takes one, so the receiver checks before it stores anything.
Binding it to both keys, the nonce and the time means a proof is good for one request
only.  Pure code: ``solve`` is bounded by ``limit`` tries, so a caller off the reactor
thread can give up or report progress between rounds.
"""

import hashlib
import struct

from blockhub.ids import decode_id

MAX_BITS = 40  # beyond this a request would take a sender days
_TIME = struct.Struct(">Q")


def _prefix(sender: str, receiver: str, nonce: bytes, at: int) -> bytes:
    if len(nonce) != 16:
        raise ValueError("a request nonce is 16 bytes")
    return decode_id(sender) + decode_id(receiver) + nonce + _TIME.pack(at)


def zero_bits(digest: bytes) -> int:
    """How many zero bits ``digest`` starts with."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def _digest(prefix: bytes, counter: int) -> bytes:
    return hashlib.blake2b(prefix + _TIME.pack(counter), digest_size=32,
                           person=b"blockhub-pow").digest()


def check(sender: str, receiver: str, nonce: bytes, at: int, counter: int,
          bits: int) -> bool:
    """Whether ``counter`` is a proof of ``bits`` for this request (one hash)."""
    if not 0 <= counter < 2**64:
        return False
    if bits <= 0:
        return True
    return zero_bits(_digest(_prefix(sender, receiver, nonce, at), counter)) >= bits


def solve(sender: str, receiver: str, nonce: bytes, at: int, bits: int, start: int = 0,
          limit: int | None = None) -> int | None:
    """The first counter from ``start`` that proves ``bits`` for this request, or None
    when ``limit`` tries found none (call again from ``start + limit``)."""
    if not 0 <= bits <= MAX_BITS:
        raise ValueError(f"a difficulty is 0 to {MAX_BITS} bits, not {bits}")
    prefix = _prefix(sender, receiver, nonce, at)
    end = 2**64 if limit is None else min(2**64, start + limit)
    for counter in range(start, end):
        if bits == 0 or zero_bits(_digest(prefix, counter)) >= bits:
            return counter
    return None
