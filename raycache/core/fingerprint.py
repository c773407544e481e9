"""Function identity and argument binding, the two halves of a memoization key.

:func:`function_fingerprint` digests what a function does: its module and qualified
name, its bytecode and constants (nested functions included), the globals it names, the
values it closes over, its defaults, a user-supplied ``version`` and the Python version.
It leaves out what does not change behaviour: file paths, line numbers, comments, memory
addresses. So moving a function down its file keeps its key, and editing its body does
not.

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
import functools
import inspect
import struct
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import xxhash

from raycache.core.hashing import hash_value
from raycache.errors import UnhashableValueError

_LENGTH = struct.Struct(">Q")
# The encoding's version, and the interpreter's: bytecode means different things to
# different Python versions, so a cache shared by both must not mix their results.
_FINGERPRINT = b"raycache.core.fingerprint/1" + bytes(sys.version_info[:2])
_CALL = b"raycache.call/1"

_BUILTIN_TYPES = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
    np.ufunc,
)
# Functions being fingerprinted on this thread, outermost first: a function met again
# (a recursive closure, two closures over each other) hashes as a back-reference.
_active = threading.local()


def function_fingerprint(fn: Callable[..., Any], version: object = None) -> bytes:
    """Return the 16-byte fingerprint of ``fn``, the same in every process.

    ``version`` is any hashable value (see :func:`~raycache.core.hashing.hash_value`) mixed
    into the fingerprint; change it to invalidate results when something the fingerprint
    cannot see changes, such as a helper function's body or a data file.

    ``functools.wraps`` chains are unwrapped to the innermost function;
    ``functools.partial`` objects fingerprint their function and bound arguments; bound
    methods their function and ``__self__``; builtins their module and name. Raises
    :class:`TypeError` for other callables, and
    :class:`~raycache.errors.UnhashableValueError` if a closure value or default cannot
    be hashed.

    >>> function_fingerprint(len) == function_fingerprint(len)
    True
    >>> function_fingerprint(len) != function_fingerprint(len, version=2)
    True
    """
    state = xxhash.xxh3_128(_FINGERPRINT)
    state.update(_callable_digest(fn))
    state.update(hash_value(version))
    return state.digest()


def _callable_digest(fn: object) -> bytes:
    # A bound method before unwrapping: unwrap() would reach through to the plain
    # function and lose __self__.
    if isinstance(fn, types.MethodType):
        return xxhash.xxh3_128_digest(
            b"method" + _callable_digest(fn.__func__) + _hash_part(fn, "__self__", fn.__self__)
        )
    if isinstance(fn, functools.partial):
        return xxhash.xxh3_128_digest(
            b"partial"
            + _callable_digest(fn.func)
            + _hash_part(fn.func, "partial positional arguments", fn.args)
            + _hash_part(fn.func, "partial keyword arguments", fn.keywords)
        )
    if callable(fn) and hasattr(fn, "__wrapped__"):
        try:
            inner = inspect.unwrap(fn)
        except ValueError as exc:  # a __wrapped__ cycle
            raise TypeError(f"cannot fingerprint {_name(fn)}: {exc}") from None
        return _callable_digest(inner)
    if isinstance(fn, types.FunctionType):
        return _function_digest(fn)
    if isinstance(fn, _BUILTIN_TYPES) or type(fn).__name__ in (
        "cython_function_or_method",
        "fused_cython_function",
    ):
        return _builtin_digest(fn)
    raise TypeError(
        f"cannot fingerprint {_describe(fn)}: only functions, methods, builtins and "
        "functools.partial objects have a stable identity"
    )


def _function_digest(fn: types.FunctionType) -> bytes:
    stack: list[types.FunctionType] = _active.__dict__.setdefault("stack", [])
    for depth, active in enumerate(reversed(stack), start=1):
        if active is fn:
            return xxhash.xxh3_128_digest(b"recursion" + _LENGTH.pack(depth))
    stack.append(fn)
    try:
        state = xxhash.xxh3_128()
        _update_text(state, fn.__module__ or "")
        _update_text(state, fn.__qualname__)
        _update_code(state, fn.__code__)
        state.update(_hash_part(fn, "default values", fn.__defaults__))
        state.update(_hash_part(fn, "keyword-only default values", fn.__kwdefaults__))
        # Closure values, not cells: a closure over a different value is a different
        # function. An empty cell (a name not yet bound) gets a marker of its own.
        names = fn.__code__.co_freevars
        for name, cell in zip(names, fn.__closure__ or (), strict=True):
            try:
                contents = cell.cell_contents
            except ValueError:
                state.update(b"empty cell")
            else:
                state.update(b"cell" + _hash_part(fn, f"closure variable {name!r}", contents))
        return state.digest()
    finally:
        stack.pop()


def _update_code(state: xxhash.xxh3_128, code: types.CodeType) -> None:
    """Hash what a code object does; never its file name or line numbers."""
    state.update(
        b"C"
        + struct.pack(
            ">IIIII",
            code.co_argcount,
            code.co_posonlyargcount,
            code.co_kwonlyargcount,
            code.co_nlocals,
            code.co_flags,
        )
    )
    _update_text(state, code.co_name)
    # co_code hides the interpreter's specialisations, so it does not change as the
    # function runs. Since 3.11 try/except ranges live in the exception table.
    _update_bytes(state, code.co_code)
    _update_bytes(state, getattr(code, "co_exceptiontable", b""))
    # co_names: the globals and attributes the code uses, so calling a different global
    # changes the fingerprint.
    for names in (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars):
        state.update(hash_value(names))
    state.update(_LENGTH.pack(len(code.co_consts)))
    for const in code.co_consts:
        _update_const(state, const)


def _update_const(state: xxhash.xxh3_128, const: object) -> None:
    # Nested functions, lambdas and comprehensions are code objects among the constants.
    if isinstance(const, types.CodeType):
        _update_code(state, const)
    elif type(const) is tuple and any(isinstance(item, types.CodeType) for item in const):
        state.update(b"T" + _LENGTH.pack(len(const)))
        for item in const:
            _update_const(state, item)
    else:
        state.update(b"V" + hash_value(const))


def _builtin_digest(fn: Any) -> bytes:
    # Builtins have no bytecode; their module and qualified name are stable. A builtin
    # bound to an object ([].append, "x".upper) also hashes that object.
    objclass = getattr(fn, "__objclass__", None)
    module = getattr(fn, "__module__", None) or getattr(objclass, "__module__", "") or ""
    qualname = getattr(fn, "__qualname__", None) or fn.__name__
    state = xxhash.xxh3_128(b"builtin")
    _update_text(state, module)
    _update_text(state, qualname)
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        state.update(_hash_part(fn, "__self__", owner))
    return state.digest()


def _hash_part(fn: object, what: str, value: object) -> bytes:
    try:
        return hash_value(value)
    except UnhashableValueError as exc:
        raise UnhashableValueError(f"cannot fingerprint {_name(fn)}: its {what}: {exc}") from exc


def _update_text(state: xxhash.xxh3_128, text: str) -> None:
    _update_bytes(state, text.encode("utf-8", "surrogatepass"))


def _update_bytes(state: xxhash.xxh3_128, data: bytes) -> None:
    state.update(_LENGTH.pack(len(data)))
    state.update(data)


def _name(fn: object) -> str:
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"{name}()" if isinstance(name, str) else _describe(fn)


def _describe(fn: object) -> str:
    cls = type(fn)
    return f"a {cls.__module__}.{cls.__qualname__} object"


# ------------------------------------------------------------------------------ binding

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
            f"{_name(fn)}; its parameters are {known}"
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
        raise TypeError(f"{_name(fn)}: {exc}") from None
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
    _update_bytes(state, fingerprint)
    state.update(_LENGTH.pack(len(bound)))
    for name in sorted(bound):
        value = bound[name]
        try:
            digest = hash_value(value) if hash_argument is None else hash_argument(name, value)
        except UnhashableValueError as exc:
            where = f" of {function_name}()" if function_name else ""
            raise UnhashableValueError(f"cannot key argument {name!r}{where}: {exc}") from exc
        _update_text(state, name)
        _update_bytes(state, digest)
    return state.digest()
