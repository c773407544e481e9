"""DataFrames as cached values: which of their columns a hit cannot map without a copy.

A hit maps a DataFrame's numeric, bool and Arrow-backed columns from the object store. A
column of dtype ``object`` holds Python objects instead, which every hit must unpickle
one by one, so raycache warns when a large DataFrame carrying such columns is cached.

>>> import pandas as pd
>>> unpickled_columns(pd.DataFrame({"n": range(3), "s": ["a", "b", "c"]}), min_rows=1)
[]
>>> unpickled_columns(pd.DataFrame({"o": pd.Series(["a", 1], dtype=object)}), min_rows=1)
['o']
"""

from __future__ import annotations

import warnings
from typing import Any

from raycache.core.libraries import imported

MIN_ROWS = 10_000
"""Frames shorter than this unpickle quickly enough that their object columns don't matter."""


class ObjectColumnsWarning(UserWarning):
    """A cached DataFrame has ``object`` columns, which make every hit slower."""


def unpickled_columns(value: object, min_rows: int = MIN_ROWS) -> list[str]:
    """Return the ``object``-dtype columns of ``value`` if it is a DataFrame of ``min_rows``+."""
    pandas: Any = imported("pandas")
    if pandas is None or not isinstance(value, pandas.DataFrame) or len(value) < min_rows:
        return []
    is_object = pandas.api.types.is_object_dtype
    return [str(name) for name, dtype in value.dtypes.items() if is_object(dtype)]


def warn_if_unpickled_on_hit(value: object, what: str, name: object) -> None:
    """Warn, naming the columns, if hits on ``value`` must unpickle some of its columns.

    The warning calls the value ``f"{what} {name!r}"``, formatted only when it is given.
    """
    columns = unpickled_columns(value)
    if columns:
        warnings.warn(
            f"{what} {name!r} is a DataFrame with object-dtype columns {columns}: every cache hit "
            "unpickles them row by row instead of mapping them. For strings, convert them "
            'first, e.g. df.astype({"col": "str"}), which pandas stores in Arrow.',
            ObjectColumnsWarning,
            stacklevel=3,
        )
