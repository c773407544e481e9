"""Tests of raycache.core.fingerprint: what changes a function's key, and argument binding."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from raycache.core.fingerprint import (
    FINGERPRINT_VERSION,
    bind_arguments,
    call_digest,
    check_ignore,
    function_fingerprint,
)
from raycache.core.hashing import hash_value
from raycache.errors import UnhashableValueError

# A module of user code, loaded from source text, so tests can edit it like a user would.
SOURCE = '''
import math

SCALE = 3


def helper(x):
    return x + 1


def target(values, power=2, *, offset=0.5):
    """Sum of powers."""
    squares = [v ** power for v in values]  # a comprehension
    shift = lambda s: s + offset  # noqa: E731
    try:
        return shift(math.fsum(squares))
    except TypeError:
        return None


def make_scaler(factor):
    def scale(x):
        return x * factor
    return scale


def make_caller(fn):
    def call(x):
        return fn(x)
    return call


def countdown(n):
    def step(k):
        return k if k <= 0 else step(k - 1)
    return step(n)


def make_recursive():
    def again(k):
        return k if k <= 0 else again(k - 1)
    return again
'''

FINGERPRINT_SCRIPT = """
import sys, types
from raycache.core.fingerprint import function_fingerprint
module = types.ModuleType("userland")
exec(sys.stdin.read(), module.__dict__)
for expression in sys.argv[1:]:
    print(function_fingerprint(eval(expression, module.__dict__)).hex())
"""


def load(source: str = SOURCE, name: str = "userland") -> types.ModuleType:
    module = types.ModuleType(name)
    # dont_inherit: this file's `from __future__ import annotations` must not leak in.
    exec(compile(source, "<userland>", "exec", dont_inherit=True), module.__dict__)
    return module


def fps_in_new_process(expressions: list[str], source: str = SOURCE) -> list[str]:
    """Return the fingerprints, in hex, of ``expressions`` evaluated in a new process."""
    env = dict(os.environ, PYTHONHASHSEED="4321")
    result = subprocess.run(
        [sys.executable, "-c", FINGERPRINT_SCRIPT, *expressions],
        input=source, capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return result.stdout.split()


def edited(old: str, new: str) -> str:
    assert old in SOURCE
    return SOURCE.replace(old, new)


def test_fingerprint_is_16_bytes_and_stable_in_this_process() -> None:
    module = load()
    assert len(function_fingerprint(module.target)) == 16
    assert function_fingerprint(module.target) == function_fingerprint(load().target)


def test_same_source_in_a_new_process_gives_the_same_fingerprint() -> None:
    module = load()
    expressions = [
        "target", "helper", "make_scaler(2)", "make_caller(helper)", "make_recursive()",
        "countdown", "math.fsum", "__import__('functools').partial(target, power=3)",
    ]  # fmt: skip
    local = [function_fingerprint(eval(e, module.__dict__)).hex() for e in expressions]
    assert fps_in_new_process(expressions) == local
    assert len(set(local)) == len(local)


def test_moving_a_function_or_editing_comments_keeps_the_fingerprint() -> None:
    module = load()
    moved = "# a new comment\n\n\n\n" + SOURCE.replace("def helper", "# more\n\n\ndef helper")
    commented = edited("# a comprehension", "# squares, one per value")
    assert function_fingerprint(load(moved).target) == function_fingerprint(module.target)
    assert function_fingerprint(load(commented).target) == function_fingerprint(module.target)
    assert fps_in_new_process(["target"], moved) == [function_fingerprint(module.target).hex()]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("return shift(math.fsum(squares))", "return shift(math.fsum(squares)) * 2"),
        ("v ** power for v", "v ** power + 1 for v"),  # inside the comprehension
        ("s + offset", "s - offset"),  # inside the lambda
        ("math.fsum(squares)", "math.prod(squares)"),  # a different global attribute
        ("except TypeError", "except ValueError"),
        ("power=2", "power=3"),  # a default
        ("offset=0.5", "offset=1.5"),  # a keyword-only default
        ("def target(values,", "def target(items,"),  # a parameter name
        ('"""Sum of powers."""', '"""Sum of squares."""'),  # the docstring is a constant
    ],
)
def test_editing_the_body_changes_the_fingerprint(old: str, new: str) -> None:
    before = function_fingerprint(load().target)
    assert function_fingerprint(load(edited(old, new)).target) != before


def test_calling_a_different_global_changes_the_fingerprint() -> None:
    one = load("def f(x):\n    return alpha(x)\n")
    two = load("def f(x):\n    return beta(x)\n")
    assert function_fingerprint(one.f) != function_fingerprint(two.f)


def test_module_and_qualified_name_count() -> None:
    module = load()
    other = load(name="elsewhere")
    assert function_fingerprint(module.target) != function_fingerprint(other.target)
    renamed = load(SOURCE + "\nrenamed = target\n")
    assert function_fingerprint(renamed.renamed) == function_fingerprint(module.target)


def test_closure_values_count() -> None:
    module = load()
    assert function_fingerprint(module.make_scaler(2)) == function_fingerprint(
        module.make_scaler(2)
    )
    assert function_fingerprint(module.make_scaler(2)) != function_fingerprint(
        module.make_scaler(3)
    )
    assert function_fingerprint(module.make_scaler(2)) != function_fingerprint(
        module.make_scaler(2.0)
    )
    assert function_fingerprint(module.make_scaler(np.arange(3))) != function_fingerprint(
        module.make_scaler(np.arange(4))
    )


def test_a_closure_over_a_function_uses_its_fingerprint() -> None:
    module = load()
    changed = load(edited("return x + 1", "return x + 2"))
    assert function_fingerprint(module.make_caller(module.helper)) == function_fingerprint(
        load().make_caller(load().helper)
    )
    assert function_fingerprint(module.make_caller(module.helper)) != function_fingerprint(
        changed.make_caller(changed.helper)
    )


def test_recursive_closures_terminate_and_are_stable() -> None:
    module = load()
    assert function_fingerprint(module.make_recursive()) == function_fingerprint(
        load().make_recursive()
    )
    assert module.countdown(3) == 0


def test_empty_closure_cells_are_allowed() -> None:
    def outer() -> Callable[[], Any]:
        def inner() -> Any:
            return later

        function_fingerprint(inner)  # 'later' is not bound yet
        later = 1
        return inner

    assert function_fingerprint(outer()) == function_fingerprint(outer())


def test_version_counts() -> None:
    module = load()
    assert function_fingerprint(module.target) == function_fingerprint(module.target, None)
    assert function_fingerprint(module.target, 1) != function_fingerprint(module.target)
    assert function_fingerprint(module.target, 1) != function_fingerprint(module.target, "1")
    assert function_fingerprint(module.target, (1, "a")) == function_fingerprint(
        module.target, (1, "a")
    )


def test_python_version_is_part_of_the_fingerprint() -> None:
    assert FINGERPRINT_VERSION.endswith(bytes(sys.version_info[:2]))


def test_running_a_function_does_not_change_its_fingerprint() -> None:
    # CPython 3.11+ specialises bytecode in place as it runs; co_code hides that.
    module = load()
    before = function_fingerprint(module.target)
    for _ in range(2000):
        module.target([1, 2, 3])
    assert function_fingerprint(module.target) == before


def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def test_wrappers_partials_methods_and_builtins() -> None:
    module = load()
    assert function_fingerprint(decorate(decorate(module.target))) == function_fingerprint(
        module.target
    )
    assert function_fingerprint(functools.lru_cache(module.target)) == function_fingerprint(
        module.target
    )
    one = functools.partial(module.target, power=1)
    assert function_fingerprint(one) == function_fingerprint(
        functools.partial(module.target, power=1)
    )
    assert function_fingerprint(one) != function_fingerprint(
        functools.partial(module.target, power=2)
    )
    assert function_fingerprint(one) != function_fingerprint(module.target)
    assert function_fingerprint(Scaler(2).apply) == function_fingerprint(Scaler(2).apply)
    assert function_fingerprint(Scaler(2).apply) != function_fingerprint(Scaler(3).apply)
    assert function_fingerprint(Scaler.create) == function_fingerprint(Scaler.create)
    assert function_fingerprint(len) == function_fingerprint(len)
    assert function_fingerprint(len) != function_fingerprint(abs)
    assert function_fingerprint("x".upper) != function_fingerprint("y".upper)
    assert function_fingerprint(str.upper) != function_fingerprint(str.lower)
    assert function_fingerprint(np.add) != function_fingerprint(np.subtract)


@dataclass(frozen=True)
class Scaler:
    factor: int

    def apply(self, x: int) -> int:
        return x * self.factor

    @classmethod
    def create(cls) -> Scaler:
        return cls(1)

    def __call__(self, x: int) -> int:
        return x


def test_unsupported_callables_raise_type_error() -> None:
    with pytest.raises(TypeError, match=r"cannot fingerprint a .*Scaler object"):
        function_fingerprint(Scaler(1))
    with pytest.raises(TypeError, match="cannot fingerprint"):
        function_fingerprint(Scaler)


def test_unhashable_closures_and_defaults_name_the_culprit() -> None:
    lock = threading.Lock()

    def guarded() -> bool:
        return lock.locked()

    def with_default(conn: object = lock) -> object:
        return conn

    with pytest.raises(UnhashableValueError, match=r"closure variable 'lock'.*lock"):
        function_fingerprint(guarded)
    with pytest.raises(UnhashableValueError, match=r"with_default.*default values"):
        function_fingerprint(with_default)


def test_functions_as_values_hash_by_fingerprint() -> None:
    module = load()
    assert hash_value(module.target) == hash_value(load().target)
    assert hash_value([module.make_scaler(1)]) != hash_value([module.make_scaler(2)])


# ------------------------------------------------------------------------------ binding


def load_rows(path: str, limit: int = 10, *extra: Any, conn: Any = None, **options: Any) -> None:
    pass


def positional(a: int, /, b: int = 2) -> None:
    pass


def test_binding_applies_defaults_and_names() -> None:
    bound = bind_arguments(load_rows, ("p",), {})
    assert bound == {"path": "p", "limit": 10, "extra": (), "conn": None, "options": {}}
    assert list(bound) == ["path", "limit", "extra", "conn", "options"]
    assert bind_arguments(load_rows, ("p", 10), {}) == bind_arguments(
        load_rows, (), {"limit": 10, "path": "p"}
    )
    assert bind_arguments(load_rows, ("p", 1, 2, 3), {"x": 1}) == {
        "path": "p", "limit": 1, "extra": (2, 3), "conn": None, "options": {"x": 1},
    }  # fmt: skip
    assert bind_arguments(positional, (1,), {}) == bind_arguments(positional, (1, 2), {})


def test_ignored_parameters_are_dropped_and_checked() -> None:
    assert check_ignore(load_rows, ["conn"]) == frozenset({"conn"})
    assert check_ignore(load_rows, "conn") == frozenset({"conn"})
    assert check_ignore(load_rows, ()) == frozenset()
    with pytest.raises(ValueError, match=r"'connection'.*load_rows"):
        check_ignore(load_rows, ["connection"])
    bound = bind_arguments(load_rows, ("p",), {"conn": object()}, ignore={"conn", "options"})
    assert bound == {"path": "p", "limit": 10, "extra": ()}


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [((), {}, "missing"), (("p",), {"path": "q"}, "multiple"),
     ((1, 2, 3), {"a": 1, "bogus": 2}, "positional|unexpected")],
)  # fmt: skip
def test_binding_errors_are_type_errors(
    args: tuple[Any, ...], kwargs: dict[str, Any], match: str
) -> None:
    fn = positional if "a" in kwargs else load_rows
    with pytest.raises(TypeError, match=match):
        bind_arguments(fn, args, kwargs)


@given(st.dictionaries(st.text(min_size=1).filter(str.isidentifier), st.integers(), max_size=6))
def test_call_digest_ignores_keyword_order(options: dict[str, Any]) -> None:
    options.pop("path", None)
    fp = function_fingerprint(load_rows)
    forward = bind_arguments(load_rows, ("p",), options)
    backward = bind_arguments(load_rows, ("p",), dict(reversed(list(options.items()))))
    assert call_digest(fp, forward) == call_digest(fp, backward)


def test_call_digest_depends_on_fingerprint_names_and_values() -> None:
    fp = function_fingerprint(positional)
    base = call_digest(fp, {"a": 1, "b": 2})
    assert base == call_digest(fp, bind_arguments(positional, (1,), {}))
    assert base != call_digest(fp, {"a": 2, "b": 1})
    assert base != call_digest(fp, {"a": 1, "c": 2})
    assert base != call_digest(function_fingerprint(positional, version=2), {"a": 1, "b": 2})
    assert base != call_digest(fp, {"a": 1})
    assert len(base) == 16


def test_hash_argument_substitutes_hashes() -> None:
    seen: list[str] = []

    def by_name(name: str, value: Any) -> bytes:
        seen.append(name)
        return b"ref" if name == "a" else hash_value(value)

    fp = function_fingerprint(positional)
    assert call_digest(fp, {"a": object(), "b": 2}, by_name) == call_digest(
        fp, {"a": object(), "b": 2}, by_name
    )
    assert sorted(seen) == ["a", "a", "b", "b"]
    assert call_digest(fp, {"a": 1, "b": 2}, by_name) != call_digest(fp, {"a": 1, "b": 2})


def test_unhashable_argument_names_the_parameter() -> None:
    fp = function_fingerprint(load_rows)
    bound = bind_arguments(load_rows, ("p",), {"conn": threading.Lock()})
    with pytest.raises(TypeError, match=r"argument 'conn' of load_rows\(\): .*lock"):
        call_digest(fp, bound, function_name="load_rows")
    with pytest.raises(UnhashableValueError, match=r"^cannot key argument 'conn': "):
        call_digest(fp, bound)


def test_call_digest_is_the_same_in_another_process() -> None:
    code = textwrap.dedent(
        """
        import types, sys
        from raycache.core.fingerprint import bind_arguments, call_digest, function_fingerprint
        module = types.ModuleType("userland")
        exec(sys.stdin.read(), module.__dict__)
        bound = bind_arguments(module.target, ([1, 2],), {"offset": 1.0})
        print(call_digest(function_fingerprint(module.target), bound).hex())
        """
    )
    env = dict(os.environ, PYTHONHASHSEED="99")
    other = subprocess.run(
        [sys.executable, "-c", code], input=SOURCE, capture_output=True, text=True,
        check=True, env=env,
    )  # fmt: skip
    module = load()
    bound = bind_arguments(module.target, ([1, 2],), {"offset": 1.0})
    assert other.stdout.strip() == call_digest(function_fingerprint(module.target), bound).hex()
