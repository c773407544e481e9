"""How a large value travels by reference, and never by copy, between a cache's processes.

Values of :data:`INLINE_LIMIT` bytes or more never travel inline through a shard:

- a client sends one to a shard as :class:`Shipped`, a reference to its own put (see
  :func:`ship`), and a memoized call's large arguments go the same way;
- a shard holds one as a :class:`StoredRef`, a reference to an object its node's vault
  owns (:mod:`raycache.actors.vault`), so that it outlives the shard;
- a shard answers a read of one with ``[ref]`` (:func:`reply_for`), nested so that Ray
  hands the reader a reference instead of a copy;
- a storage hit travels as :class:`Mapped`, its file, which unpickles as the value where
  it lands, mapped with no copy. Reading a large entry back from a local storage and
  copying it into Ray's object store costs a copy of every byte into fresh shared
  memory, which takes far longer than the read itself. A reader that cannot open the
  file (on another node, or after it was removed or replaced) gets the value from the
  copy that the key's vault promotes into the object store in the background, which
  the :class:`Mapped` keeps alive by holding its reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from raycache.core import protocol
from raycache.core.protocol import WireReply
from raycache.core.sizing import buffer_size, size_of
from raycache.core.storage.file_entry import FileEntry
from raycache.core.store import Entry

INLINE_LIMIT = 100 * 1024
"""Values smaller than this many bytes are kept in the shard and returned inline.

It matches Ray's own limit for returning objects inline, above which Ray would put a
returned value in the object store anyway.
"""


class StoredRef:
    """A large value held in Ray's object store, owned by the vault of its shard's node."""

    __slots__ = ("ref",)

    def __init__(self, ref: ray.ObjectRef[Any]) -> None:
        self.ref = ref


@dataclass(frozen=True)
class Shipped:
    """A large value sent to a shard by reference, with its size; see :func:`ship`."""

    ref: ray.ObjectRef[Any]
    size: int


def ship(value: Any) -> Any:
    """Return ``value`` as a client sends it to a shard: large ones as :class:`Shipped`.

    The shard then hands the vault a reference, and the vault's put is the one copy made
    on the cache's side, as when the shard itself owned its values.
    """
    size = large_size(value)
    return value if size is None else Shipped(ray.put(value), size)


def sent_size(value: Any) -> int:
    """Return the size of a value as a shard received it: shipped, or as it is."""
    return value.size if isinstance(value, Shipped) else size_of(value)


def large_size(value: Any) -> int | None:
    """Return the size of a value worth sending by reference (large, with buffers); else None.

    Such a value is put in the object store by the caller, so that the actors it passes
    through forward a reference instead of deserialising and serialising it again.
    """
    size = buffer_size(value)
    return size if size is not None and size >= INLINE_LIMIT else None


class Mapped:
    """A large entry's file, with the reference of its copy being promoted to the object store."""

    __slots__ = ("copy", "file")

    def __init__(self, file: FileEntry, promoted: ray.ObjectRef[Any]) -> None:
        self.file = file
        self.copy = StoredRef(promoted)

    def __reduce__(self) -> tuple[Any, ...]:
        # The reference travels nested in a list, so that Ray counts it as borrowed by
        # whoever holds this object, and does not resolve it on the way.
        return _open_mapped, (self.file, [self.copy.ref])


def _open_mapped(file: FileEntry, promoted: list[ray.ObjectRef[Any]]) -> Any:
    """Return the value of ``file``, mapped here, or else its promoted copy."""
    try:
        return file.open()
    except Exception:  # not readable here, or not that version any more: the copy is
        return ray.get(promoted[0])


def reply_for(entry: Entry | None) -> WireReply:
    """Return the reply to a read of ``entry``: MISS, HIT with the value, or REF with ``[ref]``."""
    if entry is None:
        return protocol.miss()
    value = entry.value
    if isinstance(value, StoredRef):
        return protocol.ref(value.ref)
    return protocol.hit(value)


def fetcher(value: Any) -> Callable[[], Any]:
    """Return how a storage writer gets ``value``: from the object store if it is there."""
    if isinstance(value, StoredRef):
        return lambda: ray.get(value.ref)
    return lambda: value


def stored_hex(entry: Entry) -> str | None:
    """Return the hex id of the object an entry holds by reference; None for an inline one."""
    value = entry.value
    return str(value.ref.hex()) if isinstance(value, StoredRef) else None
