"""A value as payload segments, and back again without copying its buffers.

- A ``pyarrow.Table`` is an Arrow IPC file; read back, its buffers point into the file.
- A ``pandas.DataFrame`` whose every column and index round-trips through Arrow exactly is
  an Arrow IPC file with pandas metadata, read back with ``split_blocks=True`` so that its
  numeric columns stay views of the file. Other frames (object or python-string columns,
  an index with a ``freq``) are pickled, which is exact and maps their numpy blocks.
- A numpy array of a fixed-size dtype is an ``.npy`` header segment and a data segment.
- Anything else is pickle protocol 5, each large buffer out of band in a segment of its own.

>>> import numpy as np
>>> encoded = encode(np.arange(3))
>>> encoded.encoding.name, [memoryview(s).nbytes for s in encoded.segments][1]
('NUMPY', 24)
>>> decode(encoded.encoding, [memoryview(s) for s in encoded.segments])
array([0, 1, 2])
>>> decode(*encode({"a": 1}))
{'a': 1}
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import cloudpickle
import numpy as np

from raycache.core.libraries import imported
from raycache.core.storage.format import Encoding

MIN_OUT_OF_BAND = 1024
"""Buffers smaller than this stay inside the pickle stream: a segment costs its padding."""


class Encoded(NamedTuple):
    """A value's encoding and its payload segments (objects with the buffer protocol)."""

    encoding: Encoding
    segments: list[Any]


def encode(value: object) -> Encoded:
    """Return the encoding and payload segments of ``value``.

    Numpy arrays and pickle-5 buffers are not copied; an Arrow table (or a DataFrame
    converted to one) is copied once, into its IPC file.
    """
    pyarrow: Any = imported("pyarrow")
    if pyarrow is not None and type(value) is pyarrow.Table:
        return Encoded(Encoding.ARROW, [_ipc_file(value)])
    pandas: Any = imported("pandas")
    if pandas is not None and type(value) is pandas.DataFrame and _arrow_exact(value):
        table = _arrow_table(value)
        if table is not None:
            return Encoded(Encoding.PANDAS, [_ipc_file(table)])
    if type(value) is np.ndarray and not value.dtype.hasobject and value.dtype.itemsize:
        return Encoded(Encoding.NUMPY, _npy_segments(value))
    return Encoded(Encoding.PICKLE, _pickle_segments(value))


def validate(encoding: Encoding, segments: Sequence[Any]) -> None:
    """Raise unless an Arrow payload's every offset and length is within its buffers.

    Arrow trusts them when it reads a file, so a crafted file whose checksums hold
    would make the reading process read out of bounds and crash. Other payloads need
    no such check: numpy checks an array's size against its buffer, and pickle raises.

    Arrow's full validation also checks that strings are UTF-8, which costs most of its
    time (26 ms of 31 for a 200 MB frame) and guards no memory: a string column has its
    offsets checked here instead, with numpy, and bad UTF-8 raises when it is decoded.
    """
    if encoding in (Encoding.ARROW, Encoding.PANDAS):
        for column in _read_table(segments[0]).columns:
            for chunk in column.chunks:
                _validate_array(chunk)


def _validate_array(array: Any) -> None:
    import pyarrow

    kind = array.type
    if not (pyarrow.types.is_string(kind) or pyarrow.types.is_large_string(kind)):
        array.validate(full=True)
        return
    array.validate(full=False)  # the buffers are as long as the length says
    width = np.int64 if pyarrow.types.is_large_string(kind) else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=width)
    offsets = offsets[array.offset : array.offset + len(array) + 1]
    data = array.buffers()[2]
    ends = int(offsets[-1]) if len(offsets) else 0
    if len(offsets) and (offsets[0] < 0 or ends > (data.size if data is not None else 0)):
        raise ValueError("a string column's offsets point outside its data")
    if not np.all(offsets[1:] >= offsets[:-1]):
        raise ValueError("a string column's offsets go backwards")


def decode(encoding: Encoding, segments: Sequence[Any], *, arrow: bool = False) -> object:
    """Return the value of a payload from its segments, as views of them where possible.

    With ``arrow``, a DataFrame stored as Arrow comes back as its ``pyarrow.Table``,
    which costs nothing; converting to pandas maps numeric columns but builds the others.
    """
    if encoding in (Encoding.ARROW, Encoding.PANDAS):
        table = _read_table(segments[0])
        if encoding is Encoding.ARROW or arrow:
            return table
        return table.to_pandas(split_blocks=True)
    if encoding is Encoding.NUMPY:
        return _npy_array(segments[0], segments[1])
    return pickle.loads(segments[0], buffers=segments[1:])


def _read_table(file: Any) -> Any:
    import pyarrow

    return pyarrow.ipc.open_file(pyarrow.py_buffer(file)).read_all()


def _ipc_file(table: Any) -> Any:
    """Return ``table`` as one Arrow IPC file buffer: one copy of its data.

    The size is measured first (a pass that copies nothing), so that the copy goes
    straight into a buffer of its final size rather than one that grows by doubling.
    """
    import pyarrow

    measure = pyarrow.MockOutputStream()
    _write_ipc(measure, table)
    buffer = pyarrow.allocate_buffer(measure.size())
    _write_ipc(pyarrow.FixedSizeBufferWriter(buffer), table)
    return buffer


def _write_ipc(sink: Any, table: Any) -> None:
    import pyarrow

    with pyarrow.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _arrow_exact(frame: Any) -> bool:
    # Arrow turns object columns into typed ones, python strings into Arrow strings and
    # drops an index's freq: such frames would come back different, so they are pickled.
    import pandas

    index = frame.index
    levels = index.levels if isinstance(index, pandas.MultiIndex) else [index]
    if any(getattr(level, "freq", None) is not None for level in levels):
        return False
    dtypes = [*frame.dtypes, *(level.dtype for level in levels)]
    return not any(
        _is_object(dtype) or (isinstance(dtype, pandas.StringDtype) and dtype.storage == "python")
        for dtype in dtypes
    )


def _is_object(dtype: Any) -> bool:
    return isinstance(dtype, np.dtype) and dtype.kind == "O"


def _arrow_table(frame: Any) -> Any:
    import pyarrow

    try:
        return pyarrow.Table.from_pandas(frame)
    except (pyarrow.ArrowException, TypeError, ValueError):
        return None  # a dtype Arrow cannot hold, such as complex, or duplicate names


def _npy_segments(array: np.ndarray[Any, Any]) -> list[Any]:
    if not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array)
    header = io.BytesIO()
    np.lib.format.write_array_header_2_0(header, np.lib.format.header_data_from_array_1_0(array))
    in_memory_order = array.T if not array.flags.c_contiguous else array
    return [header.getvalue(), in_memory_order.reshape(-1).view(np.uint8)]


def _npy_array(header: Any, data: Any) -> np.ndarray[Any, Any]:
    stream = io.BytesIO(bytes(header))
    if np.lib.format.read_magic(stream) != (2, 0):
        raise ValueError("the .npy header is not of version 2.0, which encode writes")
    shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(stream)
    array = np.frombuffer(data, dtype=dtype, count=int(np.prod(shape, dtype=np.int64)))
    shaped: np.ndarray[Any, Any] = (
        array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)
    )
    return shaped


@dataclass
class _OutOfBand:
    buffers: list[memoryview]

    def __call__(self, buffer: pickle.PickleBuffer) -> bool:
        # Returning True keeps a buffer in band: small ones, and non-contiguous ones,
        # which have no flat view to write.
        try:
            raw = buffer.raw()
        except BufferError:
            return True
        if raw.nbytes < MIN_OUT_OF_BAND:
            return True
        self.buffers.append(raw)
        return False


def _pickle_segments(value: object) -> list[Any]:
    out_of_band = _OutOfBand([])
    stream = cloudpickle.dumps(value, protocol=5, buffer_callback=out_of_band)
    return [stream, *out_of_band.buffers]
