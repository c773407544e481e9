"""The ``raycache`` command: run the demo or the benchmarks, and inspect or manage caches.

Commands other than ``demo`` and ``bench`` attach to a running cluster: ``--address`` or
the ``RAY_ADDRESS`` environment variable says where, and ``auto`` is the default.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

STATS_COLUMNS = (
    "shard", "entries", "bytes", "capacity", "hits", "misses", "evictions", "storage_hits",
    "storage_entries",
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from raycache.demo import DEMO_STORAGE, run_demo

        storage = None if args.no_storage else args.storage or DEMO_STORAGE
        run_demo(
            args.rows,
            args.partitions,
            chart=args.chart or None,
            storage=storage,
            report=args.report,
        )
        return 0
    if args.command == "bench":
        return _bench(quick=args.quick, out=args.out)
    _connect(args.address)
    return int(args.handler(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raycache", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the demonstration on an embedded local Ray")
    demo.add_argument("--rows", type=int, default=12_000_000, help="trips to generate")
    demo.add_argument("--partitions", type=int, default=12, help="Arrow partitions")
    demo.add_argument("--chart", default="demo.png", help="PNG chart path ('' for none)")
    demo.add_argument(
        "--storage", help="directory or URL the results persist in (default: .raycache-demo)"
    )
    demo.add_argument("--no-storage", action="store_true", help="keep results in memory only")
    demo.add_argument(
        "--report", help="also write each pass's timings and answer to this JSON file"
    )
    bench = commands.add_parser(
        "bench", help="run the benchmarks against raw Ray, Redis and memcached on a local Ray"
    )
    bench.add_argument("--quick", action="store_true", help="a short run (under two minutes)")
    bench.add_argument("--out", help="output folder (default: benchmarks/out)")
    for name, handler, help_text, needs_name in (
        ("status", _status, "list the caches running on the cluster", False),
        ("stats", _stats, "show a cache's counters, per shard", True),
        ("clear", _clear, "remove every entry of a cache", True),
        ("shutdown", _shutdown, "stop a cache and free what it holds", True),
    ):
        command = commands.add_parser(name, help=help_text)
        if needs_name:
            command.add_argument("name", help="the cache's name")
        command.add_argument("--address", default=os.environ.get("RAY_ADDRESS", "auto"))
        command.add_argument("--json", action="store_true", help="print JSON for scripts")
        command.set_defaults(handler=handler)
    return parser


def _bench(*, quick: bool, out: str | None) -> int:
    # The benchmarks live in the source tree, not in the wheel: a generic top-level
    # package name such as "benchmarks" could collide with another distribution's.
    try:
        runner = importlib.import_module("benchmarks.__main__")
    except ModuleNotFoundError as error:
        if error.name not in ("benchmarks", "benchmarks.__main__"):
            raise
        print(
            "raycache bench runs from a source checkout: clone the repository and run "
            "`make bench` there",
            file=sys.stderr,
        )
        return 2
    argv = ["--quick"] if quick else []
    if out is not None:
        argv += ["--out", out]
    return int(runner.main(argv))


def _connect(address: str) -> None:
    import ray

    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)


def _status(args: argparse.Namespace) -> int:
    from raycache.client.admin import running_caches

    caches = running_caches()
    if args.json:
        print(json.dumps(caches, indent=2))
    elif not caches:
        print("no caches are running")
    else:
        _print_table(caches, ("name", "shards", "entries", "bytes", "capacity", "hit_ratio"))
    return 0


def _stats(args: argparse.Namespace) -> int:
    stats = _attach(args.name).stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    summary = {k: v for k, v in stats.items() if k != "shards"}
    for key, value in summary.items():
        print(f"{key:>12}: {_format(value)}")
    print()
    _print_table(stats["shards"], STATS_COLUMNS)
    return 0


def _clear(args: argparse.Namespace) -> int:
    _attach(args.name).clear()
    _report(args, {"cleared": args.name})
    return 0


def _shutdown(args: argparse.Namespace) -> int:
    _attach(args.name).shutdown()
    _report(args, {"shutdown": args.name})
    return 0


def _attach(name: str) -> Any:
    from raycache.client.cache import Cache
    from raycache.errors import CacheNotFoundError

    try:
        return Cache.attach(name)
    except CacheNotFoundError as error:
        print(f"raycache: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def _report(args: argparse.Namespace, result: dict[str, str]) -> None:
    if args.json:
        print(json.dumps(result))
    else:
        ((verb, name),) = result.items()
        print(f"{verb} {name}")


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    cells = [[_format(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


if __name__ == "__main__":
    raise SystemExit(main())
