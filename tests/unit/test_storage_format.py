"""The storage file format and codecs: exact round trips of many dtypes, and zero-copy reads."""

from __future__ import annotations

import decimal
import mmap
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from raycache.core.storage import StorageTier, parse_storage
from raycache.core.storage.codecs import encode
from raycache.core.storage.format import (
    ALIGNMENT,
    FIXED_FIELDS,
    HEADER_SIZE,
    Encoding,
    FormatError,
    Header,
    pack_header,
    unpack_header,
)

DIGEST = bytes(range(16))
ROWS = 6

COLUMNS: dict[str, Any] = {
    "int8": np.arange(ROWS, dtype="int8"),
    "uint64": np.arange(ROWS, dtype="uint64"),
    "int64": np.arange(ROWS),
    "float32": np.linspace(0, 1, ROWS, dtype="float32"),
    "float16": np.linspace(0, 1, ROWS).astype("float16"),
    "bool": np.arange(ROWS) % 2 == 0,
    "datetime": pd.date_range("2024-01-01", periods=ROWS, freq="h"),
    "datetime_tz": pd.date_range("2024-01-01", periods=ROWS, freq="h", tz="Europe/Paris"),
    "datetime_s": pd.date_range("2024-01-01", periods=ROWS).astype("datetime64[s]"),
    "timedelta": pd.to_timedelta(np.arange(ROWS), unit="s"),
    "category": pd.Categorical(list("abcabc")),
    "ordered_category": pd.Categorical(list("abcabc"), categories=list("cba"), ordered=True),
    "str": pd.Series(list("abcdef"), dtype="str"),
    "string_pyarrow": pd.array(["a", "b", "c", "d", "e", None], dtype="string[pyarrow]"),
    "string_python": pd.array(["a", "b", "c", "d", "e", None], dtype="string[python]"),
    "object_str": pd.Series(list("abcdef"), dtype=object),
    "object_mixed": pd.Series([1, "a", 2.0, None, b"x", (1,)], dtype=object),
    "object_decimal": pd.Series([decimal.Decimal(i) for i in range(ROWS)], dtype=object),
    "Int64": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
    "boolean": pd.array([True, None, False, True, True, False], dtype="boolean"),
    "Float64": pd.array([1.5, None, 3, 4, 5, 6], dtype="Float64"),
    "int64_pyarrow": pd.array([1, 2, None, 4, 5, 6], dtype="int64[pyarrow]"),
    "period": pd.period_range("2024-01", periods=ROWS, freq="M"),
    "interval": pd.interval_range(0, ROWS),
    "complex": np.arange(ROWS) * 1j,
}

INDEXES: dict[str, pd.Index] = {
    "range": pd.RangeIndex(ROWS),
    "named_range": pd.RangeIndex(2, 2 + 2 * ROWS, 2, name="r"),
    "str": pd.Index(list("abcdef"), name="s"),
    "float": pd.Index(np.arange(ROWS) * 1.5),
    "multi": pd.MultiIndex.from_product([[1, 2], list("abc")], names=["n", "c"]),
    "datetime_freq": pd.date_range("2024", periods=ROWS, tz="UTC", name="day"),
    "datetime": pd.DatetimeIndex(pd.date_range("2024", periods=ROWS)._data, freq=None),
}


@pytest.fixture
def tier(tmp_path: Path) -> StorageTier:
    storage = parse_storage(tmp_path)
    assert storage is not None
    return StorageTier(storage, "format")


def round_trip(tier: StorageTier, value: object, **read: Any) -> Any:
    assert tier.write(DIGEST, value)
    stored = tier.read(DIGEST, **read)
    assert stored is not None
    return stored.value


@pytest.mark.parametrize("column", sorted(COLUMNS))
def test_every_dtype_round_trips_exactly(tier: StorageTier, column: str) -> None:
    frame = pd.DataFrame({column: COLUMNS[column], "n": np.arange(ROWS)})
    pd.testing.assert_frame_equal(round_trip(tier, frame), frame, check_exact=True)


def test_all_dtypes_together_round_trip_exactly(tier: StorageTier) -> None:
    frame = pd.DataFrame(COLUMNS)
    pd.testing.assert_frame_equal(round_trip(tier, frame), frame, check_exact=True)


@pytest.mark.parametrize("index", sorted(INDEXES))
def test_every_index_round_trips_exactly(tier: StorageTier, index: str) -> None:
    frame = pd.DataFrame({"v": np.arange(ROWS), "s": list("abcdef")}, index=INDEXES[index])
    pd.testing.assert_frame_equal(round_trip(tier, frame), frame, check_exact=True)


def test_column_names_of_other_types_and_levels_round_trip(tier: StorageTier) -> None:
    for columns in (pd.MultiIndex.from_tuples([("a", "b"), ("a", "c")]), pd.Index([1, 2])):
        frame = pd.DataFrame([[1, 2]], columns=columns)
        pd.testing.assert_frame_equal(round_trip(tier, frame), frame, check_exact=True)


@pytest.mark.parametrize(
    ("column", "encoding"),
    [("int64", Encoding.PANDAS), ("string_pyarrow", Encoding.PANDAS),
     ("object_str", Encoding.PICKLE), ("string_python", Encoding.PICKLE),
     ("complex", Encoding.PICKLE)],
)  # fmt: skip
def test_frames_arrow_holds_exactly_are_arrow_and_others_pickled(
    column: str, encoding: Encoding
) -> None:
    assert encode(pd.DataFrame({column: COLUMNS[column]})).encoding is encoding


def test_a_frame_comes_back_as_its_arrow_table_on_request(tier: StorageTier) -> None:
    frame = pd.DataFrame({"a": np.arange(ROWS), "t": pd.date_range("2024", periods=ROWS)})
    table = round_trip(tier, frame, arrow=True)
    assert isinstance(table, pa.Table)
    pd.testing.assert_frame_equal(table.to_pandas(), frame)


ARRAYS: dict[str, Any] = {
    "int64": np.arange(100),
    "float32_2d": np.arange(12, dtype="float32").reshape(3, 4),
    "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "strided": np.arange(40)[::3],
    "transposed_3d": np.arange(24).reshape(2, 3, 4).transpose(1, 0, 2),
    "scalar": np.array(3.5),
    "empty": np.zeros((0, 3)),
    "datetime": np.arange("2024-01", "2024-03", dtype="datetime64[D]"),
    "bytes": np.array([b"ab", b"c"]),
    "unicode": np.array(["ab", "cde"]),
    "structured": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", ">f8")]),
    "bool": np.array([True, False]),
    "complex": np.arange(3) * 1j,
    "object": np.array([1, "a", None], dtype=object),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_arrays_round_trip_with_dtype_shape_and_order(tier: StorageTier, name: str) -> None:
    array = ARRAYS[name]
    back = round_trip(tier, array)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert back.flags.f_contiguous == array.flags.f_contiguous or not array.flags.f_contiguous
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize(
    "value",
    [None, 0, "text", b"bytes", [1, (2, 3)], {"k": {1, 2}}, pa.array([1, 2]),
     pd.Series([1.0, 2.0], name="s"), np.ma.masked_array([1, 2], mask=[0, 1])],
)  # fmt: skip
def test_other_values_are_pickled_and_round_trip(tier: StorageTier, value: object) -> None:
    back = round_trip(tier, value)
    if isinstance(value, pd.Series):
        pd.testing.assert_series_equal(back, value)
    elif isinstance(value, np.ma.MaskedArray):
        assert back.mask.tolist() == value.mask.tolist()
        assert back.tolist() == value.tolist()
    elif isinstance(value, pa.Array):
        assert back.equals(value)
    else:
        assert back == value


def test_tables_round_trip_as_arrow(tier: StorageTier) -> None:
    table = pa.table({"a": [1, 2, None], "s": ["x", None, "z"], "l": [[1], [], None]})
    assert encode(table).encoding is Encoding.ARROW
    assert round_trip(tier, table).equals(table)


# ------------------------------------------------------------------------ zero copy


def reaches_mapping(obj: object) -> bool:
    """Whether the chain of bases of ``obj`` (numpy .base, memoryview .obj) ends in a mmap."""
    seen = 0
    while obj is not None and seen < 50:
        if isinstance(obj, mmap.mmap):
            return True
        obj = getattr(obj, "base", None) if not isinstance(obj, memoryview) else obj.obj
        seen += 1
    return False


def mapped_range(buffer: memoryview) -> range:
    start = pa.py_buffer(buffer).address
    return range(start, start + buffer.nbytes)


def arrow_addresses(table: pa.Table) -> Iterator[int]:
    for column in table.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None and buffer.size:
                    yield buffer.address


def test_a_numpy_array_is_a_view_of_the_mapped_file(tier: StorageTier) -> None:
    array = np.arange(1_000_000, dtype=np.float64)
    back = round_trip(tier, array)
    assert reaches_mapping(back)
    assert not back.flags.writeable
    assert back.ctypes.data % ALIGNMENT == 0


def test_pickled_buffers_are_views_of_the_mapped_file(tier: StorageTier) -> None:
    value = {"a": np.arange(100_000), "b": [np.ones(50_000, dtype=np.int32)]}
    back = round_trip(tier, value)
    for array in (back["a"], back["b"][0]):
        assert reaches_mapping(array)
        assert array.ctypes.data % ALIGNMENT == 0
    np.testing.assert_array_equal(back["a"], value["a"])


def test_arrow_buffers_lie_inside_the_mapped_region(tier: StorageTier) -> None:
    table = pa.table({"n": np.arange(100_000), "s": [str(i) for i in range(100_000)]})
    assert tier.write(DIGEST, table)
    stored = tier.read(DIGEST)
    assert stored is not None
    assert isinstance(stored.buffer.obj, mmap.mmap)
    region = mapped_range(stored.buffer)
    addresses = list(arrow_addresses(stored.value))
    assert addresses and all(address in region for address in addresses)


def test_numeric_columns_of_a_frame_are_views_of_the_mapped_file(tier: StorageTier) -> None:
    frame = pd.DataFrame({"n": np.arange(100_000), "x": np.random.default_rng(0).random(100_000)})
    assert tier.write(DIGEST, frame)
    stored = tier.read(DIGEST)
    assert stored is not None
    region = mapped_range(stored.buffer)
    for column in ("n", "x"):
        assert stored.value[column].to_numpy().ctypes.data in region


# --------------------------------------------------------------------------- header


def header(**changes: Any) -> Header:
    fields: dict[str, Any] = dict(
        digest=DIGEST, encoding=Encoding.NUMPY, expires_at=12.5, tags=("a", "é"), size=10,
        cost=0.25, segments=((0, 128), (128, 1000)),
    )  # fmt: skip
    fields.update(changes)
    return Header(**fields)


def test_a_header_packs_and_unpacks_with_every_field() -> None:
    packed = pack_header(header(), payload_checksum=99)
    assert len(packed) % ALIGNMENT == 0
    parsed = unpack_header(packed)
    assert parsed[:4] == (header(), len(packed), 1128, 99)
    assert (parsed.signed, parsed.mac) == (False, bytes(32))
    assert (
        unpack_header(pack_header(header(expires_at=None), payload_checksum=1))[0].expires_at
        is None
    )


def test_the_fixed_header_is_small_and_named() -> None:
    assert HEADER_SIZE <= 128
    assert [name for name, _ in FIXED_FIELDS][:2] == ["magic", "version"]


def field_offset(name: str) -> int:
    codes = [code for field, code in FIXED_FIELDS[: [n for n, _ in FIXED_FIELDS].index(name)]]
    return struct.calcsize("<" + "".join(codes))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:40], "truncated"),
        (lambda b: b"GARBAGE!" + b[8:], "not a raycache"),
        (lambda b: b[:8] + struct.pack("<H", 3) + b[10:], "version 3"),
        (lambda b: b[: field_offset("size")] + b"\x01" + b[field_offset("size") + 1 :], "checksum"),
    ],
)
def test_a_damaged_header_raises_format_error(mutate: Any, message: str) -> None:
    packed = pack_header(header(), payload_checksum=5)
    with pytest.raises(FormatError, match=message):
        unpack_header(mutate(packed))
