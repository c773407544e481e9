"""The computation a shard submits on a miss: a Ray task that it owns.

The task runs the user's function, then tells its shard the result's size and compute
time by a fire-and-forget call, so the shard learns them without pulling the value in.
Small results ride along in that message and are then served inline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.remote_function import RemoteFunction

from raycache.sizing import buffer_size, size_of

INLINE_LIMIT = 100 * 1024
"""Values smaller than this many bytes are kept in the shard and returned inline.

It matches Ray's own limit for returning objects inline, above which Ray would put a
returned value in the object store anyway.
"""


@dataclass(frozen=True)
class Settlement:
    """What a finished computation tells its shard: its size, its cost, and small values."""

    size: int
    seconds: float
    inline_value: Any = None
    inline: bool = False


@dataclass(frozen=True)
class Job:
    """A function to run for a key, with the Ray task options it runs under."""

    fn: Callable[..., Any]
    options: dict[str, Any]

    @classmethod
    def of(cls, fn: Callable[..., Any], options: dict[str, Any] | None = None) -> Job:
        """Describe ``fn``; a ``@ray.remote`` function keeps its own task options."""
        if isinstance(fn, RemoteFunction):
            # Ray keeps the decorated function and its options in private attributes;
            # the tests pin the behaviour this relies on.
            defaults = {k: v for k, v in fn._default_options.items() if v is not None}
            return cls(fn._function, {**defaults, **(options or {})})
        if not callable(fn):
            raise TypeError(f"expected a function or a @ray.remote function, got {fn!r}")
        return cls(fn, dict(options or {}))


@dataclass(frozen=True)
class Call:
    """A computation for a key: the job, its arguments, and how to keep its result."""

    job: Job
    args: list[Any]
    kwargs: dict[str, Any]
    ttl: float | None
    tags: tuple[str, ...]

    @classmethod
    def ship(
        cls,
        job: Job,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        ttl: float | None,
        tags: tuple[str, ...],
    ) -> Call:
        """Prepare a call to travel through a shard to its task.

        Large arguments go to the object store first, so that the shard passes a
        reference on instead of deserialising and serialising the data again.
        """
        shipped = {name: _by_ref(value) for name, value in kwargs.items()}
        return cls(job, [_by_ref(value) for value in args], shipped, ttl, tags)


def _by_ref(value: Any) -> Any:
    size = buffer_size(value)
    return ray.put(value) if size is not None and size >= INLINE_LIMIT else value


def submit(call: Call, shard: Any, digest: bytes, token: int) -> ray.ObjectRef[Any]:
    """Start ``call`` for ``digest`` as a task owned by the caller, which must be ``shard``.

    Arguments go to the task at top level, so Ray resolves ObjectRefs among them just as
    it would for a direct call of the function.
    """
    options = {**call.job.options, "num_returns": 1}
    ref: ray.ObjectRef[Any] = _run.options(**options).remote(
        (shard, digest, token, call.job.fn), *call.args, **call.kwargs
    )
    return ref


@ray.remote
def _run(
    _raycache_call: tuple[Any, bytes, int, Callable[..., Any]], *args: Any, **kwargs: Any
) -> Any:
    """Run the user's function, then report the outcome to the shard that asked."""
    shard, digest, token, fn = _raycache_call
    started = time.perf_counter()
    try:
        value = fn(*args, **kwargs)
        # Inside the try: a result that cannot be pickled fails here, and its shard must
        # still hear of it, or the key would stay stuck on a computation that never lands.
        shard.settle.remote(digest, token, _measure(value, time.perf_counter() - started))
    except BaseException:
        shard.settle.remote(digest, token, None)
        raise
    return value


def _measure(value: Any, seconds: float) -> Settlement:
    size = size_of(value)
    if size < INLINE_LIMIT:
        return Settlement(size, seconds, value, inline=True)
    return Settlement(size, seconds)
