"""Isolation and trust: caches do not see each other's keys, and a memoized function
whose code changed never serves what the old code computed."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import raycache


@pytest.fixture
def other_cache(cache_name: str) -> Iterator[raycache.Cache]:
    handle = raycache.Cache(f"{cache_name}-other", shards=2, capacity="16MiB")
    yield handle
    handle.shutdown()


def test_no_key_of_one_cache_is_visible_in_another(
    cache: raycache.Cache, other_cache: raycache.Cache
) -> None:
    keys = ["k", 1, ("t", 2), b"raw"]
    cache.put_many({key: ("a", key) for key in keys})
    cache.put("tagged", "a", tags=["shared-tag"])
    assert other_cache.get_many([*keys, "tagged"]) == {}
    assert not any(key in other_cache for key in keys)
    other_cache.put_many({key: ("b", key) for key in keys})
    assert other_cache.invalidate_tag("shared-tag") == 0
    other_cache.clear()
    assert cache.get_many(keys) == {key: ("a", key) for key in keys}
    assert cache.get("tagged") == "a"


def twin(x: int) -> tuple[str, int]:
    return ("twin", x)


def test_the_same_memoized_function_in_two_caches_shares_nothing(
    cache: raycache.Cache, other_cache: raycache.Cache
) -> None:
    in_a = raycache.memoize(cache=cache)(twin)
    in_b = raycache.memoize(cache=other_cache)(twin)
    assert in_a(3) == ("twin", 3)
    assert in_b.cache_info().currsize == 0
    assert in_b(3) == ("twin", 3)
    assert (in_b.cache_info().hits, in_b.cache_info().misses) == (0, 1)
    in_b.clear()
    assert in_a.cache_info().currsize == 1


def define(source: str, **namespace: Any) -> Callable[..., Any]:
    """Define ``score`` from ``source``, as a module reloaded after an edit would."""
    scope = {"__name__": "scoring", **namespace}
    exec(textwrap.dedent(source), scope)
    fn: Callable[..., Any] = scope["score"]
    return fn


VERSIONS = {
    "original": "def score(x, scale=2):\n    return x * scale\n",
    "edited body": "def score(x, scale=2):\n    return x * scale + 1\n",
    "edited constant": "def score(x, scale=2):\n    return x * scale + 100\n",
    "edited default": "def score(x, scale=3):\n    return x * scale + 100\n",
}


def test_a_changed_function_never_serves_old_results(cache: raycache.Cache) -> None:
    for source in VERSIONS.values():
        fn = define(source)
        assert raycache.memoize(cache=cache)(fn)(5) == fn(5)


def test_same_named_functions_with_different_code_do_not_collide(
    cache: raycache.Cache, other_cache: raycache.Cache
) -> None:
    doubled = define(VERSIONS["original"])
    shifted = define(VERSIONS["edited constant"])
    for target in (cache, other_cache):
        assert raycache.memoize(cache=target)(doubled)(7) == 14
        assert raycache.memoize(cache=target)(shifted)(7) == 114


def test_a_changed_closure_or_version_gives_new_results(cache: raycache.Cache) -> None:
    def scaled_by(factor: int) -> Callable[[int], int]:
        def score(x: int) -> int:
            return x * factor

        return score

    assert raycache.memoize(cache=cache)(scaled_by(2))(5) == 10
    assert raycache.memoize(cache=cache)(scaled_by(3))(5) == 15
    # A global's value is not part of the fingerprint: bumping version is the remedy.
    reads_global = "def score(x):\n    return x + OFFSET\n"
    first = raycache.memoize(cache=cache, version=1)(define(reads_global, OFFSET=1))
    second = raycache.memoize(cache=cache, version=2)(define(reads_global, OFFSET=2))
    assert (first(5), second(5)) == (6, 7)
