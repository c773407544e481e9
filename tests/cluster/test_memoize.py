"""@raycache.memoize against a real local Ray."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ray

import raycache
from tests.helpers.memo_funcs import big_range, plain_total, ran, slow_square

ROOT = Path(__file__).parents[2]


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Poll ``check``: a finished computation reports its size to its shard asynchronously."""
    deadline = time.time() + seconds
    while not check() and time.time() < deadline:
        time.sleep(0.05)
    return check()


# raycache.memoize is the decorator, so the module is imported by its name.
memoize_module = importlib.import_module("raycache.client.memoize")


@pytest.fixture(autouse=True)
def memo_cache(ray_session: None) -> Iterator[raycache.Cache]:
    cache = raycache.Cache("memo-tests")
    cache.clear()
    yield cache


def test_remote_results_equal_uncached_and_are_computed_once() -> None:
    before = ran("slow_square")
    expected = ray.get(ray.remote(slow_square.__wrapped__).remote(12))  # the plain task
    assert ray.get(slow_square.remote(12)) == expected == 144
    assert ray.get(slow_square.remote(12)) == 144
    assert ray.get(slow_square.remote(x=12)) == 144  # bound by signature
    assert ray.get(slow_square.remote(12, 0.0)) == 144  # defaults applied
    assert ran("slow_square") == before + 2  # the uncached call, and one cached load


def test_plain_function_returns_values_and_hits() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    before = ran("plain_total")
    assert plain_total(frame) == 6.0
    assert plain_total(frame, column="a") == 6.0
    assert ran("plain_total") == before + 1
    info = plain_total.cache_info()
    assert info.hits >= 1 and info.misses >= 1
    assert eventually(lambda: plain_total.cache_info().currsize == 1)


def test_eight_concurrent_callers_cause_one_execution() -> None:
    before = ran("slow_square")

    @ray.remote(num_cpus=0)
    def caller() -> int:
        return int(ray.get(slow_square.remote(7, 1.0)))

    assert ray.get([caller.remote() for _ in range(8)]) == [49] * 8
    assert ran("slow_square") == before + 1


def test_concurrent_threads_in_one_driver_merge() -> None:
    before = ran("slow_square")
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(ray.get(slow_square.remote(8, 1.0))))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [64] * 6
    assert ran("slow_square") == before + 1


def _versioned(body: str) -> Callable[[int], int]:
    namespace: dict[str, object] = {"raycache": raycache}
    source = f"""
@raycache.memoize(cache="memo-tests")
def edited(x):
    return {body}
"""
    exec(compile(source, "edited_module", "exec"), namespace)
    return namespace["edited"]  # type: ignore[return-value]


def test_editing_the_code_gives_a_miss() -> None:
    assert _versioned("x + 1")(1) == 2
    assert _versioned("x + 2")(1) == 3  # same name, new body: never the old result
    assert _versioned("x + 1")(1) == 2


def test_version_and_ignore_shape_the_key() -> None:
    @raycache.memoize(cache="memo-tests", version=1, ignore=["verbose"])
    def f(x: int, verbose: bool = False) -> int:
        return x * 10

    assert f(1) == 10 and f(1, verbose=True) == 10
    assert eventually(lambda: f.cache_info().currsize == 1)


def test_equal_dataframes_built_differently_hit_and_different_ones_miss() -> None:
    before = ran("plain_total")
    by_columns = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
    by_records = pd.DataFrame.from_records([(1.0, 3), (2.0, 4)], columns=["a", "b"])
    assert plain_total(by_columns) == plain_total(by_records) == 3.0
    assert ran("plain_total") == before + 1
    assert plain_total(pd.DataFrame({"a": [1.0, 5.0], "b": [3, 4]})) == 6.0
    assert plain_total(pd.DataFrame({"a": [1.0, 2.0], "c": [3, 4]})) == 3.0  # other columns
    assert ran("plain_total") == before + 3


def test_sliced_arrow_inputs_are_keyed_by_their_own_values() -> None:
    @raycache.memoize(cache="memo-tests")
    def total(values: pa.Array) -> int:
        return int(pa.compute.sum(values).as_py())

    parent = pa.array(np.arange(1000, dtype=np.int64))
    assert total(parent.slice(0, 10)) == sum(range(10))
    assert total(parent.slice(10, 10)) == sum(range(10, 20))  # same parent, other values
    assert total(pa.array(np.arange(10, 20, dtype=np.int64))) == sum(range(10, 20))
    assert eventually(lambda: total.cache_info().currsize == 2)


def test_warm_lineage_chain_hashes_no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    @raycache.memoize(cache="memo-tests")
    @ray.remote(num_cpus=0)
    def load(seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        return pd.DataFrame({"v": rng.random(200_000), "k": rng.integers(0, 10, 200_000)})

    @raycache.memoize(cache="memo-tests")
    @ray.remote(num_cpus=0)
    def clean(frame: pd.DataFrame) -> pd.DataFrame:
        return frame[frame["v"] > 0.1]

    @raycache.memoize(cache="memo-tests")
    @ray.remote(num_cpus=0)
    def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.groupby("k").sum()

    def chain() -> pd.DataFrame:
        return ray.get(aggregate.remote(clean.remote(load.remote(3))))

    cold = chain()
    hashed: list[type] = []
    real_hash = memoize_module.hash_value

    def counting_hash(value: object) -> bytes:
        hashed.append(type(value))
        return real_hash(value)

    monkeypatch.setattr(memoize_module, "hash_value", counting_hash)
    warm = chain()
    pd.testing.assert_frame_equal(cold, warm)
    assert hashed == [int]  # only the seed; the intermediate frames go by lineage


def test_foreign_object_refs_are_keyed_by_content() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    before = ran("plain_total")
    assert plain_total(ray.put(frame)) == plain_total(ray.put(frame.copy())) == 3.0
    assert ran("plain_total") == before + 1


def test_large_results_come_back_by_reference() -> None:
    ref = big_range.remote(1_000_000)
    np.testing.assert_array_equal(ray.get(ref), np.arange(1_000_000))
    again = big_range.remote(1_000_000)
    assert not ray.get(again).flags.writeable  # mapped from the object store, not copied


def test_options_pass_through_and_multiple_returns_are_refused() -> None:
    @raycache.memoize(cache="memo-tests")
    @ray.remote
    def cpus(tag: str) -> float:
        return float(ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0))

    assert ray.get(cpus.remote("default")) == 1.0
    assert ray.get(cpus.options(num_cpus=2).remote("two")) == 2.0
    with pytest.raises(ValueError, match="one return value"):
        cpus.options(num_returns=2)
    with pytest.raises(ValueError, match="one return value"):

        @raycache.memoize
        @ray.remote(num_returns=2)
        def pair() -> tuple[int, int]:
            return 1, 2


def test_invalidate_and_clear_touch_only_this_function() -> None:
    @raycache.memoize(cache="memo-tests")
    def double(x: int) -> int:
        return 2 * x

    @raycache.memoize(cache="memo-tests")
    def triple(x: int) -> int:
        return 3 * x

    assert [double(i) for i in range(3)] == [0, 2, 4]
    assert triple(1) == 3
    assert double.invalidate(1) is True
    assert double.invalidate(1) is False
    assert eventually(lambda: double.cache_info().currsize == 2)
    assert eventually(lambda: triple.cache_info().currsize == 1)
    assert double.clear() == 2
    assert double.cache_info().currsize == 0
    assert triple.cache_info().currsize == 1


def test_user_errors_reach_the_caller_and_are_not_cached() -> None:
    @raycache.memoize(cache="memo-tests")
    def fails(x: int) -> int:
        raise ZeroDivisionError(f"bad {x}")

    with pytest.raises(ZeroDivisionError, match="bad 1"):
        fails(1)
    assert fails.cache_info().currsize == 0

    @raycache.memoize(cache="memo-tests")
    @ray.remote(num_cpus=0)
    def fails_remotely(x: int) -> int:
        raise KeyError(x)

    with pytest.raises(KeyError):
        ray.get(fails_remotely.remote(2))


def test_refresh_after_serves_stale_then_refreshes_once() -> None:
    source = _Source.remote()

    @raycache.memoize(cache="memo-tests", refresh_after=0.5)
    def read(name: str) -> int:
        return int(ray.get(source.read.remote()))

    assert read("x") == 1
    ray.get(source.set.remote(2))
    assert read("x") == 1  # fresh enough: the old value
    time.sleep(0.7)
    stale = [read("x") for _ in range(5)]
    assert stale[0] == 1  # stale, served at once while one refresh runs
    deadline = time.time() + 20
    while read("x") != 2 and time.time() < deadline:
        time.sleep(0.1)
    assert read("x") == 2
    assert ray.get(source.reads.remote()) == 2  # the first load and exactly one refresh


@ray.remote(num_cpus=0)
class _Source:
    def __init__(self) -> None:
        self.value = 1
        self.count = 0

    def set(self, value: int) -> None:
        self.value = value

    def read(self) -> int:
        self.count += 1
        return self.value

    def reads(self) -> int:
        return self.count


DRIVER = """
import ray
import raycache
from tests.helpers.memo_funcs import slow_square, ran
ray.init(address={address!r}, logging_level="ERROR")
before = ran("slow_square")
print(ray.get(slow_square.remote({x}, 0.5)), ran("slow_square") - before)
"""


def test_a_second_driver_hits_after_the_first_exits() -> None:
    address = ray.get_runtime_context().gcs_address

    def drive() -> list[str]:
        code = textwrap.dedent(DRIVER.format(address=address, x=31))
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.split()

    assert drive() == ["961", "1"]  # computed by the first driver
    assert drive() == ["961", "0"]  # a hit for the second, after the first exited


class TestBadInput:
    def test_unkeyable_argument_names_the_parameter(self) -> None:
        @raycache.memoize(cache="memo-tests")
        def use(conn: object, n: int = 1) -> int:
            return n

        with pytest.raises(TypeError, match="'conn'"):
            use(threading.Lock())

    def test_non_functions_are_refused(self) -> None:
        with pytest.raises(TypeError, match="not classes or actors"):

            @raycache.memoize
            @ray.remote
            class Actor:
                pass

        with pytest.raises(TypeError, match="needs a function"):
            raycache.memoize(42)  # type: ignore[call-overload]

    def test_bad_options(self) -> None:
        with pytest.raises(ValueError, match="ttl must be"):
            raycache.memoize(ttl=0)
        with pytest.raises(ValueError, match="refresh_after must be"):
            raycache.memoize(refresh_after=-1)
        with pytest.raises(TypeError, match="ignore must be"):
            raycache.memoize(ignore="x")
        with pytest.raises(TypeError, match="cache must be"):
            raycache.memoize(cache=3)  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="nope"):

            @raycache.memoize(ignore=["nope"])
            def f(x: int) -> int:
                return x

    def test_direct_call_of_a_remote_function_is_refused(self) -> None:
        with pytest.raises(TypeError, match="cannot be called directly"):
            slow_square(1)

    def test_wrong_arguments_raise_like_the_function_would(self) -> None:
        with pytest.raises(TypeError):
            slow_square.remote(1, 2, 3, 4)
