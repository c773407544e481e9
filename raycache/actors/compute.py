"""The computation a shard starts on a miss: a Ray task that its node's vault submits.

The vault submits it, and so owns its result, so that the reference callers receive
outlives the shard (see :mod:`raycache.actors.vault`).

The task runs the user's function, then tells its shard the result's size and compute
time by a fire-and-forget call, so the shard learns them without pulling the value in.
Small results ride along in that message and are then served inline.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray import cloudpickle
from ray.remote_function import RemoteFunction

from raycache.actors.handles import RemoteMethod
from raycache.actors.references import INLINE_LIMIT, large_size
from raycache.core.frames import warn_if_unpickled_on_hit
from raycache.core.sizing import size_of


@dataclass(frozen=True)
class Computed:
    """What a finished computation tells its shard: its size, its cost, and small values.

    ``node`` is where it ran, which holds its result: Ray stores a task's result there.
    """

    size: int
    seconds: float
    inline_value: Any = None
    inline: bool = False
    node: str = ""


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

    @functools.cached_property
    def pickled_fn(self) -> bytes:
        """``fn``, pickled once here so that a shard passes it on as opaque bytes.

        A shard that unpickled the function would import the user's modules, and with
        them libraries such as pandas, stalling every other request it serves meanwhile.
        """
        pickled: bytes = cloudpickle.dumps(self.fn)  # type: ignore[no-untyped-call]
        return pickled


@dataclass(frozen=True)
class Call:
    """A computation for a key: what to run, on which arguments, and how to keep its result."""

    pickled_fn: bytes
    options: dict[str, Any]
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

        Large arguments go to the object store first (see :func:`large_size`).
        """
        shipped = {name: _by_ref(value) for name, value in kwargs.items()}
        args_by_ref = [_by_ref(value) for value in args]
        return cls(job.pickled_fn, job.options, args_by_ref, shipped, ttl, tags)


def _by_ref(value: Any) -> Any:
    return value if large_size(value) is None else ray.put(value)


Report = RemoteMethod[[bytes, int, "Computed | None"], None]
"""The shard method a computation reports its outcome to: ``(digest, token, computed)``.

None means it failed.
"""


def submit(call: Call, report: Report, digest: bytes, token: int) -> ray.ObjectRef[Any]:
    """Start ``call`` for ``digest`` as a task owned by the caller; it tells ``report``.

    Arguments go to the task at top level, so Ray resolves ObjectRefs among them just as
    it would for a direct call of the function.
    """
    options = {**call.options, "num_returns": 1}
    ref: ray.ObjectRef[Any] = _run_task.options(**options).remote(
        (report, digest, token, call.pickled_fn), *call.args, **call.kwargs
    )
    return ref


@ray.remote
def _run_task(_raycache_call: tuple[Report, bytes, int, bytes], *args: Any, **kwargs: Any) -> Any:
    """Run the user's function, then report the outcome to the shard that asked."""
    report, digest, token, pickled_fn = _raycache_call
    fn = _unpickled(pickled_fn)
    started = time.perf_counter()
    try:
        value = fn(*args, **kwargs)
        if inspect.iscoroutine(value):  # a memoized ``async def``: the task awaits it
            value = asyncio.run(value)
        # Inside the try: a result that cannot be pickled fails here, and its shard must
        # still hear of it, or the key would stay stuck on a computation that never lands.
        report.remote(digest, token, _measure(value, time.perf_counter() - started))
    except BaseException:
        report.remote(digest, token, None)
        raise
    warn_if_unpickled_on_hit(value, "the result of", getattr(fn, "__qualname__", fn))
    return value


@functools.lru_cache(maxsize=64)
def _unpickled(pickled_fn: bytes) -> Callable[..., Any]:
    fn: Callable[..., Any] = cloudpickle.loads(pickled_fn)
    return fn


def _measure(value: Any, seconds: float) -> Computed:
    size = size_of(value)
    if size < INLINE_LIMIT:
        return Computed(size, seconds, value, inline=True)
    return Computed(size, seconds, node=ray.get_runtime_context().get_node_id())
