"""The eviction-policy interface, and the intrusive queue most policies are built from.

A :class:`~raycache.core.store.Store` does all the bookkeeping common to every policy
(bytes, TTLs, tags, counters) and asks its :class:`Policy` one question: which entry
goes next? That is the split cachetools makes, and it keeps each policy short.

Policies order the store's own :class:`~raycache.core.entry.Entry` objects: an entry
is a :class:`~raycache.core.entry.Node` of a doubly linked
:class:`~raycache.core.entry.Queue`, so a policy needs no dict of its own. At a million
entries a per-policy ``OrderedDict`` would cost about 90 bytes an entry; three link
fields in the entry cost 24.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Iterator
from typing import ClassVar

from raycache.core.entry import Entry, Node, Queue

__all__ = ["LinkedPolicy", "Node", "Policy", "Queue", "empty"]


class Policy(ABC):
    """Decides which entry a :class:`~raycache.core.store.Store` evicts next.

    A policy tracks exactly the entries its store holds. The store calls
    :meth:`insert` when a new key is written, :meth:`replace` when a key that is held
    is written again, :meth:`touch` on every hit, and :meth:`remove` whenever an
    entry leaves, for any reason. When the store is over budget it calls
    :meth:`victim` and removes the entry it gets, until it fits again; so ``victim``
    must not change which entries are tracked. Entries carry the ``size`` (bytes)
    and ``cost`` (seconds to compute) a policy may weigh.

    A policy instance serves one store only. Iterating over a policy yields the keys
    it tracks, which lets the store check that the two agree.
    """

    name: ClassVar[str]
    """The short name :func:`~raycache.core.policies.make_policy` knows this policy by."""

    admits_all: ClassVar[bool] = True
    """False if the policy may evict the entry just put (refuse admission) while others remain."""

    @abstractmethod
    def insert(self, entry: Entry) -> None:
        """Track ``entry``, whose key is new to the policy."""

    def replace(self, old: Entry, new: Entry) -> None:
        """Track ``new`` instead of ``old``, a write to a tracked key; by default a new arrival."""
        self.remove(old)
        self.insert(new)

    @abstractmethod
    def touch(self, entry: Entry) -> None:
        """Record a read hit on the tracked ``entry``."""

    @abstractmethod
    def remove(self, entry: Entry) -> None:
        """Stop tracking ``entry``: it was deleted, expired, invalidated or evicted."""

    @abstractmethod
    def victim(self) -> Entry:
        """Return the entry to evict next; it may be the one just put (admission refused).

        Raises :class:`KeyError` when nothing is tracked.
        """

    @abstractmethod
    def __len__(self) -> int:
        """Return how many entries are tracked."""

    @abstractmethod
    def __iter__(self) -> Iterator[Hashable]:
        """Yield the key of every tracked entry."""


def empty() -> KeyError:
    """Return the error :meth:`Policy.victim` raises when nothing is tracked."""
    return KeyError("victim() called on an empty policy")


class LinkedPolicy(Policy):
    """A policy over one :class:`Queue` whose oldest entry is the next victim."""

    def __init__(self) -> None:
        self._queue = Queue()

    def insert(self, entry: Entry) -> None:
        """Add ``entry`` at the back of the queue."""
        self._queue.append(entry)

    def remove(self, entry: Entry) -> None:
        """Take ``entry`` out of the queue."""
        self._queue.unlink(entry)

    def victim(self) -> Entry:
        """Return the entry at the front of the queue."""
        entry = self._queue.first()
        if entry is None:
            raise empty()
        return entry

    def __len__(self) -> int:
        return self._queue.count

    def __iter__(self) -> Iterator[Hashable]:
        return (entry.key for entry in self._queue)
