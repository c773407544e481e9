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
from typing import Any, Concatenate, ParamSpec, TypeVar

import ray
from ray.actor import ActorHandle

A = TypeVar("A")
P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["call_remote", "remote_name"]


def call_remote(
    handle: ActorHandle[A],
    method: Callable[Concatenate[A, P], R],
    *args: P.args,
    **kwargs: P.kwargs,
) -> ray.ObjectRef[R]:
    """Call ``method`` on the actor behind ``handle``; return the reference to its answer."""
    ref: ray.ObjectRef[R] = getattr(handle, remote_name(method)).remote(*args, **kwargs)
    return ref


def remote_name(method: Callable[..., Any]) -> str:
    """Return the name an actor handle knows ``method`` by."""
    return method.__name__
