"""W-TinyLFU whose window size a hill climber tunes to the workload: the default policy.

Einziger, Eytan, Friedman & Manes, "Adaptive Software Cache Management", Middleware
2018, as Caffeine implements it. A small window suits a workload where frequency
predicts reuse (Zipf); a large one suits one where recency does (bursts, a hot set
that moves). Rather than guess, the policy tries: every sample of requests it moves
the window/main split one step and keeps going in that direction while the hit
ratio improves, turning back when it drops. Steps decay, and restart at full size
when the hit ratio jumps, which signals that the workload changed.
"""

from __future__ import annotations

from typing import Final

from raycache.core.policies.tinylfu import TinyLFUPolicy

__all__ = ["AdaptivePolicy", "HillClimber"]

# Caffeine's constants.
STEP: Final = 0.0625
"""The first and the restarted step, as a share of the cache."""
DECAY: Final = 0.98
"""How much each step shrinks from the one before, while the workload is steady."""
RESTART: Final = 0.05
"""A change of hit ratio at least this large restarts the steps at full size."""
LARGEST_WINDOW: Final = 0.99
"""The window never takes the whole cache: the main region keeps the frequent entries."""
SAMPLE_FLOOR: Final = 2000
"""The fewest requests per sample: fewer make the hit ratio too noisy to climb on."""


class HillClimber:
    """Moves the window share to raise the hit ratio of the last sample.

    >>> climber = HillClimber(share=0.5)
    >>> climber.adjust(hits=10, misses=90)  # first sample: a step down
    0.4375
    >>> climber.adjust(hits=50, misses=50)  # better: keep going
    0.375
    >>> climber.adjust(hits=10, misses=90)  # worse: turn back
    0.4375
    """

    def __init__(self, share: float = 0.01) -> None:
        self.share = share
        """The window's share of the cache now."""
        self._step = -STEP
        self._previous = 0.0

    def adjust(self, hits: int, misses: int) -> float:
        """Take one step after a sample of ``hits`` and ``misses``; return the new share."""
        rate = hits / max(hits + misses, 1)
        change = rate - self._previous
        step = self._step if change >= 0 else -self._step
        self.share = min(max(self.share + step, 0.0), LARGEST_WINDOW)
        if abs(change) >= RESTART:
            self._step = STEP if step >= 0 else -STEP
        else:
            self._step = DECAY * step
        self._previous = rate
        return self.share


class AdaptivePolicy(TinyLFUPolicy):
    """W-TinyLFU whose window share a :class:`HillClimber` adjusts once every sample.

    A sample is ``SAMPLE_PER_ENTRY`` requests (hits and misses) per tracked entry, and
    at least ``SAMPLE_FLOOR``.
    The window does not shrink or grow at once: a smaller window pushes its oldest
    entries on to probation at the next write, and a larger one fills from new
    entries while evictions come from the main region.
    """

    name = "adaptive"
    SAMPLE_PER_ENTRY: Final = 3

    def __init__(self) -> None:
        super().__init__(window_share=0.01)
        self._climber = HillClimber(self._window_share)
        self._sample = SAMPLE_FLOOR

    def _adapt(self) -> None:
        """Step the window share after a sample, and size the next sample."""
        self._window_share = self._climber.adjust(self._hits, self._misses)
        self._hits = self._misses = 0
        self._sample = max(SAMPLE_FLOOR, self.SAMPLE_PER_ENTRY * self._count)
