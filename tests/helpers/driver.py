"""A driver process for the reliability scenarios: ``python -m tests.helpers.driver``.

It connects to a running cluster, loads one key through a held computation, and prints
what it got as one JSON line.
"""

from __future__ import annotations

import json
import logging
import sys

import ray

import raycache
from tests.helpers.chaos import read_through_gate


def main(argv: list[str]) -> None:
    """Run as ``driver ADDRESS CACHE INDEX``."""
    address, name, index = argv
    ray.init(address=address, logging_level=logging.ERROR)
    print(json.dumps(read_through_gate(raycache.Cache.attach(name), int(index))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
