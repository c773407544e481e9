"""What a reader gets back for a cached pandas DataFrame: every dtype, read-only buffers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import raycache

ROWS = 50_000  # large enough to live in the object store rather than in the shard


def mixed_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "int": np.arange(ROWS, dtype=np.int64),
            "float": rng.random(ROWS),
            "bool": rng.random(ROWS) < 0.5,
            "when": pd.date_range("2024-01-01", periods=ROWS, freq="min"),
            "city": pd.Categorical(rng.choice(["nyc", "sfo", "lhr"], ROWS)),
            "name": pd.Series([f"user-{i}" for i in range(ROWS)], dtype="str"),
            "nullable": pd.array(np.arange(ROWS), dtype="Int64"),
            "arrow": pd.array(np.arange(ROWS), dtype="int64[pyarrow]"),
            "objects": pd.Series([("t", i % 3) for i in range(ROWS)], dtype=object),
        },
        index=pd.RangeIndex(10, 10 + ROWS, name="row"),
    )


@pytest.mark.filterwarnings("ignore::raycache.ObjectColumnsWarning")
def test_a_frame_round_trips_every_dtype_and_its_index(cache: raycache.Cache) -> None:
    frame = mixed_frame()
    cache.put("frame", frame)
    got = cache.get("frame")
    pd.testing.assert_frame_equal(got, frame)
    assert got.dtypes.equals(frame.dtypes)


@pytest.mark.filterwarnings("ignore::raycache.ObjectColumnsWarning")
def test_numeric_columns_of_a_hit_map_the_object_store_read_only(cache: raycache.Cache) -> None:
    cache.put("frame", mixed_frame())
    first, second = cache.get("frame"), cache.get("frame")
    for column in ("int", "float", "bool"):
        values = first[column].to_numpy(copy=False)
        assert not values.flags.writeable, column
        assert np.shares_memory(values, second[column].to_numpy(copy=False)), column
    with pytest.raises(ValueError, match="read-only"):
        first.loc[10, "int"] = -1
    writable = first.copy()
    writable.loc[10, "int"] = -1
    first["extra"] = 1  # adding a column is always allowed
    assert writable.loc[10, "int"] == -1 and cache.get("frame").loc[10, "int"] == 0


def test_caching_a_large_frame_with_object_columns_warns_and_still_works(
    cache: raycache.Cache,
) -> None:
    frame = mixed_frame()
    with pytest.warns(raycache.ObjectColumnsWarning, match=r"\['objects'\]"):
        cache.put("frame", frame)
    pd.testing.assert_frame_equal(cache.get("frame"), frame)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.put("clean", frame.drop(columns="objects"))
