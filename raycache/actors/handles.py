"""Typed calls to actors: ``call_remote(shard, Shard.get, request)``, never a method's name.

Ray's ``handle.get.remote(request)`` is untyped: a handle's attributes are found at run
time, so a renamed or re-signed actor method breaks only when it is called. Here every
call names the method by the class attribute itself, so ``mypy --strict`` checks that
the handle is of that class, that the method exists, that the arguments fit its
signature, and what the returned reference holds.

>>> class Counter:
...     def add(self, amount: int) -> int:
...         return amount
>>> remote_name(Counter.add)
'add'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast

import ray
from ray.actor import ActorHandle

A = TypeVar("A")
P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["RemoteMethod", "bind", "call_remote", "in_group", "remote_name"]


def call_remote(
    handle: ActorHandle[A],
    method: Callable[Concatenate[A, P], R],
    *args: P.args,
    **kwargs: P.kwargs,
) -> ray.ObjectRef[R]:
    """Call ``method`` on the actor behind ``handle``; return the reference to its answer."""
    return bind(handle, method).remote(*args, **kwargs)


class RemoteMethod(Generic[P, R]):
    """One method of one actor, to call later or elsewhere: it pickles as handle and name.

    A task that must report to the shard that started it gets one of these, so that its
    module need not import the shard's class, and the call is typed all the same.
    """

    __slots__ = ("_handle", "_name")

    def __init__(self, handle: ActorHandle[Any], name: str) -> None:
        self._handle = handle
        self._name = name

    def remote(self, *args: P.args, **kwargs: P.kwargs) -> ray.ObjectRef[R]:
        """Call the method; return the reference to its answer."""
        ref: ray.ObjectRef[R] = getattr(self._handle, self._name).remote(*args, **kwargs)
        return ref

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the handle and the method's name."""
        return RemoteMethod, (self._handle, self._name)


def bind(handle: ActorHandle[A], method: Callable[Concatenate[A, P], R]) -> RemoteMethod[P, R]:
    """Return ``method`` of the actor behind ``handle``, to call with ``.remote(...)``."""
    return RemoteMethod(handle, remote_name(method))


def remote_name(method: Callable[..., Any]) -> str:
    """Return the name an actor handle knows ``method`` by."""
    return method.__name__


def in_group(group: str) -> Callable[[F], F]:
    """Run the decorated actor method in Ray's concurrency group ``group``.

    It is ``@ray.method(concurrency_group=group)``, which returns the method itself,
    typed as that method, so that :func:`call_remote` still checks calls to it.
    """

    def decorate(method: F) -> F:
        return cast(F, ray.method(concurrency_group=group)(method))

    return decorate
