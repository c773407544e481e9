"""The shard's near-cache part on threads: a poll waits for news, and a write wakes it."""

from __future__ import annotations

import threading
import time

from raycache.actors.subscribers import POLL_S, Subscribers
from raycache.core.entry import Entry
from raycache.core.protocol import Notice
from raycache.core.stats import ShardStats

KEY = b"k" * 16


def _entry(expires_at: float | None = None) -> Entry:
    return Entry(
        KEY, "v", size=7, cost=1.0, created_at=0.0, expires_at=expires_at, tags=frozenset()
    )


def test_a_read_is_stamped_with_time_left_and_size() -> None:
    subscribers = Subscribers()
    stamp = subscribers.stamp(b"me", [KEY, b"x" * 16], [_entry(time.monotonic() + 60), None])
    assert stamp.seq == 0 and stamp.sizes == [7, 0]
    left, absent = stamp.ttls
    assert left is not None and 59 < left <= 60 and absent == 0.0


def test_a_write_wakes_the_waiting_poll_at_once() -> None:
    subscribers = Subscribers()
    subscribers.poll(b"me", 0, 0, wait=False)  # joins
    subscribers.stamp(b"me", [KEY], [_entry()])
    answers: list[tuple[float, Notice]] = []

    def poll() -> None:
        notice = subscribers.poll(b"me", 0, 0, wait=True)
        answers.append((time.monotonic(), notice))

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.05)  # let it wait; if it has not yet, the write is queued for it anyway
    written = time.monotonic()
    subscribers.invalidate([KEY])
    poller.join(timeout=POLL_S * 5)
    ((answered, notice),) = answers
    assert notice.digests == [KEY] and notice.seq == 1
    assert answered - written < POLL_S  # woken, not timed out


def test_an_idle_poll_answers_empty_after_its_wait() -> None:
    subscribers = Subscribers()
    subscribers.poll(b"me", 0, 0, wait=False)
    notice = subscribers.poll(b"me", 0, 0, wait=True)
    assert notice.digests == [] and not notice.flush


def test_untracked_writes_wake_nobody_and_a_flush_reaches_everyone() -> None:
    subscribers = Subscribers()
    for me in (b"a", b"b"):
        subscribers.poll(me, 0, 0, wait=False)
    subscribers.invalidate([KEY])  # nobody holds it
    subscribers.flush()
    assert all(subscribers.poll(me, 2, 10, wait=True).flush for me in (b"a", b"b"))
    row = subscribers.add_stats(ShardStats(shard="shard-0"))
    assert (row.near_hits, row.near_invalidations, row.near_bytes) == (4, 2, 20)
