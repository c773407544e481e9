"""Shared helpers: interleaved timing, percentiles, and the markdown report."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

SKIPPED = "skipped"


@dataclass(frozen=True)
class Summary:
    """Percentiles, in seconds, of one series of timings."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float

    def as_dict(self) -> dict[str, float]:
        """Return the summary as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Row:
    """One line of the report: a raycache figure, its baseline, and the target."""

    what: str
    ours: str
    base: str
    ratio: float | None
    target: str
    verdict: str
    higher_is_better: bool = False
    """Whether a larger ratio is the better one (a hit ratio, a rate); else a smaller is."""


@dataclass(frozen=True)
class Chart:
    """A line chart for the report: ``(x, y)`` points per series, and how to label them."""

    filename: str
    series: dict[str, list[tuple[float, float]]]
    title: str
    xlabel: str
    ylabel: str
    logx: bool = False
    logy: bool = False


@dataclass
class Measurement:
    """What one benchmark module produced: report rows, raw figures for JSON, and charts."""

    rows: list[Row] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    charts: list[Chart] = field(default_factory=list)


def percentile(samples: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0-100) of ``samples``, interpolating linearly."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(samples: Sequence[float]) -> Summary:
    """Return p50, p90, p99 and the mean of ``samples``."""
    return Summary(
        n=len(samples),
        p50=percentile(samples, 50),
        p90=percentile(samples, 90),
        p99=percentile(samples, 99),
        mean=sum(samples) / len(samples),
    )


def time_calls(fn: Callable[[], object], calls: int) -> list[float]:
    """Call ``fn`` ``calls`` times; return each call's wall time in seconds."""
    samples = []
    clock = time.perf_counter
    for _ in range(calls):
        started = clock()
        fn()
        samples.append(clock() - started)
    return samples


def interleave(
    fns: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    calls: int | Mapping[str, int],
    warmup: int,
) -> dict[str, list[float]]:
    """Time every function in ``rounds`` rounds of blocks, rotating which goes first.

    Each function is first called ``warmup`` times untimed. ``calls`` is the block size,
    one for all or one per name. Rotating the order spreads drift and noise evenly.
    """
    names = list(fns)
    per_name = calls if isinstance(calls, Mapping) else dict.fromkeys(names, calls)
    for name in names:
        time_calls(fns[name], warmup)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].extend(time_calls(fns[name], per_name[name]))
    return samples


def calls_within(
    seconds_per_call: Mapping[str, float], *, budget: float, most: int
) -> dict[str, int]:
    """Return a block size per series: the calls that fit in ``budget`` seconds, 1 to ``most``.

    Lets fast and slow series share one interleaved run without the slow ones dominating it.
    """
    return {
        name: max(1, min(most, int(budget / max(seconds, 1e-9))))
        for name, seconds in seconds_per_call.items()
    }


def round_ratios(ours: Sequence[float], base: Sequence[float], rounds: int) -> list[float]:
    """Return the p50 ratio ``ours / base`` of each round, for a view of the spread."""
    size_ours, size_base = len(ours) // rounds, len(base) // rounds
    return [
        percentile(ours[i * size_ours : (i + 1) * size_ours], 50)
        / percentile(base[i * size_base : (i + 1) * size_base], 50)
        for i in range(rounds)
    ]


def fmt_seconds(seconds: float) -> str:
    """Format a duration with a unit that suits it."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_ratio(ratio: float | None) -> str:
    """Format ``ours / base``, spelling out large speed-ups as "N x faster"."""
    if ratio is None:
        return "—"
    if ratio >= 0.1:
        return f"{ratio:.2f}x"
    return f"{ratio:.2g}x ({1 / ratio:.0f}x faster)"


def p50_text(summary: Summary) -> str:
    """Return a series' p50 as text."""
    return fmt_seconds(summary.p50)


def p50_p99_text(summary: Summary) -> str:
    """Return a series' p50 and p99 as ``"p50 / p99"``."""
    return f"{fmt_seconds(summary.p50)} / {fmt_seconds(summary.p99)}"


def verdict(passed: bool) -> str:
    """Return ``"pass"`` or ``"MISS"``."""
    return "pass" if passed else "MISS"


def comparison(
    what: str,
    ours: Summary,
    base: Summary | None,
    label: str,
    *,
    max_ratio: float | None = None,
    target: str | None = None,
    show: Callable[[Summary], str] = p50_text,
) -> Row:
    """Return a row comparing p50s, with ``ratio = ours / base``.

    With ``max_ratio`` the row passes when the ratio is at most that; ``target`` words the
    goal (``"<= max_ratio x"`` by default). Without it the row is context. ``base`` is None
    for a baseline that could not run: the row then says "skipped".
    """
    goal = "—" if max_ratio is None else target or f"<= {max_ratio:g}x"
    if base is None:
        return Row(what, show(ours), f"{SKIPPED} ({label})", None, goal, SKIPPED)
    ratio = ours.p50 / base.p50
    passed = "—" if max_ratio is None else verdict(ratio <= max_ratio)
    return Row(what, show(ours), f"{show(base)} ({label})", ratio, goal, passed)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a GitHub-flavoured markdown table with columns padded to line up."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def summary_table(rows: Sequence[Row]) -> str:
    """Return the headline table: raycache p50, baseline p50, ratio, target, verdict."""
    headers = ("what", "raycache p50", "baseline p50", "ratio", "target", "pass/miss")
    cells = [(r.what, r.ours, r.base, fmt_ratio(r.ratio), r.target, r.verdict) for r in rows]
    return markdown_table(headers, cells)


def distribution_table(series: Mapping[str, Summary]) -> str:
    """Return a table of n, p50, p90 and p99 for every timed series."""
    headers = ("series", "n", "p50", "p90", "p99")
    cells = [
        (name, str(s.n), fmt_seconds(s.p50), fmt_seconds(s.p90), fmt_seconds(s.p99))
        for name, s in series.items()
    ]
    return markdown_table(headers, cells)
