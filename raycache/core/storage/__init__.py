"""The durable tier's storage: entries as files that outlive the cluster, without Ray.

- :mod:`~raycache.core.storage.location`: the ``storage=`` setting, parsed into a
  :class:`Storage` (a local directory, a URL, or a filesystem object);
- :mod:`~raycache.core.storage.trust` and :mod:`~raycache.core.storage.signing`: the
  storage key, the keyed MAC of every file, and the files' permissions;
- :mod:`~raycache.core.storage.format`: the file format, a small header and an aligned
  payload;
- :mod:`~raycache.core.storage.codecs`: values as payload segments (Arrow IPC, ``.npy``,
  pickle 5), read back as views of the file;
- :mod:`~raycache.core.storage.files`: the file operations, and those of a local
  directory; :mod:`~raycache.core.storage.remote`, those of a remote filesystem;
  :mod:`~raycache.core.storage.temporary`, the temporary files of writes under way;
- :mod:`~raycache.core.storage.tier`: :class:`StorageTier`, one cache's files in a budget,
  over :mod:`~raycache.core.storage.ledger` (the files it knows, in eviction order),
  :mod:`~raycache.core.storage.pending` (removals the storage refused) and
  :mod:`~raycache.core.storage.counters` (its counters and health);
- :mod:`~raycache.core.storage.file_entry`: a large local entry that readers map themselves.
"""

from raycache.core.storage.counters import StorageStats
from raycache.core.storage.location import ENV_VAR, Storage, parse_storage, storage_from_env
from raycache.core.storage.packing import StoredValue
from raycache.core.storage.tier import StorageTier

__all__ = [
    "ENV_VAR",
    "Storage",
    "StorageStats",
    "StorageTier",
    "StoredValue",
    "parse_storage",
    "storage_from_env",
]
