"""Argument checks, written once: ``TypeError`` for a wrong type, ``ValueError`` for a bad value.

Every public entry point (the client, the store, the ring, memoize) checks its arguments
with these functions, so the same mistake gets the same exception and the same wording
wherever it is made. ``what`` names the argument in the message.

>>> seconds(5, "ttl")
5.0
>>> seconds("5", "ttl")
Traceback (most recent call last):
...
TypeError: ttl must be a number of seconds or None, got str
>>> seconds(0, "ttl")
Traceback (most recent call last):
...
ValueError: ttl must be a finite number of seconds > 0, got 0
>>> strings(["users", "eu"], "tags")
('users', 'eu')
>>> strings("users", "tags")
Traceback (most recent call last):
...
TypeError: tags must be an iterable of str, not a single str (wrap it in a list)
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from numbers import Real


def flag(value: object, what: str) -> bool:
    """Return ``value`` if it is a bool.

    >>> flag(1, "elastic")
    Traceback (most recent call last):
    ...
    TypeError: elastic must be True or False, not 1
    """
    if not isinstance(value, bool):
        raise TypeError(f"{what} must be True or False, not {value!r}")
    return value


def integer(value: object, what: str, *, minimum: int) -> int:
    """Return ``value`` if it is an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value}")
    return int(value)


def number(value: object, what: str) -> float:
    """Return ``value`` as a float if it is a finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{what} must be a real number, got {type(value).__name__}")
    result = _float(value, what)
    if not 0.0 <= result < math.inf:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return result


def seconds(value: object, what: str) -> float | None:
    """Return a duration in seconds, or None; it must be None or a finite number > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{what} must be a number of seconds or None, got {type(value).__name__}")
    result = _float(value, what)
    if not (result > 0 and math.isfinite(result)):
        raise ValueError(f"{what} must be a finite number of seconds > 0, got {value!r}")
    return result


def strings(values: object, what: str) -> tuple[str, ...]:
    """Return ``values`` as a tuple of str; a lone str is refused, as a likely mistake."""
    if isinstance(values, str):
        raise TypeError(f"{what} must be an iterable of str, not a single str (wrap it in a list)")
    if not isinstance(values, Iterable):
        raise TypeError(f"{what} must be an iterable of str, not {type(values).__name__}")
    checked = tuple(values)
    for value in checked:
        if not isinstance(value, str):
            raise TypeError(f"{what} must be str, got {type(value).__name__}: {value!r}")
    return checked


def choice(value: object, choices: Iterable[str], what: str) -> str:
    """Return ``value`` if it is one of ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, got {type(value).__name__}")
    known = sorted(choices)
    if value not in known:
        raise ValueError(f"unknown {what} {value!r}; choose one of: {', '.join(known)}")
    return value


NAME_MAX_LENGTH = 63
"""The longest cache name, in characters.

A name becomes a folder of the storage, part of actor names and a metrics label; 63
characters are at most 252 bytes of UTF-8, within the 255-byte limit of a file name on
common filesystems.
"""

_SEPARATORS = frozenset("/\\")


def name(value: object) -> str:
    """Return ``value`` if it can name a cache, else raise ``ValueError`` saying why.

    A name is a str of 1 to :data:`NAME_MAX_LENGTH` characters, without a path separator
    (``/`` or a backslash), control characters or surrounding spaces, and is not ``.`` or
    ``..``: it names the cache's folder in the storage, which must stay inside it.

    >>> name("users-eu")
    'users-eu'
    >>> name("..")
    Traceback (most recent call last):
    ...
    ValueError: cache name '..' is not allowed: it would name a folder outside the storage
    """
    if not isinstance(value, str):
        raise TypeError(f"cache name must be a str, got {type(value).__name__}")
    problem = _name_problem(value)
    if problem is not None:
        raise ValueError(f"cache name {shown(value)} is not allowed: {problem}")
    return value


def _name_problem(value: str) -> str | None:
    if not value:
        return "it is empty"
    if value in (".", ".."):
        return "it would name a folder outside the storage"
    if len(value) > NAME_MAX_LENGTH:
        return f"it is {len(value)} characters long, over the limit of {NAME_MAX_LENGTH}"
    if any(character in _SEPARATORS for character in value):
        return "it holds a path separator ('/' or '\\\\')"
    if any(unicodedata.category(character)[0] == "C" for character in value):
        return "it holds a control or unprintable character"
    if value.strip() != value:
        return "it has surrounding spaces"
    return None


def _float(value: Real, what: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{what} is too large: {shown(value)}") from None


def shown(value: object, limit: int = 40) -> str:
    """Return ``repr(value)``, shortened to about ``limit`` characters for an error message.

    >>> shown("1" + "0" * 400)
    "'100000000000000000000000000000000000...(403 characters)"
    """
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}...({len(text)} characters)"
