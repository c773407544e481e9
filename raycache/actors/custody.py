"""A shard's side of its node's vault: what it keeps there, and letting go of it.

A shard's large values, and the results of the tasks it starts, are objects its node's
:class:`~raycache.actors.vault.Vault` owns, so that the references a shard hands out stay
readable when the shard dies. The vault holds each one until the shard releases it;
which ones the shard may release is decided by :class:`~raycache.core.holdings.Holdings`.
Releases and records go to the vault in one fire-and-forget message per request, so that
no eviction waits on the vault.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import replace
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from raycache.actors.cluster import vault_name
from raycache.actors.compute import Call, Report
from raycache.actors.handles import call_remote
from raycache.actors.references import Mapped, StoredRef, stored_hex
from raycache.actors.vault import Record, Vault, drop_everywhere, local_vault
from raycache.core.holdings import Holdings
from raycache.core.protocol import WireReply
from raycache.core.singleflight import SingleFlight
from raycache.core.stats import ShardCounters
from raycache.core.storage.file_entry import FileEntry
from raycache.core.store import Entry, Store

Put = Callable[[bytes, Any, int, float | None, tuple[str, ...], float], WireReply]
"""A shard's put: ``put(digest, value, size, ttl, tags, cost)``."""


class Custody:
    """The references one shard holds in its node's vault, by digest."""

    def __init__(
        self, cache: str, member: str, store: Store, flights: SingleFlight[ray.ObjectRef[Any]]
    ) -> None:
        self._shard = (cache, member)
        self._store = store
        self._flights = flights
        self._vault = local_vault()
        self._holdings = Holdings(store.expirations)
        self._records: list[tuple[str, Record]] = []
        self._promoting: dict[bytes, Mapped] = {}  # by digest, the copies under way
        self._released: list[str] = []
        # A shard replaced on another node leaves its old vault holding what it kept there.
        node = ray.get_runtime_context().get_node_id()
        drop_everywhere(cache, member, sparing=vault_name(node))

    def keep(self, value: Any) -> StoredRef | None:
        """Put ``value`` in the object store under the vault's ownership; None if it is down."""
        try:
            nested = ray.get(call_remote(self._vault, Vault.keep, *self._shard, value))
        except RayActorError:
            return None  # restarting: this value goes uncached
        return StoredRef(nested[0])

    def promote(self, digest: bytes, file: FileEntry, key: bytes | None) -> Mapped | None:
        """Have the vault copy a storage hit into the object store, in the background.

        ``key`` is the cache's derived storage key, which the vault checks the copy with.

        Return at once the file to hand out, with the copy's reference (None if the file
        changed meanwhile, or the vault is down); until the copy is done,
        :meth:`serving` hands out the file for the copy's entry too.
        """
        try:
            nested = ray.get(call_remote(self._vault, Vault.promote, *self._shard, file, key))
        except RayActorError:
            return None
        if nested is None:
            return None
        mapped = self._promoting[digest] = Mapped(file, nested[0])
        return mapped

    @property
    def promoting(self) -> bool:
        """Whether a copy into the object store is under way, so :meth:`serving` may differ."""
        return bool(self._promoting)

    def serving(self, entry: Entry) -> Entry:
        """Return ``entry``, or, while its copy into the object store is under way, its file."""
        if not self._promoting:  # the usual case, on every hit: nothing to look up
            return entry
        digest = as_digest(entry.key)
        mapped = self._promoting.get(digest)
        if mapped is None:
            return entry
        if isinstance(entry.value, StoredRef) and entry.value.ref is mapped.copy.ref:
            copied, _ = ray.wait([mapped.copy.ref], timeout=0, fetch_local=False)
            if not copied:
                return replace(entry, value=mapped)
        del self._promoting[digest]
        return entry

    def submit(self, call: Call, report: Report, digest: bytes, token: int) -> ray.ObjectRef[Any]:
        """Start ``call`` as a task the vault owns; return the reference to its result."""
        ref: ray.ObjectRef[Any] = ray.get(
            call_remote(self._vault, Vault.submit, *self._shard, call, report, digest, token)
        )[0]
        self._holdings.hold(digest, ref.hex())
        return ref

    def take_large(self, ref: ray.ObjectRef[Any]) -> StoredRef:
        """Take over a large value that another shard held, such as one a resize migrates.

        A reference this node's vault owns is only held once more; any other is copied
        into it, so that the value is owned and placed like this shard's own.
        """
        taken = call_remote(self._vault, Vault.take_custody, *self._shard, [ref])
        return StoredRef(ray.get(taken)[0])

    def relocate(self, leaving: set[str], budget: int, put: Put, counts: ShardCounters) -> int:
        """Copy here the large values whose only copies are on the ``leaving`` nodes.

        The hottest go first, up to ``budget`` bytes a call, each put back with ``put``
        under a reference to its copy, and counted as evacuated in ``counts``. Return how
        many were copied: 0 once none is left.
        """
        entries = [
            entry
            for key in self._store.hottest_first()
            if (entry := self._store.peek(key)) is not None and isinstance(entry.value, StoredRef)
        ]
        chosen: list[Entry] = []
        total = 0
        for entry in _stranded(entries, leaving)[:MAX_RELOCATIONS]:
            if chosen and total + entry.size > budget:
                break
            chosen.append(entry)
            total += entry.size
        calls = [
            call_remote(self._vault, Vault.take_custody, *self._shard, [e.value.ref], copy=True)
            for e in chosen
        ]
        copied = 0
        for entry, call in zip(chosen, calls, strict=True):
            ttl = None if entry.expires_at is None else entry.expires_at - time.monotonic()
            try:
                nested = ray.get(call)
            except RayError:
                continue  # gone with its node already: a miss, as any lost object
            if ttl is None or ttl > 0:
                copy = StoredRef(nested[0])
                put(as_digest(entry.key), copy, entry.size, ttl, tuple(entry.tags), entry.cost)
                copied += 1
                counts.evacuated += 1
                counts.evacuated_bytes += entry.size
        return copied

    def home(self, ref: ray.ObjectRef[Any], node: str) -> ray.ObjectRef[Any]:
        """Return a reference to a copy on this shard's node of ``ref``, made on ``node``.

        A computed value then outlives the node it was computed on, which an autoscaler
        may remove once that node is idle (see ``elastic`` in :class:`~raycache.Cache`).
        """
        try:
            home: ray.ObjectRef[Any] = ray.get(
                call_remote(self._vault, Vault.bring_home, *self._shard, [ref], node)
            )[0]
        except RayActorError:
            return ref  # its vault is restarting: the value stays where it was computed
        return home

    def stored(self, digest: bytes, value: Any) -> None:
        """Note that ``value`` was just put in the store under ``digest``."""
        if not isinstance(value, StoredRef):
            return
        hex_id = value.ref.hex()
        self._holdings.hold(digest, hex_id)
        entry = self._store.peek(digest)
        if entry is not None and entry.value is value:  # admitted by the policy
            self._records.append((hex_id, _record(digest, entry)))

    def release_unheld(self, digests: Iterable[bytes] | None = None) -> None:
        """Release what neither the store nor a flight holds under ``digests``; tell the vault.

        None checks every reference held: after a bulk removal.
        """
        expirations = self._store.expirations
        for digest in self._holdings.to_check(digests, expirations):
            if digest in self._holdings:  # most writes are of small values, held by none
                self._released += self._holdings.release(digest, self._in_use(digest))
            if digest not in self._holdings:
                self._promoting.pop(digest, None)
        if self._records or self._released:
            call_remote(self._vault, Vault.update, *self._shard, self._records, self._released)
            self._records, self._released = [], []

    def restore(self, put: Put) -> None:
        """Put back, with the shard's ``put``, the large entries it held before it restarted.

        Entries that expired meanwhile, or that it refuses now, are released.
        """
        for record, nested in self._recover():
            self._holdings.hold(record.digest, nested[0].hex())
            ttl = record.ttl()
            if ttl is None or ttl > 0:
                put(record.digest, StoredRef(nested[0]), record.size, ttl, record.tags, record.cost)
        self.release_unheld()

    def _recover(self) -> list[tuple[Record, list[Any]]]:
        """Register with the node's vault and return what it kept for this shard.

        A vault that no shard used may exit just as this shard starts (see
        :meth:`Vault.exit_if_idle`); the next one is started then.
        """
        attempts_left = RECOVER_ATTEMPTS
        while True:
            try:
                return ray.get(call_remote(self._vault, Vault.recover, *self._shard))
            except RayActorError:
                attempts_left -= 1
                if not attempts_left:
                    raise
                self._vault = local_vault()

    def _in_use(self, digest: bytes) -> set[str]:
        entry = self._store.peek(digest)
        flight = self._flights.get(digest)
        in_use = {
            None if entry is None else stored_hex(entry),
            None if flight is None or flight.handle is None else flight.handle.hex(),
        }
        return {hex_id for hex_id in in_use if hex_id is not None}


RECOVER_ATTEMPTS = 3
"""How many vaults a starting shard tries, should the first it finds be exiting."""

MAX_RELOCATIONS = 256
"""Most large values one :meth:`Custody.relocate` copies, so that requests are served between."""

LOCATION_TIMEOUT_MS = 10_000
"""How long a shard waits for Ray to say where its large values are."""


def _stranded(entries: list[Entry], leaving: set[str]) -> list[Entry]:
    """Return the entries whose object has copies, all of them on the ``leaving`` nodes.

    An object small enough for Ray to keep in its owner's memory has no node listed: it
    lives with its owner, the vault of a live node.
    """
    refs = [entry.value.ref for entry in entries]
    try:
        where = ray.experimental.get_object_locations(refs, timeout_ms=LOCATION_TIMEOUT_MS)
    except RayError:
        return []
    found = []
    for entry, ref in zip(entries, refs, strict=True):
        nodes = set(where.get(ref, {}).get("node_ids") or ())
        if nodes and nodes <= leaving:
            found.append(entry)
    return found


def _record(digest: bytes, entry: Entry) -> Record:
    expires_at = None
    if entry.expires_at is not None:  # the store's clock is monotonic: make it wall-clock
        expires_at = time.time() + entry.expires_at - time.monotonic()
    return Record(digest, entry.size, expires_at, tuple(sorted(entry.tags)), entry.cost)


def as_digest(key: Hashable) -> bytes:
    """Return a store key as the key digest that it is."""
    assert isinstance(key, bytes)
    return key
