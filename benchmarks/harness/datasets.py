"""Values of a chosen size to cache in benchmarks: Arrow tables and a mixed-dtype DataFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

TABLE_COLUMNS = 4
CITIES = ("nyc", "sfo", "lhr", "cdg", "hnd", "sin", "syd", "gru")
PROBE_ROWS = 10_000


def make_table(nbytes: int) -> pa.Table:
    """Return an Arrow table of ``TABLE_COLUMNS`` int64 columns taking ``nbytes`` bytes."""
    rows = nbytes // (8 * TABLE_COLUMNS)
    return pa.table({f"c{i}": np.arange(i, i + rows, dtype=np.int64) for i in range(TABLE_COLUMNS)})


def make_mixed_frame(nbytes: int, seed: int = 0) -> pd.DataFrame:
    """Return a DataFrame of about ``nbytes`` bytes, the same for the same ``seed``.

    Columns: int64, float64, bool, datetime64[ns], a categorical and a string column, the
    dtypes of a typical table of records.
    """
    rows = max(1, round(nbytes / _bytes_per_row(seed)))
    return _mixed_frame(rows, seed)


def frame_bytes(frame: pd.DataFrame) -> int:
    """Return the bytes a frame's values and index take in memory."""
    return int(frame.memory_usage(index=True, deep=True).sum())


def _bytes_per_row(seed: int) -> float:
    # Measured rather than computed: the string column's size depends on the pandas version.
    return frame_bytes(_mixed_frame(PROBE_ROWS, seed)) / PROBE_ROWS


def _mixed_frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cities = pd.Categorical.from_codes(rng.integers(0, len(CITIES), rows), CITIES)
    user_ids = pa.array(rng.integers(0, 10**9, rows))
    users = pc.binary_join_element_wise("user-", pc.cast(user_ids, pa.string()), "")
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "price": rng.random(rows),
            "paid": rng.random(rows) < 0.5,
            "at": np.datetime64("2024-01-01", "ns")
            + rng.integers(0, 10**15, rows).astype("m8[ns]"),
            "city": cities,
            "user": pd.Series(users, dtype="str"),
        }
    )
