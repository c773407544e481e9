"""Contract tests of the wire protocol, without Ray."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raycache.core import protocol
from raycache.core.keys import DIGEST_SIZE
from raycache.core.protocol import (
    Code,
    Flag,
    KeyRequest,
    LookupReply,
    Reply,
    pack_key_request,
    pack_request,
    unpack_request,
)

digests = st.binary(min_size=DIGEST_SIZE, max_size=DIGEST_SIZE)
epochs = st.integers(min_value=0, max_value=2**64 - 1)

WIRE_REPLIES = [
    protocol.hit("v"),
    protocol.ref("object-ref"),
    protocol.miss(),
    protocol.ok(True),
    protocol.stale(7),
    protocol.too_large(10, 4),
    protocol.in_flight(Code.PENDING, "object-ref"),
    protocol.in_flight(Code.COMPUTING, "object-ref"),
    protocol.leased(3),
    protocol.wait(3),
    protocol.failed(b"pickled"),
    protocol.retry(),
]


@pytest.mark.parametrize("wire", WIRE_REPLIES, ids=lambda wire: Code(wire[0]).name)
def test_wire_replies_are_lists_of_plain_values(wire: list[Any]) -> None:
    # Ray sends lists of plain ints through msgpack; an IntEnum member would go to pickle.
    assert type(wire) is list and len(wire) == 3
    assert type(wire[0]) is int and type(wire[2]) is int


@pytest.mark.parametrize("wire", WIRE_REPLIES, ids=lambda wire: Code(wire[0]).name)
def test_decoding_names_every_field(wire: list[Any]) -> None:
    reply = Reply.decode(wire)
    assert reply.code == wire[0] and isinstance(reply.code, Code)
    assert reply.payload == wire[1] and reply.flags == wire[2]
    if reply.code in protocol.REFERENCES:
        assert reply.reference == "object-ref"


def test_flags() -> None:
    assert not Reply.decode(protocol.hit(1)).elected
    elected = protocol.ref("r")
    elected[2] |= Flag.REFRESH.value
    reply = Reply.decode(elected)
    assert reply.elected and type(elected[2]) is int


def test_a_tracked_read_decodes_with_its_stamp() -> None:
    stamp = protocol.Stamp(b"start", 3, [None, 1.5], [8, 9])
    reply = Reply.decode((protocol.columns([protocol.hit("a"), protocol.miss()]), stamp))
    assert reply.code is Code.OK and reply.stamp == stamp
    assert protocol.Columns.of(reply).payloads == ["a", None]


def test_payloads_by_code() -> None:
    assert Reply.decode(protocol.too_large(10, 4)).payload == (10, 4)
    assert Reply.decode(protocol.stale(9)).payload == 9
    assert Reply.decode(protocol.miss()).payload is None


def test_codes_are_distinct_and_stable() -> None:
    # The numbers travel between processes that may run different raycache versions.
    assert [code.value for code in Code] == list(range(13))
    assert [code.name for code in Code] == [
        "HIT", "REF", "MISS", "STALE", "TOO_LARGE", "OK", "PENDING", "COMPUTING", "INLINE",
        "LEASED", "WAIT", "FAILED", "RETRY",
    ]  # fmt: skip


def test_a_lookup_reply_is_never_a_plain_list() -> None:
    assert type(LookupReply(protocol.miss())) is not list
    assert LookupReply(protocol.miss()) == protocol.miss()


@given(epochs, digests, st.none() | st.floats(min_value=0.001, max_value=1e9))
def test_key_requests_round_trip(epoch: int, digest: bytes, age: float | None) -> None:
    request = pack_key_request(epoch, digest, age)
    assert KeyRequest.unpack(request) == (epoch, digest, age)


@given(epochs, st.lists(digests, min_size=1, max_size=50))
def test_batch_requests_round_trip(epoch: int, batch: list[bytes]) -> None:
    assert unpack_request(pack_request(epoch, b"".join(batch))) == (epoch, batch)


@given(epochs, digests)
def test_a_key_request_is_a_batch_of_one(epoch: int, digest: bytes) -> None:
    assert unpack_request(pack_key_request(epoch, digest)) == (epoch, [digest])
