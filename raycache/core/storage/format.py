r"""The file format of the durable tier: one file per entry, a small header, aligned payload.

A file is laid out as::

    offset 0    fixed header: FIXED_FIELDS below, packed little-endian (HEADER_SIZE bytes)
    HEADER_SIZE meta: UTF-8 JSON of meta_length bytes -- the tags, and where each segment
                of the payload starts and ends
    ...         zero padding up to payload_offset, a multiple of ALIGNMENT
    payload     the segments of the encoded value, each starting ALIGNMENT-aligned,
                payload_length bytes in all, hashed (xxh3-64) into payload_checksum

The fixed header, its length prefix of the meta and the header checksum let a reader
decide from the first few hundred bytes whether a file is whole, ours and of a version it
knows, and learn the entry's expiry and tags without reading the payload. A file whose
length is not exactly ``payload_offset + payload_length`` is truncated or foreign.

>>> header = Header(digest=bytes(16), encoding=Encoding.PICKLE, expires_at=None,
...                 tags=("eu",), size=3, cost=0.5, segments=((0, 3),))
>>> packed = pack_header(header, payload_checksum=7)
>>> len(packed) % ALIGNMENT
0
>>> unpack_header(packed) == (header, len(packed), 3, 7)
True
>>> unpack_header(b"PK\x03\x04" + bytes(100))
Traceback (most recent call last):
...
raycache.core.storage.format.FormatError: not a raycache storage file
"""

from __future__ import annotations

import enum
import json
import math
import struct
from dataclasses import dataclass
from typing import Any

import xxhash

MAGIC = b"\x89RCACHE\n"
"""The first eight bytes of every file; the high bit and newline catch text-mode copies."""

VERSION = 1
"""The format version this module writes and reads; a file of any other is a miss."""

ALIGNMENT = 64
"""Every payload segment starts at a multiple of this, so mapped views are aligned."""

SUFFIX = ".rc"
"""The file name suffix of an entry."""

FIXED_FIELDS = (
    ("magic", "8s"),
    ("version", "H"),
    ("encoding", "B"),
    ("flags", "B"),  # bit 0: the entry expires
    ("meta_length", "I"),
    ("payload_offset", "Q"),
    ("payload_length", "Q"),
    ("payload_checksum", "Q"),
    ("expires_at", "d"),  # wall-clock seconds since the epoch
    ("size", "Q"),  # the value's size in memory, as raycache.core.sizing measures it
    ("cost", "d"),  # seconds it took to compute
    ("digest", "16s"),  # the key digest, which also names the file
    ("header_checksum", "Q"),  # xxh3-64 of every byte before it and of the meta
)
"""The named fields of the fixed header, in order, with their struct codes."""

_FIXED = struct.Struct("<" + "".join(code for _, code in FIXED_FIELDS))
HEADER_SIZE = _FIXED.size
"""Length in bytes of the fixed header."""

_EXPIRES = 1
_CHECKSUMMED = HEADER_SIZE - struct.calcsize("<Q")


class Encoding(enum.IntEnum):
    """How a payload encodes its value."""

    ARROW = 1
    """A ``pyarrow.Table`` as an Arrow IPC file."""
    PANDAS = 2
    """A ``pandas.DataFrame`` as an Arrow IPC file with pandas metadata."""
    NUMPY = 3
    """A numpy array: an ``.npy`` header segment, then the raw data segment."""
    PICKLE = 4
    """Pickle protocol 5: the pickle stream, then one segment per out-of-band buffer."""


class FormatError(ValueError):
    """A file is truncated, corrupted, foreign, or of a format version this one cannot read."""


@dataclass(frozen=True)
class Header:
    """What a file says about its entry; ``segments`` are (offset, length) in the payload."""

    digest: bytes
    encoding: Encoding
    expires_at: float | None
    tags: tuple[str, ...]
    size: int
    cost: float
    segments: tuple[tuple[int, int], ...]

    def expired(self, now: float) -> bool:
        """Whether the entry has expired at wall-clock time ``now``."""
        return self.expires_at is not None and self.expires_at <= now


def align(offset: int) -> int:
    """Return ``offset`` rounded up to a multiple of :data:`ALIGNMENT`.

    >>> align(0), align(1), align(64), align(65)
    (0, 64, 64, 128)
    """
    return -(-offset // ALIGNMENT) * ALIGNMENT


def layout(lengths: list[int]) -> tuple[tuple[int, int], ...]:
    """Place segments of these lengths one after another, each aligned.

    >>> layout([3, 100, 0])
    ((0, 3), (64, 100), (192, 0))
    """
    segments = []
    offset = 0
    for length in lengths:
        segments.append((offset, length))
        offset = align(offset + length)
    return tuple(segments)


def payload_length(header: Header) -> int:
    """Return the length of the payload the header describes."""
    return max((offset + length for offset, length in header.segments), default=0)


def pack_header(header: Header, *, payload_checksum: int) -> bytes:
    """Return the header bytes, padded so that the payload that follows is aligned."""
    meta = json.dumps({"tags": header.tags, "segments": header.segments}).encode()
    payload_offset = align(HEADER_SIZE + len(meta))
    fields = _FIXED.pack(
        MAGIC,
        VERSION,
        header.encoding,
        _EXPIRES if header.expires_at is not None else 0,
        len(meta),
        payload_offset,
        payload_length(header),
        payload_checksum,
        header.expires_at if header.expires_at is not None else math.nan,
        header.size,
        header.cost,
        header.digest,
        0,
    )
    checksum = xxhash.xxh3_64_intdigest(fields[:_CHECKSUMMED] + meta)
    fields = fields[:_CHECKSUMMED] + struct.pack("<Q", checksum)
    return fields + meta + bytes(payload_offset - HEADER_SIZE - len(meta))


def meta_length(prefix: bytes | memoryview) -> int:
    """Return how many bytes of meta follow the fixed header that ``prefix`` starts with.

    A reader that fetches a file's head by ranges reads ``HEADER_SIZE`` bytes first.
    """
    return int(_unpack_fixed(prefix)[4])


def unpack_header(head: bytes | memoryview) -> tuple[Header, int, int, int]:
    """Return the header, payload offset, payload length and payload checksum of a file.

    ``head`` holds at least the fixed header and the meta; raises :class:`FormatError`.
    """
    fields = _unpack_fixed(head)
    (_, _, encoding, flags, meta_size, offset, length, checksum, expires_at) = fields[:9]
    size, cost, digest, header_checksum = fields[9:]
    if len(head) < HEADER_SIZE + meta_size:
        raise FormatError("the file is truncated in its header")
    meta = bytes(head[HEADER_SIZE : HEADER_SIZE + meta_size])
    if xxhash.xxh3_64_intdigest(bytes(head[:_CHECKSUMMED]) + meta) != header_checksum:
        raise FormatError("the header checksum does not match")
    try:
        decoded = json.loads(meta)
        header = Header(
            digest=digest,
            encoding=Encoding(encoding),
            expires_at=expires_at if flags & _EXPIRES else None,
            tags=tuple(decoded["tags"]),
            size=size,
            cost=cost,
            segments=tuple((int(start), int(end)) for start, end in decoded["segments"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise FormatError(f"the header is malformed: {error}") from None
    if payload_length(header) != length or offset != align(HEADER_SIZE + meta_size):
        raise FormatError("the header's layout is inconsistent")
    return header, offset, length, checksum


def _unpack_fixed(head: bytes | memoryview) -> tuple[Any, ...]:
    if len(head) < len(MAGIC) or bytes(head[: len(MAGIC)]) != MAGIC:
        raise FormatError("not a raycache storage file")
    if len(head) < HEADER_SIZE:
        raise FormatError("the file is truncated in its header")
    fields: tuple[Any, ...] = _FIXED.unpack_from(head)
    if fields[1] != VERSION:
        raise FormatError(f"format version {fields[1]} is not {VERSION}, the one this reads")
    return fields
