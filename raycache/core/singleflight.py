"""Single-flight bookkeeping: at most one computation in flight per key, and who refreshes.

A shard records here each computation of a key. A *flight* is either a task that the
cache runs (its handle is the task's reference), or a *lease* granted to one caller, who
runs the loader in its own process and then hands the value back. Callers of a key that
is already in flight join it instead of starting another. A flight's outcome is accepted
only from the flight that is still current, identified by its token, so a computation
that was deleted, invalidated or superseded while it ran cannot land afterwards.

A lease lasts ``lease_s`` seconds unless its holder renews it. A holder that dies stops
renewing, its lease expires, and the next caller of the key is granted a new one: so a
key is computed once while its callers live, and no caller waits on a dead one for long.

Waiters block on the flight's :attr:`Flight.done` event (they do not poll), and read its
:attr:`Flight.outcome` once it is set. Every way a flight ends sets the event, so that no
waiter is left behind: an outcome of None tells a waiter to look the key up again.

For stale-while-revalidate, the first caller to see an entry older than its refresh age
is *elected* to recompute it; no one else is elected for :data:`ELECTION_S` seconds.

Pure: handles and outcomes are opaque here, and the clock is injected.

>>> flights = SingleFlight(clock=lambda: 0.0)
>>> flights.start(b"k", lambda token: f"task-{token}", ttl=None, tags=("t",))
'task-0'
>>> flights.finish(b"k", token=7) is None  # not the current flight: ignored
True
>>> flight = flights.finish(b"k", token=0, outcome="value")
>>> flight.handle, flight.done.is_set(), flight.outcome
('task-0', True, 'value')
>>> lease = flights.lease(b"k", ttl=None, tags=(), lease_s=10.0)
>>> lease.handle is None, flights.expired(lease)
(True, False)
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

H = TypeVar("H")

ELECTION_S = 30.0
"""How long a caller elected to refresh a stale entry has to send the refresh."""


@dataclass
class Flight(Generic[H]):
    """A computation in flight: its token, its handle, and how to keep its result.

    ``handle`` is None for a lease, whose holder computes in its own process.
    ``deadline`` is when a lease expires unless renewed; a task's never does.
    """

    token: int
    handle: H | None
    ttl: float | None
    tags: tuple[str, ...]
    deadline: float = math.inf
    done: threading.Event = field(default_factory=threading.Event, repr=False)
    outcome: Any = None

    @property
    def is_lease(self) -> bool:
        """Whether a caller computes this flight, rather than a task of the cache."""
        return self.handle is None


class SingleFlight(Generic[H]):
    """The computations in flight on one shard, by key.

    Mutated by one thread only (a shard's), but :meth:`get` and a flight's event may be
    read from others: a dict read is atomic in CPython, and an Event is thread-safe.
    """

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
        """Start a task flight for ``key`` with ``launch(token)``; it replaces any current one."""
        token = next(self._tokens)
        handle = launch(token)
        self._replace(key, Flight(token, handle, ttl, tags))
        return handle

    def lease(
        self, key: Hashable, *, ttl: float | None, tags: tuple[str, ...], lease_s: float
    ) -> Flight[H]:
        """Grant a lease on ``key`` for ``lease_s`` seconds; it replaces any current flight."""
        flight: Flight[H] = Flight(next(self._tokens), None, ttl, tags, self._clock() + lease_s)
        self._replace(key, flight)
        return flight

    def renew(self, key: Hashable, token: int, lease_s: float) -> bool:
        """Extend lease ``token`` of ``key`` by ``lease_s`` from now; False if it is not current."""
        flight = self._flights.get(key)
        if flight is None or flight.token != token or not flight.is_lease:
            return False
        flight.deadline = self._clock() + lease_s
        return True

    def expired(self, flight: Flight[H]) -> bool:
        """Return whether ``flight`` is a lease that its holder has stopped renewing."""
        return self._clock() >= flight.deadline

    def remaining(self, flight: Flight[H]) -> float:
        """Return the seconds until ``flight`` expires unless renewed (inf for a task)."""
        return flight.deadline - self._clock()

    def wait_out(self, flight: Flight[H], timeout_s: float) -> Any:
        """Block until ``flight`` ends or expires, for up to ``timeout_s``; return its outcome.

        None means it ended without a value, expired, or is still running. Safe from any
        thread: it only reads the flight, whose event the owning thread sets.
        """
        give_up = self._clock() + timeout_s
        # Wake when the flight ends, or when it would expire: a lease's holder renews it
        # (moving the deadline on) for as long as it lives.
        while not flight.done.is_set() and not self.expired(flight):
            now = self._clock()
            wake = min(give_up, now + self.remaining(flight))
            if wake <= now or flight.done.wait(wake - now):
                break
        return flight.outcome

    def get(self, key: Hashable) -> Flight[H] | None:
        """Return the current flight of ``key``, if any."""
        return self._flights.get(key)

    def finish(self, key: Hashable, token: int, outcome: Any = None) -> Flight[H] | None:
        """End flight ``token`` of ``key`` with ``outcome`` for its waiters, and return it.

        Returns None, and changes nothing, if that flight is no longer current.
        """
        flight = self._flights.get(key)
        if flight is None or flight.token != token:
            return None
        del self._flights[key]
        self._elected.pop(key, None)
        _finish(flight, outcome)
        return flight

    def forget(self, key: Hashable) -> bool:
        """Drop the flight of ``key``, so that its outcome is ignored; return whether one was."""
        flight = self._flights.pop(key, None)
        if flight is None:
            return False
        _finish(flight, None)
        return True

    def forget_where(self, predicate: Callable[[Hashable, Flight[H]], bool]) -> list[Hashable]:
        """Drop every flight for which ``predicate(key, flight)`` holds; return their keys."""
        dropped = [key for key, flight in self._flights.items() if predicate(key, flight)]
        for key in dropped:
            self.forget(key)
        return dropped

    def forget_tagged(self, tag: str) -> list[Hashable]:
        """Drop every flight whose result would carry ``tag``; return their keys."""
        return self.forget_where(lambda _, flight: tag in flight.tags)

    def clear(self) -> None:
        """Drop every flight and election."""
        self.forget_where(lambda _, __: True)
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

    def _replace(self, key: Hashable, flight: Flight[H]) -> None:
        previous = self._flights.get(key)
        self._flights[key] = flight
        if previous is not None:
            _finish(previous, None)  # its waiters look again, and find the new flight

    def __contains__(self, key: object) -> bool:
        """Return whether ``key`` has a flight."""
        return key in self._flights

    def __len__(self) -> int:
        """Return the number of flights."""
        return len(self._flights)

    def __iter__(self) -> Iterator[Hashable]:
        """Iterate over the keys in flight."""
        return iter(self._flights)


def _finish(flight: Flight[Any], outcome: Any) -> None:
    flight.outcome = outcome
    flight.done.set()
