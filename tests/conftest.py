"""One local Ray instance for the whole test session, and a fresh cache per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

import raycache

_names = itertools.count()

# The suite shares two cores between many Ray processes, where a healthy shard may take
# longer than the 0.25 s read bound to answer. Tests of that bound set it on the handle.
os.environ.setdefault("RAYCACHE_TIMEOUT", "10")
# Storage writes wait for a spare core, which a loaded test machine rarely has: tests
# write at once, and tests/unit/test_write_deferral.py shows the wait.
os.environ.setdefault("RAYCACHE_STORAGE_DEFER_S", "0")


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """Start one local Ray for every test that needs it."""
    if not ray.is_initialized():
        ray.init(
            address="local",  # never attach to another Ray running on this machine
            num_cpus=4,
            object_store_memory=2 * 1024**3,
            include_dashboard=False,
            logging_level="ERROR",
        )
    yield
    ray.shutdown()


@pytest.fixture
def cache_name(ray_session: None) -> str:
    """A cache name no other test uses."""
    return f"test-{next(_names)}"


@pytest.fixture(scope="session")
def shared_cache(ray_session: None) -> Iterator[raycache.Cache]:
    """One two-shard cache of 64 MiB that tests take turns to use."""
    handle = raycache.Cache("test-shared", shards=2, capacity="64MiB")
    yield handle
    handle.shutdown()


@pytest.fixture
def cache(shared_cache: raycache.Cache) -> raycache.Cache:
    """The shared cache, emptied for this test; counters keep running."""
    shared_cache.clear()
    return shared_cache


@pytest.fixture
def fresh_cache(cache_name: str) -> Iterator[raycache.Cache]:
    """A cache of its own for a test that counts, resizes, kills or shuts down."""
    handle = raycache.Cache(cache_name, shards=2, capacity="64MiB")
    yield handle
    handle.shutdown()


@pytest.fixture
def storage(tmp_path: Path) -> str:
    """A directory for a cache's durable tier, empty, and removed after the test."""
    return str(tmp_path / "storage")
