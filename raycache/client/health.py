"""Which shards answer in time: the client's bound on how long a read may wait.

A read waits at most ``timeout`` seconds for its shard. A shard that does not answer in
time (it is down, restarting, or swamped), or that a call found restarting, is
*avoided*: reads, and computations started, that would go to it are misses at once,
with no wait, until a probe (a ``ping``) comes back from it (see
:class:`~raycache.client.routing.Bound`). So one stalled shard costs each client one
bounded wait, not one per call.

>>> health = ShardHealth(timeout=0.25)
>>> health.available("shard-0")
True
"""

from __future__ import annotations

import os
import threading

from ray.actor import ActorHandle

from raycache.actors.handles import call_remote
from raycache.actors.shard import Shard

DEFAULT_TIMEOUT_S = 0.25
"""How long a read waits for a shard unless told otherwise (``RAYCACHE_TIMEOUT`` too)."""

TIMEOUT_VARIABLE = "RAYCACHE_TIMEOUT"
"""The environment variable that sets the default read timeout, in seconds."""


def default_timeout() -> float:
    """Return the read timeout from ``RAYCACHE_TIMEOUT``, or :data:`DEFAULT_TIMEOUT_S`."""
    text = os.environ.get(TIMEOUT_VARIABLE)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"{TIMEOUT_VARIABLE} must be a number of seconds, got {text!r}") from None
    if not seconds > 0:
        raise ValueError(f"{TIMEOUT_VARIABLE} must be > 0, got {text!r}")
    return seconds


class ShardHealth:
    """The shards one client avoids, because they did not answer within ``timeout``."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._avoided: set[str] = set()
        self._lock = threading.Lock()

    def available(self, member: str) -> bool:
        """Return whether calls to ``member`` should be made."""
        return member not in self._avoided

    def avoid(self, member: str, shard: ActorHandle[Shard]) -> None:
        """Avoid ``member`` (late, or restarting) until it answers a ping."""
        with self._lock:
            if member in self._avoided:
                return
            self._avoided.add(member)
        probe = call_remote(shard, Shard.ping)
        # Any answer, even an error from a shard gone for good, ends the avoidance: a
        # gone shard then fails fast, and the ring's refresh routes around it.
        probe.future().add_done_callback(lambda _: self._avoided.discard(member))
