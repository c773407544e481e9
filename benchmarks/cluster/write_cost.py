"""Where the durable tier's cost to a cold pass comes from: the demo, with writes varied.

``python -m benchmarks.cluster.write_cost [--quick] [--rounds N]`` runs the demo's cold pass
(each run a new process with a Ray of its own, as ``benchmarks.cluster.durable_demo`` does) with:

- no storage;
- storage, as shipped;
- storage configured, but no file ever written (reads only);
- storage, with the writer held back until the demo exits (values queued, not written);
- storage, with every file flushed to disk (``fsync``) before it is renamed into place.

The variants are made without a knob in raycache: a ``sitecustomize`` module on the
demo's ``PYTHONPATH``, which every process of its Ray imports, patches the tier once
its module is imported. What each variant costs over no storage says where the cost is:
in holding values for the writer, in encoding and writing them, or in the disk.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from benchmarks.cluster.durable_demo import PARTITIONS, QUICK_PARTITIONS, QUICK_ROWS, ROWS
from benchmarks.output.report import Summary, comparison, summarize, summary_table
from benchmarks.output.results import record

VARIANTS = ("off", "on", "no_writes", "held", "fsync")

_SITECUSTOMIZE = """
import importlib.abc, importlib.util, os, sys, time

VARIANT = os.environ.get("RAYCACHE_BENCH_WRITES", "on")

def no_writes(module):
    module.StorageTier.write = lambda self, *args, **kwargs: True

def held(module):
    def drain(self):
        time.sleep(10**6)
    module.Durable._drain = drain

def fsync(module):
    original = module.LocalFiles.write
    def write(self, path, chunks):
        written = original(self, path, chunks)
        descriptor = os.open(self._full(path), os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return written
    module.LocalFiles.write = write

PATCHES = {
    "no_writes": ("raycache.core.storage.tier", no_writes),
    "held": ("raycache.actors.durable", held),
    "fsync": ("raycache.core.storage.files", fsync),
}

class Patcher(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        wanted = PATCHES.get(VARIANT)
        if wanted is None or name != wanted[0]:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            wanted[1](module)
        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, Patcher())
"""


def cold_pass(folder: Path, variant: str, rows: int, partitions: int) -> float:
    """Run the demo once in a new process; return its cold pass in seconds."""
    import json

    report = folder / f"report-{variant}.json"
    storage = folder / f"storage-{variant}"
    where = ["--no-storage"] if variant == "off" else ["--storage", str(storage)]
    command = [sys.executable, "-m", "raycache.cli", "demo", "--chart", "", *where]
    sizes = ["--rows", str(rows), "--partitions", str(partitions), "--report", str(report)]
    path = os.pathsep.join([str(folder / "site"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "RAYCACHE_BENCH_WRITES": variant}
    subprocess.run([*command, *sizes], check=True, cwd=folder, stdout=subprocess.DEVNULL, env=env)
    subprocess.run(["rm", "-rf", str(storage)], check=True)
    return float(sum(json.loads(report.read_text())["seconds"]["cold"].values()))


def measure(rows: int, partitions: int, rounds: int) -> dict[str, Summary]:
    """Return each variant's cold passes, the variants in rotating order round by round."""
    times: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="raycache-write-cost-") as directory:
        folder = Path(directory)
        (folder / "site").mkdir()
        (folder / "site" / "sitecustomize.py").write_text(textwrap.dedent(_SITECUSTOMIZE))
        for index in range(rounds):
            order = VARIANTS[index % len(VARIANTS) :] + VARIANTS[: index % len(VARIANTS)]
            for variant in order:
                times[variant].append(cold_pass(folder, variant, rows, partitions))
                print(f"[write_cost] round {index + 1}: {variant} {times[variant][-1]:.2f} s",
                      file=sys.stderr)  # fmt: skip
    return {variant: summarize(series) for variant, series in times.items()}


def main(argv: list[str] | None = None) -> int:
    """Run the variants and print each one's cold pass against the pass without storage."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cluster.write_cost", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="3 M trips")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    rows, partitions = (QUICK_ROWS, QUICK_PARTITIONS) if args.quick else (ROWS, PARTITIONS)
    timed = measure(rows, partitions, args.rounds)
    labels = {
        "on": "storage, as shipped",
        "no_writes": "storage, no writes",
        "held": "storage, writes held back",
        "fsync": "storage, fsync before rename",
    }
    rows_ = [
        comparison(f"demo cold pass: {label}", timed[variant], timed["off"], "no storage")
        for variant, label in labels.items()
    ]
    table = summary_table(rows_)
    print(table)
    if not args.quick:
        command = f"python -m benchmarks.cluster.write_cost --rounds {args.rounds}"
        print(f"recorded in {record('Cost of storage writes in the cold pass', command, table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
