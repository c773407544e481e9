r"""The byte encoding that key digests, value hashes and function fingerprints all digest.

An item is a type tag, then for a variable-length payload its length as 8 big-endian
bytes, then the payload; a container is a tag, its item count, then its items. No tag
is a prefix of another item's encoding, so an encoding reads back one way only: no two
values share one. Every digest raycache keeps across processes is a hash of this
encoding, so changing a byte here changes every key.

>>> encode_int(-1), encode_bool(True), NONE
(b'i\x00\x00\x00\x00\x00\x00\x00\x01\xff', b'?1', b'N')
>>> header(TUPLE, 2) + encode_float(0.5) + NONE
b'T\x00\x00\x00\x00\x00\x00\x00\x02f?\xe0\x00\x00\x00\x00\x00\x00N'
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

STR = b"s"
"""Tag of a str, whose payload is its :func:`utf8` bytes."""
BYTES = b"b"
"""Tag of a bytes object."""
INT = b"i"
"""Tag of an int, whose payload is its minimal big-endian two's complement."""
FLOAT = b"f"
"""Tag of a float, followed by its 8 IEEE 754 bytes, big-endian."""
TUPLE = b"T"
"""Tag of a tuple, followed by its item count and its items."""
NONE = b"N"
"""The whole encoding of None."""

_LENGTH = struct.Struct(">Q")
_FLOAT = struct.Struct(">d")

Write = Callable[[bytes | memoryview], object]
"""Where encoded bytes go, such as an xxhash state's ``update``."""

length: Callable[[int], bytes] = _LENGTH.pack
"""Return the 8 big-endian bytes of a length or count (a bare method: called per item)."""


def utf8(text: str) -> bytes:
    r"""Return the bytes of ``text`` in an encoding: UTF-8, lone surrogates kept.

    >>> utf8("\ud800")
    b'\xed\xa0\x80'
    """
    return text.encode("utf-8", "surrogatepass")


def header(tag: bytes, n: int) -> bytes:
    """Return ``tag`` and then ``n``: what precedes a payload of ``n`` bytes or ``n`` items."""
    return tag + length(n)


def sized(tag: bytes, payload: bytes) -> bytes:
    """Return the item ``tag``, length, ``payload``: for payloads small enough to copy."""
    return tag + length(len(payload)) + payload


def write_sized(write: Write, payload: bytes | memoryview, tag: bytes = b"") -> None:
    """Write the item ``tag``, length, ``payload`` without copying ``payload``."""
    write(tag + length(len(payload)))
    write(payload)


def write_text(write: Write, text: str) -> None:
    """Write the length and then the bytes of ``text``."""
    write_sized(write, utf8(text))


def encode_int(value: int) -> bytes:
    """Return the encoding of the int ``value``: tag, length, minimal two's complement."""
    # Flat, not through sized(): hashing calls this for every int it meets.
    payload = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    return INT + length(len(payload)) + payload


def encode_float(value: float) -> bytes:
    """Return the encoding of a float: its raw IEEE bits, so 0.0 and -0.0 stay apart."""
    return FLOAT + _FLOAT.pack(value)


def encode_bool(value: bool) -> bytes:
    """Return the encoding of a bool, which never matches that of the int it equals."""
    return b"?1" if value else b"?0"


def encode_none(value: None) -> bytes:
    """Return the encoding of None."""
    return NONE


def encode_text(text: str) -> bytes:
    """Return the encoding of the str ``text``."""
    return sized(STR, utf8(text))


SCALARS: dict[type, Callable[[Any], bytes]] = {
    int: encode_int,
    float: encode_float,
    bool: encode_bool,
    type(None): encode_none,
}
"""The encoder of each scalar whose encoding is a few bytes, by exact type.

Keys and value hashes both look a value's type up here first: these are the commonest
values, and one lookup and one call is the least that encoding one can cost.
"""
