"""First in, first out: the entry written longest ago goes first; reads change nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from raycache.core.policies.base import LinkedPolicy

if TYPE_CHECKING:
    from raycache.core.entry import Entry

__all__ = ["FIFOPolicy"]


class FIFOPolicy(LinkedPolicy):
    """First in, first out: evicts the entry written longest ago; reads do not matter."""

    name = "fifo"

    def touch(self, entry: Entry) -> None:
        """Do nothing: a read does not change the eviction order."""
