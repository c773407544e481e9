"""The streaming hasher that every kind of value writes into, and the dispatch to kinds.

A :class:`Hasher` holds one running xxh3-128 state. Each kind of value has a module of
its own in this package; its handlers write a value's encoding (see
:mod:`raycache.core.encoding`) into the hasher, and call :meth:`Hasher.value` for the
values inside it. The package's ``__init__`` fills :data:`EXACT` and :data:`FALLBACKS`
with those handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import xxhash

from raycache.core.encoding import SCALARS, length, utf8
from raycache.errors import UnhashableValueError

DIGEST_SIZE = 16
"""Length in bytes of a value digest."""

Handler = Callable[["Hasher", Any], None]
"""Writes a value of the type it is registered for into a hasher."""

Fallback = Callable[["Hasher", Any], bool]
"""Writes a value into a hasher if it is of its kind, and tells whether it was."""

EXACT: dict[type, Handler] = {}
"""Handlers by the exact type of a value, for types not in ``encoding.SCALARS``."""

FALLBACKS: list[Fallback] = []
"""Kinds tried in order, by isinstance, for a value whose type is not in :data:`EXACT`."""


def hash_value(value: object) -> bytes:
    """Return the 16-byte content digest of ``value``.

    Raises :class:`~raycache.errors.UnhashableValueError` (a :class:`TypeError`) naming
    the type of the first part of ``value`` that has no canonical content, or if
    ``value`` contains itself.

    >>> hash_value(("a", None)).hex() == hash_value(("a", None)).hex()
    True
    >>> hash_value(frozenset({1, 2})) == hash_value(frozenset({2, 1}))
    True
    """
    hasher = Hasher()
    hasher.value(value)
    return hasher.digest()


class Hasher:
    """A running xxh3-128 state, plus the containers open on the way down."""

    __slots__ = ("_open", "_state")

    def __init__(self) -> None:
        self._state = xxhash.xxh3_128()
        # id() of every container being hashed: seeing one again means a cycle. Ids
        # only guard the walk; they never reach the digest.
        self._open: set[int] = set()

    def digest(self) -> bytes:
        """Return the digest of everything written so far."""
        return self._state.digest()

    def write(self, data: bytes | memoryview) -> None:
        """Write raw bytes: a tag, or an encoding whose length its tag fixes."""
        self._state.update(data)

    def sized(self, tag: bytes, payload: bytes | memoryview) -> None:
        """Write ``tag``, the length of ``payload``, and ``payload``, without copying it."""
        # encoding.write_sized, inlined: every str and bytes comes through here.
        self._state.update(tag + length(len(payload)))
        self._state.update(payload)

    def text(self, tag: bytes, text: str) -> None:
        """Write ``tag`` and the UTF-8 bytes of ``text``, length first."""
        self.sized(tag, utf8(text))

    def value(self, value: object) -> None:
        """Write the encoding of ``value``, of whatever kind it is."""
        kind = type(value)
        encode = SCALARS.get(kind)
        if encode is not None:
            self._state.update(encode(value))
            return
        handler = EXACT.get(kind)
        if handler is not None:
            handler(self, value)
            return
        for fallback in FALLBACKS:
            if fallback(self, value):
                return
        raise UnhashableValueError(f"{type_name(value)} objects cannot be hashed")

    def sub_digest(self, value: object) -> bytes:
        """Return the digest of ``value`` alone, sharing this walk's cycle guard."""
        outer = self._state
        self._state = xxhash.xxh3_128()
        try:
            self.value(value)
            return self._state.digest()
        finally:
            self._state = outer

    def enter(self, container: object) -> int:
        """Mark ``container`` as being hashed; raise if it already is (it contains itself)."""
        key = id(container)
        if key in self._open:
            kind = type_name(container)
            raise UnhashableValueError(f"cannot hash a {kind} that contains itself")
        self._open.add(key)
        return key

    def leave(self, key: int) -> None:
        """Mark the container :meth:`enter` returned ``key`` for as hashed."""
        self._open.discard(key)


def type_name(value: object) -> str:
    """Return the name of the type of ``value``, qualified by its module unless a builtin.

    >>> type_name(1), type_name(Hasher())
    ('int', 'raycache.core.hashing.hasher.Hasher')
    """
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
