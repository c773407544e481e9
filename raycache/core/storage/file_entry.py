"""A large entry served from its local file: the address of one version of the file.

A value read from Ray's object store is a view of shared memory. A value read from a
local storage can be a view of the page cache just as well, with no copy into the object
store at all: the reader maps the file and decodes its buffers in place. So on a storage
hit, a shard hands out a :class:`FileEntry` instead of the value, and each reader opens
it where it runs.

A :class:`FileEntry` names one *version* of a file, by the identity the shard saw when
it verified the file's checksum (inode, size, modification time). A reader whose file has
that identity reads the bytes the shard verified, without hashing them again; a file
replaced or removed since, or a reader on a node without the directory, raises, and the
reader falls back to the copy promoted into the object store.

>>> import tempfile
>>> from raycache.core.storage.packing import entry_path, pack
>>> from raycache.core.storage.files import LocalFiles
>>> root, digest = tempfile.mkdtemp(), bytes(16)
>>> packed = pack(digest, list(range(3)), expires_at=None, tags=(), size=None, cost=0.0)
>>> identity = LocalFiles(root).write(entry_path("demo", digest), packed.chunks).identity
>>> FileEntry(root, entry_path("demo", digest), digest, identity).open()
[0, 1, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

from raycache.core.storage.files import Contents, LocalFiles
from raycache.core.storage.format import FormatError
from raycache.core.storage.packing import check, unpack, value_of
from raycache.core.storage.signing import Signer


@dataclass(frozen=True)
class FileEntry:
    """One verified version of an entry's file in a local storage.

    ``root`` is the storage's directory, ``path`` the file's path within it, and
    ``identity`` the ``(inode, size, modified ns)`` of the version whose checksum held.
    """

    root: str
    path: str
    digest: bytes
    identity: tuple[int, ...]

    def open(self) -> object:
        """Return the value, its buffers mapped from the file, not copied.

        Raises ``OSError`` if the file cannot be read here, and :class:`FormatError` if
        it is no longer the version that was verified.
        """
        return self.decode(self.map())

    def map(self) -> Contents:
        """Map the file, checking that it is still the version that was verified.

        The mapping outlives the file's removal or replacement: a reader holding it
        decodes the verified bytes whatever happens to the path meanwhile.
        """
        contents = LocalFiles(self.root).read(self.path)
        if contents.identity != self.identity:
            raise FormatError("the file was replaced or changed since it was verified")
        return contents

    def decode(
        self, contents: Contents, *, verify: bool = False, signer: Signer | None = None
    ) -> object:
        """Return the value of this entry's mapped file, as :meth:`map` returned it.

        With ``verify``, check the file first as the shard did (its MAC with ``signer``,
        else its checksum and structure): for a mapping held a while, since a file
        changed in place shows through every mapping of it.
        """
        opened = unpack(contents.buffer, self.digest)
        if verify:
            check(contents.buffer, opened, signer)
        return value_of(opened, arrow=False)
