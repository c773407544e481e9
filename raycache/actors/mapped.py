"""A storage hit handed out as its file: it unpickles, wherever it lands, as the value.

Reading a large entry back from a local storage and copying it into Ray's object store
costs a copy of every byte into fresh shared memory, which takes far longer than the
read itself. So a shard answers a storage hit with a :class:`Mapped` instead: a small
object that travels inline like any small value (in a reply, in the reference a memoized
call returns, or as a task's argument) and unpickles as the value itself, decoded from
the file mapped by the process that unpickles it, with no copy.

A reader that cannot open the file (on another node, or after the file was removed or
replaced) gets the value from the copy that the key's vault promotes into the object
store in the background, which the :class:`Mapped` keeps alive by holding its reference.
"""

from __future__ import annotations

from typing import Any

import ray

from raycache.actors.vault import StoredRef
from raycache.core.storage.file_entry import FileEntry


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
