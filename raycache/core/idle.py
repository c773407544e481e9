"""When background writes may run: when the machine has a core to spare, or they waited enough.

Niceness gives a background thread only the CPU time that computations leave idle, but
not the memory bandwidth, the caches, nor the kernel's own work on its behalf (filling
fresh pages, writing them back). Writing a pipeline's results to storage while it ran
cost its cold pass 17% at niceness 19, where holding the same writes back until the pass
was over cost nothing (``python -m benchmarks.cluster.write_cost``). So the storage writer waits,
before each write, until the machine has a core to spare; or until the write has waited
``max_wait_s``, so that a machine never idle still gets its files; or until a caller
waits on it (a flush, or a removal queued behind it).

Spare cores are measured from the kernel's CPU times, sampled twice:

>>> before = CpuTimes(idle=100.0, total=400.0)
>>> spare_cores(before, CpuTimes(idle=150.0, total=600.0), cores=2)
0.5
>>> gate = WriteGate(max_wait_s=30.0)
>>> gate.may_write(spare=0.1, waited=1.0, hurried=False)
False
>>> gate.may_write(spare=0.1, waited=31.0, hurried=False), gate.may_write(0.8, 1.0, False)
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

SPARE_CORES = 0.5
"""How much of a core must be idle for a background write to start."""

MAX_WAIT_S = 30.0
"""The longest a write waits for a spare core before it runs anyway."""


class CpuTimes(NamedTuple):
    """Cumulative CPU time of the whole machine: idle, and in all (any unit, the same)."""

    idle: float
    total: float


def parse_proc_stat(text: str) -> CpuTimes:
    r"""Return the machine's CPU times from the text of Linux's ``/proc/stat``.

    Idle counts ``idle`` and ``iowait``: a core waiting on the disk is free to compute.

    >>> parse_proc_stat("cpu  10 0 20 300 5 0 1 0 0 0\ncpu0 5 0 10 150 2 0 1 0 0 0\n")
    CpuTimes(idle=305.0, total=336.0)
    """
    fields = text.split("\n", 1)[0].split()
    if not fields or fields[0] != "cpu":
        raise ValueError("not the text of /proc/stat")
    values = [float(value) for value in fields[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice: guests are in user.
    counted = values[:8]
    return CpuTimes(idle=values[3] + values[4], total=sum(counted))


def spare_cores(before: CpuTimes, after: CpuTimes, *, cores: int) -> float:
    """Return how many cores were idle, on average, between two samples."""
    elapsed = after.total - before.total
    if elapsed <= 0:
        return float(cores)  # no time passed that the kernel counted: nothing to go by
    return cores * (after.idle - before.idle) / elapsed


@dataclass(frozen=True)
class WriteGate:
    """Whether a background write may start now.

    ``spare_needed`` is the idle share of a core it needs; ``max_wait_s`` the longest it
    waits for one.
    """

    max_wait_s: float = MAX_WAIT_S
    spare_needed: float = SPARE_CORES

    def may_write(self, spare: float, waited: float, hurried: bool) -> bool:
        """Whether to write, with ``spare`` cores idle, after ``waited`` s, or if ``hurried``."""
        return hurried or waited >= self.max_wait_s or spare >= self.spare_needed
