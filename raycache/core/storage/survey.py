"""What a listing says of a tier's files: what the tier knows of each one it can read.

A scan lists the cache's folder, then reads the head of every file it does not know in
this version (size and modification time) to learn its expiry and tags. Each file falls
in one of four cases: one this tier knows or learns; one it leaves alone (of an older
layout or a newer format version, removed meanwhile, or another shard's); one it could
not read now (it tries again at the next scan); and one damaged or crafted, whatever
reading it raises, which the tier removes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from raycache.core.storage.files import Files, Listed, Listing
from raycache.core.storage.format import UnknownVersion
from raycache.core.storage.ledger import Known
from raycache.core.storage.packing import digest_of, entry_path, read_header
from raycache.core.storage.pending import Owns


class Survey(NamedTuple):
    """The files a tier knows after a listing, by digest, least recently used first.

    ``corrupt`` are the digests of damaged or crafted files; ``unread`` says whether some
    file's head could not be read now.
    """

    found: dict[bytes, Known]
    corrupt: list[bytes]
    unread: bool


def survey(
    files: Files,
    name: str,
    listing: Listing,
    known: Callable[[bytes], Known | None],
    owns: Owns | None,
) -> Survey:
    """Return what ``listing`` of cache ``name`` says; ``known`` gives what was known."""
    found: dict[bytes, Known] = {}
    corrupt: list[bytes] = []
    unread = False
    for entry in sorted(listing.entries, key=lambda entry: entry.used):
        digest = digest_of(entry.path)
        if digest is None or entry.path != entry_path(name, digest):
            continue  # an older format's file: left alone, but for a clear
        if owns is not None and not owns(digest):
            continue
        try:
            found[digest] = _learn(files, entry, known(digest))
        except (UnknownVersion, FileNotFoundError):
            continue  # a newer raycache's, neither counted nor evicted here; or removed
        except OSError:
            unread = True  # unreadable now: the next scan tries again
        except Exception:  # damaged or crafted, whatever it raises: gone
            corrupt.append(digest)
    return Survey(found, corrupt, unread)


def _learn(files: Files, entry: Listed, known: Known | None) -> Known:
    version = (entry.size, entry.modified)
    if known is not None and known.version == version:
        known.bytes = entry.allocated
        return known
    header = read_header(files, entry.path)
    return Known(entry.allocated, header.expires_at, header.tags, version)
