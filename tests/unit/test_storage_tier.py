"""The storage tier on a local directory: reads, corruption, TTL, tags, budget, atomicity."""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from raycache.core.keys import key_digest
from raycache.core.storage import ENV_VAR, Storage, StorageTier, parse_storage, storage_from_env
from tests.helpers.clock import Clock
from tests.helpers.disk import allocated, du

NAME = "tier"


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    parsed = parse_storage(tmp_path / "storage")
    assert parsed is not None
    return parsed


@pytest.fixture
def clock() -> Clock:
    return Clock(1_700_000_000.0)  # wall-clock seconds


@pytest.fixture
def tier(storage: Storage, clock: Clock) -> StorageTier:
    return StorageTier(storage, NAME, clock=clock)


def files(storage: Storage) -> list[Path]:
    assert storage.local_root is not None
    return sorted(Path(storage.local_root).rglob("*.rc"))


def digest(key: object) -> bytes:
    return key_digest(key)


def test_a_written_value_reads_back_with_its_header(
    tier: StorageTier, storage: Storage, clock: Clock
) -> None:
    assert tier.write(digest("k"), [1, 2], expires_at=clock.now + 60, tags=["t"], size=7, cost=2.5)
    stored = tier.read(digest("k"))
    assert stored is not None
    assert (stored.value, stored.expires_at, stored.tags, stored.size, stored.cost) == (
        [1, 2], clock.now + 60, ("t",), 7, 2.5,
    )  # fmt: skip
    stats = tier.stats()
    assert (stats.storage_hits, stats.storage_misses, stats.storage_entries) == (1, 0, 1)
    assert stats.storage_bytes == allocated(files(storage))


def test_files_are_named_by_digest_under_the_cache_name(
    tier: StorageTier, storage: Storage
) -> None:
    tier.write(digest("k"), 1)
    text = digest("k").hex()
    assert [path.relative_to(storage.local_root or "") for path in files(storage)] == [
        Path(NAME, f"{text}.rc")
    ]


def test_a_missing_key_is_a_counted_miss(tier: StorageTier) -> None:
    assert tier.read(digest("absent")) is None
    assert tier.stats().storage_misses == 1


def test_a_new_tier_on_the_same_storage_reads_old_entries_at_once(
    tier: StorageTier, storage: Storage
) -> None:
    tier.write(digest("k"), "old run")
    again = StorageTier(pickle.loads(pickle.dumps(storage)), NAME)
    stored = again.read(digest("k"))
    assert stored is not None and stored.value == "old run"


def test_delete_removes_the_file(tier: StorageTier, storage: Storage) -> None:
    tier.write(digest("k"), 1)
    assert tier.delete(digest("k")) is True
    assert tier.delete(digest("k")) is False
    assert files(storage) == [] and tier.read(digest("k")) is None


def test_digests_are_checked(tier: StorageTier) -> None:
    with pytest.raises(TypeError, match="digest must be bytes"):
        tier.read("k")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="16 bytes"):
        tier.write(b"short", 1)


# ---------------------------------------------------------------------- corruption

CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "garbage": lambda data: os.urandom(len(data)),
    "truncated": lambda data: data[: len(data) // 2],
    "truncated_header": lambda data: data[:20],
    "empty": lambda data: b"",
    "trailing_bytes": lambda data: data + b"x",
    "flipped_payload_byte": lambda data: data[:-5] + bytes([data[-5] ^ 1]) + data[-4:],
    "zeroed_tail": lambda data: data[: len(data) - 4096] + bytes(4096),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_damaged_file_is_a_miss_is_removed_and_counted(
    tier: StorageTier, storage: Storage, corruption: str
) -> None:
    tier.write(digest("k"), np.arange(10_000))
    (path,) = files(storage)
    path.write_bytes(CORRUPTIONS[corruption](path.read_bytes()))
    assert tier.read(digest("k")) is None
    assert not path.exists()
    assert tier.stats().corrupt == 1 and tier.stats().storage_entries == 0


def test_a_file_of_another_key_is_a_miss(tier: StorageTier, storage: Storage) -> None:
    tier.write(digest("a"), "a")
    tier.write(digest("b"), "b")
    path_a, path_b = (next(p for p in files(storage) if p.stem == digest(k).hex()) for k in "ab")
    shutil.copyfile(path_a, path_b)
    assert tier.read(digest("b")) is None
    assert tier.stats().corrupt == 1


def test_every_file_garbled_gives_only_misses(tier: StorageTier, storage: Storage) -> None:
    for key in range(20):
        tier.write(digest(key), np.full(100, key))
    for path in files(storage):
        path.write_bytes(os.urandom(path.stat().st_size))
    fresh = StorageTier(storage, NAME)
    assert [fresh.read(digest(key)) for key in range(20)] == [None] * 20
    assert fresh.stats().corrupt == 20 and files(storage) == []


def test_a_scan_removes_files_with_damaged_headers(tier: StorageTier, storage: Storage) -> None:
    tier.write(digest("k"), 1)
    (path,) = files(storage)
    path.write_bytes(b"not ours at all")
    tier.scan()
    assert files(storage) == [] and tier.stats().corrupt == 1


def test_a_value_that_cannot_be_unpickled_is_a_miss(tier: StorageTier, storage: Storage) -> None:
    tier.write(digest("k"), Unpicklable())
    assert tier.read(digest("k")) is None
    assert tier.stats().corrupt == 1


class Unpicklable:
    def __reduce__(self) -> object:
        return (_refuse, ())


def _refuse() -> None:
    raise RuntimeError("this class is gone")


# --------------------------------------------------------------------------- expiry


def test_an_expired_entry_is_a_miss_and_is_removed(
    tier: StorageTier, storage: Storage, clock: Clock
) -> None:
    tier.write(digest("k"), 1, expires_at=clock.now + 10)
    assert tier.read(digest("k")) is not None
    clock.now += 10
    assert tier.read(digest("k")) is None
    assert files(storage) == [] and tier.stats().expirations == 1


def test_expire_removes_exactly_the_expired_files(
    tier: StorageTier, storage: Storage, clock: Clock
) -> None:
    tier.write(digest("short"), 1, expires_at=clock.now + 5)
    tier.write(digest("long"), 2, expires_at=clock.now + 50)
    tier.write(digest("never"), 3)
    clock.now += 6
    assert tier.expire() == 1
    assert {path.stem for path in files(storage)} == {digest(k).hex() for k in ("long", "never")}


# ------------------------------------------------------------------ tags and clear


def test_invalidate_tag_removes_tagged_files_written_by_any_process(
    tier: StorageTier, storage: Storage
) -> None:
    tier.write(digest(1), 1, tags=["eu", "users"])
    tier.write(digest(2), 2, tags=["us"])
    tier.write(digest(3), 3, tags=["eu"])
    other = StorageTier(storage, NAME)  # knows nothing until it scans the files
    assert other.invalidate_tag("eu") == 2
    assert [tier.read(digest(k)) is not None for k in (1, 2, 3)] == [False, True, False]


def test_invalidate_tag_sees_a_rewrite_with_other_tags(tier: StorageTier, storage: Storage) -> None:
    tier.write(digest(1), 1, tags=["old"])
    tier.scan()
    StorageTier(storage, NAME).write(digest(1), 12345, tags=["new"])
    assert tier.invalidate_tag("old") == 0
    assert tier.invalidate_tag("new") == 1


def test_clear_removes_only_this_caches_files(storage: Storage) -> None:
    mine, theirs = StorageTier(storage, "mine"), StorageTier(storage, "theirs")
    for key in range(5):
        mine.write(digest(key), key)
        theirs.write(digest(key), key)
    assert mine.clear() == 5
    assert mine.stats().storage_entries == 0
    assert len(files(storage)) == 5


# --------------------------------------------------------------------------- budget


def test_writes_of_many_entries_stay_within_the_budget(storage: Storage) -> None:
    tier = StorageTier(storage, NAME, capacity="256KiB")
    for key in range(200):
        assert tier.write(digest(key), np.full(1000, key))  # ~8 KiB a file, 12 KiB on disk
        assert allocated(files(storage)) == tier.stats().storage_bytes <= 256 * 1024
        assert du(Path(storage.local_root or "", NAME)) <= 256 * 1024
    assert tier.stats().evictions > 150
    assert tier.read(digest(199)) is not None


def test_the_least_recently_used_file_goes_first(storage: Storage) -> None:
    tier = StorageTier(storage, NAME, capacity=5 * 12 * 1024 + 4096)  # 5 files and the folder
    for key in range(5):
        tier.write(digest(key), np.full(1000, key))
    tier.read(digest(0))
    tier.write(digest(5), np.full(1000, 5))
    survivors = [key for key in range(6) if tier.read(digest(key)) is not None]
    assert survivors == [0, 2, 3, 4, 5]


def test_a_scan_learns_files_of_other_processes_and_keeps_the_budget(storage: Storage) -> None:
    writer = StorageTier(storage, NAME)
    for key in range(20):
        writer.write(digest(key), np.full(1000, key))
    budgeted = StorageTier(storage, NAME, capacity="64KiB", policy="gdsf")
    budgeted.scan()
    assert budgeted.stats().storage_bytes <= 64 * 1024
    assert du(Path(storage.local_root or "", NAME)) <= 64 * 1024


def test_a_value_larger_than_the_budget_is_skipped(storage: Storage) -> None:
    tier = StorageTier(storage, NAME, capacity=1000)
    assert tier.write(digest("big"), np.zeros(1000)) is False
    assert tier.stats().skipped == 1 and files(storage) == []


def test_a_value_that_cannot_be_pickled_is_skipped(tier: StorageTier) -> None:
    assert tier.write(digest("lock"), threading.Lock()) is False
    assert tier.stats().skipped == 1 and tier.stats().write_errors == 0


def test_capacities_take_the_forms_of_a_cache_capacity(storage: Storage) -> None:
    assert StorageTier(storage, NAME, capacity="8GiB").capacity == 8 * 2**30
    assert StorageTier(storage, NAME, capacity="512MB").capacity == 512 * 10**6
    volume = shutil.disk_usage(storage.local_root or "").total
    assert StorageTier(storage, NAME, capacity="30%").capacity == int(volume * 0.3)
    with pytest.raises(ValueError, match="storage_capacity must be a positive int"):
        StorageTier(storage, NAME, capacity="lots")
    with pytest.raises(TypeError, match="storage_capacity must be an int"):
        StorageTier(storage, NAME, capacity=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown policy"):
        StorageTier(storage, NAME, policy="arc")


def test_a_percentage_of_remote_storage_is_refused() -> None:
    remote = parse_storage("s3://bucket/prefix")
    assert remote is not None
    with pytest.raises(ValueError, match="only a local storage has"):
        StorageTier(remote, NAME, capacity="30%")


# ------------------------------------------------------------- storage failures


def test_a_storage_that_fails_is_counted_and_reported_unhealthy(
    tier: StorageTier, storage: Storage
) -> None:
    tier.write(digest("k"), 1)
    root = storage.local_root or ""
    shutil.rmtree(root)
    Path(root).write_text("a file where the directory was")
    for key in range(5):
        assert tier.write(digest(key), key) is False
    assert tier.read(digest("k")) is None
    stats = tier.stats()
    assert stats.write_errors == 5 and stats.read_errors == 1 and not stats.healthy
    os.remove(root)
    os.makedirs(root)
    assert tier.write(digest("k"), 1) and tier.healthy


# -------------------------------------------------------------------- locations


def test_unusable_locations_raise_value_error_at_creation(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    for bad, message in [
        (str(a_file / "sub"), "cannot be created"),
        ("ftp://host/x", "scheme 'ftp' is not supported"),
        ("s3://", "names no bucket"),
        ("", "is blank"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_storage(bad)
    with pytest.raises(TypeError, match="storage must be"):
        parse_storage(42)


def test_locations_in_every_form(tmp_path: Path) -> None:
    import pyarrow.fs as pafs

    root = str(tmp_path / "x")
    forms = [root, tmp_path / "x", f"file://{root}", (pafs.LocalFileSystem(), root)]
    assert [getattr(parse_storage(form), "local_root", None) for form in forms] == [root] * 4
    with pytest.raises(ValueError, match="needs a directory"):
        parse_storage(pafs.LocalFileSystem())
    subtree = parse_storage((pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), "x"))
    assert subtree is not None and subtree.local_root == root


def test_the_environment_gives_the_default_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert parse_storage(None) is None
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    from_env = parse_storage(None)
    assert from_env is not None and from_env.local_root == str(tmp_path)
    assert storage_from_env({ENV_VAR: "s3://bucket/p"}) == Storage("s3://bucket/p")


# ---------------------------------------------------------------------- atomicity

WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from raycache.core.storage import StorageTier, parse_storage
    tier = StorageTier(parse_storage(sys.argv[1]), "tier")
    base, rounds, length = (int(arg) for arg in sys.argv[2:5])
    for i in range(rounds):
        tier.write(bytes(16), np.full(length, base + i, dtype=np.int64), tags=["w"])
        print(i, flush=True)
    """
)


def start_writer(storage: Storage, base: int, rounds: int, length: int) -> subprocess.Popen[bytes]:
    args = [storage.local_root or "", str(base), str(rounds), str(length)]
    return subprocess.Popen([sys.executable, "-c", WRITER, *args], stdout=subprocess.PIPE)


def check_whole(tier: StorageTier) -> bool:
    """Read the shared key: a miss, or a whole value (every element the same)."""
    stored = tier.read(bytes(16))
    if stored is None:
        return False
    assert len(stored.value) > 0 and (stored.value == stored.value[0]).all()
    return True


def test_two_processes_writing_one_key_never_leave_a_partial_file(storage: Storage) -> None:
    writers = [start_writer(storage, base, 150, 50_000) for base in (0, 10_000)]
    reader = StorageTier(storage, NAME)
    hits = 0
    while any(writer.poll() is None for writer in writers):
        hits += check_whole(reader)
    assert [writer.wait() for writer in writers] == [0, 0]
    assert check_whole(reader)
    assert reader.stats().corrupt == 0 and hits > 0


def test_a_writer_killed_mid_write_leaves_the_old_value_or_none(storage: Storage) -> None:
    tier = StorageTier(storage, NAME)
    tier.write(bytes(16), np.full(10, -1, dtype=np.int64))
    for writes_before_kill in (1, 3):
        writer = start_writer(storage, 0, 1000, 2_000_000)
        assert writer.stdout is not None
        for _ in range(writes_before_kill):
            writer.stdout.readline()  # the next write of 16 MB is under way as this returns
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert check_whole(tier)
    assert tier.stats().corrupt == 0
    tier.scan()  # the dead writer's temporary file is no entry
    assert tier.stats().storage_entries == 1


# ------------------------------------------------------------------------- fsspec


def test_an_fsspec_filesystem_serves_as_storage() -> None:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    storage = parse_storage((memory, "/raycache-test-storage"))
    assert storage is not None and storage.local_root is None
    tier = StorageTier(pickle.loads(pickle.dumps(storage)), NAME)
    assert tier.write(digest("k"), np.arange(5000), tags=["t"])
    stored = tier.read(digest("k"))
    assert stored is not None and stored.value.sum() == np.arange(5000).sum()
    assert StorageTier(storage, NAME).invalidate_tag("t") == 1
    assert tier.read(digest("k")) is None
    assert memory.find("/raycache-test-storage") == []


def test_an_fsspec_local_filesystem_is_a_local_storage(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    storage = parse_storage((fsspec.filesystem("file"), str(tmp_path)))
    assert storage is not None and storage.local_root == str(tmp_path)
