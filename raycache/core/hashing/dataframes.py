"""Hashing of pandas DataFrames, Series, Indexes and scalars, column by column.

A frame hashes its shape, column labels, index and then each column, so how pandas laid
it out in blocks (consolidated or not, C or F order) cannot show. Each column takes the
fastest exact path its dtype allows: numpy buffers in place, Arrow buffers for Arrow-
backed and masked columns, codes and categories for categoricals.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from raycache.core import encoding
from raycache.core.hashing.arrays import hash_array
from raycache.core.hashing.arrow import hash_arrow_values
from raycache.core.hashing.builtins import hash_range
from raycache.core.hashing.hasher import Hasher
from raycache.core.hashing.stdlib import hash_tz


def hash_pandas(h: Hasher, value: object) -> bool:
    """Hash ``value`` if it is a pandas object; say if it was."""
    # As for pyarrow: only an imported pandas has objects, and a plain lookup is cheapest.
    pd: Any = sys.modules.get("pandas")
    if pd is None:
        return False
    if isinstance(value, pd.DataFrame):
        key = h.enter(value)
        try:
            _hash_frame(h, value, pd)
        finally:
            h.leave(key)
    elif isinstance(value, pd.Series):
        key = h.enter(value)
        try:
            h.write(encoding.header(b"pS", len(value)))
            h.value(value.name)
            _hash_index(h, value.index, pd)
            _hash_column(h, value, pd)
        finally:
            h.leave(key)
    elif isinstance(value, pd.Index):
        _hash_index(h, value, pd)
    else:
        return _hash_scalar(h, value, pd)
    return True


def _hash_scalar(h: Hasher, value: object, pd: Any) -> bool:
    if value is pd.NaT:
        h.write(b"pT")
    elif value is pd.NA:
        h.write(b"pA")
    elif isinstance(value, (pd.Timestamp, pd.Timedelta)):
        # asm8 is the value as a numpy scalar in the object's own unit.
        h.write(b"pt" if isinstance(value, pd.Timestamp) else b"pd")
        hash_array(h, np.asarray(value.asm8))
        hash_tz(h, getattr(value, "tzinfo", None))
    elif isinstance(value, pd.Period):
        h.text(b"pP", value.freqstr)
        h.value(value.ordinal)
    elif isinstance(value, pd.Interval):
        h.write(b"pi")
        h.value(value.left)
        h.value(value.right)
        h.value(value.closed)
    else:
        return False
    return True


def _hash_frame(h: Hasher, frame: Any, pd: Any) -> None:
    rows, columns = frame.shape
    h.write(b"pF" + encoding.length(rows) + encoding.length(columns))
    # Column labels hash as values, not as an Index: the same names in an object or a
    # str Index are the same columns.
    h.value(frame.columns.tolist())
    h.value(list(frame.columns.names))
    _hash_index(h, frame.index, pd)
    for _, column in frame.items():
        _hash_column(h, column, pd)


def _hash_index(h: Hasher, index: Any, pd: Any) -> None:
    if isinstance(index, pd.RangeIndex):
        # Hashed as a range: a RangeIndex of a billion rows costs nothing.
        h.write(b"pR")
        h.value(index.name)
        hash_range(h, range(index.start, index.stop, index.step))
    elif isinstance(index, pd.MultiIndex):
        # Level values, not levels and codes: equal MultiIndexes may keep unused levels.
        h.write(b"pM" + encoding.length(len(index)) + encoding.length(index.nlevels))
        h.value(list(index.names))
        for level in range(index.nlevels):
            _hash_column(h, index.get_level_values(level), pd)
    else:
        h.write(encoding.header(b"pI", len(index)))
        h.value(index.name)
        # freq changes what shifting a DatetimeIndex means, so it is part of the index.
        freq = getattr(index, "freq", None)
        h.value(None if freq is None else freq.freqstr)
        _hash_column(h, index, pd)


def _hash_column(h: Hasher, column: Any, pd: Any) -> None:
    """Hash the dtype and values of a Series or an Index, on the fastest exact path."""
    dtype = column.dtype
    h.text(b"pD", str(dtype))
    if isinstance(dtype, np.dtype):
        # Numeric, bool, datetime64 and object columns are numpy arrays, hashed in place.
        hash_array(h, column.to_numpy(copy=False))
        return
    values = column.array
    if isinstance(dtype, pd.CategoricalDtype):
        h.value(dtype.ordered)
        _hash_index(h, dtype.categories, pd)
        hash_array(h, np.asarray(values.codes))
    elif isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype)):
        hash_array(h, values.asi8)  # the int64 values, zone and unit being in the dtype
    elif hasattr(values, "__arrow_array__"):
        # Arrow-backed (the pandas 3 str dtype, ArrowDtype) hand over their own arrays;
        # masked ones (Int64, boolean) convert, sharing the data buffer.
        arrow = values.__arrow_array__()
        chunks = arrow.chunks if hasattr(arrow, "chunks") else [arrow]
        hash_arrow_values(h, arrow.type, chunks)
    else:
        hash_array(h, values.to_numpy(dtype=object))
