"""Stream and cache for Ray Data: ``ds.map_batches(raycache.data.cached(fn))``.

:func:`cached` wraps a batch transform, a function or a callable class, so that each
batch it has seen before comes from the cache instead of being computed again. The
first epoch streams as usual (nothing is materialized); a later epoch, in the same job
or in a later one, skips the transform for every batch already cached.

What a batch is keyed on:

- the batch's **content**, hashed as :func:`~raycache.core.hashing.hash_value` hashes
  arguments: a pandas DataFrame by its values, index, column names and dtypes; a numpy
  batch (``{column: array}``) by its arrays' values, dtypes and shapes; an Arrow table by
  its schema and values (not its chunking);
- the transform's **fingerprint**: a function's module, name, code, constants, closure
  and defaults; for a class, those of every method it defines or inherits, plus the
  arguments its constructor is given (``fn_constructor_args``/``fn_constructor_kwargs``);
- ``version``, for changes the code does not show (a model file, a helper's body).

So new keys, and a recomputation, come from a change in any value, dtype or column name
of a batch, in the transform's code or constructor arguments, or in ``version``. **Batch
boundaries are part of the key**: the same rows split differently (another
``batch_size``, another block count, a different read parallelism, a shuffle) give other
batches and so other keys. Fix ``batch_size`` (or use ``batch_size=None`` and a fixed
block count) for runs that should share entries. Keyword arguments given through
``fn_kwargs`` are not keyed: put them in the transform's closure or a class's constructor.

The cache never fails the pipeline: if it cannot be reached, or a batch cannot be
hashed, the transform runs as it would without raycache, and a warning is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import xxhash
from ray.exceptions import RayError

from raycache.client.cache import Cache
from raycache.client.memoize import shared_handle
from raycache.core import validation
from raycache.core.hashing import function_fingerprint, hash_value
from raycache.errors import RaycacheError

logger = logging.getLogger(__name__)

_KEY_TAG = b"raycache.data"


def cached(
    transform: Any,
    *,
    cache: Cache | str = "default",
    ttl: float | None = None,
    version: Any = None,
) -> Any:
    """Return ``transform``, a batch function or a callable class, caching each batch.

    Pass the result to ``Dataset.map_batches`` in place of ``transform``. A function
    gives a function; a class gives a class, which Ray Data constructs in its actors
    (with ``concurrency=``) as it would the original. That class builds the wrapped
    instance only when a batch misses, so an epoch that hits throughout never loads the
    model. ``cache`` is a :class:`~raycache.Cache` or a cache name (created on first
    use); ``ttl`` bounds an entry's life; ``version`` is mixed into every key.
    """
    if not isinstance(cache, (Cache, str)):
        raise TypeError(f"cache must be a raycache.Cache or a cache name, got {cache!r}")
    if isinstance(cache, str):
        validation.name(cache)
    validation.seconds(ttl, "ttl")
    if isinstance(transform, type):
        return _cached_class(transform, cache, ttl, version)
    if not callable(transform):
        raise TypeError(f"cached() needs a function or a class, got {type(transform).__name__}")
    return CachedBatches(transform, function_fingerprint(transform, version), cache, ttl)


class CachedBatches:
    """A batch function whose results are cached by the batch's content and its fingerprint."""

    def __init__(
        self, fn: Callable[[Any], Any], fingerprint: bytes, cache: Cache | str, ttl: float | None
    ) -> None:
        self._fn = fn
        self._fingerprint = fingerprint
        self._cache = cache
        self._ttl = ttl
        self.__name__ = f"cached({getattr(fn, '__name__', type(fn).__name__)})"

    @property
    def fingerprint(self) -> bytes:
        """The digest every key of this transform starts from."""
        return self._fingerprint

    def key(self, batch: Any) -> tuple[bytes, bytes, bytes]:
        """Return the cache key of ``batch``."""
        return (_KEY_TAG, self._fingerprint, hash_value(batch))

    def __call__(self, batch: Any) -> Any:
        """Return ``fn(batch)``, from the cache when this batch was transformed before."""
        failed = False

        def compute(batch: Any) -> Any:
            nonlocal failed
            try:
                return self._fn(batch)
            except BaseException:
                failed = True
                raise

        try:
            return self._handle().get_or_compute(self.key(batch), compute, batch, ttl=self._ttl)
        except (RaycacheError, RayError) as error:
            if failed:  # the transform's own error, not the cache's
                raise
            logger.warning("raycache unavailable (%s); running %s uncached", error, self.__name__)
            return self._fn(batch)

    def _handle(self) -> Cache:
        return self._cache if isinstance(self._cache, Cache) else shared_handle(self._cache)


def _cached_class(cls: type, cache: Cache | str, ttl: float | None, version: Any) -> type:
    fingerprint = class_fingerprint(cls, version)

    class Cached:
        # Ray Data constructs this in each of its actors, with the constructor arguments
        # meant for ``cls``: they join the key, and ``cls`` is built on the first miss.
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._arguments = (args, kwargs)
            self._instance: Any = None
            self._lock = threading.Lock()
            digest = xxhash.xxh3_128_digest(fingerprint + hash_value((args, kwargs)))
            self._batches = CachedBatches(self._apply, digest, cache, ttl)

        def _apply(self, batch: Any) -> Any:
            with self._lock:
                if self._instance is None:
                    args, kwargs = self._arguments
                    self._instance = cls(*args, **kwargs)
            return self._instance(batch)

        def __call__(self, batch: Any) -> Any:
            return self._batches(batch)

    Cached.__name__ = Cached.__qualname__ = f"cached({cls.__name__})"
    Cached.__doc__ = f"``{cls.__qualname__}``, each batch cached by its content."
    return Cached


def class_fingerprint(cls: type, version: Any = None) -> bytes:
    """Return the 16-byte fingerprint of ``cls``: its name and every method in its MRO.

    A change to the body of any method the class defines or inherits (other than from
    ``object``) changes it, as does ``version``.
    """
    state = xxhash.xxh3_128(f"{cls.__module__}.{cls.__qualname__}".encode())
    for base in cls.__mro__[:-1]:
        for name, member in sorted(vars(base).items()):
            wrapped = isinstance(member, (staticmethod, classmethod))
            function = member.__func__ if wrapped else member
            if callable(function) and not isinstance(function, type):
                state.update(name.encode() + function_fingerprint(function))
    state.update(hash_value(version))
    return state.digest()
