"""The shard's decisions, built from its parts without Ray: leases, placement, stats.

The shard actor only wires these parts to Ray (see ``raycache/actors/shard.py``); here
each is built on a plain :class:`~raycache.core.store.Store` and
:class:`~raycache.core.singleflight.SingleFlight` with an injected clock.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raycache.actors.flights import Computations
from raycache.actors.leases import Leases
from raycache.actors.placement import Placement
from raycache.actors.resizing import Migration, Move
from raycache.core import protocol
from raycache.core.holdings import Holdings
from raycache.core.keys import key_digest, key_point
from raycache.core.protocol import Code, Reply
from raycache.core.ring import Ring
from raycache.core.singleflight import SingleFlight
from raycache.core.stats import COUNTERS, GAUGES, ShardCounters, ShardStats, StoreStats, totals
from raycache.core.storage.counters import StorageStats
from raycache.core.store import Store
from tests.helpers.clock import Clock


class Parts:
    """A shard's store, flights and counters, and the parts built on them."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.clock = Clock()
        self.store = Store(capacity)
        self.flights: SingleFlight[Any] = SingleFlight(clock=self.clock)
        self.counts = ShardCounters()
        self.released = 0
        # A task's join needs the vault; a lease's never does.
        computations = Computations(self.flights, None, self.counts, self.put)  # type: ignore[arg-type]
        self.leases = Leases(self.store, self.flights, self.counts, self.put, computations.join)

    def put(
        self, digest: bytes, value: Any, size: int, ttl: float | None, tags: tuple[str, ...],
        cost: float = 1.0,
    ) -> list[Any]:  # fmt: skip
        if size > self.store.capacity:
            return protocol.too_large(size, self.store.capacity)
        self.store.put(digest, value, size, ttl=ttl, tags=tags, cost=cost)
        return protocol.ok()

    def release(self) -> None:
        self.released += 1


def code(wire: list[Any]) -> Code:
    return Reply.decode(wire).code


# -- leases ------------------------------------------------------------------------------


def test_one_caller_leases_a_missing_key_and_the_others_wait_for_it() -> None:
    parts = Parts()
    first = parts.leases.grant(b"k", None, (), lease_s=10.0)
    second = parts.leases.grant(b"k", None, (), lease_s=10.0)
    assert code(first) is Code.LEASED and code(second) is Code.WAIT
    assert second[1] == first[1]  # the same lease's token
    assert (parts.counts.leases, parts.counts.merged) == (1, 1)


def test_a_fulfilled_lease_stores_the_value_and_hands_it_to_a_waiter() -> None:
    parts = Parts()
    token = parts.leases.grant(b"k", 60.0, ("t",), lease_s=10.0)[1]
    waited: list[list[Any]] = []
    waiter = threading.Thread(target=lambda: waited.append(parts.leases.wait(b"k", token, 30.0)))
    waiter.start()
    assert code(parts.leases.fulfil(b"k", token, "value", cost=2.0)) is Code.OK
    waiter.join(30.0)
    assert Reply.decode(waited[0]) == Reply(Code.HIT, "value")
    entry = parts.store.peek(b"k")
    assert entry is not None and entry.tags == frozenset({"t"}) and entry.cost == 2.0
    assert code(parts.leases.grant(b"k", None, (), lease_s=10.0)) is Code.HIT


def test_a_failed_lease_passes_its_error_on_and_stores_nothing() -> None:
    parts = Parts()
    token = parts.leases.grant(b"k", None, (), lease_s=10.0)[1]
    parts.leases.fail(b"k", token, b"pickled error")
    assert parts.store.peek(b"k") is None
    assert code(parts.leases.wait(b"k", token, 1.0)) is Code.RETRY  # the flight is over


def test_an_expired_lease_is_granted_to_the_next_caller_and_the_old_one_stores_nothing() -> None:
    parts = Parts()
    old = parts.leases.grant(b"k", None, (), lease_s=10.0)[1]
    parts.clock.now = 11.0  # its holder stopped renewing
    assert code(parts.leases.wait(b"k", old, 30.0)) is Code.RETRY  # at once: it expired
    new = parts.leases.grant(b"k", None, (), lease_s=10.0)
    assert code(new) is Code.LEASED and new[1] != old
    assert code(parts.leases.fulfil(b"k", old, "late", cost=1.0)) is Code.OK
    assert parts.store.peek(b"k") is None  # superseded: the late value does not land


def test_a_renewed_lease_does_not_expire() -> None:
    parts = Parts()
    token = parts.leases.grant(b"k", None, (), lease_s=10.0)[1]
    parts.clock.now = 8.0
    assert parts.leases.renew(b"k", token, 10.0)
    parts.clock.now = 15.0
    assert code(parts.leases.grant(b"k", None, (), lease_s=10.0)) is Code.WAIT
    assert not parts.leases.renew(b"k", token + 1, 10.0)


def test_a_value_larger_than_the_shard_still_reaches_the_waiters() -> None:
    parts = Parts(capacity=10)
    token = parts.leases.grant(b"k", None, (), lease_s=10.0)[1]
    assert code(parts.leases.fulfil(b"k", token, "x" * 100, cost=1.0)) is Code.TOO_LARGE
    assert parts.flights.get(b"k") is None  # ended, with the value for whoever waited


# -- placement ---------------------------------------------------------------------------


def _placed(member: str, ring: Ring) -> tuple[Parts, Placement]:
    parts = Parts()
    migration = Migration(parts.store, member, lambda ref: ref, ShardCounters())
    placement = Placement(
        member, ring, (parts.store, parts.flights, migration), parts.counts, parts.release
    )
    return parts, placement


def _owned_by(ring: Ring, member: str, count: int) -> list[bytes]:
    digests = (key_digest(i) for i in range(10_000))
    return [d for d in digests if ring.owner_at(key_point(d)) == member][:count]


def test_a_newer_ring_drops_the_keys_the_shard_no_longer_owns() -> None:
    ring = Ring(("shard-0",), epoch=1)
    parts, placement = _placed("shard-0", ring)
    grown = ring.with_members(["shard-0", "shard-1"])
    staying, leaving = _owned_by(grown, "shard-0", 5), _owned_by(grown, "shard-1", 5)
    for digest in staying + leaving:
        parts.put(digest, "v", 10, None, ())
    assert placement.set_ring(grown, capacity=5_000, move=None) == len(leaving)
    assert sorted(parts.store.keys()) == sorted(staying)  # type: ignore[type-var]
    assert parts.store.capacity == 5_000 and parts.released == 1


def test_during_a_move_nothing_is_dropped_and_the_budget_does_not_shrink() -> None:
    ring = Ring(("shard-0",), epoch=1)
    parts, placement = _placed("shard-0", ring)
    grown = ring.with_members(["shard-0", "shard-1"])
    leaving = _owned_by(grown, "shard-1", 3)
    for digest in leaving:
        parts.put(digest, "v", 10, None, ())
    assert placement.set_ring(grown, capacity=5_000, move=Move(ring, {})) == 0
    assert len(parts.store.keys()) == 3 and parts.store.capacity == 10_000
    given = placement.give(leaving)
    assert [parcel.digest for parcel in given] == leaving and not parts.store.keys()


def test_an_older_ring_is_ignored_and_an_older_caller_is_told_stale() -> None:
    ring = Ring(("shard-0", "shard-1"), epoch=5)
    _, placement = _placed("shard-0", ring)
    assert placement.set_ring(Ring(("shard-0",), epoch=4), capacity=1, move=None) == 0
    assert placement.ring is ring
    assert Reply.decode(placement.stale()) == Reply(Code.STALE, 5)


# -- stats -------------------------------------------------------------------------------


def test_a_stats_row_takes_each_part_s_counters_and_every_number_is_summed() -> None:
    store = StoreStats(hits=3, misses=1, evictions=2, expirations=0, entries=4, bytes=40,
                       capacity=100)  # fmt: skip
    counts = ShardCounters(leases=2, stale=1)
    storage = StorageStats(5, 500, 6, 7, 1, 2, 3, 0, 0, 0, 4, healthy=False)
    row = ShardStats.of(("shard-0", "node", 9), store, counts, 1, storage, dropped=8)
    assert (row.hits, row.leases, row.stale, row.pending) == (3, 2, 1, 1)
    assert (row.storage_entries, row.storage_bytes, row.storage_hits) == (5, 500, 6)
    assert (row.storage_write_errors, row.storage_rejected, row.storage_dropped) == (1, 4, 8)
    assert not row.storage_healthy
    assert totals([row, row])["bytes"] == 80
    numbers = {name for name, value in row.row().items() if type(value) is int}
    assert numbers - {"epoch"} == set(COUNTERS) | set(GAUGES)


def test_without_storage_its_fields_are_zero_and_healthy() -> None:
    store = StoreStats(0, 0, 0, 0, 0, 0, 10)
    row = ShardStats.of(("shard-0", "node", 1), store, ShardCounters(), 0, None, dropped=0)
    assert row.storage_hits == 0 and row.storage_healthy


@pytest.mark.parametrize("flag", list(protocol.Flag))
def test_a_flag_is_added_without_touching_the_reply(flag: protocol.Flag) -> None:
    wire = protocol.hit("v")
    flagged = protocol.flagged(wire, flag)
    assert wire == protocol.hit("v") and protocol.code_of(flagged) is Code.HIT
    assert Reply.decode(flagged).flags & flag


# -- holdings ----------------------------------------------------------------------------


@given(
    st.lists(
        st.tuples(st.sampled_from([b"a", b"b"]), st.sampled_from(["1", "2", "3"]), st.booleans()),
        max_size=30,
    )
)
def test_an_object_is_released_once_and_only_when_its_key_no_longer_uses_it(
    steps: list[tuple[bytes, str, bool]],
) -> None:
    holdings = Holdings(expirations=0)
    held: dict[bytes, set[str]] = {}
    for digest, object_id, hold in steps:
        if hold:
            holdings.hold(digest, object_id)
            held.setdefault(digest, set()).add(object_id)
        else:  # the key now uses only ``object_id``
            released = holdings.release(digest, in_use={object_id})
            assert set(released) == held.get(digest, set()) - {object_id}
            held[digest] = held.get(digest, set()) & {object_id}
        assert all((d in holdings) == bool(ids) for d, ids in held.items())
