"""Removals the storage refused, kept until it answers again, and honoured by reads meanwhile.

A ``delete``, ``invalidate_tag`` or ``clear`` that cannot reach the storage (a full or
read-only disk, an S3 that refuses) must not let the removed entry come back once the
storage answers again: that would be a stale value. So a tier remembers each removal it
could not do, treats every file such a removal covers as a miss, and does the removals
as soon as the storage answers.

They are kept in the memory of the process, so a whole cluster restarted while the
storage is unreachable forgets them: the files they cover can then be read back.

>>> pending = PendingRemovals()
>>> pending.add(digest=b"a"), pending.add(tag="eu")
(None, None)
>>> pending.hides(b"a", ()), pending.hides(b"b", ("eu",)), pending.hides(b"b", ())
(True, True, False)
>>> pending.written(b"a"); pending.hides(b"a", ())
False
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

Owns = Callable[[bytes], bool]
"""Which digests a removal covers: those the predicate accepts."""


class Removals(NamedTuple):
    """Removals to do: of single files, of tagged files, and of every file ``where`` accepts."""

    digests: set[bytes]
    tags: set[str]
    clears: list[Owns | None]


RETRY_S = 10.0
"""Seconds between attempts at the removals a refusing storage is owed."""


class PendingRemovals:
    """The removals a tier owes its storage; safe to use from several threads.

    ``clock`` gives the seconds by which :meth:`due` spaces attempts :data:`RETRY_S` apart.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._owed = Removals(set(), set(), [])
        self._lock = threading.Lock()
        self._clock = clock
        self._retry_at = 0.0

    def __bool__(self) -> bool:
        owed = self._owed
        return bool(owed.digests or owed.tags or owed.clears)

    def add(
        self,
        *,
        digest: bytes | None = None,
        tag: str | None = None,
        clear: bool = False,
        where: Owns | None = None,
    ) -> None:
        """Owe the removal of ``digest``'s file, of the files tagged ``tag``, or a ``clear``."""
        with self._lock:
            if digest is not None:
                self._owed.digests.add(digest)
            if tag is not None:
                self._owed.tags.add(tag)
            if clear:
                self._owed.clears.append(where)

    def hides(self, digest: bytes, tags: tuple[str, ...]) -> bool:
        """Whether a removal owed covers the file of ``digest``, which carries ``tags``."""
        with self._lock:
            owed = self._owed
            return (
                digest in owed.digests
                or not owed.tags.isdisjoint(tags)
                or any(where is None or where(digest) for where in owed.clears)
            )

    def written(self, digest: bytes) -> None:
        """Note a newer write of ``digest``: a removal owed of its single file is void."""
        with self._lock:
            self._owed.digests.discard(digest)

    def due(self, *, now: bool = False) -> Removals | None:
        """Return every removal owed, owing none, if it is time to try them; else None.

        It is time once :data:`RETRY_S` passed since the last attempt, or at once with
        ``now``, so that an unreachable storage is not asked again at every read. The
        caller adds back those that fail again.

        >>> clock = iter([0.0, 1.0, 11.0]).__next__
        >>> pending = PendingRemovals(clock)
        >>> pending.add(digest=b"a")
        >>> pending.due().digests, pending.add(digest=b"a"), pending.due(), pending.due()
        ({b'a'}, None, None, Removals(digests={b'a'}, tags=set(), clears=[]))
        """
        with self._lock:
            moment = self._clock()
            if not now and moment < self._retry_at:
                return None
            self._retry_at = moment + RETRY_S
            owed, self._owed = self._owed, Removals(set(), set(), [])
            return owed

    def pay(
        self,
        delete: Callable[[bytes], object],
        invalidate_tag: Callable[[str], object],
        clear: Callable[..., object],
        *,
        now: bool = False,
    ) -> bool:
        """Do the removals owed, if :meth:`due`; return whether none is owed any more.

        ``delete``, ``invalidate_tag`` and ``clear`` (which takes ``where=``) are the
        tier's own, which owe again whatever fails again.
        """
        owed = self.due(now=now) if self else None
        if owed is not None:
            for digest in owed.digests:
                delete(digest)
            for tag in owed.tags:
                invalidate_tag(tag)
            for where in owed.clears:
                clear(where=where)
        return not self
