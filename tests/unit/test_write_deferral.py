"""Storage writes wait for a spare core, up to a bound, unless a caller waits on them.

A shard's ``Durable`` is built here without Ray, as a shard builds it; the machine's
spare cores are what the test says they are.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from raycache.actors import durable
from raycache.core.config import CacheConfig
from raycache.core.idle import WriteGate
from raycache.core.keys import key_digest
from raycache.core.storage import parse_storage


class Cores:
    """Spare cores, as a test sets them; counts how often the writer looked."""

    def __init__(self) -> None:
        self.spare = 0.0
        self.looks = 0

    def __call__(self, interval: float) -> float:
        self.looks += 1
        time.sleep(min(interval, 0.01))
        return self.spare


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> Cores:
    busy = Cores()
    monkeypatch.setattr(durable, "spare_cores_now", busy)
    return busy


def tier_of(tmp_path: Path, max_wait_s: float, monkeypatch: pytest.MonkeyPatch) -> durable.Durable:
    monkeypatch.setenv(durable.DEFER_ENV, str(max_wait_s))
    config = CacheConfig(shards=1, capacity=2**20, policy="lru", ttl=None,
                         storage=parse_storage(tmp_path))  # fmt: skip
    return durable.Durable("deferred", config, owns=lambda _: True, shards=1)


def files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "deferred").glob("*.rc"))


def wait_for(condition: object, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_a_write_waits_while_the_machine_is_busy_and_goes_when_a_core_is_spare(
    tmp_path: Path, cores: Cores, monkeypatch: pytest.MonkeyPatch
) -> None:
    tier = tier_of(tmp_path, 3600, monkeypatch)
    tier.write(key_digest("k"), lambda: [1, 2], size=10, ttl=None, tags=(), cost=0.0)
    assert wait_for(lambda: cores.looks >= 3)  # looking, and holding the write back
    assert files(tmp_path) == []
    cores.spare = 1.0
    assert wait_for(lambda: len(files(tmp_path)) == 1)


def test_a_flush_writes_at_once_however_busy_the_machine(
    tmp_path: Path, cores: Cores, monkeypatch: pytest.MonkeyPatch
) -> None:
    tier = tier_of(tmp_path, 3600, monkeypatch)
    for key in range(5):
        tier.write(key_digest(key), lambda: "v", size=1, ttl=None, tags=(), cost=0.0)
    flushing = threading.Thread(target=tier.flush)
    flushing.start()
    flushing.join(timeout=30)
    assert not flushing.is_alive() and len(files(tmp_path)) == 5


def test_a_write_goes_once_it_has_waited_the_bound(
    tmp_path: Path, cores: Cores, monkeypatch: pytest.MonkeyPatch
) -> None:
    tier = tier_of(tmp_path, 0.3, monkeypatch)
    tier.write(key_digest("k"), lambda: 1, size=1, ttl=None, tags=(), cost=0.0)
    assert wait_for(lambda: len(files(tmp_path)) == 1)


def test_without_a_bound_writes_never_look_at_the_cpus(
    tmp_path: Path, cores: Cores, monkeypatch: pytest.MonkeyPatch
) -> None:
    tier = tier_of(tmp_path, 0, monkeypatch)
    tier.write(key_digest("k"), lambda: 1, size=1, ttl=None, tags=(), cost=0.0)
    assert wait_for(lambda: len(files(tmp_path)) == 1) and cores.looks == 0


def test_the_gate_decides_without_a_clock() -> None:
    gate = WriteGate(max_wait_s=10.0, spare_needed=0.5)
    assert not gate.may_write(0.49, 9.9, False)
    assert gate.may_write(0.5, 0.0, False)
    assert gate.may_write(0.0, 10.0, False)
    assert gate.may_write(0.0, 0.0, True)
