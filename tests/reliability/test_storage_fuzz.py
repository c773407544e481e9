"""A fuzzer of storage files: damaged and crafted files of every codec, each read in a child.

Over a thousand files are written: bits flipped, bytes rewritten with every checksum
recomputed (as an attacker can), header fields set to impossible values, metas rewritten,
files cut short or extended. A child process reads each one, so that a crash is caught.

- Without a key, no read raises and no process crashes; a crafted file whose checksums
  hold may decode to another value (only a key can tell), but never crashes the reader.
- With a key, no read raises, nothing crashes, and a read gives the written value or a
  miss: never another value.
"""

from __future__ import annotations

import json
import pickle
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from raycache.core.keys import key_digest
from raycache.core.storage import StorageTier, parse_storage
from raycache.core.storage.format import FIXED_FIELDS, HEADER_SIZE
from raycache.core.storage.trust import entrust
from tests.helpers.crafted import craft, fields_of

KEY = "fuzzing key of a sufficient length"
CASES_PER_CODEC = 140  # 4 codecs, signed and unsigned: 1,120 files
ROWS = 300


def values() -> dict[str, Any]:
    """One value per codec, small enough that a thousand reads take seconds."""
    return {
        "arrow": pa.table(
            {
                "n": np.arange(ROWS),
                "s": [f"s{i % 11}" for i in range(ROWS)],
                "l": [[i, i + 1] for i in range(ROWS)],
                "d": pa.array([f"c{i % 3}" for i in range(ROWS)]).dictionary_encode(),
            }
        ),
        "pandas": pd.DataFrame(
            {
                "f": np.linspace(0, 1, ROWS),
                "t": pd.date_range("2024", periods=ROWS, freq="min"),
                "c": pd.Categorical([f"k{i % 5}" for i in range(ROWS)]),
                "s": pd.Series([f"v{i}" for i in range(ROWS)], dtype="string[pyarrow]"),
            }
        ),
        "numpy": np.arange(ROWS * 4, dtype=np.float64).reshape(ROWS, 4),
        "pickle": {"rows": list(range(50)), "blob": np.arange(2000, dtype=np.int32)},
    }


Mutation = Callable[[random.Random, bytes], bytes]

_EXTREMES: list[Any] = [0, 1, 2**31, 2**63 - 1, 2**64 - 1]
_FLOATS = [float("inf"), float("-inf"), float("nan"), 1e308, -1.0]


def flip_bits(rng: random.Random, file: bytes) -> bytes:
    data = bytearray(file)
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def rewrite_payload(rng: random.Random, file: bytes) -> bytes:
    offset = fields_of(file)["payload_offset"]
    payload = bytearray(file[offset:])
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(payload))
        width = rng.choice([1, 4, 8])
        payload[at : at + width] = rng.randbytes(width)[: len(payload) - at]
    return craft(file, payload=bytes(payload))


def set_field(rng: random.Random, file: bytes) -> bytes:
    name, code = rng.choice([f for f in FIXED_FIELDS if f[0] not in ("magic", "version")])
    if code == "d":
        value: Any = rng.choice(_FLOATS)
    elif code.endswith("s"):
        value = rng.randbytes(int(code[:-1]))
    else:
        bound = {"B": 255, "H": 2**16 - 1, "I": 2**32 - 1, "Q": 2**64 - 1}[code]
        value = min(rng.choice(_EXTREMES), bound)
    return craft(file, **{name: value})


def rewrite_meta(rng: random.Random, file: bytes) -> bytes:
    meta = json.loads(file[HEADER_SIZE : HEADER_SIZE + fields_of(file)["meta_length"]])
    segments = meta["segments"]
    choice = rng.randrange(5)
    if choice == 0 and segments:
        index = rng.randrange(len(segments))
        segments[index][rng.randrange(2)] += rng.choice([-64, -1, 1, 64, 2**40])
    elif choice == 1:
        segments.append([rng.randrange(10_000), rng.randrange(10_000)])
    elif choice == 2 and segments:
        segments.pop()
    elif choice == 3:
        meta["tags"] = rng.choice([[1], "t", None, [["deep"]] * 3])
    else:
        return craft(file, meta=rng.choice([b"[" * 5000, b"1e400", b"{}", b'{"tags": []}']))
    return craft(file, meta=json.dumps(meta).encode())


def cut_or_extend(rng: random.Random, file: bytes) -> bytes:
    if rng.random() < 0.5:
        return file[: rng.randrange(len(file))]
    return file + rng.randbytes(rng.randint(1, 200))


MUTATIONS: list[Mutation] = [flip_bits, rewrite_payload, set_field, rewrite_meta, cut_or_extend]


def write_cases(folder: Path, key: str | None) -> int:
    """Write the damaged files of every codec into ``folder``; return how many."""
    storage = entrust(parse_storage(folder / "source"), key=key, shared=False, environ={})
    assert storage is not None
    writer = StorageTier(storage, "source")
    rng = random.Random(20261203 + (key is not None))
    count = 0
    for codec, value in values().items():
        digest = key_digest(codec)
        assert writer.write(digest, value, tags=("fuzz",))
        original = (folder / "source" / "source" / f"{digest.hex()}.rc").read_bytes()
        for index in range(CASES_PER_CODEC):
            mutated = MUTATIONS[index % len(MUTATIONS)](rng, original)
            case = folder / f"{codec}-{index:04d}.case"
            case.write_bytes(mutated)
            case.with_suffix(".expected").write_bytes(pickle.dumps((digest, value)))
            count += 1
    return count


@pytest.mark.parametrize("key", [None, KEY], ids=["unsigned", "signed"])
def test_damaged_and_crafted_files_never_raise_crash_or_lie(
    tmp_path: Path, key: str | None
) -> None:
    assert write_cases(tmp_path, key) >= 500
    report = tmp_path / "report.jsonl"
    command = [sys.executable, "-m", "tests.helpers.fuzz_reader", str(tmp_path), str(report)]
    finished = subprocess.run(
        [*command, *([key] if key else [])],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=540,
    )
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    last = lines[-1]["case"] if lines else None
    assert finished.returncode == 0, f"the reader died on {last}: {finished.stderr[-2000:]}"
    outcomes = {line["case"]: line["outcome"] for line in lines if "outcome" in line}
    assert len(outcomes) == len(list(tmp_path.glob("*.case")))
    raised = {case: outcome for case, outcome in outcomes.items() if outcome.startswith("exc")}
    assert raised == {}
    tally = Counter(outcomes.values())
    if key is not None:
        assert tally["different"] == 0, tally
    assert tally["miss"] > len(outcomes) // 2, tally  # most damage is seen
