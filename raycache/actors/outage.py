"""What a call to a shard raises when the shard did not answer it."""

from __future__ import annotations

from ray.exceptions import ActorDiedError, ActorUnschedulableError, RayActorError

SHARD_GONE = (ActorDiedError, ActorUnschedulableError)
"""Errors meaning a shard is dead for good: its node is gone, or a resize removed it."""

SHARD_DOWN = (RayActorError, ActorUnschedulableError)
"""Errors meaning a shard did not answer: gone, or restarting under the same handle."""
