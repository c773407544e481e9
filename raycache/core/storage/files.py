"""The file operations of the durable tier, on a local directory or a remote filesystem.

Paths are relative to the storage's root and use ``/``. Every method may raise
``OSError`` (pyarrow's errors are ``OSError`` too): the tier counts those, never the user.

- A local directory writes each file under a unique temporary name in the same directory
  and renames it into place (``os.replace``), so a reader sees a whole file or none; reads
  map the file, so values are views of the page cache.
- Object storage (S3, GCS, Azure) makes an object visible only once its upload completes,
  so a file is written in place in one upload; a read downloads it once, into memory.
  Other remote filesystems (HDFS) write a temporary name and move it, as locally.

The folder of a cache is a trust boundary. Nothing here writes, lists or removes a file
outside it, and it touches only the names the tier makes: entries (``<hex>.rc``, see
:func:`~raycache.core.storage.entry.entry_path`) and temporary files
(``.<hex>.rc.<host>.<pid>.<random>.tmp``). A symlink is never followed: a cache folder
that is one is refused, and entries that are one are neither read nor listed. A
temporary file names its writer, so a listing removes those of writers that died, on
this host at once, and on another host after :data:`STALE_TEMPORARY_SECONDS`.

Sizes are what the disk holds: the blocks a file takes (``du``), not its length.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import posixpath
import re
import secrets
import shutil
import socket
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from functools import cache
from typing import Any, NamedTuple

import pyarrow.fs as pafs
import xxhash

from raycache.core.storage.format import SUFFIX
from raycache.core.storage.location import Storage

STALE_TEMPORARY_SECONDS = 3600.0
"""A temporary file of another host this old belongs to a writer that died."""

_OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})
_ENTRY = re.compile(r"[0-9a-f]{32}" + re.escape(SUFFIX))
_TEMPORARY = re.compile(
    r"\.[0-9a-f]{32}" + re.escape(SUFFIX) + r"\.([0-9a-f]{8})\.(\d+)\.[0-9a-f]{12}\.tmp"
)
_LEGACY_FOLDER = re.compile(r"[0-9a-f]{2}")  # format version 1 fanned files out by prefix
_BLOCK = 512  # the unit of st_blocks


class Listed(NamedTuple):
    """An entry file found by :meth:`Files.listing`.

    ``used`` is its last use in epoch seconds; ``modified`` its modification time in
    nanoseconds, which with the size tells one version of the file from another;
    ``allocated`` the bytes the disk gives it.
    """

    path: str
    size: int
    used: float
    modified: int
    allocated: int


class Listing(NamedTuple):
    """What a folder holds: entry files, and the bytes of everything else the tier counts.

    ``overhead`` is the bytes of the folders themselves and of temporary files of
    writers still at work: the disk holds them too, so the budget counts them.
    """

    entries: list[Listed]
    overhead: int


class Written(NamedTuple):
    """A file just written: its identity (None if unknown), and the bytes the disk gives it.

    ``folder`` is the bytes of the folder it is in, which grows with its entries.
    """

    identity: tuple[int, ...] | None
    allocated: int
    folder: int


class Contents(NamedTuple):
    """A whole file as a buffer, and what identifies this version of it (None if unknown)."""

    buffer: memoryview
    identity: tuple[int, ...] | None


class Files(ABC):
    """Whole-file operations under one root."""

    @abstractmethod
    def write(self, path: str, chunks: Iterable[Any]) -> Written:
        """Write the concatenation of ``chunks`` atomically."""

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
    def sync_folder(self, folder: str) -> None:
        """Make the removals done in ``folder`` survive a crash of the machine."""

    @abstractmethod
    def listing(self, folder: str) -> Listing:
        """Return the entry files of ``folder``, removing temporary files of dead writers."""

    @abstractmethod
    def touch(self, path: str, identity: tuple[int, ...] | None) -> None:
        """Record a use of the file, if this filesystem keeps access times."""

    @abstractmethod
    def volume_bytes(self) -> int | None:
        """Return the size of the volume the files live on, if it has one."""


def files_for(storage: Storage) -> Files:
    """Return the file operations of ``storage``."""
    root = storage.local_root
    return LocalFiles(root, storage) if root is not None else RemoteFiles(storage)


def temporary_name(final: str) -> str:
    """Return a fresh temporary name beside ``final`` that names this writer.

    >>> name = temporary_name("users/" + "0" * 32 + ".rc")
    >>> name.startswith("users/." + "0" * 32 + ".rc.") and name.endswith(".tmp")
    True
    """
    folder, name = posixpath.split(final)
    fresh = f".{name}.{host_id()}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    return posixpath.join(folder, fresh)


@cache
def host_id() -> str:
    """Return 8 hex digits that name this host and its boot: where a writer's pid means it."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as file:
            boot = file.read()
    except OSError:
        boot = b""
    return xxhash.xxh32_hexdigest(socket.gethostname().encode() + boot)


class LocalFiles(Files):
    """Files in a local (or mounted, shared) directory."""

    def __init__(self, root: str, storage: Storage | None = None) -> None:
        self._root = root
        self._storage = storage or Storage(url=root)

    def write(self, path: str, chunks: Iterable[Any]) -> Written:
        """Write to a unique temporary name beside ``path``, then rename it into place."""
        final = self._full(path)
        self._make_folder(os.path.dirname(final))
        temporary = self._full(temporary_name(path))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        descriptor = os.open(temporary, flags, self._storage.file_mode)
        try:
            with open(descriptor, "wb") as file:
                os.fchmod(descriptor, self._storage.file_mode)  # whatever the umask says
                for chunk in chunks:
                    file.write(chunk)
                file.flush()
                status = os.fstat(file.fileno())
            os.replace(temporary, final)
        except BaseException:
            _remove(temporary)
            raise
        folder = os.lstat(os.path.dirname(final)).st_blocks * _BLOCK
        return Written(_identity(status), status.st_blocks * _BLOCK, folder)

    def read(self, path: str) -> Contents:
        """Map the file read-only; its identity is its inode, size and modification time."""
        descriptor = os.open(self._full(path), os.O_RDONLY | os.O_NOFOLLOW)
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise FileNotFoundError(f"{path} is not a regular file")
            if status.st_size == 0:
                return Contents(memoryview(b""), _identity(status))
            mapping = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(descriptor)
        return Contents(memoryview(mapping), _identity(status))

    def head(self, path: str, length: int) -> bytes:
        """Read the first ``length`` bytes."""
        descriptor = os.open(self._full(path), os.O_RDONLY | os.O_NOFOLLOW)
        with open(descriptor, "rb") as file:
            return file.read(length)

    def delete(self, path: str) -> bool:
        """Remove the file; a file already gone is fine."""
        return _remove(self._full(path))

    def sync_folder(self, folder: str) -> None:
        """Flush the folder itself to disk: an unlinked file could reappear after a crash."""
        descriptor = os.open(self._full(folder), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def listing(self, folder: str) -> Listing:
        """List entry files by last access; remove temporary files of dead writers.

        Format version 1 kept files one folder deeper; those are listed too, so that a
        clear removes them.
        """
        top = self._full(folder)
        if not self._is_folder(top):
            return Listing([], 0)
        found: list[Listed] = []
        overhead = self._scan_folder(top, folder, found)
        with os.scandir(top) as children:
            legacy = [c for c in children if _LEGACY_FOLDER.fullmatch(c.name) and _is_dir(c)]
        for child in legacy:
            overhead += self._scan_folder(child.path, f"{folder}/{child.name}", found)
        return Listing(found, overhead)

    def touch(self, path: str, identity: tuple[int, ...] | None) -> None:
        """Set the access time to now, keeping the modification time that identifies it."""
        if identity is not None:
            os.utime(self._full(path), ns=(time.time_ns(), identity[2]), follow_symlinks=False)

    def volume_bytes(self) -> int:
        """Return the size of the filesystem that holds the root."""
        return shutil.disk_usage(self._root).total

    def _scan_folder(self, full: str, relative: str, found: list[Listed]) -> int:
        """Add the entries of one folder to ``found``; return the bytes of the rest."""
        overhead = os.lstat(full).st_blocks * _BLOCK
        with os.scandir(full) as children:
            for child in children:
                try:
                    status = child.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed meanwhile
                if not stat.S_ISREG(status.st_mode):
                    continue
                allocated = status.st_blocks * _BLOCK
                if _ENTRY.fullmatch(child.name):
                    path = f"{relative}/{child.name}"
                    used, modified = status.st_atime, status.st_mtime_ns
                    found.append(Listed(path, status.st_size, used, modified, allocated))
                elif _TEMPORARY.fullmatch(child.name):
                    overhead += 0 if _reclaim(child.path, child.name, status) else allocated
        return overhead

    def _is_folder(self, full: str) -> bool:
        """Whether the cache's folder exists; raise ``OSError`` if it is not a real folder."""
        try:
            status = os.lstat(full)
        except FileNotFoundError:
            return False
        if not stat.S_ISDIR(status.st_mode):
            raise OSError(f"{full} is not a folder (a symlink?); the cache will not use it")
        return True

    def _make_folder(self, full: str) -> None:
        if self._is_folder(full):
            return
        try:
            os.mkdir(full, self._storage.folder_mode)
        except FileExistsError:
            self._is_folder(full)  # made meanwhile, by another shard: check what it is
            return
        os.chmod(full, self._storage.folder_mode)

    def _full(self, path: str) -> str:
        return os.path.join(self._root, *path.split("/"))


class RemoteFiles(Files):
    """Files on a pyarrow filesystem: object storage, HDFS, or one the user gave."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._connected: tuple[pafs.FileSystem, str] | None = None

    def write(self, path: str, chunks: Iterable[Any]) -> Written:
        """Upload in one go to object storage; elsewhere, write a temporary name and move it."""
        final = self._full(path)
        chunks = list(chunks)
        size = sum(memoryview(chunk).nbytes for chunk in chunks)
        # An fsspec filesystem's type name is "py::fsspec+" and its protocols, such as s3.
        if any(store in self._filesystem.type_name for store in _OBJECT_STORES):
            self._upload(final, chunks)
            return Written(None, size, 0)
        self._filesystem.create_dir(posixpath.dirname(final), recursive=True)
        temporary = self._full(temporary_name(path))
        try:
            self._upload(temporary, chunks)
            self._filesystem.move(temporary, final)
        except BaseException:
            self._forget(temporary)
            raise
        return Written(None, size, 0)

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

    def sync_folder(self, folder: str) -> None:
        """Nothing to do: a remote filesystem's deletions are durable when they return."""

    def listing(self, folder: str) -> Listing:
        """List entry files by their modification time: object stores keep no access time.

        Temporary files (of filesystems that move them into place) are removed once
        :data:`STALE_TEMPORARY_SECONDS` old: a remote writer's pid says nothing here.
        """
        selector = pafs.FileSelector(self._full(folder), recursive=True, allow_not_found=True)
        root = self._connect()[1]
        prefix = root.rstrip("/") + "/" if root else ""
        found, overhead = [], 0
        stale = (time.time() - STALE_TEMPORARY_SECONDS) * 1e9
        for info in self._filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            modified = info.mtime_ns or 0
            if _ENTRY.fullmatch(info.base_name):
                path = info.path[len(prefix) :]
                found.append(Listed(path, info.size, modified / 1e9, modified, info.size))
            elif _TEMPORARY.fullmatch(info.base_name):
                if modified < stale:
                    self._forget(info.path)
                else:
                    overhead += info.size
        return Listing(found, overhead)

    def touch(self, path: str, identity: tuple[int, ...] | None) -> None:
        """Nothing to do: the tier's own policy orders uses while it runs."""

    def volume_bytes(self) -> None:
        """Remote storage has no volume size to take a percentage of."""

    def _upload(self, target: str, chunks: list[Any]) -> None:
        with self._filesystem.open_output_stream(target) as stream:
            for chunk in chunks:
                stream.write(chunk)

    def _forget(self, full: str) -> None:
        # Gone already, or the storage is down: a later listing removes it.
        with contextlib.suppress(OSError):
            self._filesystem.delete_file(full)

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


def _reclaim(full: str, name: str, status: os.stat_result) -> bool:
    """Remove a temporary file if its writer is gone; return whether it was removed."""
    named = _TEMPORARY.fullmatch(name)
    assert named is not None
    host, pid = named.group(1), int(named.group(2))
    if host == host_id():
        gone = not _alive(pid)
    else:
        gone = status.st_mtime < time.time() - STALE_TEMPORARY_SECONDS
    return gone and _remove(full)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def _is_dir(entry: os.DirEntry[str]) -> bool:
    return entry.is_dir(follow_symlinks=False)


def _identity(status: os.stat_result) -> tuple[int, ...]:
    return (status.st_ino, status.st_size, status.st_mtime_ns)


def _remove(path: str) -> bool:
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    return True
