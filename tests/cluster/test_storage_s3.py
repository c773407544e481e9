"""The storage tier on S3: a real S3-compatible server (moto) on loopback, reached by pyarrow."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

from raycache.core.keys import key_digest
from raycache.core.storage import StorageTier, parse_storage

moto_server = pytest.importorskip("moto.server")

BUCKET = "raycache-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, for this module's tests."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the AWS SDK at the server the way a user would: environment variables only."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    return endpoint


@pytest.fixture
def url(s3_env: str, request: pytest.FixtureRequest) -> str:
    """A fresh prefix in a bucket that exists."""
    s3 = pafs.S3FileSystem(endpoint_override=s3_env, allow_bucket_creation=True)
    if s3.get_file_info(BUCKET).type == pafs.FileType.NotFound:
        s3.create_dir(BUCKET)
    return f"s3://{BUCKET}/{request.node.name}"


def tier_at(url: str, **options: object) -> StorageTier:
    storage = parse_storage(url)
    assert storage is not None
    return StorageTier(storage, "s3cache", **options)  # type: ignore[arg-type]


def test_a_value_written_to_s3_reads_back(url: str) -> None:
    tier = tier_at(url)
    frame = pd.DataFrame({"n": np.arange(1000), "t": pd.date_range("2024", periods=1000, tz="UTC")})
    assert tier.write(key_digest("frame"), frame, tags=["eu"])
    assert tier.write(key_digest("array"), np.arange(300_000))  # a multipart upload
    stored = tier.read(key_digest("frame"))
    assert stored is not None
    pd.testing.assert_frame_equal(stored.value, frame)
    array = tier.read(key_digest("array"))
    assert array is not None and array.value.sum() == np.arange(300_000).sum()
    assert tier_at(url).read(key_digest("frame")) is not None  # another process finds it
    assert tier.read(key_digest("absent")) is None
    stats = tier.stats()
    assert (stats.storage_hits, stats.storage_misses, stats.read_errors) == (2, 1, 0)


def test_s3_entries_are_deleted_invalidated_and_cleared(url: str) -> None:
    tier = tier_at(url)
    for key in range(6):
        tier.write(key_digest(key), key, tags=["even" if key % 2 == 0 else "odd"])
    assert tier.delete(key_digest(0)) is True
    assert tier_at(url).invalidate_tag("even") == 2
    assert [tier.read(key_digest(k)) is not None for k in range(6)] == [False, True] * 3
    assert tier.clear() == 3
    assert tier.stats().storage_entries == 0


def test_s3_keeps_its_budget(url: str) -> None:
    tier = tier_at(url, capacity="64KiB")
    for key in range(30):
        assert tier.write(key_digest(key), np.full(1000, key))
    assert tier.stats().storage_bytes <= 64 * 1024
    tier_at(url, capacity="32KiB").scan()  # a smaller budget, learnt from the listing
    listed = tier_at(url)
    listed.scan()
    assert 0 < listed.stats().storage_bytes <= 32 * 1024


def test_a_corrupt_object_is_a_miss_and_removed(url: str, s3_env: str) -> None:
    tier = tier_at(url)
    tier.write(key_digest("k"), "value")
    s3 = pafs.S3FileSystem(endpoint_override=s3_env)
    (info,) = [i for i in s3.get_file_info(pafs.FileSelector(url[5:], recursive=True)) if i.is_file]
    with s3.open_output_stream(info.path) as stream:
        stream.write(b"garbage")
    assert tier.read(key_digest("k")) is None
    assert tier.stats().corrupt == 1
    assert s3.get_file_info(info.path).type == pafs.FileType.NotFound


def test_a_refusing_s3_is_counted_not_raised(s3_env: str) -> None:
    tier = tier_at("s3://no-such-bucket-here/prefix")
    assert tier.write(key_digest("k"), 1) is False
    assert tier.read(key_digest("k")) is None
    assert tier.stats().write_errors == 1


def test_an_unreachable_s3_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    tier = tier_at(f"s3://{BUCKET}/unreachable", unhealthy_after=3)
    for key in range(2):
        assert tier.write(key_digest(key), key) is False
    assert tier.read(key_digest(0)) is None
    tier.scan()
    stats = tier.stats()
    assert stats.write_errors == 2 and stats.read_errors == 2 and not stats.healthy
