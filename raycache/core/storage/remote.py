"""The file operations of the durable tier on a remote filesystem, through pyarrow.

Object storage (S3, GCS, Azure) makes an object visible only once its upload completes,
so a file is written in place in one upload; a read downloads it once, into memory.
Other remote filesystems (HDFS) write a temporary name and move it, as locally.

pyarrow cannot abort an upload (apache/arrow#40502): an upload to S3 that fails midway
may leave the parts of an unfinished multipart upload, which S3 keeps, and bills, until
a lifecycle rule (``AbortIncompleteMultipartUpload``) removes them. Set one on the
bucket. A small file (under pyarrow's part size) is sent in one request, and leaves none.
"""

from __future__ import annotations

import contextlib
import posixpath
from collections.abc import Iterable
from typing import Any

import pyarrow.fs as pafs

from raycache.core.storage.files import ENTRY_NAME, Contents, Files, Listed, Listing, Written
from raycache.core.storage.location import Storage
from raycache.core.storage.temporary import TEMPORARY_NAME, stale, temporary_name

_OBJECT_STORES = frozenset({"s3", "gcs", "abfs"})


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
            buffer = memoryview(stream.read_buffer())
            return Contents(buffer, None, buffer.nbytes)

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
        for info in self._filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            modified = info.mtime_ns or 0
            if ENTRY_NAME.fullmatch(info.base_name):
                path = info.path[len(prefix) :]
                found.append(Listed(path, info.size, modified / 1e9, modified, info.size))
            elif TEMPORARY_NAME.fullmatch(info.base_name):
                if stale(modified / 1e9):
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
