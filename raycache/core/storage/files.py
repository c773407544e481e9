"""The file operations of the durable tier, and those of a local directory.

Paths are relative to the storage's root and use ``/``. Every method may raise
``OSError`` (pyarrow's errors are ``OSError`` too): the tier counts those, never the user.
:class:`Files` is the interface; :class:`LocalFiles` is a local (or mounted) directory,
and :class:`~raycache.core.storage.remote.RemoteFiles` a remote filesystem.

A local directory writes each file under a unique temporary name in the same directory
and renames it into place (``os.replace``), so a reader sees a whole file or none; reads
map the file, so values are views of the page cache.

The folder of a cache is a trust boundary. Nothing here writes, lists or removes a file
outside it, and it touches only the names the tier makes: entries (``<hex>.rc``, see
:func:`~raycache.core.storage.packing.entry_path`) and temporary files
(``.<hex>.rc.<host>.<pid>.<random>.tmp``). A symlink is never followed: a cache folder
that is one is refused, and entries that are one are neither read nor listed. A
temporary file names its writer, so a listing removes those of writers that died (see
:mod:`~raycache.core.storage.temporary`).

Sizes are what the disk holds: the blocks a file takes (``du``), not its length.
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, NamedTuple

from raycache.core.storage.format import SUFFIX
from raycache.core.storage.location import Storage
from raycache.core.storage.temporary import TEMPORARY_NAME, reclaim, temporary_name

ENTRY_NAME = re.compile(r"[0-9a-f]{32}" + re.escape(SUFFIX))
"""The name of an entry's file: its key digest in hex."""

_LEGACY_FOLDER = re.compile(r"[0-9a-f]{2}")  # format version 1 fanned files out by prefix
BLOCK = 512
"""The unit of ``st_blocks``, whatever the filesystem's block size."""


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
    """A whole file as a buffer, and what identifies this version of it (None if unknown).

    ``allocated`` is the bytes the disk gives it, which the budget counts.
    """

    buffer: memoryview
    identity: tuple[int, ...] | None
    allocated: int


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
        folder = os.lstat(os.path.dirname(final)).st_blocks * BLOCK
        return Written(_identity(status), status.st_blocks * BLOCK, folder)

    def read(self, path: str) -> Contents:
        """Map the file read-only; its identity is its inode, size and modification time."""
        descriptor = os.open(self._full(path), os.O_RDONLY | os.O_NOFOLLOW)
        try:
            status = os.fstat(descriptor)
            if not stat.S_ISREG(status.st_mode):
                raise FileNotFoundError(f"{path} is not a regular file")
            if status.st_size == 0:
                return Contents(memoryview(b""), _identity(status), status.st_blocks * BLOCK)
            mapping = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(descriptor)
        return Contents(memoryview(mapping), _identity(status), status.st_blocks * BLOCK)

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
        overhead = os.lstat(full).st_blocks * BLOCK
        with os.scandir(full) as children:
            for child in children:
                try:
                    status = child.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed meanwhile
                if not stat.S_ISREG(status.st_mode):
                    continue
                allocated = status.st_blocks * BLOCK
                if ENTRY_NAME.fullmatch(child.name):
                    path = f"{relative}/{child.name}"
                    used, modified = status.st_atime, status.st_mtime_ns
                    found.append(Listed(path, status.st_size, used, modified, allocated))
                elif TEMPORARY_NAME.fullmatch(child.name):
                    overhead += 0 if reclaim(child.path, child.name, status.st_mtime) else allocated
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
