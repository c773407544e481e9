import numpy as np
import pandas as pd
import pyarrow as pa

from raycache.core.sizing import size_of


def test_buffers_are_measured_without_pickling() -> None:
    assert size_of(b"x" * 10) == 10
    assert size_of("é") == 2
    assert size_of(np.zeros((10, 10), dtype=np.float32)) == 400
    table = pa.table({"a": np.arange(1000, dtype=np.int64)})
    assert size_of(table) == 8000
    frame = pd.DataFrame({"a": np.arange(1000, dtype=np.int64)})
    assert size_of(frame) >= 8000
    assert size_of(frame["a"]) >= 8000


def test_arrow_slices_count_their_buffers() -> None:
    table = pa.table({"a": np.arange(1000, dtype=np.int64)})
    assert size_of(table.slice(0, 10)) <= size_of(table)


def test_other_objects_are_measured_by_pickled_size() -> None:
    small = size_of({"a": 1})
    big = size_of({"a": list(range(10_000))})
    assert 0 < small < big
    assert size_of({"payload": np.zeros(100_000, dtype=np.uint8)}) >= 100_000


def test_unpicklable_by_pickle_but_not_cloudpickle() -> None:
    assert size_of(lambda x: x) > 0


def test_memoryviews_count_bytes_not_items() -> None:
    assert size_of(memoryview(np.zeros(10, dtype=np.int64))) == 80
