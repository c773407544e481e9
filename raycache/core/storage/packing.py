"""An entry's file: where it lives, the bytes written for a value, and the checks on reading.

A file is named by its key digest, ``<cache name>/<hex>.rc``, so that no index is needed
to find it. :func:`pack` lays a value out as a header and aligned payload chunks (see
:mod:`~raycache.core.storage.format`), signed if a :class:`Signer` is given;
:func:`unpack` reads a whole file's header, :func:`check` checks its checksum or its
MAC, and :func:`value_of` decodes its payload as views of the file's buffer.

>>> digest = bytes(range(16))
>>> path = entry_path("users", digest)
>>> path
'users/000102030405060708090a0b0c0d0e0f.rc'
>>> digest_of(path) == digest
True
>>> packed = pack(digest, [1, 2], expires_at=None, tags=("eu",), size=None, cost=0.0)
>>> file = memoryview(b"".join(map(bytes, packed.chunks)))
>>> opened = unpack(file, digest)
>>> check(file, opened, None)
>>> opened.header.tags, value_of(opened, arrow=False)
(('eu',), [1, 2])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

import xxhash

from raycache.core.keys import DIGEST_SIZE
from raycache.core.sizing import size_of
from raycache.core.storage.codecs import decode, encode, validate
from raycache.core.storage.files import Files
from raycache.core.storage.format import (
    ALIGNMENT,
    HEADER_SIZE,
    SUFFIX,
    Encoding,
    FormatError,
    Header,
    Parsed,
    layout,
    meta_length,
    pack_header,
    signed_parts,
    unpack_header,
)
from raycache.core.storage.signing import Signer

_PADDING = bytes(ALIGNMENT)
_HEAD_GUESS = 4096  # the header and the meta of almost every file, in one request
_ENTRY_NAME = re.compile(f"([0-9a-f]{{{2 * DIGEST_SIZE}}})" + re.escape(SUFFIX))


@dataclass(frozen=True)
class StoredValue:
    """A value read from storage, and what its file says about it.

    ``buffer`` is the whole file, mapped (local) or downloaded (remote); the value's
    Arrow and numpy buffers are views of it.
    """

    value: Any
    encoding: Encoding
    expires_at: float | None
    tags: tuple[str, ...]
    size: int
    cost: float
    buffer: memoryview


class Rejected(FormatError):
    """A file that this reader's storage key did not sign: it is never decoded."""


class Opened(NamedTuple):
    """A whole file's header as read, and its payload (a view of the file)."""

    header: Header
    payload: memoryview
    parsed: Parsed


class Packed(NamedTuple):
    """The chunks of an entry's file, in order, and their total length in bytes."""

    chunks: list[Any]
    nbytes: int


def entry_path(name: str, digest: bytes) -> str:
    """Return the path of the file of ``digest`` in cache ``name``, relative to the root."""
    return f"{name}/{digest.hex()}{SUFFIX}"


def digest_of(path: str) -> bytes | None:
    """Return the digest a file's path names, or None unless its name is one the tier makes.

    >>> digest_of("users/../.bashrc") is None, digest_of("users/ABCD.rc") is None
    (True, True)
    """
    named = _ENTRY_NAME.fullmatch(path.rsplit("/", 1)[-1])
    return None if named is None else bytes.fromhex(named.group(1))


def check_digest(digest: object) -> None:
    """Raise unless ``digest`` is a key digest: ``TypeError`` if not bytes, else ``ValueError``."""
    if not isinstance(digest, bytes):
        raise TypeError(f"digest must be bytes, got {type(digest).__name__}")
    if len(digest) != DIGEST_SIZE:
        raise ValueError(f"digest must be {DIGEST_SIZE} bytes, got {len(digest)}")


def pack(
    digest: bytes,
    value: object,
    *,
    expires_at: float | None,
    tags: tuple[str, ...],
    size: int | None,
    cost: float,
    signer: Signer | None = None,
) -> Packed:
    """Return the file of ``value``; its large buffers are chunks as they are, not copies.

    With ``signer``, the file carries its MAC. Raises whatever encoding the value raises
    (a value that cannot be pickled).
    """
    encoding, segments = encode(value)
    lengths = [memoryview(segment).nbytes for segment in segments]
    header = Header(
        digest=digest,
        encoding=encoding,
        expires_at=expires_at,
        tags=tags,
        size=size_of(value) if size is None else size,
        cost=cost,
        segments=layout(lengths),
    )
    chunks: list[Any] = []
    checksum = xxhash.xxh3_64()
    for index, (segment, length) in enumerate(zip(segments, lengths, strict=True)):
        padding = _PADDING[: -length % ALIGNMENT] if index < len(segments) - 1 else b""
        for chunk in (segment, padding):
            chunks.append(chunk)
            checksum.update(chunk)
    sign = None if signer is None else (lambda head: signer.mac(head, chunks))
    head = pack_header(header, payload_checksum=checksum.intdigest(), sign=sign)
    return Packed([head, *chunks], len(head) + sum(memoryview(c).nbytes for c in chunks))


def unpack(file: memoryview, digest: bytes) -> Opened:
    """Return the header and payload of the whole file ``file``, unchecked.

    Raises :class:`FormatError` for a file that is damaged, foreign, of another format
    version, of another key, or not exactly as long as its header says.
    """
    parsed = unpack_header(file)
    if parsed.header.digest != digest:
        raise FormatError("the file holds another key")
    end = parsed.payload_offset + parsed.payload_length
    if end != file.nbytes:
        raise FormatError("the file is truncated, or longer than its header says")
    return Opened(parsed.header, file[parsed.payload_offset : end], parsed)


def read_header(files: Files, path: str) -> Header:
    """Return the header of the file at ``path``, reading only its head.

    Raises :class:`FormatError` (:class:`UnknownVersion` for another format version),
    ``OSError`` from the storage, or anything a crafted head makes the check raise.
    """
    head = files.head(path, _HEAD_GUESS)
    wanted = HEADER_SIZE + meta_length(head)
    if wanted > len(head):
        head = files.head(path, wanted)
    return unpack_header(head).header


def check(file: memoryview, opened: Opened, signer: Signer | None) -> None:
    """Check a file before it is decoded: once per version of the file is enough.

    With ``signer``, its MAC: raises :class:`Rejected` for a file that ``signer``'s key
    did not sign, whatever its checksums say. Without, its checksum (raises
    :class:`FormatError`) and then the payload's own structure, which a crafted file
    with a recomputed checksum could make impossible (raises whatever the codec does).
    """
    parsed = opened.parsed
    if signer is not None:
        signed = signed_parts(file, parsed)
        if not (parsed.signed and signer.verify(signed, [opened.payload], parsed.mac)):
            raise Rejected("the file is not signed with this cache's storage key")
        return
    if xxhash.xxh3_64_intdigest(opened.payload) != parsed.payload_checksum:
        raise FormatError("the payload checksum does not match")
    validate(opened.header.encoding, _segments(opened))


def value_of(opened: Opened, *, arrow: bool) -> object:
    """Return the value of a checked file's payload, as views of it where possible.

    Raises whatever decoding raises: a pickle whose class is gone, say.
    """
    return decode(opened.header.encoding, _segments(opened), arrow=arrow)


def _segments(opened: Opened) -> list[memoryview]:
    return [opened.payload[start : start + size] for start, size in opened.header.segments]
