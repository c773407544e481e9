"""Background work at the lowest CPU priority: storage writes and promotions.

Writing an entry to storage, or copying a storage hit into the object store, costs CPU
(checksums, and filling fresh pages) that would otherwise lengthen the computations
running beside it on the node. At the lowest priority the kernel gives such work only
the time that computations leave idle; it catches up when they pause. Storage writes
also wait for a spare core before they start (see :mod:`raycache.core.idle`), which
:func:`spare_cores_now` measures.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

from raycache.core.idle import CpuTimes, parse_proc_stat, spare_cores

BACKGROUND_NICENESS = 19
"""The niceness of a thread doing background work: the lowest priority there is."""


def lower_priority() -> None:
    """Give the calling thread the lowest CPU priority; elsewhere than Linux, do nothing.

    On Linux a thread's niceness is its own, so the rest of the process keeps its priority.
    """
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not permitted
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


def spare_cores_now(interval: float) -> float:
    """Return how many of the machine's cores were idle over the next ``interval`` seconds.

    Where the kernel's CPU times cannot be read (not Linux), every core counts as idle.
    """
    cores = os.cpu_count() or 1
    before = _cpu_times()
    time.sleep(interval)
    after = _cpu_times()
    if before is None or after is None:
        return float(cores)
    return spare_cores(before, after, cores=cores)


def _cpu_times() -> CpuTimes | None:
    try:
        with open("/proc/stat") as stat:
            return parse_proc_stat(stat.read(4096))
    except (OSError, ValueError):
        return None
