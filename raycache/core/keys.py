"""Cache keys: which Python values may be keys, and their stable digest.

A key is a ``str``, ``bytes``, ``int``, ``float``, ``bool``, ``None``, or a tuple of
these, nested at most :data:`MAX_DEPTH` deep. Its digest is a 16-byte xxh3-128 hash of a canonical,
type-tagged encoding (for a plain str or bytes key, of its raw bytes under a seed
that stands for the type). The digest is the same in every process and on every machine,
unlike Python's salted ``hash()``. It tells ``1``, ``1.0`` and ``True`` apart, because a
cache must never return a value stored under a different key.

>>> key_digest("user:42") == key_digest("user:42")
True
>>> key_digest(1) == key_digest(True)
False
>>> key_digest([1, 2])
Traceback (most recent call last):
...
TypeError: cache keys must be str, bytes, int, float, bool, None or tuples of these; got list
"""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import xxhash

from raycache.core import encoding

Key: TypeAlias = "str | bytes | int | float | bool | tuple[Key, ...] | None"
"""The type of a cache key."""

DIGEST_SIZE = 16
"""Length in bytes of a key digest."""

MAX_DEPTH = 32
"""How deep tuples may nest in a key; a deeper key raises ``TypeError``.

Without a limit a deep key would raise ``RecursionError`` somewhere in the cache.
"""

_xxh3_128 = xxhash.xxh3_128_digest
_STR_SEED = 1
_BYTES_SEED = 2


def key_digest(key: object) -> bytes:
    """Return the 16-byte stable digest of ``key``.

    Raises :class:`TypeError` if ``key`` is not a supported key type.
    """
    # str and bytes keys, the common case, hash their raw bytes under a seed of their
    # own, which keeps the two types apart without building an encoding.
    kind = type(key)
    if kind is str:
        return _xxh3_128(encoding.utf8(key), _STR_SEED)  # type: ignore[arg-type]
    if kind is bytes:
        return _xxh3_128(key, _BYTES_SEED)  # type: ignore[arg-type]
    return _xxh3_128(encode_key(key))


def key_point(digest: bytes) -> int:
    """Return the position on the hash ring of the key with this digest.

    The digest is already a uniform hash, so its first eight bytes serve as is.

    >>> 0 <= key_point(key_digest("user:42")) < 2**64
    True
    """
    return int.from_bytes(digest[:8], "big")


def key_points(digests: bytes) -> npt.NDArray[np.uint64]:
    """Return :func:`key_point` of every digest in a concatenation of digests, at once.

    >>> digests = [key_digest(k) for k in ("a", "b")]
    >>> key_points(b"".join(digests)).tolist() == [key_point(d) for d in digests]
    True
    """
    words = np.frombuffer(digests, dtype=">u8")[:: DIGEST_SIZE // 8]
    return words.astype(np.uint64)


def validate_key(key: object) -> None:
    """Raise :class:`TypeError` unless ``key`` is a supported cache key."""
    encode_key(key)


def encode_key(key: object) -> bytes:
    """Return the canonical, type-tagged byte encoding of ``key``.

    >>> encode_key(None)
    b'N'
    >>> encode_key(("a",)) == encode_key(("a",)) != encode_key("a")
    True
    """
    parts: list[bytes] = []
    _encode_into(key, parts, 0)
    return b"".join(parts)


def _encode_into(key: object, parts: list[bytes], depth: int) -> None:
    kind = type(key)
    encode = encoding.SCALARS.get(kind)
    if encode is not None:
        parts.append(encode(key))
    elif kind is str:
        parts.append(encoding.encode_text(key))  # type: ignore[arg-type]
    elif kind is bytes:
        parts.append(encoding.sized(encoding.BYTES, key))  # type: ignore[arg-type]
    elif kind is tuple:
        if depth >= MAX_DEPTH:
            raise TypeError(f"cache keys may nest tuples at most {MAX_DEPTH} deep")
        parts.append(encoding.header(encoding.TUPLE, len(key)))  # type: ignore[arg-type]
        for item in key:  # type: ignore[attr-defined]
            _encode_into(item, parts, depth + 1)
    else:
        raise TypeError(
            "cache keys must be str, bytes, int, float, bool, None or tuples of these; "
            f"got {type(key).__name__}"
        )
