"""The pure store at scale: time per put and get, and memory per entry, under each policy.

Keys are 16-byte ``bytes``, as shards use key digests; every entry shares one small value.
Times are the best of several rounds of a block of calls, divided by the block's length:
``put`` writes new keys into a full store (so each put also evicts), ``get`` reads keys
that are held (hits) and keys that are not (misses), half each. Memory is the growth of
``tracemalloc``'s traced bytes while a store is filled with ``n`` entries, divided by
``n``; the keys are made before the measurement starts, so their own bytes (65 each)
are not counted -- the figure is the store's and the policy's metadata per entry.

Run alone with ``python -m benchmarks.pure.store_scale [--quick]``; no Ray is needed.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.output.report import Measurement, Row, markdown_table, summary_table, verdict
from raycache.core.store import DEFAULT_POLICY, POLICIES, Store

KEY_BYTES = 16
VALUE = b"v"
SIZE = 100
TARGET_PUT = 3e-6
TARGET_GET = 1.5e-6
TARGET_BYTES_PER_ENTRY = 200
ROUNDS = 5


def new_keys(n: int) -> list[bytes]:
    """Return ``n`` random 16-byte keys."""
    return [os.urandom(KEY_BYTES) for _ in range(n)]


def filled(policy: str, keys: Sequence[bytes]) -> Store:
    """Return a store that holds exactly ``keys``, each read once so the policy knows them."""
    store = Store(SIZE * len(keys), policy=policy)
    for key in keys:
        store.put(key, VALUE, SIZE)
    for key in keys:
        store.get(key)
    return store


def best_per_call(block: Callable[[], int]) -> float:
    """Return the fastest of ``ROUNDS`` runs of ``block``, per call (it returns its calls)."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        calls = block()
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def time_policy(policy: str, held: int, block: int) -> dict[str, float]:
    """Return seconds per put (with eviction) and per get (half hits) under ``policy``."""
    keys = new_keys(held)
    store = filled(policy, keys)
    put, get = store.put, store.get
    fresh = iter(new_keys(block * ROUNDS))
    misses = new_keys(block)
    reads = [k for pair in zip(keys[-block:], misses, strict=True) for k in pair][:block]
    # Reads first: the puts evict the keys they would hit.
    get_time = best_per_call(lambda: sum(get(key) is None or 1 for key in reads))

    def puts() -> int:
        for _ in range(block):
            put(next(fresh), VALUE, SIZE)
        return block

    return {"put": best_per_call(puts), "get": get_time}


def bytes_per_entry(policy: str, n: int) -> float:
    """Return the traced memory a store of ``n`` entries takes, per entry, keys excluded."""
    keys = new_keys(n)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = Store(SIZE * n, policy=policy)
        for key in keys:
            store.put(key, VALUE, SIZE)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(store) == n
    return grown / n


def target_row(what: str, value: float, target: float, unit: str, scale: float) -> Row:
    """Return a row that passes when ``value`` is at most ``target``."""
    return Row(
        what=what,
        ours=f"{value * scale:.2f} {unit}",
        base=f"{target * scale:.2f} {unit} (target)",
        ratio=value / target,
        target=f"<= {target * scale:g} {unit}",
        verdict=verdict(value <= target),
    )


def run(cache: object, *, quick: bool) -> Measurement:
    """Time every policy, measure the default's memory, and report against the targets."""
    held, block, n = (20_000, 5_000, 200_000) if quick else (200_000, 20_000, 1_000_000)
    times = {policy: time_policy(policy, held, block) for policy in sorted(POLICIES)}
    memory = bytes_per_entry(DEFAULT_POLICY, n)
    default = times[DEFAULT_POLICY]
    rows = [
        target_row(
            f"put, {DEFAULT_POLICY} (default), full store", default["put"], TARGET_PUT, "µs", 1e6
        ),
        target_row(
            f"get, {DEFAULT_POLICY} (default), half hits", default["get"], TARGET_GET, "µs", 1e6
        ),
        target_row(
            f"metadata per entry at {n:,} entries, {DEFAULT_POLICY}, keys excluded",
            memory,
            TARGET_BYTES_PER_ENTRY,
            "B",
            1,
        ),
    ]
    cells = [
        (policy, f"{t['put'] * 1e6:.2f}", f"{t['get'] * 1e6:.2f}") for policy, t in times.items()
    ]
    section = "\n\n".join(
        [
            f"## Pure store: µs per call with {held:,} entries held, 16-byte keys (best of "
            f"{ROUNDS} blocks of {block:,})",
            markdown_table(("policy", "put µs (evicts)", "get µs (half hits)"), cells),
        ]
    )
    raw: dict[str, Any] = {
        "summaries": {},
        "round_p50_ratios": [],
        "times": times,
        "bytes_per_entry": memory,
        "entries": n,
        "sections": [section],
    }
    return Measurement(rows=rows, raw=raw)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the headline rows and the table of every policy."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pure.store_scale", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="smaller stores, 200k entries")
    result = run(None, quick=parser.parse_args(argv).quick)
    print(summary_table(result.rows), *result.raw["sections"], sep="\n\n")


if __name__ == "__main__":
    main()
