"""How many bytes a value occupies, the measure every byte budget is kept in.

Arrow, numpy and pandas values are measured from their buffers, without copying or
serialising them. Anything else is measured as its pickled size, with large buffers
counted out of band so that even a big unknown object is not copied to be measured.

>>> size_of(b"x" * 1000)
1000
>>> import numpy as np
>>> size_of(np.zeros(1000, dtype=np.int64))
8000
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from raycache.core.libraries import imported


def size_of(value: object) -> int:
    """Return the number of bytes ``value`` takes in memory or in Ray's object store."""
    measured = buffer_size(value)
    return measured if measured is not None else _pickled_size(value)


def buffer_size(value: object) -> int | None:
    """Return the size of a bytes, str, Arrow, numpy or pandas value; None for others.

    It never serialises, so it is cheap enough to call on every argument of a call.
    """
    if isinstance(value, memoryview):
        return value.nbytes
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogatepass"))
    numpy: Any = imported("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray):
        return int(value.nbytes)
    pyarrow: Any = imported("pyarrow")
    if pyarrow is not None and isinstance(
        value, (pyarrow.Table, pyarrow.RecordBatch, pyarrow.Array, pyarrow.ChunkedArray)
    ):
        return int(value.get_total_buffer_size())
    pandas: Any = imported("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return int(value.memory_usage(index=True, deep=True).sum())
    if pandas is not None and isinstance(value, pandas.Series):
        return int(value.memory_usage(index=True, deep=True))
    return None


def _pickled_size(value: object) -> int:
    out_of_band: list[pickle.PickleBuffer] = []
    inline = cloudpickle.dumps(value, protocol=5, buffer_callback=out_of_band.append)
    return len(inline) + sum(buffer.raw().nbytes for buffer in out_of_band)
