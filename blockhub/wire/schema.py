"""Field validators for message bodies: each takes a decoded JSON value and returns it,
or raises ``BadMessage`` naming the field.  Small on purpose: types, bounds, ids.

Text must be real Unicode: JSON can carry a lone surrogate (``"\\ud800"``) that no
UTF-8 encoder accepts, so storing, signing or printing it later would fail far from
here.  Every text field, and every key and value inside a ``Dict``, is refused here.
"""

import binascii
from typing import Any

from blockhub.errors import BadId, BadMessage
from blockhub.ids import decode_id
from blockhub.wire.canonical import MAX_INT, dumps, unb64

# The last second ``datetime`` can show (9999-12-31 23:59:59 UTC): a time beyond it
# would pass the wire and crash whoever prints it.
MAX_TIME = 253402300799


def _encodable(name: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadMessage(f"{name} is not valid Unicode text (it holds a lone surrogate)")


class Field:
    optional = False

    def check(self, name: str, value: Any) -> Any:
        raise NotImplementedError


class Str(Field):
    def __init__(self, max_len: int = 1024, choices: tuple[str, ...] = ()) -> None:
        self.max_len, self.choices = max_len, choices

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise BadMessage(f"{name} must be a string")
        if len(value) > self.max_len:
            raise BadMessage(f"{name} is longer than {self.max_len} characters")
        _encodable(name, value)
        if self.choices and value not in self.choices:
            raise BadMessage(f"{name} must be one of {', '.join(self.choices)}")
        return value


class Int(Field):
    def __init__(self, low: int = 0, high: int = MAX_INT) -> None:
        if not -MAX_INT <= low <= high <= MAX_INT:
            raise ValueError("an integer field must stay within +-(2**53 - 1)")
        self.low, self.high = low, high

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadMessage(f"{name} must be an integer")
        if not self.low <= value <= self.high:
            raise BadMessage(f"{name} is out of range")
        return value


class Bool(Field):
    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, bool):
            raise BadMessage(f"{name} must be true or false")
        return value


class Bytes(Field):
    """Base64 text carrying at most ``max_len`` bytes."""

    def __init__(self, max_len: int = 1024, exact: int | None = None) -> None:
        self.max_len, self.exact = max_len, exact

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, str) or len(value) > (self.max_len * 4) // 3 + 4:
            raise BadMessage(f"{name} must be base64 of at most {self.max_len} bytes")
        try:
            raw = unb64(value)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise BadMessage(f"{name} is not valid base64")
        if self.exact is not None and len(raw) != self.exact:
            raise BadMessage(f"{name} must be {self.exact} bytes")
        if len(raw) > self.max_len:
            raise BadMessage(f"{name} must be base64 of at most {self.max_len} bytes")
        return value


class Id(Field):
    """An id in its one spelling: lower case, no white space (a person's typing is
    forgiven where they type it, never on the wire, where ids are compared as text)."""

    def check(self, name: str, value: Any) -> Any:
        try:
            decode_id(value)
        except BadId as e:
            raise BadMessage(f"{name}: {e}")
        if value != value.strip().lower():  # decode_id forgives both, for typing
            raise BadMessage(f"{name}: an id on the wire is lower case, without spaces")
        return value


class Dict(Field):
    """A JSON object of string keys; contents checked by whoever uses it, except that all
    of its text, at any depth, must have a canonical form (no lone surrogate)."""

    def __init__(self, max_keys: int = 64) -> None:
        self.max_keys = max_keys

    def check(self, name: str, value: Any) -> Any:
        if not isinstance(value, dict) or len(value) > self.max_keys:
            raise BadMessage(f"{name} must be an object of at most {self.max_keys} keys")
        try:
            dumps(value)
        except BadMessage as e:
            raise BadMessage(f"{name}: {e}")
        except (TypeError, ValueError, RecursionError):
            raise BadMessage(f"{name} has no canonical JSON form")
        return value


class Optional(Field):
    optional = True

    def __init__(self, inner: Field) -> None:
        self.inner = inner

    def check(self, name: str, value: Any) -> Any:
        return None if value is None else self.inner.check(name, value)


def check_fields(kind: str, spec: dict[str, Field], body: Any) -> dict[str, Any]:
    """Validate a whole body: exactly the known fields, each valid."""
    if not isinstance(body, dict):
        raise BadMessage(f"{kind}: body must be an object")
    unknown = set(body) - set(spec)
    if unknown:
        raise BadMessage(f"{kind}: unknown field {sorted(unknown)[0][:64]!r}")
    checked: dict[str, Any] = {}
    for name, field in spec.items():
        if name not in body:
            if field.optional:
                checked[name] = None
                continue
            raise BadMessage(f"{kind}: missing field {name!r}")
        checked[name] = field.check(f"{kind}.{name}", body[name])
    return checked
