"""Hashing of standard-library values: times, decimals, UUIDs, paths, enums and records.

Also the values that stand for a name: classes, modules, time zones, and Ray actor
handles, which are identities rather than values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import pathlib
import struct
import sys
import types
import uuid
import zoneinfo
from typing import Any

from raycache.core.encoding import NONE, STR, length
from raycache.core.hashing.hasher import Handler, Hasher, type_name
from raycache.errors import UnhashableValueError

_DATETIME = struct.Struct(">iBBBBBIB")  # year, month, day, h, m, s, microsecond, fold
_TIME = struct.Struct(">BBBIB")  # h, m, s, microsecond, fold
_TIMEDELTA = struct.Struct(">qII")  # days, seconds, microseconds


def _hash_datetime(h: Hasher, value: dt.datetime) -> None:
    h.write(
        b"t"
        + _DATETIME.pack(
            value.year,
            value.month,
            value.day,
            value.hour,
            value.minute,
            value.second,
            value.microsecond,
            value.fold,
        )
    )
    hash_tz(h, value.tzinfo)


def _hash_date(h: Hasher, value: dt.date) -> None:
    h.write(b"A" + length(value.toordinal()))


def _hash_time(h: Hasher, value: dt.time) -> None:
    h.write(
        b"h" + _TIME.pack(value.hour, value.minute, value.second, value.microsecond, value.fold)
    )
    hash_tz(h, value.tzinfo)


def _timedelta_bytes(value: dt.timedelta) -> bytes:
    return _TIMEDELTA.pack(value.days, value.seconds, value.microseconds)


def _hash_timedelta(h: Hasher, value: dt.timedelta) -> None:
    h.write(b"e" + _timedelta_bytes(value))


def hash_tz(h: Hasher, tz: dt.tzinfo | None) -> None:
    """Hash the time zone of an aware time, or None; raise for zones without a name."""
    # An aware datetime hashes its zone, not just its offset: zones differ in DST rules.
    if tz is None:
        h.write(NONE)
    elif isinstance(tz, dt.timezone):
        h.write(b"z" + _timedelta_bytes(tz.utcoffset(None)))
        h.text(STR, tz.tzname(None))
    elif isinstance(tz, zoneinfo.ZoneInfo) and tz.key is not None:
        h.text(b"Z", tz.key)
    else:
        raise UnhashableValueError(
            f"{type_name(tz)} time zones cannot be hashed; "
            "use datetime.timezone or zoneinfo.ZoneInfo"
        )


def _hash_decimal(h: Hasher, value: decimal.Decimal) -> None:
    # str keeps the exponent, so Decimal("1.0") and Decimal("1.00") stay apart.
    h.text(b"m", str(value))


def _hash_uuid(h: Hasher, value: uuid.UUID) -> None:
    h.write(b"u" + value.bytes)


EXACT: dict[type, Handler] = {
    dt.datetime: _hash_datetime,
    dt.date: _hash_date,
    dt.time: _hash_time,
    dt.timedelta: _hash_timedelta,
    decimal.Decimal: _hash_decimal,
    uuid.UUID: _hash_uuid,
}
"""The handler of each standard-library value type, by exact type."""


def hash_record(h: Hasher, value: object) -> bool:
    """Hash ``value`` if it is an enum member, a dataclass or a named tuple; say if it was."""
    if isinstance(value, enum.Enum):
        h.write(b"&")
        hash_type(h, type(value))
        # Flag combinations have no name before Python 3.11; their value identifies them.
        h.value(value.name if value.name is not None else value.value)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        _hash_fields(h, value, [(f.name, getattr(value, f.name)) for f in fields])
    elif isinstance(value, tuple) and isinstance(getattr(type(value), "_fields", None), tuple):
        names = type(value)._fields  # type: ignore[attr-defined]
        _hash_fields(h, value, list(zip(names, value, strict=True)))
    else:
        return False
    return True


def _hash_fields(h: Hasher, value: object, fields: list[tuple[str, Any]]) -> None:
    """Hash a dataclass instance or named tuple: its type, then its named fields."""
    key = h.enter(value)
    try:
        h.write(b"@")
        hash_type(h, type(value))
        h.write(length(len(fields)))
        for name, item in fields:
            h.text(STR, name)
            h.value(item)
    finally:
        h.leave(key)


def hash_named(h: Hasher, value: object) -> bool:
    """Hash ``value`` if it is a module, class, path, time zone or actor; say if it was."""
    if isinstance(value, types.ModuleType):
        h.text(b"M", value.__name__)
    elif isinstance(value, type):
        hash_type(h, value)
    elif isinstance(value, pathlib.PurePath):
        h.write(b"/")
        hash_type(h, type(value))
        h.text(STR, str(value))
    elif isinstance(value, dt.tzinfo):
        h.write(b"zone")
        hash_tz(h, value)
    elif _is_actor_handle(value):
        # An actor is an identity, not a value: key by which actor it is.
        h.text(b"actor", value._actor_id.hex())  # type: ignore[attr-defined]
    else:
        return False
    return True


def _is_actor_handle(value: object) -> bool:
    # Ray is looked up, not imported: the pure core hashes without it.
    actor: Any = getattr(sys.modules.get("ray"), "actor", None)
    return actor is not None and isinstance(value, actor.ActorHandle)


def hash_type(h: Hasher, cls: type) -> None:
    """Hash a class by its module and qualified name."""
    h.text(b"y", f"{cls.__module__}.{cls.__qualname__}")
