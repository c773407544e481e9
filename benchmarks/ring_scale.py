"""Consistent-hash ring at scale: load balance, and keys moved when a shard joins or leaves.

For 4 to 64 shards named ``shard-{i}`` (the default 4096 vnodes each), hashes a million
keys with :func:`raycache.core.ring.stable_hash64` and places them with :meth:`Ring.partition`.
Balance is the busiest shard's keys over the mean, plus the coefficient of variation.
Movement is the share of keys whose owner changes from n shards to n + 1 (ideally
1/(n + 1), all onto the newcomer) and from n to n - 1 (ideally 1/n, the leaver's keys).

Run alone with ``python -m benchmarks.ring_scale [--quick]``; no Ray is needed.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import numpy.typing as npt

from benchmarks.report import Measurement, Row, markdown_table, summary_table, verdict
from raycache.core.ring import Ring, stable_hash64

SHARD_COUNTS = (4, 8, 16, 32, 64)
TARGET_MAX_OVER_MEAN = 1.1
TARGET_MOVED_OVER_IDEAL = 1.2


def key_points(n_keys: int) -> npt.NDArray[np.uint64]:
    """Return the ring positions of ``n_keys`` distinct keys, hashed as the router does."""
    return np.fromiter(
        (stable_hash64(f"key:{i}".encode()) for i in range(n_keys)), np.uint64, n_keys
    )


def ring_of(shards: int) -> Ring:
    """Return a ring over ``shard-0`` .. ``shard-{shards - 1}``."""
    return Ring(tuple(f"shard-{i}" for i in range(shards)))


def owners(ring: Ring, points: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Return, for every point, the index of its owner in ``ring.members``."""
    result = np.empty(len(points), dtype=np.int64)
    number = {member: i for i, member in enumerate(ring.members)}
    for member, indices in ring.partition(points).items():
        result[indices] = number[member]
    return result


def balance(owner: npt.NDArray[np.int64], shards: int) -> dict[str, float]:
    """Return the max/mean and the coefficient of variation of keys per shard."""
    counts = np.bincount(owner, minlength=shards)
    mean = counts.mean()
    return {"max_over_mean": float(counts.max() / mean), "cv": float(counts.std() / mean)}


def moved_share(before: npt.NDArray[np.int64], after: npt.NDArray[np.int64]) -> float:
    """Return the share of keys whose owner differs; members keep their index in both rings."""
    return float(np.mean(before != after))


def measure(shards: int, points: npt.NDArray[np.uint64]) -> dict[str, float]:
    """Return balance and movement figures for a ring of ``shards`` members."""
    ring = ring_of(shards)
    owner = owners(ring, points)
    grown = moved_share(owner, owners(ring.add(f"shard-{shards}"), points))
    shrunk = moved_share(owner, owners(ring.remove(f"shard-{shards - 1}"), points))
    return {
        **balance(owner, shards),
        "moved_on_add": grown,
        "moved_on_add_over_ideal": grown * (shards + 1),
        "moved_on_remove": shrunk,
        "moved_on_remove_over_ideal": shrunk * shards,
    }


def worst_row(figures: dict[int, dict[str, float]], name: str, what: str, target: float) -> Row:
    """Return the row of the shard count where ``figures[n][name]`` is largest."""
    shards = max(figures, key=lambda n: figures[n][name])
    value = figures[shards][name]
    return Row(
        what=f"{what}, worst at {shards} shards (of {len(figures)} counts)",
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
            f"{f['moved_on_add']:.4f} ({f['moved_on_add_over_ideal']:.2f}x)",
            f"{f['moved_on_remove']:.4f} ({f['moved_on_remove_over_ideal']:.2f}x)",
        )
        for n, f in figures.items()
    ]
    headers = ("shards", "max/mean", "CV", "moved n→n+1 (x ideal)", "moved n→n-1 (x ideal)")
    return markdown_table(headers, cells)


def run(cache: object, *, quick: bool) -> Measurement:
    """Measure every shard count and report the worst balance and movement."""
    n_keys = 200_000 if quick else 1_000_000
    points = key_points(n_keys)
    figures = {n: measure(n, points) for n in SHARD_COUNTS}
    rows = [
        worst_row(
            figures, "max_over_mean", "ring balance: max/mean keys per shard", TARGET_MAX_OVER_MEAN
        ),
        worst_row(
            figures,
            "moved_on_add_over_ideal",
            "keys moved n→n+1 shards / ideal 1/(n+1)",
            TARGET_MOVED_OVER_IDEAL,
        ),
        worst_row(
            figures,
            "moved_on_remove_over_ideal",
            "keys moved n→n-1 shards / ideal 1/n",
            TARGET_MOVED_OVER_IDEAL,
        ),
    ]
    section = "\n\n".join(
        [
            f"## Consistent-hash ring: balance and movement ({n_keys:,} keys, "
            f"{ring_of(1).vnodes} vnodes per shard)",
            figures_table(figures),
        ]
    )
    raw: dict[str, Any] = {
        "summaries": {},
        "round_p50_ratios": [],
        "keys": n_keys,
        "figures": figures,
        "sections": [section],
    }
    return Measurement(rows=rows, raw=raw)


def main() -> None:
    """Print the headline rows and the table of every shard count."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ring_scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200k keys instead of 1M")
    result = run(None, quick=parser.parse_args().quick)
    print(summary_table(result.rows), *result.raw["sections"], sep="\n\n")


if __name__ == "__main__":
    main()
