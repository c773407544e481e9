"""raycache.data.cached: Ray Data batches come from the cache on a second epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ray

import raycache
from raycache.data import CachedBatches, cached

ROWS, BLOCKS = 64, 4


def counting(calls: Path) -> Any:
    """A batch transform that appends a line to ``calls`` each time it runs."""

    def double(batch: pd.DataFrame) -> pd.DataFrame:
        with calls.open("a") as stream:
            stream.write("x\n")
        return batch.assign(doubled=batch["id"] * 2)

    return double


class Scaler:
    """A callable class as Ray Data runs them in actors; each call is counted in a file."""

    def __init__(self, factor: int, calls: str) -> None:
        self.factor, self.calls = factor, Path(calls)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        with self.calls.open("a") as stream:
            stream.write("x\n")
        return batch.assign(scaled=batch["id"] * self.factor)


def runs(calls: Path) -> int:
    return len(calls.read_text().splitlines()) if calls.exists() else 0


def epoch(ds: ray.data.Dataset) -> pd.DataFrame:
    batches = list(ds.iter_batches(batch_format="pandas", batch_size=None))
    return pd.concat(batches).sort_values("id").reset_index(drop=True)


def source() -> ray.data.Dataset:
    return ray.data.range(ROWS, override_num_blocks=BLOCKS)


def test_second_epoch_skips_the_transform(cache: raycache.Cache, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    transform = cached(counting(calls), cache=cache)
    ds = source().map_batches(transform, batch_format="pandas", batch_size=None)
    first = epoch(ds)
    assert runs(calls) == BLOCKS
    second = epoch(ds)
    pd.testing.assert_frame_equal(first, second)
    assert runs(calls) == BLOCKS  # every batch of the second epoch was a hit
    assert first["doubled"].tolist() == [2 * i for i in range(ROWS)]


def test_a_callable_class_is_cached_with_its_constructor_arguments(
    cache: raycache.Cache, tmp_path: Path
) -> None:
    calls = tmp_path / "calls"

    def scaled(factor: int) -> pd.DataFrame:
        return epoch(
            source().map_batches(
                cached(Scaler, cache=cache),
                fn_constructor_args=(factor, str(calls)),
                batch_format="pandas",
                batch_size=None,
                concurrency=1,
            )
        )

    first = scaled(3)
    assert runs(calls) == BLOCKS
    pd.testing.assert_frame_equal(scaled(3), first)
    assert runs(calls) == BLOCKS
    assert scaled(5)["scaled"].tolist() == [5 * i for i in range(ROWS)]
    assert runs(calls) == 2 * BLOCKS  # another constructor argument, other keys


def body(expression: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(f"def transform(batch):\n    return {expression}\n", namespace)
    return namespace["transform"]


def test_a_changed_body_or_other_batch_boundaries_give_new_keys() -> None:
    batch = pd.DataFrame({"id": range(8)})
    same: CachedBatches = cached(body("batch * 2"))
    assert same.key(batch) == cached(body("batch * 2")).key(batch)
    assert same.key(batch) != cached(body("batch * 3")).key(batch)
    assert same.key(batch) != cached(body("batch * 2"), version=2).key(batch)
    halves = {same.key(batch.iloc[:4]), same.key(batch.iloc[4:])}
    assert same.key(batch) not in halves


def test_a_cache_that_is_gone_runs_the_transform(cache_name: str, tmp_path: Path) -> None:
    gone = raycache.Cache(cache_name, shards=1, capacity="8MiB")
    transform = cached(counting(tmp_path / "calls"), cache=gone)
    gone.shutdown()
    batch = pd.DataFrame({"id": range(4)})
    assert transform(batch)["doubled"].tolist() == [0, 2, 4, 6]
    assert runs(tmp_path / "calls") == 1


def test_the_transform_s_own_error_is_raised(cache: raycache.Cache) -> None:
    def broken(batch: pd.DataFrame) -> pd.DataFrame:
        raise ZeroDivisionError("in the transform")

    with pytest.raises(ZeroDivisionError):
        cached(broken, cache=cache)(pd.DataFrame({"id": [1]}))


def test_numpy_and_arrow_batches_are_keyed_by_content() -> None:
    transform: CachedBatches = cached(body("batch"))
    ids = np.arange(8)
    assert transform.key({"id": ids}) == transform.key({"id": ids.copy()})
    assert transform.key({"id": ids}) != transform.key({"id": ids + 1})
    table = pa.table({"id": ids})
    rechunked = pa.concat_tables([table.slice(0, 3), table.slice(3)])
    assert transform.key(table) == transform.key(rechunked)  # chunking is not content
    assert transform.key(table) != transform.key(table.slice(1))
