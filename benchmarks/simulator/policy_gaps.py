"""How far one raycache policy falls behind the best libCacheSim policy, cell by cell.

A cell is one trace at one cache size. Its gap is the best libCacheSim hit ratio minus
the policy's: positive when libCacheSim does better, negative when raycache does.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.output.report import markdown_table
from benchmarks.simulator.libcachesim_replay import PREFIX

Grid = dict[str, dict[float, dict[str, float]]]
"""Hit ratio by trace name, then cache size (share of the footprint), then column."""

GAP_TOLERANCE = 0.01
"""How far below the best libCacheSim policy the default may fall, in absolute hit ratio."""


@dataclass(frozen=True)
class Gap:
    """One cell: ``policy``'s hit ratio against LRU's and the best libCacheSim policy's."""

    trace: str
    fraction: float
    policy: str
    hit_ratio: float
    lru: float
    best_policy: str
    best: float
    ratios: dict[str, float]

    @property
    def gap(self) -> float:
        """The best libCacheSim hit ratio minus the policy's (positive: libCacheSim wins)."""
        return self.best - self.hit_ratio

    def describe(self) -> str:
        """Return the cell in words, e.g. ``"zipf 1 at 1%: 0.450 vs lcs S3FIFO 0.460"``."""
        return (
            f"{self.trace} at {self.fraction:.0%} of footprint: {self.policy} "
            f"{self.hit_ratio:.3f} vs {self.best_policy} {self.best:.3f}, gap {self.gap:+.3f}"
        )


def lcs_columns(ratios: dict[str, float]) -> dict[str, float]:
    """Return the libCacheSim entries of one cell's hit ratios."""
    return {name: ratio for name, ratio in ratios.items() if name.startswith(PREFIX)}


def gaps(grid: Grid, policy: str) -> list[Gap]:
    """Return ``policy``'s gap in every cell of ``grid`` (empty without libCacheSim)."""
    cells = []
    for trace, by_size in grid.items():
        for fraction, ratios in by_size.items():
            lcs = lcs_columns(ratios)
            if not lcs:
                continue
            best_policy = max(lcs, key=lcs.__getitem__)
            cells.append(
                Gap(
                    trace=trace,
                    fraction=fraction,
                    policy=policy,
                    hit_ratio=ratios[policy],
                    lru=ratios["lru"],
                    best_policy=best_policy,
                    best=lcs[best_policy],
                    ratios=ratios,
                )
            )
    return cells


def worst(cells: list[Gap]) -> Gap:
    """Return the cell where libCacheSim leads by the most."""
    return max(cells, key=lambda cell: cell.gap)


def worst_by_trace(cells: list[Gap]) -> dict[str, Gap]:
    """Return each trace's worst cell, in the traces' order."""
    by_trace: dict[str, Gap] = {}
    for cell in cells:
        if cell.trace not in by_trace or cell.gap > by_trace[cell.trace].gap:
            by_trace[cell.trace] = cell
    return by_trace


def gap_table(cells: list[Gap]) -> str:
    """Return every cell as markdown: the policy, LRU, the best libCacheSim policy, the gap."""
    headers = ("trace", "cache size", "policy", "lru", "best libCacheSim", "gap", "ok")
    rows = [
        (
            c.trace,
            f"{c.fraction:.0%}",
            f"{c.hit_ratio:.3f}",
            f"{c.lru:.3f}",
            f"{c.best:.3f} ({c.best_policy.removeprefix(PREFIX)})",
            f"{c.gap:+.3f}",
            "yes" if c.gap <= GAP_TOLERANCE and c.hit_ratio >= c.lru else "no",
        )
        for c in cells
    ]
    return markdown_table(headers, rows)
