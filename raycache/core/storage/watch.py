"""When a shard whose storage failed says so, and when it tries the storage again.

A tier reports itself unhealthy after failures in a row. The shard then serves from
memory only: it warns once per outage, not per request, and tries the storage again at
most every ``probe_s`` seconds, so that a storage that is down costs it nothing per
request. The decisions are here, pure, with the clock injected; the shard acts on them.

>>> now = [0.0]
>>> watch = StorageWatch(probe_s=30.0, clock=lambda: now[0])
>>> watch.check(healthy=False)
Verdict(usable=False, warn=True, probe=False)
>>> now[0] = 31.0
>>> watch.check(healthy=False)
Verdict(usable=False, warn=False, probe=True)
>>> watch.check(healthy=True), watch.check(healthy=False).warn
(Verdict(usable=True, warn=False, probe=False), True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

__all__ = ["StorageWatch", "Verdict"]


class Verdict(NamedTuple):
    """Whether to use the storage now, and whether to warn of it or probe it first."""

    usable: bool
    warn: bool = False
    probe: bool = False


class StorageWatch:
    """Decides, for one shard's storage, the warnings and the probes of an outage."""

    def __init__(self, probe_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._probe_s = probe_s
        self._clock = clock
        self._warned = False
        self._probed = clock()

    def check(self, *, healthy: bool) -> Verdict:
        """Return what to do, given whether the tier reports itself healthy now."""
        if healthy:
            self._warned = False  # a later outage is warned about again
            return Verdict(usable=True)
        warn = not self._warned
        self._warned = True
        probe = self._clock() - self._probed > self._probe_s
        if probe:
            self._probed = self._clock()
        return Verdict(usable=False, warn=warn, probe=probe)
