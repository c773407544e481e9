"""``make cluster-smoke``: ``ray up cluster.yaml`` end to end, on one machine.

It starts a head node from ``cluster.yaml``'s node types, with the autoscaler on it as
``ray up`` starts it (see :mod:`scripts.fake_cluster`), and then:

1. submits ``raycache demo`` with ``ray job submit``, whose tasks need more CPUs than
   the head has, so the autoscaler adds workers;
2. waits for the autoscaler to remove them once they are idle;
3. submits the demo again, which starts warm from the cache's durable tier;
4. stops the cluster.

It prints what happened, step by step, and fails if a step does not happen.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.fake_cluster import RAY, FakeCluster, Scale, running

ROOT = Path(__file__).resolve().parents[1]
RAYCACHE = str(Path(sys.executable).with_name("raycache"))


def main(argv: list[str] | None = None) -> int:
    """Run the smoke; return the process's exit code."""
    parser = argparse.ArgumentParser(prog="cluster_smoke", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "cluster.yaml")
    parser.add_argument("--rows", type=int, default=400_000, help="trips the demo generates")
    parser.add_argument(
        "--idle-timeout", type=float, default=180, help="seconds to wait for scale-down"
    )
    args = parser.parse_args(argv)
    scale = Scale(max_workers=2, min_workers=0, idle_timeout_minutes=0.25)
    work = Path(tempfile.mkdtemp(prefix="raycache-smoke-"))
    started = time.monotonic()
    with running(args.config, scale, dashboard=True) as cluster:
        say(started, f"head up at {cluster.address}, autoscaler v2, dashboard {cluster.dashboard}")
        say(started, f"nodes alive: {alive_nodes(cluster)}")
        first = submit(cluster, work, "first", args.rows)
        peak = first["nodes"]
        passes = f"cold {first['cold']:.1f} s, warm {first['warm']:.2f} s"
        say(started, f"demo 1 done: {passes}, {peak} nodes alive at its end")
        check(peak > 1, "the autoscaler added no worker for the demo's tasks")
        left = wait_for_scale_down(cluster, args.idle_timeout, started)
        check(left == 1, f"{left - 1} idle workers still up after {args.idle_timeout:.0f} s")
        second = submit(cluster, work, "second", args.rows)
        say(started, f"demo 2 done: its first pass {second['cold']:.2f} s, warm from storage")
        check(second["cold"] < first["cold"] / 2, "the second demo did not start warm")
    say(started, "cluster stopped")
    return 0


def submit(cluster: FakeCluster, work: Path, label: str, rows: int) -> dict[str, float]:
    """Run the demo as a Ray job; return its passes' seconds and the nodes alive after."""
    report = work / f"{label}.json"
    command = [
        RAY, "job", "submit", f"--address={cluster.dashboard}", "--",
        RAYCACHE, "demo", f"--rows={rows}", "--partitions=6", "--chart=",
        f"--storage={work / 'storage'}", f"--report={report}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=_without_address())
    print(_tail(done.stdout), flush=True)
    check(done.returncode == 0, f"ray job submit failed:\n{_tail(done.stderr)}")
    seconds = json.loads(report.read_text())["seconds"]
    return {
        "cold": sum(seconds["cold"].values()),
        "warm": sum(seconds["warm"].values()),
        "nodes": alive_nodes(cluster),
    }


def wait_for_scale_down(cluster: FakeCluster, timeout: float, started: float) -> int:
    """Wait until only the head is alive, or ``timeout``; return how many nodes are alive."""
    deadline = time.monotonic() + timeout
    alive = alive_nodes(cluster)
    while alive > 1 and time.monotonic() < deadline:
        time.sleep(5)
        now = alive_nodes(cluster)
        if now != alive:
            say(started, f"nodes alive: {now}")
        alive = now
    return alive


_ALIVE_MARKER = "nodes-alive:"


def alive_nodes(cluster: FakeCluster) -> int:
    """Return how many nodes of ``cluster`` are alive."""
    # The driver may print the autoscaler's events on stdout too, so the count
    # is looked for by its marker rather than taken from the last line.
    code = "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', "
    code += "log_to_driver=False); "
    code += f"print('{_ALIVE_MARKER}', sum(1 for node in ray.nodes() if node['Alive']))"
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", code, cluster.address],
            capture_output=True,
            text=True,
            env=_without_address(),
        )
        counts = [
            int(line.split()[-1])
            for line in done.stdout.splitlines()
            if line.startswith(_ALIVE_MARKER)
        ]
        if done.returncode == 0 and counts:
            return counts[-1]
    raise SystemExit(f"cluster smoke failed: could not count nodes:\n{_tail(done.stderr)}")


def say(started: float, message: str) -> None:
    """Print ``message`` with the seconds since the smoke started."""
    print(f"[{time.monotonic() - started:6.1f} s] {message}", flush=True)


def check(condition: bool, failure: str) -> None:
    """Stop the smoke with ``failure`` unless ``condition`` holds."""
    if not condition:
        raise SystemExit(f"cluster smoke failed: {failure}")


def _without_address() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main())
