import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raycache.core.keys import DIGEST_SIZE, encode_key, key_digest, validate_key

scalars = st.one_of(
    st.text(), st.binary(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none()
)
keys = st.recursive(scalars, lambda inner: st.tuples(inner, inner) | st.tuples(inner), max_leaves=8)


@given(keys)
def test_digest_is_deterministic_and_sized(key: object) -> None:
    assert key_digest(key) == key_digest(key)
    assert len(key_digest(key)) == DIGEST_SIZE


@given(keys, keys)
def test_distinct_keys_have_distinct_encodings(a: object, b: object) -> None:
    if _structurally_different(a, b):
        assert encode_key(a) != encode_key(b)
    else:
        assert encode_key(a) == encode_key(b)


def _structurally_different(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return True
    if isinstance(a, tuple):
        assert isinstance(b, tuple)
        return len(a) != len(b) or any(
            _structurally_different(x, y) for x, y in zip(a, b, strict=True)
        )
    return repr(a) != repr(b)  # repr tells 0.0 from -0.0, unlike ==


@pytest.mark.parametrize(
    ("a", "b"),
    [(1, True), (0, False), (1, 1.0), ("1", 1), (b"a", "a"), ((), None), (("a",), "a"),
     (("ab",), ("a", "b")), ((1, (2,)), ((1, 2),)), (0.0, -0.0)],
)  # fmt: skip
def test_keys_that_python_conflates_stay_apart(a: object, b: object) -> None:
    assert key_digest(a) != key_digest(b)


@pytest.mark.parametrize("bad", [[1], {"a": 1}, {1}, object(), (1, [2]), bytearray(b"x"), 1j])
def test_unsupported_keys_raise_type_error_naming_the_type(bad: object) -> None:
    with pytest.raises(TypeError, match="cache keys must be"):
        validate_key(bad)
    with pytest.raises(TypeError, match="got"):
        key_digest(bad)


def test_digest_is_the_same_in_another_process() -> None:
    key = ("user", 42, 3.5, None, b"\x00", True)
    code = f"from raycache.core.keys import key_digest; print(key_digest({key!r}).hex())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == key_digest(key).hex()


def test_nan_keys_are_stable() -> None:
    assert key_digest(float("nan")) == key_digest(float("nan"))


@given(st.text())
def test_str_and_bytes_keys_with_the_same_bytes_stay_apart(text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    assert key_digest(text) != key_digest(raw)
    assert key_digest(text) != key_digest((text,))
