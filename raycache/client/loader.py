"""Loaders that run in the caller: the client's side of a shard's leases.

On a miss, the key's shard grants one caller a lease. That caller runs the loader in its
own process, so the loader may use the caller's connection, lock, open file or model,
and renews the lease from a background thread while it runs. It then hands the value to
the shard, which stores it and passes it to every caller that waited. Waiters block on
the shard (no polling) until the lease ends; if its holder dies, the lease expires and
the next caller takes it over. An exception raised by the loader reaches every waiting
caller, and nothing is cached.

The cache never fails the caller: if the shard cannot be reached, the loader simply runs
here, uncached.

The protocol is written once, as :mod:`~raycache.client.steps`: :class:`~raycache.Cache`
takes them blocking, :class:`~raycache.AsyncCache` and memoized ``async def`` functions
await them, and a coroutine loader is awaited in the caller's event loop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import ray
from ray import cloudpickle
from ray.exceptions import GetTimeoutError, RayError

from raycache.actors.compute import Call, Job
from raycache.actors.handles import call_remote
from raycache.actors.references import ship
from raycache.actors.shard import Shard
from raycache.client.shard_client import ABSENT, ShardClient
from raycache.client.steps import Invoke, Steps, Wait
from raycache.core.protocol import Code, pack_key_request

logger = logging.getLogger(__name__)

LEASE_S = float(os.environ.get("RAYCACHE_LEASE_SECONDS", "10"))
"""How long a lease lasts without renewal: the longest a dead holder's waiters wait."""

HANDOFF_TIMEOUT_S = 30.0
"""How long a leaseholder waits for its shard to take the value it computed."""

MAX_ROUNDS = 8
"""Lookups one call may make (leases lost, flights replaced) before it runs the loader."""


@dataclass(frozen=True)
class Loaded:
    """A loaded value, and how: ``"hit"``, ``"miss"`` (computed here) or ``"merged"``."""

    value: Any
    how: str


def load_here(
    client: ShardClient,
    digest: bytes,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    ttl: float | None,
    tags: tuple[str, ...] = (),
    refresh_after: float | None = None,
) -> Steps[Loaded]:
    """Return the value under ``digest``, running ``fn(*args, **kwargs)`` here on a miss.

    As for a Ray task, ObjectRefs among the arguments (not nested in them) reach ``fn``
    as their values.
    """
    merged = False
    for _ in range(MAX_ROUNDS):
        reply = yield from client.lookup(digest, refresh_after)
        if reply.elected:
            _refresh(client, digest, fn, args, kwargs, ttl, tags)
        if reply.code == Code.MISS:
            reply = yield from client.lease(digest, ttl, tags, LEASE_S)
            if reply.code == Code.MISS:  # the shard is down: run uncached
                return Loaded((yield from _run_loader(fn, args, kwargs)), "miss")
        if reply.code == Code.LEASED:
            computed = yield from _compute(client, digest, reply.payload, fn, args, kwargs)
            return Loaded(computed, "miss")
        if reply.code == Code.WAIT:
            merged = True
            reply = yield from client.wait(digest, reply.payload, LEASE_S)
        if reply.code == Code.FAILED:
            raise _exception(reply.payload)
        value = yield from client.value(digest, reply)
        if value is not ABSENT:
            return Loaded(value, "merged" if merged or reply.code == Code.PENDING else "hit")
    return Loaded((yield from _run_loader(fn, args, kwargs)), "miss")


def _run_loader(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Steps[Any]:
    """Invoke ``fn`` on the values of ObjectRefs passed as top-level arguments, as a task would."""
    named = list(kwargs.items())
    arguments = [*args, *(value for _, value in named)]
    places = [i for i, argument in enumerate(arguments) if isinstance(argument, ray.ObjectRef)]
    if places:
        values = yield Wait([arguments[i] for i in places])
        for i, value in zip(places, values, strict=True):
            arguments[i] = value
    resolved = dict(zip((name for name, _ in named), arguments[len(args) :], strict=True))
    return (yield Invoke(fn, tuple(arguments[: len(args)]), resolved))


def _compute(
    client: ShardClient,
    digest: bytes,
    token: int,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Steps[Any]:
    """Invoke ``fn`` under lease ``token``, then hand the value, or the error, to the shard."""
    shard = client.shard_of(digest)
    request = pack_key_request(client.snapshot.ring.epoch, digest)
    renewal = _Renewal(lambda: call_remote(shard, Shard.renew_many, request, [token], LEASE_S))
    started = time.perf_counter()
    try:
        value = yield from _run_loader(fn, args, kwargs)
    except BaseException as error:
        renewal.stop()
        yield from _tell(call_remote(shard, Shard.fail_many, request, [token], _pickled(error)))
        raise
    renewal.stop()
    # Waited for, within a bound: the value travels as an object this process owns,
    # which must reach the shard before this process may exit. A large one is shipped by
    # reference, so that the vault's put is the only copy the cache makes of it.
    cost = time.perf_counter() - started
    yield from _tell(call_remote(shard, Shard.fulfil_many, request, [token], [ship(value)], cost))
    return value


def _tell(call: ray.ObjectRef[Any]) -> Steps[None]:
    """Wait for a call that ends a lease; if the shard is slow or down, its waiters take over."""
    try:
        yield Wait([call], HANDOFF_TIMEOUT_S)
    except (RayError, GetTimeoutError) as error:
        logger.warning("could not hand a computed value to its shard: %s", error)


class _Renewal:
    """Renews leases with ``renew()`` on a daemon thread until stopped: a live holder keeps them."""

    def __init__(self, renew: Callable[[], object]) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._renew, args=(renew,), name="raycache-lease", daemon=True
        )
        self._thread.start()

    def _renew(self, renew: Callable[[], object]) -> None:
        while not self._stopped.wait(LEASE_S / 3):
            renew()

    def stop(self) -> None:
        """Stop renewing."""
        self._stopped.set()


def load_many_here(
    client: ShardClient,
    digests: list[bytes],
    keys: list[Any],
    fn: Callable[[list[Any]], Mapping[Any, Any]],
    *,
    ttl: float | None,
) -> Steps[dict[bytes, Any]]:
    """Return the values of the keys of ``digests``, computing the missing with one ``fn``.

    Every key is leased in one request per shard. ``fn(keys)`` then runs once, here, on
    the keys this caller was granted (and those whose shard is down, which stay
    uncached), and returns a mapping from key to value; the values go back in one
    request per shard. Keys another caller computes are waited for. Keys that ``fn``
    leaves out are left out of the answer too.
    """
    by_digest = dict(zip(digests, keys, strict=True))
    found: dict[bytes, Any] = {}
    refs: dict[bytes, ray.ObjectRef[Any]] = {}
    leased: dict[bytes, int] = {}
    waiting: dict[bytes, int] = {}
    for indices, columns in (yield from client.lease_many(digests, ttl, (), LEASE_S)):
        for i, code, payload in zip(indices, *columns, strict=True):
            if code == Code.HIT:
                found[digests[i]] = payload
            elif code in (Code.REF, Code.PENDING):
                refs[digests[i]] = payload[0]
            elif code == Code.WAIT:
                waiting[digests[i]] = payload
            else:  # LEASED, and a MISS if ever: computed here
                leased[digests[i]] = payload
    # This caller's own leases first, before it waits on anyone's: two callers that each
    # wait on the other's keys would otherwise hold their leases until they expired.
    unclaimed = [d for d in digests if d not in found and d not in refs and d not in waiting]
    unleased = [d for d in unclaimed if d not in leased]
    found.update((yield from _compute_many(client, leased, unleased, by_digest, fn)))
    found.update((yield from client.fetch_many(refs)))
    for digest, token in waiting.items():
        reply = yield from client.wait(digest, token, LEASE_S)
        if reply.code == Code.FAILED:
            raise _exception(reply.payload)
        value = yield from client.value(digest, reply)
        if value is not ABSENT:
            found[digest] = value
    # A lease may have ended before its waiter asked (RETRY): read those keys again.
    # What is still not had (an object lost, a lease that ended without a value) is
    # computed here, uncached; keys the loader itself left out are not asked again.
    again = [d for d in digests if d not in found and d not in unclaimed]
    if again:
        found.update((yield from client.values_many(again)))
    again = [d for d in again if d not in found]
    found.update((yield from _compute_many(client, {}, again, by_digest, fn)))
    return found


def _compute_many(
    client: ShardClient,
    leased: dict[bytes, int],
    unleased: list[bytes],
    by_digest: dict[bytes, Any],
    fn: Callable[[list[Any]], Mapping[Any, Any]],
) -> Steps[dict[bytes, Any]]:
    """Invoke ``fn`` once on every key to compute; hand the leased values to their shards."""
    wanted = {*leased, *unleased}
    todo = [d for d in by_digest if d in wanted]  # in the caller's order
    if not todo:
        return {}
    held, tokens = list(leased), list(leased.values())
    renewal = _Renewal(lambda: client.renew_many(held, tokens, LEASE_S))
    started = time.perf_counter()
    try:
        answer = yield from _run_loader(fn, ([by_digest[d] for d in todo],), {})
        if not isinstance(answer, Mapping):
            raise TypeError(
                f"get_or_compute_many's function must return a mapping of keys to values, "
                f"got {type(answer).__name__}"
            )
    except BaseException as error:
        renewal.stop()
        if held:
            yield from client.fail_many(held, tokens, _pickled(error))
        raise
    renewal.stop()
    cost = (time.perf_counter() - started) / len(todo)
    computed = {d: answer[by_digest[d]] for d in todo if by_digest[d] in answer}
    done = [d for d in held if d in computed]
    if done:
        values = [ship(computed[d]) for d in done]
        yield from client.fulfil_many(done, [leased[d] for d in done], values, cost)
    left = [d for d in held if d not in computed]
    if left:  # their waiters see the loader's omission, as a KeyError
        omitted = KeyError(f"get_or_compute_many's function returned no value for {len(left)} keys")
        yield from client.fail_many(left, [leased[d] for d in left], _pickled(omitted))
    return computed


def _refresh(
    client: ShardClient,
    digest: bytes,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    ttl: float | None,
    tags: tuple[str, ...],
) -> None:
    """Recompute a stale entry as a cluster task, while its old value is served.

    A refresh runs in the background, so it cannot run in the caller; a loader that
    cannot travel (it holds a connection, say) is left to expire instead.
    """
    try:
        call = Call.ship(Job.of(fn), args, kwargs, ttl, tags)
    except Exception as error:
        logger.debug("not refreshing %s in the background: %s", digest.hex(), error)
        return
    client.refresh_entry(digest, call)


def _pickled(error: BaseException) -> bytes:
    try:
        data: bytes = cloudpickle.dumps(error)  # type: ignore[no-untyped-call]
    except Exception:
        substitute = RuntimeError(f"{type(error).__name__}: {error}")
        data = cloudpickle.dumps(substitute)  # type: ignore[no-untyped-call]
    return data


def _exception(payload: bytes) -> BaseException:
    error: BaseException = cloudpickle.loads(payload)
    return error
