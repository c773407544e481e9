"""A clock that tests move by hand, injected where the code would read the time."""

from __future__ import annotations


class Clock:
    """Seconds that move only when a test sets :attr:`now`."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
