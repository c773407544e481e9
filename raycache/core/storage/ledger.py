"""What a storage tier knows of its files: sizes, expiry and tags, in an eviction order.

The files themselves are the truth; the ledger is what a tier learnt of them from its own
writes and reads and from listings. It answers tag and expiry queries without touching
the storage, keeps the byte count, and names the files to evict, in the order of its
policy, when the count goes over the budget. It is safe to use from several threads.

>>> from raycache.core.policies import make_policy
>>> ledger = Ledger(make_policy("lru"), Budget(whole=100))
>>> ledger.remember(b"a", Known(60, None, ("eu",), None), cost=0.0)
>>> ledger.remember(b"b", Known(60, None, (), None), cost=0.0)
>>> ledger.over_budget(), ledger.total_bytes, ledger.tagged("eu")
([b'a'], 60, [])
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from raycache.core.config import parse_capacity
from raycache.core.entry import Entry
from raycache.core.policies import Policy


@dataclass
class Known:
    """One file as the ledger knows it.

    ``version`` is ``(size, modified ns)`` as a listing showed it (None before any
    listing); ``verified`` the identity of the version whose checksum held, if any.
    """

    bytes: int
    expires_at: float | None
    tags: tuple[str, ...]
    version: tuple[int, ...] | None
    verified: tuple[int, ...] | None = None


@dataclass
class Budget:
    """A tier's byte budget: its ``share`` of the ``whole``, less the ``overhead`` on disk.

    ``overhead`` is what the disk holds besides the entries' files (the folder itself, and
    temporary files of writes under way), shared by every tier of the folder.

    >>> budget = Budget(whole=1000, share=0.5)
    >>> budget.overhead = 200
    >>> budget.capacity
    400
    """

    whole: int | None
    share: float = 1.0
    overhead: int = 0

    def __setattr__(self, name: str, value: object) -> None:
        if name == "share" and not (isinstance(value, (int, float)) and 0 < value <= 1):
            raise ValueError(f"share must be above 0 and at most 1, got {value!r}")
        super().__setattr__(name, value)

    @property
    def capacity(self) -> int | None:
        """The bytes the entries' files may take, or None for no budget."""
        if self.whole is None:
            return None
        return max(0, int((self.whole - self.overhead) * self.share))


class Ledger:
    """The files of one tier by digest, their total bytes, and ``policy``'s order of them."""

    def __init__(self, policy: Policy, budget: Budget) -> None:
        self._policy = policy
        self._budget = budget  # read at every check: its share and overhead change
        self._known: dict[bytes, Known] = {}
        self._nodes: dict[bytes, Entry] = {}  # what the policy orders: a node per file
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        """The bytes of every file known."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._known)

    def get(self, digest: bytes) -> Known | None:
        """Return what is known of ``digest``'s file, or None."""
        with self._lock:
            return self._known.get(digest)

    def remember(self, digest: bytes, known: Known, cost: float) -> None:
        """Know ``digest``'s file as ``known``, replacing what was known of it."""
        with self._lock:
            self._unaccount(digest)
            self._known[digest] = known
            self._bytes += known.bytes
            node = Entry(digest, None, known.bytes, cost, 0.0, known.expires_at, frozenset())
            self._nodes[digest] = node
            self._policy.insert(node)

    def touch(self, digest: bytes) -> bool:
        """Note a read of ``digest``'s file; return whether it is known."""
        with self._lock:
            node = self._nodes.get(digest)
            if node is not None:
                self._policy.touch(node)
            return node is not None

    def forget(self, digest: bytes) -> None:
        """Forget ``digest``'s file: it was removed, or is no longer this tier's."""
        with self._lock:
            self._unaccount(digest)

    def keep_only(self, digests: set[bytes]) -> None:
        """Forget every file but those of ``digests``: what a listing no longer shows."""
        with self._lock:
            for digest in set(self._known) - digests:
                self._unaccount(digest)

    def tagged(self, tag: str) -> list[bytes]:
        """Return the digests of the files carrying ``tag``."""
        with self._lock:
            return [digest for digest, known in self._known.items() if tag in known.tags]

    def expired(self, now: float) -> list[bytes]:
        """Return the digests of the files whose expiry is ``now`` or earlier."""
        with self._lock:
            return [
                digest
                for digest, known in self._known.items()
                if known.expires_at is not None and known.expires_at <= now
            ]

    def over_budget(self) -> list[bytes]:
        """Forget files in eviction order until the rest fit the budget; return them."""
        victims = []
        with self._lock:
            capacity = self._budget.capacity
            while capacity is not None and self._bytes > capacity:
                victim = self._policy.victim().key
                assert isinstance(victim, bytes)
                self._unaccount(victim)
                victims.append(victim)
        return victims

    def _unaccount(self, digest: bytes) -> None:
        known = self._known.pop(digest, None)
        if known is not None:
            self._bytes -= known.bytes
            self._policy.remove(self._nodes.pop(digest))


def storage_budget(capacity: int | str | None, volume: Callable[[], int | None]) -> int | None:
    """Return the bytes ``capacity`` allows; ``volume`` gives the storage's size, if known.

    ``capacity`` is a number of bytes, a size such as ``"500GiB"``, or a share of a
    local volume such as ``"30%"``; None means no budget.
    """
    if capacity is None:
        return None
    whole = 0
    if isinstance(capacity, str) and capacity.strip().endswith("%"):
        whole_volume = volume()
        if whole_volume is None:
            raise ValueError(
                f"storage_capacity {capacity!r} is a share of the storage volume, which "
                "only a local storage has; give remote storage a size such as '100GiB'"
            )
        whole = whole_volume
    return parse_capacity(
        capacity, object_store_bytes=whole, what="storage_capacity", whole="the storage volume"
    )
