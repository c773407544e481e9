"""The durable tier of one cache: entries as files under a storage location, in a byte budget.

An entry's file is ``<root>/<cache name>/<hex[:2]>/<hex>.rc``, named by its key digest, so
no global index is needed: a new cluster reads old entries at once. The tier keeps an
index of the files it knows (size, expiry, tags) to keep its budget and to answer tag
queries fast, but every answer is checked against the files: :meth:`StorageTier.scan`
lists them afresh, and :meth:`StorageTier.invalidate_tag`, :meth:`StorageTier.clear` and
:meth:`StorageTier.expire` scan before they act.

Nothing the storage does raises out of :meth:`StorageTier.write` or
:meth:`StorageTier.read`: a full disk, a refused permission or an unreachable S3 is
counted in ``write_errors`` or ``read_errors``; a truncated, corrupted, foreign or
unknown-version file is counted in ``corrupt``, removed, and read as a miss. After
``unhealthy_after`` failures in a row the tier reports itself unhealthy, so that the cache
can warn once and carry on in memory.

>>> import tempfile
>>> from raycache.core.storage.location import parse_storage
>>> tier = StorageTier(parse_storage(tempfile.mkdtemp()), "demo")
>>> tier.write(bytes(16), {"rows": 3}, tags=("eu",))
True
>>> tier.read(bytes(16)).value
{'rows': 3}
>>> tier.invalidate_tag("eu"), tier.read(bytes(16))
(1, None)
>>> tier.stats().storage_hits, tier.stats().storage_misses
(1, 1)
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from raycache.core import validation
from raycache.core.config import parse_capacity
from raycache.core.storage.entry import (
    check_digest,
    check_payload,
    digest_of,
    entry_path,
    pack,
    unpack,
    value_of,
)
from raycache.core.storage.files import Contents, Files, Listed, files_for
from raycache.core.storage.format import (
    HEADER_SIZE,
    Encoding,
    FormatError,
    Header,
    meta_length,
    unpack_header,
)
from raycache.core.storage.location import Storage
from raycache.core.storage.mapped import FileEntry
from raycache.core.store import Clock, Entry, Policy, make_policy

STORAGE_POLICIES = ("lru", "gdsf")
"""Eviction policies of the tier: least recently used, or size- and cost-aware GDSF."""

UNHEALTHY_AFTER = 5
"""Storage failures in a row after which a tier reports itself unhealthy."""

_HEAD_GUESS = 4096  # reads the header and the meta of almost every file in one request


@dataclass(frozen=True)
class StoredValue:
    """A value read from storage, and what its file says about it.

    ``buffer`` is the whole file, mapped (local) or downloaded (remote); the value's
    Arrow and numpy buffers are views of it.
    """

    value: Any
    encoding: Encoding
    expires_at: float | None
    tags: tuple[str, ...]
    size: int
    cost: float
    buffer: memoryview


@dataclass(frozen=True)
class StorageStats:
    """Counters of a tier since it was created, and what it holds now."""

    storage_entries: int
    storage_bytes: int
    storage_hits: int
    storage_misses: int
    write_errors: int
    read_errors: int
    corrupt: int
    expirations: int
    evictions: int
    skipped: int
    """Values not written: larger than the whole budget, or that cannot be pickled."""
    healthy: bool


@dataclass
class _Known:
    bytes: int
    expires_at: float | None
    tags: tuple[str, ...]
    version: tuple[int, ...] | None  # (size, modified ns) as listed, None if not listed yet
    verified: tuple[int, ...] | None = None  # identity of the version whose checksum held


class StorageTier:
    """The files of cache ``name`` under ``storage``, kept within ``capacity`` bytes.

    ``capacity`` takes the forms of a cache's ``capacity`` (an int, ``"8GiB"``,
    ``"512MB"``, or ``"30%"`` of a local storage's volume); None means no budget.
    ``clock`` gives wall-clock seconds, against which ``expires_at`` is compared.
    Methods may be called from several threads.
    """

    def __init__(
        self,
        storage: Storage,
        name: str,
        *,
        capacity: int | str | None = None,
        policy: str = "lru",
        clock: Clock = time.time,
        unhealthy_after: int = UNHEALTHY_AFTER,
    ) -> None:
        self._name = validation.name(name)
        self._files: Files = files_for(storage)
        self._root = storage.local_root
        self._capacity = _storage_capacity(capacity, self._files)
        self._policy: Policy = make_policy(validation.choice(policy, STORAGE_POLICIES, "policy"))
        self._clock = clock
        self._unhealthy_after = validation.integer(unhealthy_after, "unhealthy_after", minimum=1)
        self._known: dict[bytes, _Known] = {}
        self._nodes: dict[bytes, Entry] = {}  # what the policy orders: a node per file
        self._bytes = 0
        self._counts: Counter[str] = Counter()
        self._failures_in_a_row = 0
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int | None:
        """The byte budget of the files, or None for none."""
        return self._capacity

    @property
    def healthy(self) -> bool:
        """False once the storage has failed ``unhealthy_after`` times in a row."""
        return self._failures_in_a_row < self._unhealthy_after

    def write(
        self,
        digest: bytes,
        value: object,
        *,
        expires_at: float | None = None,
        tags: Iterable[str] = (),
        size: int | None = None,
        cost: float = 0.0,
    ) -> bool:
        """Store ``value`` under ``digest`` in one atomic write; return whether it was stored.

        ``expires_at`` is in wall-clock seconds; ``size`` defaults to the value's size.
        """
        check_digest(digest)
        tags = validation.strings(tags, "tags")
        try:
            packed = pack(digest, value, expires_at=expires_at, tags=tags, size=size, cost=cost)
        except Exception:  # any value may refuse to pickle; that is the value's business
            return self._skip()
        if self._capacity is not None and packed.nbytes > self._capacity:
            return self._skip()
        try:
            identity = self._files.write(entry_path(self._name, digest), packed.chunks)
        except OSError:
            self._fail("write_errors")
            return False
        self._succeed()
        version = None if identity is None else identity[1:]  # (size, modified ns)
        self._remember(digest, _Known(packed.nbytes, expires_at, tags, version, identity), cost)
        self._delete(self._over_budget(), "evictions")
        return True

    def read(
        self, digest: bytes, *, arrow: bool = False, map_above: int | None = None
    ) -> StoredValue | None:
        """Return the entry stored under ``digest``, or None for a miss.

        With ``arrow``, a DataFrame stored as Arrow comes back as its memory-mapped
        ``pyarrow.Table``, without conversion to pandas. With ``map_above``, a local
        entry of at least that many bytes comes back verified but not decoded, as the
        :class:`~raycache.core.storage.mapped.FileEntry` its readers open themselves.
        """
        check_digest(digest)
        path = entry_path(self._name, digest)
        try:
            contents = self._files.read(path)
        except FileNotFoundError:
            self._succeed()
            self._forget(digest)
            self._miss()
            return None
        except OSError:
            self._fail("read_errors")
            self._miss()
            return None
        self._succeed()
        return self._open(digest, path, contents, arrow, map_above)

    def delete(self, digest: bytes) -> bool:
        """Remove the entry stored under ``digest``; return whether there was one."""
        check_digest(digest)
        self._forget(digest)
        try:
            return self._files.delete(entry_path(self._name, digest))
        except OSError:
            self._fail("write_errors")
            return False

    def invalidate_tag(self, tag: str, *, where: Callable[[bytes], bool] | None = None) -> int:
        """Remove every entry carrying ``tag``; return how many were removed.

        ``where``, if given, limits the removal to the digests it accepts (a shard's own).
        """
        self.scan()
        with self._lock:
            tagged = [digest for digest, known in self._known.items() if tag in known.tags]
        return self._delete([digest for digest in tagged if where is None or where(digest)])

    def clear(self, *, where: Callable[[bytes], bool] | None = None) -> int:
        """Remove every entry of this cache, or those ``where`` accepts; return how many."""
        self.scan()
        with self._lock:
            everything = list(self._known)
        return self._delete([digest for digest in everything if where is None or where(digest)])

    def expire(self) -> int:
        """Remove every entry whose time has come; return how many were removed."""
        self.scan()
        now = self._clock()
        with self._lock:
            expired = [
                digest
                for digest, known in self._known.items()
                if known.expires_at is not None and known.expires_at <= now
            ]
        return self._delete(expired, "expirations")

    def scan(self) -> None:
        """Learn the files as they are now, written by any process; then keep the budget.

        A shard calls this as it starts (in the background: on object storage it lists
        every file and reads the header of each one it does not know yet).
        """
        try:
            listed = self._files.listing(self._name)
        except OSError:
            self._fail("read_errors")
            return
        self._succeed()
        found: dict[bytes, _Known] = {}
        for entry in sorted(listed, key=lambda entry: entry.used):
            digest = digest_of(entry.path)
            if digest is not None:
                known = self._known_version(digest, entry)
                if known is not None:
                    found[digest] = known
        with self._lock:
            for digest in set(self._known) - set(found):
                self._unaccount(digest)
        for digest, known in found.items():
            self._remember(digest, known, 0.0)
        self._delete(self._over_budget(), "evictions")

    def stats(self) -> StorageStats:
        """Return the counters and the current entries and bytes."""
        with self._lock:
            counts = self._counts
            return StorageStats(
                storage_entries=len(self._known),
                storage_bytes=self._bytes,
                storage_hits=counts["hits"],
                storage_misses=counts["misses"],
                write_errors=counts["write_errors"],
                read_errors=counts["read_errors"],
                corrupt=counts["corrupt"],
                expirations=counts["expirations"],
                evictions=counts["evictions"],
                skipped=counts["skipped"],
                healthy=self.healthy,
            )

    def _open(
        self, digest: bytes, path: str, contents: Contents, arrow: bool, map_above: int | None
    ) -> StoredValue | None:
        buffer = contents.buffer
        with self._lock:
            known = self._known.get(digest)
            verified = (
                known is not None
                and contents.identity is not None
                and known.verified == contents.identity
            )
        try:
            header, payload, checksum = unpack(buffer, digest)
            if header.expired(self._clock()):
                self._delete([digest], "expirations")
                self._miss()
                return None
            # Hashing a large payload costs more than mapping it: a file whose identity
            # (inode, size, mtime) this tier wrote or checked already is not hashed again.
            if not verified:
                check_payload(payload, checksum)
            mapped = self._mapped(digest, path, header, contents, map_above)
            value = mapped or value_of(header, payload, checksum, verify=False, arrow=arrow)
        except Exception:  # a file that cannot give back its value, for any reason, is a miss
            self._delete([digest], "corrupt")
            self._miss()
            return None
        self._hit(digest, path, header, contents)
        return StoredValue(
            value, header.encoding, header.expires_at, header.tags, header.size, header.cost, buffer
        )

    def _mapped(
        self, digest: bytes, path: str, header: Header, contents: Contents, limit: int | None
    ) -> FileEntry | None:
        if limit is None or header.size < limit or self._root is None:
            return None
        assert contents.identity is not None  # local files always have one
        return FileEntry(self._root, path, digest, contents.identity)

    def _hit(self, digest: bytes, path: str, header: Header, contents: Contents) -> None:
        # A failed access-time update only blurs the LRU order across restarts.
        with contextlib.suppress(OSError):
            self._files.touch(path, contents.identity)
        with self._lock:
            self._counts["hits"] += 1
            known = self._known.get(digest)
            if known is not None:
                known.verified = contents.identity
                self._policy.touch(self._nodes[digest])
                return
        known = _Known(contents.buffer.nbytes, header.expires_at, header.tags, None)
        known.verified = contents.identity
        self._remember(digest, known, header.cost)

    def _known_version(self, digest: bytes, entry: Listed) -> _Known | None:
        version = (entry.size, entry.modified)
        with self._lock:
            known = self._known.get(digest)
        if known is not None and known.version == version:
            return known
        try:
            head = self._files.head(entry.path, _HEAD_GUESS)
            wanted = HEADER_SIZE + meta_length(head)
            if wanted > len(head):
                head = self._files.head(entry.path, wanted)
            header = unpack_header(head)[0]
        except FormatError:
            self._delete([digest], "corrupt")
            return None
        except OSError:
            return None  # removed meanwhile, or unreadable now: the next scan tries again
        return _Known(entry.size, header.expires_at, header.tags, version)

    def _remember(self, digest: bytes, known: _Known, cost: float) -> None:
        with self._lock:
            self._unaccount(digest)
            self._known[digest] = known
            self._bytes += known.bytes
            node = Entry(digest, None, known.bytes, cost, 0.0, known.expires_at, frozenset())
            self._nodes[digest] = node
            self._policy.insert(node)

    def _forget(self, digest: bytes) -> None:
        with self._lock:
            self._unaccount(digest)

    def _unaccount(self, digest: bytes) -> None:
        known = self._known.pop(digest, None)
        if known is not None:
            self._bytes -= known.bytes
            self._policy.remove(self._nodes.pop(digest))

    def _over_budget(self) -> list[bytes]:
        victims = []
        with self._lock:
            while self._capacity is not None and self._bytes > self._capacity:
                victim: bytes = self._policy.victim().key  # type: ignore[assignment]
                self._unaccount(victim)
                victims.append(victim)
        return victims

    def _delete(self, digests: list[bytes], reason: str | None = None) -> int:
        removed = 0
        for digest in digests:
            self._forget(digest)
            try:
                removed += self._files.delete(entry_path(self._name, digest))
            except OSError:
                self._fail("write_errors")
        if reason is not None:
            with self._lock:
                self._counts[reason] += len(digests)
        return removed

    def _miss(self) -> None:
        with self._lock:
            self._counts["misses"] += 1

    def _skip(self) -> bool:
        with self._lock:
            self._counts["skipped"] += 1
        return False

    def _fail(self, counter: str) -> None:
        with self._lock:
            self._counts[counter] += 1
            self._failures_in_a_row += 1

    def _succeed(self) -> None:
        self._failures_in_a_row = 0


def _storage_capacity(capacity: int | str | None, files: Files) -> int | None:
    if capacity is None:
        return None
    whole = 0
    if isinstance(capacity, str) and capacity.strip().endswith("%"):
        volume = files.volume_bytes()
        if volume is None:
            raise ValueError(
                f"storage_capacity {capacity!r} is a share of the storage volume, which "
                "only a local storage has; give remote storage a size such as '100GiB'"
            )
        whole = volume
    return parse_capacity(
        capacity, object_store_bytes=whole, what="storage_capacity", whole="the storage volume"
    )
