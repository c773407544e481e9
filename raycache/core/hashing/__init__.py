"""Content hashing of argument values, for memoization keys.

:func:`hash_value` returns a 16-byte xxh3-128 digest of a canonical, type-tagged
encoding of a value. Equal values of the same type hash equal in every process and on
every machine; values that Python conflates (``1``, ``1.0``, ``True``) or that only look
alike (a list and a tuple) hash differently, because a memoizer must never serve a result
computed for different arguments. Dicts and sets hash regardless of their order.

Large buffers (numpy arrays, pandas columns, Arrow arrays) are streamed into the hash
through memoryviews, so they are never copied on the fast path. What is hashed is the
logical content: a strided numpy view hashes like its contiguous copy, an Arrow slice
hashes its own values only, and chunk boundaries do not count. Callables hash by
:func:`function_fingerprint`.

Values with no canonical content (open files, locks, arbitrary objects) raise
:class:`~raycache.errors.UnhashableValueError`; pickling them would not give stable keys.

Each kind of value has a module here: :mod:`~.builtins`, :mod:`~.stdlib`,
:mod:`~.callables`, :mod:`~.arrays` (numpy), :mod:`~.dataframes` (pandas) and
:mod:`~.arrow` (pyarrow), all writing into the :class:`~.hasher.Hasher`.

>>> hash_value([1, 2]) == hash_value([1, 2])
True
>>> len({hash_value(v) for v in (1, 1.0, True, "1", (1,), [1])})
6
>>> hash_value({"a": 1, "b": 2}) == hash_value({"b": 2, "a": 1})
True
>>> hash_value(object())
Traceback (most recent call last):
...
raycache.errors.UnhashableValueError: object objects cannot be hashed
"""

from __future__ import annotations

from raycache.core.hashing import arrays, arrow, builtins, dataframes, stdlib
from raycache.core.hashing.callables import (
    FINGERPRINT_VERSION,
    callable_name,
    function_fingerprint,
    hash_callable,
)
from raycache.core.hashing.hasher import DIGEST_SIZE, EXACT, FALLBACKS, hash_value

__all__ = [
    "DIGEST_SIZE",
    "FINGERPRINT_VERSION",
    "callable_name",
    "function_fingerprint",
    "hash_value",
]

# The kinds' modules import the hasher, so the hasher learns of them here. Fallbacks run
# in this order because subclasses must come before their bases: a numpy float64 is a
# float, a pandas Timestamp a datetime, an IntEnum an int.
EXACT.update(builtins.EXACT)
EXACT.update(stdlib.EXACT)
FALLBACKS.extend(
    [
        arrays.hash_numpy,
        dataframes.hash_pandas,
        arrow.hash_arrow,
        stdlib.hash_record,
        hash_callable,
        stdlib.hash_named,
    ]
)
