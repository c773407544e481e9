"""Background work at the lowest CPU priority: storage writes and promotions.

Writing an entry to storage, or copying a storage hit into the object store, costs CPU
(checksums, and filling fresh pages) that would otherwise lengthen the computations
running beside it on the node. At the lowest priority the kernel gives such work only
the time that computations leave idle; it catches up when they pause.
"""

from __future__ import annotations

import contextlib
import os
import threading

BACKGROUND_NICENESS = 19
"""The niceness of a thread doing background work: the lowest priority there is."""


def lower_priority() -> None:
    """Give the calling thread the lowest CPU priority; elsewhere than Linux, do nothing.

    On Linux a thread's niceness is its own, so the rest of the process keeps its priority.
    """
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not permitted
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
