"""The durable tier of one cache: entries as files under a storage location, in a byte budget.

An entry's file is ``<root>/<cache name>/<hex>.rc``, named by its key digest, so no
global index is needed: a new cluster reads old entries at once. The tier keeps an
index of the files it knows (size, expiry, tags) to keep its budget and to answer tag
queries fast, but every answer is checked against the files: :meth:`StorageTier.scan`
lists them afresh, and :meth:`StorageTier.invalidate_tag`, :meth:`StorageTier.clear` and
:meth:`StorageTier.expire` scan before they act.

Nothing the storage does raises out of :meth:`StorageTier.write` or
:meth:`StorageTier.read`: a full disk, a refused permission or an unreachable S3 is
counted in ``write_errors`` or ``read_errors``; a truncated, corrupted, foreign or
crafted file is counted in ``corrupt``, removed, and read as a miss. With a storage key
(``Storage.key``), a file the key did not sign is counted in ``rejected`` and read as a
miss, and is never decoded. A file of a format version this one does not know is a miss
that is left alone, by reads, scans, expiry and eviction alike (a newer raycache sharing
the storage in a rolling upgrade wrote it); only :meth:`StorageTier.clear` removes it.

The budget is what the disk holds: the blocks each file takes, the folder itself, and
the temporary files of writers at work; those of writers that died go at every scan.
After ``unhealthy_after`` failures in a row the tier reports itself unhealthy, so that
the cache can warn once and carry on in memory. A removal the storage refused is owed
(:mod:`~raycache.core.storage.pending`): reads treat the files it covers as misses, and
the tier does it as soon as the storage answers again (:meth:`StorageTier.pay_owed`).

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
from raycache.core.storage.file_entry import FileEntry
from raycache.core.storage.files import Contents, Files, Listing, LocalFiles
from raycache.core.storage.format import Header, UnknownVersion
from raycache.core.storage.ledger import Budget, Known, Ledger, storage_budget
from raycache.core.storage.location import Storage
from raycache.core.storage.packing import (
    Opened,
    Rejected,
    StoredValue,
    check,
    check_digest,
    digest_of,
    entry_path,
    pack,
    unpack,
    value_of,
)
from raycache.core.storage.pending import Owns, PendingRemovals
from raycache.core.storage.remote import RemoteFiles
from raycache.core.storage.signing import Signer
from raycache.core.storage.survey import survey
from raycache.core.store import Clock, make_policy

STORAGE_POLICIES = ("lru", "gdsf")
"""Eviction policies of the tier: least recently used, or size- and cost-aware GDSF."""

UNHEALTHY_AFTER = 5
"""Storage failures in a row after which a tier reports itself unhealthy."""


class StorageTier:
    """The files of cache ``name`` under ``storage``, kept within ``capacity`` bytes.

    ``capacity`` takes the forms of a cache's ``capacity`` (an int, ``"8GiB"``,
    ``"512MB"``, or ``"30%"`` of a local storage's volume); None means no budget.
    ``clock`` gives wall-clock seconds, against which ``expires_at`` is compared.
    ``owns``, if given, limits the files the tier counts and evicts to the digests it
    accepts, within ``share`` of ``capacity``: the shards of one cache share one folder,
    each keeping its own keys' files within its share of the budget, so that together
    they keep the folder within it. Methods may be called from several threads.
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
        self._root = storage.local_root
        self._files: Files = LocalFiles(self._root, storage) if self._root else RemoteFiles(storage)
        self._signer = None if storage.key is None else Signer(storage.key)
        self._budget = Budget(storage_budget(capacity, self._files.volume_bytes))
        chosen = make_policy(validation.choice(policy, STORAGE_POLICIES, "policy"))
        self._ledger = Ledger(chosen, self._budget)
        self.set_share(share)
        self._owns = owns
        self._pending = PendingRemovals(clock)
        self._unread = False  # whether the last scan could not read some file's header
        self._clock = clock
        self._counters = Counters(
            unhealthy_after=validation.integer(unhealthy_after, "unhealthy_after", minimum=1)
        )

    @property
    def capacity(self) -> int | None:
        """The byte budget of the entries' files, or None for none."""
        return self._budget.capacity

    def set_share(self, share: float) -> None:
        """Keep the files within ``share`` (0 to 1) of the capacity from now on."""
        self._budget.share = share

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
        return self.scan() and self.pay_owed(now=True)

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
            packed = pack(
                digest,
                value,
                expires_at=expires_at,
                tags=tags,
                size=size,
                cost=cost,
                signer=self._signer,
            )
        except Exception:  # any value may refuse to pickle; that is the value's business
            self._counters.count("skipped")
            return False
        if self.capacity is not None and packed.nbytes > self.capacity:
            self._counters.count("skipped")
            return False
        if not self.pay_owed():
            self._counters.fail("write_errors")  # a removal owed comes first, and failed again
            return False
        try:
            written = self._files.write(entry_path(self._name, digest), packed.chunks)
        except OSError:
            self._counters.fail("write_errors")
            return False
        self._counters.succeed()
        self._pending.written(digest)
        identity = written.identity
        # The folder may have grown with its entries.
        self._budget.overhead = max(self._budget.overhead, written.folder)
        version = None if identity is None else identity[1:]  # (size, modified ns)
        known = Known(written.allocated, expires_at, tags, version, identity)
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
        :class:`~raycache.core.storage.file_entry.FileEntry` its readers open themselves.
        """
        check_digest(digest)
        self.pay_owed()
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
        A file whose header could not be read now is hidden from reads until a later
        attempt removes it, so no tagged entry is ever read after this returns.
        """
        listing = self._scan()
        if listing is None or self._unread:
            self._pending.add(tag=tag)
        if listing is None:
            return 0
        tagged = self._ledger.tagged(tag)
        return self._delete([digest for digest in tagged if where is None or where(digest)])

    def clear(self, *, where: Callable[[bytes], bool] | None = None) -> int:
        """Remove every file of this cache, or those ``where`` accepts; return how many.

        Every file, whatever it holds: damaged, unsigned, or of another format version.
        """
        listing = self._scan()
        if listing is None:
            self._pending.add(clear=True, where=where)
            return 0
        removed = 0
        for entry in listing.entries:
            digest = digest_of(entry.path)
            if digest is not None and (where is None or where(digest)):
                self._ledger.forget(digest)
                removed += self._remove_path(entry.path, digest)
        if removed:
            self._sync()
        return removed

    def expire(self) -> int:
        """Remove every entry whose time has come; return how many were removed."""
        self.scan()
        return self._delete(self._ledger.expired(self._clock()), "expirations")

    def scan(self) -> bool:
        """Learn the files as they are now, written by any process; then keep the budget.

        Return whether the storage could be listed. On object storage it reads the header
        of every file it does not know yet. Temporary files of writers that died go.
        """
        return self._scan() is not None

    def _scan(self) -> Listing | None:
        try:
            listing = self._files.listing(self._name)
        except OSError:
            self._counters.fail("read_errors")
            return None
        self._counters.succeed()
        self._budget.overhead = listing.overhead
        surveyed = survey(self._files, self._name, listing, self._ledger.get, self._owns)
        self._unread = surveyed.unread
        self._delete(surveyed.corrupt, "corrupt")
        self._ledger.keep_only(set(surveyed.found))
        for digest, known in surveyed.found.items():
            self._ledger.remember(digest, known, 0.0)
        self._delete(self._ledger.over_budget(), "evictions")
        return listing

    def pay_owed(self, *, now: bool = False) -> bool:
        """Do the removals owed to the storage; return whether none is owed any more.

        Each one that fails again stays owed, and is tried again some seconds later (at
        once with ``now``): see :meth:`~raycache.core.storage.pending.PendingRemovals.due`.
        """
        return self._pending.pay(self.delete, self.invalidate_tag, self.clear, now=now)

    def stats(self) -> StorageStats:
        """Return the counters and the current entries and bytes."""
        return self._counters.stats(entries=len(self._ledger), bytes=self._ledger.total_bytes)

    def _open(
        self, digest: bytes, path: str, contents: Contents, arrow: bool, map_above: int | None
    ) -> StoredValue | None:
        buffer = contents.buffer
        try:
            opened = unpack(buffer, digest)
            if self._hidden(digest, opened.header):
                self._counters.count("misses")
                return None
            self._verify(digest, contents, opened)
            mapped = self._mapped(digest, path, opened.header, contents, map_above)
            value = mapped or value_of(opened, arrow=arrow)
        except UnknownVersion:  # a newer raycache's file: left to it
            self._counters.count("misses")
            return None
        except Rejected:  # never decoded, and left in place: the next write replaces it
            self._counters.count("rejected")
            self._counters.count("misses")
            return None
        except Exception:  # a file that cannot give back its value, for any reason, is a miss
            self._delete([digest], "corrupt")
            self._counters.count("misses")
            return None
        header = opened.header
        self._hit(digest, path, header, contents)
        return StoredValue(
            value, header.encoding, header.expires_at, header.tags, header.size, header.cost, buffer
        )

    def _hidden(self, digest: bytes, header: Header) -> bool:
        """Whether a file reads as a miss without a check: removed, as far as readers go."""
        if self._pending.hides(digest, header.tags):
            return True
        if header.expired(self._clock()):
            self._delete([digest], "expirations")
            return True
        return False

    def _verify(self, digest: bytes, contents: Contents, opened: Opened) -> None:
        # Checking a large payload costs more than mapping it: a file whose identity
        # (inode, size, mtime) this tier wrote or checked already is not checked again.
        known = self._ledger.get(digest)
        identity = contents.identity
        if known is None or identity is None or known.verified != identity:
            check(contents.buffer, opened, self._signer)

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
            known = Known(contents.allocated, header.expires_at, header.tags, None)
            known.verified = contents.identity
            self._ledger.remember(digest, known, header.cost)

    def _delete(self, digests: list[bytes], reason: str | None = None) -> int:
        removed = 0
        for digest in digests:
            self._ledger.forget(digest)
            removed += self._remove_path(entry_path(self._name, digest), digest)
        if reason is not None:
            self._counters.count(reason, len(digests))
        if removed and reason is None:  # a removal asked for must outlive a crash
            self._sync()
        return removed

    def _sync(self) -> None:
        try:
            self._files.sync_folder(self._name)
        except OSError:
            self._counters.fail("write_errors")

    def _remove_path(self, path: str, digest: bytes) -> bool:
        try:
            return self._files.delete(path)
        except OSError:
            self._counters.fail("write_errors")
            self._pending.add(digest=digest)
            return False
