"""An entry's file: where it lives, the bytes written for a value, and the checks on reading.

A file is named by its key digest, ``<cache name>/<hex[:2]>/<hex>.rc``, so that no index
is needed to find it. :func:`pack` lays a value out as a header and aligned payload
chunks (see :mod:`~raycache.core.storage.format`); :func:`unpack` checks a whole file
and :func:`value_of` decodes its payload as views of the file's buffer.

>>> digest = bytes(range(16))
>>> path = entry_path("users", digest)
>>> path
'users/00/000102030405060708090a0b0c0d0e0f.rc'
>>> digest_of(path) == digest
True
>>> packed = pack(digest, [1, 2], expires_at=None, tags=("eu",), size=None, cost=0.0)
>>> header, payload, checksum = unpack(memoryview(b"".join(map(bytes, packed.chunks))), digest)
>>> header.tags, value_of(header, payload, checksum, verify=True, arrow=False)
(('eu',), [1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import xxhash

from raycache.core.keys import DIGEST_SIZE
from raycache.core.sizing import size_of
from raycache.core.storage.codecs import decode, encode
from raycache.core.storage.format import (
    ALIGNMENT,
    SUFFIX,
    Encoding,
    FormatError,
    Header,
    layout,
    pack_header,
    unpack_header,
)

_PADDING = bytes(ALIGNMENT)


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


class Packed(NamedTuple):
    """The chunks of an entry's file, in order, and their total length in bytes."""

    chunks: list[Any]
    nbytes: int


def entry_path(name: str, digest: bytes) -> str:
    """Return the path of the file of ``digest`` in cache ``name``, relative to the root."""
    text = digest.hex()
    return f"{name}/{text[:2]}/{text}{SUFFIX}"


def digest_of(path: str) -> bytes | None:
    """Return the digest a file's path names, or None if it names none."""
    stem = path.rsplit("/", 1)[-1][: -len(SUFFIX)]
    try:
        digest = bytes.fromhex(stem)
    except ValueError:
        return None
    return digest if len(digest) == DIGEST_SIZE else None


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
) -> Packed:
    """Return the file of ``value``; its large buffers are chunks as they are, not copies.

    Raises whatever encoding the value raises (a value that cannot be pickled).
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
    head = pack_header(header, payload_checksum=checksum.intdigest())
    return Packed([head, *chunks], len(head) + sum(memoryview(c).nbytes for c in chunks))


def unpack(buffer: memoryview, digest: bytes) -> tuple[Header, memoryview, int]:
    """Return the header, payload and payload checksum of the whole file ``buffer``.

    Raises :class:`FormatError` for a file that is damaged, foreign, of another format
    version, of another key, or not exactly as long as its header says.
    """
    header, offset, length, checksum = unpack_header(buffer)
    if header.digest != digest:
        raise FormatError("the file holds another key")
    if offset + length != buffer.nbytes:
        raise FormatError("the file is truncated, or longer than its header says")
    return header, buffer[offset : offset + length], checksum


def value_of(
    header: Header, payload: memoryview, checksum: int, *, verify: bool, arrow: bool
) -> object:
    """Return the value of a payload, checking its checksum first if ``verify``.

    Raises :class:`FormatError` for a checksum that does not match, and whatever decoding
    raises (a pickle whose class is gone).
    """
    if verify:
        check_payload(payload, checksum)
    segments = [payload[start : start + size] for start, size in header.segments]
    return decode(header.encoding, segments, arrow=arrow)


def check_payload(payload: memoryview, checksum: int) -> None:
    """Raise :class:`FormatError` unless ``payload`` hashes to ``checksum``."""
    if xxhash.xxh3_64_intdigest(payload) != checksum:
        raise FormatError("the payload checksum does not match")
