r"""The file format of the durable tier: one file per entry, a small header, aligned payload.

A file is laid out as::

    offset 0    fixed header: FIXED_FIELDS below, packed little-endian (HEADER_SIZE bytes)
    HEADER_SIZE meta: UTF-8 JSON of meta_length bytes -- the tags, and where each segment
                of the payload starts and ends
    ...         zero padding up to payload_offset, a multiple of ALIGNMENT
    payload     the segments of the encoded value, each starting ALIGNMENT-aligned,
                payload_length bytes in all, hashed (xxh3-64) into payload_checksum

A signed file (flag bit 1) also carries a keyed MAC of every byte but the MAC and the
header checksum (see :mod:`~raycache.core.storage.signing`); an unsigned one has zeros.

The fixed header, its length prefix of the meta and the header checksum let a reader
decide from the first few hundred bytes whether a file is whole, ours and of a version it
knows, and learn the entry's expiry and tags without reading the payload. A file whose
length is not exactly ``payload_offset + payload_length`` is truncated or foreign.

Every field is checked before it is used: a header that is damaged, or crafted to be
impossible (a huge or deep meta, a negative or overlapping segment, an expiry of
``1e400``), is a :class:`FormatError`, never another exception. A file of a format
version this module does not know is an :class:`UnknownVersion`: a newer raycache
sharing the storage wrote it, and it is left alone.

>>> header = Header(digest=bytes(16), encoding=Encoding.PICKLE, expires_at=None,
...                 tags=("eu",), size=3, cost=0.5, segments=((0, 3),))
>>> packed = pack_header(header, payload_checksum=7)
>>> len(packed) % ALIGNMENT
0
>>> parsed = unpack_header(packed)
>>> parsed.header == header, parsed.payload_offset == len(packed), parsed.signed
(True, True, False)
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import xxhash

MAGIC = b"\x89RCACHE\n"
"""The first eight bytes of every file; the high bit and newline catch text-mode copies."""

VERSION = 2
"""The format version this module writes and reads; a file of any other is a miss.

Version 1 had no MAC, and kept files in folders named by the first two hex digits.
"""

ALIGNMENT = 64
"""Every payload segment starts at a multiple of this, so mapped views are aligned."""

SUFFIX = ".rc"
"""The file name suffix of an entry."""

MAX_META = 1 << 20
"""The longest meta a reader accepts, in bytes: tags and segments take far less."""

MAX_PAYLOAD = 1 << 62
"""The longest payload a reader accepts, in bytes."""

FIXED_FIELDS = (
    ("magic", "8s"),
    ("version", "H"),
    ("encoding", "B"),
    ("flags", "B"),  # bit 0: the entry expires; bit 1: the file is signed
    ("meta_length", "I"),
    ("payload_offset", "Q"),
    ("payload_length", "Q"),
    ("payload_checksum", "Q"),
    ("expires_at", "d"),  # wall-clock seconds since the epoch
    ("size", "Q"),  # the value's size in memory, as raycache.core.sizing measures it
    ("cost", "d"),  # seconds it took to compute
    ("digest", "16s"),  # the key digest, which also names the file
    ("mac", "32s"),  # keyed BLAKE3 of the signed bytes, or zeros (see signed_parts)
    ("header_checksum", "Q"),  # xxh3-64 of every byte before it and of the meta
)
"""The named fields of the fixed header, in order, with their struct codes."""

_FIXED = struct.Struct("<" + "".join(code for _, code in FIXED_FIELDS))
HEADER_SIZE = _FIXED.size
"""Length in bytes of the fixed header."""

_VERSION = struct.Struct("<H")
_EXPIRES = 1
_SIGNED = 2
_KNOWN_FLAGS = _EXPIRES | _SIGNED
_CHECKSUMMED = HEADER_SIZE - struct.calcsize("<Q")
MAC_OFFSET = _CHECKSUMMED - 32
"""Where the MAC starts in the fixed header; the bytes before it are signed."""

Sign = Callable[[list[Any]], bytes]
"""Returns the MAC of a file whose signed head is the given buffers (the payload is known)."""


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
    """A file is truncated, corrupted, foreign, crafted, or of another format version."""


class UnknownVersion(FormatError):
    """A file of a format version this one cannot read: another raycache's to keep."""


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


class Parsed(NamedTuple):
    """A file's header as read: the header, where its payload lies, and its checks."""

    header: Header
    payload_offset: int
    payload_length: int
    payload_checksum: int
    signed: bool
    mac: bytes


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


def pack_header(header: Header, *, payload_checksum: int, sign: Sign | None = None) -> bytes:
    """Return the header bytes, padded so that the payload that follows is aligned.

    With ``sign``, the file is signed: ``sign`` gets the signed bytes of the head.
    """
    meta = json.dumps({"tags": header.tags, "segments": header.segments}).encode()
    payload_offset = align(HEADER_SIZE + len(meta))
    flags = (_EXPIRES if header.expires_at is not None else 0) | (_SIGNED if sign else 0)
    fields = _FIXED.pack(
        MAGIC,
        VERSION,
        header.encoding,
        flags,
        len(meta),
        payload_offset,
        payload_length(header),
        payload_checksum,
        header.expires_at if header.expires_at is not None else math.nan,
        header.size,
        header.cost,
        header.digest,
        bytes(32),
        0,
    )
    tail = meta + bytes(payload_offset - HEADER_SIZE - len(meta))
    mac = sign([fields[:MAC_OFFSET], tail]) if sign is not None else bytes(32)
    signed = fields[:MAC_OFFSET] + mac
    checksum = xxhash.xxh3_64_intdigest(signed + meta)
    return signed + struct.pack("<Q", checksum) + tail


def signed_parts(file: memoryview, parsed: Parsed) -> list[memoryview]:
    """Return the parts of the head of a whole ``file`` that its MAC covers, in order.

    The payload follows them; the MAC and the header checksum are left out.
    """
    return [file[:MAC_OFFSET], file[HEADER_SIZE : parsed.payload_offset]]


def meta_length(prefix: bytes | memoryview) -> int:
    """Return how many bytes of meta follow the fixed header that ``prefix`` starts with.

    A reader that fetches a file's head by ranges reads ``HEADER_SIZE`` bytes first.
    """
    length = int(_unpack_fixed(prefix)[4])
    if length > MAX_META:
        raise FormatError(f"the meta claims {length} bytes, over the limit of {MAX_META}")
    return length


def unpack_header(head: bytes | memoryview) -> Parsed:
    """Return what the head of a file says: its header, payload and checks.

    ``head`` holds at least the fixed header and the meta. Raises :class:`FormatError`,
    and no other exception, for any head that is not one this module would write.
    """
    fields = _unpack_fixed(head)
    (_, _, encoding, flags, meta_size, offset, length, checksum, expires_at) = fields[:9]
    size, cost, digest, mac, header_checksum = fields[9:]
    if meta_size > MAX_META or len(head) < HEADER_SIZE + meta_size:
        raise FormatError("the file is truncated in its header")
    meta = bytes(head[HEADER_SIZE : HEADER_SIZE + meta_size])
    if xxhash.xxh3_64_intdigest(bytes(head[:_CHECKSUMMED]) + meta) != header_checksum:
        raise FormatError("the header checksum does not match")
    if flags & ~_KNOWN_FLAGS or length > MAX_PAYLOAD or not 0 <= cost < math.inf:
        raise FormatError("the header has impossible fields")
    expires = flags & _EXPIRES
    if expires and not math.isfinite(expires_at):
        raise FormatError("the header's expiry is not a time")
    try:
        tags, segments = _meta(meta)
        header = Header(
            digest=digest,
            encoding=Encoding(encoding),
            expires_at=expires_at if expires else None,
            tags=tags,
            size=size,
            cost=cost,
            segments=segments,
        )
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise FormatError(f"the header is malformed: {error}") from None
    if payload_length(header) != length or offset != align(HEADER_SIZE + meta_size):
        raise FormatError("the header's layout is inconsistent")
    return Parsed(header, offset, length, checksum, bool(flags & _SIGNED), mac)


def _meta(meta: bytes) -> tuple[tuple[str, ...], tuple[tuple[int, int], ...]]:
    """Return the tags and segments of a meta, checking each one's type and range."""
    decoded = json.loads(meta)
    tags, segments = decoded["tags"], decoded["segments"]
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise TypeError("tags are not a list of str")
    if not isinstance(segments, list):
        raise TypeError("segments are not a list")
    checked = tuple(_segment(pair) for pair in segments)
    if checked != layout([length for _, length in checked]):
        raise ValueError("the segments are not laid out as a writer lays them out")
    return tuple(tags), checked


def _segment(pair: object) -> tuple[int, int]:
    if not (isinstance(pair, list) and len(pair) == 2):
        raise TypeError("a segment is not an [offset, length] pair")
    start, length = pair
    if not all(type(n) is int and 0 <= n <= MAX_PAYLOAD for n in (start, length)):
        raise ValueError("a segment's offset or length is out of range")
    return start, length


def _unpack_fixed(head: bytes | memoryview) -> tuple[Any, ...]:
    if len(head) < len(MAGIC) or bytes(head[: len(MAGIC)]) != MAGIC:
        raise FormatError("not a raycache storage file")
    if len(head) < len(MAGIC) + _VERSION.size:
        raise FormatError("the file is truncated in its header")
    (version,) = _VERSION.unpack_from(head, len(MAGIC))
    if version != VERSION:
        raise UnknownVersion(f"format version {version} is not {VERSION}, the one this reads")
    if len(head) < HEADER_SIZE:
        raise FormatError("the file is truncated in its header")
    fields: tuple[Any, ...] = _FIXED.unpack_from(head)
    return fields
