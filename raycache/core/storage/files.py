"""The file operations of the durable tier, on a local directory or a remote filesystem.

Paths are relative to the storage's root and use ``/``. Every method may raise
``OSError`` (pyarrow's errors are ``OSError`` too): the tier counts those, never the user.

- A local directory writes each file under a unique temporary name in the same directory
  and renames it into place (``os.replace``), so a reader sees a whole file or none; reads
  map the file, so values are views of the page cache.
- Object storage (S3, GCS, Azure) makes an object visible only once its upload completes,
  so a file is written in place in one upload; a read downloads it once, into memory.
  Other remote filesystems (HDFS) write a temporary name and move it, as locally.
"""

from __future__ import annotations

import mmap
import os
import posixpath
import secrets
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, NamedTuple

import pyarrow.fs as pafs

from raycache.core.storage.format import SUFFIX
from raycache.core.storage.location import Storage

STALE_TEMPORARY_SECONDS = 3600.0
"""A temporary file this old belongs to a writer that died; a listing removes it."""

_OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})


class Listed(NamedTuple):
    """A file found by :meth:`Files.listing`.

    ``used`` is its last use in epoch seconds; ``modified`` its modification time in
    nanoseconds, which with the size tells one version of the file from another.
    """

    path: str
    size: int
    used: float
    modified: int


class Contents(NamedTuple):
    """A whole file as a buffer, and what identifies this version of it (None if unknown)."""

    buffer: memoryview
    identity: tuple[int, ...] | None


class Files(ABC):
    """Whole-file operations under one root."""

    @abstractmethod
    def write(self, path: str, chunks: Iterable[Any]) -> tuple[int, ...] | None:
        """Write the concatenation of ``chunks`` atomically; return the new file's identity."""

    @abstractmethod
    def read(self, path: str) -> Contents:
        """Return the whole file; raise ``FileNotFoundError`` if there is none."""

    @abstractmethod
    def head(self, path: str, length: int) -> bytes:
        """Return up to the first ``length`` bytes of the file."""

    @abstractmethod
    def delete(self, path: str) -> bool:
        """Remove the file; return whether there was one."""

    @abstractmethod
    def listing(self, folder: str) -> list[Listed]:
        """Return every entry file below ``folder``, at any depth."""

    @abstractmethod
    def touch(self, path: str, identity: tuple[int, ...] | None) -> None:
        """Record a use of the file, if this filesystem keeps access times."""

    @abstractmethod
    def volume_bytes(self) -> int | None:
        """Return the size of the volume the files live on, if it has one."""


def files_for(storage: Storage) -> Files:
    """Return the file operations of ``storage``."""
    root = storage.local_root
    return LocalFiles(root) if root is not None else RemoteFiles(storage)


class LocalFiles(Files):
    """Files in a local (or mounted, shared) directory."""

    def __init__(self, root: str) -> None:
        self._root = root

    def write(self, path: str, chunks: Iterable[Any]) -> tuple[int, ...]:
        """Write to a unique temporary name beside ``path``, then rename it into place."""
        final = self._full(path)
        folder, name = os.path.split(final)
        os.makedirs(folder, exist_ok=True)
        temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        try:
            with open(temporary, "wb") as file:
                for chunk in chunks:
                    file.write(chunk)
                file.flush()
                identity = _identity(os.fstat(file.fileno()))
            os.replace(temporary, final)
        except BaseException:
            _remove(temporary)
            raise
        return identity

    def read(self, path: str) -> Contents:
        """Map the file read-only; its identity is its inode, size and modification time."""
        descriptor = os.open(self._full(path), os.O_RDONLY)
        try:
            status = os.fstat(descriptor)
            if status.st_size == 0:
                return Contents(memoryview(b""), _identity(status))
            mapping = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(descriptor)
        return Contents(memoryview(mapping), _identity(status))

    def head(self, path: str, length: int) -> bytes:
        """Read the first ``length`` bytes."""
        with open(self._full(path), "rb") as file:
            return file.read(length)

    def delete(self, path: str) -> bool:
        """Remove the file; a file already gone is fine."""
        return _remove(self._full(path))

    def listing(self, folder: str) -> list[Listed]:
        """List entry files by last access; remove temporary files of dead writers."""
        found = []
        stale = time.time() - STALE_TEMPORARY_SECONDS
        for directory, _, names in os.walk(self._full(folder), onerror=_unless_missing):
            for name in names:
                full = os.path.join(directory, name)
                try:
                    status = os.stat(full)
                except FileNotFoundError:
                    continue  # removed meanwhile
                if name.endswith(SUFFIX) and not name.startswith("."):
                    relative = os.path.relpath(full, self._root).replace(os.sep, "/")
                    found.append(
                        Listed(relative, status.st_size, status.st_atime, status.st_mtime_ns)
                    )
                elif name.startswith(".") and status.st_mtime < stale:
                    _remove(full)
        return found

    def touch(self, path: str, identity: tuple[int, ...] | None) -> None:
        """Set the access time to now, keeping the modification time that identifies it."""
        if identity is not None:
            os.utime(self._full(path), ns=(time.time_ns(), identity[2]))

    def volume_bytes(self) -> int:
        """Return the size of the filesystem that holds the root."""
        return shutil.disk_usage(self._root).total

    def _full(self, path: str) -> str:
        return os.path.join(self._root, *path.split("/"))


class RemoteFiles(Files):
    """Files on a pyarrow filesystem: object storage, HDFS, or one the user gave."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._connected: tuple[pafs.FileSystem, str] | None = None

    def write(self, path: str, chunks: Iterable[Any]) -> None:
        """Upload in one go to object storage; elsewhere, write a temporary name and move it."""
        final = self._full(path)
        # An fsspec filesystem's type name is "py::fsspec+" and its protocols, such as s3.
        if any(store in self._filesystem.type_name for store in _OBJECT_STORES):
            self._upload(final, chunks)
            return
        self._filesystem.create_dir(posixpath.dirname(final), recursive=True)
        folder, name = posixpath.split(final)
        temporary = posixpath.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
        self._upload(temporary, chunks)
        self._filesystem.move(temporary, final)

    def read(self, path: str) -> Contents:
        """Download the whole file into one buffer, with one request."""
        with self._filesystem.open_input_stream(self._full(path)) as stream:
            return Contents(memoryview(stream.read_buffer()), None)

    def head(self, path: str, length: int) -> bytes:
        """Read the first ``length`` bytes with one ranged request."""
        with self._filesystem.open_input_file(self._full(path)) as file:
            head: bytes = file.read_at(min(length, file.size()), 0)
            return head

    def delete(self, path: str) -> bool:
        """Delete the file; a file already gone is fine."""
        try:
            self._filesystem.delete_file(self._full(path))
        except FileNotFoundError:
            return False
        return True

    def listing(self, folder: str) -> list[Listed]:
        """List entry files by their modification time: object stores keep no access time."""
        selector = pafs.FileSelector(self._full(folder), recursive=True, allow_not_found=True)
        root = self._connect()[1]
        prefix = root.rstrip("/") + "/" if root else ""
        found = []
        for info in self._filesystem.get_file_info(selector):
            if info.type == pafs.FileType.File and info.base_name.endswith(SUFFIX):
                modified = info.mtime_ns or 0
                found.append(Listed(info.path[len(prefix) :], info.size, modified / 1e9, modified))
        return found

    def touch(self, path: str, identity: tuple[int, ...] | None) -> None:
        """Nothing to do: the tier's own policy orders uses while it runs."""

    def volume_bytes(self) -> None:
        """Remote storage has no volume size to take a percentage of."""

    def _upload(self, target: str, chunks: Iterable[Any]) -> None:
        with self._filesystem.open_output_stream(target) as stream:
            for chunk in chunks:
                stream.write(chunk)

    @property
    def _filesystem(self) -> pafs.FileSystem:
        return self._connect()[0]

    def _connect(self) -> tuple[pafs.FileSystem, str]:
        # Connected on first use, so that an unreachable storage is counted like any
        # failure rather than raised as the tier is created.
        if self._connected is None:
            self._connected = self._storage.remote()
        return self._connected

    def _full(self, path: str) -> str:
        root = self._connect()[1]
        return posixpath.join(root, path) if root else path


def _identity(status: os.stat_result) -> tuple[int, ...]:
    return (status.st_ino, status.st_size, status.st_mtime_ns)


def _remove(path: str) -> bool:
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    return True


def _unless_missing(error: OSError) -> None:
    """Raise a listing's error, but for a folder that does not exist (yet): that is empty.

    Without this, a folder that cannot be read would list as empty, and every file in
    it would look removed.
    """
    if not isinstance(error, FileNotFoundError):
        raise error
