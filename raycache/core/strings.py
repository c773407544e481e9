"""The check for an argument that must be an iterable of str, such as tags.

Both the pure store and the client check tags, so the check lives here, beside neither.

>>> validate_strings(["users", "eu"], "tags")
('users', 'eu')
>>> validate_strings("users", "tags")
Traceback (most recent call last):
...
TypeError: tags must be an iterable of str, not a single str (wrap it in a list)
>>> validate_strings(None, "tags")
Traceback (most recent call last):
...
TypeError: tags must be an iterable of str, not NoneType
"""

from __future__ import annotations

from collections.abc import Iterable


def validate_strings(values: object, what: str) -> tuple[str, ...]:
    """Return ``values`` as a tuple of str, else raise ``TypeError`` naming ``what``."""
    if isinstance(values, str):
        raise TypeError(f"{what} must be an iterable of str, not a single str (wrap it in a list)")
    if not isinstance(values, Iterable):
        raise TypeError(f"{what} must be an iterable of str, not {type(values).__name__}")
    checked = tuple(values)
    for value in checked:
        if not isinstance(value, str):
            raise TypeError(f"{what} must be str, got {type(value).__name__}: {value!r}")
    return checked
