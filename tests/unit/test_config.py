import pytest

from raycache.core import validation
from raycache.core.config import CacheConfig, parse_capacity, validate_capacity
from raycache.core.store import POLICIES

STORE = 10 * 2**30


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (1, 1),
        (4096, 4096),
        ("8GiB", 8 * 2**30),
        ("512MB", 512 * 10**6),
        ("512 mb", 512 * 10**6),
        ("1.5GiB", int(1.5 * 2**30)),
        ("100", 100),
        ("64k", 64 * 2**10),
        ("30%", int(STORE * 0.3)),
        ("100%", STORE),
        (None, int(STORE * 0.3)),
    ],
)
def test_capacity_forms(spec: int | str | None, expected: int) -> None:
    assert parse_capacity(spec, object_store_bytes=STORE) == expected


@pytest.mark.parametrize("spec", [0, -1, "0", "0%", "101%", "-5%", "8 gigs", "", "GiB", "1e9"])
def test_bad_capacities_raise_value_error(spec: object) -> None:
    with pytest.raises(ValueError, match="capacity must be"):
        parse_capacity(spec, object_store_bytes=STORE)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity must be"):
        validate_capacity(spec)


@pytest.mark.parametrize("spec", [1.5, True, [1], b"1GB"])
def test_capacities_of_a_wrong_type_raise_type_error(spec: object) -> None:
    with pytest.raises(TypeError, match="capacity must be an int of bytes or a str"):
        validate_capacity(spec)


@pytest.mark.parametrize("name", ["", " x", "a/b", "x "])
def test_bad_names_raise_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="cache name"):
        validation.name(name)


def test_non_str_name_raises_type_error() -> None:
    with pytest.raises(TypeError, match="cache name must be a str"):
        validation.name(3)


def test_unknown_policy_lists_the_known_ones() -> None:
    known = "adaptive, fifo, gdsf, lfu"
    with pytest.raises(ValueError, match=f"unknown policy 'arc'; choose one of: {known}"):
        validation.choice("arc", POLICIES, "policy")
    with pytest.raises(TypeError):
        validation.choice(None, POLICIES, "policy")


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan")])
def test_bad_ttls_raise_value_error(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl must be"):
        validation.seconds(ttl, "ttl")


@pytest.mark.parametrize("ttl", ["5", True, [1]])
def test_non_numeric_ttls_raise_type_error(ttl: object) -> None:
    with pytest.raises(TypeError, match="ttl must be a number"):
        validation.seconds(ttl, "ttl")


def test_ttl_accepts_ints_and_floats() -> None:
    assert validation.seconds(5, "ttl") == 5.0
    assert validation.seconds(0.25, "ttl") == 0.25
    assert validation.seconds(None, "ttl") is None


@pytest.mark.parametrize(("shards", "error"), [(0, ValueError), (-2, ValueError),
                                               (1.0, TypeError), (True, TypeError)])  # fmt: skip
def test_bad_shard_counts(shards: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="shards must be"):
        validation.integer(shards, "shards", minimum=1)


def test_shard_capacity_splits_the_budget() -> None:
    config = CacheConfig(shards=4, capacity=1000, policy="lru", ttl=None)
    assert config.shard_capacity() == 250
    assert config.shard_capacity(3) == 333


def test_flags_must_be_bools() -> None:
    assert validation.flag(True, "elastic") is True
    with pytest.raises(TypeError, match="elastic must be True or False, not 'yes'"):
        validation.flag("yes", "elastic")
