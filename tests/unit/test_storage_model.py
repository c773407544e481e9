"""The storage tier against a dict: any sequence of operations, restarts included, agrees."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from raycache.core.keys import key_digest
from raycache.core.storage import StorageTier, parse_storage

KEYS = st.integers(0, 4)
TAGS = st.sampled_from(["a", "b"])
OPERATIONS = st.one_of(
    st.tuples(st.just("write"), KEYS, st.integers(), st.none() | st.integers(1, 10),
              st.frozensets(TAGS)),
    st.tuples(st.just("read"), KEYS),
    st.tuples(st.just("delete"), KEYS),
    st.tuples(st.just("invalidate"), TAGS),
    st.tuples(st.just("advance"), st.integers(1, 10)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("reopen")),
)  # fmt: skip


@dataclass
class Model:
    now: float = 1000.0
    entries: dict[int, tuple[int, float | None, frozenset[str]]] = field(default_factory=dict)

    def live(self, key: int) -> int | None:
        value, expires_at, _ = self.entries.get(key, (None, None, frozenset()))
        return value if expires_at is None or expires_at > self.now else None


@settings(max_examples=200, deadline=None)
@given(st.lists(OPERATIONS, max_size=30))
def test_the_tier_agrees_with_a_dict(operations: list[tuple[Any, ...]]) -> None:
    model = Model()
    with tempfile.TemporaryDirectory() as directory:
        storage = parse_storage(directory)
        assert storage is not None
        tier = StorageTier(storage, "model", clock=lambda: model.now)
        for operation in operations:
            if operation[0] == "reopen":
                tier = StorageTier(storage, "model", clock=lambda: model.now)
            else:
                apply(tier, model, operation)


def apply(tier: StorageTier, model: Model, operation: tuple[Any, ...]) -> None:
    kind, *args = operation
    if kind == "write":
        key, value, ttl, tags = args
        expires_at = None if ttl is None else model.now + ttl
        assert tier.write(key_digest(key), value, expires_at=expires_at, tags=tags)
        model.entries[key] = (value, expires_at, tags)
    elif kind == "read":
        (key,) = args
        stored = tier.read(key_digest(key))
        expected = model.live(key)
        assert (stored.value if stored else None) == expected
        if expected is None:
            model.entries.pop(key, None)
    elif kind == "delete":
        (key,) = args
        assert tier.delete(key_digest(key)) == (model.entries.pop(key, None) is not None)
    elif kind == "invalidate":
        (tag,) = args
        tagged = [key for key, (_, _, tags) in model.entries.items() if tag in tags]
        assert tier.invalidate_tag(tag) == len(tagged)
        for key in tagged:
            del model.entries[key]
    elif kind == "advance":
        model.now += args[0]
    else:
        expired = [key for key in model.entries if model.live(key) is None]
        assert tier.expire() == len(expired)
        for key in expired:
            del model.entries[key]
