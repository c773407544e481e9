"""Hit ratios of every eviction policy, libCacheSim's and Bélády's, on synthetic traces.

Each trace is replayed cache-aside (a miss puts the key) through a real
:class:`raycache.core.store.Store` with each policy, at cache sizes that are a share of the
trace's footprint (the total size of its distinct keys). No Ray is needed. The same
requests, at the same byte capacities, go through libCacheSim's published LRU, ARC, LIRS,
S3-FIFO, SIEVE and W-TinyLFU (:mod:`benchmarks.simulator.libcachesim_replay`). Hit ratios count
every request, first ones included, for every policy and Bélády alike. The varied-size
trace's Bélády figure is a size-oblivious reference, not an optimum (see
:mod:`benchmarks.simulator.belady`).

The default policy must match LRU or beat it, and come within 0.01 of the best
libCacheSim policy, on every trace at every size. Policies are read from
:data:`raycache.core.store.POLICIES` and :data:`~raycache.core.store.DEFAULT_POLICY` at
run time. To tune a policy, :func:`compare` measures one against libCacheSim quickly::

    from benchmarks.simulator.policies import compare
    from benchmarks.simulator.policy_gaps import gap_table
    print(gap_table(compare("adaptive")))

Run alone with ``python -m benchmarks.simulator.policies [--quick] [--out DIR] [--policy NAME]``;
``make bench`` refreshes the committed charts in ``benchmarks/plots``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.output.report import (
    SKIPPED,
    Chart,
    Measurement,
    Row,
    markdown_table,
    summary_table,
    verdict,
)
from benchmarks.output.results import draw
from benchmarks.simulator import libcachesim_replay
from benchmarks.simulator.belady import belady_hit_ratio
from benchmarks.simulator.policy_gaps import (
    GAP_TOLERANCE,
    Gap,
    Grid,
    gap_table,
    gaps,
    worst,
    worst_by_trace,
)
from benchmarks.simulator.traces import Trace, standard_traces
from raycache.core import store

BELADY = "bélády"
FRACTIONS = (0.01, 0.02, 0.05, 0.1, 0.2)
QUICK_FRACTIONS = (0.01, 0.05, 0.2)
TARGET_VS_LRU = 1.0
TARGET_VS_BELADY = 0.9
BELADY_TARGET_TRACE = "zipf 1"
OUT = Path("benchmarks/out")
NO_LIBCACHESIM = "libcachesim not installed: pip install -e '.[bench]'"


def default_policy() -> str:
    """Return the default policy as raycache defines it now (a colleague may be changing it)."""
    return str(store.DEFAULT_POLICY)


def policy_names() -> list[str]:
    """Return every raycache policy by name, as raycache defines them now."""
    return sorted(store.POLICIES)


def hit_ratio(trace: Trace, capacity: int, policy: str) -> float:
    """Replay ``trace`` cache-aside through a ``capacity``-byte store; return its hit ratio."""
    cache = store.Store(capacity, policy=policy)
    get, put = cache.get, cache.put
    for key, size in trace:
        if get(key) is None:
            put(key, key, size)
    return cache.stats().hit_ratio


def capacity_for(trace: Trace, fraction: float) -> int:
    """Return the cache size in bytes that holds ``fraction`` of the trace's footprint."""
    return max(1, int(trace.distinct_bytes() * fraction))


def measure_trace(
    trace: Trace, fractions: Sequence[float], policies: Sequence[str], *, belady: bool
) -> dict[float, dict[str, float]]:
    """Return the hit ratio of every policy, libCacheSim's and Bélády's, at every size."""
    capacities = [capacity_for(trace, fraction) for fraction in fractions]
    by_lcs = libcachesim_replay.hit_ratios(trace, capacities)
    by_size = {}
    for fraction, capacity, lcs in zip(fractions, capacities, by_lcs, strict=True):
        ratios = {policy: hit_ratio(trace, capacity, policy) for policy in policies}
        ratios.update(lcs)
        if belady:
            ratios[BELADY] = belady_hit_ratio(trace, capacity)
        by_size[fraction] = ratios
    return by_size


def measure_grid(
    traces: list[Trace],
    fractions: Sequence[float],
    policies: Sequence[str] | None = None,
    *,
    belady: bool = True,
) -> Grid:
    """Return the hit ratio of every policy (all raycache's by default) on every trace."""
    names = policy_names() if policies is None else list(dict.fromkeys(policies))
    progress = tqdm(traces, desc="policies", unit="trace", file=sys.stderr)
    return {trace.name: measure_trace(trace, fractions, names, belady=belady) for trace in progress}


def compare(policy: str, *, quick: bool = True) -> list[Gap]:
    """Return ``policy`` against LRU and the best libCacheSim policy, per trace and size.

    For tuning a policy from a scratch script: no Bélády, only ``policy`` and ``lru``
    replayed through raycache. ``gap_table(compare(name))`` prints the cells;
    ``max(c.gap for c in cells)`` is the worst gap (needs libcachesim installed).
    """
    traces = standard_traces(quick=quick)
    fractions = QUICK_FRACTIONS if quick else FRACTIONS
    return gaps(measure_grid(traces, fractions, [policy, "lru"], belady=False), policy)


def worst_ratio(by_size: dict[float, dict[str, float]], base: str) -> tuple[float, float]:
    """Return the size where the default policy does worst against ``base``, and the ratio."""
    default = default_policy()
    ratios = {f: r[default] / r[base] for f, r in by_size.items() if r[base] > 0}
    fraction = min(ratios, key=ratios.__getitem__)
    return fraction, ratios[fraction]


def comparison_row(
    trace: str, by_size: dict[float, dict[str, float]], base: str, target: float | None
) -> Row:
    """Return the row of the default policy against ``base`` at its worst cache size.

    With no ``target`` the row is a reference only, with no verdict.
    """
    default = default_policy()
    fraction, ratio = worst_ratio(by_size, base)
    ratios = by_size[fraction]
    at = f"at {fraction:.0%} of footprint (worst of {len(by_size)} sizes)"
    return Row(
        what=f"hit ratio, {trace}: {default} (default) vs {base}, {at}",
        ours=f"{ratios[default]:.3f}",
        base=f"{ratios[base]:.3f}" + ("" if target else " (reference, not an optimum)"),
        ratio=ratio,
        target=f">= {target:.2f}x at every size" if target else "—",
        verdict=verdict(ratio >= target) if target else "—",
        higher_is_better=True,
    )


def gap_row(cell: Gap, what: str, sizes: int) -> Row:
    """Return the row of the default policy against the best libCacheSim policy in ``cell``."""
    return Row(
        what=f"{what}: {cell.policy} (default) vs best libCacheSim policy, at "
        f"{cell.fraction:.0%} of footprint (worst of {sizes} sizes)",
        ours=f"{cell.hit_ratio:.3f}",
        base=f"{cell.best:.3f} ({cell.best_policy})",
        ratio=cell.hit_ratio / cell.best if cell.best > 0 else None,
        target=f"gap <= {GAP_TOLERANCE} at every size",
        verdict=verdict(cell.gap <= GAP_TOLERANCE),
        higher_is_better=True,
    )


def libcachesim_rows(grid: Grid) -> list[Row]:
    """Return the default against libCacheSim's best: per trace, then overall."""
    cells = gaps(grid, default_policy())
    if not cells:
        return [Row("hit ratio vs libCacheSim", "—", NO_LIBCACHESIM, None, "—", SKIPPED)]
    sizes = len(next(iter(grid.values())))
    rows = [gap_row(c, f"hit ratio, {t}", sizes) for t, c in worst_by_trace(cells).items()]
    rows.append(gap_row(worst(cells), "worst gap, every trace", sizes * len(grid)))
    return rows


def headline_rows(grid: Grid, traces: list[Trace]) -> list[Row]:
    """Return default vs LRU and vs libCacheSim for every trace, then vs Bélády."""
    rows = [comparison_row(t.name, grid[t.name], "lru", TARGET_VS_LRU) for t in traces]
    rows.extend(libcachesim_rows(grid))
    rows.append(
        comparison_row(BELADY_TARGET_TRACE, grid[BELADY_TARGET_TRACE], BELADY, TARGET_VS_BELADY)
    )
    rows.extend(
        comparison_row(t.name, grid[t.name], BELADY, None) for t in traces if not t.unit_sizes
    )
    return rows


def headline(grid: Grid) -> str:
    """Return the one line that says how far the default is from libCacheSim's best."""
    cells = gaps(grid, default_policy())
    if not cells:
        return f"Worst gap to libCacheSim: {SKIPPED} ({NO_LIBCACHESIM})."
    cell = worst(cells)
    passed = verdict(cell.gap <= GAP_TOLERANCE)
    return f"Worst gap to the best libCacheSim policy: {cell.describe()} ({passed})."


def grid_table(grid: Grid) -> str:
    """Return the full grid as markdown: one line per trace and size, one column per policy."""
    columns = list(next(iter(next(iter(grid.values())).values())))
    cells = [
        (trace, f"{fraction:.0%}", *(f"{ratios[c]:.3f}" for c in columns))
        for trace, by_size in grid.items()
        for fraction, ratios in by_size.items()
    ]
    return markdown_table(("trace", "cache size", *columns), cells)


def chart_filename(trace: str) -> str:
    """Return the PNG name of one trace's chart."""
    return f"policies-{re.sub(r'[^a-z0-9]+', '-', trace.lower()).strip('-')}.png"


def charted_columns(ratios: dict[str, float]) -> list[str]:
    """Return the series worth a line: the default, LRU, libCacheSim's others, Bélády."""
    lcs = [c for c in libcachesim_replay.columns() if c != libcachesim_replay.column("LRU")]
    return [
        name for name in dict.fromkeys([default_policy(), "lru", *lcs, BELADY]) if name in ratios
    ]


def series_label(name: str) -> str:
    """Return a chart's name for a column, marking the default policy."""
    return f"{name} (default)" if name == default_policy() else name


def charts(grid: Grid) -> list[Chart]:
    """Return hit ratio against cache size, one chart per trace, and the gaps in one chart."""
    axis = "cache size (% of the trace's footprint)"
    per_trace = [
        Chart(
            filename=chart_filename(trace),
            series={
                series_label(name): [(100 * f, ratios[name]) for f, ratios in by_size.items()]
                for name in charted_columns(next(iter(by_size.values())))
            },
            title=f"Hit ratio, {trace} trace",
            xlabel=axis,
            ylabel="hit ratio",
            logx=True,
        )
        for trace, by_size in grid.items()
    ]
    return per_trace + gap_charts(grid, axis)


def gap_charts(grid: Grid, axis: str) -> list[Chart]:
    """Return the default's gap to libCacheSim's best, one line per trace (none without it)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for cell in gaps(grid, default_policy()):
        series.setdefault(cell.trace, []).append((100 * cell.fraction, cell.gap))
    if not series:
        return []
    title = f"Best libCacheSim hit ratio minus {default_policy()}'s (above 0: libCacheSim wins)"
    return [Chart("policies-gap-to-libcachesim.png", series, title, axis, "gap", logx=True)]


def run(cache: object, *, quick: bool) -> Measurement:
    """Measure the grid and report the headline rows, the full table and the charts."""
    traces = standard_traces(quick=quick)
    grid = measure_grid(traces, QUICK_FRACTIONS if quick else FRACTIONS)
    default = default_policy()
    section = "\n\n".join(
        [
            f"## Eviction policies: hit ratio by trace and cache size (default: {default})",
            headline(grid),
            f'Columns "lcs ..." are libCacheSim\'s policies on the same requests. Bélády on '
            f"the varied-size trace is a size-oblivious reference, not an optimum. "
            f"Requests per trace: {len(traces[0]):,}.",
            grid_table(grid),
            f"### {default} (default) against LRU and the best libCacheSim policy",
            gap_table(gaps(grid, default)),
        ]
    )
    raw: dict[str, Any] = {
        "summaries": {},
        "round_p50_ratios": [],
        "default_policy": default,
        "requests_per_trace": {t.name: len(t) for t in traces},
        "grid": {trace: {str(f): r for f, r in by_size.items()} for trace, by_size in grid.items()},
        "sections": [section],
    }
    return Measurement(rows=headline_rows(grid, traces), raw=raw, charts=charts(grid))


def main() -> None:
    """Print the headline rows and the full grid, or with ``--policy`` one policy's gaps."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.simulator.policies", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="shorter traces, fewer sizes")
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG charts")
    parser.add_argument("--policy", help="only compare this policy with libCacheSim")
    args = parser.parse_args()
    if args.policy:
        print(gap_table(compare(args.policy, quick=args.quick)))
        return
    result = run(None, quick=args.quick)
    print(summary_table(result.rows), *result.raw["sections"], sep="\n\n")
    for chart in result.charts:
        print(f"wrote {draw(chart, args.out / chart.filename)}", file=sys.stderr)


if __name__ == "__main__":
    main()
