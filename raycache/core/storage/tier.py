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
can warn once and carry on in memory. A removal the storage refused is owed
(:mod:`~raycache.core.storage.pending`): reads treat the files it covers as misses, and
the tier does it as soon as the storage answers again (:meth:`StorageTier.settle`).

A tier may keep only the files of the digests that ``owns`` accepts: the shards of one
cache share one folder, each counting and evicting its own keys' files within its share
of the budget, so that together they keep the folder within it.

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
import time
from collections.abc import Callable, Iterable

from raycache.core import validation
from raycache.core.storage.counters import Counters, StorageStats
from raycache.core.storage.entry import (
    StoredValue,
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
    FormatError,
    Header,
    meta_length,
    unpack_header,
)
from raycache.core.storage.ledger import Known, Ledger, storage_budget
from raycache.core.storage.location import Storage
from raycache.core.storage.mapped import FileEntry
from raycache.core.storage.pending import Owns, PendingRemovals
from raycache.core.store import Clock, make_policy

STORAGE_POLICIES = ("lru", "gdsf")
"""Eviction policies of the tier: least recently used, or size- and cost-aware GDSF."""

UNHEALTHY_AFTER = 5
"""Storage failures in a row after which a tier reports itself unhealthy."""

RETRY_S = 10.0
"""Seconds between attempts at the removals a refusing storage is owed."""

_HEAD_GUESS = 4096  # reads the header and the meta of almost every file in one request


class StorageTier:
    """The files of cache ``name`` under ``storage``, kept within ``capacity`` bytes.

    ``capacity`` takes the forms of a cache's ``capacity`` (an int, ``"8GiB"``,
    ``"512MB"``, or ``"30%"`` of a local storage's volume); None means no budget.
    ``clock`` gives wall-clock seconds, against which ``expires_at`` is compared.
    ``owns``, if given, limits the files the tier counts and evicts to the digests it
    accepts, within ``share`` of ``capacity``. Methods may be called from several threads.
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
        owns: Owns | None = None,
        share: float = 1.0,
    ) -> None:
        self._name = validation.name(name)
        self._files: Files = files_for(storage)
        self._root = storage.local_root
        self._whole = storage_budget(capacity, self._files.volume_bytes)
        self._capacity = self._whole
        chosen = make_policy(validation.choice(policy, STORAGE_POLICIES, "policy"))
        self._ledger = Ledger(chosen, self._capacity)
        self.set_share(share)
        self._owns = owns
        self._pending = PendingRemovals()
        self._retry_at = 0.0
        self._clock = clock
        self._counters = Counters(
            unhealthy_after=validation.integer(unhealthy_after, "unhealthy_after", minimum=1)
        )

    @property
    def capacity(self) -> int | None:
        """The byte budget of the files, or None for none."""
        return self._capacity

    def set_share(self, share: float) -> None:
        """Keep the files within ``share`` (0 to 1) of the capacity from now on."""
        if not 0 < share <= 1:
            raise ValueError(f"share must be above 0 and at most 1, got {share!r}")
        self._capacity = None if self._whole is None else int(self._whole * share)
        self._ledger.set_capacity(self._capacity)

    def owe(
        self, *, digest: bytes | None = None, tag: str | None = None, where: Owns | None = None
    ) -> None:
        """Record a removal to do once the storage answers, making no request now.

        It removes ``digest``'s file, or the files tagged ``tag``, or else every file
        ``where`` accepts (all if None): for a storage known to be down.
        """
        if digest is not None:
            self._ledger.forget(digest)
        self._pending.add(digest=digest, tag=tag, clear=digest is None and tag is None, where=where)

    def recover(self) -> bool:
        """Try the storage again: list it, then do the removals owed; return whether both did."""
        return self.scan() and self.settle(now=True)

    @property
    def healthy(self) -> bool:
        """False once the storage has failed ``unhealthy_after`` times in a row."""
        return self._counters.healthy

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
            self._counters.count("skipped")
            return False
        if self._capacity is not None and packed.nbytes > self._capacity:
            self._counters.count("skipped")
            return False
        if not self.settle():
            self._counters.fail("write_errors")  # a removal owed comes first, and failed again
            return False
        try:
            identity = self._files.write(entry_path(self._name, digest), packed.chunks)
        except OSError:
            self._counters.fail("write_errors")
            return False
        self._counters.succeed()
        self._pending.written(digest)
        version = None if identity is None else identity[1:]  # (size, modified ns)
        known = Known(packed.nbytes, expires_at, tags, version, identity)
        self._ledger.remember(digest, known, cost)
        self._delete(self._ledger.over_budget(), "evictions")
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
        self.settle()
        if self._pending.hides(digest, ()):
            self._counters.count("misses")
            return None
        path = entry_path(self._name, digest)
        try:
            contents = self._files.read(path)
        except FileNotFoundError:
            self._counters.succeed()
            self._ledger.forget(digest)
            self._counters.count("misses")
            return None
        except OSError:
            self._counters.fail("read_errors")
            self._counters.count("misses")
            return None
        self._counters.succeed()
        return self._open(digest, path, contents, arrow, map_above)

    def delete(self, digest: bytes) -> bool:
        """Remove the entry stored under ``digest``; return whether there was one."""
        check_digest(digest)
        return self._delete([digest]) > 0

    def invalidate_tag(self, tag: str, *, where: Callable[[bytes], bool] | None = None) -> int:
        """Remove every entry carrying ``tag``; return how many were removed.

        ``where``, if given, limits the removal to the digests it accepts (a shard's own).
        """
        if not self.scan():
            self._pending.add(tag=tag)
            return 0
        tagged = self._ledger.tagged(tag)
        return self._delete([digest for digest in tagged if where is None or where(digest)])

    def clear(self, *, where: Callable[[bytes], bool] | None = None) -> int:
        """Remove every entry of this cache, or those ``where`` accepts; return how many."""
        if not self.scan():
            self._pending.add(clear=True, where=where)
            return 0
        everything = self._ledger.digests()
        return self._delete([digest for digest in everything if where is None or where(digest)])

    def expire(self) -> int:
        """Remove every entry whose time has come; return how many were removed."""
        self.scan()
        return self._delete(self._ledger.expired(self._clock()), "expirations")

    def scan(self) -> bool:
        """Learn the files as they are now, written by any process; then keep the budget.

        Return whether the storage could be listed. A shard calls this as it starts (in
        the background: on object storage it lists every file and reads the header of
        each one it does not know yet).
        """
        try:
            listed = self._files.listing(self._name)
        except OSError:
            self._counters.fail("read_errors")
            return False
        self._counters.succeed()
        found: dict[bytes, Known] = {}
        for entry in sorted(listed, key=lambda entry: entry.used):
            digest = digest_of(entry.path)
            if digest is not None and (self._owns is None or self._owns(digest)):
                known = self._known_version(digest, entry)
                if known is not None:
                    found[digest] = known
        self._ledger.keep_only(set(found))
        for digest, known in found.items():
            self._ledger.remember(digest, known, 0.0)
        self._delete(self._ledger.over_budget(), "evictions")
        return True

    def settle(self, *, now: bool = False) -> bool:
        """Do the removals owed to the storage; return whether none is owed any more.

        Each one that fails again stays owed, and is tried again :data:`RETRY_S` later
        at the earliest (at once with ``now``), so that an unreachable storage is not
        asked again at every read.
        """
        if not self._pending:
            return True
        if not now and self._clock() < self._retry_at:
            return False
        owed = self._pending.take()
        for digest in owed.digests:
            self._delete([digest])
        for tag in owed.tags:
            self.invalidate_tag(tag)
        for where in owed.clears:
            self.clear(where=where)
        self._retry_at = self._clock() + RETRY_S
        return not self._pending

    def stats(self) -> StorageStats:
        """Return the counters and the current entries and bytes."""
        return self._counters.stats(entries=len(self._ledger), bytes=self._ledger.total_bytes)

    def _open(
        self, digest: bytes, path: str, contents: Contents, arrow: bool, map_above: int | None
    ) -> StoredValue | None:
        buffer = contents.buffer
        known = self._ledger.get(digest)
        identity = contents.identity
        verified = known is not None and identity is not None and known.verified == identity
        try:
            header, payload, checksum = unpack(buffer, digest)
            if self._pending.hides(digest, header.tags):  # removed, as far as readers go
                self._counters.count("misses")
                return None
            if header.expired(self._clock()):
                self._delete([digest], "expirations")
                self._counters.count("misses")
                return None
            # Hashing a large payload costs more than mapping it: a file whose identity
            # (inode, size, mtime) this tier wrote or checked already is not hashed again.
            if not verified:
                check_payload(payload, checksum)
            mapped = self._mapped(digest, path, header, contents, map_above)
            value = mapped or value_of(header, payload, checksum, verify=False, arrow=arrow)
        except Exception:  # a file that cannot give back its value, for any reason, is a miss
            self._delete([digest], "corrupt")
            self._counters.count("misses")
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
        self._counters.count("hits")
        known = self._ledger.get(digest)
        if known is not None and self._ledger.touch(digest):
            known.verified = contents.identity
            return
        if self._owns is None or self._owns(digest):
            known = Known(contents.buffer.nbytes, header.expires_at, header.tags, None)
            known.verified = contents.identity
            self._ledger.remember(digest, known, header.cost)

    def _known_version(self, digest: bytes, entry: Listed) -> Known | None:
        version = (entry.size, entry.modified)
        known = self._ledger.get(digest)
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
        return Known(entry.size, header.expires_at, header.tags, version)

    def _delete(self, digests: list[bytes], reason: str | None = None) -> int:
        removed = 0
        for digest in digests:
            self._ledger.forget(digest)
            try:
                removed += self._files.delete(entry_path(self._name, digest))
            except OSError:
                self._counters.fail("write_errors")
                self._pending.add(digest=digest)
        if reason is not None:
            self._counters.count(reason, len(digests))
        return removed
