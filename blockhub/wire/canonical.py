"""Canonical JSON: the one byte form of a value, used for frame bodies and signatures.

The form is RFC 8785's JSON Canonicalization Scheme (JCS), so that a signer in any
language can make the signed bytes with its own JCS library: no insignificant white
space, UTF-8, strings escaped only where JSON must (``"``, ``\\`` and the controls),
object keys sorted by their UTF-16 code units (not by code point: the two differ for a
key holding a character above U+FFFF against one in U+E000-U+FFFF), and numbers only
as integers within I-JSON's exact range, +-(2**53 - 1).  A float, a bigger integer, a
lone surrogate, a non-string key or nesting deeper than ``MAX_DEPTH`` has no canonical
form (``BadMessage``).  Reading refuses what JCS cannot carry: floats, duplicate keys.
"""

import base64
import json
from typing import Any

from blockhub.errors import BadFrame, BadMessage

MAX_INT = 2**53 - 1  # I-JSON: the integers every JSON reader holds exactly
MAX_DEPTH = 32  # objects and arrays inside one another; a frame's body is depth 1


def _no_floats(value: str) -> Any:
    raise ValueError("floats are not allowed")


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _sorted(value: Any, depth: int) -> Any:
    """``value`` with every object's keys in JCS order, its numbers checked."""
    if depth > MAX_DEPTH:
        raise BadMessage(f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_INT <= value <= MAX_INT:
            raise BadMessage("an integer beyond 2**53 - 1 has no canonical form")
        return value
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise BadMessage("object keys must be text")
        keys = sorted(value) if all(k.isascii() for k in value) else sorted(value, key=_utf16)
        return {k: _sorted(value[k], depth + 1) for k in keys}
    if isinstance(value, (list, tuple)):
        return [_sorted(v, depth + 1) for v in value]
    if isinstance(value, float):
        raise BadMessage("floats have no canonical form here (integers only)")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _ascii_keys(value: Any, depth: int) -> bool:
    """Check ``value`` as ``_sorted`` does, without rebuilding it; True when every key
    is ASCII, where JCS order is plain code-point order (``sort_keys``)."""
    if depth > MAX_DEPTH:
        raise BadMessage(f"nested deeper than {MAX_DEPTH}")
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        if not -MAX_INT <= value <= MAX_INT:
            raise BadMessage("an integer beyond 2**53 - 1 has no canonical form")
        return True
    if kind is dict:
        ascii_keys = True
        for k, v in value.items():
            if type(k) is not str:
                raise BadMessage("object keys must be text")
            ascii_keys = _ascii_keys(v, depth + 1) and k.isascii() and ascii_keys
        return ascii_keys
    if kind is list or kind is tuple:
        return all(_ascii_keys(v, depth + 1) for v in value)  # False: the full walk follows
    _sorted(value, depth)  # anything else: the full walk says what is wrong with it
    return False


# Made once: json.dumps and json.loads with options of their own build a new encoder or
# decoder at every call, which was a tenth of a relayed frame's cost at the gateway.
_SORTING = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                            check_circular=False, sort_keys=True)
_IN_ORDER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                             check_circular=False)


def dumps(value: Any) -> bytes:
    """The canonical (JCS) bytes of ``value``; ``BadMessage`` when it has none."""
    if _ascii_keys(value, 1):  # the common case: checked, and sorted by json itself
        text = _SORTING.encode(value)
    else:
        text = _IN_ORDER.encode(_sorted(value, 1))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadMessage("text is not valid Unicode (it holds a lone surrogate)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise ValueError("an object repeats a key")
    return value


_DECODER = json.JSONDecoder(parse_float=_no_floats, parse_constant=_no_floats,
                            object_pairs_hook=_object)


def loads(data: bytes) -> Any:
    try:
        return _DECODER.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadFrame(f"body is not canonical JSON: {e}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
