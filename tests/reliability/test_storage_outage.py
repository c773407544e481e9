"""Removals made while the storage refuses them are owed, hidden from reads, and done later.

The outage is real: the cache's folder is swapped for a plain file, so that every write,
read, delete and listing under it fails as a broken mount does, then swapped back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import raycache
from raycache.client.steps import run
from raycache.core.keys import key_digest
from raycache.core.storage import StorageTier, parse_storage
from raycache.core.storage.pending import RETRY_S
from tests.unit.test_storage_tier import Clock


@contextmanager
def unreachable(folder: Path) -> Iterator[None]:
    """Make ``folder`` unusable for the duration: a file stands where it was."""
    aside = folder.with_name(folder.name + ".aside")
    folder.rename(aside)
    folder.write_bytes(b"not a folder")
    try:
        yield
    finally:
        folder.unlink()
        aside.rename(folder)


def entry_files(root: Path) -> set[str]:
    return {path.stem for path in root.rglob("*.rc")}


def test_a_tier_owes_refused_removals_and_does_them_once_it_can(tmp_path: Path) -> None:
    clock = Clock()
    storage = parse_storage(tmp_path)
    assert storage is not None
    tier = StorageTier(storage, "owed", clock=clock)
    a, b, c = (key_digest(key) for key in "abc")
    assert tier.write(a, "a", tags=("eu",)) and tier.write(b, "b") and tier.write(c, "c")
    with unreachable(tmp_path / "owed"):
        assert tier.delete(b) is False
        assert tier.invalidate_tag("eu") == 0
        assert tier.read(c) is None  # a read error, counted
        assert tier.write(c, "c2") is False
    # Back, but the retry is not due yet: what was removed reads as a miss all the same.
    assert tier.read(a) is None and tier.read(b) is None
    assert tier.read(c) is not None and tier.read(c).value == "c"  # type: ignore[union-attr]
    assert entry_files(tmp_path) == {a.hex(), b.hex(), c.hex()}
    clock.now += RETRY_S
    assert tier.pay_owed()
    assert entry_files(tmp_path) == {c.hex()}
    again = StorageTier(storage, "owed", clock=clock)  # a restart finds them gone
    assert again.read(a) is None and again.read(b) is None


def test_a_clear_the_storage_refuses_is_owed_too(tmp_path: Path) -> None:
    clock = Clock()
    storage = parse_storage(tmp_path)
    assert storage is not None
    tier = StorageTier(storage, "owed", clock=clock)
    keys = [key_digest(n) for n in range(4)]
    for key in keys:
        tier.write(key, "v")
    with unreachable(tmp_path / "owed"):
        assert tier.clear() == 0
    assert all(tier.read(key) is None for key in keys)
    assert tier.pay_owed(now=True) and entry_files(tmp_path) == set()


def test_a_cache_never_reads_back_what_it_removed_during_an_outage(
    cache_name: str, storage: str
) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB", storage=storage)
    cache.put("tagged", "old", tags=["eu"])
    cache.put("deleted", "old")
    cache.put("kept", "kept")
    run(cache.shard_client.flush())
    with unreachable(Path(storage) / cache_name):
        assert cache.delete("deleted")
        assert cache.invalidate_tag("eu") == 1
    cache.shutdown()  # its flush does the removals owed, the storage being back
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB", storage=storage)
    try:
        assert cache.get("tagged") is None and cache.get("deleted") is None
        assert cache.get("kept") == "kept"
        assert len(entry_files(Path(storage))) == 1
    finally:
        cache.shutdown()


def test_a_newer_value_that_is_not_written_takes_the_older_file_with_it(
    cache_name: str, storage: str
) -> None:
    settings = {"shards": 1, "capacity": "64MiB", "storage": storage, "storage_capacity": "1MiB"}
    cache = raycache.Cache(cache_name, **settings)  # type: ignore[arg-type]
    cache.put("k", "old")
    run(cache.shard_client.flush())
    cache.put("k", np.zeros(200_000))  # 1.6 MB: beyond the storage budget, so not written
    cache.shutdown()
    cache = raycache.Cache(cache_name, **settings)  # type: ignore[arg-type]
    try:
        assert cache.get("k") is None  # never the older value
        assert entry_files(Path(storage)) == set()
    finally:
        cache.shutdown()
