"""Signed storage files: a keyed MAC over each file, so that a reader decodes only its own.

A storage folder or bucket is a trust boundary. Values are decoded from its files, and
decoding a pickle runs whatever code the pickle names, so whoever can write the storage
can run code in every process that reads from it. Checksums do not help: anyone can
recompute them. With a storage key, every file carries a MAC, and a reader decodes no
file whose MAC its key does not reproduce.

The MAC is BLAKE3 in its keyed mode, over the header (all but the MAC and the header
checksum that follow it), the meta, its padding and the payload: every byte of the file
that decoding reads. BLAKE3 is a cryptographic hash that hashes several GB/s on one
core, and spreads a large payload over every core, so a signed 200 MB restart hit costs
tens of milliseconds, where HMAC-SHA256 would cost over a hundred (see
``benchmarks/cluster/storage.py``). The key a user gives (any length from
:data:`MIN_KEY_BYTES`) is stretched into BLAKE3's 32-byte key with its key derivation
mode, under a context string of raycache's own, so the same secret used elsewhere gives
an unrelated key.

>>> signer = Signer(derive_key("correct horse battery staple"))
>>> mac = signer.mac([b"header"], [b"payload"])
>>> signer.verify([b"header"], [b"payload"], mac)
True
>>> signer.verify([b"header"], [b"pay1oad"], mac)
False
>>> Signer(derive_key("another key of enough length")).verify([b"header"], [b"payload"], mac)
False
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterable, Mapping
from typing import Any

import blake3

KEY_ENV_VAR = "RAYCACHE_STORAGE_KEY"
"""The environment variable that gives the storage key of a cache created without one."""

MAC_SIZE = 32
"""Length in bytes of a file's MAC."""

MIN_KEY_BYTES = 16
"""The shortest storage key accepted, in bytes (a str key counts its UTF-8 bytes)."""

_CONTEXT = "raycache 2026-12 storage file signing key"


def derive_key(key: object) -> bytes:
    """Return the 32-byte signing key of a user's storage key (bytes or str).

    Raises ``TypeError`` for another type, and ``ValueError`` for a key shorter than
    :data:`MIN_KEY_BYTES`.
    """
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, (bytes, bytearray, memoryview)):
        raise TypeError(f"storage_key must be bytes or str, got {type(key).__name__}")
    material = bytes(key)
    if len(material) < MIN_KEY_BYTES:
        raise ValueError(
            f"storage_key must be at least {MIN_KEY_BYTES} bytes, got {len(material)}; "
            "use a random one, such as secrets.token_hex(32)"
        )
    derived: bytes = blake3.blake3(material, derive_key_context=_CONTEXT).digest()
    return derived


def key_from_env(environ: Mapping[str, str] = os.environ) -> bytes | None:
    """Return the signing key ``RAYCACHE_STORAGE_KEY`` gives, or None if it is unset.

    >>> key_from_env({}) is None
    True
    >>> len(key_from_env({"RAYCACHE_STORAGE_KEY": "0123456789abcdef"}))
    32
    """
    value = environ.get(KEY_ENV_VAR, "")
    return derive_key(value) if value else None


class Signer:
    """Signs and checks files with one derived key (see :func:`derive_key`)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != MAC_SIZE:
            raise ValueError(f"a derived signing key is {MAC_SIZE} bytes, got {len(key)}")
        self._key = key

    def mac(self, head: Iterable[Any], payload: Iterable[Any]) -> bytes:
        """Return the MAC of the buffers of ``head``, then those of ``payload``, in order."""
        # AUTO spreads a large buffer over every core; blake3 hashes small ones on one.
        hasher = blake3.blake3(key=self._key, max_threads=blake3.blake3.AUTO)
        for part in (*head, *payload):
            hasher.update(part)
        digest: bytes = hasher.digest()
        return digest

    def verify(self, head: Iterable[Any], payload: Iterable[Any], mac: bytes) -> bool:
        """Return whether ``mac`` is the MAC of these buffers, in constant time."""
        return hmac.compare_digest(self.mac(head, payload), mac)
