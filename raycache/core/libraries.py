"""The optional libraries whose objects are typical cached values: numpy, pyarrow, pandas.

raycache never imports pandas or pyarrow just to look at a value: a value can only be
one of their objects once its library is imported. Shards, which receive such values
from everywhere, import them ahead of time instead.

>>> imported("json") is None or imported("json").__name__ == "json"
True
>>> imported("no_such_module_anywhere") is None
True
"""

from __future__ import annotations

import importlib
import sys
import threading
from types import ModuleType

VALUE_LIBRARIES = ("numpy", "pyarrow", "pandas")
"""Libraries whose objects are typical cached values, imported by each shard as it starts."""


def imported(name: str) -> ModuleType | None:
    """Return module ``name`` if it was imported already, else None, without importing it.

    A module another thread is still importing is waited for, not returned half built.
    """
    if name not in sys.modules:
        return None
    return importlib.import_module(name)  # waits on the module's import lock if need be


def preload_in_background(modules: tuple[str, ...] = VALUE_LIBRARIES) -> None:
    """Import ``modules`` on a daemon thread, skipping any that are not installed.

    The first DataFrame or table to reach a shard would otherwise make it import its
    library inline, holding up every request queued behind that message.
    """

    def preload() -> None:
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError:
                continue

    threading.Thread(target=preload, name="raycache-preload", daemon=True).start()
