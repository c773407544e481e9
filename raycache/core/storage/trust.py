"""What a cache trusts its storage with: the storage key, the files' permissions, the warning.

A storage is a trust boundary (see :mod:`~raycache.core.storage.signing`). With a storage
key, files the key did not sign are never decoded. Without one, whoever can write the
storage can run code in the cluster; a cache whose storage others can write (a remote
storage, or a local folder writable by its group or by anyone) says so once, with a
warning, when it is created.

>>> import tempfile
>>> from raycache.core.storage.location import parse_storage
>>> storage = entrust(parse_storage(tempfile.mkdtemp()), key="0123456789abcdef", shared=False)
>>> len(storage.key), storage.shared
(32, False)
>>> entrust(None, key="0123456789abcdef", shared=False)
Traceback (most recent call last):
...
ValueError: storage_key needs storage: give storage= or set RAYCACHE_STORAGE
"""

from __future__ import annotations

import dataclasses
import os
import stat
import warnings
from collections.abc import Mapping

from raycache.core.storage.location import Storage
from raycache.core.storage.signing import derive_key, key_from_env

_WARNED: set[str] = set()  # the storages warned about, once per process each


class UntrustedStorageWarning(UserWarning):
    """Whoever can write a cache's storage can run code in the cluster: it has no key."""


def entrust(
    storage: Storage | None,
    *,
    key: object,
    shared: object,
    environ: Mapping[str, str] = os.environ,
) -> Storage | None:
    """Return ``storage`` with its signing key and permissions; warn if others can write it.

    ``key`` None means ``RAYCACHE_STORAGE_KEY``. Raises ``ValueError`` for a key without
    a storage, and ``TypeError`` or ``ValueError`` for a key that is not one.
    """
    if not isinstance(shared, bool):
        raise TypeError(f"storage_shared must be a bool, got {type(shared).__name__}")
    derived = key_from_env(environ) if key is None else derive_key(key)
    if storage is None:
        if key is not None:
            raise ValueError("storage_key needs storage: give storage= or set RAYCACHE_STORAGE")
        return None
    entrusted = dataclasses.replace(storage, key=derived, shared=shared)
    if derived is None:
        _warn_if_writable_by_others(entrusted)
    return entrusted


def writable_by_others(storage: Storage) -> bool:
    """Whether anyone but this user may write ``storage``, as far as can be told here."""
    root = storage.local_root
    if root is None:
        return True  # a bucket's policy is not ours to see: assume others may write it
    if storage.shared:
        return True
    mode = os.stat(root).st_mode
    return bool(mode & (stat.S_IWGRP | stat.S_IWOTH))


def _warn_if_writable_by_others(storage: Storage) -> None:
    if storage.url in _WARNED or not writable_by_others(storage):
        return
    _WARNED.add(storage.url)
    warnings.warn(
        f"storage {storage.url} has no storage_key, and others may write it: whoever can "
        "write it can run code in this cluster, since cached values are unpickled from it. "
        "Set storage_key= (or RAYCACHE_STORAGE_KEY) to sign and check every file.",
        UntrustedStorageWarning,
        stacklevel=5,
    )
