"""A guard against speed regressions: this run's ratios against a committed baseline.

``python -m benchmarks --quick --check`` compares the ratio of every row that has one
(raycache over its baseline from the same run, so that the machine's load cancels out)
with ``benchmarks/baseline.json``, and fails when one is worse than its baseline by more
than :data:`MARGIN`: wide enough for a noisy two-core machine, whose ratios wander by a
third from run to run, and narrow enough that a twofold regression fails. A row that
fails is measured once more, and fails only if it fails again, because a single round of
a shared machine can be slow for reasons of its own.

Updating the baseline is a deliberate act: ``python -m benchmarks --quick
--save-baseline`` writes it, and the new file is committed with the change that moved
the figures, saying why.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.output.report import Row

BASELINE = Path(__file__).resolve().parent.parent / "baseline.json"
"""The committed baseline of ``--check``."""

MARGIN = 1.6
"""How much worse than its baseline a ratio may be before ``--check`` fails (a factor)."""

UNGUARDED = {
    "ratio of p99": "a tail",
    "stall": "a tail: the worst stall of a burst",
    "restart,": "two reads in new processes, whose start-up varies more than the read",
    "(context)": "a dictionary lookup beside a Ray round trip: load moves them apart",
}
"""Rows not guarded, by a mark in their name, and why: in a quick run on a shared two-core
machine their ratios moved by more than twice between two runs of the same code."""


def guarded(row: Row) -> bool:
    """Return whether ``--check`` compares ``row``: it has a ratio, and a steady one."""
    return row.ratio is not None and not any(mark in row.what for mark in UNGUARDED)


@dataclass(frozen=True)
class Regression:
    """A row whose ratio is worse than its baseline by more than the margin."""

    what: str
    ratio: float
    baseline: float
    higher_is_better: bool

    def __str__(self) -> str:
        """Say which row, by how much, and which way is better."""
        better = "higher" if self.higher_is_better else "lower"
        return (
            f"{self.what}: ratio {self.ratio:.3g} against baseline {self.baseline:.3g} "
            f"({better} is better; {worse_by(self):.2f}x worse, margin {MARGIN}x)"
        )


def worse_by(regression: Regression) -> float:
    """Return how many times worse the ratio is than its baseline (below 1: better)."""
    if regression.higher_is_better:
        return regression.baseline / regression.ratio if regression.ratio > 0 else float("inf")
    return regression.ratio / regression.baseline if regression.baseline > 0 else float("inf")


def load(path: Path = BASELINE) -> dict[str, dict[str, float | bool]]:
    """Return the baseline's rows by name; empty if there is none."""
    if not path.is_file():
        return {}
    rows: dict[str, dict[str, float | bool]] = json.loads(path.read_text())["rows"]
    return rows


def save(rows: Iterable[Row], *, quick: bool, path: Path = BASELINE) -> Path:
    """Write every row with a ratio as the new baseline; return the file."""
    document = {
        "quick": quick,
        "margin": MARGIN,
        "rows": {
            row.what: {"ratio": row.ratio, "higher_is_better": row.higher_is_better}
            for row in rows
            if guarded(row)
        },
    }
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path


def regressions(
    rows: Iterable[Row], baseline: Mapping[str, Mapping[str, float | bool]]
) -> list[Regression]:
    """Return the rows worse than their baseline by more than :data:`MARGIN`.

    >>> row = Row("get_many", "", "", 2.5, "", "", higher_is_better=False)
    >>> [str(r) for r in regressions([row], {"get_many": {"ratio": 1.0}})]
    ['get_many: ratio 2.5 against baseline 1 (lower is better; 2.50x worse, margin 1.6x)']
    >>> regressions([row], {"get_many": {"ratio": 2.0}})
    []
    """
    found = []
    for row in rows:
        known = baseline.get(row.what)
        if not guarded(row) or known is None or row.ratio is None:
            continue
        candidate = Regression(row.what, row.ratio, float(known["ratio"]), row.higher_is_better)
        if worse_by(candidate) > MARGIN:
            found.append(candidate)
    return found
