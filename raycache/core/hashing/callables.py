"""Hashing of callables, by fingerprint: what a function does, not where it lives.

:func:`function_fingerprint` digests a function's module and qualified name, its
bytecode and constants (nested functions included), the globals it names, the values it
closes over, its defaults, a user-supplied ``version`` and the Python version. It leaves
out what does not change behaviour: file paths, line numbers, comments, memory
addresses. So moving a function down its file keeps its key, and editing its body does
not. A callable inside a value hashes as its fingerprint.
"""

from __future__ import annotations

import functools
import inspect
import struct
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import xxhash

from raycache.core import encoding
from raycache.core.hashing.hasher import Hasher, hash_value
from raycache.errors import UnhashableValueError

FINGERPRINT_VERSION = b"raycache.core.fingerprint/1" + bytes(sys.version_info[:2])
"""What every fingerprint starts from: the encoding's version, and the interpreter's.

Bytecode means different things to different Python versions, so a cache shared by
both must not mix their results.
"""

_BUILTIN_TYPES = (
    types.BuiltinFunctionType,
    types.MethodDescriptorType,
    types.WrapperDescriptorType,
    types.MethodWrapperType,
    types.ClassMethodDescriptorType,
    np.ufunc,
)
_CALLABLE_TYPES = (types.FunctionType, types.MethodType, functools.partial, *_BUILTIN_TYPES)
_CODE_COUNTS = struct.Struct(">IIIII")
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
    state = xxhash.xxh3_128(FINGERPRINT_VERSION)
    state.update(_callable_digest(fn))
    state.update(hash_value(version))
    return state.digest()


def hash_callable(h: Hasher, value: object) -> bool:
    """Hash ``value`` by its fingerprint if it is a function or the like; say if it was."""
    if not isinstance(value, _CALLABLE_TYPES) and not _is_cython_function(value):
        return False
    h.write(b"#" + function_fingerprint(value))  # type: ignore[arg-type]
    return True


def _is_cython_function(value: object) -> bool:
    return type(value).__name__ in ("cython_function_or_method", "fused_cython_function")


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
            raise TypeError(f"cannot fingerprint {callable_name(fn)}: {exc}") from None
        return _callable_digest(inner)
    if isinstance(fn, types.FunctionType):
        return _function_digest(fn)
    if isinstance(fn, _BUILTIN_TYPES) or _is_cython_function(fn):
        return _builtin_digest(fn)
    raise TypeError(
        f"cannot fingerprint {_describe(fn)}: only functions, methods, builtins and "
        "functools.partial objects have a stable identity"
    )


def _function_digest(fn: types.FunctionType) -> bytes:
    stack: list[types.FunctionType] = _active.__dict__.setdefault("stack", [])
    for depth, active in enumerate(reversed(stack), start=1):
        if active is fn:
            return xxhash.xxh3_128_digest(b"recursion" + encoding.length(depth))
    stack.append(fn)
    try:
        state = xxhash.xxh3_128()
        encoding.write_text(state.update, (fn.__module__ or ""))
        encoding.write_text(state.update, fn.__qualname__)
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
    counts = (code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount)
    state.update(b"C" + _CODE_COUNTS.pack(*counts, code.co_nlocals, code.co_flags))
    encoding.write_text(state.update, code.co_name)
    # co_code hides the interpreter's specialisations, so it does not change as the
    # function runs. Since 3.11 try/except ranges live in the exception table.
    encoding.write_sized(state.update, code.co_code)
    encoding.write_sized(state.update, getattr(code, "co_exceptiontable", b""))
    # co_names: the globals and attributes the code uses, so calling a different global
    # changes the fingerprint.
    for names in (code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars):
        state.update(hash_value(names))
    state.update(encoding.length(len(code.co_consts)))
    for const in code.co_consts:
        _update_const(state, const)


def _update_const(state: xxhash.xxh3_128, const: object) -> None:
    # Nested functions, lambdas and comprehensions are code objects among the constants.
    if isinstance(const, types.CodeType):
        _update_code(state, const)
    elif type(const) is tuple and any(isinstance(item, types.CodeType) for item in const):
        state.update(encoding.header(encoding.TUPLE, len(const)))
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
    encoding.write_text(state.update, module)
    encoding.write_text(state.update, qualname)
    owner = getattr(fn, "__self__", None)
    if owner is not None and not isinstance(owner, types.ModuleType):
        state.update(_hash_part(fn, "__self__", owner))
    return state.digest()


def _hash_part(fn: object, what: str, value: object) -> bytes:
    try:
        return hash_value(value)
    except UnhashableValueError as exc:
        raise UnhashableValueError(
            f"cannot fingerprint {callable_name(fn)}: its {what}: {exc}"
        ) from exc


def callable_name(fn: object) -> str:
    """Return how messages name ``fn``: ``"load_rows()"``, or its type if it has no name.

    >>> callable_name(len), callable_name(3)
    ('len()', 'a builtins.int object')
    """
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    return f"{name}()" if isinstance(name, str) else _describe(fn)


def _describe(fn: object) -> str:
    cls = type(fn)
    return f"a {cls.__module__}.{cls.__qualname__} object"
