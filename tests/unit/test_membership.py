"""The router's choice of ring members as a cache resizes, or moves a shard off a node."""

from __future__ import annotations

from raycache.actors.router import _fresh_members, _resized


def test_a_resize_from_shard_0_up_stays_canonical() -> None:
    members = ("shard-0", "shard-1", "shard-2")
    assert _resized(members, 5) == [f"shard-{i}" for i in range(5)]
    assert _resized(members, 2) == ["shard-0", "shard-1"]


def test_a_resize_after_a_move_keeps_the_moved_member_and_numbers_new_ones_above_it() -> None:
    members = ("shard-0", "shard-3", "shard-2")  # shard-1 moved off a drained node
    assert _resized(members, 4) == ["shard-0", "shard-2", "shard-3", "shard-4"]
    assert _resized(members, 2) == ["shard-0", "shard-2"]  # the highest go first


def test_fresh_members_are_numbered_above_every_taken_one() -> None:
    assert _fresh_members({"shard-0", "shard-7"}, 2) == ["shard-8", "shard-9"]
    assert _fresh_members(set(), 1) == ["shard-0"]
    assert _fresh_members({"shard-0"}, 0) == []
