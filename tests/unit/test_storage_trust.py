"""The storage as a trust boundary, at the tier: signing, crafted files, names, modes, URLs.

No Ray here: a tier is built as a shard builds it, and a new tier on the same folder is a
restart. ``tests/cluster/test_storage_trust_cache.py`` shows the same through ``Cache``.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from raycache.core.keys import key_digest
from raycache.core.storage import Storage, StorageTier, parse_storage
from raycache.core.storage.format import VERSION
from raycache.core.storage.temporary import STALE_TEMPORARY_SECONDS, host_id
from raycache.core.storage.trust import UntrustedStorageWarning, entrust
from tests.helpers.crafted import craft, fields_of
from tests.helpers.disk import du

NAME = "trust"
KEY = "a storage key of enough length"
OTHER_KEY = "another storage key, also long"
DIGEST = key_digest("victim")


def storage_at(root: Path, key: str | None = None, shared: bool = False) -> Storage:
    storage = entrust(parse_storage(root), key=key, shared=shared, environ={})
    assert storage is not None
    return storage


def tier_at(root: Path, key: str | None = None, **options: Any) -> StorageTier:
    return StorageTier(storage_at(root, key), NAME, **options)


def entry_file(root: Path) -> Path:
    (path,) = (root / NAME).glob("*.rc")
    return path


class Exploit:
    """A value whose unpickling would run code: it leaves a marker file behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path.write_text, (self.marker, "pwned"))


# ----------------------------------------------------------------------------- signing


@pytest.mark.parametrize("writer_key", [None, OTHER_KEY], ids=["unsigned", "other_key"])
def test_a_file_the_key_did_not_sign_is_rejected_and_never_unpickled(
    tmp_path: Path, writer_key: str | None
) -> None:
    marker = tmp_path / "marker"
    attacker = tier_at(tmp_path / "attacker", writer_key)
    assert attacker.write(DIGEST, Exploit(marker))
    assert not marker.exists()  # writing pickles; only reading would run it
    victim = tier_at(tmp_path / "victim", KEY)
    assert victim.write(DIGEST, {"balance": 100})
    entry_file(tmp_path / "victim").write_bytes(entry_file(tmp_path / "attacker").read_bytes())
    assert victim.read(DIGEST) is None
    assert not marker.exists()
    stats = victim.stats()
    assert (stats.rejected, stats.storage_misses, stats.corrupt) == (1, 1, 0)


def test_an_altered_signed_file_is_rejected(tmp_path: Path) -> None:
    tier = tier_at(tmp_path, KEY)
    tier.write(DIGEST, np.arange(1000))
    path = entry_file(tmp_path)
    original = path.read_bytes()
    fields = fields_of(original)
    altered = bytearray(original)
    altered[fields["payload_offset"] + 200] ^= 1
    path.write_bytes(craft(bytes(altered)))  # the checksums hold, the MAC does not
    assert tier_at(tmp_path, KEY).read(DIGEST) is None
    path.write_bytes(craft(original, expires_at=time.time() + 10**6, flags=fields["flags"] | 1))
    restarted = tier_at(tmp_path, KEY)
    assert restarted.read(DIGEST) is None and restarted.stats().rejected == 1


def test_signed_values_round_trip_across_a_restart(tmp_path: Path) -> None:
    table = pa.table({"n": np.arange(50_000), "s": [f"v{i % 7}" for i in range(50_000)]})
    frame = pd.DataFrame({"x": np.arange(1000.0), "c": pd.Categorical(["a", "b"] * 500)})
    values = {key_digest("table"): table, key_digest("frame"): frame}
    values[key_digest("dict")] = {"rows": [1, 2, 3], "name": "eu"}
    writer = tier_at(tmp_path, KEY)
    for digest, value in values.items():
        assert writer.write(digest, value)
    restarted = tier_at(tmp_path, KEY)
    read = {digest: restarted.read(digest) for digest in values}
    assert read[key_digest("table")].value.equals(table)  # type: ignore[union-attr]
    pd.testing.assert_frame_equal(read[key_digest("frame")].value, frame)  # type: ignore[union-attr]
    assert read[key_digest("dict")].value == values[key_digest("dict")]  # type: ignore[union-attr]
    assert restarted.stats().rejected == 0


def test_a_reader_without_a_key_reads_signed_files(tmp_path: Path) -> None:
    tier_at(tmp_path, KEY).write(DIGEST, [1, 2])
    stored = tier_at(tmp_path).read(DIGEST)
    assert stored is not None and stored.value == [1, 2]


def test_keys_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        storage_at(tmp_path, "short")
    with pytest.raises(TypeError, match="bytes or str"):
        entrust(parse_storage(tmp_path), key=1234, shared=False)
    with pytest.raises(ValueError, match="needs storage"):
        entrust(None, key=KEY, shared=False)
    environ = {"RAYCACHE_STORAGE_KEY": KEY}
    from_env = entrust(parse_storage(tmp_path), key=None, shared=False, environ=environ)
    assert from_env is not None and from_env.key == storage_at(tmp_path, KEY).key
    assert KEY not in repr(from_env) and repr(from_env.key) not in repr(from_env)


def test_an_unsigned_storage_others_may_write_warns_once(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o777)
    with pytest.warns(UntrustedStorageWarning, match="can run code"):
        storage_at(tmp_path)
    with pytest.warns(UntrustedStorageWarning):
        entrust(parse_storage("s3://bucket/cache"), key=None, shared=False, environ={})
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        storage_at(tmp_path)  # warned already
        storage_at(private)
        storage_at(tmp_path / "signed", KEY)


# ---------------------------------------------------------------------- crafted files


def crafted_headers(original: bytes) -> dict[str, bytes]:
    fields = fields_of(original)
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    return {
        "expiry_1e400": craft(original, meta=b'{"tags": ["t"], "segments": [[0, 1e400]]}'),
        "deep_meta": craft(original, meta=b'{"tags": ' + deep + b', "segments": []}'),
        "infinite_expiry": craft(original, expires_at=float("inf"), flags=fields["flags"] | 1),
        "nan_cost": craft(original, cost=float("nan")),
        "unknown_flags": craft(original, flags=0x80),
        "huge_meta_length": craft(original, meta_length=2**31),
        "tags_not_strings": craft(original, meta=b'{"tags": [1], "segments": [[0, 8128]]}'),
        "negative_segment": craft(original, meta=b'{"tags": ["t"], "segments": [[-64, 64]]}'),
        "overlapping_segments": craft(
            original, meta=json.dumps({"tags": ["t"], "segments": [[0, 64], [0, 64]]}).encode()
        ),
        "meta_not_json": craft(original, meta=b"\xff\xfe not json"),
        "encoding_unknown": craft(original, encoding=99),
    }


@pytest.mark.parametrize("case", [
    "expiry_1e400", "deep_meta", "infinite_expiry", "nan_cost", "unknown_flags",
    "huge_meta_length", "tags_not_strings", "negative_segment", "overlapping_segments",
    "meta_not_json", "encoding_unknown",
])  # fmt: skip
def test_a_crafted_header_is_a_miss_and_clear_and_tags_still_work(
    tmp_path: Path, case: str
) -> None:
    tier = tier_at(tmp_path)
    tier.write(DIGEST, np.arange(1000), tags=("t",))
    tier.write(key_digest("other"), "kept", tags=("t",))
    path = tmp_path / NAME / f"{DIGEST.hex()}.rc"
    path.write_bytes(crafted_headers(path.read_bytes())[case])
    restarted = tier_at(tmp_path)
    assert restarted.read(DIGEST) is None
    assert not path.exists()  # damaged: removed as it was read
    assert restarted.invalidate_tag("t") == 1
    assert restarted.read(key_digest("other")) is None


def test_a_crafted_file_never_survives_a_clear_or_a_tag_invalidation(tmp_path: Path) -> None:
    tier = tier_at(tmp_path)
    tier.write(DIGEST, [1], tags=("t",))
    original = entry_file(tmp_path).read_bytes()
    for crafted in crafted_headers(original).values():
        entry_file(tmp_path).write_bytes(crafted)
        tier_at(tmp_path).clear()
        assert list((tmp_path / NAME).glob("*.rc")) == []
        tier.write(DIGEST, [1], tags=("t",))
        entry_file(tmp_path).write_bytes(crafted)
        restarted = tier_at(tmp_path)
        restarted.invalidate_tag("t")
        assert restarted.read(DIGEST) is None
        tier.write(DIGEST, [1], tags=("t",))


def test_an_arrow_payload_with_valid_checksums_but_bad_offsets_is_a_miss(tmp_path: Path) -> None:
    tier = tier_at(tmp_path)
    table = pa.table({"s": ["alpha", "beta", "gamma"] * 1000})
    tier.write(DIGEST, table)
    original = entry_file(tmp_path).read_bytes()
    offset = fields_of(original)["payload_offset"]
    payload = bytearray(original[offset:])
    offsets = payload.find(np.array([0, 5, 9, 14], dtype=np.int32).tobytes())
    assert offsets > 0
    payload[offsets + 8 : offsets + 12] = np.int32(2**30).tobytes()
    entry_file(tmp_path).write_bytes(craft(original, payload=bytes(payload)))
    restarted = tier_at(tmp_path)
    assert restarted.read(DIGEST) is None and restarted.stats().corrupt == 1


# ----------------------------------------------------------------------------- versions


def test_a_file_of_a_future_version_is_a_miss_left_alone_until_a_clear(tmp_path: Path) -> None:
    tier = tier_at(tmp_path, capacity="64KiB")
    tier.write(DIGEST, np.arange(100), tags=("t",), expires_at=time.time() - 1)
    path = entry_file(tmp_path)
    future = bytearray(path.read_bytes())
    future[8:10] = (VERSION + 1).to_bytes(2, "little")
    path.write_bytes(bytes(future))
    restarted = tier_at(tmp_path, capacity="64KiB")
    assert restarted.read(DIGEST) is None
    assert restarted.scan() and restarted.expire() == 0 and restarted.invalidate_tag("t") == 0
    for key in range(20):  # pressure: the budget evicts only files it can read
        restarted.write(key_digest(key), np.full(1000, key))
    assert path.read_bytes() == bytes(future) and restarted.stats().corrupt == 0
    assert restarted.clear() >= 1 and not path.exists()


def test_files_of_format_version_1_are_left_alone_until_a_clear(tmp_path: Path) -> None:
    tier = tier_at(tmp_path)
    tier.write(DIGEST, [1])
    legacy = tmp_path / NAME / DIGEST.hex()[:2] / f"{DIGEST.hex()}.rc"
    legacy.parent.mkdir()
    legacy.write_bytes(b"\x89RCACHE\n\x01\x00" + bytes(200))
    assert tier_at(tmp_path).scan() and legacy.exists()
    assert tier_at(tmp_path).clear() == 2 and not legacy.exists()


# -------------------------------------------------------------------- names and paths


def test_the_listing_touches_only_names_the_tier_makes(tmp_path: Path) -> None:
    folder = tmp_path / NAME
    tier = tier_at(tmp_path)
    tier.write(DIGEST, [1])
    old = time.time() - 10 * STALE_TEMPORARY_SECONDS
    strangers = [folder / name for name in (".env", ".gitignore", "notes.rc", "ABCD.rc", ".x.tmp")]
    for stranger in strangers:
        stranger.write_text("mine")
        os.utime(stranger, (old, old))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / f"{key_digest('x').hex()}.rc").write_text("not the tier's")
    (folder / f"{key_digest('x').hex()}.rc").symlink_to(outside / f"{key_digest('x').hex()}.rc")
    restarted = tier_at(tmp_path)
    restarted.scan()
    assert restarted.read(key_digest("x")) is None
    assert restarted.clear() == 1
    assert all(stranger.read_text() == "mine" for stranger in strangers)
    assert (outside / f"{key_digest('x').hex()}.rc").read_text() == "not the tier's"


def test_a_cache_folder_that_is_a_symlink_is_never_used(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / f"{DIGEST.hex()}.rc").write_text("precious")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / NAME).symlink_to(elsewhere)
    tier = tier_at(tmp_path / "root")
    assert tier.write(DIGEST, [1]) is False and tier.clear() == 0
    assert tier.read(DIGEST) is None
    assert [p.name for p in elsewhere.iterdir()] == [f"{DIGEST.hex()}.rc"]
    assert (elsewhere / f"{DIGEST.hex()}.rc").read_text() == "precious"


def test_temporary_files_of_dead_writers_are_reclaimed_whatever_their_age(tmp_path: Path) -> None:
    tier = tier_at(tmp_path, capacity="1MiB")
    tier.write(DIGEST, [1])
    folder = tmp_path / NAME
    stem = f".{DIGEST.hex()}.rc"
    dead_pid = 2**22 + 12345  # above pid_max's default: no process has it
    dead = folder / f"{stem}.{host_id()}.{dead_pid}.{'0' * 12}.tmp"
    alive = folder / f"{stem}.{host_id()}.{os.getpid()}.{'1' * 12}.tmp"
    other_host_new = folder / f"{stem}.ffffffff.{dead_pid}.{'2' * 12}.tmp"
    other_host_old = folder / f"{stem}.fffffffe.{dead_pid}.{'3' * 12}.tmp"
    for path in (dead, alive, other_host_new, other_host_old):
        path.write_bytes(os.urandom(300_000))
    old = time.time() - 2 * STALE_TEMPORARY_SECONDS
    os.utime(other_host_old, (old, old))
    restarted = tier_at(tmp_path, capacity="1MiB")
    restarted.scan()
    assert not dead.exists() and not other_host_old.exists()
    assert alive.exists() and other_host_new.exists()  # a writer at work, or maybe
    assert restarted.capacity is not None and restarted.capacity <= 1024**2 - 600_000
    assert du(folder) <= 1.1 * 1024**2


# -------------------------------------------------------------------- files and folders


def test_files_and_folders_are_private_by_default(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        tier_at(tmp_path / "private").write(DIGEST, [1])
        with pytest.warns(UntrustedStorageWarning):
            shared = storage_at(tmp_path / "shared", shared=True)
        StorageTier(shared, NAME).write(DIGEST, [1])
    finally:
        os.umask(previous)
    for root, folder_mode, file_mode in (("private", 0o700, 0o600), ("shared", 0o770, 0o660)):
        assert stat.S_IMODE((tmp_path / root / NAME).stat().st_mode) == folder_mode
        assert stat.S_IMODE(entry_file(tmp_path / root).stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a folder to another user")
def test_a_root_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    with pytest.raises(ValueError, match="belongs to another user"):
        parse_storage(theirs)


# ------------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3:/bucket/x", "must be followed by '//'"),
        ("file://tmp/x", "not a local file URL"),
        ("file://host/p", "not a local file URL"),
        ("file://localhost/p", "not a local file URL"),
        ("file:relative", "not a local file URL"),
        ("   ", "is blank"),
        ("", "is blank"),
        ("memory://x", "scheme 'memory' is not supported"),
        ("s3://bucket/x?colour=red", "query parameters"),
        ("s3://", "names no bucket"),
        ("gs://bucket/x#frag", "fragment"),
    ],
)
def test_mistyped_urls_are_refused_and_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        parse_storage(url)
    assert list(tmp_path.iterdir()) == []


def test_file_urls_are_percent_decoded_as_pyarrow_does(tmp_path: Path) -> None:
    spaced = tmp_path / "a b"
    for url in (f"file://{tmp_path}/a%20b", f"file:{tmp_path}/a%20b"):
        parsed = parse_storage(url)
        assert parsed is not None and parsed.local_root == str(spaced)
    s3 = parse_storage("s3://bucket/a%20b?region=eu-west-1")
    assert s3 is not None and s3.url == "s3://bucket/a%20b?region=eu-west-1"
