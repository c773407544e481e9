"""Hashing of pyarrow tables, record batches, arrays, scalars, schemas and types.

What is hashed is the logical content: an Arrow slice hashes its own values only, and
chunk boundaries, dictionary and run-end encodings and view buffers do not show.
Fixed-width and string values stream from their buffers without a copy.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import xxhash

from raycache.core import encoding
from raycache.core.hashing.hasher import Hasher


def hash_arrow(h: Hasher, value: object) -> bool:
    """Hash ``value`` if it is a pyarrow object; say if it was."""
    # A value can only be an Arrow object once pyarrow is imported. A plain lookup
    # suffices: hashing runs in callers, which never import it on a second thread as
    # shards do, and it is cheaper than libraries.imported on this path.
    pa: Any = sys.modules.get("pyarrow")
    if pa is None:
        return False
    if isinstance(value, (pa.Table, pa.RecordBatch)):
        h.write(b"aT" if isinstance(value, pa.Table) else b"aB")
        h.write(encoding.length(value.num_rows))
        _hash_schema(h, value.schema)
        for column in value.columns:
            chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
            hash_arrow_values(h, column.type, chunks)
    elif isinstance(value, pa.ChunkedArray):
        h.write(b"aC")
        hash_arrow_values(h, value.type, value.chunks)
    elif isinstance(value, pa.Array):
        h.write(b"aA")
        hash_arrow_values(h, value.type, [value])
    elif isinstance(value, pa.Scalar):
        h.write(b"aS")
        hash_arrow_values(h, value.type, [pa.repeat(value, 1)])
    elif isinstance(value, pa.Schema):
        _hash_schema(h, value)
    elif isinstance(value, pa.DataType):
        h.text(b"aY", str(value))
    else:
        return False
    return True


def _hash_schema(h: Hasher, schema: Any) -> None:
    # Names, types and nullability; not metadata, which differs with how a table was made.
    h.write(encoding.header(b"aF", len(schema)))
    for field in schema:
        h.text(encoding.STR, field.name)
        h.text(encoding.STR, str(field.type))
        h.write(encoding.encode_bool(field.nullable))


def hash_arrow_values(h: Hasher, dtype: Any, chunks: Sequence[Any]) -> None:
    """Hash the logical values of ``chunks`` of type ``dtype`` as one array.

    The encoding depends only on the values: not on chunk boundaries, slice offsets, or
    whatever else the underlying buffers hold.
    """
    h.text(b"aY", str(dtype))
    h.write(encoding.length(sum(len(chunk) for chunk in chunks)))
    dtype, chunks = _decoded(dtype, chunks)
    import pyarrow as pa

    types_ = pa.types
    if types_.is_null(dtype):
        return
    if types_.is_string(dtype) or types_.is_binary(dtype):
        string_streams(h, chunks, np.int32)
    elif types_.is_large_string(dtype) or types_.is_large_binary(dtype):
        string_streams(h, chunks, np.int64)
    elif types_.is_boolean(dtype):
        _fixed_streams(h, chunks, 0)
    elif _byte_width(dtype):
        _fixed_streams(h, chunks, _byte_width(dtype))
    else:
        _ipc(h, dtype, chunks)


def _decoded(dtype: Any, chunks: Sequence[Any]) -> tuple[Any, Sequence[Any]]:
    """Return the type and chunks that hold the same values without an encoding."""
    import pyarrow as pa

    types_ = pa.types
    if types_.is_dictionary(dtype):
        # Decoded: a slice keeps its parent's whole dictionary, and chunks may differ.
        dtype = dtype.value_type
        chunks = [chunk.dictionary_decode() for chunk in chunks]
    if types_.is_run_end_encoded(dtype):
        # Decoded: the same values split into chunks would end their runs elsewhere.
        import pyarrow.compute as pc

        dtype = dtype.value_type
        chunks = [pc.run_end_decode(chunk) for chunk in chunks]
    if isinstance(dtype, pa.ExtensionType):
        dtype = dtype.storage_type
        chunks = [chunk.storage for chunk in chunks]
    if types_.is_string_view(dtype) or types_.is_binary_view(dtype):
        # View arrays point into shared buffers; as large arrays they hold their own values.
        dtype = pa.large_string() if types_.is_string_view(dtype) else pa.large_binary()
        chunks = [chunk.cast(dtype) for chunk in chunks]
    return dtype, chunks


def _byte_width(dtype: Any) -> int:
    try:
        bits: int = dtype.bit_width
    except ValueError:  # nested and variable-width types
        return 0
    return bits // 8 if bits % 8 == 0 else 0


def _fixed_streams(h: Hasher, chunks: Sequence[Any], width: int) -> None:
    """Hash fixed-width values (booleans if ``width`` is 0) and their null positions."""
    nulls, data = xxhash.xxh3_128(), xxhash.xxh3_128()
    start = 0
    for chunk in chunks:
        n, offset, buffers = len(chunk), chunk.offset, chunk.buffers()
        if chunk.null_count:
            nulls.update(_null_positions(buffers[0], offset, n, start))
        if n and width:
            raw = np.frombuffer(buffers[1], dtype=np.uint8)
            data.update(raw[offset * width : (offset + n) * width].data)
        elif n:
            data.update(_bits(buffers[1], offset, n).data)
        start += n
    h.write(nulls.digest() + data.digest())


def string_streams(h: Hasher, chunks: Sequence[Any], offset_type: type) -> None:
    """Hash strings or binaries: null positions, end offsets from 0, and the bytes."""
    nulls, ends, data = xxhash.xxh3_128(), xxhash.xxh3_128(), xxhash.xxh3_128()
    start = total = 0
    for chunk in chunks:
        n, offset, buffers = len(chunk), chunk.offset, chunk.buffers()
        if chunk.null_count:
            nulls.update(_null_positions(buffers[0], offset, n, start))
        if n:
            offsets: npt.NDArray[Any] = np.frombuffer(buffers[1], dtype=offset_type)[
                offset : offset + n + 1
            ]
            first, last = int(offsets[0]), int(offsets[-1])
            if offset_type is np.int64 and first == 0 and total == 0:
                ends.update(offsets[1:].view(np.uint8).data)  # the common case: as is
            else:
                rebased = offsets[1:].astype(np.int64) + (total - first)
                ends.update(rebased.view(np.uint8).data)
            if last > first:
                data.update(np.frombuffer(buffers[2], dtype=np.uint8)[first:last].data)
            total += last - first
        start += n
    h.write(nulls.digest() + ends.digest() + data.digest())


def _bits(buffer: Any, offset: int, n: int) -> npt.NDArray[np.uint8]:
    """Return bits ``offset`` to ``offset + n`` of an Arrow bitmap, one byte each."""
    raw = np.frombuffer(buffer, dtype=np.uint8)[offset // 8 : (offset + n + 7) // 8]
    return np.unpackbits(raw, bitorder="little")[offset % 8 : offset % 8 + n]


def _null_positions(bitmap: Any, offset: int, n: int, start: int) -> memoryview:
    # Positions in the whole array, so where chunks begin does not show.
    positions = np.flatnonzero(_bits(bitmap, offset, n) == 0).astype(np.int64) + start
    return positions.view(np.uint8).data


def _ipc(h: Hasher, dtype: Any, chunks: Sequence[Any]) -> None:
    """Hash nested and other types by their Arrow IPC stream, after a normalising copy."""
    import pyarrow as pa

    if not chunks:
        return
    # Concatenating gives one array with buffers of its own, laid out alike however it
    # was built: no slice offset, no parent's values, no chunk boundaries. Nested values
    # are rare in arguments; the copy is fine.
    batch = pa.record_batch([pa.concat_arrays(chunks)], names=["v"])
    sink = pa.BufferOutputStream()
    # A whole stream, not the bare batch: dictionaries inside nested values travel in
    # their own messages.
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    h.write(memoryview(sink.getvalue()))
