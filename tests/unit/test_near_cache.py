"""The coherent near cache's pure core: the shard's tracking and the handle's copies.

The state machine plays one shard (a dict of versions and its :class:`Tracking`) and
one handle's :class:`NearCache`, with every message in flight (read replies, notices)
delivered in any order hypothesis picks, and the handle's own writes interleaved; a
write queues an invalidation or pushes its value. Two properties hold throughout: a
read served from the copies never returns a value older than one returned before it
(replies of reads in flight together may land in either order, as two concurrent
reads may), and once every message has landed, every copy is the shard's current
value.
"""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from raycache.core.near_cache import REFERENCE_SIZE, Found, NearCache, Read
from raycache.core.protocol import Notice, Pushed, Stamp
from raycache.core.tracking import MAX_QUEUED, Tracking
from tests.helpers.clock import Clock

KEYS = [bytes([i]) * 16 for i in range(3)]
ME = b"reader"
MEMBER = "shard-0"


class NearCoherence(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.versions = dict.fromkeys(KEYS, 0)
        self.tracking = Tracking(max_keys=3, clock=self.clock)
        self.near = NearCache(capacity=10_000, clock=self.clock)
        self.replies: list[tuple[Read, Stamp, bytes, int, int]] = []
        self.notices: list[Notice] = []
        self.returned = dict.fromkeys(KEYS, 0)
        self.poll()
        self.deliver_notices()

    def poll(self) -> None:
        self.notices.append(self.tracking.collect(ME, hits=0, held=0))

    @rule(key=st.sampled_from(KEYS))
    def send_read(self, key: bytes) -> None:
        read = Read(MEMBER, self.clock.now, self.near.ticket)
        seq = self.tracking.track(ME, [key])
        stamp = Stamp(self.tracking.incarnation, seq, [None], [8])
        # The last column: what was returned before this read began.
        self.replies.append((read, stamp, key, self.versions[key], self.returned[key]))

    @precondition(lambda self: self.replies)
    @rule(pick=st.integers(min_value=0))
    def land_reply(self, pick: int) -> None:
        read, stamp, key, version, before = self.replies.pop(pick % len(self.replies))
        assert version >= before, "a reply is never older than what was returned before"
        self.returned[key] = max(self.returned[key], version)
        self.near.offer(read, stamp, [Found(key, version, 8, None)])

    @rule(key=st.sampled_from(KEYS), mine=st.booleans(), pushed=st.booleans())
    def write(self, key: bytes, mine: bool, pushed: bool) -> None:
        if mine:
            self.near.fence(key)  # this handle writes it: before the request goes ...
        self.versions[key] += 1
        if pushed:  # a small value: holders get it
            self.tracking.push([(key, self.versions[key], 8)])
        else:
            self.tracking.invalidate([key])
        if mine:
            self.near.fence(key)  # ... and once it is done, so that it reads its write
            self.returned[key] = self.versions[key]

    @rule()
    def clear(self) -> None:
        for key in KEYS:
            self.versions[key] += 1
        self.tracking.flush()

    @rule()
    def poll_now(self) -> None:
        self.poll()

    @precondition(lambda self: self.notices)
    @rule(pick=st.integers(min_value=0))
    def land_notice(self, pick: int) -> None:
        # Polls of one shard are one at a time, so notices land in order: the first.
        del pick
        self.near.apply(MEMBER, self.notices.pop(0))

    @rule(key=st.sampled_from(KEYS))
    def read_near(self, key: bytes) -> None:
        value = self.near.get(key)
        if value is not None:
            assert value >= self.returned[key], "a copy never goes back in time"
            self.returned[key] = value

    def deliver_notices(self) -> None:
        while self.notices:
            self.near.apply(MEMBER, self.notices.pop(0))

    @invariant()
    def quiescent_copies_are_current(self) -> None:
        if self.replies or self.notices:
            return
        self.poll()
        self.deliver_notices()
        for key in KEYS:
            value = self.near.get(key)
            assert value is None or value == self.versions[key]


TestNearCoherence = NearCoherence.TestCase
TestNearCoherence.settings = settings(max_examples=500, stateful_step_count=30, deadline=None)


def _live(near: NearCache, incarnation: bytes = b"one") -> None:
    near.apply(MEMBER, Notice(incarnation, 0, [], False))


def _offer(near: NearCache, key: bytes, value: Any, *, ttl: float | None = None) -> int:
    read = Read(MEMBER, 0.0, near.ticket)
    return near.offer(read, Stamp(b"one", 0, [ttl], [10]), [Found(key, value, 10, ttl)])


def test_nothing_is_kept_from_a_shard_not_yet_polled() -> None:
    near = NearCache(clock=lambda: 0.0)
    assert _offer(near, KEYS[0], "v") == 0
    _live(near)
    assert _offer(near, KEYS[0], "v") == 1


def test_a_copy_ends_with_its_entrys_ttl_counted_from_the_send() -> None:
    clock = Clock()
    near = NearCache(clock=clock)
    _live(near)
    _offer(near, KEYS[0], "v", ttl=2.0)
    clock.now = 1.9
    assert near.get(KEYS[0]) == "v"
    clock.now = 2.0
    assert near.get(KEYS[0]) is None


def test_near_cache_ttl_bounds_a_copy_without_one() -> None:
    clock = Clock()
    near = NearCache(ttl=0.5, clock=clock)
    _live(near)
    _offer(near, KEYS[0], "v")
    clock.now = 0.5
    assert near.get(KEYS[0]) is None


def test_bytes_stay_within_capacity_least_recently_read_first() -> None:
    near = NearCache(capacity=25, clock=lambda: 0.0)
    _live(near)
    _offer(near, KEYS[0], "a")
    _offer(near, KEYS[1], "b")
    near.get(KEYS[0])
    _offer(near, KEYS[2], "c")
    assert near.bytes == 20 and near.get(KEYS[1]) is None and near.get(KEYS[0]) == "a"
    big = Found(KEYS[1], "x", 26, None)
    assert near.offer(Read(MEMBER, 0.0, near.ticket), Stamp(b"one", 0, [None], [26]), [big]) == 0


def test_a_key_owed_twice_in_one_notice_is_dropped_once() -> None:
    # Read, invalidated, read again and invalidated again before the handle polls.
    near = NearCache(clock=lambda: 0.0)
    _live(near)
    _offer(near, KEYS[0], "v")
    near.apply(MEMBER, Notice(b"one", 2, [KEYS[0], KEYS[0]], False))
    assert near.get(KEYS[0]) is None and near.invalidations == 1 and near.bytes == 0


def test_a_pushed_value_replaces_only_an_older_copy_held() -> None:
    near = NearCache(capacity=100, clock=lambda: 0.0)
    _live(near)
    _offer(near, KEYS[0], "old")  # read at stamp 0
    pushed = [Pushed(KEYS[0], "new", 30, 1), Pushed(KEYS[1], "not held", 10, 2)]
    near.apply(MEMBER, Notice(b"one", 2, [], False, pushed))
    assert near.get(KEYS[0]) == "new" and near.get(KEYS[1]) is None and near.bytes == 30
    stale = Read(MEMBER, 0.0, near.ticket)
    assert near.offer(stale, Stamp(b"one", 0, [None], [10]), [Found(KEYS[0], "old", 10, None)]) == 0
    near.apply(MEMBER, Notice(b"one", 3, [], False, [Pushed(KEYS[0], "older", 10, 1)]))
    assert near.get(KEYS[0]) == "new"


def test_tracking_pushes_small_writes_and_keeps_tracking_the_key() -> None:
    tracking = Tracking(clock=lambda: 0.0)
    tracking.track(ME, [KEYS[0]])
    assert tracking.push([(KEYS[0], "v1", 2), (KEYS[1], "untracked", 9)]) == [ME]
    assert tracking.push([(KEYS[0], "v2", 2)]) == [ME]
    notice = tracking.collect(ME, hits=0, held=0)
    assert (
        notice.seq == 2 and notice.digests == [] and notice.pushed == [Pushed(KEYS[0], "v2", 2, 2)]
    )
    tracking.push([(KEYS[0], "v3", 2)])
    tracking.invalidate([KEYS[0]])  # a push, then a drop: the drop wins
    notice = tracking.collect(ME, hits=0, held=0)
    assert notice.digests == [KEYS[0]] and notice.pushed == [] and not tracking.tracks(KEYS[0])


def test_a_restarted_shard_drops_its_copies() -> None:
    near = NearCache(clock=lambda: 0.0)
    _live(near)
    _offer(near, KEYS[0], "old")
    stamp = Stamp(b"two", 0, [None], [10])
    assert near.offer(Read(MEMBER, 0.0, near.ticket), stamp, [Found(KEYS[1], "x", 10, None)]) == 0
    assert near.get(KEYS[0]) is None and near.invalidations == 1
    near.apply(MEMBER, Notice(b"two", 0, [], True))
    assert near.offer(Read(MEMBER, 0.0, near.ticket), stamp, [Found(KEYS[1], "x", 10, None)])


def test_a_lost_shard_drops_its_copies_until_polled_again() -> None:
    near = NearCache(clock=lambda: 0.0)
    _live(near)
    _offer(near, KEYS[0], "v")
    near.lose(MEMBER)
    assert near.get(KEYS[0]) is None and _offer(near, KEYS[0], "v") == 0
    _live(near)
    assert _offer(near, KEYS[0], "v") == 1


def test_hits_and_bytes_are_reported_per_shard() -> None:
    near = NearCache(clock=lambda: 0.0)
    _live(near)
    _offer(near, KEYS[0], "v")
    near.get(KEYS[0])
    near.get(KEYS[0])
    assert near.unreported_hits == 2
    assert near.report(MEMBER) == (2, 10) and near.report(MEMBER) == (0, 10)
    assert near.report("shard-9") == (0, 0)
    assert REFERENCE_SIZE < 100


def test_tracking_bounds_its_keys_by_invalidating_the_oldest() -> None:
    tracking = Tracking(max_keys=2, clock=lambda: 0.0)
    tracking.track(ME, KEYS[:3])
    notice = tracking.collect(ME, hits=0, held=0)
    assert notice.digests == [KEYS[0]] and not tracking.tracks(KEYS[0])


def test_tracking_turns_a_long_queue_into_a_flush() -> None:
    tracking = Tracking(clock=lambda: 0.0)
    keys = [i.to_bytes(16, "big") for i in range(MAX_QUEUED + 1)]
    tracking.track(ME, keys)
    tracking.invalidate(keys)
    notice = tracking.collect(ME, hits=0, held=0)
    assert notice.flush and notice.digests == [] and notice.seq == MAX_QUEUED + 2


def test_tracking_refuses_subscribers_past_its_bound_and_forgets_idle_ones() -> None:
    clock = Clock()
    tracking = Tracking(max_subscribers=1, clock=clock)
    assert tracking.track(b"first", [KEYS[0]]) == 0
    assert tracking.track(b"second", [KEYS[0]]) is None
    assert tracking.collect(b"second", hits=0, held=0).flush
    clock.now = 61.0
    assert tracking.track(b"second", [KEYS[0]]) == 0
    assert tracking.invalidate([KEYS[0]]) == [b"second"] or tracking.invalidations == 1


def test_an_unknown_subscriber_is_told_to_flush() -> None:
    tracking = Tracking(clock=lambda: 0.0)
    assert tracking.owes(ME)
    notice = tracking.collect(ME, hits=5, held=0)
    assert notice.flush and notice.incarnation == tracking.incarnation
    assert tracking.near_hits == 5 and not tracking.owes(ME)
