"""Hit ratios of every eviction policy, and of Bélády's offline policy, on synthetic traces.

Each trace is replayed cache-aside (a miss puts the key) through a real
:class:`raycache.core.store.Store` with each policy, at cache sizes that are a share of the
trace's footprint (the total size of its distinct keys). No Ray is needed. Hit ratios
count every request, first ones included, for the online policies and Bélády alike.
The varied-size trace's Bélády figure is a size-oblivious reference, not an optimum
(see :mod:`benchmarks.belady`).

Run alone with ``python -m benchmarks.policies [--quick] [--out DIR]``; ``make bench``
refreshes the committed charts in ``benchmarks/plots``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.belady import belady_hit_ratio
from benchmarks.report import Chart, Measurement, Row, markdown_table, summary_table, verdict
from benchmarks.results import draw
from benchmarks.traces import Trace, standard_traces
from raycache.core.store import DEFAULT_POLICY, POLICIES, Store

BELADY = "bélády"
FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2)
QUICK_FRACTIONS = (0.01, 0.05, 0.2)
TARGET_VS_LRU = 1.0
TARGET_VS_BELADY = 0.9
BELADY_TARGET_TRACE = "zipf 1"
OUT = Path("benchmarks/out")

Grid = dict[str, dict[float, dict[str, float]]]
"""Hit ratio by trace name, then cache size (share of the footprint), then policy."""


def hit_ratio(trace: Trace, capacity: int, policy: str) -> float:
    """Replay ``trace`` cache-aside through a ``capacity``-byte store; return its hit ratio."""
    store = Store(capacity, policy=policy)
    get, put = store.get, store.put
    for key, size in trace:
        if get(key) is None:
            put(key, key, size)
    return store.stats().hit_ratio


def capacity_for(trace: Trace, fraction: float) -> int:
    """Return the cache size in bytes that holds ``fraction`` of the trace's footprint."""
    return max(1, int(trace.distinct_bytes() * fraction))


def measure_grid(traces: list[Trace], fractions: tuple[float, ...]) -> Grid:
    """Return the hit ratio of every policy and of Bélády on every trace at every size."""
    grid: Grid = {}
    cells = [(trace, fraction) for trace in traces for fraction in fractions]
    for trace, fraction in tqdm(cells, desc="policies", unit="trace x size", file=sys.stderr):
        capacity = capacity_for(trace, fraction)
        ratios = {policy: hit_ratio(trace, capacity, policy) for policy in sorted(POLICIES)}
        ratios[BELADY] = belady_hit_ratio(trace, capacity)
        grid.setdefault(trace.name, {})[fraction] = ratios
    return grid


def worst_ratio(by_size: dict[float, dict[str, float]], base: str) -> tuple[float, float]:
    """Return the size where the default policy does worst against ``base``, and the ratio."""
    ratios = {f: r[DEFAULT_POLICY] / r[base] for f, r in by_size.items() if r[base] > 0}
    fraction = min(ratios, key=ratios.__getitem__)
    return fraction, ratios[fraction]


def comparison_row(
    trace: str, by_size: dict[float, dict[str, float]], base: str, target: float | None
) -> Row:
    """Return the row of the default policy against ``base`` at its worst cache size.

    With no ``target`` the row is a reference only, with no verdict.
    """
    fraction, ratio = worst_ratio(by_size, base)
    ratios = by_size[fraction]
    at = f"at {fraction:.0%} of footprint (worst of {len(by_size)} sizes)"
    return Row(
        what=f"hit ratio, {trace}: {DEFAULT_POLICY} (default) vs {base}, {at}",
        ours=f"{ratios[DEFAULT_POLICY]:.3f}",
        base=f"{ratios[base]:.3f}" + ("" if target else " (reference, not an optimum)"),
        ratio=ratio,
        target=f">= {target:.2f}x at every size" if target else "—",
        verdict=verdict(ratio >= target) if target else "—",
    )


def headline_rows(grid: Grid, traces: list[Trace]) -> list[Row]:
    """Return default vs LRU for every trace, then default vs Bélády where it is meaningful."""
    rows = [comparison_row(t.name, grid[t.name], "lru", TARGET_VS_LRU) for t in traces]
    rows.append(
        comparison_row(BELADY_TARGET_TRACE, grid[BELADY_TARGET_TRACE], BELADY, TARGET_VS_BELADY)
    )
    rows.extend(
        comparison_row(t.name, grid[t.name], BELADY, None) for t in traces if not t.unit_sizes
    )
    return rows


def grid_table(grid: Grid) -> str:
    """Return the full grid as markdown: one line per trace and size, one column per policy."""
    columns = [*sorted(POLICIES), BELADY]
    cells = [
        (trace, f"{fraction:.0%}", *(f"{ratios[c]:.3f}" for c in columns))
        for trace, by_size in grid.items()
        for fraction, ratios in by_size.items()
    ]
    return markdown_table(("trace", "cache size", *columns), cells)


def charts(grid: Grid) -> list[Chart]:
    """Return hit ratio against cache size, one chart per trace."""
    return [
        Chart(
            filename=f"policies-{re.sub(r'[^a-z0-9]+', '-', trace.lower()).strip('-')}.png",
            series={
                name: [(100 * f, ratios[name]) for f, ratios in by_size.items()]
                for name in next(iter(by_size.values()))
            },
            title=f"Hit ratio, {trace} trace",
            xlabel="cache size (% of the trace's footprint)",
            ylabel="hit ratio",
            logx=True,
        )
        for trace, by_size in grid.items()
    ]


def run(cache: object, *, quick: bool) -> Measurement:
    """Measure the grid and report the headline rows, the full table and the charts."""
    traces = standard_traces(quick=quick)
    grid = measure_grid(traces, QUICK_FRACTIONS if quick else FRACTIONS)
    section = "\n\n".join(
        [
            f"## Eviction policies: hit ratio by trace and cache size (default: {DEFAULT_POLICY})",
            f"Bélády on the varied-size trace is a size-oblivious reference, not an optimum. "
            f"Requests per trace: {len(traces[0]):,}.",
            grid_table(grid),
        ]
    )
    raw: dict[str, Any] = {
        "summaries": {},
        "round_p50_ratios": [],
        "default_policy": DEFAULT_POLICY,
        "requests_per_trace": {t.name: len(t) for t in traces},
        "grid": {trace: {str(f): r for f, r in by_size.items()} for trace, by_size in grid.items()},
        "sections": [section],
    }
    return Measurement(rows=headline_rows(grid, traces), raw=raw, charts=charts(grid))


def main() -> None:
    """Print the headline rows and the full grid."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.policies", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter traces, fewer sizes")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG charts")
    args = parser.parse_args()
    result = run(None, quick=args.quick)
    print(summary_table(result.rows), *result.raw["sections"], sep="\n\n")
    for chart in result.charts:
        print(f"wrote {draw(chart, args.out / chart.filename)}", file=sys.stderr)


if __name__ == "__main__":
    main()
