"""Hashing of numpy arrays, scalars and dtypes, by their logical content.

Buffers stream into the hash through memoryviews, so a C-contiguous array is never
copied. A strided view hashes like its contiguous copy; padding bytes of structured
dtypes never count. Object arrays hash element by element, or, when they hold only
strings, as one Arrow string array.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from raycache.core import encoding
from raycache.core.hashing.arrow import string_streams
from raycache.core.hashing.hasher import Hasher
from raycache.core.hashing.stdlib import hash_type
from raycache.errors import UnhashableValueError


def hash_numpy(h: Hasher, value: object) -> bool:
    """Hash ``value`` if it is a numpy array, scalar or dtype; say if it was."""
    if isinstance(value, np.dtype):
        h.write(b"nd")
        _hash_dtype(h, value)
    elif isinstance(value, np.generic):
        h.write(b"ns")
        hash_array(h, np.asarray(value))
    elif isinstance(value, np.ndarray):
        if isinstance(value, np.ma.MaskedArray):
            raise UnhashableValueError("numpy masked arrays cannot be hashed")
        h.write(b"na")
        # A subclass may change what operations mean (np.matrix), so it is part of the
        # hash; a memmap is only where the values live.
        if type(value) is not np.ndarray and not isinstance(value, np.memmap):
            hash_type(h, type(value))
        hash_array(h, value)
    else:
        return False
    return True


def _hash_dtype(h: Hasher, dtype: np.dtype[Any]) -> None:
    if dtype.names is not None:
        # Structured: names and field types, never padding or offsets.
        h.write(encoding.header(b"{", len(dtype.names)))
        for name in dtype.names:
            h.text(encoding.STR, name)
            _hash_dtype(h, dtype.fields[name][0])  # type: ignore[index]
    elif dtype.subdtype is not None:
        base, shape = dtype.subdtype
        h.write(b"[")
        _hash_dtype(h, base)
        h.value(shape)
    else:
        h.text(encoding.STR, dtype.str)  # e.g. "<i8", "<M8[ns]", "|O"


def hash_array(h: Hasher, array: npt.NDArray[Any]) -> None:
    """Hash an array's dtype, shape and values, whatever its strides."""
    _hash_dtype(h, array.dtype)
    h.write(encoding.length(array.ndim) + b"".join(encoding.length(n) for n in array.shape))
    if array.dtype.hasobject and array.dtype.names is None:
        _hash_objects(h, array)
    elif array.dtype.names is not None:
        for name in array.dtype.names:
            hash_array(h, array[name])
    else:
        h.write(_bytes_of(array))


def _bytes_of(array: npt.NDArray[Any]) -> memoryview:
    """Return the C-order bytes of ``array``, copying only if it is not C-contiguous."""
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    # A uint8 view exports a buffer for every dtype, datetime64 included.
    return array.reshape(-1).view(np.uint8).data


def _hash_objects(h: Hasher, array: npt.NDArray[Any]) -> None:
    key = h.enter(array)
    try:
        flat = array.ravel()
        if flat.size and set(map(type, flat)) == {str}:
            strings = _as_arrow_strings(flat)
            if strings is not None:
                h.write(b"os")
                string_streams(h, [strings], np.int64)
                return
        h.write(b"oe")
        for item in flat:
            h.value(item)
    finally:
        h.leave(key)


def _as_arrow_strings(flat: npt.NDArray[Any]) -> Any:
    """Return an object array of str as an Arrow large_string array, or None."""
    import pyarrow as pa  # a dependency of raycache, so every machine takes this path

    try:
        return pa.array(flat, type=pa.large_string())
    except (pa.ArrowException, UnicodeError):  # e.g. lone surrogates
        return None
