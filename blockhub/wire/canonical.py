"""Canonical JSON: the one byte form of a value, used for frame bodies and signatures.

Keys sorted, no insignificant white space, UTF-8, no floats (integers only), so the
same value always gives the same bytes on every machine.
"""

import base64
import json
from typing import Any

from blockhub.errors import BadFrame, BadMessage


def _no_floats(value: str) -> Any:
    raise ValueError("floats are not allowed")


def dumps(value: Any) -> bytes:
    """The canonical bytes of ``value``; ``BadMessage`` when its text holds a lone
    surrogate, which has no UTF-8 form (never a bare ``UnicodeEncodeError``)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadMessage("text is not valid Unicode (it holds a lone surrogate)")


def loads(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8"), parse_float=_no_floats,
                          parse_constant=_no_floats)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadFrame(f"body is not canonical JSON: {e}")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
