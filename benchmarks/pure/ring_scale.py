"""Consistent-hash ring at scale: balance, keys moved on a join or leave, and routing speed.

For 4 to 1,000 shards named ``shard-{i}``, places a million keys (hashed as clients do,
with :func:`raycache.core.keys.key_points`) with :meth:`Ring.partition`. Balance is the
busiest shard's keys over the mean, plus the coefficient of variation, and the same for
the ring's 65,536 slots. Movement is the share of keys whose owner changes from n shards
to n + 1 (ideally 1/(n + 1), all onto the newcomer), from n to n - 1 when the last shard
leaves, and when a shard in the middle leaves (ideally 1/n, the leaver's keys).

Speed: building a ring from scratch, and what a fresh worker pays when it receives a
cache handle: unpickling the ring plus its first lookup, timed in a new process so no
memo helps. Then ``owner_at`` per call and ``partition`` per key.

Run alone with ``python -m benchmarks.pure.ring_scale [--quick]``; no Ray is needed.
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.output.report import (
    Measurement,
    Row,
    fmt_seconds,
    markdown_table,
    summary_table,
    verdict,
)
from raycache.core.keys import key_digest, key_points
from raycache.core.ring import Ring
from raycache.core.slots import SLOT_SHIFT, SLOTS

SHARD_COUNTS = (4, 8, 16, 32, 64, 256, 1000)
BALANCE_AT = 64
TARGET_MAX_OVER_MEAN = 1.05
TARGET_MOVED_OVER_IDEAL = 1.1
FRESH_ROUTE_AT = 1000
TARGET_FRESH_ROUTE_S = 0.050
FRESH_RUNS = 5

# Runs in a new interpreter: imports first (a worker has them already), then the clock.
FRESH_CODE = """
import pickle, sys, time
import raycache.core.ring
data = sys.stdin.buffer.read()
started = time.perf_counter()
ring = pickle.loads(data)
ring.owner_at(12345)
print(time.perf_counter() - started)
"""


def points_of(n_keys: int) -> npt.NDArray[np.uint64]:
    """Return the ring positions of ``n_keys`` distinct keys, hashed as clients do."""
    return key_points(b"".join(key_digest(f"key:{i}") for i in range(n_keys)))


def ring_of(shards: int) -> Ring:
    """Return a ring over ``shard-0`` .. ``shard-{shards - 1}``."""
    return Ring(tuple(f"shard-{i}" for i in range(shards)))


def owners(ring: Ring, points: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Return, for every point, the number ``i`` of its owner ``shard-{i}``."""
    result = np.empty(len(points), dtype=np.int64)
    for member, indices in ring.partition(points).items():
        result[indices] = int(member.removeprefix("shard-"))
    return result


def balance(owner: npt.NDArray[np.int64], shards: int, prefix: str = "") -> dict[str, float]:
    """Return the max/mean and the coefficient of variation of ``owner``'s counts."""
    counts = np.bincount(owner, minlength=shards)
    mean = counts.mean()
    return {
        f"{prefix}max_over_mean": float(counts.max() / mean),
        f"{prefix}cv": float(counts.std() / mean),
    }


def moved_share(before: npt.NDArray[np.int64], after: npt.NDArray[np.int64]) -> float:
    """Return the share of keys whose owner differs."""
    return float(np.mean(before != after))


def measure(shards: int, points: npt.NDArray[np.uint64]) -> dict[str, float]:
    """Return balance and movement figures for a ring of ``shards`` members."""
    started = time.perf_counter()
    ring = ring_of(shards)
    built = time.perf_counter() - started
    owner = owners(ring, points)
    slot_owner = owners(ring, np.arange(SLOTS, dtype=np.uint64) << np.uint64(SLOT_SHIFT))
    grown = moved_share(owner, owners(ring.add(f"shard-{shards}"), points))
    shrunk = moved_share(owner, owners(ring.remove(f"shard-{shards - 1}"), points))
    middle = moved_share(owner, owners(ring.remove(f"shard-{shards // 2}"), points))
    return {
        **balance(owner, shards),
        **balance(slot_owner, shards, "slot_"),
        "build_s": built,
        "moved_on_add": grown,
        "moved_on_add_over_ideal": grown * (shards + 1),
        "moved_on_remove": shrunk,
        "moved_on_remove_over_ideal": shrunk * shards,
        "moved_on_middle_remove": middle,
        "moved_on_middle_remove_over_ideal": middle * shards,
    }


def fresh_route_seconds(shards: int) -> float:
    """Return the median time a new process takes to unpickle a ring and route one key."""
    data = pickle.dumps(ring_of(shards))
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", FRESH_CODE], input=data, capture_output=True, check=True
            ).stdout
        )
        for _ in range(FRESH_RUNS)
    ]
    return sorted(runs)[len(runs) // 2]


def lookup_seconds(ring: Ring, points: npt.NDArray[np.uint64]) -> dict[str, float]:
    """Return the time per ``owner_at`` call and per key of ``partition``."""
    plain = points[:100_000].tolist()
    owner_at = ring.owner_at
    started = time.perf_counter()
    for point in plain:
        owner_at(point)
    per_call = (time.perf_counter() - started) / len(plain)
    started = time.perf_counter()
    ring.partition(points)
    return {
        "owner_at_s": per_call,
        "partition_per_key_s": (time.perf_counter() - started) / len(points),
    }


def worst_row(figures: dict[int, dict[str, float]], name: str, what: str, target: float) -> Row:
    """Return the row of the shard count where ``figures[n][name]`` is largest."""
    shards = max(figures, key=lambda n: figures[n][name])
    what = f"{what}, worst at {shards} shards (of {len(figures)} counts)"
    return ratio_row(what, figures[shards][name], target)


def ratio_row(what: str, value: float, target: float) -> Row:
    """Return a row for a figure whose ideal is 1 and whose bound is ``target``."""
    return Row(
        what=what,
        ours=f"{value:.3f}",
        base="1.000 (ideal)",
        ratio=value,
        target=f"<= {target:.2f}x",
        verdict=verdict(value <= target),
    )


def figures_table(figures: dict[int, dict[str, float]]) -> str:
    """Return every shard count's figures as a markdown table."""
    cells = [
        (
            str(n),
            f"{f['max_over_mean']:.3f}",
            f"{f['cv']:.4f}",
            f"{f['slot_max_over_mean']:.3f}",
            f"{f['moved_on_add']:.4f} ({f['moved_on_add_over_ideal']:.2f}x)",
            f"{f['moved_on_remove']:.4f} ({f['moved_on_remove_over_ideal']:.2f}x)",
            f"{f['moved_on_middle_remove']:.4f} ({f['moved_on_middle_remove_over_ideal']:.2f}x)",
            fmt_seconds(f["build_s"]),
        )
        for n, f in figures.items()
    ]
    headers = (
        "shards",
        "max/mean",
        "CV",
        "slots max/mean",
        "moved n→n+1 (x ideal)",
        "moved n→n-1, last leaves",
        "moved n→n-1, middle leaves",
        "build",
    )
    return markdown_table(headers, cells)


def speed_rows(fresh: float, lookups: dict[str, float]) -> list[Row]:
    """Return the rows for a fresh worker's first route and for lookups."""
    return [
        Row(
            what=f"fresh process: unpickle a {FRESH_ROUTE_AT:,}-shard ring + first lookup",
            ours=fmt_seconds(fresh),
            base="8.3 s (vnode ring rebuilt)",
            ratio=None,
            target=f"<= {fmt_seconds(TARGET_FRESH_ROUTE_S)}",
            verdict=verdict(fresh <= TARGET_FRESH_ROUTE_S),
        ),
        Row(
            what=f"owner_at per call / partition per key, {FRESH_ROUTE_AT:,} shards",
            ours=f"{fmt_seconds(lookups['owner_at_s'])} / "
            f"{fmt_seconds(lookups['partition_per_key_s'])}",
            base="—",
            ratio=None,
            target="O(1)",
            verdict="—",
        ),
    ]


def run(cache: object, *, quick: bool) -> Measurement:
    """Measure every shard count and report balance, the worst movement and routing speed."""
    n_keys = 200_000 if quick else 1_000_000
    points = points_of(n_keys)
    figures = {n: measure(n, points) for n in SHARD_COUNTS}
    fresh = fresh_route_seconds(FRESH_ROUTE_AT)
    lookups = lookup_seconds(ring_of(FRESH_ROUTE_AT), points)
    rows = [
        ratio_row(
            f"ring balance: max/mean keys per shard at {BALANCE_AT} shards",
            figures[BALANCE_AT]["max_over_mean"],
            TARGET_MAX_OVER_MEAN,
        ),
        *(
            worst_row(figures, f"moved_on_{change}_over_ideal", what, TARGET_MOVED_OVER_IDEAL)
            for change, what in [
                ("add", "keys moved n→n+1 shards / ideal 1/(n+1)"),
                ("remove", "keys moved n→n-1 shards (last leaves) / ideal 1/n"),
                ("middle_remove", "keys moved n→n-1 shards (middle leaves) / ideal 1/n"),
            ]
        ),
        *speed_rows(fresh, lookups),
    ]
    section = "\n\n".join(
        [
            f"## Consistent-hash ring: balance and movement ({n_keys:,} keys, {SLOTS:,} slots)",
            figures_table(figures),
        ]
    )
    raw: dict[str, Any] = {
        "summaries": {},
        "round_p50_ratios": [],
        "keys": n_keys,
        "figures": figures,
        "fresh_route_s": fresh,
        **lookups,
        "sections": [section],
    }
    return Measurement(rows=rows, raw=raw)


def main() -> None:
    """Print the headline rows and the table of every shard count."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pure.ring_scale", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="200k keys instead of 1M")
    result = run(None, quick=parser.parse_args().quick)
    print(summary_table(result.rows), *result.raw["sections"], sep="\n\n")


if __name__ == "__main__":
    main()
