"""Single-flight bookkeeping: at most one computation in flight per key, and who refreshes.

A shard records here each computation it starts. Callers of a key that is already in
flight join it instead of starting another; the computation's outcome is accepted only
from the flight that is still current, identified by its token, so a computation that
was deleted, invalidated or superseded while it ran cannot land afterwards.

For stale-while-revalidate, the first caller to see an entry older than its refresh age
is *elected* to recompute it; others keep being served the old value, and no one else is
elected for :data:`ELECTION_S` seconds, which bounds the refreshes of one key.

Pure: the flight's handle (a Ray ObjectRef, in a shard) is opaque here, and the clock is
injected.

>>> flights = SingleFlight(clock=lambda: 0.0)
>>> flights.start(b"k", lambda token: f"task-{token}", ttl=None, tags=("t",))
'task-0'
>>> flights.get(b"k").handle
'task-0'
>>> flights.settle(b"k", token=7) is None  # not the current flight: ignored
True
>>> flights.settle(b"k", token=0).handle
'task-0'
>>> b"k" in flights
False
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

H = TypeVar("H")

ELECTION_S = 30.0
"""How long a caller elected to refresh a stale entry has to send the refresh."""


@dataclass(frozen=True)
class Flight(Generic[H]):
    """A computation in flight: its token, its handle, and how to keep its result."""

    token: int
    handle: H
    ttl: float | None
    tags: tuple[str, ...]


class SingleFlight(Generic[H]):
    """The computations in flight on one shard, by key. Not thread-safe, as a shard is not."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, election_s: float = ELECTION_S
    ) -> None:
        self._flights: dict[Hashable, Flight[H]] = {}
        self._elected: dict[Hashable, float] = {}
        self._tokens = itertools.count()
        self._clock = clock
        self._election_s = election_s

    def start(
        self,
        key: Hashable,
        launch: Callable[[int], H],
        *,
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> H:
        """Start a flight for ``key`` with ``launch(token)``; it replaces any current one."""
        token = next(self._tokens)
        handle = launch(token)
        self._flights[key] = Flight(token, handle, ttl, tags)
        return handle

    def get(self, key: Hashable) -> Flight[H] | None:
        """Return the current flight of ``key``, if any."""
        return self._flights.get(key)

    def settle(self, key: Hashable, token: int) -> Flight[H] | None:
        """End flight ``token`` of ``key`` and return it; None if it is no longer current."""
        flight = self._flights.get(key)
        if flight is None or flight.token != token:
            return None
        del self._flights[key]
        self._elected.pop(key, None)
        return flight

    def forget(self, key: Hashable) -> bool:
        """Drop the flight of ``key``, so that its outcome is ignored; return whether one was."""
        return self._flights.pop(key, None) is not None

    def forget_where(self, predicate: Callable[[Hashable, Flight[H]], bool]) -> list[Hashable]:
        """Drop every flight for which ``predicate(key, flight)`` holds; return their keys."""
        dropped = [key for key, flight in self._flights.items() if predicate(key, flight)]
        for key in dropped:
            del self._flights[key]
        return dropped

    def forget_tagged(self, tag: str) -> list[Hashable]:
        """Drop every flight whose result would carry ``tag``; return their keys."""
        return self.forget_where(lambda _, flight: tag in flight.tags)

    def clear(self) -> None:
        """Drop every flight and election."""
        self._flights.clear()
        self._elected.clear()

    def elect(self, key: Hashable, age: float, refresh_after: float) -> bool:
        """Return whether the caller seeing ``key`` at ``age`` seconds should refresh it.

        True at most once per :data:`ELECTION_S` seconds per key, and never while the key
        is in flight or younger than ``refresh_after``.
        """
        if age < refresh_after or key in self._flights:
            return False
        now = self._clock()
        if now - self._elected.get(key, -math.inf) < self._election_s:
            return False
        self._elected[key] = now
        return True

    def __contains__(self, key: object) -> bool:
        """Return whether ``key`` has a flight."""
        return key in self._flights

    def __len__(self) -> int:
        """Return the number of flights."""
        return len(self._flights)

    def __iter__(self) -> Iterator[Hashable]:
        """Iterate over the keys in flight."""
        return iter(self._flights)
