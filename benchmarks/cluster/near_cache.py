"""The coherent near cache: a warm key read in the handle's own process, against Redis GET,
and how soon another process's put reaches that reader.

The read is timed interleaved with a Redis GET and a plain get of the same 100-byte
value. For the push, a writer actor puts ``(n, wall time)`` every few milliseconds while
this process reads the key in a loop: each new value seen gives the time from its put's
return (the write done, as the writer knows it) to the read that first returned it, and
from the put's start, which adds the put's own round trip. A value older than one seen
before would be a read gone back in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ray

import raycache
from benchmarks.harness.baselines import REDIS, running_stores
from benchmarks.output.report import (
    Measurement,
    Row,
    comparison,
    fmt_seconds,
    interleave,
    round_ratios,
    summarize,
    verdict,
)

KEY = "near-key"
VALUE_BYTES = 100
TARGET_RATIO = 0.1
TARGET_PUSH_S = 0.005
WRITE_GAP_S = 0.005

PUSHED = "near push: put's return to read"
PUSHED_FROM_START = "near push: put's start to read"
OURS = "near get: near cache"
PLAIN = "near get: plain get"
BASE = "near get: Redis GET"


@ray.remote(num_cpus=0)
class StampedWriter:
    """Puts ``(n, wall time at the start of the put)`` under one key, n counting up."""

    def __init__(self, name: str) -> None:
        self._cache = raycache.Cache.attach(name)

    def write(self, key: str, writes: int, gap_s: float) -> list[float]:
        """Put ``writes`` values, ``gap_s`` apart; return the wall time each put returned."""
        returned = []
        for n in range(writes):
            self._cache.put(key, (n, time.time()))
            returned.append(time.time())
            time.sleep(gap_s)
        return returned


def run(cache: raycache.Cache, *, quick: bool) -> Measurement:
    """Time near-cache reads against Redis and plain gets, then the push of 1,000 puts."""
    value = bytes(range(VALUE_BYTES))
    cache.put(KEY, value)
    near = raycache.Cache.attach(cache.name, near_cache=True)
    _warm(near)
    rounds = 4 if quick else 10
    with running_stores() as stores:
        fns: dict[str, Callable[[], object]] = {
            OURS: lambda: near.get(KEY),
            PLAIN: lambda: cache.get(KEY),
        }
        for baseline, store in stores.items():
            if baseline.name == REDIS:
                store.set(KEY, value)
                fns[BASE] = lambda store=store: store.get(KEY)  # type: ignore[misc]
        samples = interleave(fns, rounds=rounds, calls=300 if quick else 1000, warmup=100)
    delays, backwards = _push(cache.name, near, writes=200 if quick else 1000)
    summaries = {name: summarize(series) for name, series in samples.items()}
    summaries[PUSHED] = summarize(delays[0])
    summaries[PUSHED_FROM_START] = summarize(delays[1])
    base = BASE if BASE in samples else PLAIN
    raw = {
        "series": samples,
        "summaries": summaries,
        "push_delays_from_return": delays[0],
        "push_delays_from_start": delays[1],
        "backwards": backwards,
        "round_p50_ratios": round_ratios(samples[OURS], samples[base], rounds),
    }
    return Measurement(rows=_rows(summaries, delays, backwards), raw=raw)


def _rows(
    summaries: dict[str, Any], delays: tuple[list[float], list[float]], backwards: int
) -> list[Row]:
    push, from_start = summaries[PUSHED], summaries[PUSHED_FROM_START]
    return [
        comparison(
            f"near-cache get of a warm key ({VALUE_BYTES} B), p50",
            summaries[OURS],
            summaries.get(BASE),
            "Redis GET",
            max_ratio=TARGET_RATIO,
        ),
        comparison(
            "near-cache get vs a plain get (context)",
            summaries[OURS],
            summaries[PLAIN],
            "plain get, a shard round trip",
        ),
        Row(
            what=f"another process's put reaches a near reader (p50 / p99 of {push.n})",
            ours=f"{fmt_seconds(push.p50)} / {fmt_seconds(push.p99)} after it returned",
            base=(
                f"{fmt_seconds(from_start.p50)} / {fmt_seconds(from_start.p99)} after it "
                f"started; {backwards} reads went back in time"
            ),
            ratio=None,
            target=f"p99 <= {TARGET_PUSH_S * 1e3:g} ms, none back",
            verdict=verdict(push.p99 <= TARGET_PUSH_S and backwards == 0),
        ),
    ]


def _warm(near: raycache.Cache) -> None:
    """Read until the near cache keeps the key: its shards must have answered a poll."""
    deadline = time.monotonic() + 30
    while near.stats()["near_hits"] == 0 and time.monotonic() < deadline:
        near.get(KEY)
        time.sleep(0.01)


def _push(
    name: str, near: raycache.Cache, *, writes: int
) -> tuple[tuple[list[float], list[float]], int]:
    """Return the delays to each value seen, from its put's return and from its start,
    and how many reads went back in time."""
    writer: Any = StampedWriter.remote(name)
    done = writer.write.remote(KEY, writes, WRITE_GAP_S)
    seen: dict[int, tuple[float, float]] = {}  # n -> when read, when its put started
    backwards = 0
    newest = -1
    give_up = float("inf")  # once the writer is done, the last value gets 10 s to arrive
    while newest < writes - 1 and time.monotonic() < give_up:
        value = near.get(KEY)
        if isinstance(value, tuple):
            n, started = value
            if n > newest:
                seen[n] = (time.time(), started)
                newest = n
            backwards += n < newest
        if give_up == float("inf") and ray.wait([done], timeout=0)[0]:
            give_up = time.monotonic() + 10
        time.sleep(0.0002)  # a reader that spins would starve the poller of the GIL
    returned = ray.get(done)
    ray.kill(writer)
    from_return = [read - returned[n] for n, (read, _) in seen.items()]
    from_start = [read - started for read, started in seen.values()]
    return (from_return, from_start), backwards
