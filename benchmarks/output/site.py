"""The documentation's view of the benchmark results: ``benchmarks/RESULTS.md`` as it is.

``docs/benchmarks.md`` includes ``RESULTS.md`` when the site is built (with
``pymdownx.snippets``), so that its figures are written down once. This MkDocs hook puts
the plots that ``RESULTS.md`` shows beside the page, at ``plots/``, where its image links
point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

PLOTS = Path(__file__).resolve().parent.parent / "plots"


def on_files(files: Files, config: Any) -> Files:
    """Add every plot of ``benchmarks/plots`` to the site, as ``plots/<name>.png``."""
    for plot in sorted(PLOTS.glob("*.png")):
        files.append(
            File(
                f"plots/{plot.name}",
                src_dir=str(PLOTS.parent),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
