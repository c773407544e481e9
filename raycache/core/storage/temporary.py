"""Temporary files of the durable tier: named for their writer, so that a dead one's can go.

A write goes to a temporary name first, then is renamed (or moved) into place. A writer
killed in between leaves its temporary file behind, and the disk holds it. Its name,
``.<hex>.rc.<host>.<pid>.<random>.tmp``, says which process wrote it on which host (and
boot of it), so a listing on the same host removes it as soon as that process is gone,
whatever its age; one of another host, whose processes cannot be seen from here, goes
once :data:`STALE_TEMPORARY_SECONDS` old.

>>> name = temporary_name("users/" + "0" * 32 + ".rc")
>>> TEMPORARY_NAME.fullmatch(name.rsplit("/", 1)[1]) is not None
True
"""

from __future__ import annotations

import os
import posixpath
import re
import secrets
import socket
import time
from functools import cache

import xxhash

from raycache.core.storage.format import SUFFIX

STALE_TEMPORARY_SECONDS = 3600.0
"""A temporary file of another host this old belongs to a writer that died."""

TEMPORARY_NAME = re.compile(
    r"\.[0-9a-f]{32}" + re.escape(SUFFIX) + r"\.([0-9a-f]{8})\.(\d+)\.[0-9a-f]{12}\.tmp"
)
"""The name of a temporary file: its entry's name, its writer's host and pid, a random part."""


def temporary_name(final: str) -> str:
    """Return a fresh temporary name beside ``final`` that names this writer."""
    folder, name = posixpath.split(final)
    fresh = f".{name}.{host_id()}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    return posixpath.join(folder, fresh)


@cache
def host_id() -> str:
    """Return 8 hex digits that name this host and its boot: where a writer's pid means it."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as file:
            boot = file.read()
    except OSError:
        boot = b""
    return xxhash.xxh32_hexdigest(socket.gethostname().encode() + boot)


def reclaim(full: str, name: str, modified: float) -> bool:
    """Remove a local temporary file if its writer is gone; return whether it was removed.

    ``modified`` is its modification time, in epoch seconds.
    """
    named = TEMPORARY_NAME.fullmatch(name)
    if named is None:
        return False
    host, pid = named.group(1), int(named.group(2))
    gone = not _alive(pid) if host == host_id() else stale(modified)
    if not gone:
        return False
    try:
        os.remove(full)
    except FileNotFoundError:
        return False
    return True


def stale(modified: float) -> bool:
    """Whether a temporary file modified at ``modified`` is too old to have a writer."""
    return modified < time.time() - STALE_TEMPORARY_SECONDS


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
