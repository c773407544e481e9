"""The vault: one actor per node that owns the large values of every cache's shards there.

An object dies with the process that owns it. A shard serves requests and may crash or be
killed; so the objects behind the references it hands out are owned by its node's vault
instead, a detached actor that serves no user request and runs no user code: it puts
values, submits memoized tasks (it never unpickles their functions) and keeps references.
Only losing its node, or the vault process itself, loses them.

The vault holds each reference for a shard (a ``(cache, member)`` pair) until that shard
releases it, so that memory follows the shard's budget. A vault that holds nothing for
any shard exits after :data:`IDLE_EXIT_S`: Ray counts a node with a live actor as busy,
and an autoscaler removes only idle nodes. With each reference it keeps the
entry's :class:`Record`, so that a shard restarted after a crash takes its large entries
back (:meth:`Vault.recover`).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from raycache.actors.cluster import NAMESPACE, VAULT_PREFIX, lasting, vault_name
from raycache.actors.compute import Call, Report, submit
from raycache.actors.handles import call_remote, in_group
from raycache.actors.priority import lower_priority
from raycache.actors.references import Shipped
from raycache.core.storage.file_entry import FileEntry
from raycache.core.storage.files import Contents
from raycache.core.storage.signing import Signer

Holder = tuple[str, str]
"""A shard, as ``(cache, member)``."""

PROMOTIONS = "promotions"
"""The vault's concurrency group that copies storage hits into the object store, one at a time."""

ORPHAN_GRACE_S = 120.0
"""How long a vault keeps what a dead shard held, beyond the cache's own use of it.

Ray learns who borrows an object from the process that passed the reference on, when
that process lets go of it. A reader that got its reference from a shard that then died
is unknown to the vault, so its object lives only as long as the vault holds it itself.
"""


HOMED_GRACE_S = 30.0
"""How long a vault keeps a result it copied onto its node (:meth:`Vault.bring_home`).

A reader may have got the original's reference from the shard just before the copy
replaced it there, and Ray may not know of that reader yet (see :data:`ORPHAN_GRACE_S`).
"""

IDLE_EXIT_S = 30.0
"""How long a vault that no shard uses waits before it exits, so that its node may go idle."""


@dataclass(frozen=True)
class Record:
    """What a shard needs to take an entry back: its key, size, expiry, tags and cost.

    ``expires_at`` is wall-clock time (``time.time()``), since the shard that reads it
    back is another process, with another monotonic clock.
    """

    digest: bytes
    size: int
    expires_at: float | None
    tags: tuple[str, ...]
    cost: float

    def ttl(self) -> float | None:
        """Return the seconds left to live, None for no limit; 0 or less if expired."""
        return None if self.expires_at is None else self.expires_at - time.time()


class Vault:
    """The owner of one node's large cached values. Started by shards; see :func:`local_vault`."""

    def __init__(self) -> None:
        # Per shard, hex -> [ref] and its record once the shard has stored it. The
        # references here are what keeps the objects alive for the cache.
        self._held: dict[Holder, dict[str, tuple[list[Any], Record | None]]] = {}
        self._orphans: deque[tuple[float, list[list[Any]]]] = deque()
        # Promotions not begun: each file, its mapping, and the signer that checks it.
        self._mapped: dict[int, tuple[FileEntry, Contents, Signer | None]] = {}
        self._tokens = itertools.count()
        self._idle_since: float | None = None
        threading.Thread(target=self._watch_idle, name="vault-idle", daemon=True).start()

    def keep(self, cache: str, member: str, value: Any) -> list[Any]:
        """Put ``value`` (or the value shipped) in the object store, owned by this vault.

        Return ``[ref]``.
        """
        if isinstance(value, Shipped):
            value = ray.get(value.ref)
        return self._hold((cache, member), [ray.put(value)])

    def promote(
        self, cache: str, member: str, file: FileEntry, key: bytes | None
    ) -> list[Any] | None:
        """Copy a verified file into the object store, in the background; return ``[ref]``.

        The file is mapped now, so that its removal or replacement from here on cannot
        change what the copy holds; None if it is no longer the version verified. ``key``
        is the cache's derived storage key, which the copy is checked with, if it has one.
        """
        try:
            contents = file.map()
        except Exception:  # removed or replaced since the shard verified it: a miss
            return None
        token = next(self._tokens)
        self._mapped[token] = (file, contents, None if key is None else Signer(key))
        this = ray.get_runtime_context().current_actor
        return self._hold((cache, member), [call_remote(this, Vault.copy_mapped, token)])

    @in_group(PROMOTIONS)
    def copy_mapped(self, token: int) -> Any:
        """Return the value of the file :meth:`promote` mapped, for Ray to copy as the result.

        It runs in a thread of its own at the lowest CPU priority, so that copies yield
        to computations and to this vault's other calls.
        """
        lower_priority()
        file, contents, signer = self._mapped.pop(token)
        # A private copy, checked, is what Ray copies on: bytes changed in the file in
        # place after the check would otherwise reach the object store unchecked.
        private = contents._replace(buffer=memoryview(bytearray(contents.buffer)))
        return file.decode(private, verify=True, signer=signer)

    def submit(
        self, cache: str, member: str, call: Call, report: Report, digest: bytes, token: int
    ) -> list[Any]:
        """Start ``call`` for a shard as a task this vault owns; return ``[ref]``.

        The task tells the shard its outcome through ``report``.
        """
        return self._hold((cache, member), [submit(call, report, digest, token)])

    def take_custody(
        self, cache: str, member: str, nested: list[Any], *, copy: bool = False
    ) -> list[Any]:
        """Hold ``nested[0]`` for a shard as well; return ``[ref]`` to it.

        A reference this vault already owns is held as it is, unless ``copy``; another is
        copied here, so that the value lives on this node and no longer depends on its
        first owner, nor on the node it was made on.
        """
        ref = nested[0]
        if copy or not any(ref.hex() in refs for refs in self._held.values()):
            ref = ray.put(ray.get(ref))
        return self._hold((cache, member), [ref])

    def bring_home(self, cache: str, member: str, nested: list[Any], node: str) -> list[Any]:
        """Return ``[ref]`` to a copy on this node of ``nested[0]``, a result made on ``node``.

        A result made on this node is returned as it is. The copy is made in the
        background, and held for the shard from now on.
        """
        if node == ray.get_runtime_context().get_node_id():
            return nested
        self._orphan([nested], HOMED_GRACE_S)
        this = ray.get_runtime_context().current_actor
        return self._hold((cache, member), [call_remote(this, Vault.copy_of, nested)])

    @in_group(PROMOTIONS)
    def copy_of(self, nested: list[Any]) -> Any:
        """Return the value of ``nested[0]``, for Ray to store here as this call's result."""
        lower_priority()
        return ray.get(nested[0])

    def update(
        self, cache: str, member: str, records: list[tuple[str, Record]], released: list[str]
    ) -> None:
        """Attach the records of references a shard stored; drop those it released."""
        self._expire_orphans()
        refs = self._held.get((cache, member), {})
        for hex_id, record in records:
            if hex_id in refs:  # released meanwhile otherwise
                refs[hex_id] = (refs[hex_id][0], record)
        for hex_id in released:
            refs.pop(hex_id, None)

    def recover(self, cache: str, member: str) -> list[tuple[Record, list[Any]]]:
        """Return a restarted shard's stored entries; let go of what it never stored.

        All it held is kept for :data:`ORPHAN_GRACE_S` anyway, for its readers.
        """
        refs = self._held.get((cache, member), {})
        self._orphan([nested for nested, _ in refs.values()])
        kept = {hex_id: held for hex_id, held in refs.items() if held[1] is not None}
        self._held[(cache, member)] = kept
        return [(record, nested) for nested, record in kept.values() if record is not None]

    def drop(self, cache: str, member: str | None = None) -> int:
        """Drop every reference held for ``cache``'s shard ``member`` (all if None); count them.

        What one shard held is kept a while longer, since that shard is gone (see
        :data:`ORPHAN_GRACE_S`); a whole cache's is freed at once, as its shutdown asks.
        """
        holders = [h for h in self._held if h[0] == cache and member in (None, h[1])]
        dropped = [held[0] for holder in holders for held in self._held.pop(holder).values()]
        if member is not None:
            self._orphan(dropped)
        return len(dropped)

    def exit_if_idle(self) -> bool:
        """Exit if no shard has used this vault for :data:`IDLE_EXIT_S`; else return False.

        Every shard on the node registers here as it starts (:meth:`recover`) and leaves
        only when it is dropped, so that a vault in use never exits. It runs on the
        vault's main thread, in turn with every registration: one that comes after the
        exit fails, and its shard finds the next vault.
        """
        self._expire_orphans()
        if self._held or self._orphans or self._mapped:
            self._idle_since = None
            return False
        now = time.monotonic()
        self._idle_since = self._idle_since or now
        if now - self._idle_since < IDLE_EXIT_S:
            return False
        ray.actor.exit_actor()  # type: ignore[no-untyped-call]
        return True  # not reached: exit_actor ends the process

    def holdings(self, cache: str) -> list[str]:
        """Return the hex ids of the objects held for ``cache``."""
        return [
            hex_id for (name, _), refs in self._held.items() if name == cache for hex_id in refs
        ]

    def _watch_idle(self) -> None:
        this = ray.get_runtime_context().current_actor
        while True:
            time.sleep(IDLE_EXIT_S / 3)
            with contextlib.suppress(RayActorError):
                ray.get(call_remote(this, Vault.exit_if_idle))

    def _orphan(self, refs: list[list[Any]], grace: float = ORPHAN_GRACE_S) -> None:
        if refs:
            self._orphans.append((time.monotonic() + grace, refs))

    def _expire_orphans(self) -> None:
        now = time.monotonic()
        while self._orphans and self._orphans[0][0] <= now:
            self._orphans.popleft()

    def _hold(self, holder: Holder, nested: list[Any]) -> list[Any]:
        self._held.setdefault(holder, {})[nested[0].hex()] = (nested, None)
        return nested


_VAULT: Any = ray.remote(concurrency_groups={PROMOTIONS: 1})(Vault)  # type: ignore[call-overload]
"""The vault as an actor class; Ray's stubs do not list ``concurrency_groups``."""


def local_vault() -> ActorHandle[Vault]:
    """Return the vault of the calling process's node, starting it if need be.

    Detached, so that it outlives the driver and the router that led to it; pinned to its
    node, since its whole point is to live exactly as long as that node; restarted if it
    crashes (empty: its objects died with it).
    """
    node = ray.get_runtime_context().get_node_id()
    vault: ActorHandle[Vault] = _VAULT.options(
        **lasting(vault_name(node)),
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False),
    ).remote()
    return vault


def drop_everywhere(
    cache: str, member: str | None = None, *, sparing: str | None = None
) -> list[ray.ObjectRef[int]]:
    """Tell every vault but ``sparing`` to drop what it holds for ``cache`` (or one member).

    Return the calls, for a caller that must wait: a cache shut down, or a shard removed
    or replaced on another node, leaves nothing behind.
    """
    calls = []
    for name in _vault_names():
        if name != sparing:
            with contextlib.suppress(ValueError):  # gone with its node meanwhile
                vault = ray.get_actor(name, namespace=NAMESPACE)
                calls.append(call_remote(vault, Vault.drop, cache, member))
    return calls


def wait_dropped(calls: list[ray.ObjectRef[int]]) -> None:
    """Wait for the calls of :func:`drop_everywhere`; a vault that died holds nothing."""
    for call in calls:
        with contextlib.suppress(RayActorError):
            ray.get(call)


def _vault_names() -> list[str]:
    actors = ray.util.list_named_actors(all_namespaces=True)
    return [
        actor["name"]
        for actor in actors
        if actor["namespace"] == NAMESPACE and actor["name"].startswith(VAULT_PREFIX)
    ]
