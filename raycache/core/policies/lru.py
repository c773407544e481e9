"""Least recently used: the entry read or written longest ago goes first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from raycache.core.policies.base import LinkedPolicy

if TYPE_CHECKING:
    from raycache.core.entry import Entry

__all__ = ["LRUPolicy"]


class LRUPolicy(LinkedPolicy):
    """Least recently used: evicts the entry that was read or written longest ago."""

    name = "lru"

    def touch(self, entry: Entry) -> None:
        """Make ``entry`` the most recently used."""
        self._queue.move_to_end(entry)
