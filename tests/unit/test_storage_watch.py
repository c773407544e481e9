"""When a shard warns of a failed storage and probes it again: decided without a storage."""

from __future__ import annotations

from raycache.core.storage.pending import RETRY_S, PendingRemovals
from raycache.core.storage.watch import StorageWatch, Verdict
from tests.helpers.clock import Clock


def test_an_outage_is_warned_of_once_and_probed_at_most_every_interval() -> None:
    clock = Clock()
    watch = StorageWatch(probe_s=30.0, clock=clock)
    verdicts = []
    for second in range(0, 100, 5):
        clock.now = float(second)
        verdicts.append(watch.check(healthy=False))
    assert sum(v.warn for v in verdicts) == 1
    assert [i * 5 for i, v in enumerate(verdicts) if v.probe] == [35, 70]
    assert not any(v.usable for v in verdicts)


def test_a_recovered_storage_is_used_and_its_next_outage_warned_of_again() -> None:
    watch = StorageWatch(probe_s=30.0, clock=Clock())
    assert watch.check(healthy=False).warn
    assert watch.check(healthy=True) == Verdict(usable=True)
    assert watch.check(healthy=False).warn


def test_owed_removals_are_paid_in_full_and_spaced_when_they_fail_again() -> None:
    clock = Clock()
    pending = PendingRemovals(clock)
    pending.add(digest=b"a")
    pending.add(tag="eu")
    pending.add(clear=True, where=None)
    done: list[object] = []

    def refused(digest: bytes) -> None:
        done.append(digest)
        pending.add(digest=digest)  # the storage refuses again: owed again

    assert not pending.pay(refused, done.append, lambda where: done.append(where))
    assert done == [b"a", "eu", None]
    assert not pending.pay(refused, done.append, done.append)  # too soon: not asked
    assert len(done) == 3
    clock.now = RETRY_S
    assert pending.pay(done.append, done.append, done.append)
    assert done[3:] == [b"a"]
