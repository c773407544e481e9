"""Reads fuzzed storage files, one after another, and reports each outcome as a JSON line.

Run as ``python -m tests.helpers.fuzz_reader CASES OUT [KEY]``. It is a process of its
own so that a crash (SIGSEGV, SIGBUS) is seen by the test that started it, which then
knows from OUT the last case begun.
"""

from __future__ import annotations

import json
import pickle
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from raycache.core.storage import StorageTier, parse_storage
from raycache.core.storage.trust import entrust

NAME = "fuzz"


def same(a: Any, b: Any) -> bool:
    """Whether two values are equal, for the kinds the fuzzer stores."""
    if isinstance(a, pa.Table):
        return isinstance(b, pa.Table) and a.equals(b)
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b) and list(a.dtypes) == list(b.dtypes)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def main(cases: Path, out: Path, key: str | None) -> None:
    """Read every case in ``cases``; write one JSON line per case to ``out``."""
    root = cases / "root"
    storage = entrust(parse_storage(root), key=key, shared=False, environ={})
    assert storage is not None
    with out.open("w") as report:
        for case in sorted(cases.glob("*.case")):
            digest, expected = pickle.loads((case.with_suffix(".expected")).read_bytes())
            report.write(json.dumps({"case": case.name, "began": True}) + "\n")
            report.flush()
            folder = root / NAME
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            shutil.copyfile(case, folder / f"{digest.hex()}.rc")
            outcome = read(StorageTier(storage, NAME), digest, expected)
            report.write(json.dumps({"case": case.name, "outcome": outcome}) + "\n")
            report.flush()


def read(tier: StorageTier, digest: bytes, expected: Any) -> str:
    """Return what reading ``digest`` gave: a miss, the expected value, another, or a raise."""
    try:
        tier.scan()
        stored = tier.read(digest)
        if stored is None:
            return "miss"
        return "same" if same(stored.value, expected) else "different"
    except BaseException as error:  # the tier must never raise: report it
        return f"exception: {type(error).__name__}: {error}"


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
