"""Redis and memcached as baselines: one small client interface over each, on loopback.

:func:`running_stores` starts every server it can and yields a connected client for
each. A baseline whose server binary or Python client is missing, or whose server does
not start, is left out with a one-line message on stderr, and the report says "skipped".
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Protocol, cast

from benchmarks.harness.servers import Server, ServerUnavailable, memcached_server, redis_server

REDIS = "Redis"
MEMCACHED = "memcached"

_reported: set[str] = set()


class Store(Protocol):
    """A key-value server's client, reduced to what the benchmarks time."""

    def get(self, key: str) -> bytes | None:
        """Return the value under ``key``, or None."""

    def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key`` and wait for the server's reply."""

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Return the value of every key, in order, in one round trip."""

    def set_many(self, values: Mapping[str, bytes]) -> None:
        """Store every item of ``values``."""

    def close(self) -> None:
        """Close the connection."""


class RedisStore:
    """redis-py, with the hiredis reply parser when it is installed."""

    def __init__(self, server: Server) -> None:
        import redis

        self._client = redis.Redis(host=server.host, port=server.port)

    def get(self, key: str) -> bytes | None:
        """Return the value under ``key``, or None."""
        return cast("bytes | None", self._client.get(key))

    def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``."""
        self._client.set(key, value)

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Return every key's value with one MGET."""
        return cast("list[bytes | None]", self._client.mget(keys))

    def set_many(self, values: Mapping[str, bytes]) -> None:
        """Store every item with one MSET."""
        self._client.mset(dict(values))

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


class MemcachedStore:
    """pymemcache's base client, waiting for every reply and with Nagle's algorithm off."""

    def __init__(self, server: Server) -> None:
        from pymemcache.client.base import Client  # type: ignore[import-untyped]

        # pymemcache defaults to fire-and-forget sets; a timed set must wait for the reply.
        self._client = Client((server.host, server.port), default_noreply=False, no_delay=True)

    def get(self, key: str) -> bytes | None:
        """Return the value under ``key``, or None."""
        return cast("bytes | None", self._client.get(key))

    def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``."""
        self._client.set(key, value)

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Return every key's value with one multi-key get."""
        found = self._client.get_many(keys)
        return [found.get(key) for key in keys]

    def set_many(self, values: Mapping[str, bytes]) -> None:
        """Store every item with pipelined sets."""
        self._client.set_many(dict(values))

    def close(self) -> None:
        """Close the connection."""
        self._client.close()


@dataclass(frozen=True)
class Baseline:
    """One baseline: its server and Python client, and its own names for get, set and get_many."""

    name: str
    binary: str
    client_module: str
    server: Callable[[], AbstractContextManager[Server]]
    connect: Callable[[Server], Store]
    get_verb: str
    set_verb: str
    get_many_verb: str
    set_many_verb: str


BASELINES = (
    Baseline(
        REDIS, "redis-server", "redis", redis_server, RedisStore, "GET", "SET", "MGET", "MSET"
    ),
    Baseline(
        MEMCACHED,
        "memcached",
        "pymemcache",
        memcached_server,
        MemcachedStore,
        "get",
        "set",
        "get_many",
        "set_many",
    ),
)


@contextmanager
def running_stores() -> Iterator[dict[Baseline, Store]]:
    """Start every baseline that can run; yield a client for each; stop them all after."""
    with ExitStack() as stack:
        stores = {}
        for baseline in BASELINES:
            store = _start(baseline, stack)
            if store is not None:
                stack.callback(store.close)
                stores[baseline] = store
        yield stores


def _start(baseline: Baseline, stack: ExitStack) -> Store | None:
    missing = _missing(baseline)
    if missing is not None:
        _report_once(missing)
        return None
    try:
        return baseline.connect(stack.enter_context(baseline.server()))
    except ServerUnavailable as error:
        _report_once(_skipping(baseline, str(error)))
        return None


def _missing(baseline: Baseline) -> str | None:
    """Return why ``baseline`` cannot run, with how to install what it lacks, or None."""
    if importlib.util.find_spec(baseline.client_module) is None:
        reason = f"{baseline.client_module} (Python client) not installed"
        return _skipping(baseline, reason, "pip install 'raycache[bench]'")
    if shutil.which(baseline.binary) is None:
        reason = f"{baseline.binary} not found"
        return _skipping(baseline, reason, f"apt-get install {baseline.binary}")
    return None


def _skipping(baseline: Baseline, reason: str, hint: str = "") -> str:
    return f"{reason}: skipping the {baseline.name} baseline" + (f" ({hint})" if hint else "")


def _report_once(message: str) -> None:
    # Several modules start the baselines: say why one is missing once per run, not each time.
    if message not in _reported:
        _reported.add(message)
        print(message, file=sys.stderr)
