"""Hashing of builtin values: scalars, strings and bytes, and the builtin containers.

Values that Python conflates (``1``, ``1.0``, ``True``) or that only look alike (a list
and a tuple) hash apart. Dicts and sets hash regardless of their order; sequences and
OrderedDicts by it.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Callable, Sequence
from typing import Any

from raycache.core.encoding import BYTES, STR, TUPLE, header
from raycache.core.hashing.hasher import Handler, Hasher

_COMPLEX = struct.Struct(">dd")


def _hash_ellipsis(h: Hasher, value: object) -> None:
    h.write(b"E")


def _hash_complex(h: Hasher, value: complex) -> None:
    h.write(b"c" + _COMPLEX.pack(value.real, value.imag))


def _hash_str(h: Hasher, value: str) -> None:
    h.text(STR, value)


def _hash_bytes(h: Hasher, value: bytes) -> None:
    h.sized(BYTES, value)


def _hash_bytearray(h: Hasher, value: bytearray) -> None:
    h.sized(b"B", memoryview(value))


def _hash_items(h: Hasher, tag: bytes, items: Sequence[Any] | Any) -> None:
    key = h.enter(items)
    try:
        h.write(header(tag, len(items)))
        for item in items:
            h.value(item)
    finally:
        h.leave(key)


def _hash_tuple(h: Hasher, value: tuple[Any, ...]) -> None:
    _hash_items(h, TUPLE, value)


def _hash_list(h: Hasher, value: list[Any]) -> None:
    _hash_items(h, b"L", value)


def _hash_deque(h: Hasher, value: collections.deque[Any]) -> None:
    h.write(b"Q")
    h.value(value.maxlen)
    _hash_items(h, b"L", value)


def _hash_unordered(h: Hasher, tag: bytes, value: Any, entries: Callable[[], list[bytes]]) -> None:
    # Equal dicts and sets may iterate in different orders, so each entry is hashed on
    # its own and the entry digests are fed in sorted order.
    key = h.enter(value)
    try:
        digests = sorted(entries())
    finally:
        h.leave(key)
    h.write(header(tag, len(digests)))
    h.write(b"".join(digests))


def _hash_dict(h: Hasher, value: dict[Any, Any], tag: bytes = b"D") -> None:
    # Each entry is its key digest then its value digest, so sorting orders by key.
    _hash_unordered(
        h, tag, value, lambda: [h.sub_digest(k) + h.sub_digest(v) for k, v in value.items()]
    )


def _hash_ordered_dict(h: Hasher, value: collections.OrderedDict[Any, Any]) -> None:
    # OrderedDicts compare by order, so their order is part of the hash.
    key = h.enter(value)
    try:
        h.write(header(b"O", len(value)))
        for k, v in value.items():
            h.value(k)
            h.value(v)
    finally:
        h.leave(key)


def _hash_defaultdict(h: Hasher, value: collections.defaultdict[Any, Any]) -> None:
    h.write(b"d")
    h.value(value.default_factory)
    _hash_dict(h, value)


def _hash_counter(h: Hasher, value: collections.Counter[Any]) -> None:
    _hash_dict(h, value, b"C")


def _hash_set(h: Hasher, value: set[Any] | frozenset[Any]) -> None:
    tag = b"S" if type(value) is set else b"F"
    _hash_unordered(h, tag, value, lambda: [h.sub_digest(item) for item in value])


def hash_range(h: Hasher, value: range) -> None:
    """Hash a range as the sequence it is: ``range(0) == range(5, 5)`` hash equal."""
    h.write(b"R")
    h.value(len(value))
    if value:
        h.value(value[0])
    if len(value) > 1:
        h.value(value.step)


def _hash_slice(h: Hasher, value: slice) -> None:
    h.write(b":")
    h.value(value.start)
    h.value(value.stop)
    h.value(value.step)


EXACT: dict[type, Handler] = {
    type(Ellipsis): _hash_ellipsis,
    complex: _hash_complex,
    str: _hash_str,
    bytes: _hash_bytes,
    bytearray: _hash_bytearray,
    tuple: _hash_tuple,
    list: _hash_list,
    dict: _hash_dict,
    set: _hash_set,
    frozenset: _hash_set,
    collections.OrderedDict: _hash_ordered_dict,
    collections.defaultdict: _hash_defaultdict,
    collections.Counter: _hash_counter,
    collections.deque: _hash_deque,
    range: hash_range,
    slice: _hash_slice,
}
"""The handler of each builtin type, by exact type; the scalars are ``encoding.SCALARS``."""
