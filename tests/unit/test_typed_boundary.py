"""The client↔shard boundary is typed: renaming or re-signing a shard operation fails mypy.

The package is copied, four shard operations are changed as a careless refactor would
change them, and ``mypy --strict`` runs once over the copy: each change must be caught
where the operation is called, not at run time.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from mypy import api

import raycache

PACKAGE = Path(raycache.__file__).parent

EDITS = {
    "renamed": (r"    def get\(self, request", "    def read(self, request"),
    "argument retyped": (
        r"    def computed\(self, digest: bytes, token: int,",
        "    def computed(self, digest: bytes, token: str,",
    ),
    "argument added": (
        r"    def give\(self, digests: list\[bytes\]\)",
        "    def give(self, digests: list[bytes], everything: bool)",
    ),
    "answer retyped": (
        r"    def tag_summary\(self, tag: str\) -> tuple\[int, int\]:",
        "    def tag_summary(self, tag: str) -> tuple[str, str]:",
    ),
}
"""Changes to ``actors/shard.py``: (pattern, replacement)."""

CAUGHT = {
    "renamed": ("client/shard_client.py", r'has no attribute "get"'),
    "argument retyped": ("actors/shard.py", r'"bind" has incompatible type .*bytes, str, Computed'),
    "argument added": ("actors/router.py", r'"bind" has incompatible type .*list\[bytes\], bool\]'),
    "answer retyped": ("client/shard_client.py", r'incompatible item type "str"'),
}  # fmt: skip
"""Where mypy must report each change, and what its error says."""


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Return mypy's errors on a copy of the package with every change of :data:`EDITS`."""
    root = tmp_path_factory.mktemp("typed")
    copy = root / "raycache"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shard = copy / "actors" / "shard.py"
    source = shard.read_text()
    for name, (pattern, replacement) in EDITS.items():
        source, count = re.subn(pattern, replacement, source, count=1, flags=re.MULTILINE)
        assert count == 1, f"the {name!r} change found nothing to change"
    shard.write_text(source)
    args = ["--strict", "--no-error-summary", "--cache-dir", str(root / "cache"), str(copy)]
    report, _, _ = api.run(args)
    return [line for line in report.splitlines() if ": error:" in line]


@pytest.mark.parametrize("change", list(CAUGHT))
def test_a_changed_shard_operation_fails_mypy_where_it_is_called(
    mypy_errors: list[str], change: str
) -> None:
    caller, says = CAUGHT[change]
    found = [e for e in mypy_errors if caller in e.replace("\\", "/") and re.search(says, e)]
    assert found, "\n".join(mypy_errors)
