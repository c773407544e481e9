"""``RESULTS.md`` and the PNG plots: a run's report for readers, with the machine it ran on.

Every run writes ``RESULTS.md`` and ``plots/*.png`` into its output folder. A full run
from a source checkout also writes them into the ``benchmarks`` folder itself, where they
are committed: ``benchmarks/RESULTS.md`` and ``benchmarks/plots/``. A ``--quick`` run
leaves that copy alone, as its few samples are not figures to publish.

Benchmarks too long for ``make bench`` (the fault scenarios, the write-cost variants) run
on their own and :func:`record` their table under :data:`STANDALONE`, at the end of the
same file, which a ``make bench`` run keeps as it was. ``RESULTS.md`` is so the one place
any figure is written down; the documentation links to it and retypes none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks.output.plots import line_chart
from benchmarks.output.report import Chart, Measurement, Row, fmt_ratio, markdown_table, verdict

SOURCE_DIR = Path(__file__).resolve().parent.parent
PLOTS = "plots"
RESULTS = "RESULTS.md"
STANDALONE = "## Standalone runs"
"""The heading above the tables of benchmarks that run on their own; see :func:`record`."""
MACHINE_FACTS = {
    "cpus": "cpus",
    "memory_gb": "memory (GB)",
    "python": "Python",
    "ray": "Ray",
    "raycache": "raycache",
    "redis_server": "redis-server",
    "memcached": "memcached",
}


def publish(
    out: Path,
    report: str,
    results: Mapping[str, Measurement],
    environment: Mapping[str, Any],
    *,
    quick: bool,
) -> list[Path]:
    """Draw every chart and write ``RESULTS.md`` where they belong; return the files."""
    folders = [out] if quick or not _in_source_checkout() else [out, SOURCE_DIR]
    charts = [chart for result in results.values() for chart in result.charts]
    rows = [row for result in results.values() for row in result.rows]
    text = results_markdown(report, rows, charts, environment, quick=quick)
    written = []
    for folder in folders:
        written += [draw(chart, folder / PLOTS / chart.filename) for chart in charts]
        kept = _standalone(folder / RESULTS)
        (folder / RESULTS).write_text(text + kept, encoding="utf-8")
        written.append(folder / RESULTS)
    return written


def record(title: str, command: str, table: str, path: Path | None = None) -> Path:
    """Put a standalone benchmark's ``table`` in ``RESULTS.md``, replacing its older one.

    It goes under ``### title`` in :data:`STANDALONE`, with the ``command`` that made it
    and the date. Return the file written.
    """
    path = path or SOURCE_DIR / RESULTS
    text = path.read_text(encoding="utf-8") if path.is_file() else "# raycache benchmark results\n"
    main, _, standalone = text.partition(f"\n{STANDALONE}\n")
    sections = _sections(standalone)
    day = datetime.now(timezone.utc).date().isoformat()
    sections[title] = f"Run on {day} (UTC) with `{command}`.\n\n{table.strip()}\n"
    body = "".join(f"\n### {name}\n\n{section}" for name, section in sections.items())
    path.write_text(f"{main.rstrip()}\n\n{STANDALONE}\n{body}", encoding="utf-8")
    return path


def _standalone(path: Path) -> str:
    """Return the standalone part of the ``RESULTS.md`` at ``path``, heading first, or ''."""
    if not path.is_file():
        return ""
    _, found, standalone = path.read_text(encoding="utf-8").partition(f"\n{STANDALONE}\n")
    return f"\n{STANDALONE}\n{standalone}" if found else ""


def _sections(standalone: str) -> dict[str, str]:
    """Return the ``### title`` sections of a standalone part, by title, in order."""
    sections: dict[str, str] = {}
    for chunk in standalone.split("\n### ")[1:]:
        title, _, body = chunk.partition("\n")
        sections[title.strip()] = body.lstrip("\n")
    return sections


def draw(chart: Chart, path: Path) -> Path:
    """Draw ``chart`` as a PNG at ``path``."""
    return line_chart(
        path,
        chart.series,
        title=chart.title,
        xlabel=chart.xlabel,
        ylabel=chart.ylabel,
        logx=chart.logx,
        logy=chart.logy,
    )


def results_markdown(
    report: str,
    rows: Sequence[Row],
    charts: Sequence[Chart],
    environment: Mapping[str, Any],
    *,
    quick: bool,
) -> str:
    """Return ``RESULTS.md``: when and where it ran, what missed, the report, the plots."""
    run = "python -m benchmarks --quick" if quick else "python -m benchmarks"
    facts = [str(environment.get(key, "unknown")) for key in MACHINE_FACTS]
    parts = [
        "# raycache benchmark results",
        f"Run on {environment['started_utc']} (UTC) with `{run}` (or `make bench`).",
        "## Machine",
        markdown_table(list(MACHINE_FACTS.values()), [facts]),
        "## Misses",
        misses(rows),
        report,
        "## Plots",
        *(f"![{chart.title}]({PLOTS}/{chart.filename})" for chart in charts),
    ]
    return "\n\n".join(parts) + "\n"


def misses(rows: Sequence[Row]) -> str:
    """Return a bullet per row that missed its target, or a sentence saying none did."""
    missed = [row for row in rows if row.verdict == verdict(passed=False)]
    if not missed:
        return "Every target was met."
    return "\n".join(
        f"- **{row.what}**: {row.ours} against {row.base}, ratio {fmt_ratio(row.ratio)}; "
        f"target {row.target}"
        for row in missed
    )


def memory_gb() -> float | None:
    """Return this machine's physical memory in GB, or None where the OS does not say."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    except (AttributeError, ValueError, OSError):
        return None


def _in_source_checkout() -> bool:
    return (SOURCE_DIR.parent / "pyproject.toml").is_file()
