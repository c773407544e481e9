"""Golden digests: keys and value hashes persist and cross processes, so they never change.

A refactor of the encoding, the hasher or a kind of value must leave every digest here
as it is. A digest changed on purpose orphans every result stored under the old one, so
update a pin here only for a change that is meant to, and say so in the changelog.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
import zoneinfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from raycache.core.fingerprint import call_digest
from raycache.core.hashing import hash_value
from raycache.core.keys import key_digest

KEYS = {
    "user:42": "c11542689ea23a389462681b16d76ecc",
    b"blob": "30a97d1a486989b764cb955f415df334",
    42: "92d2d1378e0a76e97265222b54e5b441",
    -1.5: "94c50a9aec18dc881bc753f264477f21",
    True: "df44d622202b6be8ef97fd4f7a74f817",
    None: "626d368fe0e74b4f1a038927df1311d6",
    ("user", 42, 3.5, None, b"\x00", True): "07977acc7acade54a01eb8ebb4b4e06f",
}

VALUES = {
    "int": (1, "518355ca2a8b7239918212f81571049c"),
    "big int": (-(2**70), "e71059c4d0480376f2819f0eaac09232"),
    "str": ("héllo", "9541162553ad1578888e922a3f992d77"),
    "list": ([1, "a", None, 2.5], "579ad32c83a03d332b55dc8d87208f95"),
    "dict": ({"b": 2, "a": [1, 2]}, "316c2e6e9367384c3d5ff3471314a51a"),
    "frozenset": (frozenset({"x", "y"}), "f90ea04100d99daa90221581289a5c5a"),
    "datetime": (
        dt.datetime(2024, 3, 31, 1, 30, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
        "cc5a11dc678f3d6bc3b8f810bf62d031",
    ),
    "decimal": (decimal.Decimal("1.10"), "f0d2e7a422bdb2dc8b58e4be2bcce6f4"),
    "uuid": (uuid.UUID(int=7), "97d75cc8132bf6cfab773741b2b25552"),
    "numpy": (np.arange(6, dtype="<i8").reshape(2, 3)[:, ::2], "5ae0899526ca0a4b2f0ed165814e7002"),
    "pandas": (
        pd.DataFrame({"i": np.array([1, 2, 3], dtype="int64"), "f": [0.5, 1.5, np.nan]}),
        "1bf09812b585e851c9bcbc740704df23",
    ),
    "arrow": (
        pa.table({"x": pa.array([1, None, 3], pa.int64()), "s": pa.array(["a", None, "c"])}),
        "8b2d8e1ad4d79a1262f2dc88ced352d4",
    ),
}


@pytest.mark.parametrize(("key", "digest"), list(KEYS.items()), ids=repr)
def test_key_digests_never_change(key: object, digest: str) -> None:
    assert key_digest(key).hex() == digest


@pytest.mark.parametrize(("value", "digest"), list(VALUES.values()), ids=list(VALUES))
def test_value_hashes_never_change(value: object, digest: str) -> None:
    assert hash_value(value).hex() == digest


def test_call_digests_never_change() -> None:
    # A fixed fingerprint: real ones include the Python version, on purpose.
    digest = call_digest(bytes(16), {"b": "x", "a": 1})
    assert digest.hex() == "f7f0c6910233d35c1cf2f7b4b3e2aac8"
