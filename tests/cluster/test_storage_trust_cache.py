"""The storage as a trust boundary, through ``Cache``: names, signing, restarts, the disk.

A restart is a cache shut down and made again under the same name and storage, which
starts its shards with nothing in memory; or a whole driver with a Ray of its own.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import raycache
from raycache.core.keys import key_digest
from raycache.core.storage import StorageTier, parse_storage
from raycache.core.storage.trust import entrust
from tests.helpers.disk import du

KEY = "the victim's storage key, long enough"


def snapshot(tree: Path, *, outside: Path) -> dict[str, str]:
    """Hash every file of ``tree`` outside ``outside``, with its mode, symlinks unfollowed."""
    found = {}
    for path in sorted(tree.rglob("*")):
        if path.is_relative_to(outside) or path.is_dir():
            continue
        status = path.lstat()
        found[str(path)] = f"{status.st_mode:o} {hashlib.sha256(path.read_bytes()).hexdigest()}"
    return found


def restarted(cache: raycache.Cache, **settings: object) -> raycache.Cache:
    name = cache.name
    cache.shutdown()
    return raycache.Cache(name, shards=2, capacity="64MiB", **settings)  # type: ignore[arg-type]


def test_nothing_beside_or_above_the_storage_folder_changes(
    cache_name: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    storage = home / "project" / "cache"
    canaries = [home / ".bashrc", home / "project" / ".env", home / "project" / ".gitignore"]
    canaries += [storage / ".keep", storage / f"{cache_name}.rc", storage / "notes"]
    storage.mkdir(parents=True, mode=0o700)
    old = time.time() - 86_400
    for canary in canaries:
        canary.write_text(f"canary {canary.name}")
        os.utime(canary, (old, old))
    before = snapshot(home, outside=storage / cache_name)
    for name in ("..", ".", "../project", "a/b", "a\x00b"):
        with pytest.raises(ValueError, match="cache name"):
            raycache.Cache(name, storage=str(storage))
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB", storage=str(storage))
    for round_ in range(3):
        cache.put_many({key: np.full(5000, key) for key in range(20)})
        cache.put("tagged", 1, tags=("t",))
        cache.delete(3)
        cache.invalidate_tag("t")
        cache.flush()
        cache = restarted(cache, storage=str(storage))
        assert cache.get(5) is not None
        if round_ == 1:
            cache.clear()
    cache.shutdown()
    assert snapshot(home, outside=storage / cache_name) == before


def test_a_value_that_would_run_code_is_a_miss_when_copied_over_a_signed_file(
    cache_name: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    attacker_storage, victim_storage = tmp_path / "attacker", tmp_path / "victim"
    for attacker_key in (None, "the attacker's own key, also long"):
        # Written by a tier as a shard writes it: through a cache, Ray itself would
        # unpickle the value on its way to the attacker's own shard.
        located = entrust(parse_storage(attacker_storage), key=attacker_key, shared=False)
        assert located is not None
        StorageTier(located, "forged").write(key_digest("balance"), Exploit(str(marker)))
        victim = raycache.Cache(
            cache_name, shards=2, capacity="64MiB", storage=str(victim_storage), storage_key=KEY
        )
        victim.put("balance", 100)
        victim.flush()
        (forged,) = (attacker_storage / "forged").glob("*.rc")
        (target,) = (victim_storage / cache_name).glob("*.rc")
        target.write_bytes(forged.read_bytes())
        victim = restarted(victim, storage=str(victim_storage), storage_key=KEY)
        assert victim.get("balance") is None
        assert victim.get("balance", "absent") == "absent"
        assert victim.stats()["storage_rejected"] >= 1
        victim.shutdown()
        assert not marker.exists()


class Exploit:
    """A value whose unpickling writes a marker file: code run by whoever unpickles it."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.write_text, (Path(self.marker), "pwned"))


def test_signed_values_round_trip_across_a_restart(cache_name: str, storage: str) -> None:
    table = pa.table({"n": np.arange(200_000), "s": [f"s{i % 13}" for i in range(200_000)]})
    frame = pd.DataFrame({"f": np.arange(300_000.0), "c": pd.Categorical(["x", "y"] * 150_000)})
    small = {"rows": [1, 2, 3]}
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB", storage=storage, storage_key=KEY)
    cache.put_many({"table": table, "frame": frame, "dict": small})
    cache.flush()
    cache = restarted(cache, storage=storage, storage_key=KEY)
    try:
        assert cache.get("table").equals(table)
        pd.testing.assert_frame_equal(cache.get("frame"), frame)
        assert cache.get("dict") == small
        stats = cache.stats()
        assert stats["storage_hits"] == 3 and stats["storage_rejected"] == 0
    finally:
        cache.shutdown()


def test_many_small_writes_stay_within_the_budget_on_disk(cache_name: str, storage: str) -> None:
    cache = raycache.Cache(
        cache_name, shards=2, capacity="64MiB", storage=storage, storage_capacity="1MiB"
    )
    try:
        for start in range(0, 4000, 500):
            cache.put_many(
                {key: key.to_bytes(8, "little") * 4 for key in range(start, start + 500)}
            )
            cache.flush()
        on_disk = du(Path(storage) / cache_name)
        assert 0 < on_disk <= 1.1 * 1024**2, on_disk
        assert cache.stats()["storage_bytes"] <= 1024**2
    finally:
        cache.shutdown()


KILLED_DRIVER = """
import os, ray, raycache, numpy as np
ray.init(address="local", num_cpus=2, object_store_memory=300 * 1024**2,
         include_dashboard=False, logging_level="ERROR")
cache = raycache.Cache({name!r}, shards=2, capacity="256MiB", storage={storage!r},
                       storage_capacity="8MiB")
print("ready", flush=True)
n = 0
while True:  # killed mid-write: a value of 6 MB takes its writer a while
    cache.put(n % 50, np.random.default_rng(n).random(750_000))
    n += 1
"""


@pytest.mark.slow
def test_a_driver_and_its_ray_killed_mid_write_leave_nothing_over_budget(
    cache_name: str, storage: str
) -> None:
    code = textwrap.dedent(KILLED_DRIVER.format(name=cache_name, storage=storage))
    for _ in range(3):
        driver = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True
        )
        assert driver.stdout is not None and driver.stdout.readline().strip() == b"ready"
        time.sleep(3)  # writes under way
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    cache = raycache.Cache(
        cache_name, shards=2, capacity="64MiB", storage=storage, storage_capacity="8MiB"
    )
    try:
        cache.flush()  # after the start-up scan, which reclaims temporary files
        on_disk = du(Path(storage) / cache_name)
        assert on_disk <= 1.1 * 8 * 1024**2, on_disk
        assert list((Path(storage) / cache_name).glob(".*.tmp")) == []
    finally:
        cache.shutdown()
