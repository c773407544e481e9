"""How a shard finds what a read asks for: its memory, then its storage, then its computations.

A key's entry comes from the store, or else from the durable tier, which takes it back
into memory (:class:`~raycache.actors.durable.Recall`). A key with no entry may have a
computation that finished but has not reported yet: its reference is the answer. A
batch whose keys are all small hits, the usual one, is answered with no reply per key.
"""

from __future__ import annotations

from raycache.actors.custody import Custody
from raycache.actors.durable import Recall
from raycache.actors.flights import Computations
from raycache.actors.references import StoredRef, reply_for
from raycache.core import protocol
from raycache.core.protocol import WireReply
from raycache.core.store import Entry, Store


class Reads:
    """Answers one shard's reads from its store, its storage and its finished computations."""

    def __init__(
        self, store: Store, custody: Custody, recall: Recall, computations: Computations
    ) -> None:
        self._store = store
        self._custody = custody
        self._recall = recall
        self._computations = computations

    def entry(self, digest: bytes, *, count: bool = True) -> Entry | None:
        """Return the key's entry from memory, else from storage (taken back into memory).

        Unless ``count``, the store counts no hit or miss and its policy is not told.
        """
        entry = self._store.get(digest) if count else self._store.peek(digest)
        if entry is not None:
            return self._custody.serving(entry)
        return self._recall(digest)

    def reply(self, digest: bytes) -> WireReply:
        """Return the HIT or REF of the key's entry, its finished computation, or MISS."""
        return self._reply(digest, self.entry(digest))

    def present(self, digest: bytes) -> bool:
        """Return whether the key has an entry or a finished computation, counting nothing."""
        return (
            self.entry(digest, count=False) is not None
            or self._computations.finished(digest) is not None
        )

    def many(self, digests: list[bytes]) -> tuple[WireReply, list[Entry | None]]:
        """Return OK with a reply per digest as ``Columns``, and the entries found."""
        entries = self._store.get_many(digests)
        if self._custody.promoting:
            entries = [entry and self._custody.serving(entry) for entry in entries]
        for i in [i for i, entry in enumerate(entries) if entry is None]:
            entries[i] = self._recall(digests[i])
        if all(entry is not None and entry.value.__class__ is not StoredRef for entry in entries):
            return protocol.inline_hits([entry.value for entry in entries]), entries  # type: ignore[union-attr]
        replies = [self._reply(d, entry) for d, entry in zip(digests, entries, strict=True)]
        return protocol.columns(replies), entries

    def _reply(self, digest: bytes, entry: Entry | None) -> WireReply:
        if entry is None:
            return self._computations.finished(digest) or protocol.miss()
        return reply_for(entry)
