"""The wire protocol between clients and shards: requests, reply codes and reply fields.

Every shard method that takes a request answers a *wire reply*, the list
``[code, payload, flags]``. It is a list of plain values because Ray sends lists of
ints, bytes and None through its fast msgpack path and everything else through pickle;
for the same reason the codes travel as plain ints, not as :class:`Code` members. The
client decodes a wire reply into a :class:`Reply`, whose fields have names.

A request is one bytes argument: the caller's ring epoch, then one or more 16-byte key
digests, then, for a lookup, an optional refresh age. One argument rather than several
saves Ray a serialisation per argument, a sizeable share of a small get's round trip.

>>> wire = hit("v")
>>> reply = Reply.decode(wire)
>>> reply.code is Code.HIT, reply.payload, reply.elected
(True, 'v', False)
>>> KeyRequest.unpack(pack_key_request(3, b"d" * 16, 2.5))
KeyRequest(epoch=3, digest=b'dddddddddddddddd', refresh_after=2.5)
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import IntEnum, IntFlag
from typing import Any, NamedTuple

from raycache.core.keys import DIGEST_SIZE

__all__ = [
    "Code",
    "Columns",
    "Flag",
    "KeyRequest",
    "LookupReply",
    "Notice",
    "Pushed",
    "Reply",
    "Stamp",
    "WireReply",
    "code_of",
    "columns",
    "failed",
    "first_refusal",
    "flagged",
    "hit",
    "in_flight",
    "leased",
    "miss",
    "ok",
    "pack_key_request",
    "pack_request",
    "ref",
    "retry",
    "stale",
    "too_large",
    "unpack_request",
    "wait",
]


class Code(IntEnum):
    """What a reply says. Its payload, by code, is given beside each member."""

    HIT = 0
    """The value itself, kept inline by the shard."""
    REF = 1
    """``[ref]``: the object store reference of a large value, nested so Ray does not fetch it."""
    MISS = 2
    """None: no such key."""
    STALE = 3
    """The shard's ring epoch: the caller's ring is older, so it refreshes and retries."""
    TOO_LARGE = 4
    """``(size, capacity)``: the value exceeds the shard's byte budget."""
    OK = 5
    """The method's answer, which its docstring describes."""
    PENDING = 6
    """``[ref]`` of a computation in flight that the caller joined."""
    COMPUTING = 7
    """``[ref]`` of a computation that the caller's request started."""
    INLINE = 8
    """The value; only made by the client, for a bare hit from a shard's ``lookup``."""
    LEASED = 9
    """The lease token: the caller computes the value itself, then hands it to the shard."""
    WAIT = 10
    """The token of another caller's lease on the key: wait for it with ``wait``."""
    FAILED = 11
    """The pickled exception that the key's computation raised; nothing was cached."""
    RETRY = 12
    """None: the flight the caller waited on ended without a value; look the key up again."""


REFERENCES = frozenset((Code.REF, Code.PENDING, Code.COMPUTING))
"""Codes whose payload is ``[ref]``."""


class Flag(IntFlag):
    """Bits of a reply's ``flags`` field."""

    REFRESH = 2
    """This caller is elected to recompute the stale-but-served entry (stale-while-revalidate)."""


WireReply = list[Any]
"""A reply as it travels: ``[code, payload, flags]``, with ``code`` a plain int."""


class Stamp(NamedTuple):
    """What a tracked read (a read by a handle with a near cache) adds to its reply.

    See :mod:`raycache.core.tracking`, which makes them, and
    :mod:`raycache.core.near_cache`, which reads them.
    """

    incarnation: bytes
    """The shard's start: a new one means the shard restarted and tracks nothing of old."""
    seq: int | None
    """Invalidations queued for the reader before this read; None: the shard refused to
    track it, so it must not keep what it read."""
    ttls: list[float | None]
    """Seconds each value read has left to live, in the order read; None: no TTL, and 0
    for a key not found, or found only as a computation's result, which is not tracked."""
    sizes: list[int]
    """The size of each value read, in bytes, as the shard counts it."""


class Pushed(NamedTuple):
    """A small value written to a key a subscriber holds, pushed to replace its copy."""

    digest: bytes
    value: Any
    size: int
    seq: int
    """The subscriber's count of invalidations when it was queued, this one included."""


class Notice(NamedTuple):
    """What a shard hands a near-cache subscriber that polls: the copies to drop or replace."""

    incarnation: bytes
    """The shard's start, as in :class:`Stamp`."""
    seq: int
    """Invalidations queued for the subscriber so far, these included."""
    digests: list[bytes]
    """The keys whose copies are to be dropped."""
    flush: bool
    """Drop every copy from this shard (a clear, a new ring, or a shard that forgot you)."""
    pushed: Sequence[Pushed] = ()
    """New values of keys held, to replace copies older than them; after the drops."""


class LookupReply(list):  # type: ignore[type-arg]
    """A shard's ``lookup`` answer other than a bare hit value.

    ``lookup`` answers a plain inline hit with the value alone, so that the caller's
    reference to the call's result is a reference to the value; every other answer is
    a wire reply of this private type, so no value a user caches can be mistaken for one.
    """


class Reply(NamedTuple):
    """A decoded reply. ``call`` is, for :attr:`Code.INLINE`, the lookup call's own reference."""

    code: Code
    payload: Any = None
    flags: int = 0
    call: Any = None
    stamp: Stamp | None = None

    @classmethod
    def decode(cls, wire: WireReply | tuple[WireReply, Stamp]) -> Reply:
        """Name the fields of a wire reply, or of a tracked read's ``(wire, stamp)``."""
        if isinstance(wire, tuple):
            (code, payload, flags), stamp = wire
            return cls(Code(code), payload, flags, stamp=stamp)
        return cls(Code(wire[0]), wire[1], wire[2])

    @property
    def elected(self) -> bool:
        """Whether this caller is elected to refresh the entry."""
        return bool(self.flags & Flag.REFRESH)

    @property
    def reference(self) -> Any:
        """The object reference a REF, PENDING or COMPUTING reply carries."""
        return self.payload[0]


def hit(value: Any) -> WireReply:
    """Return a hit on an inline value."""
    return [Code.HIT.value, value, 0]


def ref(reference: Any) -> WireReply:
    """Return a hit on a large value, or on a finished computation, by reference."""
    return [Code.REF.value, [reference], 0]


def miss() -> WireReply:
    """Return a miss."""
    return [Code.MISS.value, None, 0]


def ok(answer: Any = None) -> WireReply:
    """Return a method's answer."""
    return [Code.OK.value, answer, 0]


def stale(epoch: int) -> WireReply:
    """Tell a caller that its ring is older than the shard's, at ``epoch``."""
    return [Code.STALE.value, epoch, 0]


def too_large(size: int, capacity: int) -> WireReply:
    """Refuse a value larger than the shard's budget."""
    return [Code.TOO_LARGE.value, (size, capacity), 0]


def leased(token: int) -> WireReply:
    """Grant the caller a lease on the key: it computes, then calls ``fulfil`` or ``fail``."""
    return [Code.LEASED.value, token, 0]


def wait(token: int) -> WireReply:
    """Tell the caller that another caller holds lease ``token`` on the key."""
    return [Code.WAIT.value, token, 0]


def failed(error: bytes) -> WireReply:
    """Pass on the pickled exception that the key's computation raised."""
    return [Code.FAILED.value, error, 0]


def retry() -> WireReply:
    """Tell a waiter to look the key up again."""
    return [Code.RETRY.value, None, 0]


def in_flight(code: Code, reference: Any) -> WireReply:
    """Return the reference of a computation in flight: PENDING (joined) or COMPUTING."""
    return [code.value, [reference], 0]


def code_of(wire: WireReply) -> Code:
    """Return the code of a wire reply, without decoding the rest."""
    return Code(wire[0])


def first_refusal(replies: list[WireReply]) -> WireReply:
    """Return the first TOO_LARGE of many replies to writes, else OK.

    >>> code_of(first_refusal([ok(), too_large(9, 4)]))
    <Code.TOO_LARGE: 4>
    """
    return next((reply for reply in replies if reply[0] == Code.TOO_LARGE), ok())


def flagged(wire: WireReply, flag: Flag) -> WireReply:
    """Return ``wire`` with ``flag`` set as well."""
    return [wire[0], wire[1], wire[2] | flag.value]


def columns(replies: list[WireReply]) -> WireReply:
    r"""Return OK with many replies as :class:`Columns`, in the order given.

    >>> Columns.of(Reply.decode(columns([hit("v"), miss()])))
    Columns(codes=b'\x00\x02', payloads=['v', None])
    """
    # A code byte per reply and then the payloads are cheap to send, and let the client
    # take an all-hits answer without looking at each code. A list, not a tuple, so that
    # Ray sends it through msgpack rather than pickle.
    return ok([bytes(reply[0] for reply in replies), [reply[1] for reply in replies]])


def inline_hits(values: list[Any]) -> WireReply:
    """Return :func:`columns` of a :func:`hit` on each of ``values``, built at once.

    >>> inline_hits(["a", "b"]) == columns([hit("a"), hit("b")])
    True
    """
    # A batch of small keys that are all present, the usual one, costs no reply per key.
    return ok([bytes(len(values)), values])  # Code.HIT is 0


class Columns(NamedTuple):
    """Many replies in one OK answer: a code byte per key, then the payloads, in order."""

    codes: bytes
    payloads: list[Any]

    @classmethod
    def of(cls, reply: Reply) -> Columns:
        """Read the columns of an OK reply made by :func:`columns`."""
        codes, payloads = reply.payload
        return cls(codes, payloads)

    def all_hits(self) -> bool:
        """Return whether every key was an inline hit."""
        return self.codes.count(Code.HIT) == len(self.codes)


# ----------------------------------------------------------------------------- requests

_EPOCH = struct.Struct(">Q")
_AGE = struct.Struct(">d")


def pack_request(epoch: int, digests: bytes) -> bytes:
    """Pack a ring epoch and one or more concatenated key digests into one argument.

    >>> unpack_request(pack_request(7, b"a" * 16 + b"b" * 16))
    (7, [b'aaaaaaaaaaaaaaaa', b'bbbbbbbbbbbbbbbb'])
    """
    return _EPOCH.pack(epoch) + digests


def unpack_request(request: bytes) -> tuple[int, list[bytes]]:
    """Return the epoch and digests packed by :func:`pack_request`."""
    size = DIGEST_SIZE
    digests = [request[start : start + size] for start in range(_EPOCH.size, len(request), size)]
    return _EPOCH.unpack_from(request)[0], digests


def pack_key_request(epoch: int, digest: bytes, refresh_after: float | None = None) -> bytes:
    """Pack a request about one key: its digest and, for a lookup, a refresh age.

    >>> KeyRequest.unpack(pack_key_request(3, b"d" * 16)).refresh_after is None
    True
    """
    request = pack_request(epoch, digest)
    return request if refresh_after is None else request + _AGE.pack(refresh_after)


class KeyRequest(NamedTuple):
    """A request about one key, unpacked."""

    epoch: int
    digest: bytes
    refresh_after: float | None = None

    @classmethod
    def unpack(cls, request: bytes) -> KeyRequest:
        """Unpack :func:`pack_key_request`'s bytes."""
        end = _EPOCH.size + DIGEST_SIZE
        epoch = _EPOCH.unpack_from(request)[0]
        age = _AGE.unpack_from(request, end)[0] if len(request) > end else None
        return cls(epoch, request[_EPOCH.size : end], age)
