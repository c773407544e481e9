"""Tests of raycache.core.hashing: equal values hash equal, anything else hashes apart."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import decimal
import enum
import math
import os
import pathlib
import struct
import subprocess
import sys
import threading
import uuid
import zoneinfo
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from raycache.core.hashing import DIGEST_SIZE, hash_value
from raycache.errors import RaycacheError, UnhashableValueError

# ------------------------------------------------------------------- builtin values

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.complex_numbers(),
    st.text(), st.binary(), st.binary().map(bytearray),
)  # fmt: skip
hashable_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.binary())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashable_scalars, inner, max_size=4),
        st.frozensets(hashable_scalars, max_size=4),
        st.sets(hashable_scalars, max_size=4),
    ),
    max_leaves=12,
)


def canonical(value: object) -> object:
    """A structure that is equal exactly when two values must hash equal."""
    kind = type(value).__name__
    if isinstance(value, float):
        return kind, struct.pack(">d", value)
    if isinstance(value, complex):
        return kind, struct.pack(">dd", value.real, value.imag)
    if isinstance(value, (list, tuple)):
        return kind, tuple(canonical(item) for item in value)
    if isinstance(value, dict):
        return kind, sorted(repr((canonical(k), canonical(v))) for k, v in value.items())
    if isinstance(value, (set, frozenset)):
        return kind, sorted(repr(canonical(item)) for item in value)
    return kind, repr(value)


@given(values)
def test_digest_is_deterministic_and_sized(value: object) -> None:
    assert hash_value(value) == hash_value(value)
    assert len(hash_value(value)) == DIGEST_SIZE


@given(values, values)
def test_digests_are_equal_exactly_for_equal_typed_values(a: object, b: object) -> None:
    assert (hash_value(a) == hash_value(b)) == (canonical(a) == canonical(b))


@given(st.dictionaries(st.text(), values, max_size=6))
def test_dict_order_does_not_matter(mapping: dict[str, Any]) -> None:
    reordered = dict(reversed(list(mapping.items())))
    assert hash_value(reordered) == hash_value(mapping)


@given(st.lists(st.integers(), unique=True, max_size=10), st.randoms())
def test_set_order_does_not_matter(items: list[int], rnd: Any) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert hash_value(set(items)) == hash_value(set(shuffled))
    assert hash_value(frozenset(items)) == hash_value(frozenset(shuffled))


@given(st.lists(values, max_size=5))
def test_list_and_tuple_differ(items: list[Any]) -> None:
    assert hash_value(items) != hash_value(tuple(items))


CONFLATED = [
    1, 1.0, True, "1", b"1", bytearray(b"1"), (1,), [1], {1}, frozenset({1}), {1: None},
    0, 0.0, -0.0, False, None, (), [], {}, "", b"", 1 + 0j, np.int64(1), np.float64(1.0),
    np.array(1), np.array([1]), decimal.Decimal(1), ((1, 2),), ((1,), (2,)), ("ab",),
    ("a", "b"), range(1), range(2), slice(1), ..., collections.OrderedDict({1: None}),
    collections.Counter({1: 1}), collections.deque([1]), dt.date(2020, 1, 1),
    dt.datetime(2020, 1, 1), dt.timedelta(1), pathlib.PurePosixPath("1"),
]  # fmt: skip


def test_values_that_python_conflates_stay_apart() -> None:
    digests = [hash_value(value) for value in CONFLATED]
    assert len(set(digests)) == len(CONFLATED)


def test_sequence_like_values_hash_by_their_content() -> None:
    assert hash_value(range(0)) == hash_value(range(5, 5))
    assert hash_value(range(0, 3, 5)) == hash_value(range(1))
    assert hash_value(range(3)) != hash_value(range(0, 6, 2))
    assert hash_value(collections.OrderedDict(a=1, b=2)) != hash_value(
        collections.OrderedDict(b=2, a=1)
    )
    assert hash_value(collections.deque([1], maxlen=2)) != hash_value(collections.deque([1]))
    assert hash_value(collections.defaultdict(list, a=[1])) == hash_value(
        collections.defaultdict(list, a=[1])
    )
    assert hash_value(collections.defaultdict(list)) != hash_value(collections.defaultdict(set))


def test_shared_references_are_not_cycles() -> None:
    shared = [1, 2]
    assert hash_value((shared, shared)) == hash_value(([1, 2], [1, 2]))
    assert hash_value({"a": shared, "b": shared}) == hash_value({"a": [1, 2], "b": [1, 2]})


@pytest.mark.parametrize("make", ["list", "dict", "nested", "dataclass"])
def test_cycles_raise(make: str) -> None:
    cyclic: Any
    if make == "list":
        cyclic = [1]
        cyclic.append(cyclic)
    elif make == "dict":
        cyclic = {}
        cyclic["self"] = cyclic
    elif make == "nested":
        inner: list[Any] = []
        cyclic = (inner,)
        inner.append({"back": cyclic})
    else:
        cyclic = Node(1, [])
        cyclic.children.append(cyclic)
    with pytest.raises(UnhashableValueError, match="contains itself"):
        hash_value(cyclic)


# ----------------------------------------------------------- standard library values


class Colour(enum.Enum):
    RED = 1
    GREEN = 2


class Shade(enum.IntEnum):
    RED = 1


class Point(NamedTuple):
    x: int
    y: int


class Pair(NamedTuple):
    x: int
    y: int


@dataclasses.dataclass
class Node:
    value: int
    children: list[Any]


@dataclasses.dataclass(frozen=True)
class Leaf:
    value: int
    children: list[Any]


def test_records_hash_their_type_and_fields() -> None:
    assert hash_value(Node(1, [Node(2, [])])) == hash_value(Node(1, [Node(2, [])]))
    assert hash_value(Node(1, [])) != hash_value(Node(2, []))
    assert hash_value(Node(1, [])) != hash_value(Leaf(1, []))
    assert hash_value(Point(1, 2)) == hash_value(Point(1, 2))
    assert len({hash_value(v) for v in (Point(1, 2), Pair(1, 2), (1, 2), Point(2, 1))}) == 4


def test_enum_members_hash_by_class_and_name() -> None:
    assert hash_value(Colour.RED) == hash_value(Colour(1))
    assert len({hash_value(v) for v in (Colour.RED, Colour.GREEN, Shade.RED, 1)}) == 4


def test_an_encoding_reads_back_one_way_only() -> None:
    # An enum member must not encode as its class followed by its name, or items could
    # slide between containers: these two lists would collide.
    assert hash_value([(Colour.RED, "x"), Shade, "RED"]) != hash_value(
        [(Colour, "RED"), "x", Shade.RED]
    )
    assert hash_value([(Node(1, []),), "x"]) != hash_value([(Node, 1), "x"])
    assert hash_value([collections.deque([1]), None]) != hash_value([None, collections.deque([1])])


def test_time_values() -> None:
    naive = dt.datetime(2024, 3, 31, 1, 30)
    utc = naive.replace(tzinfo=dt.timezone.utc)
    paris = naive.replace(tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    fixed = naive.replace(tzinfo=dt.timezone(dt.timedelta(hours=1)))
    later = naive.replace(fold=1)
    digests = {hash_value(v) for v in (naive, utc, paris, fixed, later, naive.date())}
    assert len(digests) == 6
    assert hash_value(paris) == hash_value(naive.replace(tzinfo=zoneinfo.ZoneInfo("Europe/Paris")))
    assert hash_value(dt.time(1, 2, 3)) != hash_value(dt.time(1, 2, 4))
    assert hash_value(dt.timedelta(days=1)) == hash_value(dt.timedelta(hours=24))
    assert hash_value(dt.timedelta(days=-1)) != hash_value(dt.timedelta(days=1))


def test_other_library_values() -> None:
    assert hash_value(decimal.Decimal("1.0")) != hash_value(decimal.Decimal("1.00"))
    assert hash_value(decimal.Decimal("1.5")) == hash_value(decimal.Decimal("1.5"))
    assert hash_value(pathlib.Path("a/b")) == hash_value(pathlib.Path("a") / "b")
    assert hash_value(pathlib.Path("a")) != hash_value("a")
    ident = uuid.uuid4()
    assert hash_value(ident) == hash_value(uuid.UUID(str(ident)))
    assert hash_value(ident) != hash_value(uuid.uuid4())


def test_functions_modules_and_classes() -> None:
    assert hash_value(len) == hash_value(len)
    assert hash_value(len) != hash_value(abs)
    assert hash_value(test_time_values) == hash_value(test_time_values)
    assert hash_value(test_time_values) != hash_value(test_other_library_values)
    assert hash_value(math) == hash_value(sys.modules["math"])
    assert hash_value(math) != hash_value(os)
    assert hash_value(Node) != hash_value(Leaf)
    assert hash_value([Node]) == hash_value([Node])
    b = 1
    assert hash_value(lambda a: a + b) != hash_value(lambda a: a - b)


class OddZone(dt.tzinfo):
    """A time zone raycache cannot identify."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def dst(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, when: dt.datetime | None) -> str:
        return "odd"


@pytest.mark.parametrize(
    ("bad", "name"),
    [(object(), "object"), (threading.Lock(), "lock"), (iter(()), "iterator"),
     ([1, {"k": object()}], "object"), (np.ma.masked_array([1]), "masked"),
     (dt.datetime(2020, 1, 1, tzinfo=OddZone()), "OddZone"), (Node(1, [object()]), "object")],
)  # fmt: skip
def test_unhashable_values_raise_naming_the_type(bad: object, name: str) -> None:
    with pytest.raises(UnhashableValueError, match=name) as info:
        hash_value(bad)
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, RaycacheError)


VALUE_SOURCE = """
import datetime, decimal, uuid
import numpy as np, pandas as pd, pyarrow as pa
value = {
    "text": ["a", 1, 2.5, None, True, b"x", {"s", "t", "u"}, frozenset({3, 4})],
    "when": (datetime.datetime(2020, 1, 2, 3), datetime.date(2020, 1, 2)),
    "exact": (decimal.Decimal("1.10"), uuid.UUID(int=7)),
    "array": np.arange(12.0).reshape(3, 4)[:, ::2],
    "frame": pd.DataFrame({"a": [1, 2], "s": ["x", None], "c": pd.Categorical(["p", "q"])}),
    "table": pa.table({"x": [1, None], "y": [["a"], []]}),
}
"""


def test_digest_is_the_same_in_another_process() -> None:
    code = (
        VALUE_SOURCE
        + "from raycache.core.hashing import hash_value\nprint(hash_value(value).hex())"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345")  # another set iteration order
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    namespace: dict[str, Any] = {}
    exec(VALUE_SOURCE, namespace)
    assert other.stdout.strip() == hash_value(namespace["value"]).hex()


# ------------------------------------------------------------------------------- numpy

arrays = hnp.arrays(
    dtype=st.one_of(hnp.integer_dtypes(), hnp.floating_dtypes(), hnp.boolean_dtypes(),
                    hnp.datetime64_dtypes(), hnp.complex_number_dtypes(),
                    hnp.unicode_string_dtypes(), hnp.byte_string_dtypes()),
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(arrays)
def test_views_hash_like_their_contiguous_copies(array: np.ndarray[Any, Any]) -> None:
    for view in (array[::2], array[::-1], array.T, np.asfortranarray(array)):
        assert hash_value(view) == hash_value(np.ascontiguousarray(view))
    assert hash_value(array) == hash_value(array.copy())


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int64, hnp.array_shapes(max_dims=1, min_side=2, max_side=20)))
def test_different_values_shapes_and_dtypes_differ(array: np.ndarray[Any, Any]) -> None:
    changed = array.copy()
    changed[-1] ^= 1
    assert hash_value(changed) != hash_value(array)
    assert hash_value(array.astype(np.int32)) != hash_value(array)
    assert hash_value(array.reshape(1, -1)) != hash_value(array)
    assert hash_value(array.astype(">i8")) != hash_value(array)
    assert hash_value(array.view(np.float64)) != hash_value(array)


class Tagged(np.ndarray):
    """An ndarray subclass: its type is part of the hash."""


def test_numpy_scalars_and_special_arrays() -> None:
    assert hash_value(np.float32(1.5)) != hash_value(np.float64(1.5))
    assert hash_value(np.float64(1.5)) != hash_value(1.5)
    assert hash_value(np.int64(3)) == hash_value(np.int64(3))
    assert hash_value(np.datetime64("2020-01-01")) != hash_value(np.datetime64("2020-01-01", "s"))
    assert hash_value(np.dtype("f4")) == hash_value(np.dtype(np.float32))
    assert hash_value(np.dtype("f4")) != hash_value(np.dtype("f8"))
    assert hash_value(np.array(3)) != hash_value(np.int64(3))
    assert hash_value(np.zeros((0, 3))) != hash_value(np.zeros((3, 0)))
    assert hash_value(np.array([[1]]).view(Tagged)) != hash_value(np.array([[1]]))
    assert hash_value(np.array([[1]]).view(Tagged)) == hash_value(np.array([[1]]).view(Tagged))
    structured = np.array([(1, 2.0), (3, 4.0)], dtype=[("a", "i4"), ("b", "f8")])
    padded = np.array([(1, 2.0), (3, 4.0)], dtype=np.dtype([("a", "i4"), ("b", "f8")], align=True))
    assert hash_value(structured) == hash_value(padded)  # padding bytes never count
    assert hash_value(structured[::-1]) == hash_value(structured[::-1].copy())
    assert hash_value(structured) != hash_value(structured[["b", "a"]].copy())


def test_object_arrays_hash_element_wise() -> None:
    strings = np.array(["a", "bc", ""], dtype=object)
    assert hash_value(strings) == hash_value(np.array(["a", "bc", ""], dtype=object))
    assert hash_value(strings) != hash_value(np.array(["a", "bc", "d"], dtype=object))
    assert hash_value(strings) != hash_value(np.array(["ab", "c", ""], dtype=object))
    assert hash_value(strings) != hash_value(np.array(["a", "bc", ""]))  # unicode dtype
    assert hash_value(np.array([1, "1"], dtype=object)) != hash_value(
        np.array(["1", "1"], dtype=object)
    )
    assert hash_value(np.array([None, 1.5], dtype=object)) == hash_value(
        np.array([None, 1.5], dtype=object)
    )
    surrogate = np.array(["\ud800", "x"], dtype=object)  # not UTF-8: hashed one by one
    assert hash_value(surrogate) == hash_value(surrogate.copy())
    assert hash_value(surrogate) != hash_value(np.array(["\ud801", "x"], dtype=object))
    objects = np.array([[1, "a"], [2.0, None]], dtype=object)
    assert hash_value(objects.T) == hash_value(np.ascontiguousarray(objects.T))


# ------------------------------------------------------------------------------ pandas


def sample_records(n: int) -> list[dict[str, Any]]:
    return [
        {"i": i, "f": i / 3, "b": i % 2 == 0, "s": f"s{i}" if i % 5 else None,
         "t": pd.Timestamp("2024-01-01") + pd.Timedelta(hours=i)}
        for i in range(n)
    ]  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40))
def test_frames_built_differently_hash_equal(n: int) -> None:
    records = sample_records(n)
    from_records = pd.DataFrame.from_records(records, columns=["i", "f", "b", "s", "t"])
    from_dict = pd.DataFrame({k: [r[k] for r in records] for k in ["i", "f", "b", "s", "t"]})
    assert hash_value(from_records) == hash_value(from_dict)
    assert hash_value(from_dict.copy()) == hash_value(from_dict)
    reordered = from_dict[["t", "s", "b", "f", "i"]][["i", "f", "b", "s", "t"]]
    assert hash_value(reordered) == hash_value(from_dict)


def test_block_layout_does_not_matter() -> None:
    values = np.arange(60.0).reshape(20, 3)
    c_order = pd.DataFrame(values, columns=list("abc"))
    f_order = pd.DataFrame(np.asfortranarray(values), columns=list("abc"))
    split = pd.DataFrame({name: values[:, i].copy() for i, name in enumerate("abc")})
    assert hash_value(c_order) == hash_value(f_order) == hash_value(split)
    grown = split.copy()
    grown["d"] = 1.0  # a second block
    assert hash_value(grown.drop(columns="d")) == hash_value(split)


def test_frames_differing_in_anything_hash_apart() -> None:
    base = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    variants = [
        base.assign(a=[1, 2, 4]),
        base.assign(b=["x", "y", "w"]),
        base.astype({"a": "int32"}),
        base.astype({"a": "float64"}),
        base.astype({"b": object}),
        base.astype({"b": "category"}),
        base.astype({"a": "Int64"}),
        base.rename(columns={"a": "A"}),
        base.set_axis([1, 2, 3]),
        base.set_axis(pd.Index([0, 1, 2], dtype="int64")),
        base.rename_axis("rows"),
        base.rename_axis("cols", axis=1),
        base.iloc[:2],
        base[["b", "a"]],
    ]
    digests = {hash_value(frame) for frame in [base, *variants]}
    assert len(digests) == len(variants) + 1
    assert hash_value(base["a"]) != hash_value(base["a"].rename("z"))
    assert hash_value(base["a"]) != hash_value(base[["a"]])
    assert hash_value(base["a"]) != hash_value(base["a"].to_numpy())


def test_string_column_slices_hash_their_own_values() -> None:
    frame = pd.DataFrame({"s": [f"value-{i}" if i % 3 else None for i in range(30)]})
    tail = frame.iloc[7:19]
    fresh = pd.DataFrame({"s": tail["s"].tolist()}, index=tail.index)
    assert hash_value(tail) == hash_value(fresh)
    assert hash_value(frame.iloc[7:19]) != hash_value(frame.iloc[8:20].set_axis(tail.index))


def test_index_kinds() -> None:
    product = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["k", "n"])
    tuples = pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1), ("b", 2)], names=["k", "n"])
    assert hash_value(product) == hash_value(tuples)
    # A slice keeps unused levels; its values are those of a fresh index.
    assert hash_value(product[:2]) == hash_value(tuples[:2].remove_unused_levels())
    assert hash_value(product) != hash_value(product.set_names(["k", "m"]))
    assert hash_value(pd.RangeIndex(0, 6, 2)) == hash_value(pd.RangeIndex(0, 5, 2))
    assert hash_value(pd.RangeIndex(3)) != hash_value(pd.RangeIndex(3, name="x"))
    days = pd.date_range("2024-01-01", periods=4, freq="D", tz="Europe/Paris")
    assert hash_value(days) == hash_value(pd.date_range("2024-01-01", periods=4, tz="Europe/Paris"))
    assert hash_value(days) != hash_value(days.tz_convert("UTC"))
    assert hash_value(days) != hash_value(pd.DatetimeIndex(list(days)))  # no freq
    assert hash_value(pd.CategoricalIndex(["a", "b"])) != hash_value(pd.Index(["a", "b"]))
    periods = pd.period_range("2024-01", periods=3, freq="M")
    assert hash_value(periods) != hash_value(pd.period_range("2024-01", periods=3, freq="D"))


def test_extension_columns() -> None:
    masked = pd.Series([1, None, 3], dtype="Int64")
    assert hash_value(masked) == hash_value(pd.Series([1, pd.NA, 3], dtype="Int64"))
    assert hash_value(masked) != hash_value(pd.Series([1, 2, 3], dtype="Int64"))
    arrow = pd.Series([[1], [2, 3]], dtype=pd.ArrowDtype(pa.list_(pa.int64())))
    assert hash_value(arrow) == hash_value(arrow.copy())
    assert hash_value(arrow.iloc[1:]) == hash_value(
        pd.Series([[2, 3]], index=pd.RangeIndex(1, 2), dtype=pd.ArrowDtype(pa.list_(pa.int64())))
    )
    cats = pd.Series(pd.Categorical(["x", "y", "x"], categories=["x", "y", "z"]))
    assert hash_value(cats) != hash_value(cats.cat.reorder_categories(["z", "y", "x"]))
    assert hash_value(cats) != hash_value(cats.cat.as_ordered())
    sparse = pd.Series(pd.arrays.SparseArray([0, 0, 1]))
    assert hash_value(sparse) == hash_value(pd.Series(pd.arrays.SparseArray([0, 0, 1])))
    assert hash_value(sparse) != hash_value(pd.Series(pd.arrays.SparseArray([0, 1, 1])))


def test_object_columns_never_conflate_types() -> None:
    # pd.util.hash_pandas_object hashes 1 and "1" (and None and "None") alike.
    assert hash_value(pd.Series(["1", 1], dtype=object)) != hash_value(
        pd.Series(["1", "1"], dtype=object)
    )
    assert hash_value(pd.Series([None, "None"], dtype=object)) != hash_value(
        pd.Series(["None", "None"], dtype=object)
    )


def test_pandas_scalars() -> None:
    ts = pd.Timestamp("2024-01-01 12:00")
    assert hash_value(ts) == hash_value(pd.Timestamp("2024-01-01T12:00:00"))
    assert hash_value(ts) != hash_value(ts.tz_localize("UTC"))
    assert hash_value(ts) != hash_value(ts.to_pydatetime())
    assert hash_value(pd.Timedelta(1, "s")) != hash_value(pd.Timedelta(2, "s"))
    assert len({hash_value(v) for v in (pd.NaT, pd.NA, None, float("nan"))}) == 4
    assert hash_value(pd.Period("2024-01", "M")) != hash_value(pd.Period("2024-02", "M"))
    assert hash_value(pd.Interval(0, 1)) != hash_value(pd.Interval(0, 1, closed="both"))


def test_large_frame_hashes_every_byte() -> None:
    # The throughput path, checked for correctness only; speed is in benchmarks/pure/hashing.py.
    rows = 500_000
    frame = pd.DataFrame({
        "i": np.arange(rows, dtype=np.int64),
        "f": np.linspace(0, 1, rows, dtype=np.float32),
        "t": np.datetime64("2024-01-01", "ns") + np.arange(rows).astype("m8[s]"),
        "s": np.array(["ab", "cde", "f"])[np.arange(rows) % 3],
    })  # fmt: skip
    digest = hash_value(frame)
    assert digest == hash_value(frame.copy())
    for column, value in (("i", -1), ("f", 2.0), ("s", "x")):
        changed = frame.copy()
        changed.loc[rows - 1, column] = value
        assert hash_value(changed) != digest


# ----------------------------------------------------------------------------- pyarrow

optional_ints = st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=40)
optional_texts = st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=40)


@settings(max_examples=60, deadline=None)
@given(st.one_of(optional_ints.map(pa.array), optional_texts.map(pa.array),
                 optional_texts.map(lambda v: pa.array(v, pa.large_string())),
                 st.lists(st.one_of(st.none(), st.booleans()), max_size=40).map(pa.array),
                 st.lists(st.one_of(st.none(), st.lists(st.integers(0, 9), max_size=3)),
                          max_size=20).map(pa.array)),
       st.data())  # fmt: skip
def test_arrow_slices_and_chunks_hash_their_values(parent: pa.Array, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(parent)))
    stop = data.draw(st.integers(start, len(parent)))
    piece = parent[start:stop]
    fresh = pa.array(piece.to_pylist(), type=parent.type)
    assert hash_value(piece) == hash_value(fresh)
    other = parent[start + 1 : stop + 1]
    assert (hash_value(other) == hash_value(piece)) == (other.to_pylist() == piece.to_pylist())
    cut = data.draw(st.integers(0, len(parent)))
    split = pa.chunked_array([parent[:cut], parent[cut:]], type=parent.type)
    assert hash_value(split) == hash_value(pa.chunked_array([parent], type=parent.type))


def test_arrow_types_and_tables() -> None:
    table = pa.table({"x": [1, 2, None], "y": ["a", "b", "c"]})
    chunked = pa.concat_tables([table.slice(0, 1), table.slice(1)])
    assert hash_value(chunked) == hash_value(table)
    assert hash_value(table) != hash_value(table.rename_columns(["x", "z"]))
    assert hash_value(table) != hash_value(
        table.cast(pa.schema([("x", pa.int32()), ("y", pa.string())]))
    )
    assert hash_value(table) != hash_value(table.to_batches()[0])
    assert hash_value(table.replace_schema_metadata({"k": "v"})) == hash_value(table)
    assert hash_value(pa.array(["a"])) != hash_value(pa.array(["a"], pa.large_string()))
    assert hash_value(pa.array([1])) != hash_value(pa.chunked_array([[1]]))
    assert hash_value(pa.chunked_array([], pa.int8())) != hash_value(
        pa.chunked_array([], pa.int16())
    )
    assert hash_value(pa.scalar(1)) != hash_value(pa.scalar(2))
    assert hash_value(pa.scalar("a")) == hash_value(pa.scalar("a"))
    assert hash_value(pa.int64()) != hash_value(pa.int32())


def test_arrow_dictionary_struct_and_view_types() -> None:
    words = pa.array(["a", "b", None, "a", "c"])
    encoded = words.dictionary_encode()
    assert hash_value(encoded[1:4]) == hash_value(words[1:4].dictionary_encode())
    assert hash_value(encoded[1:3]) != hash_value(encoded[2:4])
    struct_array = pa.array([{"a": 1, "b": "x"}, {"a": 2, "b": None}, None, {"a": 4, "b": "z"}])
    assert hash_value(struct_array[1:3]) == hash_value(
        pa.array(struct_array[1:3].to_pylist(), struct_array.type)
    )
    assert hash_value(struct_array[1:3]) != hash_value(struct_array[2:4])
    views = pa.array(["a long enough string", "b", None], pa.string_view())
    assert hash_value(views[1:]) == hash_value(pa.array(["b", None], pa.string_view()))
    runs = pc.run_end_encode(pa.array([1, 1, 2, 2, 2, 3]))
    assert hash_value(pa.chunked_array([runs[:1], runs[1:]])) == hash_value(
        pa.chunked_array([runs])
    )
    assert hash_value(runs[1:4]) == hash_value(pc.run_end_encode(pa.array([1, 2, 2])))
    assert hash_value(runs) != hash_value(pa.array([1, 1, 2, 2, 2, 3]))  # the type counts
    nested = pa.array([["a", "b"], ["a"]], pa.list_(pa.dictionary(pa.int8(), pa.string())))
    assert hash_value(nested) != hash_value(
        pa.array([["a", "b"], ["b"]], pa.list_(pa.dictionary(pa.int8(), pa.string())))
    )


@pytest.mark.parametrize("value", [float("nan"), -math.inf])
def test_special_floats_are_stable(value: float) -> None:
    assert hash_value(value) == hash_value(float(str(value)))
