"""Function identity and argument binding, the two halves of a memoization key.

:func:`function_fingerprint` digests what a function does: its module and qualified
name, its bytecode and constants (nested functions included), the globals it names, the
values it closes over, its defaults, a user-supplied ``version`` and the Python version.
It leaves out what does not change behaviour: file paths, line numbers, comments, memory
addresses. So moving a function down its file keeps its key, and editing its body does
not. It lives with the other kinds of value in :mod:`raycache.core.hashing.callables`,
because a function inside an argument hashes by its fingerprint, and a function's
constants and closure values hash as values; this module is its public home.

:func:`bind_arguments` binds a call to the function's signature, so ``f(1, b=2)`` and
``f(1, 2)`` give the same arguments, and :func:`call_digest` digests a fingerprint and
bound arguments into the key of one call.

>>> def area(width, height=1):
...     return width * height
>>> fp = function_fingerprint(area)
>>> bound = bind_arguments(area, (3,), {"height": 2})
>>> bound
{'width': 3, 'height': 2}
>>> call_digest(fp, bound) == call_digest(fp, bind_arguments(area, (3, 2), {}))
True
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import xxhash

from raycache.core import encoding
from raycache.core.hashing import (
    FINGERPRINT_VERSION,
    callable_name,
    function_fingerprint,
    hash_value,
)
from raycache.errors import UnhashableValueError

__all__ = [
    "FINGERPRINT_VERSION",
    "bind_arguments",
    "call_digest",
    "check_ignore",
    "function_fingerprint",
]

_CALL = b"raycache.call/1"

# inspect.signature() takes microseconds and a memoized function binds on every call.
_signatures: weakref.WeakKeyDictionary[Any, inspect.Signature] = weakref.WeakKeyDictionary()


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    try:
        return _signatures[fn]
    except (KeyError, TypeError):  # TypeError: not weakly referable or not hashable
        pass
    signature = inspect.signature(fn)
    with contextlib.suppress(TypeError):
        _signatures[fn] = signature
    return signature


def check_ignore(fn: Callable[..., Any], ignore: Iterable[str]) -> frozenset[str]:
    """Return the parameter names in ``ignore``; raise ValueError if one is not a parameter.

    Meant for decoration time, so a misspelt name fails at once, not silently forever.
    A single string is taken as one name.

    >>> def load(path, conn=None):
    ...     pass
    >>> sorted(check_ignore(load, "conn"))
    ['conn']
    >>> check_ignore(load, ["con"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: ignore names 'con', which are not parameters of load(); its parameters are ...
    """
    names = frozenset((ignore,) if isinstance(ignore, str) else ignore)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"ignore names must be str, not {type(name).__name__}")
    parameters = _signature(fn).parameters
    unknown = sorted(names.difference(parameters))
    if unknown:
        known = ", ".join(map(repr, parameters)) or "none"
        raise ValueError(
            f"ignore names {', '.join(map(repr, unknown))}, which are not parameters of "
            f"{callable_name(fn)}; its parameters are {known}"
        )
    return names


def bind_arguments(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    ignore: Iterable[str] = (),
) -> dict[str, Any]:
    """Return the arguments of the call ``fn(*args, **kwargs)`` by parameter name.

    Defaults are applied, so every way of passing the same arguments binds the same.
    ``*args`` and ``**kwargs`` parameters bind to a tuple and a dict. Names in
    ``ignore`` are left out (check them once with :func:`check_ignore`). Raises
    :class:`TypeError` for arguments ``fn`` would not accept, as calling it would.

    >>> def f(a, b=2, *rest, c, **extra):
    ...     pass
    >>> bind_arguments(f, (1,), {"c": 3})
    {'a': 1, 'b': 2, 'rest': (), 'c': 3, 'extra': {}}
    >>> bind_arguments(f, (1, 5, 6), {"c": 3, "d": 4}, ignore=["b"])
    {'a': 1, 'rest': (6,), 'c': 3, 'extra': {'d': 4}}
    >>> bind_arguments(f, (), {})
    Traceback (most recent call last):
    ...
    TypeError: f(): missing a required argument: 'a'
    """
    try:
        bound = _signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{callable_name(fn)}: {exc}") from None
    bound.apply_defaults()
    arguments = bound.arguments
    for name in (ignore,) if isinstance(ignore, str) else ignore:
        arguments.pop(name, None)
    return arguments


def call_digest(
    fingerprint: bytes,
    bound: dict[str, Any],
    hash_argument: Callable[[str, Any], bytes] | None = None,
    *,
    function_name: str | None = None,
) -> bytes:
    """Return the 16-byte key of a call: a function fingerprint and its bound arguments.

    Arguments are hashed with ``hash_argument(name, value)`` if given (it may return
    :func:`~raycache.core.hashing.hash_value` for the values it does not treat itself), else
    with :func:`~raycache.core.hashing.hash_value`; their order does not matter. An argument
    that cannot be hashed raises :class:`~raycache.errors.UnhashableValueError`, a
    :class:`TypeError`, naming the parameter and, if given, ``function_name``.

    >>> call_digest(b"fp", {"a": 1, "b": 2}) == call_digest(b"fp", {"b": 2, "a": 1})
    True
    >>> call_digest(b"fp", {"conn": object()}, function_name="load_rows")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    raycache.errors.UnhashableValueError: cannot key argument 'conn' of load_rows(): object ...
    """
    state = xxhash.xxh3_128(_CALL)
    encoding.write_sized(state.update, fingerprint)
    state.update(encoding.length(len(bound)))
    for name in sorted(bound):
        value = bound[name]
        try:
            digest = hash_value(value) if hash_argument is None else hash_argument(name, value)
        except UnhashableValueError as exc:
            where = f" of {function_name}()" if function_name else ""
            raise UnhashableValueError(f"cannot key argument {name!r}{where}: {exc}") from exc
        encoding.write_text(state.update, name)
        encoding.write_sized(state.update, digest)
    return state.digest()
