"""Crafted storage files: fields and payloads rewritten, with every checksum made to hold.

An attacker who can write the storage can recompute unkeyed checksums; these helpers do
the same, so that tests reach the checks behind them.
"""

from __future__ import annotations

import struct
from typing import Any

import xxhash

from raycache.core.storage.format import FIXED_FIELDS, HEADER_SIZE, align

_FIXED = struct.Struct("<" + "".join(code for _, code in FIXED_FIELDS))
_NAMES = [name for name, _ in FIXED_FIELDS]


def fields_of(file: bytes) -> dict[str, Any]:
    """Return the fixed header fields of a file by name."""
    return dict(zip(_NAMES, _FIXED.unpack_from(file), strict=True))


def craft(
    file: bytes, *, meta: bytes | None = None, payload: bytes | None = None, **fields: Any
) -> bytes:
    """Return ``file`` with fields, meta or payload replaced, and its checksums recomputed.

    The MAC is left as it was: a crafted file cannot forge it without the key.
    """
    values = fields_of(file)
    old_meta = file[HEADER_SIZE : HEADER_SIZE + values["meta_length"]]
    old_payload = file[values["payload_offset"] :]
    meta = old_meta if meta is None else meta
    payload = old_payload if payload is None else payload
    values.update(
        meta_length=len(meta),
        payload_offset=align(HEADER_SIZE + len(meta)),
        payload_checksum=xxhash.xxh3_64_intdigest(payload),
    )
    values.update(fields)
    packed = _FIXED.pack(*(values[name] for name in _NAMES))
    signed = packed[: HEADER_SIZE - 8]
    checksum = (
        values["header_checksum"]
        if "header_checksum" in fields
        else xxhash.xxh3_64_intdigest(signed + meta)
    )
    head = signed + struct.pack("<Q", checksum) + meta
    # A crafted offset or meta length may not fit what follows: pad only where it can.
    padding = max(0, min(values["payload_offset"], 1 << 20) - len(head))
    return head + bytes(padding) + payload
