"""Shard counters reach the node's Prometheus endpoint, tagged per cache and shard."""

from __future__ import annotations

import re
import time
import urllib.request

import ray

import raycache
from raycache.client.steps import run


def _scrape() -> str:
    port = ray.nodes()[0]["MetricsExportPort"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _series(text: str, name: str, cache: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line.startswith(f"ray_raycache_{name}{{") and f'cache="{cache}"' in line:
            shard = re.search(r'shard="([^"]+)"', line)
            assert shard is not None
            found[shard.group(1)] = float(line.rsplit(" ", 1)[1])
    return found


def test_hits_misses_and_sizes_are_exported_per_shard(fresh_cache: raycache.Cache) -> None:
    fresh_cache.put_many({i: b"x" * 100 for i in range(20)})
    fresh_cache.get_many(range(40))
    deadline = time.time() + 60
    hits: dict[str, float] = {}
    while time.time() < deadline:
        text = _scrape()
        hits = _series(text, "hits_total", fresh_cache.name)
        if sum(hits.values()) >= 20:
            break
        time.sleep(1)
    assert sum(hits.values()) == 20
    assert sum(_series(text, "misses_total", fresh_cache.name).values()) == 20
    assert set(_series(text, "entries", fresh_cache.name)) == {"shard-0", "shard-1"}
    assert sum(_series(text, "capacity", fresh_cache.name).values()) == 64 * 2**20


def test_the_durable_tiers_counters_are_exported(cache_name: str, storage: str) -> None:
    cache = raycache.Cache(cache_name, shards=2, capacity="64MiB", storage=storage)
    try:
        cache.put_many({i: b"x" * 100 for i in range(3)})
        run(cache.shard_client.flush())
        deadline = time.time() + 60
        while time.time() < deadline:
            text = _scrape()
            if sum(_series(text, "storage_entries", cache_name).values()) == 3:
                break
            time.sleep(1)
        assert sum(_series(text, "storage_entries", cache_name).values()) == 3
        assert sum(_series(text, "storage_bytes", cache_name).values()) > 300
        assert sum(_series(text, "storage_write_errors_total", cache_name).values()) == 0
    finally:
        cache.shutdown()
