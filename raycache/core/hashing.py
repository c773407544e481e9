"""Content hashing of argument values, for memoization keys.

:func:`hash_value` returns a 16-byte xxh3-128 digest of a canonical, type-tagged
encoding of a value. Equal values of the same type hash equal in every process and on
every machine; values that Python conflates (``1``, ``1.0``, ``True``) or that only look
alike (a list and a tuple) hash differently, because a memoizer must never serve a result
computed for different arguments. Dicts and sets hash regardless of their order.

Large buffers (numpy arrays, pandas columns, Arrow arrays) are streamed into the hash
through memoryviews, so they are never copied on the fast path. What is hashed is the
logical content: a strided numpy view hashes like its contiguous copy, an Arrow slice
hashes its own values only, and chunk boundaries do not count.

Values with no canonical content (open files, locks, arbitrary objects) raise
:class:`~raycache.errors.UnhashableValueError`; pickling them would not give stable keys.

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

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import functools
import pathlib
import struct
import sys
import types
import uuid
import zoneinfo
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import xxhash

from raycache.errors import UnhashableValueError

DIGEST_SIZE = 16
"""Length in bytes of a value digest."""

# Every encoding starts with a tag naming its kind of value, and no tag is a prefix of
# another's encoding; variable-length payloads carry their length and containers their
# item count. So an encoding can be read back only one way: no two values share one.
_LENGTH = struct.Struct(">Q")
_SIGNED = struct.Struct(">q")
_FLOAT = struct.Struct(">d")
_COMPLEX = struct.Struct(">dd")
_DATETIME = struct.Struct(">iBBBBBIB")  # year, month, day, h, m, s, microsecond, fold
_TIME = struct.Struct(">BBBIB")  # h, m, s, microsecond, fold
_TIMEDELTA = struct.Struct(">qII")  # days, seconds, microseconds

# Callables hash by fingerprint; these are the types raycache.core.fingerprint accepts.
_CALLABLE_TYPES = (
    types.FunctionType,
    types.MethodType,
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
    functools.partial,
    np.ufunc,
)


def hash_value(value: object) -> bytes:
    """Return the 16-byte content digest of ``value``.

    Raises :class:`~raycache.errors.UnhashableValueError` (a :class:`TypeError`) naming
    the type of the first part of ``value`` that has no canonical content, or if
    ``value`` contains itself.

    >>> hash_value(("a", None)).hex() == hash_value(("a", None)).hex()
    True
    >>> hash_value(frozenset({1, 2})) == hash_value(frozenset({2, 1}))
    True
    """
    hasher = _Hasher()
    hasher.value(value)
    return hasher.digest()


class _Hasher:
    """A running xxh3-128 state, plus the containers open on the way down."""

    __slots__ = ("_open", "_state")

    def __init__(self) -> None:
        self._state = xxhash.xxh3_128()
        # id() of every container being hashed: seeing one again means a cycle. Ids
        # only guard the walk; they never reach the digest.
        self._open: set[int] = set()

    def digest(self) -> bytes:
        return self._state.digest()

    def write(self, data: bytes | memoryview) -> None:
        self._state.update(data)

    def sized(self, tag: bytes, payload: bytes) -> None:
        self._state.update(tag + _LENGTH.pack(len(payload)))
        self._state.update(payload)

    def text(self, tag: bytes, text: str) -> None:
        self.sized(tag, text.encode("utf-8", "surrogatepass"))

    def value(self, value: object) -> None:
        handler = _EXACT.get(type(value))
        if handler is None:
            _hash_other(self, value)
        else:
            handler(self, value)

    def sub_digest(self, value: object) -> bytes:
        """Return the digest of ``value`` alone, sharing this walk's cycle guard."""
        outer = self._state
        self._state = xxhash.xxh3_128()
        try:
            self.value(value)
            return self._state.digest()
        finally:
            self._state = outer

    def enter(self, container: object) -> int:
        key = id(container)
        if key in self._open:
            kind = _type_name(container)
            raise UnhashableValueError(f"cannot hash a {kind} that contains itself")
        self._open.add(key)
        return key

    def leave(self, key: int) -> None:
        self._open.discard(key)


# ---------------------------------------------------------------------------- builtins


def _hash_none(h: _Hasher, value: None) -> None:
    h.write(b"N")


def _hash_ellipsis(h: _Hasher, value: object) -> None:
    h.write(b"E")


def _hash_bool(h: _Hasher, value: bool) -> None:
    h.write(b"?1" if value else b"?0")


def _hash_int(h: _Hasher, value: int) -> None:
    h.sized(b"i", value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True))


def _hash_float(h: _Hasher, value: float) -> None:
    # The raw IEEE bits: 0.0 and -0.0 differ, as they may lead to different results.
    h.write(b"f" + _FLOAT.pack(value))


def _hash_complex(h: _Hasher, value: complex) -> None:
    h.write(b"c" + _COMPLEX.pack(value.real, value.imag))


def _hash_str(h: _Hasher, value: str) -> None:
    h.text(b"s", value)


def _hash_bytes(h: _Hasher, value: bytes) -> None:
    h.sized(b"b", value)


def _hash_bytearray(h: _Hasher, value: bytearray) -> None:
    h.write(b"B" + _LENGTH.pack(len(value)))
    h.write(memoryview(value))


def _hash_items(h: _Hasher, tag: bytes, items: Sequence[Any] | Any) -> None:
    key = h.enter(items)
    try:
        h.write(tag + _LENGTH.pack(len(items)))
        for item in items:
            h.value(item)
    finally:
        h.leave(key)


def _hash_tuple(h: _Hasher, value: tuple[Any, ...]) -> None:
    _hash_items(h, b"T", value)


def _hash_list(h: _Hasher, value: list[Any]) -> None:
    _hash_items(h, b"L", value)


def _hash_deque(h: _Hasher, value: collections.deque[Any]) -> None:
    h.write(b"Q")
    h.value(value.maxlen)
    _hash_items(h, b"L", value)


def _hash_unordered(h: _Hasher, tag: bytes, value: Any, entries: Callable[[], list[bytes]]) -> None:
    # Equal dicts and sets may iterate in different orders, so each entry is hashed on
    # its own and the entry digests are fed in sorted order.
    key = h.enter(value)
    try:
        digests = sorted(entries())
    finally:
        h.leave(key)
    h.write(tag + _LENGTH.pack(len(digests)))
    h.write(b"".join(digests))


def _hash_dict(h: _Hasher, value: dict[Any, Any], tag: bytes = b"D") -> None:
    # Each entry is its key digest then its value digest, so sorting orders by key.
    _hash_unordered(
        h, tag, value, lambda: [h.sub_digest(k) + h.sub_digest(v) for k, v in value.items()]
    )


def _hash_ordered_dict(h: _Hasher, value: collections.OrderedDict[Any, Any]) -> None:
    # OrderedDicts compare by order, so their order is part of the hash.
    key = h.enter(value)
    try:
        h.write(b"O" + _LENGTH.pack(len(value)))
        for k, v in value.items():
            h.value(k)
            h.value(v)
    finally:
        h.leave(key)


def _hash_defaultdict(h: _Hasher, value: collections.defaultdict[Any, Any]) -> None:
    h.write(b"d")
    h.value(value.default_factory)
    _hash_dict(h, value)


def _hash_counter(h: _Hasher, value: collections.Counter[Any]) -> None:
    _hash_dict(h, value, b"C")


def _hash_set(h: _Hasher, value: set[Any] | frozenset[Any]) -> None:
    tag = b"S" if type(value) is set else b"F"
    _hash_unordered(h, tag, value, lambda: [h.sub_digest(item) for item in value])


def _hash_range(h: _Hasher, value: range) -> None:
    # Ranges equal as sequences hash equal: range(0) == range(5, 5), range(0, 3, 5) == range(1).
    h.write(b"R")
    h.value(len(value))
    if value:
        h.value(value[0])
    if len(value) > 1:
        h.value(value.step)


def _hash_slice(h: _Hasher, value: slice) -> None:
    h.write(b":")
    h.value(value.start)
    h.value(value.stop)
    h.value(value.step)


# ------------------------------------------------------------------ standard library


def _hash_datetime(h: _Hasher, value: dt.datetime) -> None:
    h.write(
        b"t"
        + _DATETIME.pack(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.fold,
        )
    )
    _hash_tz(h, value.tzinfo)


def _hash_date(h: _Hasher, value: dt.date) -> None:
    h.write(b"A" + _LENGTH.pack(value.toordinal()))


def _hash_time(h: _Hasher, value: dt.time) -> None:
    h.write(
        b"h" + _TIME.pack(value.hour, value.minute, value.second, value.microsecond, value.fold)
    )
    _hash_tz(h, value.tzinfo)


def _hash_timedelta(h: _Hasher, value: dt.timedelta) -> None:
    h.write(b"e" + _TIMEDELTA.pack(value.days, value.seconds, value.microseconds))


def _hash_tz(h: _Hasher, tz: dt.tzinfo | None) -> None:
    # An aware datetime hashes its zone, not just its offset: zones differ in DST rules.
    if tz is None:
        h.write(b"N")
    elif isinstance(tz, dt.timezone):
        offset = tz.utcoffset(None)
        h.write(b"z" + _TIMEDELTA.pack(offset.days, offset.seconds, offset.microseconds))
        h.text(b"s", tz.tzname(None))
    elif isinstance(tz, zoneinfo.ZoneInfo) and tz.key is not None:
        h.text(b"Z", tz.key)
    else:
        raise UnhashableValueError(
            f"{_type_name(tz)} time zones cannot be hashed; "
            "use datetime.timezone or zoneinfo.ZoneInfo"
        )


def _hash_decimal(h: _Hasher, value: decimal.Decimal) -> None:
    # str keeps the exponent, so Decimal("1.0") and Decimal("1.00") stay apart.
    h.text(b"m", str(value))


def _hash_uuid(h: _Hasher, value: uuid.UUID) -> None:
    h.write(b"u" + value.bytes)


_EXACT: dict[type, Callable[[_Hasher, Any], None]] = {
    type(None): _hash_none,
    type(Ellipsis): _hash_ellipsis,
    bool: _hash_bool,
    int: _hash_int,
    float: _hash_float,
    complex: _hash_complex,
    str: _hash_str,
    bytes: _hash_bytes,
    bytearray: _hash_bytearray,
    tuple: _hash_tuple,
    list: _hash_list,
    dict: _hash_dict,
    set: _hash_set,
    frozenset: _hash_set,
    collections.OrderedDict: _hash_ordered_dict,
    collections.defaultdict: _hash_defaultdict,
    collections.Counter: _hash_counter,
    collections.deque: _hash_deque,
    range: _hash_range,
    slice: _hash_slice,
    dt.datetime: _hash_datetime,
    dt.date: _hash_date,
    dt.time: _hash_time,
    dt.timedelta: _hash_timedelta,
    decimal.Decimal: _hash_decimal,
    uuid.UUID: _hash_uuid,
}


def _hash_other(h: _Hasher, value: object) -> None:
    # Types tested by isinstance, in an order where subclasses come first (a numpy
    # float64 is a float, a pandas Timestamp a datetime, an IntEnum an int).
    if isinstance(value, (np.ndarray, np.generic, np.dtype)):
        _hash_numpy(h, value)
        return
    # pandas and pyarrow objects can only exist once their module is imported. A plain
    # lookup suffices here: hashing runs per value, in callers, which never import these
    # libraries on a second thread as shards do.
    pandas = sys.modules.get("pandas")
    if pandas is not None and _hash_pandas(h, value, pandas):
        return
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and _hash_arrow(h, value, pyarrow):
        return
    if isinstance(value, enum.Enum):
        h.write(b"&")
        _hash_type(h, type(value))
        # Flag combinations have no name before Python 3.11; their value identifies them.
        h.value(value.name if value.name is not None else value.value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        _hash_record(h, value, [(f.name, getattr(value, f.name)) for f in fields])
    elif isinstance(value, tuple) and isinstance(getattr(type(value), "_fields", None), tuple):
        names = type(value)._fields  # type: ignore[attr-defined]
        _hash_record(h, value, list(zip(names, value, strict=True)))
    elif isinstance(value, _CALLABLE_TYPES) or _is_cython_function(value):
        from raycache.core.fingerprint import function_fingerprint  # fingerprint imports us

        h.write(b"#" + function_fingerprint(value))  # type: ignore[arg-type]
    elif isinstance(value, types.ModuleType):
        h.text(b"M", value.__name__)
    elif isinstance(value, type):
        _hash_type(h, value)
    elif isinstance(value, pathlib.PurePath):
        h.write(b"/")
        _hash_type(h, type(value))
        h.text(b"s", str(value))
    elif isinstance(value, dt.tzinfo):
        h.write(b"zone")
        _hash_tz(h, value)
    elif _is_actor_handle(value):
        # An actor is an identity, not a value: key by which actor it is.
        h.text(b"actor", value._actor_id.hex())  # type: ignore[attr-defined]
    else:
        raise UnhashableValueError(f"{_type_name(value)} objects cannot be hashed")


def _is_actor_handle(value: object) -> bool:
    # Ray is looked up, not imported: the pure core hashes without it.
    actor: Any = getattr(sys.modules.get("ray"), "actor", None)
    return actor is not None and isinstance(value, actor.ActorHandle)


def _is_cython_function(value: object) -> bool:
    return type(value).__name__ in ("cython_function_or_method", "fused_cython_function")


def _hash_type(h: _Hasher, cls: type) -> None:
    h.text(b"y", f"{cls.__module__}.{cls.__qualname__}")


def _hash_record(h: _Hasher, value: object, fields: list[tuple[str, Any]]) -> None:
    """Hash a dataclass instance or named tuple: its type, then its named fields."""
    key = h.enter(value)
    try:
        h.write(b"@")
        _hash_type(h, type(value))
        h.write(_LENGTH.pack(len(fields)))
        for name, item in fields:
            h.text(b"s", name)
            h.value(item)
    finally:
        h.leave(key)


def _type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


# ------------------------------------------------------------------------------- numpy


def _hash_numpy(h: _Hasher, value: np.ndarray[Any, Any] | np.generic | np.dtype[Any]) -> None:
    if isinstance(value, np.dtype):
        h.write(b"nd")
        _hash_dtype(h, value)
    elif isinstance(value, np.generic):
        h.write(b"ns")
        _hash_array(h, np.asarray(value))
    else:
        if isinstance(value, np.ma.MaskedArray):
            raise UnhashableValueError("numpy masked arrays cannot be hashed")
        h.write(b"na")
        # A subclass may change what operations mean (np.matrix), so it is part of the
        # hash; a memmap is only where the values live.
        if type(value) is not np.ndarray and not isinstance(value, np.memmap):
            _hash_type(h, type(value))
        _hash_array(h, value)


def _hash_dtype(h: _Hasher, dtype: np.dtype[Any]) -> None:
    if dtype.names is not None:
        # Structured: names and field types, never padding or offsets.
        h.write(b"{" + _LENGTH.pack(len(dtype.names)))
        for name in dtype.names:
            h.text(b"s", name)
            _hash_dtype(h, dtype.fields[name][0])  # type: ignore[index]
    elif dtype.subdtype is not None:
        base, shape = dtype.subdtype
        h.write(b"[")
        _hash_dtype(h, base)
        h.value(shape)
    else:
        h.text(b"s", dtype.str)  # e.g. "<i8", "<M8[ns]", "|O"


def _hash_array(h: _Hasher, array: npt.NDArray[Any]) -> None:
    """Hash an array's dtype, shape and values, whatever its strides."""
    _hash_dtype(h, array.dtype)
    h.write(_LENGTH.pack(array.ndim) + b"".join(_LENGTH.pack(n) for n in array.shape))
    if array.dtype.hasobject and array.dtype.names is None:
        _hash_objects(h, array)
    elif array.dtype.names is not None:
        for name in array.dtype.names:
            _hash_array(h, array[name])
    else:
        h.write(_bytes_of(array))


def _bytes_of(array: npt.NDArray[Any]) -> memoryview:
    """Return the C-order bytes of ``array``, copying only if it is not C-contiguous."""
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    # A uint8 view exports a buffer for every dtype, datetime64 included.
    return array.reshape(-1).view(np.uint8).data


def _hash_objects(h: _Hasher, array: npt.NDArray[Any]) -> None:
    key = h.enter(array)
    try:
        flat = array.ravel()
        if flat.size and set(map(type, flat)) == {str}:
            strings = _as_arrow_strings(flat)
            if strings is not None:
                h.write(b"os")
                _arrow_string_streams(h, [strings], np.int64)
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


# ------------------------------------------------------------------------------ pandas


def _hash_pandas(h: _Hasher, value: object, pd: Any) -> bool:
    """Hash ``value`` if it is a pandas object and return whether it was one."""
    if isinstance(value, pd.DataFrame):
        key = h.enter(value)
        try:
            _hash_frame(h, value, pd)
        finally:
            h.leave(key)
    elif isinstance(value, pd.Series):
        key = h.enter(value)
        try:
            h.write(b"pS" + _LENGTH.pack(len(value)))
            h.value(value.name)
            _hash_index(h, value.index, pd)
            _hash_column(h, value, pd)
        finally:
            h.leave(key)
    elif isinstance(value, pd.Index):
        _hash_index(h, value, pd)
    elif value is pd.NaT:
        h.write(b"pT")
    elif value is pd.NA:
        h.write(b"pA")
    elif isinstance(value, (pd.Timestamp, pd.Timedelta)):
        # asm8 is the value as a numpy scalar in the object's own unit.
        h.write(b"pt" if isinstance(value, pd.Timestamp) else b"pd")
        _hash_array(h, np.asarray(value.asm8))
        _hash_tz(h, getattr(value, "tzinfo", None))
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


def _hash_frame(h: _Hasher, frame: Any, pd: Any) -> None:
    rows, columns = frame.shape
    h.write(b"pF" + _LENGTH.pack(rows) + _LENGTH.pack(columns))
    # Column labels hash as values, not as an Index: the same names in an object or a
    # str Index are the same columns.
    h.value(frame.columns.tolist())
    h.value(list(frame.columns.names))
    _hash_index(h, frame.index, pd)
    # Column by column, so the block layout (consolidation, C or F order) cannot show.
    for _, column in frame.items():
        _hash_column(h, column, pd)


def _hash_index(h: _Hasher, index: Any, pd: Any) -> None:
    if isinstance(index, pd.RangeIndex):
        # Hashed as a range: a RangeIndex of a billion rows costs nothing.
        h.write(b"pR")
        h.value(index.name)
        _hash_range(h, range(index.start, index.stop, index.step))
    elif isinstance(index, pd.MultiIndex):
        # Level values, not levels and codes: equal MultiIndexes may keep unused levels.
        h.write(b"pM" + _LENGTH.pack(len(index)) + _LENGTH.pack(index.nlevels))
        h.value(list(index.names))
        for level in range(index.nlevels):
            _hash_column(h, index.get_level_values(level), pd)
    else:
        h.write(b"pI" + _LENGTH.pack(len(index)))
        h.value(index.name)
        # freq changes what shifting a DatetimeIndex means, so it is part of the index.
        freq = getattr(index, "freq", None)
        h.value(None if freq is None else freq.freqstr)
        _hash_column(h, index, pd)


def _hash_column(h: _Hasher, column: Any, pd: Any) -> None:
    """Hash the dtype and values of a Series or an Index, on the fastest exact path."""
    dtype = column.dtype
    h.text(b"pD", str(dtype))
    if isinstance(dtype, np.dtype):
        # Numeric, bool, datetime64 and object columns are numpy arrays, hashed in place.
        _hash_array(h, column.to_numpy(copy=False))
        return
    values = column.array
    if isinstance(dtype, pd.CategoricalDtype):
        h.value(dtype.ordered)
        _hash_index(h, dtype.categories, pd)
        _hash_array(h, np.asarray(values.codes))
    elif isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype)):
        _hash_array(h, values.asi8)  # the int64 values, zone and unit being in the dtype
    elif hasattr(values, "__arrow_array__"):
        # Arrow-backed (the pandas 3 str dtype, ArrowDtype) hand over their own arrays;
        # masked ones (Int64, boolean) convert, sharing the data buffer.
        arrow = values.__arrow_array__()
        chunks = arrow.chunks if hasattr(arrow, "chunks") else [arrow]
        _hash_arrow_values(h, arrow.type, chunks)
    else:
        _hash_array(h, values.to_numpy(dtype=object))


# ----------------------------------------------------------------------------- pyarrow


def _hash_arrow(h: _Hasher, value: object, pa: Any) -> bool:
    """Hash ``value`` if it is a pyarrow object and return whether it was one."""
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        h.write(b"aT" if isinstance(value, pa.Table) else b"aB")
        h.write(_LENGTH.pack(value.num_rows))
        _hash_schema(h, value.schema)
        for column in value.columns:
            chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
            _hash_arrow_values(h, column.type, chunks)
    elif isinstance(value, pa.ChunkedArray):
        h.write(b"aC")
        _hash_arrow_values(h, value.type, value.chunks)
    elif isinstance(value, pa.Array):
        h.write(b"aA")
        _hash_arrow_values(h, value.type, [value])
    elif isinstance(value, pa.Scalar):
        h.write(b"aS")
        _hash_arrow_values(h, value.type, [pa.repeat(value, 1)])
    elif isinstance(value, pa.Schema):
        _hash_schema(h, value)
    elif isinstance(value, pa.DataType):
        h.text(b"aY", str(value))
    else:
        return False
    return True


def _hash_schema(h: _Hasher, schema: Any) -> None:
    # Names, types and nullability; not metadata, which differs with how a table was made.
    h.write(b"aF" + _LENGTH.pack(len(schema)))
    for field in schema:
        h.text(b"s", field.name)
        h.text(b"s", str(field.type))
        h.write(b"?1" if field.nullable else b"?0")


def _hash_arrow_values(h: _Hasher, dtype: Any, chunks: Sequence[Any]) -> None:
    """Hash the logical values of ``chunks`` of type ``dtype`` as one array.

    The encoding depends only on the values: not on chunk boundaries, slice offsets, or
    whatever else the underlying buffers hold.
    """
    import pyarrow as pa

    h.text(b"aY", str(dtype))
    h.write(_LENGTH.pack(sum(len(chunk) for chunk in chunks)))
    types_ = pa.types
    if types_.is_dictionary(dtype):
        # Decoded: a slice keeps its parent's whole dictionary, and chunks may differ.
        dtype = dtype.value_type
        chunks = [chunk.dictionary_decode() for chunk in chunks]
    if types_.is_run_end_encoded(dtype):
        # Decoded: the same values split into chunks would end their runs elsewhere.
        import pyarrow.compute as pc

        dtype = dtype.value_type
        chunks = [pc.run_end_decode(chunk) for chunk in chunks]
    if isinstance(dtype, pa.ExtensionType):
        dtype = dtype.storage_type
        chunks = [chunk.storage for chunk in chunks]
    if types_.is_string_view(dtype) or types_.is_binary_view(dtype):
        # View arrays point into shared buffers; as large arrays they hold their own values.
        dtype = pa.large_string() if types_.is_string_view(dtype) else pa.large_binary()
        chunks = [chunk.cast(dtype) for chunk in chunks]
    if types_.is_null(dtype):
        return
    if types_.is_string(dtype) or types_.is_binary(dtype):
        _arrow_string_streams(h, chunks, np.int32)
    elif types_.is_large_string(dtype) or types_.is_large_binary(dtype):
        _arrow_string_streams(h, chunks, np.int64)
    elif types_.is_boolean(dtype):
        _arrow_fixed_streams(h, chunks, 0)
    elif _byte_width(dtype):
        _arrow_fixed_streams(h, chunks, _byte_width(dtype))
    else:
        _arrow_ipc(h, dtype, chunks)


def _byte_width(dtype: Any) -> int:
    try:
        bits: int = dtype.bit_width
    except ValueError:  # nested and variable-width types
        return 0
    return bits // 8 if bits % 8 == 0 else 0


def _arrow_fixed_streams(h: _Hasher, chunks: Sequence[Any], width: int) -> None:
    """Hash fixed-width values (booleans if ``width`` is 0) and their null positions."""
    nulls, data = xxhash.xxh3_128(), xxhash.xxh3_128()
    start = 0
    for chunk in chunks:
        n, offset, buffers = len(chunk), chunk.offset, chunk.buffers()
        if chunk.null_count:
            nulls.update(_null_positions(buffers[0], offset, n, start))
        if n and width:
            raw = np.frombuffer(buffers[1], dtype=np.uint8)
            data.update(raw[offset * width : (offset + n) * width].data)
        elif n:
            data.update(_bits(buffers[1], offset, n).data)
        start += n
    h.write(nulls.digest() + data.digest())


def _arrow_string_streams(h: _Hasher, chunks: Sequence[Any], offset_type: type) -> None:
    """Hash strings or binaries: null positions, end offsets from 0, and the bytes."""
    nulls, ends, data = xxhash.xxh3_128(), xxhash.xxh3_128(), xxhash.xxh3_128()
    start = total = 0
    for chunk in chunks:
        n, offset, buffers = len(chunk), chunk.offset, chunk.buffers()
        if chunk.null_count:
            nulls.update(_null_positions(buffers[0], offset, n, start))
        if n:
            offsets: npt.NDArray[Any] = np.frombuffer(buffers[1], dtype=offset_type)[
                offset : offset + n + 1
            ]
            first, last = int(offsets[0]), int(offsets[-1])
            if offset_type is np.int64 and first == 0 and total == 0:
                ends.update(offsets[1:].view(np.uint8).data)  # the common case: as is
            else:
                rebased = offsets[1:].astype(np.int64) + (total - first)
                ends.update(rebased.view(np.uint8).data)
            if last > first:
                data.update(np.frombuffer(buffers[2], dtype=np.uint8)[first:last].data)
            total += last - first
        start += n
    h.write(nulls.digest() + ends.digest() + data.digest())


def _bits(buffer: Any, offset: int, n: int) -> npt.NDArray[np.uint8]:
    """Return bits ``offset`` to ``offset + n`` of an Arrow bitmap, one byte each."""
    raw = np.frombuffer(buffer, dtype=np.uint8)[offset // 8 : (offset + n + 7) // 8]
    return np.unpackbits(raw, bitorder="little")[offset % 8 : offset % 8 + n]


def _null_positions(bitmap: Any, offset: int, n: int, start: int) -> memoryview:
    # Positions in the whole array, so where chunks begin does not show.
    positions = np.flatnonzero(_bits(bitmap, offset, n) == 0).astype(np.int64) + start
    return positions.view(np.uint8).data


def _arrow_ipc(h: _Hasher, dtype: Any, chunks: Sequence[Any]) -> None:
    """Hash nested and other types by their Arrow IPC stream, after a normalising copy."""
    import pyarrow as pa

    if not chunks:
        return
    # Concatenating gives one array with buffers of its own, laid out alike however it
    # was built: no slice offset, no parent's values, no chunk boundaries. Nested values
    # are rare in arguments; the copy is fine.
    batch = pa.record_batch([pa.concat_arrays(chunks)], names=["v"])
    sink = pa.BufferOutputStream()
    # A whole stream, not the bare batch: dictionaries inside nested values travel in
    # their own messages.
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    h.write(memoryview(sink.getvalue()))
